// Each verb of the API against the real Worker and StoreDO, with kube-apiserver's
// semantics for metadata, generation, status, finalizers and deletion.

import { describe, expect, it } from "vitest";
import { api, freshNamespace, newConfigMap, newDeployment, newPod } from "./helpers.ts";

describe("create and get", () => {
  it("starts with the system namespaces", async () => {
    const r = await api("GET", "/api/v1/namespaces");
    const names = r.body.items.map((i: any) => i.metadata.name);
    expect(names).toEqual(expect.arrayContaining(["default", "kube-system", "kube-public", "kube-node-lease"]));
    expect(r.body.kind).toBe("NamespaceList");
  });

  it("fills uid, creationTimestamp, generation, resourceVersion and defaults on create", async () => {
    const ns = await freshNamespace();
    const r = await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("web"));
    expect(r.status).toBe(201);
    const m = r.body.metadata;
    expect(m.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(m.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(m.generation).toBe(1);
    expect(m.namespace).toBe(ns);
    expect(Number(m.resourceVersion)).toBeGreaterThan(0);
    expect(r.body.spec.restartPolicy).toBe("Always");
    expect(r.body.spec.dnsPolicy).toBe("ClusterFirst");
    expect(r.body.spec.terminationGracePeriodSeconds).toBe(30);
    expect(r.body.spec.containers[0].imagePullPolicy).toBe("IfNotPresent");
    expect(r.body.status.phase).toBe("Pending");
    const g = await api("GET", `/api/v1/namespaces/${ns}/pods/web`);
    expect(g.body).toEqual(r.body);
  });

  it("ignores client-set status on create of a pod", async () => {
    const ns = await freshNamespace();
    const pod = { ...newPod("s"), status: { phase: "Running", podIP: "10.0.0.9" } };
    const r = await api("POST", `/api/v1/namespaces/${ns}/pods`, pod);
    expect(r.body.status.phase).toBe("Pending");
    expect(r.body.status.podIP).toBeUndefined();
  });

  it("generates names from generateName", async () => {
    const ns = await freshNamespace();
    const a = await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { generateName: "cfg-" }, data: {} });
    const b = await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { generateName: "cfg-" }, data: {} });
    expect(a.status).toBe(201);
    expect(a.body.metadata.name).toMatch(/^cfg-[a-z0-9]{5}$/);
    expect(b.body.metadata.name).not.toBe(a.body.metadata.name);
  });

  it("requires the namespace to exist for namespaced creates", async () => {
    const r = await api("POST", "/api/v1/namespaces/nope-missing/configmaps", newConfigMap("x"));
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ kind: "Status", reason: "NotFound", details: { name: "nope-missing", kind: "namespaces" } });
  });

  it("serves cluster-scoped nodes and namespaced leases in their groups", async () => {
    const node = await api("POST", "/api/v1/nodes", {
      metadata: { name: "n1", labels: { zone: "a" } },
      status: { capacity: { cpu: "2" } },
    });
    expect(node.status).toBe(201);
    expect(node.body.metadata.namespace).toBeUndefined();
    expect(node.body.status.capacity.cpu).toBe("2"); // nodes register with status
    const lease = await api("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
      metadata: { name: "n1" },
      spec: { holderIdentity: "n1", leaseDurationSeconds: 40 },
    });
    expect(lease.status).toBe(201);
    expect(lease.body.apiVersion).toBe("coordination.k8s.io/v1");
    const dep = await api("POST", `/apis/apps/v1/namespaces/default/deployments`, newDeployment("d-" + Date.now().toString(36)));
    expect(dep.status).toBe(201);
    expect(dep.body.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } });
    expect(dep.body.spec.revisionHistoryLimit).toBe(10);
    expect(dep.body.spec.progressDeadlineSeconds).toBe(600);
  });

  it("accepts YAML request bodies", async () => {
    const ns = await freshNamespace();
    const yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n";
    const r = await api("POST", `/api/v1/namespaces/${ns}/configmaps`, undefined, { raw: yaml, contentType: "application/yaml" });
    expect(r.status).toBe(201);
    expect(r.body.data).toEqual({ a: "b" });
  });
});

