// The scheduler Durable Object, woken by the store's commit notifications, places pods
// on simulated nodes: filters (nodeSelector, cordon, taints, cpu) decide where a pod may
// go, and a pod that fits nowhere is reported Unschedulable (condition + Warning event)
// and waits, without spinning, until a node change makes room.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, freshNamespace } from "../workers/helpers.ts";
import { eventually, FakeCluster } from "./cluster.ts";

const cluster = new FakeCluster();
let ns: string;
/** Unique per run, so the labels this file selects on match only its own nodes. */
const RUN = Date.now().toString(36);
const POOL = "scheduling.test/pool";

interface NodeOpts {
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: string }[];
  unschedulable?: boolean;
  cpu?: string;
}

const microTime = () => new Date().toISOString().replace("Z", "000Z");

/** A Ready node with the given labels/taints/cordon, whose lease the FakeCluster renews. */
async function addNode(name: string, opts: NodeOpts = {}): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const cpu = opts.cpu ?? "4";
  const spec: Record<string, unknown> = {};
  if (opts.taints) spec.taints = opts.taints;
  if (opts.unschedulable) spec.unschedulable = true;
  const r = await api("POST", "/api/v1/nodes", {
    metadata: { name, labels: { "kubernetes.io/hostname": name, ...(opts.labels ?? {}) } },
    spec,
    status: {
      capacity: { cpu, memory: "8Gi", pods: "110" },
      allocatable: { cpu, memory: "8Gi", pods: "110" },
      conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", lastHeartbeatTime: now, lastTransitionTime: now }],
    },
  });
  if (r.status !== 201) throw new Error(`node ${name}: ${JSON.stringify(r.body)}`);
  const l = await api("PUT", `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`, {
    metadata: { name, namespace: "kube-node-lease" },
    spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime() },
  });
  if (l.status !== 200 && l.status !== 201) throw new Error(`lease ${name}: ${JSON.stringify(l.body)}`);
  cluster.live.add(name);
}

function pod(name: string, opts: { nodeSelector?: Record<string, string>; tolerations?: unknown[]; cpu?: string } = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { app: name } },
    spec: {
      containers: [{ name: "app", image: "busybox:1.36", resources: { requests: { cpu: opts.cpu ?? "100m", memory: "64Mi" } } }],
      ...(opts.nodeSelector ? { nodeSelector: opts.nodeSelector } : {}),
      ...(opts.tolerations ? { tolerations: opts.tolerations } : {}),
    },
  };
}

async function createPod(p: ReturnType<typeof pod>): Promise<any> {
  const r = await api("POST", `/api/v1/namespaces/${ns}/pods`, p);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

async function getPod(name: string): Promise<any> {
  const r = await api("GET", `/api/v1/namespaces/${ns}/pods/${name}`);
  expect(r.status).toBe(200);
  return r.body;
}

const scheduledCond = (p: any) => p.status?.conditions?.find((c: any) => c.type === "PodScheduled");

/** Waits for PodScheduled=False/Unschedulable and returns the pod. */
function unschedulable(name: string, timeoutMs = 20_000): Promise<any> {
  return eventually(
    `${name} reported Unschedulable`,
    async () => {
      const p = await getPod(name);
      const c = scheduledCond(p);
      return c?.status === "False" && c.reason === "Unschedulable" && p;
    },
    timeoutMs,
  );
}

function bound(name: string, timeoutMs = 20_000): Promise<any> {
  return eventually(
    `${name} bound`,
    async () => {
      const p = await getPod(name);
      return p.spec.nodeName && p;
    },
    timeoutMs,
  );
}

async function failedSchedulingEvents(name: string): Promise<any[]> {
  const items = (await api("GET", `/api/v1/namespaces/${ns}/events`)).body.items as any[];
  return items.filter((e) => e.involvedObject?.name === name && e.reason === "FailedScheduling");
}

async function nodeCount(): Promise<number> {
  return (await api("GET", "/api/v1/nodes")).body.items.length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  for (const n of ["sched-a", "sched-b"]) await addNode(n, { labels: { [POOL]: `general-${RUN}` } });
  cluster.start();
  ns = await freshNamespace("sched");
});

afterAll(() => cluster.stop());

