// The generic object registry: what every resource's verbs do against the Store (get,
// list, create, update, patch, delete, deletecollection), with kube-apiserver's
// semantics. Routes (routes.ts) parse HTTP; this file knows objects; the Store knows
// keys and revisions. Every write is a compare-and-swap on the revision it read.

import type { KV, Store } from "../../durable-objects/store/types.ts";
import { ApiError, alreadyExists, badRequest, conflict, expired, notFound, type ResourceRef, STALE_OBJECT } from "../shared/errors.ts";
import { applyPatch, deepEqual, type PatchType } from "../shared/patch.ts";
import { apiVersionOf, keyPrefix, lookupResource, objectKey, type ResourceInfo } from "../shared/resources.ts";
import {
  checkFieldSelector,
  exactField,
  type FieldSelector,
  type LabelSelector,
  matchFields,
  matchLabels,
  parseFieldSelector,
  parseLabelSelector,
} from "../shared/selectors.ts";
import { decodeKV, encodeObject, type Obj, parseResourceVersion, stampJSON } from "./codec.ts";
import { deleteService, isService, writeService } from "./services.ts";
import { applyServerSide, updateManagedFields } from "./ssa.ts";
import { allowCreateOnUpdate, checkKind, hasPendingFinalizers, prepareCreate, prepareUpdate, rfc3339 } from "./strategy.ts";

export interface Target {
  info: ResourceInfo;
  namespace?: string;
  name?: string;
}

export interface Ctx {
  store: Store;
  now: () => Date;
  /** SERVICE_CIDR and SERVICE_NODE_PORT_RANGE as configured (defaults when unset). */
  services?: { cidr?: string; nodePorts?: string };
}

/**
 * Objects this isolate recently read or wrote, by key: each entry is a true fact (the
 * value at that revision), so a read-modify-write may start from it instead of a store
 * round trip. If it is stale the compare-and-swap fails and the write re-reads.
 */
const RECENT_MAX = 5_000;
const recent = new Map<string, KV>();

function remember(kv: KV): void {
  recent.delete(kv.key);
  recent.set(kv.key, kv);
  if (recent.size > RECENT_MAX) {
    const oldest = recent.keys().next().value;
    if (oldest !== undefined) recent.delete(oldest);
  }
}

function forget(key: string): void {
  recent.delete(key);
}

/**
 * Namespaces this isolate saw exist recently (key → until when). kube-apiserver's
 * NamespaceLifecycle admission reads namespaces from an informer, so it is eventually
 * consistent in the same way; deletes through this isolate drop the entry at once.
 */
const NAMESPACE_TTL_MS = 2_000;
const namespacesSeen = new Map<string, number>();

export function refOf(t: Target, name = t.name): ResourceRef {
  return { group: t.info.group, resource: t.info.resource, name };
}

function keyOf(t: Target, name = t.name!): string {
  return objectKey(t.info, t.namespace, name);
}

/** Translates the store's key-level errors into the resource-level ones clients expect. */
function storeError(e: unknown, t: Target, name = t.name): never {
  if (e instanceof ApiError && e.code !== 410 && e.code !== 504) {
    if (e.reason === "AlreadyExists") throw alreadyExists(refOf(t, name));
    if (e.reason === "NotFound") throw notFound(refOf(t, name));
    if (e.reason === "Conflict") throw conflict(refOf(t, name), STALE_OBJECT);
  }
  throw e;
}

// ---------------------------------------------------------------- get

export async function getObject(ctx: Ctx, t: Target): Promise<KV> {
  const kv = await ctx.store.get(keyOf(t));
  if (!kv) throw notFound(refOf(t));
  return kv;
}

export async function getJSON(ctx: Ctx, t: Target, query: URLSearchParams): Promise<string> {
  const rv = parseResourceVersion(query.get("resourceVersion") ?? undefined);
  if (Number.isNaN(rv)) throw badRequest(`invalid resourceVersion "${query.get("resourceVersion")}"`);
  const kv = await ctx.store.get(keyOf(t));
  if (!kv) throw notFound(refOf(t));
  remember(kv);
  return stampJSON(kv.value, kv.modRevision);
}

// ---------------------------------------------------------------- list

export interface Selectors {
  labels: LabelSelector;
  fields: FieldSelector;
}

