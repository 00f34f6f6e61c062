// Service writes with their ClusterIP and NodePort allocations. Every allocated IP or
// port is a record in the store (ALLOC_PREFIX, owner = the Service's namespace, name and
// uid), written, moved or deleted in the same store transaction as the Service itself:
// a failed write leaks nothing, a delete frees at once, and two writers that pick the
// same value collide on the record's create and the loser picks again. A record whose
// owner no longer holds its value (something wrote the Service around this file) is
// taken over when someone needs it: that is the self-repair. The arithmetic is pure
// (workers/shared/service-alloc.ts); this file reads records and commits.
//
// Called by registry.ts for the core Service resource only (create, main-endpoint
// update, delete). No resource lives under ALLOC_PREFIX, so records never appear in an
// API list or watch.

import type { KV, TxnOp } from "../../durable-objects/store/types.ts";
import { ApiError, type FieldError, internal, invalid } from "../shared/errors.ts";
import { lookupResource, objectKey, type ResourceInfo } from "../shared/resources.ts";
import {
  assignClaims,
  type Claims,
  clusterIPError,
  formatIPv4,
  heldIPs,
  heldNodePorts,
  IP_ALLOCATED,
  ipSlot,
  isKubernetesService,
  nodePortError,
  PORT_ALLOCATED,
  pickFree,
  planClaims,
  portSlot,
  randomSlot,
  type ServiceNetwork,
  type SlotRange,
  serviceNetwork,
} from "../shared/service-alloc.ts";
import { encodeObject, type Obj } from "./codec.ts";
import type { Ctx } from "./registry.ts";

export const ALLOC_PREFIX = "/registry/kubeflare.dev/allocations/";
const IP_PREFIX = `${ALLOC_PREFIX}clusterips/`;
const PORT_PREFIX = `${ALLOC_PREFIX}nodeports/`;
const SERVICES = lookupResource("", "v1", "services")!;

/** Optimistic attempts before a write gives up on a value others keep taking. */
const MAX_ATTEMPTS = 16;
/** Dynamic picks tried at random without reading the records first (large ranges only). */
const BLIND_ATTEMPTS = 3;
const BLIND_MIN_SIZE = 1024;

export function isService(info: ResourceInfo): boolean {
  return info.group === "" && info.resource === "services";
}

function networkOf(ctx: Ctx): ServiceNetwork {
  try {
    return serviceNetwork(ctx.services?.cidr, ctx.services?.nodePorts);
  } catch (e) {
    throw internal(e instanceof Error ? e.message : String(e));
  }
}

interface Owner {
  namespace: string;
  name: string;
  uid: string;
}

function ownerOf(svc: Obj): Owner {
  return { namespace: svc.metadata.namespace, name: svc.metadata.name, uid: svc.metadata.uid };
}

function parseOwner(kv: KV): Owner | undefined {
  try {
    const o = JSON.parse(kv.value);
    return typeof o?.uid === "string" ? o : undefined;
  } catch {
    return undefined;
  }
}

const ipKey = (ip: string) => IP_PREFIX + ip;
const portKey = (port: number) => PORT_PREFIX + String(port);

/** Whether the record's owner still exists and still holds the value (else the record is stale). */
async function ownerHolds(ctx: Ctx, rec: KV, holds: (svc: Obj) => boolean): Promise<boolean> {
  const o = parseOwner(rec);
  if (!o || typeof o.namespace !== "string" || typeof o.name !== "string") return false;
  const kv = await ctx.store.get(objectKey(SERVICES, o.namespace, o.name));
  if (!kv) return false;
  const svc = JSON.parse(kv.value);
  return svc?.metadata?.uid === o.uid && holds(svc);
}

/**
 * The op that makes `key` ours: create when absent, nothing when already ours, a
 * compare-and-swap takeover when stale. Returns "taken" when a live owner has it.
 */
async function claimOp(ctx: Ctx, key: string, owner: string, uid: string, holds: (svc: Obj) => boolean): Promise<TxnOp | null | "taken"> {
  const rec = await ctx.store.get(key);
  if (!rec) return { op: "create", key, value: owner };
  if (parseOwner(rec)?.uid === uid) return null;
  if (await ownerHolds(ctx, rec, holds)) return "taken";
  return { op: "update", key, value: owner, expectedRevision: rec.modRevision };
}