describe("the scheduler", () => {
  it("reports a pod whose nodeSelector matches no node Unschedulable, with kube's message and a FailedScheduling event, and leaves it unbound", async () => {
    await createPod(pod("picky", { nodeSelector: { [POOL]: `gpu-${RUN}` } }));
    const p = await unschedulable("picky");
    const n = await nodeCount();
    const msg: string = scheduledCond(p).message;
    expect(msg).toBe(`0/${n} nodes are available: ${n} node(s) didn't match Pod's node affinity/selector.`);
    expect(p.spec.nodeName).toBeUndefined();
    const events = await eventually("a FailedScheduling event", async () => {
      const evs = await failedSchedulingEvents("picky");
      return evs.length > 0 && evs;
    });
    expect(events).toHaveLength(1);
    expect(events[0].type).toBe("Warning");
    expect(events[0].message).toBe(msg);
    expect(events[0].involvedObject.uid).toBe(p.metadata.uid);
    expect(events[0].source.component).toBe("default-scheduler");

    // No spin: while nothing changes, the pod is neither rewritten nor reported again.
    await sleep(1500);
    const later = await getPod("picky");
    expect(later.spec.nodeName).toBeUndefined();
    expect(later.metadata.resourceVersion).toBe(p.metadata.resourceVersion);
    expect(await failedSchedulingEvents("picky")).toHaveLength(1);
  });

  it("binds the waiting pod as soon as a matching node is added (retried on the node change, not after the 60 s retry)", async () => {
    const before = await getPod("picky");
    expect(before.spec.nodeName).toBeUndefined();
    const t0 = Date.now();
    await addNode("sched-gpu", { labels: { [POOL]: `gpu-${RUN}` } });
    const p = await bound("picky");
    expect(Date.now() - t0).toBeLessThan(20_000); // UNSCHEDULABLE_RETRY_MS is 60 s
    expect(p.spec.nodeName).toBe("sched-gpu");
    const c = scheduledCond(p);
    expect(c.status).toBe("True");
    expect(c.reason).toBeUndefined();
    expect(await failedSchedulingEvents("picky")).toHaveLength(1);
  });

  it("skips a cordoned node (spec.unschedulable)", async () => {
    const pool = `cordon-${RUN}`;
    await addNode("sched-cordoned", { labels: { [POOL]: pool }, unschedulable: true });
    await addNode("sched-open", { labels: { [POOL]: pool } });
    const names = ["c-1", "c-2", "c-3", "c-4"];
    for (const name of names) await createPod(pod(name, { nodeSelector: { [POOL]: pool } }));
    for (const name of names) expect((await bound(name)).spec.nodeName).toBe("sched-open");

    // Only the cordoned node matches: the pod waits, and the message says why.
    await createPod(pod("c-only", { nodeSelector: { "kubernetes.io/hostname": "sched-cordoned" } }));
    const p = await unschedulable("c-only");
    const n = await nodeCount();
    expect(scheduledCond(p).message).toBe(
      `0/${n} nodes are available: 1 node(s) were unschedulable, ${n - 1} node(s) didn't match Pod's node affinity/selector.`,
    );
    expect(p.spec.nodeName).toBeUndefined();
  });

  it("keeps pods that do not tolerate a NoSchedule taint off that node", async () => {
    const pool = `taint-${RUN}`;
    const taint = { key: "dedicated", value: "infra", effect: "NoSchedule" };
    await addNode("sched-tainted", { labels: { [POOL]: pool }, taints: [taint] });
    await addNode("sched-plain", { labels: { [POOL]: pool } });
    const names = ["t-1", "t-2", "t-3", "t-4"];
    for (const name of names) await createPod(pod(name, { nodeSelector: { [POOL]: pool } }));
    for (const name of names) expect((await bound(name)).spec.nodeName).toBe("sched-plain");

    // Without the toleration the tainted node is refused with kube's reason ...
    await createPod(pod("t-refused", { nodeSelector: { "kubernetes.io/hostname": "sched-tainted" } }));
    const refused = await unschedulable("t-refused");
    expect(scheduledCond(refused).message).toMatch(/^0\/\d+ nodes are available: 1 node\(s\) had untolerated taint \{dedicated: infra\}, /);
    // ... and with it the pod lands there.
    await createPod(
      pod("t-tolerant", {
        nodeSelector: { "kubernetes.io/hostname": "sched-tainted" },
        tolerations: [{ key: "dedicated", operator: "Equal", value: "infra", effect: "NoSchedule" }],
      }),
    );
    expect((await bound("t-tolerant")).spec.nodeName).toBe("sched-tainted");
    expect((await getPod("t-refused")).spec.nodeName).toBeUndefined();
  });

  it("leaves a pod whose cpu request exceeds every node pending with Insufficient cpu", async () => {
    const pool = `big-${RUN}`;
    await addNode("sched-big-1", { labels: { [POOL]: pool }, cpu: "8" });
    await addNode("sched-big-2", { labels: { [POOL]: pool }, cpu: "8" });
    await createPod(pod("huge", { nodeSelector: { [POOL]: pool }, cpu: "9" }));
    const p = await unschedulable("huge");
    const n = await nodeCount();
    // The cordoned and the tainted node of the tests above fail earlier filters, with their own reasons.
    expect(scheduledCond(p).message).toBe(
      `0/${n} nodes are available: 1 node(s) had untolerated taint {dedicated: infra}, 1 node(s) were unschedulable, 2 Insufficient cpu, ${n - 4} node(s) didn't match Pod's node affinity/selector.`,
    );
    const events = await eventually("a FailedScheduling event", async () => {
      const evs = await failedSchedulingEvents("huge");
      return evs.length > 0 && evs;
    });
    expect(events[0].type).toBe("Warning");
    // A request that fits goes to the same nodes at once: only cpu kept the big one out.
    await createPod(pod("fits", { nodeSelector: { [POOL]: pool }, cpu: "7" }));
    expect((await bound("fits")).spec.nodeName).toMatch(/^sched-big-/);
    await sleep(1000);
    expect((await getPod("huge")).spec.nodeName).toBeUndefined();
  });
});
