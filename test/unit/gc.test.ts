import { describe, expect, it } from "vitest";
import { GC_WAIT_REQUEUE_MS, type OwnerRef, reconcileDependent, reconcileOwner } from "../../durable-objects/controllers/gc.ts";
import {
  type Action,
  DEPLOYMENTS,
  NODES,
  type Obj,
  PODS,
  REPLICASETS,
  type ReconcileResult,
} from "../../durable-objects/controllers/types.ts";

// ------------------------------------------------------------------ fixtures

const DELETED_AT = "2026-11-26T17:00:00Z";

function owner(finalizers: string[], opts: { deleting?: boolean } = {}): Obj {
  const o: Obj = {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: { name: "web-abc", namespace: "default", uid: "rs-uid", resourceVersion: "7", finalizers },
    spec: { replicas: 2 },
  };
  if (opts.deleting !== false) o.metadata.deletionTimestamp = DELETED_AT;
  return o;
}

function ref(uid: string, opts: { block?: boolean; kind?: string; name?: string } = {}): Obj {
  const r: Obj = { apiVersion: "apps/v1", kind: opts.kind ?? "ReplicaSet", name: opts.name ?? "web-abc", uid, controller: true };
  if (opts.block !== undefined) r.blockOwnerDeletion = opts.block;
  return r;
}

function dependent(name: string, refs: Obj[], opts: { terminating?: boolean; namespace?: string | null } = {}): Obj {
  const d: Obj = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, uid: `uid-${name}`, resourceVersion: "3", ownerReferences: refs },
    spec: { containers: [{ name: "c", image: "nginx" }] },
  };
  if (opts.namespace !== null) d.metadata.namespace = opts.namespace ?? "default";
  if (opts.terminating) d.metadata.deletionTimestamp = DELETED_AT;
  return d;
}

const pods = (...objs: Obj[]) => objs.map((obj) => ({ gvr: PODS, obj }));

function ofType<T extends Action["type"]>(r: ReconcileResult, type: T): Extract<Action, { type: T }>[] {
  return r.actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
}

// ------------------------------------------------------------------ reconcileOwner

