// The ReplicaSet controller (k8s.io/kubernetes/pkg/controller/replicaset), as a pure
// level-based reconciler: from one ReplicaSet and the pods of its namespace it returns
// the pod adoptions/releases, creations and deletions, events and the status write.
//
// Differences from upstream, all consequences of the snapshot model:
// - no expectations and no slow-start batches: every missing pod (up to burstReplicas,
//   500) is created in one reconcile; the host's write-through makes the next reconcile
//   see them.
// - a ReplicaSet being deleted gets no actions at all (upstream still writes status).
// - the "Created pod" event cannot name a generateName pod (the server picks the
//   suffix): its message is "Created pod: <generateName>", e.g. "Created pod: web-7d4b9-".
// - ranking victims, "doubled up" pods (upstream counts pods of the sibling ReplicaSets
//   of the same Deployment on the same node) only counts this ReplicaSet's own pods.
// - ReplicaFailure is never set (creations cannot fail inside a reconcile); a stale one
//   is removed, as upstream does after a successful sync.

import { matchLabels } from "../../workers/shared/selectors.ts";
import {
  controllerRef,
  isControlledBy,
  isPodActive,
  isPodAvailable,
  isPodReady,
  maxContainerRestarts,
  msUntilNextAvailable,
  newControllerRef,
  parseTime,
  podReadyCondition,
  selectorOf,
  semanticEqual,
  withOwnerRef,
  withoutOwnerRef,
} from "./podutil.ts";
import { type Action, type Obj, PODS, REPLICASETS, type ReconcileResult } from "./types.ts";

/** Upstream's burstReplicas: at most this many creations or deletions per reconcile. */
export const BURST_REPLICAS = 500;

const POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";

/** Pods keep creation order Pending < Unknown < Running (others, e.g. "", count as Pending). */
const PHASE_ORDINAL: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

function phaseOrdinal(pod: Obj): number {
  const p = pod.status?.phase;
  return typeof p === "string" && Object.hasOwn(PHASE_ORDINAL, p) ? PHASE_ORDINAL[p] : 0;
}

function deletionCost(pod: Obj): number {
  const v = pod.metadata?.annotations?.[POD_DELETION_COST];
  if (typeof v !== "string" || !/^-?\d+$/.test(v)) return 0;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : 0;
}

/** afterOrZero(t1, t2): zero times first, otherwise the later one first. Returns <0 when a goes first. */
function compareAfterOrZero(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined) {
    if (a === undefined && b === undefined) return 0;
    return a === undefined ? -1 : 1;
  }
  return b - a;
}

/**
 * Orders pods so that the ones to delete first come first (controller.ActivePodsWithRanks):
 * unassigned before assigned; Pending < Unknown < Running; not ready before ready; lower
 * pod-deletion-cost first; more pods of the owner on the same node first; ready for less
 * time first; more container restarts first; newer first. `rank` maps a pod to the number
 * of related pods on its node.
 */
export function compareForDeletion(a: Obj, b: Obj, rank: (p: Obj) => number = () => 0): number {
  const na = String(a.spec?.nodeName ?? "");
  const nb = String(b.spec?.nodeName ?? "");
  if (na !== nb && (na === "" || nb === "")) return na === "" ? -1 : 1;
  const pa = phaseOrdinal(a);
  const pb = phaseOrdinal(b);
  if (pa !== pb) return pa - pb;
  const ra = isPodReady(a);
  const rb = isPodReady(b);
  if (ra !== rb) return ra ? 1 : -1;
  const ca = deletionCost(a);
  const cb = deletionCost(b);
  if (ca !== cb) return ca - cb;
  const ka = rank(a);
  const kb = rank(b);
  if (ka !== kb) return kb - ka;
  if (ra && rb) {
    const c = compareAfterOrZero(parseTime(podReadyCondition(a)?.lastTransitionTime), parseTime(podReadyCondition(b)?.lastTransitionTime));
    if (c !== 0) return c;
  }
  const xa = maxContainerRestarts(a);
  const xb = maxContainerRestarts(b);
  if (xa !== xb) return xb - xa;
  return compareAfterOrZero(parseTime(a.metadata?.creationTimestamp), parseTime(b.metadata?.creationTimestamp));
}

/** getPodsToDelete: the `count` pods ranked first for deletion. */
export function podsToDelete(pods: Obj[], count: number): Obj[] {
  if (count <= 0) return [];
  const onNode = new Map<string, number>();
  for (const p of pods) {
    const n = String(p.spec?.nodeName ?? "");
    onNode.set(n, (onNode.get(n) ?? 0) + 1);
  }
  const rank = (p: Obj): number => onNode.get(String(p.spec?.nodeName ?? "")) ?? 0;
  return [...pods].sort((a, b) => compareForDeletion(a, b, rank)).slice(0, count);
}

/** A new pod from the ReplicaSet's template (controller.GetPodFromTemplate). */
export function podFromTemplate(rs: Obj): Obj {
  const tpl = rs.spec?.template ?? {};
  const tmeta = tpl.metadata ?? {};
  const metadata: Obj = {
    generateName: `${rs.metadata?.name}-`,
    namespace: rs.metadata?.namespace,
    labels: { ...(tmeta.labels ?? {}) },
  };
  if (tmeta.annotations && Object.keys(tmeta.annotations).length) metadata.annotations = { ...tmeta.annotations };
  if (Array.isArray(tmeta.finalizers) && tmeta.finalizers.length) metadata.finalizers = [...tmeta.finalizers];
  metadata.ownerReferences = [newControllerRef(rs, "apps/v1", "ReplicaSet")];
  return { apiVersion: "v1", kind: "Pod", metadata, spec: structuredClone(tpl.spec ?? {}) };
}

