import { describe, expect, it } from "vitest";
import { findPort, LABEL_HEADLESS_SERVICE, reconcileEndpoints } from "../../durable-objects/controllers/endpoints.ts";
import { type Action, ENDPOINTS, type Obj, type ReconcileResult } from "../../durable-objects/controllers/types.ts";

// ------------------------------------------------------------------ fixtures

function service(opts: { selector?: Obj | null; ports?: Obj[]; labels?: Obj; clusterIP?: string; publishNotReady?: boolean } = {}): Obj {
  const spec: Obj = {
    clusterIP: opts.clusterIP ?? "10.96.0.10",
    ports: opts.ports ?? [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
  };
  if (opts.selector !== null) spec.selector = opts.selector ?? { app: "web" };
  if (opts.publishNotReady) spec.publishNotReadyAddresses = true;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: "default", uid: "svc-uid", labels: opts.labels ?? { team: "edge" } },
    spec,
  };
}

interface PodOpts {
  ip?: string | null;
  ready?: boolean;
  labels?: Obj;
  namespace?: string;
  terminating?: boolean;
  phase?: string;
  ports?: Obj[];
  node?: string;
}

function pod(name: string, opts: PodOpts = {}): Obj {
  const p: Obj = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: opts.namespace ?? "default", uid: `uid-${name}`, labels: opts.labels ?? { app: "web" } },
    spec: { nodeName: opts.node ?? "edge-1", containers: [{ name: "c", image: "nginx", ports: opts.ports ?? [] }] },
    status: { phase: opts.phase ?? "Running", conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True" }] },
  };
  if (opts.ip !== null) {
    p.status.podIP = opts.ip ?? "10.0.0.1";
    p.status.podIPs = [{ ip: p.status.podIP }];
  }
  if (opts.terminating) p.metadata.deletionTimestamp = "2026-11-26T17:00:00Z";
  return p;
}

const addr = (name: string, ip: string, node = "edge-1"): Obj => ({
  ip,
  nodeName: node,
  targetRef: { kind: "Pod", namespace: "default", name, uid: `uid-${name}` },
});
const HTTP = [{ name: "http", port: 8080, protocol: "TCP" }];

function ofType<T extends Action["type"]>(r: ReconcileResult, type: T): Extract<Action, { type: T }>[] {
  return r.actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
}

function created(r: ReconcileResult): Obj {
  const [c] = ofType(r, "create");
  expect(c?.gvr).toBe(ENDPOINTS);
  return c.object;
}

/** The Endpoints as stored after a create (resourceVersion set, keys in another order). */
function stored(obj: Obj, rv = "42"): Obj {
  const s = JSON.parse(JSON.stringify(obj));
  return {
    subsets: s.subsets,
    metadata: { ...s.metadata, resourceVersion: rv, uid: "ep-uid", annotations: { note: "kept" } },
    kind: "Endpoints",
    apiVersion: "v1",
  };
}

// ------------------------------------------------------------------ tests

describe("findPort", () => {
  const p = pod("a", {
    ports: [
      { name: "http", containerPort: 8080, protocol: "TCP" },
      { name: "dns", containerPort: 53, protocol: "UDP" },
    ],
  });
  it.each([
    ["numeric targetPort", { port: 80, targetPort: 9000 }, 9000],
    ["unset targetPort → port", { port: 80 }, 80],
    ["named targetPort", { port: 80, targetPort: "http", protocol: "TCP" }, 8080],
    ["named targetPort, protocol defaults to TCP", { port: 80, targetPort: "http" }, 8080],
    ["named targetPort with another protocol", { port: 53, targetPort: "dns", protocol: "TCP" }, undefined],
    ["named targetPort with matching UDP", { port: 53, targetPort: "dns", protocol: "UDP" }, 53],
    ["unknown name", { port: 80, targetPort: "metrics" }, undefined],
  ])("%s", (_, sp, expected) => {
    expect(findPort(p, sp)).toBe(expected);
  });

  it("finds named ports of restartable init containers (sidecars)", () => {
    const s = pod("s");
    s.spec.initContainers = [{ name: "proxy", restartPolicy: "Always", ports: [{ name: "proxy", containerPort: 15001 }] }];
    expect(findPort(s, { port: 80, targetPort: "proxy" })).toBe(15001);
  });
});

