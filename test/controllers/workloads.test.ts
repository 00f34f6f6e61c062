// The controllers other than Deployment/ReplicaSet rollout, running in their Durable
// Object and woken by the store's notifications, against simulated nodes: Endpoints,
// namespace deletion, the garbage collector's three propagation policies, and the
// ReplicaSet scale subresource.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, freshNamespace, watch } from "../workers/helpers.ts";
import { active, eventually, FakeCluster, podsOf } from "./cluster.ts";

const cluster = new FakeCluster();

beforeAll(async () => {
  for (const n of ["wl-a", "wl-b", "wl-c"]) await cluster.addNode(n);
  cluster.start();
});

afterAll(() => cluster.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const isReady = (p: any) => p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");
const running = (ps: any[]) => ps.filter((p) => p.spec.nodeName && p.status?.phase === "Running" && isReady(p));

function replicaSet(name: string, replicas: number, opts: { podFinalizers?: string[] } = {}) {
  const labels = { app: name };
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: { name, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, ...(opts.podFinalizers ? { finalizers: opts.podFinalizers } : {}) },
        spec: { containers: [{ name: "app", image: "nginx:1.27" }] },
      },
    },
  };
}

async function createRS(ns: string, name: string, replicas: number, opts: { podFinalizers?: string[] } = {}): Promise<any> {
  const r = await api("POST", `/apis/apps/v1/namespaces/${ns}/replicasets`, replicaSet(name, replicas, opts));
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

function runningPods(ns: string, app: string, n: number, timeoutMs = 25_000): Promise<any[]> {
  return eventually(
    `${n} running ${app} pods`,
    async () => {
      const ps = active(await podsOf(ns, `app=${app}`));
      return ps.length === n && running(ps).length === n && ps;
    },
    timeoutMs,
  );
}

/** Reads a watch until `done` says the events so far are enough (or the time is up). */
async function collect(path: string, done: (events: any[]) => boolean, timeoutMs = 25_000): Promise<any[]> {
  const res = await watch(path);
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const out: any[] = [];
  let buf = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!done(out)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`watch ${path}: timed out after ${out.length} events: ${out.map((e) => e.type).join(",")}`);
      const r = await Promise.race([reader.read(), new Promise<"t">((res) => setTimeout(() => res("t"), left))]);
      if (r === "t") continue;
      if (r.done) throw new Error(`watch ${path} ended after ${out.length} events`);
      buf += dec.decode(r.value, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line) out.push(JSON.parse(line));
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return out;
}

describe("the Endpoints controller", () => {
  it("lists ready pods in addresses and unready ones in notReadyAddresses, resolves a named targetPort, follows readiness, and goes with the Service", async () => {
    const ns = await freshNamespace("ep");
    const podSpec = (name: string) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, labels: { app: "web", tier: "front" } },
      spec: { containers: [{ name: "app", image: "nginx:1.27", ports: [{ name: "web", containerPort: 8080 }] }] },
    });
    for (const name of ["ep-a", "ep-b"]) expect((await api("POST", `/api/v1/namespaces/${ns}/pods`, podSpec(name))).status).toBe(201);
    // A pod the selector does not match: never listed.
    const other = { ...podSpec("ep-other"), metadata: { name: "ep-other", labels: { app: "db" } } };
    expect((await api("POST", `/api/v1/namespaces/${ns}/pods`, other)).status).toBe(201);
    const svc = await api("POST", `/api/v1/namespaces/${ns}/services`, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web", labels: { team: "a" } },
      spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "web" }] },
    });
    expect(svc.status, JSON.stringify(svc.body)).toBe(201);

    const pods = await runningPods(ns, "web", 2);
    const ip = Object.fromEntries(pods.map((p) => [p.metadata.name, p.status.podIP]));
    const ports = [{ name: "http", port: 8080, protocol: "TCP" }];
    const endpoints = () => api("GET", `/api/v1/namespaces/${ns}/endpoints/web`);
    const ips = (list: any[] | undefined) => (list ?? []).map((a) => a.ip).sort();

    const both = await eventually("endpoints with both pods ready", async () => {
      const e = await endpoints();
      return e.status === 200 && e.body.subsets?.length === 1 && e.body.subsets[0].addresses?.length === 2 && e.body;
    });
    expect(ips(both.subsets[0].addresses)).toEqual([ip["ep-a"], ip["ep-b"]].sort());
    expect(both.subsets[0].notReadyAddresses).toBeUndefined();
    expect(both.subsets[0].ports).toEqual(ports);
    expect(both.metadata.labels).toEqual({ team: "a" });
    const a = both.subsets[0].addresses.find((x: any) => x.ip === ip["ep-a"]);
    expect(a.targetRef).toMatchObject({ kind: "Pod", name: "ep-a", namespace: ns });
    expect(a.nodeName).toBe(pods.find((p) => p.metadata.name === "ep-a").spec.nodeName);

    // A pod turning unready moves to notReadyAddresses (the fake kubelet leaves Running pods alone).
    const unready = async (name: string) => {
      const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
      const r = await api(
        "PATCH",
        `/api/v1/namespaces/${ns}/pods/${name}/status`,
        {
          status: {
            conditions: [
              { type: "PodScheduled", status: "True", lastTransitionTime: now },
              { type: "Initialized", status: "True", lastTransitionTime: now },
              { type: "ContainersReady", status: "False", lastTransitionTime: now },
              { type: "Ready", status: "False", lastTransitionTime: now },
            ],
          },
        },
        { contentType: "application/merge-patch+json" },
      );
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    };
    await unready("ep-b");
    const mixed = await eventually("ep-b in notReadyAddresses", async () => {
      const e = (await endpoints()).body;
      return e.subsets?.[0]?.notReadyAddresses?.length === 1 && e;
    });
    expect(mixed.subsets).toHaveLength(1);
    expect(ips(mixed.subsets[0].addresses)).toEqual([ip["ep-a"]]);
    expect(ips(mixed.subsets[0].notReadyAddresses)).toEqual([ip["ep-b"]]);
    expect(mixed.subsets[0].ports).toEqual(ports);

    await unready("ep-a");
    const none = await eventually("both in notReadyAddresses", async () => {
      const e = (await endpoints()).body;
      return e.subsets?.[0]?.notReadyAddresses?.length === 2 && e;
    });
    expect(none.subsets[0].addresses).toBeUndefined();
    expect(ips(none.subsets[0].notReadyAddresses)).toEqual([ip["ep-a"], ip["ep-b"]].sort());

    expect((await api("DELETE", `/api/v1/namespaces/${ns}/services/web`)).status).toBe(200);
    await eventually("endpoints deleted", async () => (await endpoints()).status === 404);
  });
});

