// Namespace controller, after kube-controller-manager's pkg/controller/namespace
// (NamespacedResourcesDeleter): empties a namespace that is being deleted, then clears
// its "kubernetes" spec finalizer so the API server can remove it.
//
// A pure, level-based reconciler over a namespace and everything namespaced in it.

import { type Action, type GVR, NAMESPACES, type Obj, type ReconcileResult } from "./types.ts";

/** The spec finalizer the namespace controller owns. */
export const FINALIZER_KUBERNETES = "kubernetes";
/** requeueAfterMs when a namespace write was held back until the previous one is visible. */
export const FOLLOW_UP_REQUEUE_MS = 100;

function gracePeriodSeconds(obj: Obj): number {
  const m = obj.metadata?.deletionGracePeriodSeconds;
  if (typeof m === "number") return m;
  const s = obj.spec?.terminationGracePeriodSeconds;
  return typeof s === "number" ? s : 0;
}

/**
 * For a namespace being deleted (metadata.deletionTimestamp set):
 *
 * - status.phase is made "Terminating" (status update) if it is not already;
 * - every object in it that is not already terminating is deleted (Background,
 *   preconditionUID); terminating ones are waited for. While content remains the key is
 *   requeued after (estimate/2 + 1) s, estimate being the longest pod grace period, as
 *   kube's namespace controller does;
 * - once contents is empty, "kubernetes" is removed from spec.finalizers: the returned
 *   `update` of the namespace carries the filtered spec.finalizers and the host sends
 *   it to the namespace's finalize subresource (PUT .../namespaces/<name>/finalize):
 *   this controller's only non-status namespace write, so the host can route every
 *   such update there (kube-apiserver's main namespace endpoint ignores changes to
 *   spec.finalizers; this server's accepts them too, so a plain update also works).
 *   With no finalizers left the API server then deletes the namespace.
 *
 * The status write and the finalize write both compare-and-swap on the namespace's
 * resourceVersion, so at most one of them is returned per pass (status first).
 * Namespaces not being deleted: nothing.
 */
export function reconcileNamespace(ns: Obj, contents: { gvr: GVR; obj: Obj }[]): ReconcileResult {
  if (!ns.metadata?.deletionTimestamp) return { actions: [] };
  const actions: Action[] = [];
  let requeue: number | undefined;

  let nsWritten = false;
  if (ns.status?.phase !== "Terminating") {
    const next = structuredClone(ns);
    next.status = { ...(next.status ?? {}), phase: "Terminating" };
    actions.push({ type: "update", gvr: NAMESPACES, object: next, subresource: "status" });
    nsWritten = true;
  }

  let estimate = 0;
  for (const { gvr, obj } of contents) {
    if (gvr.resource === "pods") estimate = Math.max(estimate, gracePeriodSeconds(obj));
    if (obj.metadata?.deletionTimestamp) continue;
    actions.push({
      type: "delete",
      gvr,
      namespace: obj.metadata?.namespace ?? ns.metadata?.name,
      name: obj.metadata?.name,
      preconditionUID: obj.metadata?.uid,
      propagationPolicy: "Background",
    });
  }
  if (contents.length > 0) requeue = (Math.floor(estimate / 2) + 1) * 1000;

  const finalizers: unknown[] = Array.isArray(ns.spec?.finalizers) ? ns.spec.finalizers : [];
  if (contents.length === 0 && finalizers.includes(FINALIZER_KUBERNETES)) {
    if (nsWritten) {
      requeue = FOLLOW_UP_REQUEUE_MS;
    } else {
      const next = structuredClone(ns);
      next.spec = { ...(next.spec ?? {}), finalizers: finalizers.filter((f) => f !== FINALIZER_KUBERNETES) };
      // Host: PUT this to the finalize subresource (see above).
      actions.push({ type: "update", gvr: NAMESPACES, object: next });
    }
  }
  return requeue === undefined ? { actions } : { actions, requeueAfterMs: requeue };
}
