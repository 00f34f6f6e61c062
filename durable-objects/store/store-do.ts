// StoreDO: the cluster's source of truth, one per cluster (idFromName(cluster)). A thin
// class: it wires SQLite storage, the compaction alarm, watch streams and commit
// notifications to the SqlLog, and exposes the Store operations over RPC.
//
// RPC results are envelopes ({ ok } | { err }) rather than thrown errors, because an
// error's class and fields do not survive Workers RPC; RemoteStore (remote.ts) turns
// them back into ApiErrors.

import { DurableObject } from "cloudflare:workers";
import { type DrizzleSqliteDODatabase, drizzle } from "drizzle-orm/durable-sqlite";
import { migrate } from "drizzle-orm/durable-sqlite/migrator";
import { type Env, intVar } from "../../workers/env.ts";
import { ApiError, internal, toWire, type WireError } from "../../workers/shared/errors.ts";
import { SUBSCRIBER_INTERESTS } from "../interests.ts";
import { type KubeLineOptions, kubeLine } from "./kube-lines.ts";
import migrations from "./migrations/migrations.js";
import { Notifier } from "./notify.ts";
import { SqlLog } from "./sql-log.ts";
import type { ChangesResult, KV, ListOptions, ListResult, RetentionPolicy, TxnOp, WatchEvent } from "./types.ts";
import { encodeEvent, SLOW_WATCHER, WatchHub, type WatchSink } from "./watch.ts";

export type Envelope<T> = { ok: T; err?: undefined } | { ok?: undefined; err: WireError };

function wrap<T>(fn: () => T): Envelope<T> {
  try {
    return { ok: fn() };
  } catch (e) {
    if (e instanceof ApiError) return { err: toWire(e) };
    console.error("store error", e);
    return { err: toWire(internal(e instanceof Error ? e.message : String(e))) };
  }
}

/** Bytes a watcher may leave unread before it is cut off (it must then re-watch). */
const MAX_WATCHER_BACKLOG = 16 * 1024 * 1024;

/** A watch stream writer with a bounded backlog. */
class StreamSink implements WatchSink {
  private backlog = 0;
  private lastProgress = 0;
  closed = false;

  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private readonly onEnd: () => void;
  /** Progress lines closer together than this are dropped (kube BOOKMARK pacing). */
  private readonly progressEveryMs: number;
  private readonly slowLine: Uint8Array;

  constructor(
    writer: WritableStreamDefaultWriter<Uint8Array>,
    onEnd: () => void,
    progressEveryMs = 0,
    slowLine = encodeEvent(SLOW_WATCHER),
  ) {
    this.writer = writer;
    this.onEnd = onEnd;
    this.progressEveryMs = progressEveryMs;
    this.slowLine = slowLine;
  }

  send(ev: WatchEvent, line: Uint8Array): void {
    if (this.closed) return;
    if (ev.type === "progress" && this.progressEveryMs > 0) {
      const now = Date.now();
      if (now - this.lastProgress < this.progressEveryMs) return;
      this.lastProgress = now;
    }
    if (this.backlog > MAX_WATCHER_BACKLOG) {
      this.write(this.slowLine);
      this.end();
      return;
    }
    this.write(line);
  }

  private write(line: Uint8Array): void {
    const n = line.byteLength;
    this.backlog += n;
    this.writer.write(line).then(
      () => (this.backlog -= n),
      () => this.end(), // the reader went away
    );
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.writer.close().catch(() => {});
    this.onEnd();
  }
}

