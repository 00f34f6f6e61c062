// The scheduler and the controllers, running in their Durable Objects and woken by the
// store's commit notifications, drive a Deployment against simulated nodes.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, freshNamespace, newDeployment } from "../workers/helpers.ts";
import { active, eventually, FakeCluster, podsOf } from "./cluster.ts";

const cluster = new FakeCluster();
let ns: string;

beforeAll(async () => {
  for (const n of ["node-a", "node-b", "node-c"]) await cluster.addNode(n);
  cluster.start();
  ns = await freshNamespace("deploy");
});

afterAll(() => cluster.stop());

describe("a Deployment against three nodes", () => {
  it("gets 3 bound pods, owned by one ReplicaSet, spread over the nodes", async () => {
    const d = newDeployment("web", 3, "nginx:1.27");
    (d.spec as any).strategy = { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
    expect((await api("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, d)).status).toBe(201);
    const pods = await eventually("3 running pods", async () => {
      const ps = active(await podsOf(ns, "app=web"));
      return ps.length === 3 && ps.every((p) => p.spec.nodeName && p.status.phase === "Running") && ps;
    });
    expect(new Set(pods.map((p: any) => p.spec.nodeName)).size).toBe(3);
    const rs = (await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets`)).body.items;
    expect(rs).toHaveLength(1);
    expect(pods.every((p: any) => p.metadata.ownerReferences[0].uid === rs[0].metadata.uid)).toBe(true);
    const ev = (await api("GET", `/api/v1/namespaces/${ns}/events`)).body.items.map((e: any) => e.reason);
    expect(ev).toEqual(expect.arrayContaining(["ScalingReplicaSet", "SuccessfulCreate", "Scheduled"]));
    await eventually("deployment available", async () => {
      const dep = (await api("GET", `/apis/apps/v1/namespaces/${ns}/deployments/web`)).body;
      return dep.status?.availableReplicas === 3 && dep.status.observedGeneration === dep.metadata.generation;
    });
  });

  it("replaces a deleted pod", async () => {
    const [victim] = active(await podsOf(ns, "app=web"));
    await api("DELETE", `/api/v1/namespaces/${ns}/pods/${victim.metadata.name}?gracePeriodSeconds=0`);
    await eventually("a replacement", async () => {
      const ps = active(await podsOf(ns, "app=web"));
      return ps.length === 3 && !ps.some((p) => p.metadata.uid === victim.metadata.uid) && ps.every((p) => p.status.phase === "Running");
    });
  });

  it("rolls out a new image within maxSurge=1 / maxUnavailable=0", async () => {
    const r = await api(
      "PATCH",
      `/apis/apps/v1/namespaces/${ns}/deployments/web`,
      { spec: { template: { spec: { containers: [{ name: "web", image: "nginx:1.28" }] } } } },
      { contentType: "application/strategic-merge-patch+json" },
    );
    expect(r.status).toBe(200);
    let maxSeen = 0;
    let minReady = 3;
    await eventually(
      "rollout to nginx:1.28",
      async () => {
        const ps = active(await podsOf(ns, "app=web"));
        maxSeen = Math.max(maxSeen, ps.length);
        const ready = ps.filter((p) => p.status.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"));
        minReady = Math.min(minReady, ready.length);
        return ps.length === 3 && ps.every((p) => p.spec.containers[0].image === "nginx:1.28" && p.status.phase === "Running");
      },
      45_000,
      50,
    );
    expect(maxSeen).toBeLessThanOrEqual(4); // replicas + maxSurge
    expect(minReady).toBeGreaterThanOrEqual(3); // replicas - maxUnavailable
    const rs = (await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets`)).body.items;
    expect(rs).toHaveLength(2);
    const dep = (await api("GET", `/apis/apps/v1/namespaces/${ns}/deployments/web`)).body;
    expect(dep.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("2");
  });

  it("marks a node whose lease stops NotReady, taints it, evicts its pods, and replaces them elsewhere", async () => {
    const pods = active(await podsOf(ns, "app=web"));
    const dead = pods[0].spec.nodeName;
    cluster.stopNode(dead);
    const node = await eventually("node tainted unreachable", async () => {
      const n = (await api("GET", `/api/v1/nodes/${dead}`)).body;
      const ready = n.status.conditions.find((c: any) => c.type === "Ready");
      return (
        ready.status === "Unknown" &&
        n.spec.taints?.some((t: any) => t.key === "node.kubernetes.io/unreachable" && t.effect === "NoExecute") &&
        n
      );
    });
    expect(node.spec.taints.map((t: any) => t.effect).sort()).toEqual(["NoExecute", "NoSchedule"]);
    await eventually("pods back to 3 on live nodes", async () => {
      const ps = active(await podsOf(ns, "app=web"));
      return ps.length === 3 && ps.every((p) => p.spec.nodeName && p.spec.nodeName !== dead && p.status.phase === "Running");
    });
    const reasons = (await api("GET", `/api/v1/namespaces/${ns}/events`)).body.items.map((e: any) => e.reason);
    expect(reasons).toContain("TaintManagerEviction");
  });

  it("deletes the ReplicaSets and pods when the Deployment is deleted", async () => {
    expect((await api("DELETE", `/apis/apps/v1/namespaces/${ns}/deployments/web`)).status).toBe(200);
    await eventually(
      "replicasets gone",
      async () => (await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets`)).body.items.length === 0,
    );
    await eventually("pods gone or terminating", async () => active(await podsOf(ns, "app=web")).length === 0);
  });
});