describe("reconcileEndpoints", () => {
  it("deletes the Endpoints when the service is gone", () => {
    const existing = stored({ metadata: { name: "web", namespace: "default" } });
    expect(reconcileEndpoints(undefined, [pod("a")], existing, "default", "web")).toEqual({
      actions: [{ type: "delete", gvr: ENDPOINTS, namespace: "default", name: "web", preconditionUID: "ep-uid" }],
    });
  });

  it("does nothing when neither service nor Endpoints exist", () => {
    expect(reconcileEndpoints(undefined, [pod("a")], undefined, "default", "web")).toEqual({ actions: [] });
  });

  it.each([
    ["no selector", null],
    ["an empty selector", {}],
  ])("leaves the Endpoints of a service with %s alone", (_, selector) => {
    const existing = stored({ metadata: { name: "web", namespace: "default" }, subsets: [{ addresses: [{ ip: "192.168.1.1" }] }] });
    expect(reconcileEndpoints(service({ selector }), [pod("a")], existing, "default", "web")).toEqual({ actions: [] });
    expect(reconcileEndpoints(service({ selector }), [pod("a")], undefined, "default", "web")).toEqual({ actions: [] });
  });

  it("creates Endpoints with ready and not-ready addresses sorted by IP, skipping pods that do not belong", () => {
    const pods = [
      pod("b", { ip: "10.0.0.2" }),
      pod("a", { ip: "10.0.0.10", node: "edge-2" }),
      pod("slow", { ip: "10.0.0.3", ready: false }),
      pod("noip", { ip: null }),
      pod("other", { ip: "10.0.0.4", labels: { app: "db" } }),
      pod("elsewhere", { ip: "10.0.0.5", namespace: "kube-system" }),
      pod("leaving", { ip: "10.0.0.6", terminating: true }),
      pod("done", { ip: "10.0.0.7", phase: "Succeeded" }),
      pod("failed", { ip: "10.0.0.8", phase: "Failed" }),
    ];
    const r = reconcileEndpoints(service(), pods, undefined, "default", "web");
    expect(r.actions).toHaveLength(1);
    expect(created(r)).toEqual({
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: "web", namespace: "default", labels: { team: "edge" } },
      subsets: [
        {
          addresses: [addr("a", "10.0.0.10", "edge-2"), addr("b", "10.0.0.2")],
          notReadyAddresses: [addr("slow", "10.0.0.3")],
          ports: HTTP,
        },
      ],
    });
  });

  it("publishes not-ready and terminating pods as ready with publishNotReadyAddresses", () => {
    const pods = [pod("slow", { ip: "10.0.0.3", ready: false }), pod("leaving", { ip: "10.0.0.6", terminating: true })];
    const r = reconcileEndpoints(service({ publishNotReady: true }), pods, undefined, "default", "web");
    expect(created(r).subsets).toEqual([{ addresses: [addr("slow", "10.0.0.3"), addr("leaving", "10.0.0.6")], ports: HTTP }]);
  });

  it("resolves named targetPorts per pod into separate subsets and leaves out pods without the port", () => {
    const svc = service({ ports: [{ name: "http", port: 80, targetPort: "web", protocol: "TCP" }] });
    const pods = [
      pod("v1a", { ip: "10.0.0.1", ports: [{ name: "web", containerPort: 8080, protocol: "TCP" }] }),
      pod("v2", { ip: "10.0.0.2", ports: [{ name: "web", containerPort: 9090, protocol: "TCP" }] }),
      pod("v1b", { ip: "10.0.0.3", ready: false, ports: [{ name: "web", containerPort: 8080, protocol: "TCP" }] }),
      pod("none", { ip: "10.0.0.4", ports: [{ name: "admin", containerPort: 7000, protocol: "TCP" }] }),
    ];
    expect(created(reconcileEndpoints(svc, pods, undefined, "default", "web")).subsets).toEqual([
      {
        addresses: [addr("v1a", "10.0.0.1")],
        notReadyAddresses: [addr("v1b", "10.0.0.3")],
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      },
      { addresses: [addr("v2", "10.0.0.2")], ports: [{ name: "http", port: 9090, protocol: "TCP" }] },
    ]);
  });

  it("lists every resolvable service port of a pod in its subset", () => {
    const svc = service({
      ports: [
        { name: "http", port: 80, targetPort: "web", protocol: "TCP" },
        { name: "metrics", port: 9100, targetPort: 9100, protocol: "TCP", appProtocol: "http" },
      ],
    });
    const pods = [
      pod("full", { ip: "10.0.0.1", ports: [{ name: "web", containerPort: 8080, protocol: "TCP" }] }),
      pod("partial", { ip: "10.0.0.2" }),
    ];
    expect(created(reconcileEndpoints(svc, pods, undefined, "default", "web")).subsets).toEqual([
      {
        addresses: [addr("full", "10.0.0.1")],
        ports: [
          { name: "http", port: 8080, protocol: "TCP" },
          { name: "metrics", port: 9100, protocol: "TCP", appProtocol: "http" },
        ],
      },
      { addresses: [addr("partial", "10.0.0.2")], ports: [{ name: "metrics", port: 9100, protocol: "TCP", appProtocol: "http" }] },
    ]);
  });

  it("lists addresses without ports for a headless service without ports, labelled headless", () => {
    const svc = service({ clusterIP: "None", ports: [] });
    const p = pod("a", { ip: "10.0.0.1" });
    p.spec.hostname = "a";
    p.spec.subdomain = "web";
    const ep = created(reconcileEndpoints(svc, [p], undefined, "default", "web"));
    expect(ep.metadata.labels).toEqual({ team: "edge", [LABEL_HEADLESS_SERVICE]: "" });
    expect(ep.subsets).toEqual([{ addresses: [{ hostname: "a", ...addr("a", "10.0.0.1") }] }]);
  });

  it("creates Endpoints without subsets when no pod is selected", () => {
    const ep = created(reconcileEndpoints(service({ labels: {} }), [], undefined, "default", "web"));
    expect(ep).toEqual({ apiVersion: "v1", kind: "Endpoints", metadata: { name: "web", namespace: "default" } });
  });

  it("picks the pod IP of the service's IP family", () => {
    const svc = service();
    svc.spec.ipFamilies = ["IPv6"];
    const p = pod("a", { ip: "10.0.0.1" });
    p.status.podIPs = [{ ip: "10.0.0.1" }, { ip: "fd00::1" }];
    expect(created(reconcileEndpoints(svc, [p], undefined, "default", "web")).subsets[0].addresses[0].ip).toBe("fd00::1");
  });

  it("is a no-op when the stored Endpoints already match, whatever the pod order", () => {
    const pods = [pod("b", { ip: "10.0.0.2" }), pod("a", { ip: "10.0.0.1" }), pod("c", { ip: "10.0.0.3", ready: false })];
    const existing = stored(created(reconcileEndpoints(service(), pods, undefined, "default", "web")));
    expect(reconcileEndpoints(service(), pods, existing, "default", "web")).toEqual({ actions: [] });
    expect(reconcileEndpoints(service(), [...pods].reverse(), existing, "default", "web")).toEqual({ actions: [] });
  });

  it.each([
    ["a pod became ready", (pods: Obj[]) => pods.map((p) => pod(p.metadata.name, { ip: p.status.podIP }))],
    ["a pod went away", (pods: Obj[]) => pods.slice(1)],
  ])("updates (CAS on the stored resourceVersion, other fields kept) when %s", (_, change) => {
    const pods = [pod("a", { ip: "10.0.0.1" }), pod("c", { ip: "10.0.0.3", ready: false })];
    const existing = stored(created(reconcileEndpoints(service(), pods, undefined, "default", "web")));
    const r = reconcileEndpoints(service(), change(pods), existing, "default", "web");
    const [u] = ofType(r, "update");
    expect(r.actions).toHaveLength(1);
    expect(u.gvr).toBe(ENDPOINTS);
    expect(u.object.metadata).toMatchObject({ resourceVersion: "42", uid: "ep-uid", annotations: { note: "kept" } });
    expect(u.object.subsets).not.toEqual(existing.subsets);
  });

  it("updates when the service's labels change", () => {
    const pods = [pod("a")];
    const existing = stored(created(reconcileEndpoints(service(), pods, undefined, "default", "web")));
    const r = reconcileEndpoints(service({ labels: { team: "core" } }), pods, existing, "default", "web");
    expect(ofType(r, "update").map((u) => u.object.metadata.labels)).toEqual([{ team: "core" }]);
  });

  it("removes subsets from the stored Endpoints when the last pod goes", () => {
    const existing = stored(created(reconcileEndpoints(service(), [pod("a")], undefined, "default", "web")));
    const [u] = ofType(reconcileEndpoints(service(), [], existing, "default", "web"), "update");
    expect(u.object).not.toHaveProperty("subsets");
  });
});
