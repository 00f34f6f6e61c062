// The SQLite log behind the StoreDO. Synchronous: every method runs inside one turn of
// the Durable Object, writes inside one transactionSync, so a write is atomic and is
// visible to readers and watchers together. drizzle and SQL stay in this folder.

import { and, asc, desc, eq, gt, gte, inArray, lt, lte, max, or, sql } from "drizzle-orm";
import type { DrizzleSqliteDODatabase } from "drizzle-orm/durable-sqlite";
import { alias } from "drizzle-orm/sqlite-core";
import { planCompaction, storeErrors } from "./log.ts";
import { kv, meta } from "./schema.ts";
import { type KV, type ListOptions, type ListResult, prefixEnd, type RetentionPolicy, type TxnOp, type WatchEvent } from "./types.ts";

type Row = typeof kv.$inferSelect;

function toKV(r: Row): KV {
  return { key: r.key, value: r.value, createRevision: r.createRevision, modRevision: r.id };
}

export function rowEvent(r: Row, prev?: string | null): WatchEvent {
  if (r.deleted) return { type: "delete", kv: toKV(r) };
  return prev == null ? { type: "put", kv: toKV(r) } : { type: "put", kv: toKV(r), prev };
}

/** Rows kept in memory as "newest row of this key" (write-through), to skip a SELECT per write. */
const LATEST_CACHE_ENTRIES = 20_000;

export class SqlLog {
  private rev = 0;
  private compacted = 0;
  /** key → newest row (live or tombstone). Insertion order approximates recency. */
  private readonly latestRows = new Map<string, Row>();
  private readonly q;

  private readonly db: DrizzleSqliteDODatabase;
  private readonly transaction: <T>(fn: () => T) => T;
  private readonly now: () => number;

  constructor(db: DrizzleSqliteDODatabase, transaction: <T>(fn: () => T) => T, now: () => number = Date.now) {
    this.db = db;
    this.transaction = transaction;
    this.now = now;
    // Prepared once: building drizzle queries per call cost more than SQLite itself.
    const key = sql.placeholder("key");
    this.q = {
      latest: db.select().from(kv).where(eq(kv.key, key)).orderBy(desc(kv.id)).limit(1).prepare(),
      latestAt: db
        .select()
        .from(kv)
        .where(and(eq(kv.key, key), lte(kv.id, sql.placeholder("rev"))))
        .orderBy(desc(kv.id))
        .limit(1)
        .prepare(),
      insert: db
        .insert(kv)
        .values({
          id: sql.placeholder("id"),
          key: sql.placeholder("key"),
          value: sql.placeholder("value"),
          createRevision: sql.placeholder("createRevision"),
          prevRevision: sql.placeholder("prevRevision"),
          deleted: sql.placeholder("deleted"),
          ts: sql.placeholder("ts"),
        })
        .prepare(),
    };

    const top = this.db
      .select({ m: max(kv.id) })
      .from(kv)
      .get();
    this.rev = top?.m ?? 0;
    const c = this.db.select().from(meta).where(eq(meta.name, "compacted")).get();
    this.compacted = c?.value ?? 0;
    if (this.compacted > this.rev) this.rev = this.compacted;
  }

  get currentRevision(): number {
    return this.rev;
  }

  get compactedRevision(): number {
    return this.compacted;
  }

  private checkRevision(revision: number): void {
    if (revision < this.compacted) throw storeErrors.compacted(revision, this.compacted);
    if (revision > this.rev) throw storeErrors.futureRevision(revision, this.rev);
  }

  private latest(key: string, revision?: number): Row | undefined {
    if (revision !== undefined) return this.q.latestAt.get({ key, rev: revision });
    const cached = this.latestRows.get(key);
    if (cached) return cached;
    const row = this.q.latest.get({ key });
    if (row) this.remember(row);
    return row;
  }

  private remember(row: Row): void {
    this.latestRows.delete(row.key);
    this.latestRows.set(row.key, row);
    if (this.latestRows.size > LATEST_CACHE_ENTRIES) {
      const oldest = this.latestRows.keys().next().value;
      if (oldest !== undefined) this.latestRows.delete(oldest);
    }
  }

  get(key: string, revision?: number): KV | null {
    if (revision !== undefined) this.checkRevision(revision);
    const r = this.latest(key, revision);
    return r && !r.deleted ? toKV(r) : null;
  }

  /** Newest row id per key in [from, end) as of revision. */
  private newestIds(from: string, end: string, revision: number) {
    return this.db
      .select({ id: max(kv.id) })
      .from(kv)
      .where(and(gte(kv.key, from), lt(kv.key, end), lte(kv.id, revision)))
      .groupBy(kv.key);
  }

