// RemoteStore: the Store interface over RPC to the cluster's StoreDO. This is what the
// API Worker (and later the scheduler and controllers) hold.

import { type ApiError, fromWire, type WireError } from "../../workers/shared/errors.ts";
import type { StoreDO } from "./store-do.ts";
import type { ChangesResult, KV, ListOptions, ListResult, RetentionPolicy, Store, TxnOp, Watch } from "./types.ts";
import { watchFromStream } from "./watch.ts";

function unwrap<T>(e: { ok?: T; err?: WireError }): T {
  if (e.err) throw fromWire(e.err);
  return e.ok as T;
}

export class RemoteStore implements Store {
  private readonly stub: DurableObjectStub<StoreDO>;

  constructor(stub: DurableObjectStub<StoreDO>) {
    this.stub = stub;
  }

  static forCluster(ns: DurableObjectNamespace<StoreDO>, cluster: string): RemoteStore {
    return new RemoteStore(ns.get(ns.idFromName(cluster)));
  }

  async currentRevision(): Promise<number> {
    return (await this.stub.revisions()).current;
  }

  async compactedRevision(): Promise<number> {
    return (await this.stub.revisions()).compacted;
  }

  async get(key: string, revision?: number): Promise<KV | null> {
    return unwrap(await this.stub.get(key, revision));
  }

  async list(prefix: string, opts?: ListOptions): Promise<ListResult> {
    return unwrap(await this.stub.list(prefix, opts));
  }

  async count(prefix: string): Promise<number> {
    return unwrap(await this.stub.count(prefix));
  }

  async create(key: string, value: string): Promise<KV> {
    return (await this.txn([{ op: "create", key, value }]))[0];
  }

  async update(key: string, value: string, expectedRevision: number): Promise<KV> {
    return (await this.txn([{ op: "update", key, value, expectedRevision }]))[0];
  }

  async delete(key: string, expectedRevision?: number): Promise<KV> {
    return (await this.txn([{ op: "delete", key, expectedRevision }]))[0];
  }

  async txn(ops: TxnOp[]): Promise<KV[]> {
    return unwrap(await this.stub.txn(ops));
  }

  async batch(txns: TxnOp[][]): Promise<(KV[] | ApiError)[]> {
    const res = await this.stub.txnBatch(txns);
    return res.map((e) => (e.err ? fromWire(e.err) : (e.ok as KV[])));
  }

  async changes(prefix: string | string[], afterRevision: number, limit?: number): Promise<ChangesResult> {
    return unwrap(await this.stub.changes(prefix, afterRevision, limit));
  }

  async watch(prefix: string, afterRevision: number, withPrev = false): Promise<Watch> {
    const stream = unwrap(await this.stub.watch(prefix, afterRevision, withPrev));
    return watchFromStream(stream);
  }

  /** The StoreDO's rendered-lines watch (see StoreDO.watchLines): bytes to pipe to a client. */
  async watchLines(
    prefix: string,
    afterRevision: number,
    opts: { bookmark?: { kind: string; apiVersion: string }; bookmarkEveryMs?: number },
  ): Promise<ReadableStream<Uint8Array>> {
    return unwrap(await this.stub.watchLines(prefix, afterRevision, opts));
  }

  async compact(retention?: RetentionPolicy): Promise<number> {
    return unwrap(await this.stub.compact(retention));
  }
}
