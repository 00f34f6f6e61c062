// Filters: can this pod run on this node? Each answers null (fits) or the reason in
// kube-scheduler's wording, which plan() counts into the "0/N nodes are available: ..."
// message. They run in kube-scheduler's default plugin order (NodeUnschedulable,
// NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit) so the reason a
// node reports is the one kube would report; the first failing filter decides. Node
// readiness is checked first (kube relies on the lifecycle controller's not-ready taint;
// we also refuse a not-Ready node that has no such taint yet).
//
// Pure module: no runtime APIs, safe in workerd and Node.

import type { Obj } from "../controllers/types.ts";
import { type NodeInfo, newNodeInfo, type PodInfo, podInfo, TAINT_UNSCHEDULABLE } from "./snapshot.ts";

export const REASON_NOT_READY = "node(s) were not ready";
export const REASON_UNSCHEDULABLE = "node(s) were unschedulable";
export const REASON_NODE_NAME = "node(s) didn't match the requested node name";
export const REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector";
export const REASON_HOST_PORTS = "node(s) didn't have free ports for the requested pod ports";
export const REASON_TOO_MANY_PODS = "Too many pods";
export const REASON_INSUFFICIENT_CPU = "Insufficient cpu";
export const REASON_INSUFFICIENT_MEMORY = "Insufficient memory";

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function arr(v: unknown): any[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

// ---------------------------------------------------------------------------------------
// Tolerations (k8s.io/api/core/v1 Toleration.ToleratesTaint)

/**
 * Whether one toleration tolerates a taint: an empty effect matches every effect, an
 * empty key matches every key (validation only allows that with Exists), Exists ignores
 * the value and Equal (or no operator) requires the same value.
 */
export function toleratesTaint(toleration: Obj, taint: Obj): boolean {
  if (!isObj(toleration)) return false;
  const effect = str(toleration.effect);
  if (effect !== "" && effect !== str(taint.effect)) return false;
  const key = str(toleration.key);
  if (key !== "" && key !== str(taint.key)) return false;
  switch (toleration.operator) {
    case undefined:
    case null:
    case "":
    case "Equal":
      return str(toleration.value) === str(taint.value);
    case "Exists":
      return true;
    default:
      return false;
  }
}

/** Whether any of the tolerations tolerates the taint ({key, value, effect}). */
export function tolerates(tolerations: readonly Obj[] | null | undefined, taint: Obj): boolean {
  if (!Array.isArray(tolerations)) return false;
  for (const t of tolerations) if (toleratesTaint(t, taint)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------
// Node affinity (k8s.io/component-helpers/scheduling/corev1/nodeaffinity)

interface Requirement {
  key: string;
  op: string;
  values: string[];
  /** Gt/Lt: the integer bound. */
  bound: number;
}

/** An OR-able term: all of exprs (labels) and fields must match; an invalid term matches nothing. */
interface Term {
  valid: boolean;
  exprs: Requirement[];
  fields: Requirement[];
}

const INT_RE = /^[+-]?[0-9]+$/;

function compileExpression(e: unknown): Requirement | null {
  if (!isObj(e)) return null;
  const values = arr(e.values).map(String);
  const r: Requirement = { key: str(e.key), op: str(e.operator), values, bound: 0 };
  switch (r.op) {
    case "In":
    case "NotIn":
      return values.length > 0 ? r : null;
    case "Exists":
    case "DoesNotExist":
      return values.length === 0 ? r : null;
    case "Gt":
    case "Lt":
      if (values.length !== 1 || !INT_RE.test(values[0])) return null;
      r.bound = Number(values[0]);
      return r;
    default:
      return null;
  }
}

function compileField(e: unknown): Requirement | null {
  if (!isObj(e)) return null;
  const values = arr(e.values).map(String);
  // Only metadata.name is a node field; In/NotIn with exactly one value.
  if (e.key !== "metadata.name" || (e.operator !== "In" && e.operator !== "NotIn") || values.length !== 1) return null;
  return { key: "metadata.name", op: e.operator, values, bound: 0 };
}

function compileTerm(t: unknown): Term {
  const exprs: Requirement[] = [];
  const fields: Requirement[] = [];
  let valid = isObj(t);
  if (isObj(t)) {
    for (const e of arr(t.matchExpressions)) {
      const r = compileExpression(e);
      if (r) exprs.push(r);
      else valid = false;
    }
    for (const e of arr(t.matchFields)) {
      const r = compileField(e);
      if (r) fields.push(r);
      else valid = false;
    }
  }
  // An empty term matches no objects.
  if (exprs.length === 0 && fields.length === 0) valid = false;
  return { valid, exprs, fields };
}

function matchExpression(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.op) {
    case "In":
      return has && r.values.includes(labels[r.key]);
    case "NotIn":
      return !has || !r.values.includes(labels[r.key]);
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
    case "Gt":
    case "Lt": {
      if (!has || !INT_RE.test(labels[r.key])) return false;
      const v = Number(labels[r.key]);
      return r.op === "Gt" ? v > r.bound : v < r.bound;
    }
    default:
      return false;
  }
}

function matchTerm(term: Term, ni: NodeInfo): boolean {
  if (!term.valid) return false;
  for (const r of term.exprs) if (!matchExpression(r, ni.labels)) return false;
  for (const r of term.fields) {
    const hit = r.values.includes(ni.name);
    if (r.op === "In" ? !hit : hit) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Compiled pods

/** PodInfo plus what the filters need, parsed once per pod. */
export interface FilterPod extends PodInfo {
  /** spec.nodeName, "" when unset. */
  nodeName: string;
  tolerations: Obj[];
  toleratesUnschedulable: boolean;
  nodeSelector: [string, string][];
  /** Required node affinity terms (ORed), or null when the pod has none. */
  affinityTerms: Term[] | null;
}

const UNSCHEDULABLE_TAINT = { key: TAINT_UNSCHEDULABLE, value: "", effect: "NoSchedule" };

export function compilePod(pod: Obj): FilterPod {
  const spec = isObj(pod?.spec) ? pod.spec : {};
  const tolerations = arr(spec.tolerations).filter(isObj);
  const nodeSelector: [string, string][] = isObj(spec.nodeSelector)
    ? Object.entries(spec.nodeSelector).map(([k, v]) => [k, String(v)])
    : [];
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const affinityTerms = isObj(required) ? arr(required.nodeSelectorTerms).map(compileTerm) : null;
  return {
    ...podInfo(pod),
    nodeName: str(spec.nodeName),
    tolerations,
    toleratesUnschedulable: tolerates(tolerations, UNSCHEDULABLE_TAINT),
    nodeSelector,
    affinityTerms,
  };
}

// ---------------------------------------------------------------------------------------
// The filters

/** Not Ready (and no lifecycle taint to speak for it), or cordoned. */
export function checkNodeCondition(pod: FilterPod, ni: NodeInfo): string | null {
  // A not-Ready node carrying the lifecycle controller's not-ready/unreachable NoSchedule
  // taint is left to the taint filter, which gives kube's message (and lets pods that
  // tolerate it, such as DaemonSet pods, through).
  if (!ni.ready && !ni.notReadyTainted) return REASON_NOT_READY;
  if (ni.unschedulable && !pod.toleratesUnschedulable) return REASON_UNSCHEDULABLE;
  return null;
}

export function checkNodeName(pod: FilterPod, ni: NodeInfo): string | null {
  return pod.nodeName === "" || pod.nodeName === ni.name ? null : REASON_NODE_NAME;
}

/** The first NoSchedule/NoExecute taint the pod does not tolerate. */
export function checkTaints(pod: FilterPod, ni: NodeInfo): string | null {
  for (const t of ni.taints) if (!tolerates(pod.tolerations, t)) return t.message;
  return null;
}

/** spec.nodeSelector (every label equal) and required node affinity (any term matches). */
export function checkNodeAffinity(pod: FilterPod, ni: NodeInfo): string | null {
  for (const [k, v] of pod.nodeSelector) {
    if (!Object.hasOwn(ni.labels, k) || ni.labels[k] !== v) return REASON_NODE_AFFINITY;
  }
  const terms = pod.affinityTerms;
  if (terms === null) return null;
  for (const t of terms) if (matchTerm(t, ni)) return null;
  return REASON_NODE_AFFINITY;
}

/** HostPortInfo.CheckConflict: same protocol and port, and the same IP or either side 0.0.0.0. */
export function checkHostPorts(pod: FilterPod | PodInfo, ni: NodeInfo): string | null {
  for (const hp of pod.hostPorts) {
    const conflict =
      hp.ip === "0.0.0.0" ? ni.usedProtoPorts.has(hp.protoPortKey) : ni.usedHostPorts.has(hp.wildcardKey) || ni.usedHostPorts.has(hp.key);
    if (conflict) return REASON_HOST_PORTS;
  }
  return null;
}

/**
 * NodeResourcesFit: every reason that applies ("Too many pods", "Insufficient cpu",
 * "Insufficient memory"), or null. A resource the pod does not request never fails.
 */
export function checkResources(pod: FilterPod | PodInfo, ni: NodeInfo): string[] | null {
  const a = ni.allocatable;
  const used = ni.requested;
  const want = pod.requests;
  let out: string[] | null = null;
  if (used.pods + 1 > a.pods) (out ??= []).push(REASON_TOO_MANY_PODS);
  if (want.milliCPU > 0 && want.milliCPU > a.milliCPU - used.milliCPU) (out ??= []).push(REASON_INSUFFICIENT_CPU);
  if (want.memory > 0 && want.memory > a.memory - used.memory) (out ??= []).push(REASON_INSUFFICIENT_MEMORY);
  return out;
}

/**
 * All filters in order on a compiled pod: null when the node fits, else the reason(s) of
 * the first filter that fails (only the resources filter gives several). The hot path
 * of plan().
 */
export function runFilters(pod: FilterPod, ni: NodeInfo): string | string[] | null {
  if (!ni.ready || ni.unschedulable) {
    const r = checkNodeCondition(pod, ni);
    if (r !== null) return r;
  }
  if (pod.nodeName !== "" && pod.nodeName !== ni.name) return REASON_NODE_NAME;
  if (ni.taints.length > 0) {
    const r = checkTaints(pod, ni);
    if (r !== null) return r;
  }
  if (pod.nodeSelector.length > 0 || pod.affinityTerms !== null) {
    const r = checkNodeAffinity(pod, ni);
    if (r !== null) return r;
  }
  if (pod.hostPorts.length > 0) {
    const r = checkHostPorts(pod, ni);
    if (r !== null) return r;
  }
  return checkResources(pod, ni);
}

/** Every reason the node rejects the pod for (those of the first failing filter); [] when it fits. */
export function filterNodeReasons(pod: Obj, nodeInfo: NodeInfo): string[] {
  const r = runFilters(compilePod(pod), nodeInfo);
  return r === null ? [] : typeof r === "string" ? [r] : r;
}

/** null when the pod fits the node, else the (first) reason in kube-scheduler's wording. */
export function filterNode(pod: Obj, nodeInfo: NodeInfo): string | null {
  const r = runFilters(compilePod(pod), nodeInfo);
  return r === null ? null : typeof r === "string" ? r : r[0];
}

/**
 * Whether the node satisfies the pod's nodeSelector and required node affinity
 * (component-helpers' GetRequiredNodeAffinity(pod).Match(node)), e.g. for DaemonSets.
 */
export function podMatchesNodeAffinity(pod: Obj, node: Obj): boolean {
  return checkNodeAffinity(compilePod(pod), newNodeInfo(node)) === null;
}
