// How objects are stored and read back. The stored value is the object's JSON with
// "metadata" as its first member and no metadata.resourceVersion: the revision of the
// row is the resourceVersion, so it is stamped in on the way out. Because "metadata"
// always opens the value, stamping is a string splice, not a parse and re-serialise:
// gets, lists and watches without selectors never parse stored objects.

import type { KV } from "../../durable-objects/store/types.ts";

export type Obj = Record<string, any>;

export { stampJSON } from "../../durable-objects/store/kube-lines.ts";

/** Serialises an object for storage (drops metadata.resourceVersion, puts metadata first). */
export function encodeObject(obj: Obj): string {
  const { metadata, ...rest } = obj;
  const { resourceVersion: _rv, ...meta } = metadata ?? {};
  return JSON.stringify({ metadata: meta, ...rest });
}

/** The stored object with resourceVersion = rv. */
export function decodeObject(value: string, rv: number): Obj {
  const o = JSON.parse(value);
  o.metadata ??= {};
  o.metadata.resourceVersion = String(rv);
  return o;
}

export function decodeKV(kv: KV): Obj {
  return decodeObject(kv.value, kv.modRevision);
}

/** Parses a resourceVersion string from a client; undefined for "" / undefined. */
export function parseResourceVersion(rv: unknown): number | undefined {
  if (rv === undefined || rv === null || rv === "") return undefined;
  if (typeof rv !== "string" || !/^\d{1,15}$/.test(rv)) return NaN;
  return Number(rv);
}