/** The template's labels as an equality selector (labels.Set.AsSelector). */
function templateLabelsMatch(tplLabels: Record<string, string> | undefined, podLabels: Record<string, string> | undefined): boolean {
  const pl = podLabels ?? {};
  for (const [k, v] of Object.entries(tplLabels ?? {})) if (!Object.hasOwn(pl, k) || pl[k] !== v) return false;
  return true;
}

/** The status upstream's calculateStatus would write, given the claimed active pods. */
export function replicaSetStatus(rs: Obj, claimed: Obj[], now: Date): Obj {
  const minReady = Number(rs.spec?.minReadySeconds ?? 0) || 0;
  const tplLabels = rs.spec?.template?.metadata?.labels;
  let fullyLabeled = 0;
  let ready = 0;
  let available = 0;
  for (const pod of claimed) {
    if (templateLabelsMatch(tplLabels, pod.metadata?.labels)) fullyLabeled++;
    if (isPodReady(pod)) {
      ready++;
      if (isPodAvailable(pod, minReady, now)) available++;
    }
  }
  const status: Obj = { replicas: claimed.length };
  if (fullyLabeled) status.fullyLabeledReplicas = fullyLabeled;
  if (ready) status.readyReplicas = ready;
  if (available) status.availableReplicas = available;
  const generation = rs.metadata?.generation;
  if (typeof generation === "number" && generation !== 0) status.observedGeneration = generation;
  const conditions = Array.isArray(rs.status?.conditions) ? rs.status.conditions.filter((c: Obj) => c?.type !== "ReplicaFailure") : [];
  if (conditions.length) status.conditions = conditions;
  return status;
}

/**
 * Reconciles one ReplicaSet against all pods of its namespace. Adopts matching active
 * orphans, releases owned pods that no longer match, creates or deletes pods to reach
 * spec.replicas, and writes status (replicas counts the active pods it owns when the
 * reconcile starts, as upstream) when it changed. requeueAfterMs is set when a ready pod
 * is waiting out minReadySeconds.
 */
export function reconcileReplicaSet(rs: Obj, pods: Obj[], now: Date): ReconcileResult {
  if (rs.metadata?.deletionTimestamp) return { actions: [] };
  const actions: Action[] = [];
  const uid: string | undefined = rs.metadata?.uid;
  const ns: string | undefined = rs.metadata?.namespace;
  const selector = selectorOf(rs.spec?.selector);
  // An invalid selector stops the sync (upstream returns the conversion error).
  if (selector === null) return { actions: [] };
  // Validation rejects an empty selector; should one get through, it keeps the pods it
  // owns but adopts nothing (upstream would adopt every orphan of the namespace).
  const selectsAll = selector.length === 0;
  const matches = (pod: Obj): boolean => selectsAll || matchLabels(selector, pod.metadata?.labels);

  // claimPods over the active pods (upstream filters active pods before claiming).
  const claimed: Obj[] = [];
  for (const pod of pods) {
    if (!isPodActive(pod)) continue;
    if (ns !== undefined && pod.metadata?.namespace !== undefined && pod.metadata.namespace !== ns) continue;
    const ref = controllerRef(pod);
    if (ref) {
      if (!isControlledBy(pod, uid)) continue;
      if (matches(pod)) claimed.push(pod);
      else actions.push({ type: "update", gvr: PODS, object: withoutOwnerRef(pod, uid!) });
      continue;
    }
    if (uid === undefined || selectsAll || !matches(pod)) continue;
    actions.push({ type: "update", gvr: PODS, object: withOwnerRef(pod, newControllerRef(rs, "apps/v1", "ReplicaSet")) });
    claimed.push(pod);
  }

  // manageReplicas.
  const want = typeof rs.spec?.replicas === "number" ? rs.spec.replicas : 1;
  const diff = claimed.length - want;
  if (diff < 0) {
    const n = Math.min(-diff, BURST_REPLICAS);
    for (let i = 0; i < n; i++) {
      const pod = podFromTemplate(rs);
      actions.push({ type: "create", gvr: PODS, object: pod });
      const name = pod.metadata.name ?? pod.metadata.generateName;
      actions.push({ type: "event", involved: rs, eventType: "Normal", reason: "SuccessfulCreate", message: `Created pod: ${name}` });
    }
  } else if (diff > 0) {
    for (const pod of podsToDelete(claimed, Math.min(diff, BURST_REPLICAS))) {
      actions.push({
        type: "delete",
        gvr: PODS,
        namespace: pod.metadata?.namespace ?? ns,
        name: pod.metadata?.name,
        preconditionUID: pod.metadata?.uid,
      });
      actions.push({
        type: "event",
        involved: rs,
        eventType: "Normal",
        reason: "SuccessfulDelete",
        message: `Deleted pod: ${pod.metadata?.name}`,
      });
    }
  }

  // Status, only when it changed.
  const status = replicaSetStatus(rs, claimed, now);
  if (!semanticEqual(rs.status ?? {}, status, true)) {
    actions.push({ type: "update", gvr: REPLICASETS, subresource: "status", object: { ...structuredClone(rs), status } });
  }

  const result: ReconcileResult = { actions };
  const minReady = Number(rs.spec?.minReadySeconds ?? 0) || 0;
  const wait = msUntilNextAvailable(claimed, minReady, now);
  if (wait !== undefined) result.requeueAfterMs = wait;
  return result;
}
