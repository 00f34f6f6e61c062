import { describe, expect, it } from "vitest";
import {
  DEFAULT_NODE_LIFECYCLE_CONFIG,
  FOLLOW_UP_REQUEUE_MS,
  type NodeLifecycleConfig,
  parseTime,
  reconcileNode,
  TAINT_NODE_NOT_READY,
  TAINT_NODE_UNREACHABLE,
  toleratesTaint,
} from "../../durable-objects/controllers/nodelifecycle.ts";
import { type Action, NODES, type Obj, PODS, type ReconcileResult } from "../../durable-objects/controllers/types.ts";

// ------------------------------------------------------------------ fixtures

const T0 = Date.parse("2026-11-26T17:00:00Z");
const at = (secs: number): Date => new Date(T0 + secs * 1000);
const ts = (secs: number): string =>
  at(secs)
    .toISOString()
    .replace(/\.\d+Z$/, "Z");
const microTs = (secs: number): string => at(secs).toISOString().replace(/Z$/, "000Z");
const CFG: NodeLifecycleConfig = DEFAULT_NODE_LIFECYCLE_CONFIG;

const DEFAULT_TOLERATIONS: Obj[] = [
  { key: TAINT_NODE_NOT_READY, operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
  { key: TAINT_NODE_UNREACHABLE, operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
];

function condition(type: string, status: string, heartbeatSecs = 0): Obj {
  return { type, status, lastHeartbeatTime: ts(heartbeatSecs), lastTransitionTime: ts(-3600), reason: "KubeletReady", message: "ok" };
}

function node(opts: { ready?: string | null; heartbeat?: number; taints?: Obj[]; name?: string } = {}): Obj {
  const ready = opts.ready === undefined ? "True" : opts.ready;
  const conditions: Obj[] = ["MemoryPressure", "DiskPressure", "PIDPressure"].map((t) => condition(t, "False", opts.heartbeat ?? 0));
  if (ready !== null) conditions.push(condition("Ready", ready, opts.heartbeat ?? 0));
  const n: Obj = {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: opts.name ?? "edge-1", uid: "node-uid", resourceVersion: "10", creationTimestamp: ts(-7200) },
    spec: {},
    status: { conditions },
  };
  if (opts.taints) n.spec.taints = opts.taints;
  return n;
}

function lease(renewSecs: number, name = "edge-1"): Obj {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace: "kube-node-lease" },
    spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTs(renewSecs) },
  };
}

function pod(name: string, opts: { tolerations?: Obj[]; ready?: boolean; terminating?: boolean; nodeName?: string } = {}): Obj {
  const p: Obj = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", uid: `uid-${name}`, resourceVersion: "5" },
    spec: { nodeName: opts.nodeName ?? "edge-1", containers: [{ name: "c", image: "nginx" }], tolerations: opts.tolerations ?? [] },
    status: {
      phase: "Running",
      conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True", lastTransitionTime: ts(-600) }],
    },
  };
  if (opts.terminating) p.metadata.deletionTimestamp = ts(-1);
  return p;
}

const unreachable = (addedSecs: number | null = 0): Obj[] => [
  addedSecs === null
    ? { key: TAINT_NODE_UNREACHABLE, effect: "NoExecute" }
    : { key: TAINT_NODE_UNREACHABLE, effect: "NoExecute", timeAdded: ts(addedSecs) },
  { key: TAINT_NODE_UNREACHABLE, effect: "NoSchedule" },
];

function ofType<T extends Action["type"]>(r: ReconcileResult, type: T): Extract<Action, { type: T }>[] {
  return r.actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
}
const nodeUpdates = (r: ReconcileResult) => ofType(r, "update").filter((a) => a.gvr === NODES);
const podUpdates = (r: ReconcileResult) => ofType(r, "update").filter((a) => a.gvr === PODS);
const deletedPods = (r: ReconcileResult) => ofType(r, "delete").map((a) => a.name);

