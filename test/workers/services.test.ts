// Services get cluster IPs and node ports as kube-apiserver allocates them: from
// SERVICE_CIDR and SERVICE_NODE_PORT_RANGE, kept across updates, freed on delete or type
// change, all-or-nothing with the Service's own write, and never twice.

import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RemoteStore } from "../../durable-objects/store/remote.ts";
import { type Ctx, create, patch, remove, update } from "../../workers/api/registry.ts";
import { ALLOC_PREFIX } from "../../workers/api/services.ts";
import { lookupResource } from "../../workers/shared/resources.ts";
import { parseIPv4 } from "../../workers/shared/service-alloc.ts";
import { api, freshNamespace, readEvents, watch } from "./helpers.ts";

const APPLY = { contentType: "application/apply-patch+yaml" };
const MERGE = { contentType: "application/merge-patch+json" };

function newService(name: string, spec: Record<string, any> = {}) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name },
    spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec },
  };
}

function inDefaultCIDR(ip: string): boolean {
  const n = parseIPv4(ip)!;
  return n > parseIPv4("10.96.0.0")! && n < parseIPv4("10.111.255.255")!;
}

// Requested values come from the static parts of the default ranges (10.96.0.x and
// 30000-30085), which dynamic allocation leaves alone while it has room; a random base
// keeps tests of one run apart.
let nextIP = 2 + Math.floor(Math.random() * 120);
const staticIP = () => `10.96.0.${nextIP++}`;
let nextPort = 30001 + Math.floor(Math.random() * 40);
const staticPort = () => nextPort++;

const store = () => RemoteStore.forCluster(env.STORE, "default");
/** Allocation records owned by Services of namespace ns (other test files may be allocating too). */
const records = async (ns: string) => (await store().list(ALLOC_PREFIX)).items.filter((kv) => JSON.parse(kv.value).namespace === ns);

async function expectInvalid(r: { status: number; body: any }, field: string, text: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(422);
  expect(r.body).toMatchObject({ kind: "Status", reason: "Invalid" });
  expect(r.body.details.causes).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
  expect(r.body.message).toContain(text);
}

