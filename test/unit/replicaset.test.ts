import { describe, expect, it } from "vitest";
import { rfc3339 } from "../../durable-objects/controllers/podutil.ts";
import { BURST_REPLICAS, podsToDelete, reconcileReplicaSet } from "../../durable-objects/controllers/replicaset.ts";
import type { Action, Obj } from "../../durable-objects/controllers/types.ts";

const NOW = new Date("2024-05-01T12:00:00Z");
const ago = (s: number): string => rfc3339(new Date(NOW.getTime() - s * 1000));

interface RSOpts {
  name?: string;
  uid?: string;
  replicas?: number;
  minReadySeconds?: number;
  generation?: number;
  status?: Obj;
  deleting?: boolean;
  templateLabels?: Record<string, string>;
}

function newRS(o: RSOpts = {}): Obj {
  const name = o.name ?? "web";
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name,
      namespace: "default",
      uid: o.uid ?? "rs-uid",
      resourceVersion: "7",
      generation: o.generation ?? 1,
      creationTimestamp: ago(3600),
      labels: { app: "web" },
      ...(o.deleting ? { deletionTimestamp: ago(1) } : {}),
    },
    spec: {
      replicas: o.replicas ?? 3,
      minReadySeconds: o.minReadySeconds ?? 0,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: o.templateLabels ?? { app: "web", tier: "front" }, annotations: { note: "x" } },
        spec: { containers: [{ name: "web", image: "nginx:1.27" }] },
      },
    },
    status: o.status ?? {},
  };
}

interface PodOpts {
  /** The controller: an object (with metadata.uid) or null for an orphan; default the RS. */
  owner?: Obj | null;
  labels?: Record<string, string>;
  phase?: string;
  /** Ready since this many seconds ago; undefined = not ready. */
  readyFor?: number;
  nodeName?: string;
  restarts?: number;
  /** Created this many seconds ago. */
  age?: number;
  deleting?: boolean;
  annotations?: Record<string, string>;
  extraOwners?: Obj[];
}

function ownerRefTo(owner: Obj, kind = "ReplicaSet"): Obj {
  return { apiVersion: "apps/v1", kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true };
}

function newPod(name: string, o: PodOpts = {}, rs: Obj = newRS()): Obj {
  const owner = o.owner === undefined ? rs : o.owner;
  const refs = [...(o.extraOwners ?? []), ...(owner ? [ownerRefTo(owner)] : [])];
  const conditions = o.readyFor === undefined ? [] : [{ type: "Ready", status: "True", lastTransitionTime: ago(o.readyFor) }];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "default",
      uid: `uid-${name}`,
      resourceVersion: "3",
      creationTimestamp: ago(o.age ?? 600),
      labels: o.labels ?? { app: "web", tier: "front" },
      ...(o.annotations ? { annotations: o.annotations } : {}),
      ...(refs.length ? { ownerReferences: refs } : {}),
      ...(o.deleting ? { deletionTimestamp: ago(1) } : {}),
    },
    spec: {
      containers: [{ name: "web", image: "nginx:1.27" }],
      ...(o.nodeName !== undefined ? { nodeName: o.nodeName } : { nodeName: "node-a" }),
    },
    status: {
      phase: o.phase ?? "Running",
      conditions,
      containerStatuses: [{ name: "web", restartCount: o.restarts ?? 0 }],
    },
  };
}

const of = (actions: Action[], type: Action["type"]) => actions.filter((a) => a.type === type);
const creates = (actions: Action[]) => of(actions, "create") as Extract<Action, { type: "create" }>[];
const deletes = (actions: Action[]) => of(actions, "delete") as Extract<Action, { type: "delete" }>[];
const updates = (actions: Action[]) => of(actions, "update") as Extract<Action, { type: "update" }>[];
const events = (actions: Action[]) => (of(actions, "event") as Extract<Action, { type: "event" }>[]).map((e) => [e.reason, e.message]);
const statusWrite = (actions: Action[]) => updates(actions).find((u) => u.subresource === "status");
const podUpdates = (actions: Action[]) => updates(actions).filter((u) => u.gvr.resource === "pods");