describe("the namespace controller", () => {
  it("empties a deleted namespace (ConfigMap, Secret, Deployment and its pods), then removes it", async () => {
    const ns = await freshNamespace("nsdel");
    expect((await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "cfg" }, data: { k: "v" } })).status).toBe(201);
    expect((await api("POST", `/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "pw" }, stringData: { p: "s3cret" } })).status).toBe(
      201,
    );
    const d = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "app" },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "app" } },
        template: { metadata: { labels: { app: "app" } }, spec: { containers: [{ name: "app", image: "nginx:1.27" }] } },
      },
    };
    expect((await api("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, d)).status).toBe(201);
    await runningPods(ns, "app", 2);

    const del = await api("DELETE", `/api/v1/namespaces/${ns}`);
    expect(del.status).toBeLessThan(300);
    expect(del.body.status.phase).toBe("Terminating");
    // Nothing new may be created meanwhile.
    const late = await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "late" }, data: {} });
    expect([403, 404]).toContain(late.status);

    const lists = [
      `/api/v1/namespaces/${ns}/configmaps`,
      `/api/v1/namespaces/${ns}/secrets`,
      `/apis/apps/v1/namespaces/${ns}/deployments`,
      `/apis/apps/v1/namespaces/${ns}/replicasets`,
      `/api/v1/namespaces/${ns}/pods`,
    ];
    const contents = async () => {
      const out: string[] = [];
      for (const l of lists) for (const o of (await api("GET", l)).body.items ?? []) out.push(`${o.kind}/${o.metadata.name}`);
      return out;
    };
    let goneBeforeEmpty: string[] | undefined;
    await eventually(
      "namespace gone",
      async () => {
        const gone = (await api("GET", `/api/v1/namespaces/${ns}`)).status === 404;
        const left = await contents();
        if (gone && left.length > 0) goneBeforeEmpty = left;
        return gone;
      },
      35_000,
    );
    expect(goneBeforeEmpty).toBeUndefined();
    expect(await contents()).toEqual([]);
  });
});

describe("the garbage collector", () => {
  it("orphans a ReplicaSet's pods with propagationPolicy=Orphan: they stay, without ownerReferences", async () => {
    const ns = await freshNamespace("gc-orphan");
    await createRS(ns, "orph", 2);
    const pods = await runningPods(ns, "orph", 2);
    expect(pods.every((p) => p.metadata.ownerReferences?.[0]?.kind === "ReplicaSet")).toBe(true);

    const r = await api("DELETE", `/apis/apps/v1/namespaces/${ns}/replicasets/orph?propagationPolicy=Orphan`);
    expect(r.status).toBeLessThan(300);
    await eventually("replicaset gone", async () => (await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets/orph`)).status === 404);
    const after = await podsOf(ns, "app=orph");
    expect(after.map((p) => p.metadata.uid).sort()).toEqual(pods.map((p) => p.metadata.uid).sort());
    for (const p of after) {
      expect(p.metadata.ownerReferences).toBeUndefined();
      expect(p.metadata.deletionTimestamp).toBeUndefined();
    }
    // ... and nothing collects them later.
    await sleep(1500);
    expect(active(await podsOf(ns, "app=orph"))).toHaveLength(2);
  });

  it("keeps a ReplicaSet deleted with propagationPolicy=Foreground (foregroundDeletion finalizer) until its pods are gone", async () => {
    const ns = await freshNamespace("gc-fg");
    // The pods carry a finalizer of the test's, so they stay (terminating) until it is removed.
    const HOLD = "test.kubeflare.io/hold";
    await createRS(ns, "fg", 2, { podFinalizers: [HOLD] });
    await runningPods(ns, "fg", 2);

    const r = await api("DELETE", `/apis/apps/v1/namespaces/${ns}/replicasets/fg`, { propagationPolicy: "Foreground" });
    expect(r.status).toBeLessThan(300);
    const terminating = await eventually("pods terminating", async () => {
      const ps = await podsOf(ns, "app=fg");
      return ps.length === 2 && ps.every((p) => p.metadata.deletionTimestamp) && ps;
    });
    const rs = await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets/fg`);
    expect(rs.status).toBe(200);
    expect(rs.body.metadata.deletionTimestamp).toBeDefined();
    expect(rs.body.metadata.finalizers).toContain("foregroundDeletion");
    // Still there a while later: the RS waits on its (blockOwnerDeletion) pods.
    await sleep(1500);
    expect((await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets/fg`)).status).toBe(200);

    // Release the first pod: the RS still waits on the second.
    const release = async (name: string) => {
      const p = await api(
        "PATCH",
        `/api/v1/namespaces/${ns}/pods/${name}`,
        { metadata: { finalizers: null } },
        { contentType: "application/merge-patch+json" },
      );
      expect(p.status, JSON.stringify(p.body)).toBeLessThan(300);
    };
    const [first, second] = terminating.map((p: any) => p.metadata.name);
    await release(first);
    await eventually("first pod gone", async () => (await api("GET", `/api/v1/namespaces/${ns}/pods/${first}`)).status === 404);
    await sleep(1000);
    expect((await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets/fg`)).status).toBe(200);

    await release(second);
    await eventually("replicaset gone", async () => (await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets/fg`)).status === 404);
    expect(await podsOf(ns, "app=fg")).toEqual([]);
  });

  it("deletes a ReplicaSet at once by default (Background) and collects its pods after it", async () => {
    const ns = await freshNamespace("gc-bg");
    await createRS(ns, "bg", 2);
    const pods = await runningPods(ns, "bg", 2);
    const from = (await api("GET", `/api/v1/namespaces/${ns}/pods`)).body.metadata.resourceVersion;

    const r = await api("DELETE", `/apis/apps/v1/namespaces/${ns}/replicasets/bg`);
    expect(r.status).toBe(200);
    expect((await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets/bg`)).status).toBe(404);

    const rsEvents = await collect(`/apis/apps/v1/namespaces/${ns}/replicasets?watch=true&resourceVersion=${from}`, (evs) =>
      evs.some((e) => e.type === "DELETED"),
    );
    const rsDeletedAt = Number(rsEvents.find((e) => e.type === "DELETED").object.metadata.resourceVersion);
    const names = new Set(pods.map((p) => p.metadata.name));
    const podEvents = await collect(
      `/api/v1/namespaces/${ns}/pods?watch=true&resourceVersion=${from}`,
      (evs) => evs.filter((e) => e.type === "DELETED" && names.has(e.object.metadata.name)).length === names.size,
    );
    // Each pod's first step towards deletion (deletionTimestamp set, or gone) comes after the RS's deletion.
    for (const name of names) {
      const first = podEvents.find((e) => e.object.metadata.name === name && (e.type === "DELETED" || e.object.metadata.deletionTimestamp));
      expect(Number(first.object.metadata.resourceVersion)).toBeGreaterThan(rsDeletedAt);
    }
    expect(await podsOf(ns, "app=bg")).toEqual([]);
  });
});

describe("the ReplicaSet scale subresource", () => {
  it("changes the number of pods", async () => {
    const ns = await freshNamespace("scale");
    await createRS(ns, "sc", 1);
    await runningPods(ns, "sc", 1);
    const path = `/apis/apps/v1/namespaces/${ns}/replicasets/sc/scale`;
    const s = await api("GET", path);
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({ kind: "Scale", apiVersion: "autoscaling/v1", spec: { replicas: 1 } });
    expect(s.body.status.selector).toBe("app=sc");

    const up = await api("PUT", path, { ...s.body, spec: { replicas: 3 } });
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    expect(up.body.spec.replicas).toBe(3);
    await runningPods(ns, "sc", 3);
    await eventually("scale status 3", async () => (await api("GET", path)).body.status.replicas === 3);

    const down = await api("PATCH", path, { spec: { replicas: 1 } }, { contentType: "application/merge-patch+json" });
    expect(down.status, JSON.stringify(down.body)).toBe(200);
    await eventually("one pod left", async () => active(await podsOf(ns, "app=sc")).length === 1);
    expect((await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets/sc`)).body.spec.replicas).toBe(1);
  });
});

describe("service accounts", () => {
  it("gives every new namespace a default ServiceAccount", async () => {
    const ns = await freshNamespace("sa");
    const sa = await eventually("default ServiceAccount", async () => {
      const r = await api("GET", `/api/v1/namespaces/${ns}/serviceaccounts/default`);
      return r.status === 200 && r.body;
    });
    expect(sa.metadata.name).toBe("default");
  });
});