/** Delete ops for the records of values the Service gives up (only records it owns). */
async function releaseOps(ctx: Ctx, keys: string[], uid: string): Promise<TxnOp[]> {
  const recs = await Promise.all(keys.map((k) => ctx.store.get(k)));
  const ops: TxnOp[] = [];
  for (const rec of recs) {
    if (rec && parseOwner(rec)?.uid === uid) ops.push({ op: "delete", key: rec.key, expectedRevision: rec.modRevision });
  }
  return ops;
}

/**
 * A free slot for a dynamic allocation: blind (random, the transaction finds out) on the
 * first attempts in a large range, else from the records, taking over a stale record
 * when the range is full. Undefined: the range is full.
 */
async function pickSlot(
  ctx: Ctx,
  range: SlotRange,
  prefix: string,
  slotOf: (suffix: string) => number | undefined,
  skip: Set<number>,
  blind: boolean,
  /** Whether a Service holds the value of a slot. */
  holds: (slot: number) => (svc: Obj) => boolean,
): Promise<{ slot: number; expectedRevision?: number } | undefined> {
  if (blind && range.size >= BLIND_MIN_SIZE) {
    for (let i = 0; i < 8; i++) {
      const slot = randomSlot(range, Math.random);
      if (!skip.has(slot)) return { slot };
    }
  }
  const records = (await ctx.store.list(prefix)).items;
  const used = new Set(skip);
  for (const kv of records) {
    const s = slotOf(kv.key.slice(prefix.length));
    if (s !== undefined) used.add(s);
  }
  const slot = pickFree(range, (s) => used.has(s), Math.random);
  if (slot !== undefined) return { slot };
  // Full: look for a record whose owner no longer holds its value.
  for (const kv of records) {
    const s = slotOf(kv.key.slice(prefix.length));
    if (s === undefined || skip.has(s)) continue;
    if (!(await ownerHolds(ctx, kv, holds(s)))) return { slot: s, expectedRevision: kv.modRevision };
  }
  return undefined;
}

interface Resolved {
  ops: TxnOp[];
  ip?: string;
  dynamicPorts: number[];
}

/** Reads what the claims need and turns them into ops (or a 422 / 500). */
async function resolve(
  ctx: Ctx,
  net: ServiceNetwork,
  next: Obj,
  claims: Claims,
  fixedPorts: number[],
  attempt: number,
  dryRun: boolean,
): Promise<Resolved> {
  const owner = ownerOf(next);
  const ownerJSON = JSON.stringify(owner);
  const blind = !dryRun && attempt < BLIND_ATTEMPTS;
  const errs: FieldError[] = [];
  const ops: TxnOp[] = [];
  const holdsIP = (ip: string) => (svc: Obj) => heldIPs(svc).includes(ip);
  const holdsPort = (port: number) => (svc: Obj) => heldNodePorts(svc).includes(port);

  const explicitIP = claims.ip !== undefined && claims.ip !== "dynamic" ? claims.ip.ip : undefined;
  const [ipOp, ...portOps] = await Promise.all([
    explicitIP !== undefined ? claimOp(ctx, ipKey(explicitIP), ownerJSON, owner.uid, holdsIP(explicitIP)) : null,
    ...claims.explicitPorts.map((c) => claimOp(ctx, portKey(c.port), ownerJSON, owner.uid, holdsPort(c.port))),
  ]);
  if (ipOp === "taken") errs.push(clusterIPError(next, IP_ALLOCATED(explicitIP!)));
  else if (ipOp) ops.push(ipOp);
  portOps.forEach((op, i) => {
    const c = claims.explicitPorts[i];
    if (op === "taken") errs.push(nodePortError(c.index, c.port, PORT_ALLOCATED));
    else if (op) ops.push(op);
  });
  if (errs.length > 0) throw invalid("Service", "", next.metadata.name, errs);

  let ip = explicitIP;
  if (claims.ip === "dynamic") {
    const r = net.ips;
    // The first usable address is the "kubernetes" Service's (kube gives it that one).
    const skip = new Set(isKubernetesService(next) ? [] : [0]);
    const got = await pickSlot(
      ctx,
      r,
      IP_PREFIX,
      (s) => ipSlot(r, s),
      skip,
      blind,
      (s) => holdsIP(formatIPv4(r.first + s)),
    );
    if (!got) throw internal("failed to allocate a serviceIP: range is full");
    ip = formatIPv4(r.first + got.slot);
    ops.push(
      got.expectedRevision === undefined
        ? { op: "create", key: ipKey(ip), value: ownerJSON }
        : { op: "update", key: ipKey(ip), value: ownerJSON, expectedRevision: got.expectedRevision },
    );
  }

  const dynamicPorts: number[] = [];
  if (claims.dynamicPorts.length > 0) {
    const r = net.ports;
    const skip = new Set<number>();
    for (const p of fixedPorts) {
      const s = portSlot(r, p);
      if (s !== undefined) skip.add(s);
    }
    for (const _group of claims.dynamicPorts) {
      const got = await pickSlot(
        ctx,
        r,
        PORT_PREFIX,
        (s) => (/^[0-9]+$/.test(s) ? portSlot(r, Number(s)) : undefined),
        skip,
        blind,
        (s) => holdsPort(r.first + s),
      );
      if (!got) throw internal("failed to allocate a nodePort: range is full");
      skip.add(got.slot);
      const port = r.first + got.slot;
      dynamicPorts.push(port);
      ops.push(
        got.expectedRevision === undefined
          ? { op: "create", key: portKey(port), value: ownerJSON }
          : { op: "update", key: portKey(port), value: ownerJSON, expectedRevision: got.expectedRevision },
      );
    }
  }

  const release = [...claims.releaseIPs.map(ipKey), ...claims.releasePorts.map(portKey)];
  if (release.length > 0) ops.push(...(await releaseOps(ctx, release, owner.uid)));
  return { ops, ip, dynamicPorts };
}