export class StoreDO extends DurableObject<Env> {
  private readonly db: DrizzleSqliteDODatabase;
  private log!: SqlLog;
  private readonly hub = new WatchHub();
  private subscribers: { prefixes: string[] | undefined; notifier: Notifier }[] | undefined;
  private progressTimer: ReturnType<typeof setInterval> | null = null;
  private readonly retention: RetentionPolicy;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.db = drizzle(ctx.storage, { logger: false });
    this.retention = {
      minAgeMs: intVar(env.COMPACT_MIN_AGE_SECONDS, 300) * 1000,
      minRevisions: intVar(env.COMPACT_MIN_REVISIONS, 10_000),
    };
    ctx.blockConcurrencyWhile(async () => {
      await migrate(this.db, migrations);
      this.log = new SqlLog(this.db, (fn) => ctx.storage.transactionSync(fn));
      if ((await ctx.storage.getAlarm()) === null) await this.scheduleCompaction();
    });
  }

  private async scheduleCompaction(): Promise<void> {
    await this.ctx.storage.setAlarm(Date.now() + intVar(this.env.COMPACT_INTERVAL_SECONDS, 60) * 1000);
  }

  override async alarm(): Promise<void> {
    try {
      this.log.compact(this.retention);
    } finally {
      await this.scheduleCompaction();
    }
  }

  /**
   * One notifier per subscriber (binding names in STORE_SUBSCRIBERS), each kicked only
   * by commits under the prefixes it follows (interests.ts). A notifier keeps at most
   * one notification in flight, so a subscriber is woken once per round trip.
   */
  private subscriberNotifiers(): { prefixes: string[] | undefined; notifier: Notifier }[] {
    if (this.subscribers) return this.subscribers;
    const names = (this.env.STORE_SUBSCRIBERS ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const cluster = this.env.CLUSTER_NAME || "default";
    this.subscribers = [];
    for (const name of names) {
      const ns = (this.env as unknown as Record<string, DurableObjectNamespace>)[name];
      if (!ns) continue;
      const stub = ns.get(ns.idFromName(cluster)) as unknown as { notify(rev: number, resync: boolean): Promise<void> };
      this.subscribers.push({
        prefixes: SUBSCRIBER_INTERESTS[name],
        notifier: new Notifier((rev, resync) => stub.notify(rev, resync)),
      });
    }
    return this.subscribers;
  }

  private committed(events: WatchEvent[]): void {
    this.hub.publish(events);
    const rev = this.log.currentRevision;
    for (const sub of this.subscriberNotifiers()) {
      const prefixes = sub.prefixes;
      const touched =
        !prefixes || events.some((e) => (e.type === "put" || e.type === "delete") && prefixes.some((p) => e.kv.key.startsWith(p)));
      if (touched) sub.notifier.kick(rev);
    }
  }

  // ---- Store operations (RPC) ----

  revisions(): { current: number; compacted: number } {
    return { current: this.log.currentRevision, compacted: this.log.compactedRevision };
  }

  get(key: string, revision?: number): Envelope<KV | null> {
    return wrap(() => this.log.get(key, revision));
  }

  list(prefix: string, opts?: ListOptions): Envelope<ListResult> {
    return wrap(() => this.log.list(prefix, opts));
  }

  count(prefix: string): Envelope<number> {
    return wrap(() => this.log.count(prefix));
  }

  txn(ops: TxnOp[]): Envelope<KV[]> {
    return wrap(() => {
      const { results, events } = this.log.txn(ops);
      this.committed(events);
      return results;
    });
  }

  /**
   * Several independent transactions in one call (each succeeds or fails on its own):
   * lets the Worker batch concurrent writes into one round trip.
   */
  txnBatch(batch: TxnOp[][]): Envelope<KV[]>[] {
    const out: Envelope<KV[]>[] = [];
    const events: WatchEvent[] = [];
    for (const ops of batch) {
      out.push(
        wrap(() => {
          const r = this.log.txn(ops);
          events.push(...r.events);
          return r.results;
        }),
      );
    }
    if (events.length) this.committed(events);
    return out;
  }

  changes(prefix: string | string[], afterRevision: number, limit = 1000): Envelope<ChangesResult> {
    return wrap(() => {
      const events = this.log.history(prefix, afterRevision, false, limit + 1);
      const more = events.length > limit;
      if (more) events.length = limit;
      return { events, revision: this.log.currentRevision, more };
    });
  }

  /**
   * Opens a watch: replays history after afterRevision, then streams live events, as
   * NDJSON lines (see watch.ts). Progress lines are sent every WATCH_PROGRESS_MS.
   */
  watch(prefix: string, afterRevision: number, withPrev = false): Envelope<ReadableStream<Uint8Array>> {
    return wrap(() => {
      const history = this.log.history(prefix, afterRevision, withPrev);
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      const writer = writable.getWriter();
      let off = () => {};
      const sink = new StreamSink(writer, () => {
        off();
        if (this.hub.size === 0) this.stopProgress();
      });
      for (const ev of history) sink.send(ev, encodeEvent(ev, withPrev));
      sink.send(
        { type: "progress", revision: this.log.currentRevision },
        encodeEvent({ type: "progress", revision: this.log.currentRevision }),
      );
      off = this.hub.add(prefix, sink, withPrev);
      this.startProgress();
      return readable;
    });
  }

  /**
   * Like watch(), but for watchers without selectors: the stream carries finished
   * Kubernetes watch lines (kube-lines.ts), each rendered once for all such watchers.
   * BOOKMARKs (when bookmark is given) at most every bookmarkEveryMs.
   */
  watchLines(
    prefix: string,
    afterRevision: number,
    opts: KubeLineOptions & {
      bookmarkEveryMs?: number;
      /** Start with the current state as ADDED lines (afterRevision is then ignored). */
      initial?: boolean;
      /** After the initial state, a BOOKMARK marking its end (sendInitialEvents). */
      initialEndBookmark?: boolean;
      /** End the stream after this long (the watch's timeoutSeconds). */
      timeoutMs?: number;
    } = {},
  ): Envelope<ReadableStream<Uint8Array>> {
    return wrap(() => {
      const start: Uint8Array[] = [];
      if (opts.initial) {
        // Listed and registered in the same turn: nothing can commit in between.
        const res = this.log.list(prefix);
        afterRevision = res.revision;
        for (const kv of res.items) start.push(kubeLine({ type: "put", kv: { ...kv, createRevision: kv.modRevision } }, {})!);
        if (opts.initialEndBookmark && opts.bookmark) {
          const annotations = { "k8s.io/initial-events-end": "true" };
          const obj = { ...opts.bookmark, metadata: { resourceVersion: String(res.revision), annotations } };
          start.push(new TextEncoder().encode(`{"type":"BOOKMARK","object":${JSON.stringify(obj)}}\n`));
        }
      }
      const history = this.log.history(prefix, afterRevision);
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      const writer = writable.getWriter();
      let off = () => {};
      let timer: ReturnType<typeof setTimeout> | undefined;
      const sink = new StreamSink(
        writer,
        () => {
          if (timer) clearTimeout(timer);
          off();
          if (this.hub.size === 0) this.stopProgress();
        },
        opts.bookmarkEveryMs ?? 0,
        kubeLine(SLOW_WATCHER, {}),
      );
      const initialEvent: WatchEvent = { type: "put", kv: { key: prefix, value: "", createRevision: 0, modRevision: 0 } };
      for (const l of start) sink.send(initialEvent, l);
      const kubeOpts: KubeLineOptions = { bookmark: opts.bookmark };
      for (const ev of history) {
        const l = kubeLine(ev, kubeOpts);
        if (l) sink.send(ev, l);
      }
      off = this.hub.add(prefix, sink, false, kubeOpts);
      this.startProgress();
      if (opts.timeoutMs !== undefined) timer = setTimeout(() => sink.end(), opts.timeoutMs);
      return readable;
    });
  }

  private startProgress(): void {
    if (this.progressTimer) return;
    this.progressTimer = setInterval(
      () => {
        this.hub.progress(this.log.currentRevision);
        if (this.hub.size === 0) this.stopProgress();
      },
      intVar(this.env.WATCH_PROGRESS_MS, 5000),
    );
  }

  private stopProgress(): void {
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.progressTimer = null;
  }

  /** Runs one compaction pass now (tests, operators), optionally with another retention. */
  compact(retention?: RetentionPolicy): Envelope<number> {
    return wrap(() => this.log.compact(retention ?? this.retention));
  }
}
