import { describe, expect, it } from "vitest";
import { edgeLoadBalancer } from "../../durable-objects/controllers/cloud/edge.ts";
import { LB_FINALIZER, reconcileServiceLB, type ServiceOutcome, serviceStep } from "../../durable-objects/controllers/cloud/service.ts";
import { type Action, type Obj, SERVICES } from "../../durable-objects/controllers/types.ts";

// ------------------------------------------------------------------ fixtures

function service(
  opts: { type?: string; finalizer?: boolean; ingress?: Obj[]; annotations?: Obj; deleting?: boolean; lbClass?: string } = {},
): Obj {
  const metadata: Obj = { name: "web", namespace: "shop", uid: "svc-uid", resourceVersion: "7" };
  if (opts.finalizer) metadata.finalizers = [LB_FINALIZER];
  if (opts.annotations) metadata.annotations = opts.annotations;
  if (opts.deleting) metadata.deletionTimestamp = "2026-11-26T17:00:00Z";
  const spec: Obj = { type: opts.type ?? "LoadBalancer", ports: [{ port: 80, targetPort: 8080 }], selector: { app: "web" } };
  if (opts.lbClass) spec.loadBalancerClass = opts.lbClass;
  return { apiVersion: "v1", kind: "Service", metadata, spec, status: { loadBalancer: opts.ingress ? { ingress: opts.ingress } : {} } };
}

const ORIGIN = "https://kube.example.com";
const PATH = "/lb/shop/web/";
const OWNED = { "kubeflare.dev/load-balancer-path": PATH, "kubeflare.dev/load-balancer-url": `${ORIGIN}${PATH}` };

function only<T extends Action["type"]>(actions: Action[], type: T): Extract<Action, { type: T }> {
  const found = actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
  expect(found).toHaveLength(1);
  return found[0];
}

// ------------------------------------------------------------------ tests

describe("serviceStep", () => {
  it.each<[string, Obj | undefined, boolean, string]>([
    ["gone", undefined, true, "none"],
    ["ClusterIP without finalizer", service({ type: "ClusterIP" }), true, "none"],
    ["LoadBalancer, no provider", service(), false, "unsupported"],
    ["LoadBalancer without the finalizer yet", service(), true, "add-finalizer"],
    ["LoadBalancer with the finalizer", service({ finalizer: true }), true, "ensure"],
    ["changed to ClusterIP, finalizer left", service({ type: "ClusterIP", finalizer: true }), true, "delete"],
    ["changed to ClusterIP, status left", service({ type: "ClusterIP", ingress: [{ hostname: "h" }] }), true, "delete"],
    ["being deleted", service({ finalizer: true, deleting: true }), true, "delete"],
    ["another implementation's (loadBalancerClass)", service({ lbClass: "example.com/lb" }), true, "none"],
    ["finalizer of a provider no longer configured", service({ type: "ClusterIP", finalizer: true }), false, "delete"],
  ])("%s → %s", (_, svc, supported, step) => {
    expect(serviceStep(svc, supported)).toBe(step);
  });
});