/** Applies a pass's node and pod writes the way the API would (status-only vs spec-only). */
function apply(n: Obj, pods: Obj[], r: ReconcileResult): { node: Obj; pods: Obj[] } {
  const next = structuredClone(n);
  for (const a of nodeUpdates(r)) {
    if (a.subresource === "status") next.status = structuredClone(a.object.status);
    else next.spec = structuredClone(a.object.spec);
    next.metadata.resourceVersion = String(Number(next.metadata.resourceVersion) + 1);
  }
  const gone = new Set(deletedPods(r));
  const updated = new Map(podUpdates(r).map((a) => [a.object.metadata.name, a.object]));
  return {
    node: next,
    pods: pods.filter((p) => !gone.has(p.metadata.name)).map((p) => structuredClone(updated.get(p.metadata.name) ?? p)),
  };
}

// ------------------------------------------------------------------ tests

describe("parseTime", () => {
  it.each([
    ["2026-11-26T17:00:00Z", T0],
    ["2026-11-26T17:00:00.000000Z", T0],
    ["2026-11-26T17:00:00.123456Z", T0 + 123],
    ["2026-11-26T18:00:00+01:00", T0],
    ["", undefined],
    ["garbage", undefined],
    [undefined, undefined],
  ])("parses %j", (input, expected) => {
    expect(parseTime(input)).toBe(expected);
  });
});

describe("toleratesTaint", () => {
  const taint = { key: "k", value: "v", effect: "NoExecute" };
  it.each([
    ["Equal with same key/value/effect", { key: "k", operator: "Equal", value: "v", effect: "NoExecute" }, true],
    ["operator defaults to Equal", { key: "k", value: "v", effect: "NoExecute" }, true],
    ["Equal with another value", { key: "k", operator: "Equal", value: "w", effect: "NoExecute" }, false],
    ["Exists ignores the value", { key: "k", operator: "Exists", effect: "NoExecute" }, true],
    ["empty effect matches all effects", { key: "k", operator: "Exists" }, true],
    ["other effect", { key: "k", operator: "Exists", effect: "NoSchedule" }, false],
    ["other key", { key: "x", operator: "Exists" }, false],
    ["empty key + Exists tolerates everything", { operator: "Exists" }, true],
    ["unknown operator", { key: "k", operator: "Gt", value: "v" }, false],
  ])("%s", (_, toleration, expected) => {
    expect(toleratesTaint(toleration, taint)).toBe(expected);
  });
});

