// The one narrow interface between the cluster store and everything above it (API
// routes, scheduler, controllers). It knows keys, opaque string values and revisions;
// it knows nothing of Kubernetes objects. The revision of a row is the object's
// resourceVersion; the API layer stamps it onto objects when it decodes them.
//
// Errors: every method rejects with an ApiError from workers/shared/errors.ts:
//   AlreadyExists (409)  create of a live key
//   NotFound (404)       update/delete of a missing key
//   Conflict (409)       update/delete whose expectedRevision is not the key's current one
//   Expired (410)        a read or watch at a revision below the compacted revision
//   Timeout (504)        a read at a revision above the current one

import type { ApiError } from "../../workers/shared/errors.ts";

export interface KV {
  key: string;
  /** The object as stored (JSON text). For a delete event: the last value before deletion. */
  value: string;
  /** Revision of the write that created this incarnation of the key. */
  createRevision: number;
  /** Revision of the write that produced this value (the resourceVersion). */
  modRevision: number;
}

export interface ListOptions {
  /** Read as of this revision (a consistent snapshot); default: the current revision. */
  revision?: number;
  /** At most this many items; 0 or unset: no limit. */
  limit?: number;
  /** Start from this key (inclusive); must lie under the prefix. Used for continue tokens. */
  startKey?: string;
}

export interface ListResult {
  items: KV[];
  /** The revision the list was read at; a watch from it misses nothing. */
  revision: number;
  /** True if items were cut by limit. The next page starts after the last item's key. */
  more: boolean;
  /** When more is true: how many live keys remain after this page. */
  remaining?: number;
}

export type TxnOp =
  | { op: "create"; key: string; value: string }
  | { op: "update"; key: string; value: string; expectedRevision: number }
  | { op: "delete"; key: string; expectedRevision?: number };

export type WatchEvent =
  /** prev: the value before this write, when the watch asked for it and the key existed. */
  | { type: "put"; kv: KV; prev?: string }
  | { type: "delete"; kv: KV }
  /** Every event at or below `revision` has been delivered (for BOOKMARKs). */
  | { type: "progress"; revision: number }
  /** The watch ended on the store's side (e.g. the watcher fell too far behind). */
  | { type: "error"; code: number; reason: string; message: string };

export interface ChangesResult {
  events: WatchEvent[];
  revision: number;
  more: boolean;
}

export interface Watch extends AsyncIterable<WatchEvent> {
  /** Stops the watch; the iterator ends. Idempotent. */
  close(): void;
}

export interface Store {
  /** The newest committed revision. */
  currentRevision(): Promise<number>;
  /** The oldest revision that reads and watches may still start from. */
  compactedRevision(): Promise<number>;
  /** The live value of key, or null. At `revision`: the value as of that revision. */
  get(key: string, revision?: number): Promise<KV | null>;
  /** Live keys under prefix in key order. */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  /** Number of live keys under prefix. */
  count(prefix: string): Promise<number>;
  create(key: string, value: string): Promise<KV>;
  update(key: string, value: string, expectedRevision: number): Promise<KV>;
  /** Deletes key; with expectedRevision, only if it is still at that revision. Returns the deleted KV with modRevision = the deletion's revision. */
  delete(key: string, expectedRevision?: number): Promise<KV>;
  /** All ops or none; ops get consecutive revisions in order. Returns one KV per op. */
  txn(ops: TxnOp[]): Promise<KV[]>;
  /**
   * Several independent transactions in one round trip: each succeeds or fails on its
   * own (result: its KVs, or the ApiError it failed with), in order.
   */
  batch(txns: TxnOp[][]): Promise<(KV[] | ApiError)[]>;
  /**
   * The changes under prefix after afterRevision, oldest first, at most limit of them
   * (history only; no waiting). `revision` is the store's current revision; when
   * `more` is false the caller has seen everything up to it. 410 if compacted.
   */
  changes(prefix: string | string[], afterRevision: number, limit?: number): Promise<ChangesResult>;
  /**
   * Events for keys under prefix with revision > afterRevision: first the history, then
   * live. With withPrev, put events of existing keys carry the previous value (so a
   * filtered watch can tell an object leaving its selector).
   */
  watch(prefix: string, afterRevision: number, withPrev?: boolean): Promise<Watch>;
}

/** Compaction policy: keep history for at least minAgeMs and at least minRevisions revisions. */
export interface RetentionPolicy {
  minAgeMs: number;
  minRevisions: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { minAgeMs: 5 * 60_000, minRevisions: 10_000 };

/** Smallest key greater than every key that starts with prefix (for range scans). */
export function prefixEnd(prefix: string): string {
  if (!prefix) return "\u{10FFFF}";
  const last = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}
