// The Deployment controller (k8s.io/kubernetes/pkg/controller/deployment), as a pure
// level-based reconciler: from one Deployment and the ReplicaSets and pods of its
// namespace it returns the ReplicaSet adoptions/releases, creation, scaling and cleanup,
// the ScalingReplicaSet events and the Deployment's status (or revision annotation) write.
//
// The code follows upstream's sync paths closely (syncDeployment → checkPausedConditions,
// sync for paused/scaling events, rolloutRolling, rolloutRecreate, syncRolloutStatus,
// cleanupDeployment) and reads the same inputs: ReplicaSet spec.replicas, the
// ReplicaSets' status (replicas, readyReplicas, availableReplicas, as written by the
// ReplicaSet controller) and, for Recreate, the pods themselves.
//
// Differences from upstream:
// - All Deployment status counters come from ReplicaSet status, as upstream: replicas is
//   the sum of the owned ReplicaSets' status.replicas (= their active pods),
//   updatedReplicas the new ReplicaSet's status.replicas, ready/available the sums of
//   readyReplicas/availableReplicas; unavailableReplicas = max(0, Σ spec.replicas −
//   available). Pods are only read for Recreate (old pods still running), the
//   revisionHistoryLimit cleanup (never delete a ReplicaSet that still has active pods)
//   and requeueAfterMs for minReadySeconds.
// - One write per object per reconcile: a ReplicaSet touched several times in one sync
//   (e.g. cleanupUnhealthyReplicas then scaleDownOldReplicaSetsForRollingUpdate) gets one
//   update and one "Scaled down replica set x from a to b" event with the first and last
//   size. The Deployment gets either its status write or, when only its revision
//   annotation changed, a metadata update; when both changed, status is written first
//   and the annotation in the next reconcile (requeueAfterMs FOLLOW_UP_MS).
// - The existing new ReplicaSet's annotations, the Deployment's revision annotation and
//   the FoundNewReplicaSet condition are synced in the same reconcile (upstream needs
//   one sync per write).
// - Time comparisons are inclusive: the progress deadline is exceeded at exactly
//   lastUpdateTime + progressDeadlineSeconds (upstream: strictly after, at ns precision).
// - requeueAfterMs is computed whether or not status changed (upstream only requeues a
//   stuck deployment when its status is unchanged) and also covers minReadySeconds.
// - The deprecated rollbackTo annotation (extensions/v1beta1 rollback) is ignored.
// - pod-template-hash is FNV-1a 32 of a canonical JSON of the template (upstream hashes a
//   spew dump of the Go struct), safe-encoded like upstream (alphabet
//   "bcdfghjklmnpqrstvwxz2456789", one character per decimal digit of the hash).

import { matchLabels } from "../../workers/shared/selectors.ts";
import {
  canonicalJSON,
  compareByCreation,
  controllerRef,
  isControlledBy,
  isPodActive,
  msUntilNextAvailable,
  newControllerRef,
  parseTime,
  rfc3339,
  selectorOf,
  semanticEqual,
  withOwnerRef,
  withoutOwnerRef,
} from "./podutil.ts";
import { type Action, DEPLOYMENTS, type Obj, REPLICASETS, type ReconcileResult } from "./types.ts";

export const REVISION_ANNOTATION = "deployment.kubernetes.io/revision";
export const REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history";
export const DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas";
export const MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas";
export const POD_TEMPLATE_HASH_LABEL = "pod-template-hash";
const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to";

/** Annotations of the Deployment not copied to its ReplicaSets (annotationsToSkip). */
const ANNOTATIONS_TO_SKIP = new Set([
  LAST_APPLIED_ANNOTATION,
  REVISION_ANNOTATION,
  REVISION_HISTORY_ANNOTATION,
  DESIRED_REPLICAS_ANNOTATION,
  MAX_REPLICAS_ANNOTATION,
  ROLLBACK_TO_ANNOTATION,
]);

/** Upstream's maxRevHistoryLengthInChars. */
const MAX_REV_HISTORY_CHARS = 2000;
const MAX_INT32 = 2147483647;
/** Requeue delay when this reconcile knowingly left a write for the next one. */
export const FOLLOW_UP_MS = 1000;

// Condition reasons (deployment/util).
export const REASONS = {
  newRSCreated: "NewReplicaSetCreated",
  foundNewRS: "FoundNewReplicaSet",
  rsUpdated: "ReplicaSetUpdated",
  newRSAvailable: "NewReplicaSetAvailable",
  timedOut: "ProgressDeadlineExceeded",
  paused: "DeploymentPaused",
  resumed: "DeploymentResumed",
  minimumReplicasAvailable: "MinimumReplicasAvailable",
  minimumReplicasUnavailable: "MinimumReplicasUnavailable",
} as const;

// ---------------------------------------------------------------------------------------
// pod-template-hash

const SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789";

function utf8Bytes(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  }
  return out;
}

/** rand.SafeEncodeString: each character mapped into an alphabet without vowels. */
function safeEncode(s: string): string {
  let out = "";
  for (const ch of s) out += SAFE_ALPHANUMS[ch.codePointAt(0)! % SAFE_ALPHANUMS.length];
  return out;
}

/** A template without the pod-template-hash label (deep copy). */
function stripHash(template: unknown): Obj {
  const t: Obj = template && typeof template === "object" ? structuredClone(template as Obj) : {};
  if (t.metadata?.labels && typeof t.metadata.labels === "object") delete t.metadata.labels[POD_TEMPLATE_HASH_LABEL];
  return t;
}