describe("reconcileNode: health", () => {
  it.each([
    ["fresh lease", 0, 10, 40_000, 30_000],
    ["just before expiry", 0, 39.999, 40_000, 1],
    ["longer grace period", 0, 10, 60_000, 50_000],
  ])("a healthy node (%s) gets no writes and is requeued when its lease expires", (_, renew, now, grace, requeue) => {
    const r = reconcileNode(node(), lease(renew), [pod("a")], at(now), { gracePeriodMs: grace });
    expect(r.actions).toEqual([]);
    expect(r.requeueAfterMs).toBe(requeue);
  });

  it("marks every condition Unknown, records NodeNotReady and marks its pods not ready when the lease expires", () => {
    const n = node({ heartbeat: 0 });
    const r = reconcileNode(n, lease(0), [pod("a"), pod("b", { ready: false })], at(40), CFG);
    const [status] = nodeUpdates(r);
    expect(status.subresource).toBe("status");
    expect(status.object.metadata.resourceVersion).toBe("10");
    const conds: Obj[] = status.object.status.conditions;
    expect(conds.map((c) => c.type).sort()).toEqual(["DiskPressure", "MemoryPressure", "PIDPressure", "Ready"]);
    for (const c of conds) {
      expect(c).toEqual({
        type: c.type,
        status: "Unknown",
        reason: "NodeStatusUnknown",
        message: "Kubelet stopped posting node status.",
        lastHeartbeatTime: ts(0),
        lastTransitionTime: ts(40),
      });
    }
    expect(ofType(r, "event")).toEqual([
      { type: "event", involved: n, eventType: "Normal", reason: "NodeNotReady", message: "Node edge-1 status is now: NodeNotReady" },
    ]);
    const pods = podUpdates(r);
    expect(pods.map((a) => a.object.metadata.name)).toEqual(["a"]);
    expect(pods[0].subresource).toBe("status");
    expect(pods[0].object.status.conditions[0]).toMatchObject({
      type: "Ready",
      status: "False",
      reason: "NodeNotReady",
      lastTransitionTime: ts(40),
    });
    // The taint write would lose the CAS race against the status write: it comes next pass.
    expect(nodeUpdates(r)).toHaveLength(1);
    expect(r.requeueAfterMs).toBe(FOLLOW_UP_REQUEUE_MS);
    // The input snapshot is not mutated.
    expect(n.status.conditions.find((c: Obj) => c.type === "Ready").status).toBe("True");
  });

  it.each([
    ["the Ready heartbeat when there is no lease", node({ heartbeat: 20 }), undefined, 59, false],
    ["the Ready heartbeat when there is no lease (expired)", node({ heartbeat: 20 }), undefined, 60, true],
    ["the newer of lease and heartbeat", node({ heartbeat: 30 }), lease(0), 50, false],
    ["the lease when it is newer", node({ heartbeat: 0 }), lease(30), 50, false],
  ])("judges health from %s", (_, n, l, now, unhealthy) => {
    const r = reconcileNode(n, l, [], at(now), CFG);
    expect(nodeUpdates(r).some((a) => a.subresource === "status")).toBe(unhealthy);
  });

  it("adds missing conditions as NodeStatusNeverUpdated", () => {
    const n = node({ ready: null });
    n.status.conditions = [];
    const r = reconcileNode(n, undefined, [], at(0), CFG);
    const conds: Obj[] = nodeUpdates(r)[0].object.status.conditions;
    expect(conds.find((c) => c.type === "Ready")).toEqual({
      type: "Ready",
      status: "Unknown",
      reason: "NodeStatusNeverUpdated",
      message: "Kubelet never posted node status.",
      lastHeartbeatTime: ts(-7200),
      lastTransitionTime: ts(0),
    });
    expect(conds).toHaveLength(4);
  });

  it("does not rewrite conditions that are already Unknown, but keeps pods marked not ready", () => {
    const n = node({ ready: "Unknown", taints: unreachable(0) });
    const r = reconcileNode(n, lease(0), [pod("a")], at(100), CFG);
    expect(nodeUpdates(r)).toEqual([]);
    expect(ofType(r, "event").filter((e) => e.reason === "NodeNotReady")).toEqual([]);
    expect(podUpdates(r).map((a) => a.object.metadata.name)).toEqual(["a"]);
  });
});