describe("cluster IPs", () => {
  it("allocates a cluster IP from the service CIDR and fills kube's defaults", async () => {
    const ns = await freshNamespace();
    const r = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("web", { ports: [{ port: 80 }] }));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const spec = r.body.spec;
    expect(inDefaultCIDR(spec.clusterIP)).toBe(true);
    expect(spec.clusterIP).not.toBe("10.96.0.1"); // the kubernetes Service's
    expect(spec).toMatchObject({
      type: "ClusterIP",
      clusterIPs: [spec.clusterIP],
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      sessionAffinity: "None",
      internalTrafficPolicy: "Cluster",
      ports: [{ port: 80, protocol: "TCP", targetPort: 80 }],
    });
    expect(spec.externalTrafficPolicy).toBeUndefined();
    expect((await api("GET", `/api/v1/namespaces/${ns}/services/web`)).body.spec).toEqual(spec);
    const rec = await store().get(`${ALLOC_PREFIX}clusterips/${spec.clusterIP}`);
    expect(JSON.parse(rec!.value)).toEqual({ namespace: ns, name: "web", uid: r.body.metadata.uid });
  });

  it("honours a requested cluster IP, and rejects one that is taken or out of range without writing anything", async () => {
    const ns = await freshNamespace();
    const ip = staticIP();
    const a = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("a", { clusterIP: ip }));
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body.spec.clusterIPs).toEqual([ip]);
    const before = (await records(ns)).length;
    const b = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("b", { clusterIP: ip }));
    await expectInvalid(
      b,
      "spec.clusterIPs",
      `spec.clusterIPs: Invalid value: ["${ip}"]: failed to allocate IP ${ip}: provided IP is already allocated`,
    );
    const c = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("c", { clusterIP: "192.168.1.1" }));
    await expectInvalid(c, "spec.clusterIPs", "provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12");
    const net = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("d", { clusterIP: "10.96.0.0" }));
    await expectInvalid(net, "spec.clusterIPs", "not in the valid range");
    for (const n of ["b", "c", "d"]) expect((await api("GET", `/api/v1/namespaces/${ns}/services/${n}`)).status).toBe(404);
    // A create that loses on the name (AlreadyExists) keeps no address either.
    const spare = staticIP();
    const dup = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("a", { clusterIP: spare }));
    expect(dup.status).toBe(409);
    expect(dup.body.reason).toBe("AlreadyExists");
    expect(await store().get(`${ALLOC_PREFIX}clusterips/${spare}`)).toBeNull();
    expect((await records(ns)).length).toBe(before);
  });

  it("gives a headless service no address, and an ExternalName service none either", async () => {
    const ns = await freshNamespace();
    const before = (await records(ns)).length;
    const h = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("h", { clusterIP: "None" }));
    expect(h.status).toBe(201);
    expect(h.body.spec).toMatchObject({ clusterIP: "None", clusterIPs: ["None"] });
    const e = await api("POST", `/api/v1/namespaces/${ns}/services`, {
      metadata: { name: "e" },
      spec: { type: "ExternalName", externalName: "db.example.com" },
    });
    expect(e.status, JSON.stringify(e.body)).toBe(201);
    expect(e.body.spec.clusterIP).toBeUndefined();
    expect(e.body.spec.clusterIPs).toBeUndefined();
    expect((await records(ns)).length).toBe(before);
    const bad = await api("POST", `/api/v1/namespaces/${ns}/services`, {
      metadata: { name: "e2" },
      spec: { type: "ExternalName", externalName: "db.example.com", clusterIP: staticIP() },
    });
    await expectInvalid(bad, "spec.clusterIP", "may not be set for ExternalName services");
  });

  it("keeps the cluster IP immutable, but keeps it when an update leaves it out", async () => {
    const ns = await freshNamespace();
    const path = `/api/v1/namespaces/${ns}/services/web`;
    const created = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("web"));
    const ip = created.body.spec.clusterIP;
    const put = await api("PUT", path, { ...newService("web", { ports: [{ port: 81 }] }) });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.spec).toMatchObject({ clusterIP: ip, clusterIPs: [ip], ports: [{ port: 81, targetPort: 81 }] });
    const other = staticIP();
    const changed = await api("PUT", path, newService("web", { clusterIP: other }));
    await expectInvalid(changed, "spec.clusterIP", `spec.clusterIP: Invalid value: "${other}": field is immutable`);
    const patched = await api("PATCH", path, { spec: { clusterIP: other, clusterIPs: [other] } }, MERGE);
    await expectInvalid(patched, "spec.clusterIP", "field is immutable");
    const toNone = await api("PATCH", path, { spec: { clusterIP: "None", clusterIPs: ["None"] } }, MERGE);
    expect(toNone.status).toBe(422);
    expect((await api("GET", path)).body.spec.clusterIP).toBe(ip);
  });

  it("releases the IP when the type becomes ExternalName and allocates a new one when it goes back", async () => {
    const ns = await freshNamespace();
    const path = `/api/v1/namespaces/${ns}/services/web`;
    const ip = staticIP();
    const created = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("web", { clusterIP: ip }));
    expect(created.status).toBe(201);
    // kubectl edit sends the whole object back, clusterIP included: it is wiped, not an error.
    const edited = structuredClone(created.body);
    Object.assign(edited.spec, { type: "ExternalName", externalName: "db.example.com" });
    const ext = await api("PUT", path, edited);
    expect(ext.status, JSON.stringify(ext.body)).toBe(200);
    expect(ext.body.spec.clusterIP).toBeUndefined();
    expect(ext.body.spec.ipFamilies).toBeUndefined();
    expect(await store().get(`${ALLOC_PREFIX}clusterips/${ip}`)).toBeNull();
    const taker = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("taker", { clusterIP: ip }));
    expect(taker.status, JSON.stringify(taker.body)).toBe(201);
    const back = await api("PATCH", path, { spec: { type: "ClusterIP", externalName: null } }, MERGE);
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(inDefaultCIDR(back.body.spec.clusterIP)).toBe(true);
    expect(back.body.spec.clusterIP).not.toBe(ip);
    expect(back.body.spec.ipFamilies).toEqual(["IPv4"]);
  });

  it("frees the IP when the service is deleted, and only then when it has finalizers", async () => {
    const ns = await freshNamespace();
    const ip = staticIP();
    const path = `/api/v1/namespaces/${ns}/services/web`;
    await api("POST", `/api/v1/namespaces/${ns}/services`, {
      ...newService("web", { clusterIP: ip }),
      metadata: { name: "web", finalizers: ["example.com/hold"] },
    });
    expect((await api("DELETE", path)).status).toBe(200);
    const again = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("again", { clusterIP: ip }));
    expect(again.status).toBe(422);
    expect((await api("PATCH", path, { metadata: { finalizers: null } }, MERGE)).status).toBe(200);
    expect((await api("GET", path)).status).toBe(404);
    const third = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("again", { clusterIP: ip }));
    expect(third.status, JSON.stringify(third.body)).toBe(201);
    expect((await api("DELETE", `/api/v1/namespaces/${ns}/services/again`)).status).toBe(200);
    expect(await store().get(`${ALLOC_PREFIX}clusterips/${ip}`)).toBeNull();
  });

  it("takes over a record whose owner no longer holds the address (self-repair)", async () => {
    const ns = await freshNamespace();
    const ip = staticIP();
    await store().create(`${ALLOC_PREFIX}clusterips/${ip}`, JSON.stringify({ namespace: ns, name: "gone", uid: "no-such-uid" }));
    const r = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("web", { clusterIP: ip }));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const rec = await store().get(`${ALLOC_PREFIX}clusterips/${ip}`);
    expect(JSON.parse(rec!.value).uid).toBe(r.body.metadata.uid);
  });
});

