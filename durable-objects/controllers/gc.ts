// Garbage collector, after kube-controller-manager's pkg/controller/garbagecollector,
// as two pure, level-based reconcilers instead of kube's dependency graph:
//
// - reconcileOwner runs for an object being deleted that carries the "orphan" or
//   "foregroundDeletion" finalizer (DeleteOptions.propagationPolicy Orphan / Foreground)
//   and is given the objects whose ownerReferences name it.
// - reconcileDependent runs for an object with ownerReferences and is told which owners
//   still exist; this is how Background deletion cascades: the owner goes at once and
//   its dependents are collected after.
//
// The host finds dependents by owner uid and re-runs reconcileOwner when they change;
// requeueAfterMs is a safety net while an owner waits on its dependents.

import { isObj } from "./podutil.ts";
import type { Action, GVR, Obj, ReconcileResult } from "./types.ts";

export const FINALIZER_ORPHAN = "orphan";
export const FINALIZER_FOREGROUND = "foregroundDeletion";
/** requeueAfterMs while an owner waits for its dependents to be orphaned or deleted. */
export const GC_WAIT_REQUEUE_MS = 5_000;

export interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

function ownerRefs(obj: Obj): Obj[] {
  const refs = obj.metadata?.ownerReferences;
  return Array.isArray(refs) ? refs.filter(isObj) : [];
}

function finalizers(obj: Obj): string[] {
  const f = obj.metadata?.finalizers;
  return Array.isArray(f) ? f.filter((x): x is string => typeof x === "string") : [];
}

function terminating(obj: Obj): boolean {
  return Boolean(obj.metadata?.deletionTimestamp);
}

/** The object with the ownerReferences for which keep() is false removed (the field dropped when none remain). */
function withRefs(obj: Obj, keep: (ref: Obj) => boolean): Obj {
  const next = structuredClone(obj);
  const refs = ownerRefs(next).filter(keep);
  if (refs.length > 0) next.metadata.ownerReferences = refs;
  else delete next.metadata.ownerReferences;
  return next;
}

function deleteAction(gvr: GVR, obj: Obj, policy: "Background" | "Foreground"): Action {
  const action: Action = { type: "delete", gvr, name: obj.metadata?.name, preconditionUID: obj.metadata?.uid, propagationPolicy: policy };
  if (obj.metadata?.namespace) action.namespace = obj.metadata.namespace;
  return action;
}

/**
 * For an owner being deleted (metadata.deletionTimestamp set):
 *
 * - finalizer "orphan": every dependent loses its ownerReference to the owner (one
 *   update each); once no dependent references the owner any more, "orphan" is removed
 *   from the owner. Taking the two steps on separate passes means a lost dependent
 *   update can never leave a dangling reference behind that would get the dependent
 *   collected. While "orphan" is pending, "foregroundDeletion" waits.
 * - finalizer "foregroundDeletion": dependents that are not terminating are deleted,
 *   with propagationPolicy Foreground when their reference to the owner has
 *   blockOwnerDeletion (so their own dependents go first), Background otherwise. A
 *   dependent that also has other owners is detached (its reference to this owner
 *   removed) instead, as kube does for dependents with a live owner; when those owners
 *   are gone too, reconcileDependent collects it. Once no dependent with
 *   blockOwnerDeletion: true references the owner (terminating ones still block),
 *   "foregroundDeletion" is removed from the owner.
 *
 * Owners not being deleted: nothing.
 */
export function reconcileOwner(owner: Obj, ownerGVR: GVR, dependents: { gvr: GVR; obj: Obj }[]): ReconcileResult {
  if (!terminating(owner)) return { actions: [] };
  const uid = owner.metadata?.uid;
  const fins = finalizers(owner);
  const orphan = fins.includes(FINALIZER_ORPHAN);
  const foreground = fins.includes(FINALIZER_FOREGROUND);
  if (!orphan && !foreground) return { actions: [] };

  const actions: Action[] = [];
  const deps = dependents.filter((d) => isObj(d.obj) && ownerRefs(d.obj).some((r) => r.uid === uid));
  const remove = new Set<string>();
  let waiting = false;

  if (orphan) {
    for (const d of deps) actions.push({ type: "update", gvr: d.gvr, object: withRefs(d.obj, (r) => r.uid !== uid) });
    if (deps.length === 0) remove.add(FINALIZER_ORPHAN);
    else waiting = true;
  }

  if (foreground && (!orphan || deps.length === 0)) {
    let blocked = false;
    for (const d of deps) {
      const ref = ownerRefs(d.obj).find((r) => r.uid === uid) as Obj;
      const blocks = ref.blockOwnerDeletion === true;
      if (blocks) blocked = true;
      if (terminating(d.obj)) continue;
      if (ownerRefs(d.obj).some((r) => r.uid !== uid)) {
        actions.push({ type: "update", gvr: d.gvr, object: withRefs(d.obj, (r) => r.uid !== uid) });
      } else {
        actions.push(deleteAction(d.gvr, d.obj, blocks ? "Foreground" : "Background"));
      }
    }
    if (blocked) waiting = true;
    else remove.add(FINALIZER_FOREGROUND);
  }

  if (remove.size > 0) {
    const next = structuredClone(owner);
    next.metadata.finalizers = fins.filter((f) => !remove.has(f));
    actions.push({ type: "update", gvr: ownerGVR, object: next });
  }
  return waiting ? { actions, requeueAfterMs: GC_WAIT_REQUEUE_MS } : { actions };
}

/**
 * For an object with ownerReferences: when every owner is gone (ownerExists says no
 * object with that uid exists), the object is deleted (Background, preconditionUID);
 * when only some are, the dangling references are removed (update). Objects already
 * terminating, and objects without ownerReferences, are left alone.
 *
 * ownerExists gets the reference and the namespace to look in: the dependent's own
 * (owners of namespaced objects live in the same namespace, or are cluster-scoped),
 * undefined for cluster-scoped dependents.
 */
export function reconcileDependent(
  dep: Obj,
  depGVR: GVR,
  ownerExists: (ref: OwnerRef, namespace: string | undefined) => boolean,
): ReconcileResult {
  const refs = ownerRefs(dep);
  if (refs.length === 0 || terminating(dep)) return { actions: [] };
  const ns: string | undefined = dep.metadata?.namespace || undefined;
  const dangling = new Set<Obj>();
  for (const r of refs) {
    const ref: OwnerRef = {
      apiVersion: String(r.apiVersion ?? ""),
      kind: String(r.kind ?? ""),
      name: String(r.name ?? ""),
      uid: String(r.uid ?? ""),
    };
    if (!ownerExists(ref, ns)) dangling.add(r);
  }
  if (dangling.size === 0) return { actions: [] };
  if (dangling.size === refs.length) return { actions: [deleteAction(depGVR, dep, "Background")] };
  const next = structuredClone(dep);
  next.metadata.ownerReferences = structuredClone(refs.filter((r) => !dangling.has(r)));
  return { actions: [{ type: "update", gvr: depGVR, object: next }] };
}