describe("list", () => {
  it("filters by label selector with every operator", async () => {
    const ns = await freshNamespace();
    const mk = (n: string, labels: Record<string, string>) =>
      api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap(n, {}, labels));
    await mk("a", { app: "web", tier: "fe" });
    await mk("b", { app: "web", tier: "be" });
    await mk("c", { app: "db" });
    await mk("d", {});
    const names = async (sel: string) =>
      (await api("GET", `/api/v1/namespaces/${ns}/configmaps?labelSelector=${encodeURIComponent(sel)}`)).body.items.map(
        (i: any) => i.metadata.name,
      );
    expect(await names("app=web")).toEqual(["a", "b"]);
    expect(await names("app==web,tier=fe")).toEqual(["a"]);
    expect(await names("app!=web")).toEqual(["c", "d"]);
    expect(await names("app in (db,web)")).toEqual(["a", "b", "c"]);
    expect(await names("app notin (web)")).toEqual(["c", "d"]);
    expect(await names("tier")).toEqual(["a", "b"]);
    expect(await names("!tier")).toEqual(["c", "d"]);
  });

  it("filters by field selector, across namespaces too", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("on-n1", { nodeName: "n1" }));
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("unbound"));
    const bound = await api("GET", `/api/v1/namespaces/${ns}/pods?fieldSelector=spec.nodeName%3Dn1`);
    expect(bound.body.items.map((i: any) => i.metadata.name)).toEqual(["on-n1"]);
    const pending = await api("GET", `/api/v1/pods?fieldSelector=${encodeURIComponent(`metadata.namespace=${ns},spec.nodeName=`)}`);
    expect(pending.body.items.map((i: any) => i.metadata.name)).toEqual(["unbound"]);
    const byName = await api("GET", `/api/v1/namespaces/${ns}/pods?fieldSelector=metadata.name%3Dunbound`);
    expect(byName.body.items).toHaveLength(1);
    const phase = await api("GET", `/api/v1/namespaces/${ns}/pods?fieldSelector=status.phase%3DRunning`);
    expect(phase.body.items).toHaveLength(0);
  });

  it("supports the event field selectors kubectl describe uses", async () => {
    const ns = await freshNamespace();
    const ev = (name: string, obj: string) => ({
      metadata: { name },
      involvedObject: { kind: "Pod", name: obj, namespace: ns, uid: `uid-${obj}` },
      reason: "Started",
      type: "Normal",
      message: "m",
      source: { component: "kubelet" },
    });
    await api("POST", `/api/v1/namespaces/${ns}/events`, ev("e1", "web"));
    await api("POST", `/api/v1/namespaces/${ns}/events`, ev("e2", "db"));
    const sel = encodeURIComponent(
      `involvedObject.name=web,involvedObject.namespace=${ns},involvedObject.kind=Pod,involvedObject.uid=uid-web`,
    );
    const r = await api("GET", `/api/v1/namespaces/${ns}/events?fieldSelector=${sel}`);
    expect(r.status).toBe(200);
    expect(r.body.items.map((i: any) => i.metadata.name)).toEqual(["e1"]);
  });

  it("pages with limit and continue over a consistent snapshot", async () => {
    const ns = await freshNamespace();
    for (let i = 0; i < 5; i++) await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap(`c${i}`));
    const p1 = await api("GET", `/api/v1/namespaces/${ns}/configmaps?limit=2`);
    expect(p1.body.items.map((i: any) => i.metadata.name)).toEqual(["c0", "c1"]);
    expect(p1.body.metadata.continue).toBeTruthy();
    expect(p1.body.metadata.remainingItemCount).toBe(3);
    // Writes after the first page do not show up in later pages.
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("c9"));
    await api("DELETE", `/api/v1/namespaces/${ns}/configmaps/c3`);
    const p2 = await api("GET", `/api/v1/namespaces/${ns}/configmaps?limit=2&continue=${p1.body.metadata.continue}`);
    expect(p2.body.items.map((i: any) => i.metadata.name)).toEqual(["c2", "c3"]);
    expect(p2.body.metadata.resourceVersion).toBe(p1.body.metadata.resourceVersion);
    const p3 = await api("GET", `/api/v1/namespaces/${ns}/configmaps?limit=2&continue=${p2.body.metadata.continue}`);
    expect(p3.body.items.map((i: any) => i.metadata.name)).toEqual(["c4"]);
    expect(p3.body.metadata.continue).toBeUndefined();
  });

  it("fills pages when a selector filters items out", async () => {
    const ns = await freshNamespace();
    for (let i = 0; i < 6; i++)
      await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap(`c${i}`, {}, { even: String(i % 2 === 0) }));
    const p1 = await api("GET", `/api/v1/namespaces/${ns}/configmaps?limit=2&labelSelector=even%3Dtrue`);
    expect(p1.body.items.map((i: any) => i.metadata.name)).toEqual(["c0", "c2"]);
    const p2 = await api(
      "GET",
      `/api/v1/namespaces/${ns}/configmaps?limit=2&labelSelector=even%3Dtrue&continue=${p1.body.metadata.continue}`,
    );
    expect(p2.body.items.map((i: any) => i.metadata.name)).toEqual(["c4"]);
  });

  it("lists at an exact older resourceVersion", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("a"));
    const rv = (await api("GET", `/api/v1/namespaces/${ns}/configmaps`)).body.metadata.resourceVersion;
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("b"));
    const old = await api("GET", `/api/v1/namespaces/${ns}/configmaps?resourceVersion=${rv}&resourceVersionMatch=Exact`);
    expect(old.body.items.map((i: any) => i.metadata.name)).toEqual(["a"]);
    expect(old.body.metadata.resourceVersion).toBe(rv);
    const cur = await api("GET", `/api/v1/namespaces/${ns}/configmaps?resourceVersion=${rv}&resourceVersionMatch=NotOlderThan`);
    expect(cur.body.items).toHaveLength(2);
    const future = await api("GET", `/api/v1/namespaces/${ns}/configmaps?resourceVersion=999999999&resourceVersionMatch=NotOlderThan`);
    expect(future.status).toBe(504);
    expect(future.body.reason).toBe("Timeout");
  });
});

