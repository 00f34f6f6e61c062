// Small helpers shared by the ReplicaSet and Deployment controllers: pod state (active,
// ready, available, as k8s.io/kubernetes/pkg/api/v1/pod and pkg/controller define them),
// owner references, time formatting and a canonical JSON used for semantic comparisons.
//
// Pure module: no runtime APIs, no clock (callers pass `now`).

import { fromLabelSelectorObject, type LabelSelector } from "../../workers/shared/selectors.ts";
import type { Obj } from "./types.ts";

// ---------------------------------------------------------------------------------------
// Untrusted JSON

export function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The object elements of v when it is an array, else none. */
export function objects(v: unknown): Obj[] {
  return Array.isArray(v) ? v.filter(isObj) : [];
}

export function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

// ---------------------------------------------------------------------------------------
// Time

/** RFC 3339 without fractional seconds (metav1.Time's JSON form). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Milliseconds since the epoch of an RFC 3339 timestamp; undefined when absent/invalid (Go's zero time). */
export function parseTime(v: unknown): number | undefined {
  if (typeof v !== "string" || v === "") return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

// ---------------------------------------------------------------------------------------
// Pods

/** controller.IsPodActive: not Succeeded, not Failed, not being deleted. */
export function isPodActive(pod: Obj): boolean {
  const phase = pod.status?.phase;
  return phase !== "Succeeded" && phase !== "Failed" && !pod.metadata?.deletionTimestamp;
}

/** The pod's Ready condition, if any. */
export function podReadyCondition(pod: Obj): Obj | undefined {
  const conds = pod.status?.conditions;
  if (!Array.isArray(conds)) return undefined;
  return conds.find((c: Obj) => c && c.type === "Ready");
}

/** podutil.IsPodReady: the Ready condition is True. */
export function isPodReady(pod: Obj): boolean {
  return podReadyCondition(pod)?.status === "True";
}

/**
 * When a ready pod becomes available (ms since epoch): its Ready condition's
 * lastTransitionTime + minReadySeconds. undefined when the pod is not ready, or ready
 * without a transition time (then it only counts as available with minReadySeconds 0).
 */
export function podAvailableAt(pod: Obj, minReadySeconds: number): number | undefined {
  if (!isPodReady(pod)) return undefined;
  const ltt = parseTime(podReadyCondition(pod)?.lastTransitionTime);
  if (ltt === undefined) return undefined;
  return ltt + Math.max(0, minReadySeconds) * 1000;
}

/**
 * podutil.IsPodAvailable: ready, and ready for at least minReadySeconds. Upstream compares
 * with a strict Before at nanosecond precision; here a pod is available from the instant
 * lastTransitionTime + minReadySeconds on, so a reconcile requeued for exactly that
 * moment sees it available.
 */
export function isPodAvailable(pod: Obj, minReadySeconds: number, now: Date): boolean {
  if (!isPodReady(pod)) return false;
  if (!minReadySeconds || minReadySeconds <= 0) return true;
  const at = podAvailableAt(pod, minReadySeconds);
  return at !== undefined && at <= now.getTime();
}

/**
 * Milliseconds until the earliest of these pods that is ready but not yet available
 * becomes available (for requeueAfterMs), or undefined when there is none.
 */
export function msUntilNextAvailable(pods: Obj[], minReadySeconds: number, now: Date): number | undefined {
  if (!minReadySeconds || minReadySeconds <= 0) return undefined;
  let best: number | undefined;
  for (const pod of pods) {
    const at = podAvailableAt(pod, minReadySeconds);
    if (at === undefined) continue;
    const ms = at - now.getTime();
    if (ms > 0 && (best === undefined || ms < best)) best = ms;
  }
  return best;
}

/** The highest restartCount over a pod's containers and init containers. */
export function maxContainerRestarts(pod: Obj): number {
  let max = 0;
  for (const key of ["containerStatuses", "initContainerStatuses"]) {
    const list = pod.status?.[key];
    if (!Array.isArray(list)) continue;
    for (const cs of list) {
      const n = typeof cs?.restartCount === "number" ? cs.restartCount : 0;
      if (n > max) max = n;
    }
  }
  return max;
}

// ---------------------------------------------------------------------------------------
// Owner references

/** The ownerReference with controller: true, if any (metav1.GetControllerOf). */
export function controllerRef(obj: Obj): Obj | undefined {
  const refs = obj.metadata?.ownerReferences;
  if (!Array.isArray(refs)) return undefined;
  return refs.find((r: Obj) => r && r.controller === true);
}

/** Whether obj's controller reference points at the object with this uid. */
export function isControlledBy(obj: Obj, ownerUID: string | undefined): boolean {
  const ref = controllerRef(obj);
  return ref !== undefined && ownerUID !== undefined && ref.uid === ownerUID;
}

/** metav1.NewControllerRef. */
export function newControllerRef(owner: Obj, apiVersion: string, kind: string): Obj {
  return {
    apiVersion,
    kind,
    name: owner.metadata?.name,
    uid: owner.metadata?.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** A copy of obj with ownerRef appended to its ownerReferences (adoption). */
export function withOwnerRef(obj: Obj, ownerRef: Obj): Obj {
  const copy = structuredClone(obj);
  copy.metadata ??= {};
  const refs = Array.isArray(copy.metadata.ownerReferences) ? copy.metadata.ownerReferences : [];
  copy.metadata.ownerReferences = [...refs.filter((r: Obj) => r?.uid !== ownerRef.uid), ownerRef];
  return copy;
}

/** A copy of obj without the ownerReferences pointing at ownerUID (release). */
export function withoutOwnerRef(obj: Obj, ownerUID: string): Obj {
  const copy = structuredClone(obj);
  const refs = Array.isArray(copy.metadata?.ownerReferences) ? copy.metadata.ownerReferences : [];
  const rest = refs.filter((r: Obj) => r?.uid !== ownerUID);
  if (rest.length) copy.metadata.ownerReferences = rest;
  else delete copy.metadata.ownerReferences;
  return copy;
}

// ---------------------------------------------------------------------------------------
// Selectors

/**
 * A metav1.LabelSelector object as requirements; null when absent or invalid (matches
 * nothing). An empty selector ({}) gives [] (matches everything): callers decide.
 */
export function selectorOf(sel: unknown): LabelSelector | null {
  if (sel === null || typeof sel !== "object" || Array.isArray(sel)) return null;
  try {
    return fromLabelSelectorObject(sel as Obj);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// Ordering

/** controller.ReplicaSetsByCreationTimestamp / pod age: older first, ties by name. */
export function compareByCreation(a: Obj, b: Obj): number {
  const ta = parseTime(a.metadata?.creationTimestamp) ?? 0;
  const tb = parseTime(b.metadata?.creationTimestamp) ?? 0;
  if (ta !== tb) return ta - tb;
  const na = String(a.metadata?.name ?? "");
  const nb = String(b.metadata?.name ?? "");
  return na < nb ? -1 : na > nb ? 1 : 0;
}

// ---------------------------------------------------------------------------------------
// Canonical JSON

function isPlainObject(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * The value in a canonical form for semantic comparison (as apimachinery's
 * equality.Semantic.DeepEqual, which treats nil and empty slices/maps alike): object keys
 * sorted; null/undefined members, empty arrays and empty objects dropped. When
 * dropZeros is set, numeric zeros and false are dropped too (Go's omitempty on status
 * counters), so `{replicas: 0}` equals `{}`.
 */
export function canonical(v: unknown, dropZeros = false): unknown {
  if (Array.isArray(v)) return v.map((x) => canonical(x, dropZeros) ?? null);
  if (isPlainObject(v)) {
    const out: Obj = {};
    for (const k of Object.keys(v).sort()) {
      const c = canonical(v[k], dropZeros);
      if (c === undefined || c === null) continue;
      if (Array.isArray(c) && c.length === 0) continue;
      if (isPlainObject(c) && Object.keys(c).length === 0) continue;
      if (dropZeros && (c === 0 || c === false)) continue;
      out[k] = c;
    }
    return out;
  }
  return v === null ? undefined : v;
}

/** JSON of canonical(v): equal strings mean semantically equal values. */
export function canonicalJSON(v: unknown, dropZeros = false): string {
  return JSON.stringify(canonical(v, dropZeros) ?? null);
}

export function semanticEqual(a: unknown, b: unknown, dropZeros = false): boolean {
  return canonicalJSON(a, dropZeros) === canonicalJSON(b, dropZeros);
}