export function parseSelectors(info: ResourceInfo, query: URLSearchParams): Selectors {
  const labels = parseLabelSelector(query.get("labelSelector"));
  const fields = parseFieldSelector(query.get("fieldSelector"));
  checkFieldSelector(fields, ["metadata.name", "metadata.namespace", ...info.fieldSelectors]);
  return { labels, fields };
}

export function selects(sel: Selectors, obj: Obj): boolean {
  return matchLabels(sel.labels, obj.metadata?.labels) && matchFields(sel.fields, obj);
}

export function hasSelectors(sel: Selectors): boolean {
  return sel.labels.length > 0 || sel.fields.length > 0;
}

/** The narrowest store prefix a request (namespace in the path or a field selector) allows. */
export function scanPrefix(t: Target, sel: Selectors): { prefix: string; namespace?: string } {
  let ns = t.namespace;
  if (t.info.namespaced && !ns) ns = exactField(sel.fields, "metadata.namespace");
  return { prefix: keyPrefix(t.info, ns), namespace: ns };
}

interface ContinueToken {
  rv: number;
  start: string;
}

function encodeContinue(c: ContinueToken): string {
  return btoa(JSON.stringify({ v: "kf1", rv: c.rv, start: c.start }))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

function decodeContinue(s: string, prefix: string): ContinueToken {
  try {
    const o = JSON.parse(atob(s.replace(/-/g, "+").replace(/_/g, "/")));
    if (o.v !== "kf1" || typeof o.rv !== "number" || typeof o.start !== "string" || !o.start.startsWith(prefix)) throw new Error();
    return { rv: o.rv, start: o.start };
  } catch {
    throw badRequest("continue key is not valid");
  }
}

function parseLimit(query: URLSearchParams): number {
  const s = query.get("limit");
  if (s === null || s === "") return 0;
  if (!/^\d+$/.test(s)) throw badRequest(`invalid limit "${s}"`);
  return Number(s);
}

/** Returns the list as a JSON string (items are spliced, not re-serialised, when possible). */
export async function listJSON(ctx: Ctx, t: Target, query: URLSearchParams): Promise<string> {
  const sel = parseSelectors(t.info, query);
  const { prefix } = scanPrefix(t, sel);
  const limit = parseLimit(query);
  const cont = query.get("continue");
  const rvParam = query.get("resourceVersion") ?? "";
  const match = query.get("resourceVersionMatch") ?? "";
  const rv = parseResourceVersion(rvParam);
  if (Number.isNaN(rv)) throw badRequest(`invalid resourceVersion "${rvParam}"`);
  if (match && match !== "Exact" && match !== "NotOlderThan") throw badRequest(`invalid resourceVersionMatch "${match}"`);
  if (match && rv === undefined) throw badRequest("resourceVersionMatch is forbidden unless resourceVersion is provided");

  let revision: number | undefined;
  let start: string | undefined;
  if (cont) {
    if (rv !== undefined && rvParam !== "0") throw badRequest("specifying resource version is not allowed when using continue");
    const tok = decodeContinue(cont, prefix);
    revision = tok.rv;
    start = tok.start;
  } else if (rv !== undefined && match === "Exact") {
    revision = rv;
  }

  const items: string[] = [];
  let more = false;
  let next: string | undefined;
  let remaining: number | undefined;
  let listRevision = 0;
  const filtering = hasSelectors(sel);
  const nameOnly = exactField(sel.fields, "metadata.name");
  try {
    if (nameOnly !== undefined && (!t.info.namespaced || scanPrefix(t, sel).namespace)) {
      // A single key: read it directly instead of scanning the prefix.
      const key = prefix + nameOnly;
      const res = await ctx.store.list(key, { revision, limit: 1 });
      listRevision = res.revision;
      for (const kv of res.items) {
        if (kv.key !== key) continue;
        const obj = decodeKV(kv);
        if (selects(sel, obj)) items.push(JSON.stringify(obj));
      }
    } else {
      for (;;) {
        const want = limit ? limit - items.length : 0;
        const res = await ctx.store.list(prefix, { revision, limit: filtering && want ? Math.max(want, 100) : want, startKey: start });
        listRevision = res.revision;
        revision = res.revision; // later pages read the same snapshot
        let lastKey: string | undefined;
        for (const kv of res.items) {
          lastKey = kv.key;
          if (filtering) {
            const obj = decodeKV(kv);
            if (!selects(sel, obj)) continue;
            items.push(JSON.stringify(obj));
          } else {
            items.push(stampJSON(kv.value, kv.modRevision));
          }
          if (limit && items.length >= limit) break;
        }
        const cutHere = limit > 0 && items.length >= limit && (res.more || lastKey !== res.items[res.items.length - 1]?.key);
        if (cutHere) {
          more = true;
          next = lastKey! + "\u0000";
          if (!filtering) remaining = (res.remaining ?? 0) + (res.items.length - res.items.findIndex((k) => k.key === lastKey) - 1);
          break;
        }
        if (!res.more) break;
        start = res.items[res.items.length - 1].key + "\u0000";
      }
    }
  } catch (e) {
    if (e instanceof ApiError && e.code === 410 && cont) {
      throw expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
      );
    }
    throw e;
  }
  if (rv !== undefined && match !== "Exact" && !cont && rv > listRevision) {
    throw new ApiError(504, "Timeout", `Too large resource version: ${rv}, current: ${listRevision}`, { retryAfterSeconds: 1 });
  }
  const meta: Obj = { resourceVersion: String(listRevision) };
  if (more && next) {
    meta.continue = encodeContinue({ rv: listRevision, start: next });
    if (remaining !== undefined && remaining > 0) meta.remainingItemCount = remaining;
  }
  return `{"kind":${JSON.stringify(t.info.listKind)},"apiVersion":${JSON.stringify(apiVersionOf(t.info))},"metadata":${JSON.stringify(meta)},"items":[${items.join(",")}]}`;
}