describe("reconcileNode: taints", () => {
  it.each([
    ["Ready Unknown", "Unknown", TAINT_NODE_UNREACHABLE],
    ["Ready False", "False", TAINT_NODE_NOT_READY],
  ])("%s adds the NoExecute (timeAdded now) and NoSchedule taints, keeping others", (_, ready, key) => {
    const other = { key: "dedicated", value: "edge", effect: "NoSchedule" };
    const wrongKind = key === TAINT_NODE_UNREACHABLE ? TAINT_NODE_NOT_READY : TAINT_NODE_UNREACHABLE;
    const n = node({ ready, taints: [other, { key: wrongKind, effect: "NoSchedule" }] });
    const r = reconcileNode(n, lease(ready === "Unknown" ? 0 : 100), [], at(100), CFG);
    const [u] = nodeUpdates(r);
    expect(u.subresource).toBeUndefined();
    expect(u.object.spec.taints).toEqual([other, { key, effect: "NoExecute", timeAdded: ts(100) }, { key, effect: "NoSchedule" }]);
  });

  it("keeps the original timeAdded of a taint that stays", () => {
    const n = node({ ready: "Unknown", taints: unreachable(0) });
    const r = reconcileNode(n, lease(0), [], at(100), CFG);
    expect(nodeUpdates(r)).toEqual([]);
  });

  it("stamps timeAdded on an unreachable NoExecute taint that lacks it", () => {
    const n = node({ ready: "Unknown", taints: unreachable(null) });
    const r = reconcileNode(n, lease(0), [], at(100), CFG);
    expect(nodeUpdates(r)[0].object.spec.taints[0]).toEqual({ key: TAINT_NODE_UNREACHABLE, effect: "NoExecute", timeAdded: ts(100) });
  });

  it("waits for the agent to report Ready when the lease is renewed but Ready is still Unknown", () => {
    const n = node({ ready: "Unknown", taints: unreachable(0) });
    const r = reconcileNode(n, lease(190), [pod("a", { tolerations: DEFAULT_TOLERATIONS })], at(200), CFG);
    // No status write, no taint change, pods left for the agent: only the lease expiry
    // (30 s) and the eviction deadline (100 s) are ahead.
    expect(r).toEqual({ actions: [], requeueAfterMs: 30_000 });
  });

  it("removes the unreachable taints once the lease is renewed and Ready is True, leaving other taints", () => {
    const other = { key: "dedicated", value: "edge", effect: "NoExecute", timeAdded: ts(-100) };
    const n = node({ ready: "True", heartbeat: 500, taints: [...unreachable(0), other] });
    const tolerating = pod("a", { tolerations: [{ key: "dedicated", operator: "Exists" }, ...DEFAULT_TOLERATIONS] });
    // 600 s after the taint was added: past the default toleration, but the taint goes.
    const r = reconcileNode(n, lease(590), [tolerating], at(600), CFG);
    expect(nodeUpdates(r).map((a) => a.object.spec.taints)).toEqual([[other]]);
    expect(deletedPods(r)).toEqual([]);
    expect(r.requeueAfterMs).toBe(30_000);
  });

  it("swaps unreachable for not-ready when the agent comes back reporting Ready False", () => {
    const n = node({ ready: "False", heartbeat: 500, taints: unreachable(0) });
    const r = reconcileNode(n, lease(500), [], at(510), CFG);
    expect(nodeUpdates(r)[0].object.spec.taints).toEqual([
      { key: TAINT_NODE_NOT_READY, effect: "NoExecute", timeAdded: ts(510) },
      { key: TAINT_NODE_NOT_READY, effect: "NoSchedule" },
    ]);
  });

  it("drops spec.taints when the last taint is removed", () => {
    const n = node({ ready: "True", taints: unreachable(0) });
    const r = reconcileNode(n, lease(10), [], at(20), CFG);
    expect(nodeUpdates(r)[0].object.spec).toEqual({});
  });

  it("leaves the taints of a node without a Ready condition alone", () => {
    const n = node({ ready: null, taints: [{ key: TAINT_NODE_NOT_READY, effect: "NoSchedule" }] });
    const r = reconcileNode(n, lease(10), [], at(20), CFG);
    expect(r.actions).toEqual([]);
  });
});

