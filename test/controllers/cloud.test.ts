// The cloud controller manager with the edge provider, in its Durable Object and woken
// by the store's notifications: a LoadBalancer Service gets its ingress status (the
// host the API is reached at, here kube.test) and the finalizer, is served (503 while it
// has no endpoints) and cleaned up when it stops being a LoadBalancer; a node whose
// credential exists is initialised (providerID), and deleted once the credential is
// gone and the node is not Ready. Instances are polled every second in this project.

import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, BASE, freshNamespace } from "../workers/helpers.ts";
import { eventually } from "./cluster.ts";

const FINALIZER = "service.kubernetes.io/load-balancer-cleanup";

function lbService(name: string) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name },
    spec: { type: "LoadBalancer", selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
  };
}

function node(name: string, opts: { providerID?: string; ready: boolean }) {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name } },
    spec: opts.providerID ? { providerID: opts.providerID } : {},
    status: {
      addresses: [{ type: "InternalIP", address: "192.168.7.7" }],
      conditions: [
        { type: "Ready", status: opts.ready ? "True" : "False", reason: "Test", lastHeartbeatTime: now, lastTransitionTime: now },
      ],
    },
  };
}

describe("service controller (edge)", () => {
  it("gives a LoadBalancer Service its ingress, serves it, and cleans up when it stops being one", async () => {
    const ns = await freshNamespace("lb");
    const path = `/api/v1/namespaces/${ns}/services/web`;
    expect((await api("POST", `/api/v1/namespaces/${ns}/services`, lbService("web"))).status).toBe(201);

    const svc = await eventually("the load balancer's ingress", async () => {
      const s = (await api("GET", path)).body;
      return s.status?.loadBalancer?.ingress?.length > 0 && s;
    });
    expect(svc.status.loadBalancer.ingress).toEqual([{ hostname: "kube.test" }]);
    expect(svc.metadata.finalizers).toContain(FINALIZER);
    expect(svc.metadata.annotations).toMatchObject({
      "kubeflare.dev/load-balancer-path": `/lb/${ns}/web/`,
      "kubeflare.dev/load-balancer-url": `${BASE}/lb/${ns}/web/`,
    });

    // Served without Kubernetes credentials; no pods yet, so no ready endpoint.
    const res = await SELF.fetch(`${BASE}/lb/${ns}/web/hello`);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/has no ready endpoints/);
    const bare = await SELF.fetch(`${BASE}/lb/${ns}/web`, { redirect: "manual" });
    expect([bare.status, bare.headers.get("location")]).toEqual([308, `/lb/${ns}/web/`]);

    // No longer a LoadBalancer: status cleared, finalizer and annotations removed.
    const patched = await api("PATCH", path, { spec: { type: "ClusterIP" } }, { contentType: "application/merge-patch+json" });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const after = await eventually("the cleanup", async () => {
      const s = (await api("GET", path)).body;
      return !s.metadata.finalizers?.includes(FINALIZER) && !s.status?.loadBalancer?.ingress && s;
    });
    expect(after.metadata.annotations?.["kubeflare.dev/load-balancer-path"]).toBeUndefined();
    // Not served any more, once the isolate's one-second cache of the Service has expired.
    await eventually("the load balancer to stop serving", async () => (await SELF.fetch(`${BASE}/lb/${ns}/web/`)).status === 404, 5000);
  });

  it("lets a LoadBalancer Service be deleted (the finalizer comes off)", async () => {
    const ns = await freshNamespace("lbdel");
    const path = `/api/v1/namespaces/${ns}/services/gone`;
    await api("POST", `/api/v1/namespaces/${ns}/services`, lbService("gone"));
    await eventually("the finalizer", async () => (await api("GET", path)).body.metadata?.finalizers?.includes(FINALIZER));
    expect((await api("DELETE", path)).status).toBe(200);
    await eventually("the Service to be gone", async () => (await api("GET", path)).status === 404);
  });
});

describe("cloud node controllers (edge)", () => {
  it("deletes a not-Ready node of this provider whose instance is gone (no credential)", async () => {
    const name = `gone-${Date.now().toString(36)}`;
    expect((await api("POST", "/api/v1/nodes", node(name, { providerID: `edge://${name}`, ready: false }))).status).toBe(201);
    await eventually("the node to be deleted", async () => (await api("GET", `/api/v1/nodes/${name}`)).status === 404);
  });

  it("leaves alone a not-Ready node it never initialised (registered by hand, no credential)", async () => {
    const name = `manual-${Date.now().toString(36)}`;
    expect((await api("POST", "/api/v1/nodes", node(name, { ready: false }))).status).toBe(201);
    await new Promise((r) => setTimeout(r, 3000)); // a few polls
    const n = await api("GET", `/api/v1/nodes/${name}`);
    expect(n.status).toBe(200);
    expect(n.body.spec.providerID).toBeUndefined();
    await api("DELETE", `/api/v1/nodes/${name}`);
  });

  it("initialises a node whose credential exists, and deletes it once the credential is revoked", async () => {
    const name = `joined-${Date.now().toString(36)}`;
    const secret = {
      metadata: { name: `node-credential-${name}`, namespace: "kube-system" },
      type: "kubeflare.dev/node-credential",
      data: { node: btoa(name) },
    };
    expect((await api("POST", "/api/v1/namespaces/kube-system/secrets", secret)).status).toBe(201);
    expect((await api("POST", "/api/v1/nodes", node(name, { ready: false }))).status).toBe(201);
    const n = await eventually("the providerID", async () => {
      const b = (await api("GET", `/api/v1/nodes/${name}`)).body;
      return b.spec?.providerID && b;
    });
    expect(n.spec.providerID).toBe(`edge://${name}`);
    // The agent's address is kept (the tunnel knows no public address here).
    expect(n.status.addresses).toEqual([{ type: "InternalIP", address: "192.168.7.7" }]);

    await new Promise((r) => setTimeout(r, 1500)); // still exists: polls do not delete it
    expect((await api("GET", `/api/v1/nodes/${name}`)).status).toBe(200);

    expect((await api("DELETE", `/api/v1/namespaces/kube-system/secrets/node-credential-${name}`)).status).toBe(200);
    await eventually("the node to be deleted", async () => (await api("GET", `/api/v1/nodes/${name}`)).status === 404);
  });
});
