import { describe, expect, it } from "vitest";
import { FOLLOW_UP_REQUEUE_MS, reconcileNamespace } from "../../durable-objects/controllers/namespace.ts";
import {
  type Action,
  type GVR,
  NAMESPACES,
  type Obj,
  PODS,
  type ReconcileResult,
  SERVICES,
} from "../../durable-objects/controllers/types.ts";

// ------------------------------------------------------------------ fixtures

const CONFIGMAPS: GVR = { group: "", version: "v1", resource: "configmaps" };

function namespace(opts: { deleting?: boolean; phase?: string; finalizers?: string[] } = {}): Obj {
  const ns: Obj = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: "team-a", uid: "ns-uid", resourceVersion: "20" },
    spec: { finalizers: opts.finalizers ?? ["kubernetes"] },
    status: { phase: opts.phase ?? (opts.deleting === false ? "Active" : "Terminating") },
  };
  if (opts.deleting !== false) ns.metadata.deletionTimestamp = "2026-11-26T17:00:00Z";
  return ns;
}

function item(gvr: GVR, name: string, opts: { terminating?: boolean; grace?: number } = {}): { gvr: GVR; obj: Obj } {
  const obj: Obj = { metadata: { name, namespace: "team-a", uid: `uid-${name}` } };
  if (gvr === PODS) obj.spec = { terminationGracePeriodSeconds: opts.grace ?? 30 };
  if (opts.terminating) {
    obj.metadata.deletionTimestamp = "2026-11-26T17:00:30Z";
    if (gvr === PODS) obj.metadata.deletionGracePeriodSeconds = opts.grace ?? 30;
  }
  return { gvr, obj };
}

function ofType<T extends Action["type"]>(r: ReconcileResult, type: T): Extract<Action, { type: T }>[] {
  return r.actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
}

// ------------------------------------------------------------------ tests

describe("reconcileNamespace", () => {
  it("does nothing for a namespace that is not being deleted", () => {
    expect(reconcileNamespace(namespace({ deleting: false }), [item(PODS, "p")])).toEqual({ actions: [] });
  });

  it("marks the namespace Terminating first, and deletes its contents in the same pass", () => {
    const ns = namespace({ phase: "Active" });
    const r = reconcileNamespace(ns, [item(PODS, "p"), item(CONFIGMAPS, "cm")]);
    expect(r.actions[0]).toEqual({
      type: "update",
      gvr: NAMESPACES,
      subresource: "status",
      object: { ...ns, status: { phase: "Terminating" } },
    });
    expect(ofType(r, "delete").map((d) => d.name)).toEqual(["p", "cm"]);
    expect(ns.status.phase).toBe("Active");
  });

  it("deletes every object that is not already terminating, in the background, and waits for the rest", () => {
    const r = reconcileNamespace(namespace(), [
      item(PODS, "running"),
      item(PODS, "stopping", { terminating: true, grace: 60 }),
      item(SERVICES, "svc"),
      item(CONFIGMAPS, "cm", { terminating: true }),
    ]);
    expect(r).toEqual({
      actions: [
        {
          type: "delete",
          gvr: PODS,
          namespace: "team-a",
          name: "running",
          preconditionUID: "uid-running",
          propagationPolicy: "Background",
        },
        { type: "delete", gvr: SERVICES, namespace: "team-a", name: "svc", preconditionUID: "uid-svc", propagationPolicy: "Background" },
      ],
      // kube's estimate: the longest pod grace period (60 s) / 2 + 1.
      requeueAfterMs: 31_000,
    });
  });

  it.each([
    ["pods with the default grace period", [item(PODS, "p")], 16_000],
    ["no pods", [item(CONFIGMAPS, "cm", { terminating: true })], 1_000],
  ])("requeues while content remains: %s", (_, contents, ms) => {
    expect(reconcileNamespace(namespace(), contents).requeueAfterMs).toBe(ms);
  });

  it("removes the kubernetes finalizer (for the finalize subresource) once the namespace is empty", () => {
    const ns = namespace({ finalizers: ["kubernetes", "example.com/other"] });
    const r = reconcileNamespace(ns, []);
    expect(r).toEqual({
      actions: [{ type: "update", gvr: NAMESPACES, object: { ...ns, spec: { finalizers: ["example.com/other"] } } }],
    });
    expect((r.actions[0] as Extract<Action, { type: "update" }>).object.metadata.resourceVersion).toBe("20");
  });

  it("does nothing more once the kubernetes finalizer is gone", () => {
    expect(reconcileNamespace(namespace({ finalizers: ["example.com/other"] }), [])).toEqual({ actions: [] });
    expect(reconcileNamespace(namespace({ finalizers: [] }), [])).toEqual({ actions: [] });
  });

  it("writes the Terminating phase before finalizing an empty namespace (one namespace write per pass)", () => {
    const r = reconcileNamespace(namespace({ phase: "Active" }), []);
    expect(r.actions.map((a) => (a.type === "update" ? (a.subresource ?? "finalize") : a.type))).toEqual(["status"]);
    expect(r.requeueAfterMs).toBe(FOLLOW_UP_REQUEUE_MS);
  });

  it("walks a namespace from deletion to finalized", () => {
    let ns = namespace({ phase: "Active" });
    let contents = [item(PODS, "p"), item(CONFIGMAPS, "cm")];
    let r = reconcileNamespace(ns, contents);
    // The API marks the pod (graceful) and removes the configmap.
    ns = { ...ns, status: { phase: "Terminating" } };
    contents = [item(PODS, "p", { terminating: true })];
    expect(ofType(r, "delete")).toHaveLength(2);
    r = reconcileNamespace(ns, contents);
    expect(r).toEqual({ actions: [], requeueAfterMs: 16_000 });
    r = reconcileNamespace(ns, []);
    expect(ofType(r, "update").map((u) => u.object.spec.finalizers)).toEqual([[]]);
  });
});