/**
 * controller.ComputeHash: FNV-1a 32 over the canonical JSON of the template (without any
 * pod-template-hash label), then, when collisionCount is given, its 8-byte little-endian
 * encoding; the decimal value safe-encoded (e.g. "7d4b9c8f5").
 */
export function podTemplateHash(template: Obj, collisionCount?: number | null): string {
  let h = 0x811c9dc5;
  const feed = (b: number): void => {
    h = Math.imul(h ^ b, 0x01000193) >>> 0;
  };
  for (const b of utf8Bytes(canonicalJSON(stripHash(template)))) feed(b);
  if (collisionCount !== undefined && collisionCount !== null) {
    const cc = collisionCount >>> 0;
    for (let i = 0; i < 4; i++) feed((cc >>> (8 * i)) & 0xff);
    for (let i = 0; i < 4; i++) feed(0);
  }
  return safeEncode(String(h >>> 0));
}

/** deploymentutil.EqualIgnoreHash: templates semantically equal ignoring pod-template-hash. */
export function equalIgnoreHash(a: unknown, b: unknown): boolean {
  return canonicalJSON(stripHash(a)) === canonicalJSON(stripHash(b));
}

// ---------------------------------------------------------------------------------------
// Strategy arithmetic

/** intstr.GetScaledValueFromIntOrPercent. */
export function scaledValue(v: unknown, total: number, roundUp: boolean): number {
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    const m = /^(\d+)%$/.exec(v);
    if (m) {
      const x = (Number(m[1]) * total) / 100;
      return roundUp ? Math.ceil(x) : Math.floor(x);
    }
    if (/^\d+$/.test(v)) return Number(v);
  }
  return 0;
}

function desiredReplicas(d: Obj): number {
  return typeof d.spec?.replicas === "number" ? d.spec.replicas : 1;
}

function isRollingUpdate(d: Obj): boolean {
  return (d.spec?.strategy?.type ?? "RollingUpdate") === "RollingUpdate";
}

/** deploymentutil.ResolveFenceposts (both zero → maxUnavailable 1); defaults 25%/25%. */
export function resolveFenceposts(d: Obj): { maxSurge: number; maxUnavailable: number } {
  const ru = d.spec?.strategy?.rollingUpdate ?? {};
  const replicas = desiredReplicas(d);
  const maxSurge = scaledValue(ru.maxSurge ?? "25%", replicas, true);
  let maxUnavailable = scaledValue(ru.maxUnavailable ?? "25%", replicas, false);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable };
}

/** deploymentutil.MaxUnavailable: 0 for Recreate or 0 replicas, at most replicas. */
export function maxUnavailable(d: Obj): number {
  const replicas = desiredReplicas(d);
  if (!isRollingUpdate(d) || replicas === 0) return 0;
  return Math.min(resolveFenceposts(d).maxUnavailable, replicas);
}

/** deploymentutil.MaxSurge: 0 for Recreate. */
export function maxSurge(d: Obj): number {
  if (!isRollingUpdate(d)) return 0;
  return resolveFenceposts(d).maxSurge;
}

function hasProgressDeadline(d: Obj): boolean {
  const p = d.spec?.progressDeadlineSeconds;
  return typeof p === "number" && p !== MAX_INT32;
}

// ---------------------------------------------------------------------------------------
// ReplicaSet accessors

function specReplicas(rs: Obj): number {
  return typeof rs.spec?.replicas === "number" ? rs.spec.replicas : 1;
}

function statusCount(rs: Obj, field: "replicas" | "readyReplicas" | "availableReplicas"): number {
  const v = rs.status?.[field];
  return typeof v === "number" ? v : 0;
}

/** deploymentutil.Revision: missing → 0, unparsable → undefined. */
function revisionOf(rs: Obj): number | undefined {
  const v = rs.metadata?.annotations?.[REVISION_ANNOTATION];
  if (v === undefined) return 0;
  return typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : undefined;
}

function int32Annotation(rs: Obj, key: string): number | undefined {
  const v = rs.metadata?.annotations?.[key];
  return typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : undefined;
}

// ---------------------------------------------------------------------------------------
// Conditions

function getCond(status: Obj, type: string): Obj | undefined {
  return Array.isArray(status.conditions) ? status.conditions.find((c: Obj) => c?.type === type) : undefined;
}

function removeCond(status: Obj, type: string): void {
  if (!Array.isArray(status.conditions)) return;
  status.conditions = status.conditions.filter((c: Obj) => c?.type !== type);
  if (status.conditions.length === 0) delete status.conditions;
}

/** deploymentutil.SetDeploymentCondition: no-op for the same status and reason; keeps lastTransitionTime for the same status. */
function setCond(status: Obj, cond: Obj): void {
  const cur = getCond(status, cond.type);
  if (cur && cur.status === cond.status && cur.reason === cond.reason) return;
  if (cur && cur.status === cond.status) cond.lastTransitionTime = cur.lastTransitionTime;
  const rest = Array.isArray(status.conditions) ? status.conditions.filter((c: Obj) => c?.type !== cond.type) : [];
  status.conditions = [...rest, cond];
}

// ---------------------------------------------------------------------------------------
// Reconcile state

interface Entry {
  /** The ReplicaSet as read; null for the one created in this reconcile. */
  orig: Obj | null;
  /** The ReplicaSet as it should be written. */
  cur: Obj;
  deleted?: boolean;
}