describe("reconcileServiceLB", () => {
  const ensured = (svc: Obj): ServiceOutcome => ({ step: "ensure", result: edgeLoadBalancer(svc, ORIGIN, undefined) });

  it("puts the cleanup finalizer on before anything is made", () => {
    const svc = service();
    const u = only(reconcileServiceLB(svc, { step: "add-finalizer" }).actions, "update");
    expect(u).toMatchObject({ gvr: SERVICES });
    expect(u.object.metadata.finalizers).toEqual([LB_FINALIZER]);
    expect(u.object.metadata.resourceVersion).toBe("7");
    expect(svc.metadata.finalizers).toBeUndefined(); // the snapshot is not touched
  });

  it("writes where the load balancer is served as annotations, then the ingress status", () => {
    const svc = service({ finalizer: true });
    const first = only(reconcileServiceLB(svc, ensured(svc)).actions, "update");
    expect(first.subresource).toBeUndefined();
    expect(first.object.metadata.annotations).toEqual(OWNED);

    const annotated = { ...svc, metadata: { ...svc.metadata, annotations: OWNED } };
    const r = reconcileServiceLB(annotated, ensured(annotated));
    const second = only(r.actions, "update");
    expect(second.subresource).toBe("status");
    expect(second.object.status.loadBalancer).toEqual({ ingress: [{ hostname: "kube.example.com" }] });
    expect(only(r.actions, "event")).toMatchObject({ eventType: "Normal", reason: "EnsuredLoadBalancer" });
  });

  it("writes nothing when annotations and status already match", () => {
    const svc = service({ finalizer: true, annotations: { ...OWNED, team: "a" }, ingress: [{ hostname: "kube.example.com" }] });
    expect(reconcileServiceLB(svc, ensured(svc))).toEqual({ actions: [] });
  });

  it("gives the service's own host first when EDGE_LB_DOMAIN is set, and an ip for an IP origin", () => {
    const svc = service({ finalizer: true });
    expect(edgeLoadBalancer(svc, "http://127.0.0.1:8787", "lb.example.net").status.ingress).toEqual([
      { hostname: "web.shop.lb.example.net" },
      { ip: "127.0.0.1" },
    ]);
    expect(edgeLoadBalancer(svc, "http://127.0.0.1:8787", undefined).annotations).toEqual({
      "kubeflare.dev/load-balancer-path": PATH,
      "kubeflare.dev/load-balancer-url": "http://127.0.0.1:8787/lb/shop/web/",
    });
  });

  it("fails to ensure (pending) when no public host is known, with a warning event", () => {
    const svc = service({ finalizer: true });
    expect(() => edgeLoadBalancer(svc, undefined, undefined)).toThrow(/public host/);
    const r = reconcileServiceLB(svc, { step: "ensure", error: "the control plane's public host is not known yet" });
    expect(only(r.actions, "event")).toMatchObject({ eventType: "Warning", reason: "SyncLoadBalancerFailed" });
    expect(r.actions.filter((a) => a.type === "update")).toEqual([]);
  });

  it("cleans up a service that is no longer type LoadBalancer: status first, then annotations and finalizer", () => {
    const svc = service({
      type: "ClusterIP",
      finalizer: true,
      annotations: { ...OWNED, team: "a" },
      ingress: [{ hostname: "kube.example.com" }],
    });
    const first = reconcileServiceLB(svc, { step: "delete" });
    const s = only(first.actions, "update");
    expect(s.subresource).toBe("status");
    expect(s.object.status.loadBalancer).toEqual({});
    expect(only(first.actions, "event").reason).toBe("DeletedLoadBalancer");

    const cleared = { ...svc, status: { loadBalancer: {} } };
    const m = only(reconcileServiceLB(cleared, { step: "delete" }).actions, "update");
    expect(m.subresource).toBeUndefined();
    expect(m.object.metadata.finalizers).toBeUndefined();
    expect(m.object.metadata.annotations).toEqual({ team: "a" });
  });

  it("only removes the finalizer of a service being deleted (no status write)", () => {
    const svc = service({ finalizer: true, deleting: true, ingress: [{ hostname: "kube.example.com" }] });
    const u = only(reconcileServiceLB(svc, { step: "delete" }).actions, "update");
    expect(u.subresource).toBeUndefined();
    expect(u.object.metadata.finalizers).toBeUndefined();
  });

  it("keeps the finalizer when deleting the load balancer failed", () => {
    const svc = service({ finalizer: true, deleting: true });
    const r = reconcileServiceLB(svc, { step: "delete", error: "boom" });
    expect(r.actions.map((a) => a.type)).toEqual(["event"]);
  });

  it("tells once that the provider has no load balancers", () => {
    const svc = service();
    const first = reconcileServiceLB(svc, { step: "unsupported", provider: "none", reported: false });
    expect(only(first.actions, "event")).toMatchObject({ eventType: "Warning", reason: "LoadBalancerUnsupported" });
    expect(only(first.actions, "event").message).toMatch(/stays pending/);
    expect(reconcileServiceLB(svc, { step: "unsupported", provider: "none", reported: true })).toEqual({ actions: [] });
  });
});