describe("reconcileNode: NoExecute eviction", () => {
  const withTaint = (): Obj => node({ ready: "Unknown", taints: unreachable(0) });

  it.each([
    ["no tolerations", [], CFG, "evicted"],
    ["default toleration, not yet expired", DEFAULT_TOLERATIONS, CFG, 200_000],
    ["toleration without tolerationSeconds", [{ key: TAINT_NODE_UNREACHABLE, operator: "Exists", effect: "NoExecute" }], CFG, "kept"],
    ["empty key + Exists tolerates forever", [{ operator: "Exists" }], CFG, "kept"],
    [
      "tolerationSeconds already passed",
      [{ key: TAINT_NODE_UNREACHABLE, operator: "Exists", effect: "NoExecute", tolerationSeconds: 60 }],
      CFG,
      "evicted",
    ],
    ["tolerationSeconds 0", [{ key: TAINT_NODE_UNREACHABLE, operator: "Exists", tolerationSeconds: 0 }], CFG, "evicted"],
    ["toleration of another taint only", [{ key: "dedicated", operator: "Exists" }], CFG, "evicted"],
    ["default toleration with the cluster override", DEFAULT_TOLERATIONS, { ...CFG, evictionTolerationSeconds: 3600 }, 3_500_000],
    ["default toleration with a short cluster override", DEFAULT_TOLERATIONS, { ...CFG, evictionTolerationSeconds: 30 }, "evicted"],
    [
      "explicit toleration is not overridden",
      [{ key: TAINT_NODE_UNREACHABLE, operator: "Exists", effect: "NoExecute", tolerationSeconds: 60 }],
      { ...CFG, evictionTolerationSeconds: 3600 },
      "evicted",
    ],
    ["first matching toleration wins (kube GetMatchingTolerations)", [{ operator: "Exists" }, ...DEFAULT_TOLERATIONS], CFG, "kept"],
  ])("%s → %s", (_, tolerations, cfg, outcome) => {
    const p = pod("p", { tolerations: tolerations as Obj[] });
    const r = reconcileNode(withTaint(), lease(0), [p], at(100), cfg as NodeLifecycleConfig);
    if (outcome === "evicted") {
      expect(ofType(r, "delete")).toEqual([{ type: "delete", gvr: PODS, namespace: "default", name: "p", preconditionUID: "uid-p" }]);
      expect(ofType(r, "event")).toEqual([
        { type: "event", involved: p, eventType: "Normal", reason: "TaintManagerEviction", message: "Marking for deletion Pod default/p" },
      ]);
      expect(r.requeueAfterMs).toBeUndefined();
    } else {
      expect(ofType(r, "delete")).toEqual([]);
      expect(r.requeueAfterMs).toBe(outcome === "kept" ? undefined : outcome);
    }
  });

  it("deletes at exactly timeAdded + tolerationSeconds", () => {
    const p = pod("p", { tolerations: DEFAULT_TOLERATIONS });
    expect(deletedPods(reconcileNode(withTaint(), lease(0), [p], at(299), CFG))).toEqual([]);
    expect(deletedPods(reconcileNode(withTaint(), lease(0), [p], at(300), CFG))).toEqual(["p"]);
  });

  it("requeues at the earliest deadline over several pods and taints", () => {
    const n = node({ ready: "Unknown", taints: [...unreachable(0), { key: "maint", effect: "NoExecute", timeAdded: ts(50) }] });
    const a = pod("a", { tolerations: [{ key: "maint", operator: "Exists", tolerationSeconds: 1000 }, ...DEFAULT_TOLERATIONS] });
    const b = pod("b", { tolerations: [{ key: "maint", operator: "Exists", tolerationSeconds: 120 }, ...DEFAULT_TOLERATIONS] });
    const r = reconcileNode(n, lease(0), [a, b], at(100), CFG);
    expect(deletedPods(r)).toEqual([]);
    expect(r.requeueAfterMs).toBe(70_000); // b: maint added at 50 + 120 = 170
  });

  it("skips terminating pods and pods of other nodes", () => {
    const r = reconcileNode(withTaint(), lease(0), [pod("t", { terminating: true }), pod("o", { nodeName: "other" })], at(100), CFG);
    expect(ofType(r, "delete")).toEqual([]);
  });

  it("does not evict for NoSchedule taints", () => {
    const n = node({ ready: "True", taints: [{ key: "dedicated", effect: "NoSchedule" }] });
    expect(reconcileNode(n, lease(90), [pod("p")], at(100), CFG).actions).toEqual([]);
  });

  it("evicts non-tolerating pods for a NoExecute taint without timeAdded but starts no timer for tolerating ones", () => {
    const n = node({ ready: "True", taints: [{ key: "maint", effect: "NoExecute" }] });
    const keep = pod("keep", { tolerations: [{ key: "maint", operator: "Exists", tolerationSeconds: 10 }] });
    const r = reconcileNode(n, lease(90), [pod("evict"), keep], at(100), CFG);
    expect(deletedPods(r)).toEqual(["evict"]);
    expect(r.requeueAfterMs).toBe(30_000); // only the lease expiry
  });
});