interface Ctx {
  d: Obj;
  now: Date;
  nowStr: string;
  replicas: number;
  /** All ReplicaSets of the namespace (for name collisions). */
  allReplicaSets: Obj[];
  /** Pods matching the selector and controlled by an owned ReplicaSet. */
  pods: Obj[];
  /** The Deployment's status with this reconcile's condition / collisionCount changes. */
  status: Obj;
  /** The Deployment's annotations as they should be. */
  annotations: Record<string, string>;
  entries: Entry[];
  newRS: Entry | null;
  oldRSs: Entry[];
  touched: Entry[];
  created: Entry | null;
  newRSSynced: boolean;
  /** A pod-template-hash collision was found: status (collisionCount) only. */
  blocked: boolean;
  finalStatus?: Obj;
  requeue?: number;
}

function touch(c: Ctx, e: Entry): void {
  if (e !== c.created && !c.touched.includes(e)) c.touched.push(e);
}

function allEntries(c: Ctx): Entry[] {
  return c.newRS ? [...c.oldRSs, c.newRS] : [...c.oldRSs];
}

function sum(entries: Entry[], f: (rs: Obj) => number): number {
  return entries.reduce((n, e) => n + f(e.cur), 0);
}

function newCond(c: Ctx, type: string, status: string, reason: string, message: string): Obj {
  return { type, status, lastUpdateTime: c.nowStr, lastTransitionTime: c.nowStr, reason, message };
}

function requeueAt(c: Ctx, ms: number | undefined): void {
  if (ms === undefined) return;
  const v = Math.max(1, Math.ceil(ms));
  if (c.requeue === undefined || v < c.requeue) c.requeue = v;
}

// ---------------------------------------------------------------------------------------
// Annotations

/** deploymentutil.SetReplicasAnnotations; returns whether anything changed. */
function setReplicasAnnotations(rs: Obj, desired: number, max: number): boolean {
  rs.metadata ??= {};
  rs.metadata.annotations ??= {};
  const ann = rs.metadata.annotations;
  let changed = false;
  if (ann[DESIRED_REPLICAS_ANNOTATION] !== String(desired)) {
    ann[DESIRED_REPLICAS_ANNOTATION] = String(desired);
    changed = true;
  }
  if (ann[MAX_REPLICAS_ANNOTATION] !== String(max)) {
    ann[MAX_REPLICAS_ANNOTATION] = String(max);
    changed = true;
  }
  return changed;
}

function replicasAnnotationsNeedUpdate(rs: Obj, desired: number, max: number): boolean {
  const ann = rs.metadata?.annotations ?? {};
  return ann[DESIRED_REPLICAS_ANNOTATION] !== String(desired) || ann[MAX_REPLICAS_ANNOTATION] !== String(max);
}

/** deploymentutil.SetNewReplicaSetAnnotations; returns whether anything changed. */
function setNewReplicaSetAnnotations(c: Ctx, rs: Obj, newRevision: number, exists: boolean): boolean {
  rs.metadata ??= {};
  rs.metadata.annotations ??= {};
  const ann: Record<string, string> = rs.metadata.annotations;
  let changed = false;
  for (const [k, v] of Object.entries((c.d.metadata?.annotations ?? {}) as Record<string, string>)) {
    if (ANNOTATIONS_TO_SKIP.has(k) || (Object.hasOwn(ann, k) && ann[k] === v)) continue;
    ann[k] = v;
    changed = true;
  }
  const had = Object.hasOwn(ann, REVISION_ANNOTATION);
  const oldRevision = had ? String(ann[REVISION_ANNOTATION]) : "";
  let oldInt = 0;
  if (/^-?\d+$/.test(oldRevision)) oldInt = Number(oldRevision);
  else if (oldRevision !== "") return changed;
  if (oldInt < newRevision) {
    ann[REVISION_ANNOTATION] = String(newRevision);
    changed = true;
    if (had) {
      const history = ann[REVISION_HISTORY_ANNOTATION] ?? "";
      let old = history.split(",");
      if (old[0].length === 0) ann[REVISION_HISTORY_ANNOTATION] = oldRevision;
      else {
        let total = history.length + oldRevision.length + 1;
        let start = 0;
        while (total > MAX_REV_HISTORY_CHARS && start < old.length) {
          total -= old[start].length + 1;
          start++;
        }
        if (total <= MAX_REV_HISTORY_CHARS) {
          old = [...old.slice(start), oldRevision];
          ann[REVISION_HISTORY_ANNOTATION] = old.join(",");
        }
      }
    }
  }
  if (!exists && setReplicasAnnotations(rs, c.replicas, c.replicas + maxSurge(c.d))) changed = true;
  return changed;
}

function setDeploymentRevision(c: Ctx, revision: unknown): void {
  if (typeof revision === "string" && c.annotations[REVISION_ANNOTATION] !== revision) c.annotations[REVISION_ANNOTATION] = revision;
}

// ---------------------------------------------------------------------------------------
// New ReplicaSet

/** deploymentutil.NewRSNewReplicas. */
function newRSNewReplicas(c: Ctx, newRS: Obj): number {
  if (!isRollingUpdate(c.d)) return c.replicas;
  const surge = scaledValue(c.d.spec?.strategy?.rollingUpdate?.maxSurge ?? "25%", c.replicas, true);
  const current = sum(c.oldRSs, specReplicas) + specReplicas(newRS);
  const maxTotal = c.replicas + surge;
  if (current >= maxTotal) return specReplicas(newRS);
  const scaleUp = Math.min(maxTotal - current, c.replicas - specReplicas(newRS));
  return specReplicas(newRS) + scaleUp;
}

/**
 * getNewReplicaSet: syncs the existing new ReplicaSet's annotations (revision bump on
 * rollback, copied Deployment annotations, minReadySeconds) or, with create, builds the
 * new ReplicaSet named <deployment>-<pod-template-hash>.
 */