describe("reconcileReplicaSet: creating pods", () => {
  it("creates the missing pods from the template with generateName, namespace and a controller ownerReference", () => {
    const rs = newRS({ replicas: 3 });
    const { actions } = reconcileReplicaSet(rs, [newPod("web-a", { readyFor: 60 })], NOW);
    const created = creates(actions);
    expect(created).toHaveLength(2);
    for (const c of created) {
      expect(c.gvr).toEqual({ group: "", version: "v1", resource: "pods" });
      expect(c.object).toEqual({
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          generateName: "web-",
          namespace: "default",
          labels: { app: "web", tier: "front" },
          annotations: { note: "x" },
          ownerReferences: [
            { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web", uid: "rs-uid", controller: true, blockOwnerDeletion: true },
          ],
        },
        spec: { containers: [{ name: "web", image: "nginx:1.27" }] },
      });
    }
    // The template is copied, not shared.
    expect(created[0].object.spec).not.toBe(rs.spec.template.spec);
    expect(events(actions)).toEqual([
      ["SuccessfulCreate", "Created pod: web-"],
      ["SuccessfulCreate", "Created pod: web-"],
    ]);
  });

  it(`creates at most ${BURST_REPLICAS} pods per reconcile`, () => {
    const { actions } = reconcileReplicaSet(newRS({ replicas: 1200 }), [], NOW);
    expect(creates(actions)).toHaveLength(BURST_REPLICAS);
  });

  it("does nothing for a ReplicaSet being deleted", () => {
    const rs = newRS({ replicas: 3, deleting: true });
    expect(reconcileReplicaSet(rs, [newPod("orphan", { owner: null })], NOW)).toEqual({ actions: [] });
  });
});

describe("reconcileReplicaSet: deleting surplus pods", () => {
  // Each row: the pod that must go first, the pod that must stay (replicas 1).
  const rows: [string, PodOpts, PodOpts][] = [
    ["unassigned before assigned", { nodeName: "", phase: "Pending" }, { nodeName: "node-a", phase: "Pending" }],
    ["Pending before Running", { phase: "Pending" }, { phase: "Running" }],
    ["Pending before Unknown", { phase: "Pending" }, { phase: "Unknown" }],
    ["Unknown before Running", { phase: "Unknown" }, { phase: "Running" }],
    ["not ready before ready", { phase: "Running" }, { phase: "Running", readyFor: 5 }],
    [
      "lower pod-deletion-cost first",
      { readyFor: 5, annotations: { "controller.kubernetes.io/pod-deletion-cost": "-10" } },
      { readyFor: 5 },
    ],
    ["ready for less time first", { readyFor: 10 }, { readyFor: 1000 }],
    ["higher restart count first", { readyFor: 100, restarts: 5 }, { readyFor: 100, restarts: 1 }],
    ["newer first", { readyFor: 100, age: 200 }, { readyFor: 100, age: 900 }],
    ["unassigned before assigned even when ready", { nodeName: "", readyFor: 100 }, { nodeName: "node-a", phase: "Pending" }],
    ["Pending before Running even when older", { phase: "Pending", age: 5000 }, { readyFor: 1, age: 10 }],
  ];

  it.each(rows)("%s", (_name, victim, survivor) => {
    const pods = [newPod("stay", survivor), newPod("go", victim)];
    const { actions } = reconcileReplicaSet(newRS({ replicas: 1 }), pods, NOW);
    expect(deletes(actions)).toEqual([
      { type: "delete", gvr: { group: "", version: "v1", resource: "pods" }, namespace: "default", name: "go", preconditionUID: "uid-go" },
    ]);
    expect(events(actions)).toEqual([["SuccessfulDelete", "Deleted pod: go"]]);
    // Same result whatever the input order.
    expect(deletes(reconcileReplicaSet(newRS({ replicas: 1 }), [...pods].reverse(), NOW).actions).map((d) => d.name)).toEqual(["go"]);
  });

  it("prefers pods doubled up on a node", () => {
    const pods = [
      newPod("a1", { nodeName: "node-a", readyFor: 100 }),
      newPod("b1", { nodeName: "node-b", readyFor: 10 }),
      newPod("a2", { nodeName: "node-a", readyFor: 100, age: 900 }),
    ];
    const { actions } = reconcileReplicaSet(newRS({ replicas: 2 }), pods, NOW);
    expect(deletes(actions).map((d) => d.name)).toEqual(["a1"]);
  });

  it("ranks a whole list: unassigned, pending, not ready, briefly ready, then by age", () => {
    const pods = [
      newPod("old-ready", { readyFor: 5000, age: 6000 }),
      newPod("new-ready", { readyFor: 5000, age: 5500 }),
      newPod("just-ready", { readyFor: 5 }),
      newPod("not-ready", {}),
      newPod("pending", { phase: "Pending" }),
      newPod("unscheduled", { phase: "Pending", nodeName: "" }),
    ];
    expect(podsToDelete(pods, 6).map((p) => p.metadata.name)).toEqual([
      "unscheduled",
      "pending",
      "not-ready",
      "just-ready",
      "new-ready",
      "old-ready",
    ]);
    const { actions } = reconcileReplicaSet(newRS({ replicas: 2 }), pods, NOW);
    expect(deletes(actions).map((d) => d.name)).toEqual(["unscheduled", "pending", "not-ready", "just-ready"]);
  });

  it(`deletes at most ${BURST_REPLICAS} pods per reconcile`, () => {
    const pods = Array.from({ length: 520 }, (_, i) => newPod(`p${i}`, { readyFor: 100 }));
    expect(deletes(reconcileReplicaSet(newRS({ replicas: 0 }), pods, NOW).actions)).toHaveLength(BURST_REPLICAS);
  });
});

