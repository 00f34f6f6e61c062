import { describe, expect, it } from "vitest";
import {
  filterNode,
  filterNodeReasons,
  podMatchesNodeAffinity,
  REASON_HOST_PORTS,
  REASON_INSUFFICIENT_CPU,
  REASON_INSUFFICIENT_MEMORY,
  REASON_NODE_AFFINITY,
  REASON_NODE_NAME,
  REASON_NOT_READY,
  REASON_TOO_MANY_PODS,
  REASON_UNSCHEDULABLE,
  tolerates,
} from "../../durable-objects/scheduler/filter.ts";
import { comparePods, fitErrorMessage, NO_NODES_MESSAGE, numFeasibleNodesToFind, plan } from "../../durable-objects/scheduler/plan.ts";
import { leastAllocatedScore, scoreNode, spreadScore } from "../../durable-objects/scheduler/score.ts";
import {
  assume,
  buildSnapshot,
  DEFAULT_MEMORY_REQUEST,
  DEFAULT_MILLI_CPU_REQUEST,
  type NodeInfo,
  podInfo,
  podRequests,
  type Snapshot,
  ZONE_LABEL,
} from "../../durable-objects/scheduler/snapshot.ts";

type Obj = Record<string, any>;

// ---------------------------------------------------------------------------------------
// Fixtures

interface NodeOpts {
  name: string;
  cpu?: string;
  memory?: string;
  pods?: string;
  labels?: Record<string, string>;
  taints?: Obj[];
  ready?: boolean;
  unschedulable?: boolean;
  zone?: string;
}

function newNode(o: NodeOpts): Obj {
  const labels: Record<string, string> = { "kubernetes.io/hostname": o.name, ...o.labels };
  if (o.zone) labels[ZONE_LABEL] = o.zone;
  const capacity = { cpu: o.cpu ?? "4", memory: o.memory ?? "8Gi", pods: o.pods ?? "110" };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: o.name, uid: `node-uid-${o.name}`, labels },
    spec: { ...(o.taints ? { taints: o.taints } : {}), ...(o.unschedulable ? { unschedulable: true } : {}) },
    status: {
      capacity,
      allocatable: { ...capacity },
      conditions: [{ type: "Ready", status: o.ready === false ? "False" : "True" }],
    },
  };
}

interface PodOpts {
  name: string;
  namespace?: string;
  uid?: string;
  cpu?: string;
  memory?: string;
  nodeName?: string;
  phase?: string;
  labels?: Record<string, string>;
  /** uid of the controlling ReplicaSet */
  owner?: string;
  tolerations?: Obj[];
  nodeSelector?: Record<string, string>;
  affinity?: Obj;
  hostPorts?: { hostPort: number; protocol?: string; hostIP?: string }[];
  priority?: number;
  created?: string;
  initContainers?: Obj[];
  containers?: Obj[];
  overhead?: Obj;
}

function newPod(o: PodOpts): Obj {
  const requests: Obj = {};
  if (o.cpu !== undefined) requests.cpu = o.cpu;
  if (o.memory !== undefined) requests.memory = o.memory;
  const container: Obj = { name: "app", image: "nginx", resources: { requests } };
  if (o.hostPorts) container.ports = o.hostPorts.map((p) => ({ containerPort: p.hostPort, ...p }));
  const spec: Obj = { containers: o.containers ?? [container] };
  if (o.nodeName) spec.nodeName = o.nodeName;
  if (o.tolerations) spec.tolerations = o.tolerations;
  if (o.nodeSelector) spec.nodeSelector = o.nodeSelector;
  if (o.affinity) spec.affinity = o.affinity;
  if (o.priority !== undefined) spec.priority = o.priority;
  if (o.initContainers) spec.initContainers = o.initContainers;
  if (o.overhead) spec.overhead = o.overhead;
  const metadata: Obj = {
    name: o.name,
    namespace: o.namespace ?? "default",
    uid: o.uid ?? `uid-${o.name}`,
    creationTimestamp: o.created ?? "2025-01-01T00:00:00Z",
  };
  if (o.labels) metadata.labels = o.labels;
  if (o.owner) {
    metadata.ownerReferences = [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: `rs-${o.owner}`, uid: o.owner, controller: true }];
  }
  return { apiVersion: "v1", kind: "Pod", metadata, spec, status: { phase: o.phase ?? "Pending" } };
}

function container(cpu?: string, memory?: string, extra: Obj = {}): Obj {
  const requests: Obj = {};
  if (cpu !== undefined) requests.cpu = cpu;
  if (memory !== undefined) requests.memory = memory;
  return { name: `c-${cpu}-${memory}`, image: "busybox", resources: { requests }, ...extra };
}

/** A one-node snapshot and its NodeInfo, with existing pods bound to it. */
function nodeInfoOf(node: Obj, existing: Obj[] = []): NodeInfo {
  const snap = buildSnapshot(
    [node],
    existing.map((p) => ({ ...p, spec: { ...p.spec, nodeName: node.metadata.name } })),
  );
  return snap.byName.get(node.metadata.name)!;
}