function syncNewReplicaSet(c: Ctx, create: boolean): void {
  if (c.newRSSynced || c.blocked) return;
  const d = c.d;
  let maxOld = 0;
  for (const e of c.oldRSs) {
    const r = revisionOf(e.cur);
    if (r !== undefined && r > maxOld) maxOld = r;
  }
  const newRevision = maxOld + 1;

  if (c.newRS) {
    const rs = c.newRS.cur;
    const annotationsChanged = setNewReplicaSetAnnotations(c, rs, newRevision, true);
    const mrs = d.spec?.minReadySeconds ?? 0;
    if (annotationsChanged || (rs.spec?.minReadySeconds ?? 0) !== mrs) {
      rs.spec ??= {};
      if (mrs) rs.spec.minReadySeconds = mrs;
      else delete rs.spec.minReadySeconds;
      touch(c, c.newRS);
    }
    setDeploymentRevision(c, rs.metadata?.annotations?.[REVISION_ANNOTATION]);
    if (hasProgressDeadline(d) && !getCond(c.status, "Progressing")) {
      setCond(c.status, newCond(c, "Progressing", "True", REASONS.foundNewRS, `Found new replica set "${rs.metadata?.name}"`));
    }
    c.newRSSynced = true;
    return;
  }
  if (!create) return;

  const hash = podTemplateHash(d.spec?.template ?? {}, c.status.collisionCount);
  const name = `${d.metadata?.name}-${hash}`;
  if (c.allReplicaSets.some((rs) => rs.metadata?.name === name)) {
    // A ReplicaSet of that name that is not our new one: a hash collision. Upstream bumps
    // collisionCount in status and retries with the next hash.
    c.status.collisionCount = (typeof c.status.collisionCount === "number" ? c.status.collisionCount : 0) + 1;
    c.blocked = true;
    return;
  }
  const template = structuredClone(d.spec?.template ?? {});
  template.metadata ??= {};
  template.metadata.labels = { ...(template.metadata.labels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash };
  const selector = structuredClone(d.spec?.selector ?? {});
  selector.matchLabels = { ...(selector.matchLabels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash };
  const spec: Obj = { replicas: 0, selector, template };
  if (d.spec?.minReadySeconds) spec.minReadySeconds = d.spec.minReadySeconds;
  const rs: Obj = {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name,
      namespace: d.metadata?.namespace,
      labels: { ...template.metadata.labels },
      ownerReferences: [newControllerRef(d, "apps/v1", "Deployment")],
    },
    spec,
  };
  const entry: Entry = { orig: null, cur: rs };
  c.created = entry;
  c.newRS = entry;
  rs.spec.replicas = newRSNewReplicas(c, rs);
  setNewReplicaSetAnnotations(c, rs, newRevision, false);
  setDeploymentRevision(c, String(newRevision));
  if (hasProgressDeadline(d)) {
    setCond(c.status, newCond(c, "Progressing", "True", REASONS.newRSCreated, `Created new replica set "${name}"`));
  }
  c.newRSSynced = true;
}

// ---------------------------------------------------------------------------------------
// Scaling

/** scaleReplicaSet: sets size and the replicas annotations; returns whether the size changed. */
function scaleReplicaSet(c: Ctx, e: Entry, size: number): boolean {
  const rs = e.cur;
  const sizeChanged = specReplicas(rs) !== size;
  const max = c.replicas + maxSurge(c.d);
  if (sizeChanged || replicasAnnotationsNeedUpdate(rs, c.replicas, max)) {
    rs.spec ??= {};
    rs.spec.replicas = size;
    setReplicasAnnotations(rs, c.replicas, max);
    touch(c, e);
  }
  return sizeChanged;
}

/** scaleReplicaSetAndRecordEvent: nothing when the size is already right. */
function scaleReplicaSetIfNeeded(c: Ctx, e: Entry, size: number): boolean {
  if (specReplicas(e.cur) === size) return false;
  return scaleReplicaSet(c, e, size);
}

function activeEntries(entries: Entry[]): Entry[] {
  return entries.filter((e) => specReplicas(e.cur) > 0);
}

/** deploymentutil.FindActiveOrLatest. */
function findActiveOrLatest(c: Ctx): Entry | undefined {
  if (!c.newRS && c.oldRSs.length === 0) return undefined;
  const olds = [...c.oldRSs].sort((a, b) => compareByCreation(b.cur, a.cur));
  const active = activeEntries(c.newRS ? [...olds, c.newRS] : olds);
  if (active.length === 0) return c.newRS ?? olds[0];
  if (active.length === 1) return active[0];
  return undefined;
}

/** deploymentutil.IsSaturated. */
function isSaturated(c: Ctx, e: Entry | null): boolean {
  if (!e) return false;
  return (
    int32Annotation(e.cur, DESIRED_REPLICAS_ANNOTATION) === c.replicas &&
    specReplicas(e.cur) === c.replicas &&
    statusCount(e.cur, "availableReplicas") === c.replicas
  );
}

/** getReplicaSetFraction. */
function replicaSetFraction(c: Ctx, rs: Obj, currentTotal: number): number {
  if (c.replicas === 0) return -specReplicas(rs);
  const deploymentMax = c.replicas + maxSurge(c.d);
  let before = int32Annotation(rs, MAX_REPLICAS_ANNOTATION);
  if (before === undefined || before === 0) {
    before = typeof c.d.status?.replicas === "number" && c.d.status.replicas > 0 ? c.d.status.replicas : currentTotal;
  }
  if (!before) return 0;
  // integer.RoundToInt32: half away from zero.
  const size = (specReplicas(rs) * deploymentMax) / before;
  const rounded = size < 0 ? -Math.round(-size) : Math.round(size);
  return rounded - specReplicas(rs);
}

/**
 * DeploymentController.scale: one active ReplicaSet (or none: the newest) takes the full
 * count; a saturated new ReplicaSet makes the old ones go to 0; otherwise, for
 * RollingUpdate, the difference to replicas+maxSurge is spread over the active
 * ReplicaSets in proportion to their size (max-replicas annotation), leftovers to the
 * largest.
 */
function scale(c: Ctx): void {
  const aol = findActiveOrLatest(c);
  if (aol) {
    // Upstream returns early when the size is already right; refreshing the replicas
    // annotations as well keeps a stale desired-replicas from making every later
    // reconcile a "scaling event" that never rolls out.
    scaleReplicaSet(c, aol, c.replicas);
    return;
  }
  if (isSaturated(c, c.newRS)) {
    for (const old of activeEntries(c.oldRSs)) scaleReplicaSetIfNeeded(c, old, 0);
    return;
  }
  if (!isRollingUpdate(c.d)) return;
  const all = activeEntries(allEntries(c));
  const allReplicas = sum(all, specReplicas);
  const allowed = c.replicas > 0 ? c.replicas + maxSurge(c.d) : 0;
  const toAdd = allowed - allReplicas;
  if (toAdd > 0) {
    // ReplicaSetsBySizeNewer: larger first, then newer first.
    all.sort((a, b) => specReplicas(b.cur) - specReplicas(a.cur) || compareByCreation(b.cur, a.cur));
  } else if (toAdd < 0) {
    // ReplicaSetsBySizeOlder: larger first, then older first.
    all.sort((a, b) => specReplicas(b.cur) - specReplicas(a.cur) || compareByCreation(a.cur, b.cur));
  }
  let added = 0;
  const sizes = new Map<Entry, number>();
  for (const e of all) {
    if (toAdd === 0) {
      sizes.set(e, specReplicas(e.cur));
      continue;
    }
    let proportion = 0;
    if (specReplicas(e.cur) !== 0 && toAdd !== added) {
      const fraction = replicaSetFraction(c, e.cur, allReplicas);
      const rest = toAdd - added;
      proportion = toAdd > 0 ? Math.min(fraction, rest) : Math.max(fraction, rest);
    }
    sizes.set(e, specReplicas(e.cur) + proportion);
    added += proportion;
  }
  all.forEach((e, i) => {
    let size = sizes.get(e)!;
    if (i === 0 && toAdd !== 0) size = Math.max(0, size + (toAdd - added));
    scaleReplicaSet(c, e, size);
  });
}

/** isScalingEvent: an active ReplicaSet's desired-replicas annotation differs from spec.replicas. */
function isScalingEvent(c: Ctx): boolean {
  syncNewReplicaSet(c, false);
  for (const e of activeEntries(allEntries(c))) {
    const desired = int32Annotation(e.cur, DESIRED_REPLICAS_ANNOTATION);
    if (desired !== undefined && desired !== c.replicas) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Rolling update

/** reconcileNewReplicaSet. */
function reconcileNewReplicaSet(c: Ctx): boolean {
  const e = c.newRS;
  if (!e) return false;
  const cur = specReplicas(e.cur);
  if (cur === c.replicas) return false;
  if (cur > c.replicas) return scaleReplicaSetIfNeeded(c, e, c.replicas);
  return scaleReplicaSetIfNeeded(c, e, newRSNewReplicas(c, e.cur));
}

/** cleanupUnhealthyReplicas: old ReplicaSets lose their unavailable replicas first (oldest first). */
function cleanupUnhealthyReplicas(c: Ctx, olds: Entry[], maxCleanup: number): number {
  olds.sort((a, b) => compareByCreation(a.cur, b.cur));
  let total = 0;
  for (const e of olds) {
    if (total >= maxCleanup) break;
    const spec = specReplicas(e.cur);
    const unhealthy = spec - statusCount(e.cur, "availableReplicas");
    if (spec === 0 || unhealthy <= 0) continue;
    const n = Math.min(maxCleanup - total, unhealthy);
    scaleReplicaSetIfNeeded(c, e, spec - n);
    total += n;
  }
  return total;
}

/** scaleDownOldReplicaSetsForRollingUpdate: keep at least replicas − maxUnavailable available. */
function scaleDownOldForRollingUpdate(c: Ctx, olds: Entry[]): number {
  const minAvailable = c.replicas - maxUnavailable(c.d);
  const available = sum(c.newRS ? [...olds, c.newRS] : olds, (rs) => statusCount(rs, "availableReplicas"));
  if (available <= minAvailable) return 0;
  olds.sort((a, b) => compareByCreation(a.cur, b.cur));
  const target = available - minAvailable;
  let total = 0;
  for (const e of olds) {
    if (total >= target) break;
    const spec = specReplicas(e.cur);
    if (spec === 0) continue;
    const n = Math.min(spec, target - total);
    scaleReplicaSetIfNeeded(c, e, spec - n);
    total += n;
  }
  return total;
}

/** reconcileOldReplicaSets. */
function reconcileOldReplicaSets(c: Ctx): boolean {
  const olds = activeEntries(c.oldRSs);
  if (sum(olds, specReplicas) === 0) return false;
  const allPods = sum(allEntries(c), specReplicas);
  const minAvailable = c.replicas - maxUnavailable(c.d);
  const newUnavailable = c.newRS ? specReplicas(c.newRS.cur) - statusCount(c.newRS.cur, "availableReplicas") : 0;
  const maxScaledDown = allPods - minAvailable - newUnavailable;
  if (maxScaledDown <= 0) return false;
  const cleaned = cleanupUnhealthyReplicas(c, olds, maxScaledDown);
  const scaledDown = scaleDownOldForRollingUpdate(c, olds);
  return cleaned + scaledDown > 0;
}

function rolloutRolling(c: Ctx): void {
  syncNewReplicaSet(c, true);
  if (c.blocked) return;
  // Scale up, if we can; else scale down, if we can; else clean up once complete.
  if (!reconcileNewReplicaSet(c) && !reconcileOldReplicaSets(c) && deploymentComplete(c.d, c.d.status ?? {})) cleanupDeployment(c);
  syncRolloutStatus(c);
}

// ---------------------------------------------------------------------------------------
// Recreate

/** oldPodsRunning: old ReplicaSets report replicas, or any of their pods is not terminal (even terminating). */
function oldPodsRunning(c: Ctx): boolean {
  if (sum(c.oldRSs, (rs) => statusCount(rs, "replicas")) > 0) return true;
  const newUID = c.newRS?.cur.metadata?.uid;
  return c.pods.some((p) => {
    if (newUID !== undefined && isControlledBy(p, newUID)) return false;
    const phase = p.status?.phase;
    return phase !== "Succeeded" && phase !== "Failed";
  });
}

function rolloutRecreate(c: Ctx): void {
  syncNewReplicaSet(c, false);
  let scaledDown = false;
  for (const e of activeEntries(c.oldRSs)) if (scaleReplicaSetIfNeeded(c, e, 0)) scaledDown = true;
  // Scale up the new ReplicaSet only once every old pod is gone.
  if (!scaledDown && !oldPodsRunning(c)) {
    if (!c.newRS) {
      syncNewReplicaSet(c, true);
      if (c.blocked) return;
    }
    if (c.newRS) scaleReplicaSetIfNeeded(c, c.newRS, c.replicas);
    if (deploymentComplete(c.d, c.d.status ?? {})) cleanupDeployment(c);
  }
  syncRolloutStatus(c);
}

// ---------------------------------------------------------------------------------------
// Paused / scaling

function checkPausedConditions(c: Ctx): void {
  if (!hasProgressDeadline(c.d)) return;
  const cond = getCond(c.status, "Progressing");
  if (cond?.reason === REASONS.timedOut) return;
  const pausedCondExists = cond?.reason === REASONS.paused;
  const paused = c.d.spec?.paused === true;
  if (paused && !pausedCondExists) {
    setCond(c.status, newCond(c, "Progressing", "Unknown", REASONS.paused, "Deployment is paused"));
  } else if (!paused && pausedCondExists) {
    setCond(c.status, newCond(c, "Progressing", "Unknown", REASONS.resumed, "Deployment is resumed"));
  }
}

/** sync: paused deployments and scaling events only scale (and clean up when paused). */
function syncOnly(c: Ctx): void {
  syncNewReplicaSet(c, false);
  scale(c);
  if (c.d.spec?.paused === true) cleanupDeployment(c);
  c.finalStatus = calculateStatus(c);
}

// ---------------------------------------------------------------------------------------
// Cleanup

/** cleanupDeployment: delete the oldest old ReplicaSets beyond revisionHistoryLimit once they are empty. */
function cleanupDeployment(c: Ctx): void {
  const limit = typeof c.d.spec?.revisionHistoryLimit === "number" ? c.d.spec.revisionHistoryLimit : 10;
  const cleanable = c.oldRSs.filter((e) => !e.deleted && !e.cur.metadata?.deletionTimestamp);
  const diff = cleanable.length - limit;
  if (diff <= 0) return;
  cleanable.sort((a, b) => {
    const ra = revisionOf(a.cur);
    const rb = revisionOf(b.cur);
    if (ra === undefined || rb === undefined || ra === rb) return compareByCreation(a.cur, b.cur);
    return ra - rb;
  });
  for (let i = 0; i < diff; i++) {
    const e = cleanable[i];
    const rs = e.cur;
    if (!e.orig) continue;
    const uid = rs.metadata?.uid;
    const generation = typeof rs.metadata?.generation === "number" ? rs.metadata.generation : 0;
    const observed = typeof rs.status?.observedGeneration === "number" ? rs.status.observedGeneration : 0;
    if (statusCount(rs, "replicas") !== 0 || specReplicas(rs) !== 0 || generation > observed || rs.metadata?.deletionTimestamp) continue;
    if (c.pods.some((p) => isControlledBy(p, uid) && isPodActive(p))) continue;
    e.deleted = true;
  }
}

// ---------------------------------------------------------------------------------------
// Status

/** deploymentutil.DeploymentComplete. */
function deploymentComplete(d: Obj, status: Obj): boolean {
  const replicas = desiredReplicas(d);
  return (
    (status.updatedReplicas ?? 0) === replicas &&
    (status.replicas ?? 0) === replicas &&
    (status.availableReplicas ?? 0) === replicas &&
    (status.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0)
  );
}

/** deploymentutil.DeploymentProgressing: more updated/ready/available or fewer old replicas than before. */
function deploymentProgressing(old: Obj, next: Obj): boolean {
  const n = (s: Obj, k: string): number => (typeof s[k] === "number" ? s[k] : 0);
  const oldOld = n(old, "replicas") - n(old, "updatedReplicas");
  const newOld = n(next, "replicas") - n(next, "updatedReplicas");
  return (
    n(next, "updatedReplicas") > n(old, "updatedReplicas") ||
    newOld < oldOld ||
    n(next, "readyReplicas") > n(old, "readyReplicas") ||
    n(next, "availableReplicas") > n(old, "availableReplicas")
  );
}

/** deploymentutil.DeploymentTimedOut. */
function deploymentTimedOut(c: Ctx, status: Obj): boolean {
  if (!hasProgressDeadline(c.d)) return false;
  const cond = getCond(status, "Progressing");
  if (!cond) return false;
  if (cond.reason === REASONS.newRSAvailable) return false;
  if (cond.reason === REASONS.timedOut) return true;
  const from = parseTime(cond.lastUpdateTime) ?? 0;
  return from + c.d.spec.progressDeadlineSeconds * 1000 <= c.now.getTime();
}

/** calculateStatus: counters from the ReplicaSets' status, plus the Available condition. */
function calculateStatus(c: Ctx): Obj {
  const all = allEntries(c).filter((e) => !e.deleted);
  const available = sum(all, (rs) => statusCount(rs, "availableReplicas"));
  const total = sum(all, specReplicas);
  const status: Obj = {};
  const put = (k: string, v: number): void => {
    if (v) status[k] = v;
  };
  put("observedGeneration", typeof c.d.metadata?.generation === "number" ? c.d.metadata.generation : 0);
  put(
    "replicas",
    sum(all, (rs) => statusCount(rs, "replicas")),
  );
  put("updatedReplicas", c.newRS ? statusCount(c.newRS.cur, "replicas") : 0);
  put(
    "readyReplicas",
    sum(all, (rs) => statusCount(rs, "readyReplicas")),
  );
  put("availableReplicas", available);
  put("unavailableReplicas", Math.max(0, total - available));
  if (Array.isArray(c.status.conditions) && c.status.conditions.length) status.conditions = structuredClone(c.status.conditions);
  if (typeof c.status.collisionCount === "number") status.collisionCount = c.status.collisionCount;
  if (available >= c.replicas - maxUnavailable(c.d)) {
    setCond(status, newCond(c, "Available", "True", REASONS.minimumReplicasAvailable, "Deployment has minimum availability."));
  } else {
    setCond(status, newCond(c, "Available", "False", REASONS.minimumReplicasUnavailable, "Deployment does not have minimum availability."));
  }
  return status;
}

/** getReplicaFailures: the new ReplicaSet's ReplicaFailure conditions win over the old ones'. */
function replicaFailure(c: Ctx): Obj | undefined {
  const from = (rs: Obj): Obj | undefined => {
    const cond = Array.isArray(rs.status?.conditions) ? rs.status.conditions.find((x: Obj) => x?.type === "ReplicaFailure") : undefined;
    if (!cond) return undefined;
    return {
      type: "ReplicaFailure",
      status: cond.status,
      lastUpdateTime: cond.lastTransitionTime,
      lastTransitionTime: cond.lastTransitionTime,
      reason: cond.reason,
      message: cond.message,
    };
  };
  if (c.newRS) {
    const f = from(c.newRS.cur);
    if (f) return f;
  }
  for (const e of allEntries(c)) {
    const f = from(e.cur);
    if (f) return f;
  }
  return undefined;
}

/** syncRolloutStatus: status plus the Progressing condition (progress, completion, deadline). */
function syncRolloutStatus(c: Ctx): void {
  const d = c.d;
  const status = calculateStatus(c);
  const hasPD = hasProgressDeadline(d);
  if (!hasPD) removeCond(status, "Progressing");
  const currentCond = getCond(c.status, "Progressing");
  const isCompleteDeployment = (status.replicas ?? 0) === (status.updatedReplicas ?? 0) && currentCond?.reason === REASONS.newRSAvailable;
  const rsName = c.newRS?.cur.metadata?.name;
  if (hasPD && !isCompleteDeployment) {
    if (deploymentComplete(d, status)) {
      const msg =
        rsName !== undefined
          ? `ReplicaSet "${rsName}" has successfully progressed.`
          : `Deployment "${d.metadata?.name}" has successfully progressed.`;
      setCond(status, newCond(c, "Progressing", "True", REASONS.newRSAvailable, msg));
    } else if (deploymentProgressing(c.status, status)) {
      const msg = rsName !== undefined ? `ReplicaSet "${rsName}" is progressing.` : `Deployment "${d.metadata?.name}" is progressing.`;
      const cond = newCond(c, "Progressing", "True", REASONS.rsUpdated, msg);
      if (currentCond) {
        if (currentCond.status === "True") cond.lastTransitionTime = currentCond.lastTransitionTime;
        removeCond(status, "Progressing");
      }
      setCond(status, cond);
    } else if (deploymentTimedOut(c, status)) {
      const msg =
        rsName !== undefined
          ? `ReplicaSet "${rsName}" has timed out progressing.`
          : `Deployment "${d.metadata?.name}" has timed out progressing.`;
      setCond(status, newCond(c, "Progressing", "False", REASONS.timedOut, msg));
    }
  }
  const failure = replicaFailure(c);
  if (failure) setCond(status, failure);
  else removeCond(status, "ReplicaFailure");
  c.finalStatus = status;

  // requeueStuckDeployment, from the condition as it will be written.
  const cond = getCond(status, "Progressing");
  if (
    hasPD &&
    cond &&
    !deploymentComplete(d, status) &&
    cond.reason !== REASONS.timedOut &&
    cond.reason !== REASONS.newRSAvailable &&
    cond.reason !== REASONS.paused
  ) {
    const from = parseTime(cond.lastUpdateTime) ?? c.now.getTime();
    requeueAt(c, from + d.spec.progressDeadlineSeconds * 1000 - c.now.getTime());
  }
}

// ---------------------------------------------------------------------------------------
// Entry point

/**
 * Reconciles one Deployment against the ReplicaSets and pods of its namespace (see the
 * module comment for how this maps onto upstream's controller).
 */
export function reconcileDeployment(d: Obj, replicaSets: Obj[], pods: Obj[], now: Date): ReconcileResult {
  if (d.metadata?.deletionTimestamp) return { actions: [] };
  const selector = selectorOf(d.spec?.selector);
  // Validation rejects an empty selector for apps/v1; never select everything.
  if (!selector || selector.length === 0) return { actions: [] };
  const uid: string | undefined = d.metadata?.uid;
  const ns: string | undefined = d.metadata?.namespace;
  const actions: Action[] = [];

  const c: Ctx = {
    d,
    now,
    nowStr: rfc3339(now),
    replicas: desiredReplicas(d),
    allReplicaSets: replicaSets,
    pods: [],
    status: structuredClone(d.status ?? {}),
    annotations: { ...(d.metadata?.annotations ?? {}) },
    entries: [],
    newRS: null,
    oldRSs: [],
    touched: [],
    created: null,
    newRSSynced: false,
    blocked: false,
  };

  // ClaimReplicaSets: keep owned matching ones, release owned non-matching, adopt matching orphans.
  for (const rs of [...replicaSets].sort(compareByCreation)) {
    if (ns !== undefined && rs.metadata?.namespace !== undefined && rs.metadata.namespace !== ns) continue;
    const matches = matchLabels(selector, rs.metadata?.labels);
    if (controllerRef(rs)) {
      if (!isControlledBy(rs, uid)) continue;
      if (matches) c.entries.push({ orig: rs, cur: structuredClone(rs) });
      else actions.push({ type: "update", gvr: REPLICASETS, object: withoutOwnerRef(rs, uid!) });
      continue;
    }
    if (uid === undefined || !matches || rs.metadata?.deletionTimestamp) continue;
    const e: Entry = { orig: rs, cur: withOwnerRef(rs, newControllerRef(d, "apps/v1", "Deployment")) };
    c.entries.push(e);
    c.touched.push(e);
  }
  const ownedUIDs = new Set(c.entries.map((e) => e.cur.metadata?.uid).filter((u) => u !== undefined));
  c.pods = pods.filter((p) => {
    const ref = controllerRef(p);
    return ref !== undefined && ownedUIDs.has(ref.uid) && matchLabels(selector, p.metadata?.labels);
  });

  // FindNewReplicaSet: the oldest owned ReplicaSet whose template equals ours.
  const tpl = d.spec?.template ?? {};
  c.newRS = c.entries.find((e) => equalIgnoreHash(e.cur.spec?.template, tpl)) ?? null;
  c.oldRSs = c.entries.filter((e) => e !== c.newRS);

  checkPausedConditions(c);
  if (d.spec?.paused === true) syncOnly(c);
  else if (isScalingEvent(c)) syncOnly(c);
  else if (isRollingUpdate(d)) rolloutRolling(c);
  else rolloutRecreate(c);

  // ReplicaSet writes.
  const scaledEvent = (name: string, from: number, to: number): Action => ({
    type: "event",
    involved: d,
    eventType: "Normal",
    reason: "ScalingReplicaSet",
    message: `Scaled ${to > from ? "up" : "down"} replica set ${name} from ${from} to ${to}`,
  });
  if (c.created) {
    actions.push({ type: "create", gvr: REPLICASETS, object: c.created.cur });
    const n = specReplicas(c.created.cur);
    if (n > 0) actions.push(scaledEvent(c.created.cur.metadata.name, 0, n));
  }
  for (const e of c.touched) {
    if (e.deleted || !e.orig || semanticEqual(e.orig, e.cur)) continue;
    actions.push({ type: "update", gvr: REPLICASETS, object: e.cur });
    const from = specReplicas(e.orig);
    const to = specReplicas(e.cur);
    if (from !== to) actions.push(scaledEvent(e.cur.metadata?.name, from, to));
  }
  for (const e of c.entries) {
    if (!e.deleted || !e.orig) continue;
    actions.push({
      type: "delete",
      gvr: REPLICASETS,
      namespace: e.orig.metadata?.namespace ?? ns,
      name: e.orig.metadata?.name,
      preconditionUID: e.orig.metadata?.uid,
      propagationPolicy: "Background",
    });
  }

  // Deployment write: status, else the revision annotation.
  const finalStatus = c.finalStatus ?? c.status;
  const statusChanged = !semanticEqual(d.status ?? {}, finalStatus, true);
  const annotationsChanged = !semanticEqual(d.metadata?.annotations ?? {}, c.annotations);
  if (statusChanged) {
    actions.push({ type: "update", gvr: DEPLOYMENTS, subresource: "status", object: { ...structuredClone(d), status: finalStatus } });
    if (annotationsChanged) requeueAt(c, FOLLOW_UP_MS);
  } else if (annotationsChanged) {
    const obj = structuredClone(d);
    obj.metadata = { ...obj.metadata, annotations: c.annotations };
    actions.push({ type: "update", gvr: DEPLOYMENTS, object: obj });
  }
  if (c.blocked) requeueAt(c, FOLLOW_UP_MS);

  // minReadySeconds: wake up when a ready pod becomes available.
  if (!c.blocked) requeueAt(c, msUntilNextAvailable(c.pods.filter(isPodActive), Number(d.spec?.minReadySeconds ?? 0) || 0, now));

  const result: ReconcileResult = { actions };
  if (c.requeue !== undefined) result.requeueAfterMs = c.requeue;
  return result;
}