describe("reconcileReplicaSet: adoption and release", () => {
  it("adopts active orphans that match the selector and counts them", () => {
    const orphan = newPod("orphan", { owner: null, readyFor: 100 });
    const owned = [newPod("p1", { readyFor: 100 }), newPod("p2", { readyFor: 100 })];
    const { actions } = reconcileReplicaSet(newRS({ replicas: 3 }), [...owned, orphan], NOW);
    const adopted = podUpdates(actions);
    expect(adopted).toHaveLength(1);
    expect(adopted[0].object.metadata.name).toBe("orphan");
    expect(adopted[0].object.metadata.resourceVersion).toBe("3");
    expect(adopted[0].object.metadata.ownerReferences).toEqual([
      { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web", uid: "rs-uid", controller: true, blockOwnerDeletion: true },
    ]);
    expect(orphan.metadata.ownerReferences).toBeUndefined(); // input untouched
    expect(creates(actions)).toHaveLength(0);
    expect(statusWrite(actions)?.object.status.replicas).toBe(3);
  });

  it("keeps non-controller owner references when adopting", () => {
    const other = { apiVersion: "v1", kind: "ConfigMap", name: "cm", uid: "cm-uid" };
    const orphan = newPod("orphan", { owner: null, extraOwners: [other] });
    const { actions } = reconcileReplicaSet(newRS({ replicas: 1 }), [orphan], NOW);
    expect(podUpdates(actions)[0].object.metadata.ownerReferences.map((r: Obj) => r.uid)).toEqual(["cm-uid", "rs-uid"]);
  });

  const notAdopted: [string, PodOpts][] = [
    ["labels do not match the selector", { owner: null, labels: { app: "db" } }],
    ["being deleted", { owner: null, deleting: true }],
    ["Succeeded", { owner: null, phase: "Succeeded" }],
    ["Failed", { owner: null, phase: "Failed" }],
    ["controlled by another ReplicaSet", { owner: newRS({ name: "other", uid: "other-uid" }) }],
  ];
  it.each(notAdopted)("does not adopt a pod whose %s", (_name, opts) => {
    const { actions } = reconcileReplicaSet(newRS({ replicas: 1 }), [newPod("x", opts)], NOW);
    expect(podUpdates(actions)).toEqual([]);
    expect(creates(actions)).toHaveLength(1);
  });

  it("releases owned pods that no longer match the selector and replaces them", () => {
    const other = { apiVersion: "v1", kind: "ConfigMap", name: "cm", uid: "cm-uid" };
    const relabeled = newPod("debug", { labels: { app: "debug" }, extraOwners: [other], readyFor: 100 });
    const { actions } = reconcileReplicaSet(newRS({ replicas: 1 }), [relabeled], NOW);
    const released = podUpdates(actions);
    expect(released).toHaveLength(1);
    expect(released[0].object.metadata.name).toBe("debug");
    expect(released[0].object.metadata.ownerReferences).toEqual([other]);
    expect(creates(actions)).toHaveLength(1);
    expect(statusWrite(actions)?.object.status.replicas).toBe(0);
  });

  it("drops the ownerReferences field when releasing the last reference", () => {
    const { actions } = reconcileReplicaSet(newRS({ replicas: 0 }), [newPod("debug", { labels: { app: "debug" } })], NOW);
    expect(podUpdates(actions)[0].object.metadata).not.toHaveProperty("ownerReferences");
  });
});

describe("reconcileReplicaSet: inactive pods", () => {
  it.each([
    ["terminating", { deleting: true, readyFor: 100 }],
    ["Succeeded", { phase: "Succeeded" }],
    ["Failed", { phase: "Failed" }],
  ] as [string, PodOpts][])("ignores %s pods: not counted, not deleted, replaced", (_name, opts) => {
    const pods = [newPod("live", { readyFor: 100 }), newPod("gone", opts)];
    const { actions } = reconcileReplicaSet(newRS({ replicas: 2 }), pods, NOW);
    expect(deletes(actions)).toEqual([]);
    expect(podUpdates(actions)).toEqual([]);
    expect(creates(actions)).toHaveLength(1);
    expect(statusWrite(actions)?.object.status).toMatchObject({ replicas: 1, readyReplicas: 1, availableReplicas: 1 });
  });

  it("does not delete a live pod while a terminating one is still around", () => {
    const pods = [newPod("live", { readyFor: 100 }), newPod("gone", { deleting: true, readyFor: 100 })];
    const { actions } = reconcileReplicaSet(newRS({ replicas: 1 }), pods, NOW);
    expect(deletes(actions)).toEqual([]);
    expect(creates(actions)).toEqual([]);
  });
});

describe("reconcileReplicaSet: status", () => {
  it("counts replicas, fully labeled, ready and available pods (minReadySeconds) and requeues for the next available one", () => {
    const rs = newRS({ replicas: 5, minReadySeconds: 30, generation: 4, status: { replicas: 5, observedGeneration: 3 } });
    const pods = [
      newPod("available", { readyFor: 31 }),
      newPod("exactly", { readyFor: 30 }),
      newPod("soon", { readyFor: 25 }),
      newPod("later", { readyFor: 2 }),
      newPod("missing-tier", { labels: { app: "web" } }),
      newPod("terminating", { deleting: true, readyFor: 100 }),
    ];
    const res = reconcileReplicaSet(rs, pods, NOW);
    const w = statusWrite(res.actions);
    expect(w?.gvr).toEqual({ group: "apps", version: "v1", resource: "replicasets" });
    expect(w?.object.metadata.resourceVersion).toBe("7");
    expect(w?.object.spec).toEqual(rs.spec);
    expect(w?.object.status).toEqual({
      replicas: 5,
      fullyLabeledReplicas: 4,
      readyReplicas: 4,
      availableReplicas: 2,
      observedGeneration: 4,
    });
    // "soon" becomes available in 5s, "later" in 28s.
    expect(res.requeueAfterMs).toBe(5000);
  });

  it.each([
    [0, 1, undefined],
    [10, 0, 5000],
    [5, 1, undefined],
  ])("with minReadySeconds %i, a pod ready for 5s counts %i available (requeue %s ms)", (mrs, available, requeue) => {
    const rs = newRS({ replicas: 1, minReadySeconds: mrs });
    const res = reconcileReplicaSet(rs, [newPod("p", { readyFor: 5 })], NOW);
    expect(statusWrite(res.actions)?.object.status.availableReplicas ?? 0).toBe(available);
    expect(res.requeueAfterMs).toBe(requeue);
  });

  it("requeues for minReadySeconds from the Ready condition's lastTransitionTime", () => {
    const rs = newRS({ replicas: 1, minReadySeconds: 10 });
    const res = reconcileReplicaSet(rs, [newPod("p", { readyFor: 4 })], NOW);
    expect(res.requeueAfterMs).toBe(6000);
    expect(statusWrite(res.actions)?.object.status).toEqual({
      replicas: 1,
      fullyLabeledReplicas: 1,
      readyReplicas: 1,
      observedGeneration: 1,
    });
  });

  it("writes no status when nothing changed (missing zero counters equal 0)", () => {
    const rs = newRS({
      replicas: 2,
      status: { replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 2, observedGeneration: 1 },
    });
    const res = reconcileReplicaSet(rs, [newPod("a", { readyFor: 100 }), newPod("b", { readyFor: 100 })], NOW);
    expect(res).toEqual({ actions: [] });
    const empty = newRS({ replicas: 0, status: { replicas: 0, observedGeneration: 1 } });
    expect(reconcileReplicaSet(empty, [], NOW)).toEqual({ actions: [] });
  });

  it("writes status when only observedGeneration is behind", () => {
    const rs = newRS({ replicas: 0, generation: 2, status: { replicas: 0, observedGeneration: 1 } });
    expect(statusWrite(reconcileReplicaSet(rs, [], NOW).actions)?.object.status).toEqual({ replicas: 0, observedGeneration: 2 });
  });

  it("reports the pods observed before this reconcile's creations and deletions", () => {
    const pods = ["a", "b", "c", "d"].map((n) => newPod(n, { readyFor: 100 }));
    const res = reconcileReplicaSet(newRS({ replicas: 2 }), pods, NOW);
    expect(deletes(res.actions)).toHaveLength(2);
    expect(statusWrite(res.actions)?.object.status.replicas).toBe(4);
  });

  it("removes a stale ReplicaFailure condition", () => {
    const cond = { type: "ReplicaFailure", status: "True", reason: "FailedCreate", message: "quota" };
    const rs = newRS({ replicas: 0, status: { replicas: 0, observedGeneration: 1, conditions: [cond] } });
    expect(statusWrite(reconcileReplicaSet(rs, [], NOW).actions)?.object.status).toEqual({ replicas: 0, observedGeneration: 1 });
  });

  it("orders actions: adoption, then creations with their events, then the status write", () => {
    const res = reconcileReplicaSet(newRS({ replicas: 2 }), [newPod("orphan", { owner: null })], NOW);
    expect(res.actions.map((a) => `${a.type}${a.type === "update" && a.subresource ? `/${a.subresource}` : ""}`)).toEqual([
      "update",
      "create",
      "event",
      "update/status",
    ]);
  });
});

describe("reconcileReplicaSet: selectors", () => {
  it("does nothing with an invalid selector", () => {
    const rs = newRS({ replicas: 2 });
    rs.spec.selector = { matchExpressions: [{ key: "app", operator: "Near", values: ["web"] }] };
    expect(reconcileReplicaSet(rs, [newPod("orphan", { owner: null })], NOW)).toEqual({ actions: [] });
  });

  it("supports matchExpressions", () => {
    const rs = newRS({ replicas: 1 });
    rs.spec.selector = { matchExpressions: [{ key: "tier", operator: "In", values: ["front", "edge"] }] };
    const { actions } = reconcileReplicaSet(rs, [newPod("orphan", { owner: null, readyFor: 10 })], NOW);
    expect(podUpdates(actions).map((u) => u.object.metadata.name)).toEqual(["orphan"]);
    expect(creates(actions)).toEqual([]);
  });
});