describe("reconcileOwner", () => {
  it.each([
    ["not being deleted", owner(["orphan"], { deleting: false })],
    ["being deleted without GC finalizers", owner(["example.com/other"])],
  ])("does nothing for an owner %s", (_, o) => {
    expect(reconcileOwner(o, REPLICASETS, pods(dependent("a", [ref("rs-uid")])))).toEqual({ actions: [] });
  });

  describe("orphan", () => {
    it("removes the owner's reference from every dependent, keeping other references, and waits", () => {
      const other = ref("other-uid", { kind: "Deployment", name: "web" });
      const a = dependent("a", [ref("rs-uid", { block: true }), other]);
      const b = dependent("b", [ref("rs-uid")], { terminating: true });
      const r = reconcileOwner(owner(["orphan"]), REPLICASETS, pods(a, b));
      expect(r.actions.map((x) => x.type)).toEqual(["update", "update"]);
      const [ua, ub] = ofType(r, "update");
      expect(ua).toMatchObject({ gvr: PODS, object: { metadata: { name: "a", resourceVersion: "3", ownerReferences: [other] } } });
      expect(ub.object.metadata).not.toHaveProperty("ownerReferences");
      expect(ub.object.metadata.deletionTimestamp).toBe(DELETED_AT);
      expect(r.requeueAfterMs).toBe(GC_WAIT_REQUEUE_MS);
      // Inputs are untouched.
      expect(a.metadata.ownerReferences).toHaveLength(2);
    });

    it("removes the orphan finalizer once no dependent references the owner", () => {
      const unrelated = dependent("x", [ref("someone-else")]);
      const r = reconcileOwner(owner(["example.com/keep", "orphan"]), REPLICASETS, pods(unrelated));
      expect(r).toEqual({
        actions: [
          {
            type: "update",
            gvr: REPLICASETS,
            object: expect.objectContaining({
              metadata: expect.objectContaining({ finalizers: ["example.com/keep"], resourceVersion: "7" }),
            }),
          },
        ],
      });
    });

    it("lets foregroundDeletion wait while orphaning is pending, then removes both", () => {
      const a = dependent("a", [ref("rs-uid", { block: true })]);
      const pending = reconcileOwner(owner(["orphan", "foregroundDeletion"]), REPLICASETS, pods(a));
      expect(ofType(pending, "delete")).toEqual([]);
      expect(ofType(pending, "update").map((u) => u.object.metadata.name)).toEqual(["a"]);
      const done = reconcileOwner(owner(["orphan", "foregroundDeletion"]), REPLICASETS, []);
      expect(ofType(done, "update").map((u) => u.object.metadata.finalizers)).toEqual([[]]);
    });
  });

  describe("foregroundDeletion", () => {
    it("deletes dependents (Foreground when they block, Background otherwise) and keeps the finalizer while blocked", () => {
      const blocking = dependent("blocking", [ref("rs-uid", { block: true })]);
      const plain = dependent("plain", [ref("rs-uid", { block: false })]);
      const noFlag = dependent("noflag", [ref("rs-uid")]);
      const gone = dependent("gone", [ref("rs-uid", { block: true })], { terminating: true });
      const r = reconcileOwner(owner(["foregroundDeletion"]), REPLICASETS, pods(blocking, plain, noFlag, gone));
      expect(r).toEqual({
        actions: [
          {
            type: "delete",
            gvr: PODS,
            namespace: "default",
            name: "blocking",
            preconditionUID: "uid-blocking",
            propagationPolicy: "Foreground",
          },
          { type: "delete", gvr: PODS, namespace: "default", name: "plain", preconditionUID: "uid-plain", propagationPolicy: "Background" },
          {
            type: "delete",
            gvr: PODS,
            namespace: "default",
            name: "noflag",
            preconditionUID: "uid-noflag",
            propagationPolicy: "Background",
          },
        ],
        requeueAfterMs: GC_WAIT_REQUEUE_MS,
      });
    });

    it.each([
      ["a terminating blocking dependent", [dependent("t", [ref("rs-uid", { block: true })], { terminating: true })], false],
      ["only non-blocking dependents", [dependent("t", [ref("rs-uid", { block: false })], { terminating: true })], true],
      ["no dependents", [], true],
    ])("with %s removes the finalizer: %s", (_, deps, removed) => {
      const r = reconcileOwner(owner(["foregroundDeletion"]), REPLICASETS, pods(...deps));
      const ownerUpdates = ofType(r, "update").filter((u) => u.gvr === REPLICASETS);
      expect(ownerUpdates.map((u) => u.object.metadata.finalizers)).toEqual(removed ? [[]] : []);
      expect(r.requeueAfterMs).toBe(removed ? undefined : GC_WAIT_REQUEUE_MS);
    });

    it("removes the finalizer in the same pass as deleting non-blocking dependents", () => {
      const plain = dependent("plain", [ref("rs-uid")]);
      const r = reconcileOwner(owner(["foregroundDeletion"]), REPLICASETS, pods(plain));
      expect(r.actions.map((a) => a.type)).toEqual(["delete", "update"]);
    });

    it("detaches a dependent that has other owners instead of deleting it", () => {
      const other = ref("deploy-uid", { kind: "Deployment", name: "web" });
      const shared = dependent("shared", [ref("rs-uid", { block: true }), other]);
      const r = reconcileOwner(owner(["foregroundDeletion"]), REPLICASETS, pods(shared));
      expect(ofType(r, "delete")).toEqual([]);
      expect(ofType(r, "update").map((u) => u.object.metadata.ownerReferences)).toEqual([[other]]);
      expect(r.requeueAfterMs).toBe(GC_WAIT_REQUEUE_MS); // still blocking in this snapshot
    });

    it("works for cluster-scoped dependents (no namespace on the delete)", () => {
      const node = dependent("n1", [ref("rs-uid")], { namespace: null });
      const r = reconcileOwner(owner(["foregroundDeletion"]), DEPLOYMENTS, [{ gvr: NODES, obj: node }]);
      expect(ofType(r, "delete")).toEqual([
        { type: "delete", gvr: NODES, name: "n1", preconditionUID: "uid-n1", propagationPolicy: "Background" },
      ]);
    });
  });
});