describe("node ports", () => {
  it("allocates a node port per port for NodePort and LoadBalancer services, with kube's defaults", async () => {
    const ns = await freshNamespace();
    const np = await api(
      "POST",
      `/api/v1/namespaces/${ns}/services`,
      newService("np", {
        type: "NodePort",
        ports: [
          { name: "http", port: 80 },
          { name: "dns", port: 53, protocol: "UDP" },
          { name: "dns-tcp", port: 53, protocol: "TCP" },
        ],
      }),
    );
    expect(np.status, JSON.stringify(np.body)).toBe(201);
    const ports = np.body.spec.ports.map((p: any) => p.nodePort);
    for (const p of ports) expect(p >= 30000 && p <= 32767).toBe(true);
    expect(ports[1]).toBe(ports[2]); // one number for the same port over TCP and UDP, as kube
    expect(ports[0]).not.toBe(ports[1]);
    expect(np.body.spec).toMatchObject({ externalTrafficPolicy: "Cluster", internalTrafficPolicy: "Cluster" });
    const lb = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("lb", { type: "LoadBalancer" }));
    expect(lb.status).toBe(201);
    expect(lb.body.spec).toMatchObject({ externalTrafficPolicy: "Cluster", allocateLoadBalancerNodePorts: true });
    expect(lb.body.spec.ports[0].nodePort).toBeGreaterThanOrEqual(30000);
    expect(inDefaultCIDR(lb.body.spec.clusterIP)).toBe(true);
  });

  it("honours a requested node port, and rejects one that is taken or out of range", async () => {
    const ns = await freshNamespace();
    const port = staticPort();
    const a = await api(
      "POST",
      `/api/v1/namespaces/${ns}/services`,
      newService("a", { type: "NodePort", ports: [{ port: 80, nodePort: port }] }),
    );
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body.spec.ports[0].nodePort).toBe(port);
    const ip = staticIP();
    const b = await api(
      "POST",
      `/api/v1/namespaces/${ns}/services`,
      newService("b", { type: "NodePort", clusterIP: ip, ports: [{ port: 81, protocol: "UDP", nodePort: port }] }),
    );
    await expectInvalid(b, "spec.ports[0].nodePort", `spec.ports[0].nodePort: Invalid value: ${port}: provided port is already allocated`);
    const c = await api(
      "POST",
      `/api/v1/namespaces/${ns}/services`,
      newService("c", { type: "NodePort", ports: [{ port: 80, nodePort: 8080 }] }),
    );
    await expectInvalid(c, "spec.ports[0].nodePort", "provided port is not in the valid range. The range of valid ports is 30000-32767");
    // b's failure leaked nothing: its IP is still free.
    const d = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("d", { clusterIP: ip }));
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const dup = await api(
      "POST",
      `/api/v1/namespaces/${ns}/services`,
      newService("dup", {
        type: "NodePort",
        ports: [
          { name: "a", port: 80, nodePort: staticPort() },
          { name: "b", port: 81, nodePort: nextPort - 1 },
        ],
      }),
    );
    await expectInvalid(dup, "spec.ports[1].nodePort", "Duplicate value");
  });

  it("keeps node ports across a PUT that leaves them out, and frees them on a change to ClusterIP and on delete", async () => {
    const ns = await freshNamespace();
    const path = `/api/v1/namespaces/${ns}/services/web`;
    const svc = newService("web", {
      type: "NodePort",
      ports: [
        { name: "http", port: 80 },
        { name: "https", port: 443 },
      ],
    });
    const created = await api("POST", `/api/v1/namespaces/${ns}/services`, svc);
    const [http, https] = created.body.spec.ports.map((p: any) => p.nodePort);
    const put = await api("PUT", path, svc);
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.spec.ports.map((p: any) => p.nodePort)).toEqual([http, https]);
    expect(put.body.metadata.resourceVersion).toBe(created.body.metadata.resourceVersion); // a no-op
    // Dropping a port frees its node port.
    const one = await api("PUT", path, newService("web", { type: "NodePort", ports: [{ name: "http", port: 80 }] }));
    expect(one.body.spec.ports.map((p: any) => p.nodePort)).toEqual([http]);
    expect(await store().get(`${ALLOC_PREFIX}nodeports/${https}`)).toBeNull();
    // kubectl edit of the type only: the node ports it sends back are wiped and freed.
    const edited = structuredClone(one.body);
    edited.spec.type = "ClusterIP";
    const cip = await api("PUT", path, edited);
    expect(cip.status, JSON.stringify(cip.body)).toBe(200);
    expect(cip.body.spec.ports[0].nodePort).toBeUndefined();
    expect(cip.body.spec.externalTrafficPolicy).toBeUndefined();
    expect(cip.body.spec.clusterIP).toBe(created.body.spec.clusterIP);
    expect(await store().get(`${ALLOC_PREFIX}nodeports/${http}`)).toBeNull();
    // Back to NodePort with a requested port, then delete: freed.
    const port = staticPort();
    const back = await api("PATCH", path, { spec: { type: "NodePort", ports: [{ name: "http", port: 80, nodePort: port }] } }, MERGE);
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body.spec.ports[0].nodePort).toBe(port);
    expect((await api("DELETE", path)).status).toBe(200);
    expect(await store().get(`${ALLOC_PREFIX}nodeports/${port}`)).toBeNull();
    expect(await store().get(`${ALLOC_PREFIX}clusterips/${created.body.spec.clusterIP}`)).toBeNull();
    const reuse = await api(
      "POST",
      `/api/v1/namespaces/${ns}/services`,
      newService("reuse", { type: "NodePort", ports: [{ port: 80, nodePort: port }] }),
    );
    expect(reuse.status, JSON.stringify(reuse.body)).toBe(201);
  });
});

