// In-memory Store: the reference implementation of the Store contract, used by unit
// tests of code above the store. Same log model as the SQLite store: one append-only
// list of rows whose index is the revision.

import { ApiError } from "../../workers/shared/errors.ts";
import { planCompaction, storeErrors } from "./log.ts";
import {
  type ChangesResult,
  DEFAULT_RETENTION,
  type KV,
  type ListOptions,
  type ListResult,
  prefixEnd,
  type RetentionPolicy,
  type Store,
  type TxnOp,
  type Watch,
  type WatchEvent,
} from "./types.ts";
import { QueueWatch, WatchHub } from "./watch.ts";

interface Row {
  rev: number;
  key: string;
  value: string;
  createRev: number;
  deleted: boolean;
  ts: number;
  prev?: string; // value before this write, for watches that ask for it
}

export class MemoryStore implements Store {
  private rows: Row[] = []; // ascending rev; holes after compaction
  private byKey = new Map<string, Row[]>(); // ascending rev per key
  private rev = 0;
  private compacted = 0;
  private readonly hub = new WatchHub();

  private readonly now: () => number;
  private readonly retention: RetentionPolicy;

  constructor(now: () => number = Date.now, retention: RetentionPolicy = DEFAULT_RETENTION) {
    this.now = now;
    this.retention = retention;
  }

  async currentRevision(): Promise<number> {
    return this.rev;
  }

  async compactedRevision(): Promise<number> {
    return this.compacted;
  }

  private checkRevision(revision: number): void {
    if (revision < this.compacted) throw storeErrors.compacted(revision, this.compacted);
    if (revision > this.rev) throw storeErrors.futureRevision(revision, this.rev);
  }

  private at(key: string, revision: number): Row | undefined {
    const hist = this.byKey.get(key);
    if (!hist) return undefined;
    for (let i = hist.length - 1; i >= 0; i--) if (hist[i].rev <= revision) return hist[i];
    return undefined;
  }

  private toKV(r: Row): KV {
    return { key: r.key, value: r.value, createRevision: r.createRev, modRevision: r.rev };
  }

  async get(key: string, revision?: number): Promise<KV | null> {
    const at = revision ?? this.rev;
    if (revision !== undefined) this.checkRevision(revision);
    const r = this.at(key, at);
    return r && !r.deleted ? this.toKV(r) : null;
  }

  private liveKeys(prefix: string, revision: number, startKey?: string): Row[] {
    const end = prefixEnd(prefix);
    const from = startKey && startKey > prefix ? startKey : prefix;
    const out: Row[] = [];
    for (const key of this.byKey.keys()) {
      if (key < from || key >= end) continue;
      const r = this.at(key, revision);
      if (r && !r.deleted) out.push(r);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    const revision = opts.revision ?? this.rev;
    if (opts.revision !== undefined) this.checkRevision(opts.revision);
    const all = this.liveKeys(prefix, revision, opts.startKey);
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    const items = all.slice(0, limit).map((r) => this.toKV(r));
    const more = all.length > items.length;
    return { items, revision, more, ...(more ? { remaining: all.length - items.length } : {}) };
  }

  async count(prefix: string): Promise<number> {
    return this.liveKeys(prefix, this.rev).length;
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
    // Check every op against the state as it will be when the op runs (earlier ops of
    // the same txn included), then apply all. Nothing is written if any check fails.
    const pending = new Map<string, Row | undefined>();
    const latest = (key: string) => (pending.has(key) ? pending.get(key) : this.at(key, this.rev));
    let next = this.rev;
    const ts = this.now();
    const staged: Row[] = [];
    for (const op of ops) {
      const cur = latest(op.key);
      const live = cur && !cur.deleted ? cur : undefined;
      next++;
      let row: Row;
      if (op.op === "create") {
        if (live) throw storeErrors.exists(op.key);
        row = { rev: next, key: op.key, value: op.value, createRev: next, deleted: false, ts };
      } else {
        if (!live) throw storeErrors.missing(op.key);
        if (op.expectedRevision !== undefined && op.expectedRevision !== live.rev) throw storeErrors.stale(op.key);
        row =
          op.op === "update"
            ? { rev: next, key: op.key, value: op.value, createRev: live.createRev, deleted: false, ts, prev: live.value }
            : { rev: next, key: op.key, value: live.value, createRev: live.createRev, deleted: true, ts };
      }
      pending.set(op.key, row);
      staged.push(row);
    }
    const events: WatchEvent[] = [];
    for (const row of staged) {
      this.rows.push(row);
      let hist = this.byKey.get(row.key);
      if (!hist) this.byKey.set(row.key, (hist = []));
      hist.push(row);
      events.push(this.event(row, true));
    }
    this.rev = next;
    this.hub.publish(events);
    return staged.map((r) => this.toKV(r));
  }

  private event(r: Row, withPrev: boolean): WatchEvent {
    if (r.deleted) return { type: "delete", kv: this.toKV(r) };
    return withPrev && r.prev !== undefined ? { type: "put", kv: this.toKV(r), prev: r.prev } : { type: "put", kv: this.toKV(r) };
  }

  async batch(txns: TxnOp[][]): Promise<(KV[] | ApiError)[]> {
    const out: (KV[] | ApiError)[] = [];
    for (const ops of txns) {
      try {
        out.push(await this.txn(ops));
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        out.push(e);
      }
    }
    return out;
  }

  async changes(prefix: string | string[], afterRevision: number, limit = 1000): Promise<ChangesResult> {
    if (afterRevision < this.compacted) throw storeErrors.compacted(afterRevision, this.compacted);
    const prefixes = typeof prefix === "string" ? [prefix] : prefix;
    const events: WatchEvent[] = [];
    let more = false;
    for (const r of this.rows) {
      if (r.rev <= afterRevision || !prefixes.some((p) => r.key.startsWith(p))) continue;
      if (events.length === limit) {
        more = true;
        break;
      }
      events.push(this.event(r, false));
    }
    return { events, revision: this.rev, more };
  }

  async watch(prefix: string, afterRevision: number, withPrev = false): Promise<Watch> {
    if (afterRevision < this.compacted) throw storeErrors.compacted(afterRevision, this.compacted);
    const w = new QueueWatch();
    for (const r of this.rows) {
      if (r.rev > afterRevision && r.key.startsWith(prefix)) w.send(this.event(r, withPrev));
    }
    const off = this.hub.add(prefix, w, withPrev);
    w.setOnClose(off);
    return w;
  }

  /** Runs one compaction pass, as the StoreDO's alarm does. Returns the compacted revision. */
  compact(): number {
    const target = planCompaction(this.rev, this.compacted, this.retention, this.now(), (cutoff) => {
      let best = 0;
      for (const r of this.rows) if (r.ts <= cutoff) best = r.rev;
      return best;
    });
    if (target <= this.compacted) return this.compacted;
    const drop = new Set<Row>();
    for (const hist of this.byKey.values()) {
      let keep: Row | undefined;
      for (const r of hist) if (r.rev <= target) keep = r;
      for (const r of hist) if (r.rev <= target && (r !== keep || r.deleted)) drop.add(r);
    }
    this.rows = this.rows.filter((r) => !drop.has(r));
    for (const [key, hist] of this.byKey) {
      const left = hist.filter((r) => !drop.has(r));
      if (left.length) this.byKey.set(key, left);
      else this.byKey.delete(key);
    }
    this.compacted = target;
    return target;
  }

  /** Sends a progress event to every watcher. */
  progress(): void {
    this.hub.progress(this.rev);
  }
}