describe("reconcileNode: lease expiry end to end", () => {
  it("goes NotReady, taints the node, evicts intolerant pods at once and tolerating ones after 300 s", () => {
    let n = node({ heartbeat: 0 });
    const l = lease(0);
    let pods = [pod("intolerant"), pod("default", { tolerations: DEFAULT_TOLERATIONS })];

    // Healthy: requeue at lease expiry.
    let r = reconcileNode(n, l, pods, at(10), CFG);
    expect(r).toEqual({ actions: [], requeueAfterMs: 30_000 });

    // Pass 1 at expiry: conditions Unknown + event + pods not ready.
    r = reconcileNode(n, l, pods, at(40), CFG);
    expect(nodeUpdates(r).map((a) => a.subresource)).toEqual(["status"]);
    expect(ofType(r, "event").map((e) => e.reason)).toEqual(["NodeNotReady"]);
    ({ node: n, pods } = apply(n, pods, r));

    // Pass 2: the unreachable taints.
    r = reconcileNode(n, l, pods, at(41), CFG);
    expect(nodeUpdates(r).map((a) => a.object.spec.taints)).toEqual([unreachable(41)]);
    expect(ofType(r, "delete")).toEqual([]);
    ({ node: n, pods } = apply(n, pods, r));

    // Pass 3: the intolerant pod goes now; the tolerating one is due at 41 + 300.
    r = reconcileNode(n, l, pods, at(42), CFG);
    expect(deletedPods(r)).toEqual(["intolerant"]);
    expect(r.requeueAfterMs).toBe(299_000);
    expect(nodeUpdates(r)).toEqual([]);
    ({ node: n, pods } = apply(n, pods, r));

    // Nothing to do until the deadline.
    r = reconcileNode(n, l, pods, at(200), CFG);
    expect(r).toEqual({ actions: [], requeueAfterMs: 141_000 });

    // At the deadline the tolerating pod goes.
    r = reconcileNode(n, l, pods, at(341), CFG);
    expect(deletedPods(r)).toEqual(["default"]);
  });

  it("rides out a long disconnection with the cluster override, and renewal clears the taints", () => {
    const cfg = { ...CFG, evictionTolerationSeconds: 86_400 };
    let n = node({ heartbeat: 0 });
    let pods = [pod("app", { tolerations: DEFAULT_TOLERATIONS })];
    let r = reconcileNode(n, lease(0), pods, at(40), cfg);
    ({ node: n, pods } = apply(n, pods, r));
    r = reconcileNode(n, lease(0), pods, at(40), cfg);
    ({ node: n, pods } = apply(n, pods, r));
    r = reconcileNode(n, lease(0), pods, at(3600), cfg);
    expect(r).toEqual({ actions: [], requeueAfterMs: (86_400 + 40 - 3600) * 1000 });

    // The agent reconnects: lease renewed, but Ready still Unknown → keep waiting.
    r = reconcileNode(n, lease(7200), pods, at(7201), cfg);
    expect(r).toEqual({ actions: [], requeueAfterMs: 39_000 });

    // The agent reports Ready → taints removed, pod kept.
    n = structuredClone(n);
    n.status.conditions = n.status.conditions.map((c: Obj) => ({
      ...c,
      status: c.type === "Ready" ? "True" : "False",
      lastHeartbeatTime: ts(7205),
    }));
    r = reconcileNode(n, lease(7205), pods, at(7206), cfg);
    expect(nodeUpdates(r).map((a) => a.object.spec)).toEqual([{}]);
    expect(ofType(r, "delete")).toEqual([]);
  });
});