describe("allocation under concurrency, dry runs and apply", () => {
  it("gives 20 concurrent creates 20 different IPs and node ports", async () => {
    const ns = await freshNamespace();
    const rs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => api("POST", `/api/v1/namespaces/${ns}/services`, newService(`s${i}`, { type: "NodePort" }))),
    );
    for (const r of rs) expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(new Set(rs.map((r) => r.body.spec.clusterIP)).size).toBe(20);
    expect(new Set(rs.map((r) => r.body.spec.ports[0].nodePort)).size).toBe(20);
  });

  it("allocates nothing on a dry run", async () => {
    const ns = await freshNamespace();
    const before = (await records(ns)).length;
    const ip = staticIP();
    const port = staticPort();
    const dry = await api(
      "POST",
      `/api/v1/namespaces/${ns}/services?dryRun=All`,
      newService("web", {
        type: "NodePort",
        clusterIP: ip,
        ports: [
          { name: "a", port: 80, nodePort: port },
          { name: "b", port: 81 },
        ],
      }),
    );
    expect(dry.status, JSON.stringify(dry.body)).toBe(201);
    expect(dry.body.spec.clusterIP).toBe(ip);
    expect(dry.body.spec.ports[1].nodePort).toBeGreaterThanOrEqual(30000);
    expect((await records(ns)).length).toBe(before);
    expect((await api("GET", `/api/v1/namespaces/${ns}/services/web`)).status).toBe(404);
    const real = await api(
      "POST",
      `/api/v1/namespaces/${ns}/services`,
      newService("real", { type: "NodePort", clusterIP: ip, ports: [{ port: 80, nodePort: port }] }),
    );
    expect(real.status, JSON.stringify(real.body)).toBe(201);
    // A dry-run update to NodePort shows ports but keeps none, and a dry-run delete frees nothing.
    const plain = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("plain"));
    const n = (await records(ns)).length;
    const dryPatch = await api("PATCH", `/api/v1/namespaces/${ns}/services/plain?dryRun=All`, { spec: { type: "NodePort" } }, MERGE);
    expect(dryPatch.status).toBe(200);
    expect(dryPatch.body.spec.ports[0].nodePort).toBeGreaterThanOrEqual(30000);
    expect((await api("DELETE", `/api/v1/namespaces/${ns}/services/plain?dryRun=All`)).status).toBe(200);
    expect((await records(ns)).length).toBe(n);
    expect((await api("GET", `/api/v1/namespaces/${ns}/services/plain`)).body.spec).toEqual(plain.body.spec);
    // A dry run still says when a requested value is taken.
    const taken = await api("POST", `/api/v1/namespaces/${ns}/services?dryRun=All`, newService("x", { clusterIP: ip }));
    await expectInvalid(taken, "spec.clusterIPs", "provided IP is already allocated");
  });

  it("allocates through server-side apply and keeps the IP when a later apply omits it", async () => {
    const ns = await freshNamespace();
    const path = `/api/v1/namespaces/${ns}/services/web?fieldManager=kubectl`;
    const first = await api("PATCH", path, newService("web", { type: "NodePort" }), APPLY);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const { clusterIP } = first.body.spec;
    const nodePort = first.body.spec.ports[0].nodePort;
    expect(inDefaultCIDR(clusterIP)).toBe(true);
    expect(nodePort).toBeGreaterThanOrEqual(30000);
    const second = await api("PATCH", path, newService("web", { type: "NodePort", ports: [{ port: 80, name: "http" }] }), APPLY);
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect(second.body.spec.clusterIP).toBe(clusterIP);
    const other = staticIP();
    const third = await api("PATCH", path, newService("web", { type: "NodePort", clusterIP: other }), APPLY);
    await expectInvalid(third, "spec.clusterIP", "field is immutable");
  });

  it("never shows allocation records in lists or watches", async () => {
    const ns = await freshNamespace();
    const created = await api("POST", `/api/v1/namespaces/${ns}/services`, newService("web", { type: "NodePort" }));
    expect((await records(ns)).length).toBe(2);
    const all = await api("GET", "/api/v1/services");
    expect(all.status).toBe(200);
    expect(all.body.items.every((s: any) => typeof s.metadata?.name === "string" && typeof s.metadata?.uid === "string")).toBe(true);
    const events = await readEvents(await watch(`/api/v1/namespaces/${ns}/services?watch=1&resourceVersion=0`), 2, 1500);
    expect(events.map((e) => [e.type, e.object.kind, e.object.metadata.name])).toEqual([["ADDED", "Service", "web"]]);
    expect(events[0].object.spec.clusterIP).toBe(created.body.spec.clusterIP);
  });
});