// ---------------------------------------------------------------- create

const GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

function randomSuffix(n = 5): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  let s = "";
  for (const b of bytes) s += GEN_ALPHABET[b % GEN_ALPHABET.length];
  return s;
}

export interface WriteOptions {
  dryRun: boolean;
  /**
   * Who is writing, for metadata.managedFields (the fieldManager parameter or the
   * client's User-Agent). Controllers inside the control plane write without one.
   */
  fieldManager?: string;
  /** create() called by apply(): managedFields are already set. */
  skipManagedFields?: boolean;
}

/** Checks the namespace exists and is not terminating (as the NamespaceLifecycle admission plugin does). */
async function checkNamespace(ctx: Ctx, t: Target): Promise<void> {
  if (!t.info.namespaced) return;
  const nsInfo = lookupResource("", "v1", "namespaces")!;
  const nsKey = objectKey(nsInfo, undefined, t.namespace!);
  if ((namespacesSeen.get(nsKey) ?? 0) > Date.now()) return;
  const kv = await ctx.store.get(nsKey);
  if (!kv) throw notFound({ group: "", resource: "namespaces", name: t.namespace });
  const ns = JSON.parse(kv.value);
  if (ns.metadata?.deletionTimestamp || ns.status?.phase === "Terminating") {
    throw new ApiError(
      403,
      "Forbidden",
      `${t.info.resource} "${t.name ?? ""}" is forbidden: unable to create new content in namespace ${t.namespace} because it is being terminated`,
      {
        name: t.name,
        kind: t.info.resource,
      },
    );
  }
  namespacesSeen.set(nsKey, Date.now() + NAMESPACE_TTL_MS);
}