// ------------------------------------------------------------------ reconcileDependent

describe("reconcileDependent", () => {
  const rsRef = ref("rs-uid");
  const deployRef = ref("deploy-uid", { kind: "Deployment", name: "web" });
  const existsOnly =
    (...uids: string[]) =>
    (r: OwnerRef): boolean =>
      uids.includes(r.uid);

  it.each([
    ["every owner exists", [rsRef, deployRef], ["rs-uid", "deploy-uid"], "none"],
    ["every owner is gone", [rsRef, deployRef], [], "delete"],
    ["the only owner is gone", [rsRef], [], "delete"],
    ["some owners are gone", [rsRef, deployRef], ["deploy-uid"], "update"],
    ["there are no owner references", [], [], "none"],
  ])("when %s → %s", (_, refs, alive, outcome) => {
    const dep = dependent("p", refs);
    const r = reconcileDependent(dep, PODS, existsOnly(...alive));
    if (outcome === "none") expect(r).toEqual({ actions: [] });
    if (outcome === "delete") {
      expect(r).toEqual({
        actions: [
          { type: "delete", gvr: PODS, namespace: "default", name: "p", preconditionUID: "uid-p", propagationPolicy: "Background" },
        ],
      });
    }
    if (outcome === "update") {
      expect(r.actions).toHaveLength(1);
      const [u] = ofType(r, "update");
      expect(u.gvr).toBe(PODS);
      expect(u.object.metadata.ownerReferences).toEqual([deployRef]);
      expect(u.object.metadata.resourceVersion).toBe("3");
      expect(dep.metadata.ownerReferences).toHaveLength(2);
    }
  });

  it("leaves a terminating dependent alone", () => {
    expect(reconcileDependent(dependent("p", [rsRef], { terminating: true }), PODS, () => false)).toEqual({ actions: [] });
  });

  it("asks about each reference in the dependent's namespace", () => {
    const calls: [OwnerRef, string | undefined][] = [];
    reconcileDependent(dependent("p", [rsRef]), PODS, (r, ns) => {
      calls.push([r, ns]);
      return true;
    });
    expect(calls).toEqual([[{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-abc", uid: "rs-uid" }, "default"]]);
  });

  it("asks about cluster-scoped dependents' owners without a namespace", () => {
    const namespaces: (string | undefined)[] = [];
    const r = reconcileDependent(dependent("n1", [rsRef], { namespace: null }), NODES, (_, ns) => {
      namespaces.push(ns);
      return false;
    });
    expect(namespaces).toEqual([undefined]);
    expect(r.actions).toEqual([{ type: "delete", gvr: NODES, name: "n1", preconditionUID: "uid-n1", propagationPolicy: "Background" }]);
  });

  it("cascades a Background deletion: owner gone → dependents collected, shared ones detached", () => {
    const alive = existsOnly("deploy-uid");
    const solo = dependent("solo", [rsRef]);
    const shared = dependent("shared", [rsRef, deployRef]);
    expect(ofType(reconcileDependent(solo, PODS, alive), "delete").map((d) => d.name)).toEqual(["solo"]);
    expect(ofType(reconcileDependent(shared, PODS, alive), "update").map((u) => u.object.metadata.ownerReferences)).toEqual([[deployRef]]);
  });
});