describe("a tiny range (a cluster of its own)", () => {
  const SERVICES = lookupResource("", "v1", "services")!;
  const NAMESPACES = lookupResource("", "v1", "namespaces")!;

  async function tinyCluster(): Promise<{ ctx: Ctx; ns: string }> {
    const ctx: Ctx = {
      store: RemoteStore.forCluster(env.STORE, `tiny-${crypto.randomUUID()}`),
      now: () => new Date(),
      services: { cidr: "10.0.0.0/29", nodePorts: "30000-30002" },
    };
    const ns = `tiny-${crypto.randomUUID().slice(0, 8)}`;
    for (const name of [ns, "default"]) await create(ctx, { info: NAMESPACES }, { metadata: { name } }, { dryRun: false });
    return { ctx, ns };
  }

  const t = (ns: string, name?: string) => ({ info: SERVICES, namespace: ns, name });

  it("hands out every usable address but the first, then answers range is full until one is freed", async () => {
    const { ctx, ns } = await tinyCluster();
    // 10.0.0.0/29: .1-.6 usable, .1 kept for the kubernetes Service.
    const ips: string[] = [];
    for (let i = 0; i < 5; i++) ips.push((await create(ctx, t(ns), newService(`s${i}`), { dryRun: false })).spec.clusterIP);
    expect(ips.sort()).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    await expect(create(ctx, t(ns), newService("full"), { dryRun: false })).rejects.toMatchObject({
      code: 500,
      message: "Internal error occurred: failed to allocate a serviceIP: range is full",
    });
    const headless = await create(ctx, t(ns), newService("headless", { clusterIP: "None" }), { dryRun: false });
    expect(headless.spec.clusterIP).toBe("None");
    const gone = await remove(ctx, t(ns, "s0"), {}, false);
    const again = await create(ctx, t(ns), newService("again"), { dryRun: false });
    expect(again.spec.clusterIP).toBe(gone.obj.spec.clusterIP);
    // A service deleted behind the registry's back leaves a stale record: reclaimed when needed.
    const s1 = await ctx.store.get(`/registry/core/services/${ns}/s1`);
    await ctx.store.delete(s1!.key);
    const repaired = await create(ctx, t(ns), newService("repaired"), { dryRun: false });
    expect(repaired.spec.clusterIP).toBe(JSON.parse(s1!.value).spec.clusterIP);
  });

  it("runs out of node ports, frees them with a type change, and the kubernetes Service gets the first address", async () => {
    const { ctx, ns } = await tinyCluster();
    const a = await create(
      ctx,
      t(ns),
      newService("a", {
        type: "NodePort",
        ports: [
          { name: "x", port: 1 },
          { name: "y", port: 2 },
        ],
      }),
      {
        dryRun: false,
      },
    );
    const b = await create(ctx, t(ns), newService("b", { type: "NodePort" }), { dryRun: false });
    const used = [...a.spec.ports.map((p: any) => p.nodePort), b.spec.ports[0].nodePort].sort();
    expect(used).toEqual([30000, 30001, 30002]);
    await expect(create(ctx, t(ns), newService("c", { type: "NodePort" }), { dryRun: false })).rejects.toMatchObject({
      code: 500,
      message: "Internal error occurred: failed to allocate a nodePort: range is full",
    });
    await expect(
      create(ctx, t(ns), newService("d", { type: "NodePort", ports: [{ port: 80, nodePort: 30003 }] }), { dryRun: false }),
    ).rejects.toMatchObject({ code: 422, message: expect.stringContaining("The range of valid ports is 30000-30002") });
    await patch(ctx, t(ns, "b"), "merge", { spec: { type: "ClusterIP", ports: [{ port: 80 }] } }, { dryRun: false });
    const c = await create(ctx, t(ns), newService("c", { type: "NodePort" }), { dryRun: false });
    expect(c.spec.ports[0].nodePort).toBe(b.spec.ports[0].nodePort);
    const kubernetes = { metadata: { name: "kubernetes" }, spec: { ports: [{ name: "https", port: 443 }] } };
    const k = await create(ctx, { info: SERVICES, namespace: "default" }, structuredClone(kubernetes), { dryRun: false });
    expect(k.spec.clusterIP).toBe("10.0.0.1");
    const put = await update(ctx, { info: SERVICES, namespace: "default", name: "kubernetes" }, structuredClone(kubernetes), {
      dryRun: false,
    });
    expect(put.obj.spec.clusterIP).toBe("10.0.0.1");
  });
});