export async function create(ctx: Ctx, t: Target, body: unknown, opts: WriteOptions): Promise<Obj> {
  const obj = checkKind(t.info, body);
  const m = obj.metadata;
  if (t.info.namespaced) {
    if (m.namespace !== undefined && m.namespace !== "" && m.namespace !== t.namespace) {
      throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    m.namespace = t.namespace;
  }
  const generate = !m.name && typeof m.generateName === "string" && m.generateName !== "";
  for (let attempt = 0; ; attempt++) {
    if (generate) m.name = m.generateName + randomSuffix();
    const target = { ...t, name: m.name };
    await checkNamespace(ctx, target);
    const now = ctx.now();
    const prepared = prepareCreate(t.info, structuredClone(obj), now, crypto.randomUUID());
    if (opts.fieldManager && !opts.skipManagedFields) updateManagedFields(undefined, prepared, { manager: opts.fieldManager, now });
    if (opts.dryRun) {
      const existing = await ctx.store.get(keyOf(target));
      if (existing) throw alreadyExists(refOf(target));
      if (isService(t.info)) await writeService(ctx, keyOf(target), prepared, undefined, undefined, true);
      return prepared;
    }
    try {
      const kv = isService(t.info)
        ? (await writeService(ctx, keyOf(target), prepared, undefined, undefined, false))!
        : await ctx.store.create(keyOf(target), encodeObject(prepared));
      remember(kv);
      prepared.metadata.resourceVersion = String(kv.modRevision);
      return prepared;
    } catch (e) {
      if (generate && e instanceof ApiError && e.reason === "AlreadyExists" && attempt < 8) continue;
      storeError(e, target);
    }
  }
}

// ---------------------------------------------------------------- update / patch

export interface UpdateOptions extends WriteOptions {
  subresource?: string;
}

/**
 * Read-modify-write with compare-and-swap, retried on conflict unless the client
 * pinned a resourceVersion (then the conflict is theirs to resolve). mutate gets the
 * current object and returns the desired one; returning the same content writes
 * nothing. An object marked for deletion whose last finalizer goes is deleted.
 */
export async function guaranteedUpdate(
  ctx: Ctx,
  t: Target,
  mutate: (cur: Obj) => Obj | Promise<Obj>,
  opts: UpdateOptions & { pinnedRV?: number; createIfMissing?: () => Promise<Obj>; apply?: boolean },
): Promise<Obj> {
  const key = keyOf(t);
  let useHint = true;
  for (let attempt = 0; ; attempt++) {
    // First attempt: start from what this isolate last saw, if it can be right.
    let kv: KV | null | undefined = useHint && attempt === 0 ? recent.get(key) : undefined;
    if (kv && opts.pinnedRV !== undefined && kv.modRevision !== opts.pinnedRV) kv = undefined;
    const hinted = kv !== undefined;
    if (kv === undefined) kv = await ctx.store.get(key);
    if (!kv) {
      if (opts.createIfMissing) return opts.createIfMissing();
      throw notFound(refOf(t));
    }
    if (opts.pinnedRV !== undefined && opts.pinnedRV !== kv.modRevision) throw conflict(refOf(t), STALE_OBJECT);
    const cur = decodeKV(kv);
    const desired = await mutate(structuredClone(cur));
    const next = prepareUpdate(t.info, cur, desired, opts.subresource);
    delete next.metadata.resourceVersion;
    if (opts.apply) {
      // applyServerSide computed managedFields; prepareUpdate (/status) may have copied old metadata.
      const mf = desired.metadata?.managedFields;
      if (mf === undefined) delete next.metadata.managedFields;
      else next.metadata.managedFields = mf;
    } else if (opts.fieldManager) {
      updateManagedFields(cur, next, { manager: opts.fieldManager, now: ctx.now(), subresource: opts.subresource });
    }
    // The last finalizer gone deletes the object, unless a graceful deletion (a pod on a
    // node) is still waiting for its agent, which completes it with grace 0.
    const finalize =
      next.metadata.deletionTimestamp && !hasPendingFinalizers(t.info, next) && !(next.metadata.deletionGracePeriodSeconds > 0);
    const curStored = { ...cur, metadata: { ...cur.metadata } };
    delete curStored.metadata.resourceVersion;
    if (!finalize && deepEqual(curStored, next)) {
      // No-op: nothing written, rv unchanged. A hint may be stale: confirm against the store.
      if (hinted && opts.pinnedRV === undefined) {
        useHint = false;
        attempt = -1;
        continue;
      }
      return cur;
    }
    // Services allocate (and release) cluster IPs and node ports with their main-endpoint writes.
    const allocates = isService(t.info) && opts.subresource === undefined && !finalize;
    if (opts.dryRun) {
      if (allocates) await writeService(ctx, key, next, cur, kv.modRevision, true);
      next.metadata.resourceVersion = String(kv.modRevision);
      return next;
    }
    try {
      if (finalize) {
        const del = isService(t.info) ? await deleteService(ctx, key, cur, kv.modRevision) : await ctx.store.delete(key, kv.modRevision);
        forget(key);
        if (t.info.resource === "namespaces") namespacesSeen.delete(key);
        next.metadata.resourceVersion = String(del.modRevision);
        return next;
      }
      const res = allocates
        ? (await writeService(ctx, key, next, cur, kv.modRevision, false))!
        : await ctx.store.update(key, encodeObject(next), kv.modRevision);
      remember(res);
      next.metadata.resourceVersion = String(res.modRevision);
      return next;
    } catch (e) {
      forget(key);
      if (e instanceof ApiError && (e.reason === "Conflict" || e.reason === "NotFound") && attempt < 16) {
        // A stale hint is not the client's conflict: re-read. With a pinned
        // resourceVersion that the store no longer has, the conflict is the client's.
        if (hinted || opts.pinnedRV === undefined) continue;
      }
      storeError(e, t);
    }
  }
}

function pinnedRV(obj: Obj): number | undefined {
  const rv = parseResourceVersion(obj?.metadata?.resourceVersion);
  if (Number.isNaN(rv)) throw badRequest(`invalid resourceVersion "${obj.metadata.resourceVersion}"`);
  return rv;
}

function checkUIDPrecondition(body: Obj, cur: Obj): void {
  const uid = body.metadata?.uid;
  if (uid && uid !== cur.metadata.uid) {
    throw new ApiError(409, "Conflict", `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${cur.metadata.uid}`);
  }
}

/** PUT. */
export async function update(ctx: Ctx, t: Target, body: unknown, opts: UpdateOptions): Promise<{ obj: Obj; created: boolean }> {
  const obj = checkKind(t.info, body);
  const m = obj.metadata;
  if (m.name !== undefined && m.name !== t.name) {
    throw badRequest(`the name of the object (${String(m.name)}) does not match the name on the URL (${t.name})`);
  }
  if (t.info.namespaced && m.namespace !== undefined && m.namespace !== "" && m.namespace !== t.namespace) {
    throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
  }
  m.name = t.name;
  let created = false;
  const result = await guaranteedUpdate(
    ctx,
    t,
    (cur) => {
      checkUIDPrecondition(obj, cur);
      return structuredClone(obj);
    },
    {
      ...opts,
      pinnedRV: pinnedRV(obj),
      createIfMissing:
        allowCreateOnUpdate(t.info) && !opts.subresource
          ? async () => {
              created = true;
              return create(ctx, t, structuredClone(obj), opts);
            }
          : undefined,
    },
  );
  return { obj: result, created };
}

/** PATCH (json, merge, strategic). */
export async function patch(ctx: Ctx, t: Target, type: PatchType, patchBody: unknown, opts: UpdateOptions): Promise<Obj> {
  let pinned: number | undefined;
  if (type !== "json" && patchBody && typeof patchBody === "object" && !Array.isArray(patchBody)) {
    pinned = pinnedRV(patchBody as Obj);
  }
  return guaranteedUpdate(
    ctx,
    t,
    (cur) => {
      const patched = applyPatch(type, cur, patchBody, t.info.kind);
      const obj = checkKind(t.info, patched);
      if (obj.metadata.name !== t.name) throw badRequest("the name of the object may not be changed by a patch");
      checkUIDPrecondition(obj, cur);
      // A resourceVersion in the patched object is a precondition, whichever patch type set it.
      const rv = obj.metadata.resourceVersion;
      if (rv !== undefined && rv !== cur.metadata.resourceVersion) {
        if (Number.isNaN(parseResourceVersion(rv))) throw badRequest(`invalid resourceVersion "${String(rv)}"`);
        throw conflict(refOf(t), STALE_OBJECT);
      }
      return obj;
    },
    { ...opts, pinnedRV: pinned },
  );
}

/**
 * Server-side apply (PATCH application/apply-patch+yaml): merges the caller's
 * configuration as fieldManager owns it, 409 on conflicts with other managers unless
 * force; creates the object when it does not exist (not on subresources).
 */
export async function apply(
  ctx: Ctx,
  t: Target,
  applied: unknown,
  opts: UpdateOptions & { force: boolean },
): Promise<{ obj: Obj; created: boolean }> {
  if (typeof applied !== "object" || applied === null || Array.isArray(applied))
    throw badRequest("the applied configuration must be an object");
  const cfg = applied as Obj;
  if (!opts.fieldManager) {
    throw new ApiError(
      422,
      "Invalid",
      'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
      {
        causes: [{ reason: "FieldValueRequired", message: "Required value: is required for apply patch", field: "fieldManager" }],
      },
    );
  }
  if (cfg.metadata?.name !== undefined && cfg.metadata.name !== t.name)
    throw badRequest("the name of the object does not match the name on the URL");
  const ssa = { manager: opts.fieldManager, force: opts.force, subresource: opts.subresource };
  let created = false;
  const obj = await guaranteedUpdate(
    ctx,
    t,
    (cur) => {
      const merged = checkKind(t.info, applyServerSide(cur, cfg, { ...ssa, now: ctx.now() }));
      if (merged.metadata.name !== t.name) throw badRequest("the name of the object may not be changed by apply");
      checkUIDPrecondition(merged, cur);
      const rv = merged.metadata.resourceVersion;
      if (rv !== undefined && rv !== cur.metadata.resourceVersion) {
        if (Number.isNaN(parseResourceVersion(rv))) throw badRequest(`invalid resourceVersion "${String(rv)}"`);
        throw conflict(refOf(t), STALE_OBJECT);
      }
      return merged;
    },
    {
      ...opts,
      apply: true,
      pinnedRV: pinnedRV(cfg),
      createIfMissing: opts.subresource
        ? undefined
        : async () => {
            created = true;
            const fresh = applyServerSide(
              undefined,
              { ...cfg, metadata: { ...(cfg.metadata ?? {}), name: t.name } },
              { ...ssa, now: ctx.now() },
            );
            return create(ctx, t, checkKind(t.info, fresh), { ...opts, skipManagedFields: true });
          },
    },
  );
  return { obj, created };
}

// ---------------------------------------------------------------- delete

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: string;
  preconditions?: { uid?: string; resourceVersion?: string };
  orphanDependents?: boolean;
  dryRun?: string[];
}

