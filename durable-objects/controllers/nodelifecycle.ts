// Node lifecycle controller and NoExecute taint manager, after kube-controller-manager's
// pkg/controller/nodelifecycle (monitorNodeHealth, doNoScheduleTaintingPass,
// doNoExecuteTaintingPass, MarkPodsNotReady) and pkg/controller/tainteviction.
//
// A pure, level-based reconciler: from one snapshot of a node, its kube-node-lease Lease
// and the pods bound to it, it returns the writes that move the cluster one step
// towards the state the snapshot calls for. The steps, each taken on a later pass once
// the previous write is visible in the snapshot:
//
//   1. health: the lease (or the Ready condition's heartbeat) is older than the grace
//      period → conditions to Unknown (status write), event NodeNotReady, the node's
//      pods' Ready condition to False.
//   2. taints: the node's persisted Ready condition says which of the
//      node.kubernetes.io/unreachable or node.kubernetes.io/not-ready NoExecute +
//      NoSchedule taints it carries (spec write).
//   3. eviction: pods that do not tolerate a persisted NoExecute taint are deleted at
//      once; pods tolerating it for tolerationSeconds are deleted at
//      taint.timeAdded + tolerationSeconds (requeueAfterMs points at the next deadline).
//
// At most one write to the node is returned per pass: the status write and the spec
// write both compare-and-swap on the resourceVersion we read, so returning both would
// always lose one to a Conflict. The held-back write comes on the next pass (the node's
// own watch event, or the short follow-up requeue).

import { deepEqual } from "../../workers/shared/patch.ts";
import { isObj, objects, str } from "./podutil.ts";
import { type Action, NODES, type Obj, PODS, type ReconcileResult } from "./types.ts";

export interface NodeLifecycleConfig {
  /** How long a node may go without renewing its lease before it is unreachable (kube's node-monitor-grace-period). */
  gracePeriodMs: number;
  /**
   * Per-cluster override of the default 300 s: when set, pods' default not-ready /
   * unreachable tolerations (the ones the DefaultTolerationSeconds admission adds) are
   * treated as tolerating this many seconds. For edge sites that must ride out long
   * disconnections without their pods being evicted.
   */
  evictionTolerationSeconds?: number;
}

export const DEFAULT_NODE_LIFECYCLE_CONFIG: NodeLifecycleConfig = { gracePeriodMs: 40_000 };

export const TAINT_NODE_UNREACHABLE = "node.kubernetes.io/unreachable";
export const TAINT_NODE_NOT_READY = "node.kubernetes.io/not-ready";
/** The tolerationSeconds of the tolerations the DefaultTolerationSeconds admission adds. */
export const DEFAULT_TOLERATION_SECONDS = 300;
/** requeueAfterMs when a node write was held back until the previous one is visible. */
export const FOLLOW_UP_REQUEUE_MS = 100;

/** The conditions kube's node controller turns Unknown when the kubelet goes silent. */
const NODE_CONDITION_TYPES = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

// --------------------------------------------------------------------------- helpers

/** RFC3339 without fractional seconds, as metav1.Time serialises. */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}