describe("update", () => {
  it("bumps generation on spec changes only, and keeps status on the main endpoint", async () => {
    const ns = await freshNamespace();
    const d = (await api("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, newDeployment("web"))).body;
    d.metadata.labels = { changed: "yes" };
    const labelsOnly = await api("PUT", `/apis/apps/v1/namespaces/${ns}/deployments/web`, d);
    expect(labelsOnly.status).toBe(200);
    expect(labelsOnly.body.metadata.generation).toBe(1);
    const spec = labelsOnly.body;
    spec.spec.replicas = 3;
    spec.status = { replicas: 99 };
    const r = await api("PUT", `/apis/apps/v1/namespaces/${ns}/deployments/web`, spec);
    expect(r.body.metadata.generation).toBe(2);
    expect(r.body.status.replicas).toBeUndefined();
    expect(Number(r.body.metadata.resourceVersion)).toBeGreaterThan(Number(labelsOnly.body.metadata.resourceVersion));
  });

  it("writes only status through /status, ignoring spec", async () => {
    const ns = await freshNamespace();
    const d = (await api("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, newDeployment("web"))).body;
    d.spec.replicas = 7;
    d.status = { replicas: 2, observedGeneration: 1 };
    const r = await api("PUT", `/apis/apps/v1/namespaces/${ns}/deployments/web/status`, d);
    expect(r.status).toBe(200);
    expect(r.body.spec.replicas).toBe(1);
    expect(r.body.status).toEqual({ replicas: 2, observedGeneration: 1 });
    expect(r.body.metadata.generation).toBe(1);
    const g = await api("GET", `/apis/apps/v1/namespaces/${ns}/deployments/web/status`);
    expect(g.body.status.replicas).toBe(2);
  });

  it("rejects a stale resourceVersion with 409 Conflict and writes nothing", async () => {
    const ns = await freshNamespace();
    const c = (await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x", { n: "0" }))).body;
    const first = await api("PUT", `/api/v1/namespaces/${ns}/configmaps/x`, { ...c, data: { n: "1" } });
    expect(first.status).toBe(200);
    const stale = await api("PUT", `/api/v1/namespaces/${ns}/configmaps/x`, { ...c, data: { n: "2" } });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ kind: "Status", reason: "Conflict", code: 409 });
    expect(stale.body.message).toContain("the object has been modified");
    expect((await api("GET", `/api/v1/namespaces/${ns}/configmaps/x`)).body.data.n).toBe("1");
  });

  it("does not write a no-op update (resourceVersion unchanged)", async () => {
    const ns = await freshNamespace();
    const c = (await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x"))).body;
    const r = await api("PUT", `/api/v1/namespaces/${ns}/configmaps/x`, c);
    expect(r.body.metadata.resourceVersion).toBe(c.metadata.resourceVersion);
  });

  it("answers 404 for PUT of a missing object, but creates leases on PUT", async () => {
    const ns = await freshNamespace();
    const r = await api("PUT", `/api/v1/namespaces/${ns}/configmaps/none`, newConfigMap("none"));
    expect(r.status).toBe(404);
    const lease = await api("PUT", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/l1`, { metadata: { name: "l1" }, spec: {} });
    expect(lease.status).toBe(201);
  });
});

describe("patch", () => {
  it("applies a JSON merge patch", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x", { a: "1", b: "2" }));
    const r = await api(
      "PATCH",
      `/api/v1/namespaces/${ns}/configmaps/x`,
      { data: { a: null, c: "3" } },
      { contentType: "application/merge-patch+json" },
    );
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ b: "2", c: "3" });
  });

  it("applies a JSON patch", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x", { a: "1" }));
    const r = await api(
      "PATCH",
      `/api/v1/namespaces/${ns}/configmaps/x`,
      [
        { op: "add", path: "/data/b", value: "2" },
        { op: "replace", path: "/data/a", value: "9" },
        { op: "add", path: "/metadata/labels", value: { l: "v" } },
      ],
      { contentType: "application/json-patch+json" },
    );
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ a: "9", b: "2" });
    expect(r.body.metadata.labels).toEqual({ l: "v" });
  });

  it("applies a strategic merge patch that merges containers and env by name", async () => {
    const ns = await freshNamespace();
    const d = newDeployment("web");
    d.spec.template.spec.containers.push({ name: "side", image: "busybox" } as any);
    (d.spec.template.spec.containers[0] as any).env = [{ name: "A", value: "1" }];
    await api("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, d);
    const r = await api(
      "PATCH",
      `/apis/apps/v1/namespaces/${ns}/deployments/web`,
      { spec: { template: { spec: { containers: [{ name: "web", image: "nginx:1.28", env: [{ name: "B", value: "2" }] }] } } } },
      { contentType: "application/strategic-merge-patch+json" },
    );
    expect(r.status).toBe(200);
    const cs = r.body.spec.template.spec.containers;
    expect(cs.map((c: any) => c.name)).toEqual(["web", "side"]);
    expect(cs[0].image).toBe("nginx:1.28");
    expect(cs[0].env).toEqual([
      { name: "B", value: "2" },
      { name: "A", value: "1" },
    ]);
    expect(r.body.metadata.generation).toBe(2);
  });

  it("patches status through /status only", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("p"));
    const r = await api(
      "PATCH",
      `/api/v1/namespaces/${ns}/pods/p/status`,
      { status: { phase: "Running" }, spec: { restartPolicy: "Never" } },
      { contentType: "application/merge-patch+json" },
    );
    expect(r.status).toBe(200);
    expect(r.body.status.phase).toBe("Running");
    expect(r.body.spec.restartPolicy).toBe("Always");
  });

  it("treats a patch's resourceVersion as a precondition", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x"));
    const r = await api(
      "PATCH",
      `/api/v1/namespaces/${ns}/configmaps/x`,
      { metadata: { resourceVersion: "1" }, data: { z: "1" } },
      { contentType: "application/merge-patch+json" },
    );
    expect(r.status).toBe(409);
    expect(r.body.reason).toBe("Conflict");
  });
});

describe("delete", () => {
  it("deletes an object and returns a Success Status", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x"));
    const r = await api("DELETE", `/api/v1/namespaces/${ns}/configmaps/x`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ kind: "Status", status: "Success", details: { name: "x", kind: "configmaps" } });
    expect((await api("GET", `/api/v1/namespaces/${ns}/configmaps/x`)).status).toBe(404);
  });

  it("only marks an object with finalizers, and removes it with the last finalizer", async () => {
    const ns = await freshNamespace();
    const cm = newConfigMap("f") as any;
    cm.metadata.finalizers = ["example.com/a", "example.com/b"];
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, cm);
    const d = await api("DELETE", `/api/v1/namespaces/${ns}/configmaps/f`);
    expect(d.status).toBe(200);
    expect(d.body.metadata.deletionTimestamp).toBeTruthy();
    const still = await api("GET", `/api/v1/namespaces/${ns}/configmaps/f`);
    expect(still.status).toBe(200);
    const one = await api("PATCH", `/api/v1/namespaces/${ns}/configmaps/f`, [{ op: "remove", path: "/metadata/finalizers/0" }], {
      contentType: "application/json-patch+json",
    });
    expect(one.body.metadata.finalizers).toEqual(["example.com/b"]);
    const last = await api(
      "PATCH",
      `/api/v1/namespaces/${ns}/configmaps/f`,
      { metadata: { finalizers: null } },
      { contentType: "application/merge-patch+json" },
    );
    expect(last.status).toBe(200);
    expect((await api("GET", `/api/v1/namespaces/${ns}/configmaps/f`)).status).toBe(404);
  });

  it("deletes a pod on a node gracefully; grace 0 deletes at once", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("p", { nodeName: "n1" }));
    const d = await api("DELETE", `/api/v1/namespaces/${ns}/pods/p`);
    expect(d.status).toBe(200);
    expect(d.body.metadata.deletionGracePeriodSeconds).toBe(30);
    expect((await api("GET", `/api/v1/namespaces/${ns}/pods/p`)).status).toBe(200);
    const now = await api("DELETE", `/api/v1/namespaces/${ns}/pods/p`, { kind: "DeleteOptions", apiVersion: "v1", gracePeriodSeconds: 0 });
    expect(now.status).toBe(200);
    expect((await api("GET", `/api/v1/namespaces/${ns}/pods/p`)).status).toBe(404);
  });

  it("keeps a gracefully deleted pod after its last finalizer goes, until its agent deletes it with grace 0", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("p", { nodeName: "n1" }));
    const d = await api("DELETE", `/api/v1/namespaces/${ns}/pods/p?propagationPolicy=Foreground`);
    expect(d.body.metadata.finalizers).toEqual(["foregroundDeletion"]);
    expect(d.body.metadata.deletionGracePeriodSeconds).toBe(30);
    const merge = { contentType: "application/merge-patch+json" };
    const cleared = await api("PATCH", `/api/v1/namespaces/${ns}/pods/p`, { metadata: { finalizers: null } }, merge);
    expect(cleared.status).toBe(200);
    expect((await api("GET", `/api/v1/namespaces/${ns}/pods/p`)).status).toBe(200);
    const now = await api("DELETE", `/api/v1/namespaces/${ns}/pods/p?gracePeriodSeconds=0`);
    expect(now.status).toBe(200);
    expect((await api("GET", `/api/v1/namespaces/${ns}/pods/p`)).status).toBe(404);
  });

  it("shortens the grace period of a pod held by a finalizer", async () => {
    const ns = await freshNamespace();
    const pod = newPod("p", { nodeName: "n1" }) as any;
    pod.metadata.finalizers = ["example.com/hold"];
    await api("POST", `/api/v1/namespaces/${ns}/pods`, pod);
    expect((await api("DELETE", `/api/v1/namespaces/${ns}/pods/p`)).body.metadata.deletionGracePeriodSeconds).toBe(30);
    const short = await api("DELETE", `/api/v1/namespaces/${ns}/pods/p?gracePeriodSeconds=0`);
    expect(short.body.metadata.deletionGracePeriodSeconds).toBe(0);
    await api(
      "PATCH",
      `/api/v1/namespaces/${ns}/pods/p`,
      { metadata: { finalizers: null } },
      { contentType: "application/merge-patch+json" },
    );
    expect((await api("GET", `/api/v1/namespaces/${ns}/pods/p`)).status).toBe(404);
  });

  it("adds the orphan and foregroundDeletion finalizers for those propagation policies", async () => {
    const ns = await freshNamespace();
    await api("POST", `/apis/apps/v1/namespaces/${ns}/replicasets`, { ...newDeployment("rs1"), kind: "ReplicaSet" });
    const r = await api("DELETE", `/apis/apps/v1/namespaces/${ns}/replicasets/rs1?propagationPolicy=Orphan`);
    expect(r.body.metadata.finalizers).toEqual(["orphan"]);
    await api("POST", `/apis/apps/v1/namespaces/${ns}/replicasets`, { ...newDeployment("rs2"), kind: "ReplicaSet" });
    const f = await api("DELETE", `/apis/apps/v1/namespaces/${ns}/replicasets/rs2`, { propagationPolicy: "Foreground" });
    expect(f.body.metadata.finalizers).toEqual(["foregroundDeletion"]);
  });

  it("marks a namespace Terminating until its spec.finalizers are cleared through /finalize", async () => {
    const ns = await freshNamespace();
    const d = await api("DELETE", `/api/v1/namespaces/${ns}`);
    expect(d.status).toBe(200);
    expect(d.body.status.phase).toBe("Terminating");
    expect(d.body.spec.finalizers).toEqual(["kubernetes"]);
    const blocked = await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("late"));
    expect(blocked.status).toBe(403);
    expect(blocked.body.reason).toBe("Forbidden");
    const fin = await api("PUT", `/api/v1/namespaces/${ns}/finalize`, { ...d.body, spec: { finalizers: [] } });
    expect(fin.status).toBe(200);
    expect((await api("GET", `/api/v1/namespaces/${ns}`)).status).toBe(404);
  });

  it("checks delete preconditions", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x"));
    const r = await api("DELETE", `/api/v1/namespaces/${ns}/configmaps/x`, { preconditions: { uid: "not-the-uid" } });
    expect(r.status).toBe(409);
    expect((await api("GET", `/api/v1/namespaces/${ns}/configmaps/x`)).status).toBe(200);
  });

  it("deletes a collection by label selector", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("a", {}, { del: "yes" }));
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("b", {}, { del: "yes" }));
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("c", {}, { del: "no" }));
    const r = await api("DELETE", `/api/v1/namespaces/${ns}/configmaps?labelSelector=del%3Dyes`);
    expect(r.status).toBe(200);
    expect(r.body.items.map((i: any) => i.metadata.name).sort()).toEqual(["a", "b"]);
    const left = await api("GET", `/api/v1/namespaces/${ns}/configmaps`);
    expect(left.body.items.map((i: any) => i.metadata.name)).toEqual(["c"]);
  });

  it("honours dryRun=All on every write", async () => {
    const ns = await freshNamespace();
    const c = await api("POST", `/api/v1/namespaces/${ns}/configmaps?dryRun=All`, newConfigMap("dry"));
    expect(c.status).toBe(201);
    expect((await api("GET", `/api/v1/namespaces/${ns}/configmaps/dry`)).status).toBe(404);
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("real", { a: "1" }));
    const p = await api(
      "PATCH",
      `/api/v1/namespaces/${ns}/configmaps/real?dryRun=All`,
      { data: { a: "2" } },
      { contentType: "application/merge-patch+json" },
    );
    expect(p.body.data.a).toBe("2");
    const d = await api("DELETE", `/api/v1/namespaces/${ns}/configmaps/real?dryRun=All`);
    expect(d.status).toBe(200);
    const g = await api("GET", `/api/v1/namespaces/${ns}/configmaps/real`);
    expect(g.body.data.a).toBe("1");
  });
});

describe("subresources", () => {
  it("binds a pod to a node once", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("p"));
    const b = await api("POST", `/api/v1/namespaces/${ns}/pods/p/binding`, {
      apiVersion: "v1",
      kind: "Binding",
      metadata: { name: "p" },
      target: { kind: "Node", name: "n1" },
    });
    expect(b.status).toBe(201);
    const pod = (await api("GET", `/api/v1/namespaces/${ns}/pods/p`)).body;
    expect(pod.spec.nodeName).toBe("n1");
    expect(pod.status.conditions).toEqual([expect.objectContaining({ type: "PodScheduled", status: "True" })]);
    const again = await api("POST", `/api/v1/namespaces/${ns}/pods/p/binding`, {
      metadata: { name: "p" },
      target: { kind: "Node", name: "n2" },
    });
    expect(again.status).toBe(409);
    expect(again.body.message).toContain("already assigned");
  });

  it("reads and writes replicas through /scale", async () => {
    const ns = await freshNamespace();
    await api("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, newDeployment("web", 2));
    const s = await api("GET", `/apis/apps/v1/namespaces/${ns}/deployments/web/scale`);
    expect(s.body).toMatchObject({ kind: "Scale", apiVersion: "autoscaling/v1", spec: { replicas: 2 }, status: { selector: "app=web" } });
    const put = await api("PUT", `/apis/apps/v1/namespaces/${ns}/deployments/web/scale`, { ...s.body, spec: { replicas: 5 } });
    expect(put.body.spec.replicas).toBe(5);
    const patch = await api(
      "PATCH",
      `/apis/apps/v1/namespaces/${ns}/deployments/web/scale`,
      { spec: { replicas: 1 } },
      { contentType: "application/merge-patch+json" },
    );
    expect(patch.body.spec.replicas).toBe(1);
    const d = (await api("GET", `/apis/apps/v1/namespaces/${ns}/deployments/web`)).body;
    expect(d.spec.replicas).toBe(1);
    expect(d.metadata.generation).toBe(3);
    const bad = await api("PUT", `/apis/apps/v1/namespaces/${ns}/deployments/web/scale`, { spec: { replicas: -1 } });
    expect(bad.status).toBe(422);
  });
});

describe("aggregated discovery", () => {
  it("answers kubectl's apidiscovery.k8s.io/v2 request for /api and /apis", async () => {
    const accept =
      "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    const core = await api("GET", "/api", undefined, { headers: { accept } });
    expect(core.headers.get("content-type")).toBe("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    expect(core.body.kind).toBe("APIGroupDiscoveryList");
    const pods = core.body.items[0].versions[0].resources.find((r: any) => r.resource === "pods");
    expect(pods).toMatchObject({
      scope: "Namespaced",
      singularResource: "pod",
      shortNames: ["po"],
      responseKind: { group: "", version: "v1", kind: "Pod" },
    });
    expect(pods.subresources.map((s: any) => s.subresource)).toEqual(expect.arrayContaining(["status", "binding"]));
    const groups = await api("GET", "/apis", undefined, { headers: { accept } });
    const apps = groups.body.items.find((g: any) => g.metadata.name === "apps");
    const deploy = apps.versions[0].resources.find((r: any) => r.resource === "deployments");
    expect(deploy.subresources.find((s: any) => s.subresource === "scale").responseKind).toEqual({
      group: "autoscaling",
      version: "v1",
      kind: "Scale",
    });
    expect((await api("GET", "/api")).body.kind).toBe("APIVersions"); // plain JSON without the Accept
  });
});

describe("discovery", () => {
  it("describes the served groups and resources", async () => {
    const v = await api("GET", "/version", undefined, { token: null });
    expect(v.status).toBe(200);
    expect(v.body.major).toBe("1");
    expect((await api("GET", "/api")).body.versions).toEqual(["v1"]);
    const core = await api("GET", "/api/v1");
    const pods = core.body.resources.find((r: any) => r.name === "pods");
    expect(pods).toMatchObject({ kind: "Pod", namespaced: true, shortNames: ["po"] });
    expect(core.body.resources.map((r: any) => r.name)).toEqual(
      expect.arrayContaining([
        "pods/status",
        "pods/binding",
        "nodes",
        "services",
        "endpoints",
        "configmaps",
        "secrets",
        "events",
        "serviceaccounts",
      ]),
    );
    const groups = (await api("GET", "/apis")).body.groups.map((g: any) => g.name);
    expect(groups).toEqual(expect.arrayContaining(["apps", "coordination.k8s.io"]));
    const apps = await api("GET", "/apis/apps/v1");
    expect(apps.body.resources.map((r: any) => r.name)).toEqual(
      expect.arrayContaining(["deployments", "deployments/scale", "replicasets"]),
    );
  });
});