/** Reads DeleteOptions from the body and/or query parameters (the query wins, as in kube-apiserver). */
export function parseDeleteOptions(body: unknown, query: URLSearchParams): DeleteOptions {
  let o: DeleteOptions = {};
  if (body !== undefined && body !== null) {
    if (typeof body !== "object" || Array.isArray(body)) throw badRequest("DeleteOptions must be a JSON object");
    o = { ...(body as DeleteOptions) };
  }
  const g = query.get("gracePeriodSeconds");
  if (g !== null && g !== "") o.gracePeriodSeconds = Number(g);
  const p = query.get("propagationPolicy");
  if (p) o.propagationPolicy = p;
  if (o.gracePeriodSeconds !== undefined && (!Number.isInteger(o.gracePeriodSeconds) || o.gracePeriodSeconds < 0)) {
    if (Number.isInteger(o.gracePeriodSeconds) && o.gracePeriodSeconds < 0)
      o.gracePeriodSeconds = 1; // as kube-apiserver: negative means "as soon as possible"
    else throw badRequest("gracePeriodSeconds must be a non-negative integer");
  }
  if (o.propagationPolicy !== undefined && !["Background", "Foreground", "Orphan"].includes(o.propagationPolicy)) {
    throw new ApiError(
      422,
      "Invalid",
      `DeleteOptions.propagationPolicy: Unsupported value: "${o.propagationPolicy}": supported values: "Foreground", "Background", "Orphan"`,
    );
  }
  if (o.orphanDependents !== undefined && o.propagationPolicy !== undefined) {
    throw new ApiError(422, "Invalid", "DeleteOptions: orphanDependents and propagationPolicy cannot both be set");
  }
  return o;
}