function placements(result: ReturnType<typeof plan>): Record<string, string> {
  return Object.fromEntries(result.bindings.map((b) => [b.pod.metadata.name, b.node]));
}

function countBy<T>(xs: T[]): Map<T, number> {
  const m = new Map<T, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

const GI = 1024 ** 3;
const MI = 1024 ** 2;

// ---------------------------------------------------------------------------------------
// Snapshot

describe("podRequests", () => {
  it.each<[string, Obj, { milliCPU: number; memory: number }]>([
    ["missing requests count 0", newPod({ name: "p" }), { milliCPU: 0, memory: 0 }],
    ["one container", newPod({ name: "p", cpu: "500m", memory: "1Gi" }), { milliCPU: 500, memory: GI }],
    ["decimal cpu", newPod({ name: "p", cpu: "0.1", memory: "100M" }), { milliCPU: 100, memory: 100e6 }],
    [
      "containers add up",
      newPod({ name: "p", containers: [container("1", "1Gi"), container("250m", "512Mi")] }),
      { milliCPU: 1250, memory: 1.5 * GI },
    ],
    [
      "an init container larger than the containers wins per resource",
      newPod({ name: "p", containers: [container("1", "1Gi")], initContainers: [container("2", "256Mi"), container("500m", "100Mi")] }),
      { milliCPU: 2000, memory: GI },
    ],
    [
      "sidecars (restartable init containers) add to containers and later init containers",
      newPod({
        name: "p",
        containers: [container("1", "1Gi")],
        initContainers: [container("100m", "64Mi", { restartPolicy: "Always" }), container("2", "128Mi")],
      }),
      { milliCPU: 2100, memory: GI + 64 * MI },
    ],
    [
      "overhead is added",
      newPod({ name: "p", cpu: "1", memory: "1Gi", overhead: { cpu: "250m", memory: "120Mi" } }),
      { milliCPU: 1250, memory: GI + 120 * MI },
    ],
    ["invalid quantities count 0", newPod({ name: "p", cpu: "lots", memory: "-1Gi" }), { milliCPU: 0, memory: 0 }],
  ])("%s", (_name, pod, want) => {
    expect(podRequests(pod)).toEqual({ ...want, pods: 1 });
  });

  it("uses kube's scoring defaults for containers without requests (scoring only)", () => {
    const info = podInfo(newPod({ name: "p", containers: [container(), container("1")] }));
    expect(info.requests).toEqual({ milliCPU: 1000, memory: 0, pods: 1 });
    expect(info.nonZeroRequests).toEqual({ milliCPU: DEFAULT_MILLI_CPU_REQUEST + 1000, memory: 2 * DEFAULT_MEMORY_REQUEST, pods: 1 });
  });
});

describe("buildSnapshot", () => {
  it("counts bound, non-terminal pods against their node", () => {
    const snap = buildSnapshot(
      [newNode({ name: "n1" }), newNode({ name: "n2" })],
      [
        newPod({ name: "running", cpu: "1", memory: "1Gi", nodeName: "n1", phase: "Running", hostPorts: [{ hostPort: 80 }] }),
        newPod({ name: "pending-bound", cpu: "500m", nodeName: "n1" }),
        newPod({ name: "succeeded", cpu: "2", nodeName: "n1", phase: "Succeeded" }),
        newPod({ name: "failed", cpu: "2", nodeName: "n1", phase: "Failed" }),
        newPod({ name: "unbound", cpu: "2" }),
        newPod({ name: "ghost", cpu: "2", nodeName: "gone" }),
      ],
    );
    const n1 = snap.byName.get("n1")!;
    expect(n1.requested).toEqual({ milliCPU: 1500, memory: GI, pods: 2 });
    expect(n1.allocatable).toEqual({ milliCPU: 4000, memory: 8 * GI, pods: 110 });
    expect(n1.pods.map((p) => p.metadata.name)).toEqual(["running", "pending-bound"]);
    expect([...n1.usedHostPorts]).toEqual(["TCP/0.0.0.0/80"]);
    expect(snap.byName.get("n2")!.requested).toEqual({ milliCPU: 0, memory: 0, pods: 0 });
  });

  it("orders nodes round-robin across zones, by name within a zone", () => {
    const snap = buildSnapshot(
      [
        newNode({ name: "b2", zone: "b" }),
        newNode({ name: "a2", zone: "a" }),
        newNode({ name: "a1", zone: "a" }),
        newNode({ name: "a3", zone: "a" }),
        newNode({ name: "b1", zone: "b" }),
        newNode({ name: "c1", zone: "c" }),
      ],
      [],
    );
    expect(snap.nodes.map((n) => n.name)).toEqual(["a1", "b1", "c1", "a2", "b2", "a3"]);
  });

  it("assume adds the pod's requests, ports and spread counts to the node", () => {
    const snap = buildSnapshot([newNode({ name: "n1", zone: "z1" })], []);
    const pod = newPod({
      name: "p",
      cpu: "1",
      memory: "1Gi",
      owner: "rs1",
      hostPorts: [{ hostPort: 53, protocol: "UDP", hostIP: "10.0.0.1" }],
    });
    assume(snap, pod, "n1");
    const n1 = snap.byName.get("n1")!;
    expect(n1.requested).toEqual({ milliCPU: 1000, memory: GI, pods: 1 });
    expect([...n1.usedHostPorts]).toEqual(["UDP/10.0.0.1/53"]);
    expect(n1.spreadCounts.get("owner:rs1")).toBe(1);
    expect(snap.zoneSpreadCounts.get("z1")?.get("owner:rs1")).toBe(1);
    expect(() => assume(snap, pod, "nope")).toThrow(/nope/);
  });
});

// ---------------------------------------------------------------------------------------
// Filters

describe("filterNode", () => {
  const full = newPod({ name: "hog", cpu: "3500m", memory: "7Gi", nodeName: "n" });
  it.each<[string, Obj, Obj, string | null, Obj[]?]>([
    ["a Ready node with room fits", newNode({ name: "n" }), newPod({ name: "p", cpu: "1", memory: "1Gi" }), null],
    [
      "a node whose Ready condition is not True is not ready",
      newNode({ name: "n", ready: false }),
      newPod({ name: "p" }),
      REASON_NOT_READY,
    ],
    [
      "a not-ready node with the lifecycle taint reports the taint",
      newNode({ name: "n", ready: false, taints: [{ key: "node.kubernetes.io/not-ready", effect: "NoSchedule" }] }),
      newPod({ name: "p" }),
      "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
    ],
    [
      "a not-ready node with the lifecycle taint admits pods tolerating it",
      newNode({ name: "n", ready: false, taints: [{ key: "node.kubernetes.io/not-ready", effect: "NoSchedule" }] }),
      newPod({ name: "p", tolerations: [{ key: "node.kubernetes.io/not-ready", operator: "Exists" }] }),
      null,
    ],
    ["a cordoned node is unschedulable", newNode({ name: "n", unschedulable: true }), newPod({ name: "p" }), REASON_UNSCHEDULABLE],
    [
      "a cordoned node admits pods tolerating node.kubernetes.io/unschedulable:NoSchedule",
      newNode({ name: "n", unschedulable: true }),
      newPod({ name: "p", tolerations: [{ key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoSchedule" }] }),
      null,
    ],
    ["too little cpu left", newNode({ name: "n" }), newPod({ name: "p", cpu: "1" }), REASON_INSUFFICIENT_CPU, [full]],
    ["too little memory left", newNode({ name: "n" }), newPod({ name: "p", memory: "2Gi" }), REASON_INSUFFICIENT_MEMORY, [full]],
    ["a pod that requests nothing fits a full node", newNode({ name: "n" }), newPod({ name: "p" }), null, [full]],
    ["exactly the remaining cpu fits", newNode({ name: "n" }), newPod({ name: "p", cpu: "500m" }), null, [full]],
    [
      "no pod slots left",
      newNode({ name: "n", pods: "1" }),
      newPod({ name: "p" }),
      REASON_TOO_MANY_PODS,
      [newPod({ name: "x", nodeName: "n" })],
    ],
    ["nodeSelector matches", newNode({ name: "n", labels: { disk: "ssd" } }), newPod({ name: "p", nodeSelector: { disk: "ssd" } }), null],
    [
      "nodeSelector differs",
      newNode({ name: "n", labels: { disk: "hdd" } }),
      newPod({ name: "p", nodeSelector: { disk: "ssd" } }),
      REASON_NODE_AFFINITY,
    ],
    ["nodeSelector label missing", newNode({ name: "n" }), newPod({ name: "p", nodeSelector: { disk: "ssd" } }), REASON_NODE_AFFINITY],
    [
      "an untolerated NoSchedule taint",
      newNode({ name: "n", taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] }),
      newPod({ name: "p" }),
      "node(s) had untolerated taint {dedicated: gpu}",
    ],
    [
      "an untolerated NoExecute taint",
      newNode({ name: "n", taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoExecute" }] }),
      newPod({ name: "p" }),
      "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
    ],
    [
      "a PreferNoSchedule taint does not filter",
      newNode({ name: "n", taints: [{ key: "soft", effect: "PreferNoSchedule" }] }),
      newPod({ name: "p" }),
      null,
    ],
    [
      "a tolerated taint",
      newNode({ name: "n", taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] }),
      newPod({ name: "p", tolerations: [{ key: "dedicated", operator: "Equal", value: "gpu", effect: "NoSchedule" }] }),
      null,
    ],
    [
      "a host port in use",
      newNode({ name: "n" }),
      newPod({ name: "p", hostPorts: [{ hostPort: 8080 }] }),
      REASON_HOST_PORTS,
      [newPod({ name: "x", hostPorts: [{ hostPort: 8080 }] })],
    ],
    [
      "a free host port",
      newNode({ name: "n" }),
      newPod({ name: "p", hostPorts: [{ hostPort: 8081 }] }),
      null,
      [newPod({ name: "x", hostPorts: [{ hostPort: 8080 }] })],
    ],
    ["spec.nodeName naming another node", newNode({ name: "n" }), newPod({ name: "p", nodeName: "other" }), REASON_NODE_NAME],
  ])("%s", (_name, node, pod, want, existing = []) => {
    expect(filterNode(pod, nodeInfoOf(node, existing))).toBe(want);
  });

  it("reports every resource that is short, in kube's order", () => {
    const ni = nodeInfoOf(newNode({ name: "n", cpu: "1", memory: "1Gi", pods: "1" }), [newPod({ name: "x", cpu: "1", memory: "1Gi" })]);
    expect(filterNodeReasons(newPod({ name: "p", cpu: "1", memory: "1Gi" }), ni)).toEqual([
      REASON_TOO_MANY_PODS,
      REASON_INSUFFICIENT_CPU,
      REASON_INSUFFICIENT_MEMORY,
    ]);
    expect(filterNode(newPod({ name: "p", cpu: "1", memory: "1Gi" }), ni)).toBe(REASON_TOO_MANY_PODS);
  });

  it("checks taints before resources, as kube-scheduler's plugin order does", () => {
    const ni = nodeInfoOf(newNode({ name: "n", cpu: "1", taints: [{ key: "a", value: "b", effect: "NoSchedule" }] }));
    expect(filterNodeReasons(newPod({ name: "p", cpu: "2" }), ni)).toEqual(["node(s) had untolerated taint {a: b}"]);
  });
});

describe("tolerates", () => {
  const taint = { key: "k", value: "v", effect: "NoSchedule" };
  it.each<[string, Obj[] | undefined, Obj, boolean]>([
    ["no tolerations", undefined, taint, false],
    ["Equal with same key, value and effect", [{ key: "k", operator: "Equal", value: "v", effect: "NoSchedule" }], taint, true],
    ["operator defaults to Equal", [{ key: "k", value: "v", effect: "NoSchedule" }], taint, true],
    ["Equal with another value", [{ key: "k", operator: "Equal", value: "w", effect: "NoSchedule" }], taint, false],
    ["Equal without value against a valued taint", [{ key: "k", operator: "Equal" }], taint, false],
    ["Equal without value against an empty-valued taint", [{ key: "k", operator: "Equal" }], { key: "k", effect: "NoSchedule" }, true],
    ["Exists ignores the value", [{ key: "k", operator: "Exists" }], taint, true],
    ["Exists with another key", [{ key: "other", operator: "Exists" }], taint, false],
    ["empty key with Exists tolerates everything", [{ operator: "Exists" }], { key: "anything", value: "x", effect: "NoExecute" }, true],
    ["empty effect matches every effect", [{ key: "k", operator: "Exists" }], { key: "k", effect: "NoExecute" }, true],
    ["a different effect", [{ key: "k", operator: "Exists", effect: "NoExecute" }], taint, false],
    [
      "PreferNoSchedule toleration does not tolerate NoSchedule",
      [{ key: "k", operator: "Exists", effect: "PreferNoSchedule" }],
      taint,
      false,
    ],
    ["unknown operator", [{ key: "k", operator: "Gt", value: "v" }], taint, false],
    [
      "any of several",
      [
        { key: "x", operator: "Exists" },
        { key: "k", operator: "Exists" },
      ],
      taint,
      true,
    ],
  ])("%s -> %s", (_name, tolerations, t, want) => {
    expect(tolerates(tolerations, t)).toBe(want);
  });
});

describe("required node affinity", () => {
  const node = newNode({ name: "node-a", labels: { zone: "z1", gen: "5", ssd: "" } });
  const affinity = (...terms: Obj[]) => ({
    nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
  });
  const expr = (key: string, operator: string, values?: string[]) => ({
    matchExpressions: [{ key, operator, ...(values ? { values } : {}) }],
  });

  it.each<[string, Obj, boolean]>([
    ["In matches", affinity(expr("zone", "In", ["z0", "z1"])), true],
    ["In misses", affinity(expr("zone", "In", ["z2"])), false],
    ["In on a missing label", affinity(expr("rack", "In", ["r1"])), false],
    ["NotIn matches", affinity(expr("zone", "NotIn", ["z2"])), true],
    ["NotIn misses", affinity(expr("zone", "NotIn", ["z1"])), false],
    ["NotIn on a missing label matches", affinity(expr("rack", "NotIn", ["r1"])), true],
    ["Exists", affinity(expr("ssd", "Exists")), true],
    ["Exists on a missing label", affinity(expr("gpu", "Exists")), false],
    ["DoesNotExist", affinity(expr("gpu", "DoesNotExist")), true],
    ["DoesNotExist on a present label", affinity(expr("ssd", "DoesNotExist")), false],
    ["Gt matches", affinity(expr("gen", "Gt", ["4"])), true],
    ["Gt equal misses", affinity(expr("gen", "Gt", ["5"])), false],
    ["Lt matches", affinity(expr("gen", "Lt", ["6"])), true],
    ["Lt misses", affinity(expr("gen", "Lt", ["5"])), false],
    ["Gt on a non-integer label", affinity(expr("zone", "Gt", ["1"])), false],
    ["Gt with a non-integer value is an invalid term", affinity(expr("gen", "Gt", ["x"])), false],
    ["In without values is an invalid term", affinity(expr("zone", "In", [])), false],
    ["an unknown operator is an invalid term", affinity(expr("zone", "Like", ["z1"])), false],
    [
      "expressions of a term are ANDed",
      affinity({
        matchExpressions: [
          { key: "zone", operator: "In", values: ["z1"] },
          { key: "gpu", operator: "Exists" },
        ],
      }),
      false,
    ],
    ["terms are ORed", affinity(expr("gpu", "Exists"), expr("zone", "In", ["z1"])), true],
    ["an invalid term does not spoil a valid one", affinity(expr("zone", "Like", ["z1"]), expr("zone", "In", ["z1"])), true],
    ["matchFields metadata.name In", affinity({ matchFields: [{ key: "metadata.name", operator: "In", values: ["node-a"] }] }), true],
    [
      "matchFields metadata.name In another node",
      affinity({ matchFields: [{ key: "metadata.name", operator: "In", values: ["node-b"] }] }),
      false,
    ],
    ["matchFields metadata.name NotIn", affinity({ matchFields: [{ key: "metadata.name", operator: "NotIn", values: ["node-b"] }] }), true],
    ["matchFields on another field is invalid", affinity({ matchFields: [{ key: "metadata.uid", operator: "In", values: ["x"] }] }), false],
    [
      "matchExpressions and matchFields of a term are ANDed",
      affinity({
        matchExpressions: [{ key: "zone", operator: "In", values: ["z1"] }],
        matchFields: [{ key: "metadata.name", operator: "In", values: ["node-b"] }],
      }),
      false,
    ],
    ["an empty term matches nothing", affinity({}), false],
    ["no terms match nothing", affinity(), false],
  ])("%s", (_name, aff, want) => {
    const pod = newPod({ name: "p", affinity: aff });
    expect(filterNode(pod, nodeInfoOf(node))).toBe(want ? null : REASON_NODE_AFFINITY);
    expect(podMatchesNodeAffinity(pod, node)).toBe(want);
  });

  it("requires both nodeSelector and affinity", () => {
    const pod = newPod({ name: "p", nodeSelector: { zone: "z2" }, affinity: affinity(expr("zone", "In", ["z1"])) });
    expect(filterNode(pod, nodeInfoOf(node))).toBe(REASON_NODE_AFFINITY);
  });
});

describe("host ports", () => {
  type P = { hostPort: number; protocol?: string; hostIP?: string };
  it.each<[string, P, P, boolean]>([
    ["same port, both wildcard", { hostPort: 80 }, { hostPort: 80 }, true],
    ["different ports", { hostPort: 80 }, { hostPort: 81 }, false],
    ["same port, other protocol", { hostPort: 53, protocol: "UDP" }, { hostPort: 53, protocol: "TCP" }, false],
    ["same port and protocol UDP", { hostPort: 53, protocol: "UDP" }, { hostPort: 53, protocol: "UDP" }, true],
    ["used on a specific IP, wanted on 0.0.0.0", { hostPort: 80, hostIP: "10.0.0.1" }, { hostPort: 80 }, true],
    ["used on 0.0.0.0, wanted on a specific IP", { hostPort: 80 }, { hostPort: 80, hostIP: "10.0.0.1" }, true],
    ["explicit 0.0.0.0 is the wildcard", { hostPort: 80, hostIP: "0.0.0.0" }, { hostPort: 80, hostIP: "10.0.0.2" }, true],
    ["same specific IP", { hostPort: 80, hostIP: "10.0.0.1" }, { hostPort: 80, hostIP: "10.0.0.1" }, true],
    ["different specific IPs", { hostPort: 80, hostIP: "10.0.0.1" }, { hostPort: 80, hostIP: "10.0.0.2" }, false],
  ])("%s -> conflict %s", (_name, used, wanted, conflict) => {
    const ni = nodeInfoOf(newNode({ name: "n" }), [newPod({ name: "x", hostPorts: [used] })]);
    expect(filterNode(newPod({ name: "p", hostPorts: [wanted] }), ni)).toBe(conflict ? REASON_HOST_PORTS : null);
  });

  it("containerPorts without hostPort never conflict", () => {
    const pod = newPod({ name: "p", containers: [{ name: "c", image: "x", ports: [{ containerPort: 80 }] }] });
    const ni = nodeInfoOf(newNode({ name: "n" }), [
      newPod({ name: "x", containers: [{ name: "c", image: "x", ports: [{ containerPort: 80 }] }] }),
    ]);
    expect(filterNode(pod, ni)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------
// Scores

describe("scoreNode", () => {
  it("least-allocated prefers the emptier node", () => {
    const snap = buildSnapshot(
      [newNode({ name: "busy" }), newNode({ name: "idle" })],
      [newPod({ name: "x", cpu: "2", memory: "4Gi", nodeName: "busy" })],
    );
    const pod = newPod({ name: "p", cpu: "1", memory: "1Gi" });
    const busy = snap.byName.get("busy")!;
    const idle = snap.byName.get("idle")!;
    expect(scoreNode(pod, idle, snap)).toBeGreaterThan(scoreNode(pod, busy, snap));
    // idle: cpu 3/4 free, memory 7/8 free -> 100 * (0.75 + 0.875) / 2
    expect(leastAllocatedScore(podInfo(pod), idle)).toBeCloseTo(81.25, 10);
    expect(leastAllocatedScore(podInfo(pod), busy)).toBeCloseTo(31.25, 10);
    expect(plan([pod], snap, 1).bindings[0].node).toBe("idle");
  });

  it("stays within 0..200", () => {
    const snap = buildSnapshot([newNode({ name: "n", zone: "z" })], []);
    const s = scoreNode(newPod({ name: "p" }), snap.byName.get("n")!, snap);
    expect(s).toBeGreaterThan(0);
    expect(s).toBeLessThanOrEqual(200);
    expect(scoreNode(newPod({ name: "q", cpu: "8" }), snap.byName.get("n")!, snap)).toBeGreaterThanOrEqual(0);
  });

  it("spread: same-owner pods on the node and in the zone lower the score", () => {
    const snap = buildSnapshot(
      [newNode({ name: "a1", zone: "a" }), newNode({ name: "a2", zone: "a" }), newNode({ name: "b1", zone: "b" })],
      [newPod({ name: "r0", owner: "rs1", nodeName: "a1" })],
    );
    const info = podInfo(newPod({ name: "r1", owner: "rs1" }));
    const other = podInfo(newPod({ name: "o1", owner: "rs2" }));
    expect(spreadScore(info, snap.byName.get("b1")!, snap)).toBeCloseTo(100, 10);
    expect(spreadScore(info, snap.byName.get("a2")!, snap)).toBeCloseTo(100 * (1 / 3 + 2 / 3 / 2), 10);
    expect(spreadScore(info, snap.byName.get("a1")!, snap)).toBeCloseTo(100 * (1 / 3 / 2 + 2 / 3 / 2), 10);
    expect(spreadScore(other, snap.byName.get("a1")!, snap)).toBeCloseTo(100, 10);
  });

  it("spread: pods without a controller group by namespace and labels", () => {
    const snap = buildSnapshot([newNode({ name: "n" })], [newPod({ name: "x", labels: { app: "web" }, nodeName: "n" })]);
    const ni = snap.byName.get("n")!;
    expect(spreadScore(podInfo(newPod({ name: "p", labels: { app: "web" } })), ni, snap)).toBe(50);
    expect(spreadScore(podInfo(newPod({ name: "p", labels: { app: "db" } })), ni, snap)).toBe(100);
    expect(spreadScore(podInfo(newPod({ name: "p", namespace: "other", labels: { app: "web" } })), ni, snap)).toBe(100);
  });
});

// ---------------------------------------------------------------------------------------
// Plans

describe("plan", () => {
  it("binds a pod to the only node that fits", () => {
    const snap = buildSnapshot(
      [
        newNode({ name: "small", cpu: "1" }),
        newNode({ name: "tainted", taints: [{ key: "a", value: "b", effect: "NoSchedule" }] }),
        newNode({ name: "fits" }),
        newNode({ name: "down", ready: false }),
      ],
      [],
    );
    const pod = newPod({ name: "p", cpu: "2" });
    expect(plan([pod], snap, 7)).toEqual({ bindings: [{ pod, node: "fits" }], unschedulable: [] });
  });

  it("spreads replicas of one ReplicaSet across 3 nodes", () => {
    const snap = buildSnapshot([newNode({ name: "n1" }), newNode({ name: "n2" }), newNode({ name: "n3" })], []);
    const pods = Array.from({ length: 6 }, (_, i) => newPod({ name: `web-${i}`, owner: "rs-web", cpu: "100m", memory: "128Mi" }));
    const result = plan(pods, snap, 1);
    expect(result.unschedulable).toEqual([]);
    expect([...countBy(result.bindings.map((b) => b.node)).values()]).toEqual([2, 2, 2]);
    // The first three each take a fresh node.
    expect(new Set(result.bindings.slice(0, 3).map((b) => b.node)).size).toBe(3);
  });

  it("spreads replicas across zones first, then across the nodes of each zone", () => {
    const uneven = [
      newNode({ name: "a1", zone: "a" }),
      newNode({ name: "a2", zone: "a" }),
      newNode({ name: "a3", zone: "a" }),
      newNode({ name: "a4", zone: "a" }),
      newNode({ name: "b1", zone: "b" }),
      newNode({ name: "c1", zone: "c" }),
    ];
    // However many nodes a zone has, the first three replicas take one zone each.
    for (const seed of [1, 2, 3, 4, 5]) {
      const snap = buildSnapshot(uneven, []);
      const pods = Array.from({ length: 3 }, (_, i) => newPod({ name: `web-${i}`, owner: "rs-web", cpu: "100m" }));
      const zones = plan(pods, snap, seed).bindings.map((b) => snap.byName.get(b.node)!.zone);
      expect(new Set(zones)).toEqual(new Set(["a", "b", "c"]));
    }
    // Six replicas on 3 zones x 2 nodes: two per zone, one per node.
    const even = ["a", "b", "c"].flatMap((z) => [newNode({ name: `${z}1`, zone: z }), newNode({ name: `${z}2`, zone: z })]);
    const snap = buildSnapshot(even, []);
    const pods = Array.from({ length: 6 }, (_, i) => newPod({ name: `web-${i}`, owner: "rs-web", cpu: "100m" }));
    const result = plan(pods, snap, 1);
    expect(Object.fromEntries(countBy(result.bindings.map((b) => snap.byName.get(b.node)!.zone)))).toEqual({ a: 2, b: 2, c: 2 });
    expect(new Set(result.bindings.map((b) => b.node)).size).toBe(6);
    // Another ReplicaSet spreads on its own, ignoring the first one's pods.
    const other = plan(
      [newPod({ name: "db-0", owner: "rs-db", cpu: "100m" }), newPod({ name: "db-1", owner: "rs-db", cpu: "100m" })],
      snap,
      1,
    );
    const otherZones = other.bindings.map((b) => snap.byName.get(b.node)!.zone);
    expect(new Set(otherZones).size).toBe(2);
  });

  it("assumes earlier placements: two pods that each need most of a node go to different nodes", () => {
    const snap = buildSnapshot([newNode({ name: "n1" }), newNode({ name: "n2" })], []);
    const pods = [newPod({ name: "big-1", cpu: "3", memory: "6Gi" }), newPod({ name: "big-2", cpu: "3", memory: "6Gi" })];
    const result = plan(pods, snap, 3);
    expect(result.unschedulable).toEqual([]);
    expect(new Set(result.bindings.map((b) => b.node))).toEqual(new Set(["n1", "n2"]));
    // A third one no longer fits anywhere, and the snapshot holds the assumed pods.
    const third = plan([newPod({ name: "big-3", cpu: "3" })], snap, 3);
    expect(third.unschedulable[0].message).toBe("0/2 nodes are available: 2 Insufficient cpu.");
    expect(snap.byName.get("n1")!.requested.pods + snap.byName.get("n2")!.requested.pods).toBe(2);
  });

  it("reports unschedulable pods with kube's message: reasons counted and sorted", () => {
    const snap = buildSnapshot(
      [
        newNode({ name: "n1", cpu: "1" }),
        newNode({ name: "n2", cpu: "1" }),
        newNode({ name: "n3", cpu: "1", memory: "1Gi" }),
        newNode({ name: "t1", taints: [{ key: "a", value: "b", effect: "NoSchedule" }] }),
        newNode({ name: "t2", taints: [{ key: "a", value: "b", effect: "NoExecute" }] }),
      ],
      [],
    );
    const pod = newPod({ name: "p", cpu: "2", memory: "2Gi" });
    const result = plan([pod], snap, 1);
    expect(result.bindings).toEqual([]);
    expect(result.unschedulable).toEqual([
      { pod, message: "0/5 nodes are available: 1 Insufficient memory, 2 node(s) had untolerated taint {a: b}, 3 Insufficient cpu." },
    ]);
  });

  it.each<[string, number, Map<string, number>, string]>([
    ["no nodes", 0, new Map(), NO_NODES_MESSAGE],
    ["one reason", 3, new Map([[REASON_UNSCHEDULABLE, 3]]), "0/3 nodes are available: 3 node(s) were unschedulable."],
    [
      "sorted as strings, like Go's sort.Strings",
      12,
      new Map([
        [REASON_INSUFFICIENT_CPU, 10],
        [REASON_NOT_READY, 2],
      ]),
      "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were not ready.",
    ],
  ])("fitErrorMessage: %s", (_name, n, reasons, want) => {
    expect(fitErrorMessage(n, reasons)).toBe(want);
  });

  it("says no nodes are available when the cluster has none", () => {
    const pod = newPod({ name: "p" });
    expect(plan([pod], buildSnapshot([], []), 1).unschedulable).toEqual([{ pod, message: NO_NODES_MESSAGE }]);
  });

  it("is deterministic given a seed", () => {
    const run = (seed: number) => {
      const snap = buildSnapshot(
        Array.from({ length: 20 }, (_, i) => newNode({ name: `n${i}`, zone: `z${i % 3}` })),
        [],
      );
      const pods = Array.from({ length: 50 }, (_, i) => newPod({ name: `p${i}`, owner: `rs${i % 4}`, cpu: "100m" }));
      return placements(plan(pods, snap, seed));
    };
    expect(run(42)).toEqual(run(42));
  });

  it("breaks ties among equal scores differently for different seeds", () => {
    const chosen = new Set<string>();
    for (let seed = 0; seed < 32; seed++) {
      const snap = buildSnapshot([newNode({ name: "n1" }), newNode({ name: "n2" }), newNode({ name: "n3" })], []);
      const result = plan([newPod({ name: "p", cpu: "1" })], snap, seed);
      chosen.add(result.bindings[0].node);
      // Same seed, same answer.
      const again = buildSnapshot([newNode({ name: "n1" }), newNode({ name: "n2" }), newNode({ name: "n3" })], []);
      expect(plan([newPod({ name: "p", cpu: "1" })], again, seed).bindings[0].node).toBe(result.bindings[0].node);
    }
    expect(chosen.size).toBeGreaterThan(1);
  });

  it("schedules in priority order, then creationTimestamp, then name", () => {
    const snap = buildSnapshot([newNode({ name: "n", cpu: "2" })], []);
    const pods = [
      newPod({ name: "low", cpu: "1", priority: 0, created: "2025-01-01T00:00:00Z" }),
      newPod({ name: "old-b", cpu: "1", priority: 10, created: "2025-01-01T00:00:00Z" }),
      newPod({ name: "old-a", cpu: "1", priority: 10, created: "2025-01-01T00:00:00Z" }),
      newPod({ name: "high", cpu: "1", priority: 1000, created: "2025-06-01T00:00:00Z" }),
    ];
    const result = plan(pods, snap, 1);
    expect(result.bindings.map((b) => b.pod.metadata.name)).toEqual(["high", "old-a"]);
    expect(result.unschedulable.map((u) => u.pod.metadata.name)).toEqual(["old-b", "low"]);
    expect([...pods].sort(comparePods).map((p) => p.metadata.name)).toEqual(["high", "old-a", "old-b", "low"]);
    const newer = newPod({ name: "a-newer", priority: 10, created: "2025-02-01T00:00:00Z" });
    expect([newer, pods[1]].sort(comparePods).map((p) => p.metadata.name)).toEqual(["old-b", "a-newer"]);
  });

  it("does not mutate the pending pods", () => {
    const pod = newPod({ name: "p", cpu: "1" });
    const before = structuredClone(pod);
    plan([pod], buildSnapshot([newNode({ name: "n" })], []), 1);
    expect(pod).toEqual(before);
  });

  it("finds every free slot even when it samples nodes (1,000 one-pod nodes, 1,000 pods)", () => {
    const snap = buildSnapshot(
      Array.from({ length: 1000 }, (_, i) => newNode({ name: `n${String(i).padStart(4, "0")}`, pods: "1" })),
      [],
    );
    const pods = Array.from({ length: 1001 }, (_, i) => newPod({ name: `p${String(i).padStart(4, "0")}` }));
    const result = plan(pods, snap, 5);
    expect(result.bindings).toHaveLength(1000);
    expect(new Set(result.bindings.map((b) => b.node)).size).toBe(1000);
    expect(result.unschedulable.map((u) => u.message)).toEqual(["0/1000 nodes are available: 1000 Too many pods."]);
  });
});

describe("numFeasibleNodesToFind", () => {
  it.each([
    [0, 0],
    [50, 50],
    [99, 99],
    [100, 100],
    [200, 100],
    [1000, 420],
    [5000, 500],
    [6000, 300],
    [100_000, 5000],
  ])("%i nodes -> %i", (total, want) => {
    expect(numFeasibleNodesToFind(total)).toBe(want);
  });

  it("honours an explicit percentage", () => {
    expect(numFeasibleNodesToFind(5000, 50)).toBe(2500);
    expect(numFeasibleNodesToFind(5000, 1)).toBe(100);
    expect(numFeasibleNodesToFind(5000, 100)).toBe(5000);
  });
});

// ---------------------------------------------------------------------------------------
// Micro-benchmark: logs only, asserts nothing about time. SCHEDULER_BENCH=1 runs the full
// 10,000 pods on 5,000 nodes.

describe("micro-benchmark", () => {
  it("logs pods/s", () => {
    const full = !!process.env.SCHEDULER_BENCH;
    const numNodes = 5000;
    const numPods = full ? 10_000 : 2000;
    const nodes = Array.from({ length: numNodes }, (_, i) =>
      newNode({ name: `node-${i}`, cpu: "16", memory: "64Gi", zone: `zone-${i % 3}` }),
    );
    // Some load already bound, and a few tainted nodes.
    const existing = Array.from({ length: 5000 }, (_, i) =>
      newPod({ name: `old-${i}`, owner: `old-rs-${i % 50}`, cpu: "500m", memory: "1Gi", nodeName: `node-${(i * 7) % numNodes}` }),
    );
    for (let i = 0; i < numNodes; i += 97) nodes[i].spec.taints = [{ key: "dedicated", value: "infra", effect: "NoSchedule" }];
    const pending = Array.from({ length: numPods }, (_, i) =>
      newPod({
        name: `pod-${i}`,
        owner: `rs-${i % 20}`,
        cpu: "250m",
        memory: "512Mi",
        ...(i % 10 === 0 ? { hostPorts: [{ hostPort: 9100 }] } : {}),
      }),
    );
    const t0 = performance.now();
    const snap: Snapshot = buildSnapshot(nodes, existing);
    const t1 = performance.now();
    const result = plan(pending, snap, 1);
    const t2 = performance.now();
    const rate = Math.round(numPods / ((t2 - t1) / 1000));
    console.log(
      `scheduler: ${numPods} pods on ${numNodes} nodes: snapshot ${(t1 - t0).toFixed(0)} ms, plan ${(t2 - t1).toFixed(0)} ms, ${rate} pods/s; ` +
        `${result.bindings.length} bound, ${result.unschedulable.length} unschedulable`,
    );
    expect(result.bindings.length + result.unschedulable.length).toBe(numPods);
  });
});