/** Parses metav1.Time / metav1.MicroTime (any number of fractional digits); undefined when unset or invalid. */
export function parseTime(s: unknown): number | undefined {
  if (typeof s !== "string" || s === "") return undefined;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.exec(s);
  const t = m ? Date.parse(m[1] + (m[2] ? m[2].slice(0, 4).padEnd(4, "0") : "") + m[3].toUpperCase()) : Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

// --------------------------------------------------------------------------- tolerations

/**
 * v1.Toleration.ToleratesTaint: the effect must match unless the toleration's is empty,
 * the key must match unless the toleration's is empty (an empty key with Exists
 * tolerates everything), operator Exists ignores the value and Equal (the default)
 * compares it.
 */
export function toleratesTaint(toleration: Obj, taint: Obj): boolean {
  if (str(toleration.effect) !== "" && toleration.effect !== taint.effect) return false;
  if (str(toleration.key) !== "" && toleration.key !== taint.key) return false;
  switch (str(toleration.operator)) {
    case "Exists":
      return true;
    case "":
    case "Equal":
      return str(toleration.value) === str(taint.value);
    default:
      return false;
  }
}

/** The shape the DefaultTolerationSeconds admission adds for not-ready and unreachable. */
function isDefaultToleration(t: Obj): boolean {
  return (
    (t.key === TAINT_NODE_NOT_READY || t.key === TAINT_NODE_UNREACHABLE) &&
    t.operator === "Exists" &&
    t.effect === "NoExecute" &&
    str(t.value) === "" &&
    t.tolerationSeconds === DEFAULT_TOLERATION_SECONDS
  );
}

/** How long the toleration tolerates its taint: seconds, or undefined for forever. */
function tolerationSeconds(t: Obj, cfg: NodeLifecycleConfig): number | undefined {
  if (typeof t.tolerationSeconds !== "number") return undefined;
  if (cfg.evictionTolerationSeconds !== undefined && isDefaultToleration(t)) return cfg.evictionTolerationSeconds;
  return t.tolerationSeconds;
}

/**
 * When the taint manager evicts the pod given the node's NoExecute taints: "now" when
 * some taint is not tolerated (or tolerated for <= 0 s), the earliest
 * timeAdded + tolerationSeconds over the taints otherwise, undefined when tolerated
 * forever. As kube (GetMatchingTolerations), each taint is matched by the first
 * toleration that tolerates it. A taint without timeAdded (not one of ours) starts no
 * timed eviction: a level-based controller has no other record of when it appeared.
 */
function evictionTime(pod: Obj, noExecute: Obj[], nowMs: number, cfg: NodeLifecycleConfig): number | undefined {
  const tolerations = objects(pod.spec?.tolerations);
  let at: number | undefined;
  for (const taint of noExecute) {
    const tol = tolerations.find((t) => toleratesTaint(t, taint));
    if (!tol) return nowMs;
    const secs = tolerationSeconds(tol, cfg);
    if (secs === undefined) continue;
    if (secs <= 0) return nowMs;
    const added = parseTime(taint.timeAdded);
    if (added === undefined) continue;
    const deadline = added + secs * 1000;
    if (at === undefined || deadline < at) at = deadline;
  }
  return at;
}

// --------------------------------------------------------------------------- taints

function isManagedTaint(t: Obj): boolean {
  return (t.key === TAINT_NODE_UNREACHABLE || t.key === TAINT_NODE_NOT_READY) && (t.effect === "NoExecute" || t.effect === "NoSchedule");
}

/**
 * The node's taints as the Ready condition status calls for: ours replaced by the pair
 * for Unknown (unreachable) or False (not-ready), none for True; a node without a Ready
 * condition keeps what it has. Other taints, and ours that stay, keep their place and
 * timeAdded; new ones are appended (NoExecute stamped with timeAdded now).
 */
function desiredTaints(current: Obj[], readyStatus: string | undefined, nowMs: number): Obj[] {
  let key: string | undefined;
  if (readyStatus === "Unknown") key = TAINT_NODE_UNREACHABLE;
  else if (readyStatus === "False") key = TAINT_NODE_NOT_READY;
  else if (readyStatus !== "True") return current;
  const out: Obj[] = [];
  for (const t of current) {
    if (!isManagedTaint(t)) out.push(t);
    else if (t.key === key && !out.some((o) => o.key === t.key && o.effect === t.effect)) {
      out.push(t.effect === "NoExecute" && parseTime(t.timeAdded) === undefined ? { ...t, timeAdded: rfc3339(nowMs) } : t);
    }
  }
  if (key !== undefined) {
    for (const effect of ["NoExecute", "NoSchedule"]) {
      if (out.some((t) => t.key === key && t.effect === effect)) continue;
      out.push(effect === "NoExecute" ? { key, effect, timeAdded: rfc3339(nowMs) } : { key, effect });
    }
  }
  return out;
}

function sameTaint(a: Obj, b: Obj): boolean {
  return a.key === b.key && a.effect === b.effect && str(a.value) === str(b.value);
}

// --------------------------------------------------------------------------- reconcile

/**
 * One pass of the node lifecycle controller for one node.
 *
 * - Health: healthy while the newest of lease.spec.renewTime and the Ready condition's
 *   lastHeartbeatTime (the node's creationTimestamp when it has neither) plus the grace
 *   period is after now. An unhealthy node whose Ready condition is not yet Unknown gets
 *   Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown / NodeStatusUnknown
 *   (missing ones added as NodeStatusNeverUpdated, as kube), an event NodeNotReady, and
 *   while it stays unhealthy the Ready condition of its pods is set to False. A healthy
 *   node whose Ready condition is still Unknown is left for its agent to report Ready.
 * - Taints (spec write, only once no status write is pending): Ready Unknown →
 *   unreachable NoExecute (timeAdded now) + NoSchedule; Ready False → not-ready pair;
 *   Ready True → neither. Other taints are never touched.
 * - Eviction for each NoExecute taint persisted on the node (and staying): see
 *   evictionTime. Terminating pods are skipped; evicted pods are deleted with
 *   preconditionUID, with an event TaintManagerEviction.
 * - requeueAfterMs: the earliest of the lease expiry of a healthy node and the next
 *   eviction deadline (or a short follow-up when a node write was held back).
 */
export function reconcileNode(node: Obj, lease: Obj | undefined, podsOnNode: Obj[], now: Date, cfg: NodeLifecycleConfig): ReconcileResult {
  const actions: Action[] = [];
  const nowMs = now.getTime();
  const nowStr = rfc3339(nowMs);
  const name = str(node.metadata?.name);
  const gracePeriodMs = Number.isFinite(cfg.gracePeriodMs) ? cfg.gracePeriodMs : DEFAULT_NODE_LIFECYCLE_CONFIG.gracePeriodMs;
  let requeue: number | undefined;
  const wake = (ms: number): void => {
    const d = Math.max(0, ms);
    if (requeue === undefined || d < requeue) requeue = d;
  };

  const conditions = objects(node.status?.conditions);
  const ready = conditions.find((c) => c.type === "Ready");

  // --- health
  const renew = parseTime(lease?.spec?.renewTime);
  const heartbeat = parseTime(ready?.lastHeartbeatTime);
  let probe = renew !== undefined && heartbeat !== undefined ? Math.max(renew, heartbeat) : (renew ?? heartbeat);
  probe ??= parseTime(node.metadata?.creationTimestamp);
  const healthy = probe === undefined || probe + gracePeriodMs > nowMs;
  if (healthy && probe !== undefined) wake(probe + gracePeriodMs - nowMs);

  let readyStatus: string | undefined = ready?.status;
  let nodeWritten = false;
  if (!healthy && readyStatus !== "Unknown") {
    const next = clone(node);
    next.status ??= {};
    const conds: Obj[] = Array.isArray(next.status.conditions) ? next.status.conditions : [];
    for (const type of NODE_CONDITION_TYPES) {
      const c = conds.find((x) => isObj(x) && x.type === type);
      if (!c) {
        conds.push({
          type,
          status: "Unknown",
          lastHeartbeatTime: node.metadata?.creationTimestamp,
          lastTransitionTime: nowStr,
          reason: "NodeStatusNeverUpdated",
          message: "Kubelet never posted node status.",
        });
      } else if (c.status !== "Unknown") {
        c.status = "Unknown";
        c.reason = "NodeStatusUnknown";
        c.message = "Kubelet stopped posting node status.";
        c.lastTransitionTime = nowStr;
      }
    }
    next.status.conditions = conds;
    actions.push({ type: "update", gvr: NODES, object: next, subresource: "status" });
    actions.push({
      type: "event",
      involved: node,
      eventType: "Normal",
      reason: "NodeNotReady",
      message: `Node ${name} status is now: NodeNotReady`,
    });
    readyStatus = "Unknown";
    nodeWritten = true;
  }

  const pods = podsOnNode.filter((p) => isObj(p) && str(p.spec?.nodeName) === name);

  // MarkPodsNotReady, for as long as nobody else is around to write these pods' status.
  if (!healthy && readyStatus === "Unknown") {
    for (const pod of pods) {
      const c = objects(pod.status?.conditions).find((x) => x.type === "Ready");
      if (!c || c.status === "False") continue;
      const next = clone(pod);
      const nc = (next.status.conditions as Obj[]).find((x) => isObj(x) && x.type === "Ready") as Obj;
      nc.status = "False";
      nc.reason = "NodeNotReady";
      nc.lastTransitionTime = nowStr;
      actions.push({ type: "update", gvr: PODS, object: next, subresource: "status" });
    }
  }

  // --- taints
  const current = objects(node.spec?.taints);
  const desired = desiredTaints(current, readyStatus, nowMs);
  if (!deepEqual(current, desired)) {
    if (nodeWritten) {
      wake(FOLLOW_UP_REQUEUE_MS);
    } else {
      const next = clone(node);
      next.spec ??= {};
      if (desired.length > 0) next.spec.taints = clone(desired);
      else delete next.spec.taints;
      actions.push({ type: "update", gvr: NODES, object: next });
    }
  }

  // --- eviction: NoExecute taints persisted on the node that this pass keeps.
  const noExecute = current.filter((t) => t.effect === "NoExecute" && desired.some((d) => sameTaint(d, t)));
  if (noExecute.length > 0) {
    for (const pod of pods) {
      if (pod.metadata?.deletionTimestamp) continue;
      const at = evictionTime(pod, noExecute, nowMs, cfg);
      if (at === undefined) continue;
      if (at > nowMs) {
        wake(at - nowMs);
        continue;
      }
      const ns = str(pod.metadata?.namespace);
      const podName = str(pod.metadata?.name);
      // Delete first: the host stops at a failed write, so the event only follows a
      // deletion that happened.
      actions.push({ type: "delete", gvr: PODS, namespace: ns, name: podName, preconditionUID: pod.metadata?.uid });
      actions.push({
        type: "event",
        involved: pod,
        eventType: "Normal",
        reason: "TaintManagerEviction",
        message: `Marking for deletion Pod ${ns}/${podName}`,
      });
    }
  }

  return requeue === undefined ? { actions } : { actions, requeueAfterMs: requeue };
}