/** Pods on a node are deleted gracefully: marked, and the node's agent completes it. */
function graceFor(info: ResourceInfo, obj: Obj, opts: DeleteOptions): number {
  if (info.resource !== "pods") return 0;
  if (!obj.spec?.nodeName) return 0;
  const phase = obj.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return 0;
  return opts.gracePeriodSeconds ?? obj.spec?.terminationGracePeriodSeconds ?? 30;
}

/**
 * DELETE of one object. Returns the object as deleted (or as marked for deletion) and
 * whether it is gone. Objects with finalizers, or pods that need a graceful stop, are
 * only marked with deletionTimestamp.
 */
export async function remove(ctx: Ctx, t: Target, opts: DeleteOptions, dryRun: boolean): Promise<{ obj: Obj; gone: boolean }> {
  for (let attempt = 0; ; attempt++) {
    const kv = await ctx.store.get(keyOf(t));
    if (!kv) throw notFound(refOf(t));
    const cur = decodeKV(kv);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== cur.metadata.uid) {
      throw new ApiError(409, "Conflict", `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) {
      throw new ApiError(
        409,
        "Conflict",
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`,
      );
    }
    const next = structuredClone(cur);
    const m = next.metadata;
    const finalizers: string[] = Array.isArray(m.finalizers) ? [...m.finalizers] : [];
    const policy = opts.propagationPolicy ?? (opts.orphanDependents ? "Orphan" : undefined);
    if (!m.deletionTimestamp) {
      if (policy === "Orphan" && !finalizers.includes("orphan")) finalizers.push("orphan");
      if (policy === "Foreground" && !finalizers.includes("foregroundDeletion")) finalizers.push("foregroundDeletion");
    }
    const grace = graceFor(t.info, cur, opts);
    const now = ctx.now();
    let write: "delete" | "mark" | "none";
    if (finalizers.length > 0) m.finalizers = finalizers;
    if (hasPendingFinalizers(t.info, next)) {
      write = cur.metadata.deletionTimestamp && deepEqual(finalizers, cur.metadata.finalizers ?? []) ? "none" : "mark";
      // Marked now, or marked before with a longer grace period that this request shortens.
      if (!m.deletionTimestamp || grace < (m.deletionGracePeriodSeconds ?? 0)) {
        m.deletionTimestamp = rfc3339(new Date(now.getTime() + grace * 1000));
        m.deletionGracePeriodSeconds = grace;
        write = "mark";
      }
      if (t.info.resource === "namespaces") next.status = { ...(next.status ?? {}), phase: "Terminating" };
    } else if (grace > 0) {
      const deadline = new Date(now.getTime() + grace * 1000);
      if (m.deletionTimestamp && (m.deletionGracePeriodSeconds ?? Infinity) <= grace) write = "none";
      else {
        write = "mark";
        m.deletionTimestamp = rfc3339(deadline);
        m.deletionGracePeriodSeconds = grace;
      }
    } else {
      write = "delete";
    }
    if (dryRun || write === "none") return { obj: write === "delete" ? cur : next, gone: write === "delete" };
    try {
      forget(keyOf(t));
      if (t.info.resource === "namespaces") namespacesSeen.delete(keyOf(t));
      if (write === "delete") {
        const del = isService(t.info)
          ? await deleteService(ctx, keyOf(t), cur, kv.modRevision)
          : await ctx.store.delete(keyOf(t), kv.modRevision);
        cur.metadata.resourceVersion = String(del.modRevision);
        return { obj: cur, gone: true };
      }
      delete m.resourceVersion;
      const res = await ctx.store.update(keyOf(t), encodeObject(next), kv.modRevision);
      m.resourceVersion = String(res.modRevision);
      return { obj: next, gone: false };
    } catch (e) {
      if (e instanceof ApiError && e.reason === "Conflict" && attempt < 16) continue;
      storeError(e, t);
    }
  }
}

/** DELETE on a collection: deletes every object the selectors match; returns them as a list. */
export async function removeCollection(ctx: Ctx, t: Target, query: URLSearchParams, opts: DeleteOptions, dryRun: boolean): Promise<Obj> {
  const sel = parseSelectors(t.info, query);
  const { prefix } = scanPrefix(t, sel);
  const res = await ctx.store.list(prefix);
  const items: Obj[] = [];
  for (const kv of res.items) {
    const obj = decodeKV(kv);
    if (!selects(sel, obj)) continue;
    try {
      const r = await remove(ctx, { info: t.info, namespace: obj.metadata.namespace, name: obj.metadata.name }, opts, dryRun);
      items.push(r.obj);
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) continue; // deleted meanwhile
      throw e;
    }
  }
  return { kind: t.info.listKind, apiVersion: apiVersionOf(t.info), metadata: { resourceVersion: String(res.revision) }, items };
}
