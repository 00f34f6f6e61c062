// Pure pieces of the log-structured store shared by the SQLite and in-memory
// implementations: the errors each operation can raise and the compaction plan.

import { ApiError, expired } from "../../workers/shared/errors.ts";
import type { RetentionPolicy } from "./types.ts";

export const storeErrors = {
  exists: (key: string) => new ApiError(409, "AlreadyExists", `key ${key} already exists`, { name: key }),
  missing: (key: string) => new ApiError(404, "NotFound", `key ${key} not found`, { name: key }),
  stale: (key: string) => new ApiError(409, "Conflict", `key ${key} was modified since the expected revision`, { name: key }),
  compacted: (revision: number, compacted: number) =>
    expired(`The resourceVersion for the provided watch is too old: ${revision} is below the compacted revision ${compacted}`),
  futureRevision: (revision: number, current: number) =>
    new ApiError(504, "Timeout", `Too large resource version: ${revision}, current: ${current}`, { retryAfterSeconds: 1 }),
};

/**
 * The revision to compact up to: history is kept for at least retention.minAgeMs and
 * for at least retention.minRevisions revisions, and the newest row is never touched
 * (so the current revision survives a restart). Returns `compacted` when there is
 * nothing to do. revAtOrBefore(ts) gives the newest revision written at or before ts.
 */
export function planCompaction(
  current: number,
  compacted: number,
  retention: RetentionPolicy,
  now: number,
  revAtOrBefore: (ts: number) => number,
): number {
  const byCount = current - Math.max(retention.minRevisions, 1);
  if (byCount <= compacted) return compacted;
  const byAge = revAtOrBefore(now - retention.minAgeMs);
  const target = Math.min(byCount, byAge);
  return target > compacted ? target : compacted;
}