  list(prefix: string, opts: ListOptions = {}): ListResult {
    const revision = opts.revision ?? this.rev;
    if (opts.revision !== undefined) this.checkRevision(opts.revision);
    const end = prefixEnd(prefix);
    const from = opts.startKey && opts.startKey > prefix ? opts.startKey : prefix;
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    let q = this.db
      .select()
      .from(kv)
      .where(and(inArray(kv.id, this.newestIds(from, end, revision)), eq(kv.deleted, false)))
      .orderBy(asc(kv.key))
      .$dynamic();
    if (limit) q = q.limit(limit + 1);
    const rows = q.all();
    const more = limit > 0 && rows.length > limit;
    if (more) rows.length = limit;
    const result: ListResult = { items: rows.map(toKV), revision, more };
    if (more) {
      const after = rows[rows.length - 1].key + "\u0000";
      result.remaining = this.countRange(after, end, revision);
    }
    return result;
  }

  private countRange(from: string, end: string, revision: number): number {
    const r = this.db
      .select({ n: sql<number>`count(*)` })
      .from(kv)
      .where(and(inArray(kv.id, this.newestIds(from, end, revision)), eq(kv.deleted, false)))
      .get();
    return r?.n ?? 0;
  }

  count(prefix: string): number {
    return this.countRange(prefix, prefixEnd(prefix), this.rev);
  }

  /**
   * Applies ops atomically. Each op is checked against the state left by the ops before
   * it; the first failing check throws and rolls the whole transaction back.
   */
  txn(ops: TxnOp[]): { results: KV[]; events: WatchEvent[] } {
    return this.transaction(() => {
      const ts = this.now();
      let next = this.rev;
      const results: KV[] = [];
      const events: WatchEvent[] = [];
      const written = new Map<string, Row>();
      for (const op of ops) {
        const cur = written.get(op.key) ?? this.latest(op.key);
        const live = cur && !cur.deleted ? cur : undefined;
        next++;
        let row: Row;
        if (op.op === "create") {
          if (live) throw storeErrors.exists(op.key);
          row = { id: next, key: op.key, value: op.value, createRevision: next, prevRevision: cur?.id ?? 0, deleted: false, ts };
        } else {
          if (!live) throw storeErrors.missing(op.key);
          if (op.expectedRevision !== undefined && op.expectedRevision !== live.id) throw storeErrors.stale(op.key);
          row =
            op.op === "update"
              ? { id: next, key: op.key, value: op.value, createRevision: live.createRevision, prevRevision: live.id, deleted: false, ts }
              : { id: next, key: op.key, value: live.value, createRevision: live.createRevision, prevRevision: live.id, deleted: true, ts };
        }
        this.q.insert.run({ ...row, deleted: row.deleted ? 1 : 0 });
        results.push(toKV(row));
        events.push(rowEvent(row, op.op === "update" ? live?.value : undefined));
        written.set(op.key, row);
      }
      // The cache learns the new rows only once the transaction body has succeeded.
      for (const row of written.values()) this.remember(row);
      // Only advance the in-memory revision once the transaction body has succeeded; a
      // throw above leaves it (and the database) untouched.
      this.rev = next;
      return { results, events };
    });
  }

  /** History under prefix after afterRevision, in revision order (at most limit rows). */
  history(prefix: string | string[], afterRevision: number, withPrev = false, limit = 0): WatchEvent[] {
    if (afterRevision < this.compacted) throw storeErrors.compacted(afterRevision, this.compacted);
    const ranges = (typeof prefix === "string" ? [prefix] : prefix).map((p) => and(gte(kv.key, p), lt(kv.key, prefixEnd(p))));
    const where = and(gt(kv.id, afterRevision), ranges.length === 1 ? ranges[0] : or(...ranges));
    if (!withPrev) {
      const q = this.db.select().from(kv).where(where).orderBy(asc(kv.id)).$dynamic();
      return (limit > 0 ? q.limit(limit) : q).all().map((r) => rowEvent(r));
    }
    const prev = alias(kv, "prev");
    return this.db
      .select({ row: kv, prevValue: prev.value, prevDeleted: prev.deleted })
      .from(kv)
      .leftJoin(prev, eq(prev.id, kv.prevRevision))
      .where(where)
      .orderBy(asc(kv.id))
      .all()
      .map((r) => rowEvent(r.row, r.prevDeleted ? null : r.prevValue));
  }

  /** One compaction pass under the retention policy. Returns the compacted revision. */
  compact(retention: RetentionPolicy): number {
    const target = planCompaction(this.rev, this.compacted, retention, this.now(), (cutoff) => {
      const r = this.db.select({ id: kv.id }).from(kv).where(lte(kv.ts, cutoff)).orderBy(desc(kv.id)).limit(1).get();
      return r?.id ?? 0;
    });
    if (target <= this.compacted) return this.compacted;
    this.transaction(() => {
      // Keep, per key, only the newest row at or below target, and drop it too if it is a
      // tombstone. Rows above target are untouched, so reads and watches from any
      // revision >= target see exactly what they saw before.
      this.db.run(
        sql`DELETE FROM kv WHERE id <= ${target} AND (deleted = 1 OR id < (SELECT MAX(k2.id) FROM kv k2 WHERE k2.key = kv.key AND k2.id <= ${target}))`,
      );
      this.db
        .insert(meta)
        .values({ name: "compacted", value: target })
        .onConflictDoUpdate({ target: meta.name, set: { value: target } })
        .run();
    });
    this.compacted = target;
    return target;
  }
}