/** Whether a failed transaction failed on an allocation record (then: pick again). */
function onRecord(e: unknown): boolean {
  return e instanceof ApiError && typeof e.details.name === "string" && e.details.name.startsWith(ALLOC_PREFIX);
}

function contention(next: Obj): ApiError {
  return new ApiError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on services "${next.metadata?.name ?? ""}": the cluster IP or node port allocation kept changing; please try again`,
    { name: next.metadata?.name, group: "", kind: "services" },
  );
}

/**
 * Writes a Service (create when `cur` is undefined, else an update of `cur` at
 * expectedRevision) with its allocations, filling spec.clusterIP(s) and node ports into
 * `next`. With dryRun nothing is written and undefined is returned, after the same
 * checks (a dynamic value shown is one that was free). Errors: 422 for an IP or port
 * out of range or held by another Service, 500 when a range is full, and the store's
 * own errors for the Service's key (AlreadyExists, Conflict, NotFound), as a plain
 * create/update would throw them.
 */
export async function writeService(
  ctx: Ctx,
  key: string,
  next: Obj,
  cur: Obj | undefined,
  expectedRevision: number | undefined,
  dryRun: boolean,
): Promise<KV | undefined> {
  const net = networkOf(ctx);
  const { claims, errors } = planClaims(net, cur, next);
  if (errors.length > 0) throw invalid("Service", "", next.metadata.name, errors);
  const fixedPorts = heldNodePorts(next); // before any dynamic port is filled in
  for (let attempt = 0; ; attempt++) {
    const r = await resolve(ctx, net, next, claims, fixedPorts, attempt, dryRun);
    assignClaims(next, claims, r.ip, r.dynamicPorts);
    if (dryRun) return undefined;
    const value = encodeObject(next);
    const own: TxnOp = cur === undefined ? { op: "create", key, value } : { op: "update", key, value, expectedRevision: expectedRevision! };
    try {
      return (await ctx.store.txn([own, ...r.ops]))[0];
    } catch (e) {
      if (!onRecord(e)) throw e;
      if (attempt + 1 >= MAX_ATTEMPTS) throw contention(next);
    }
  }
}

/** Deletes a Service at expectedRevision and frees its records in the same transaction. */
export async function deleteService(ctx: Ctx, key: string, cur: Obj, expectedRevision: number): Promise<KV> {
  const uid = cur.metadata?.uid;
  const keys = [...heldIPs(cur).map(ipKey), ...heldNodePorts(cur).map(portKey)];
  for (let attempt = 0; ; attempt++) {
    const ops = typeof uid === "string" ? await releaseOps(ctx, keys, uid) : [];
    try {
      return (await ctx.store.txn([{ op: "delete", key, expectedRevision }, ...ops]))[0];
    } catch (e) {
      if (!onRecord(e)) throw e;
      if (attempt + 1 >= MAX_ATTEMPTS) throw contention(cur);
    }
  }
}
