import { describe, expect, it } from "vitest";
import { edgeInstanceExists, edgeInstanceMetadata, edgeProvider } from "../../durable-objects/controllers/cloud/edge.ts";
import {
  mergeAddresses,
  reconcileCloudNode,
  reconcileCloudNodeLifecycle,
  TAINT_SHUTDOWN,
} from "../../durable-objects/controllers/cloud/node.ts";
import { noneProvider } from "../../durable-objects/controllers/cloud/none.ts";
import { LABEL_REGION, LABEL_ZONE, providerName } from "../../durable-objects/controllers/cloud/provider.ts";
import { pollInstance } from "../../durable-objects/controllers/manager.ts";
import { NODES, type Obj } from "../../durable-objects/controllers/types.ts";
import type { TunnelInfo } from "../../durable-objects/tunnel/tunnel-do.ts";

// ------------------------------------------------------------------ fixtures

const NOW = new Date("2026-11-26T12:00:00Z");
const HOUR = 3600_000;
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

function credential(issuedAgoMs = 2 * HOUR): Obj {
  return {
    metadata: {
      name: "node-credential-edge-1",
      namespace: "kube-system",
      creationTimestamp: ago(3 * HOUR),
      annotations: { "kubeflare.dev/issued-at": ago(issuedAgoMs) },
    },
    type: "kubeflare.dev/node-credential",
  };
}

function tunnel(over: Partial<TunnelInfo> = {}): TunnelInfo {
  return { node: "edge-1", connected: false, streams: 0, ...over };
}

function node(opts: { ready?: boolean; providerID?: string; labels?: Obj; addresses?: Obj[]; taints?: Obj[] } = {}): Obj {
  const spec: Obj = {};
  if (opts.providerID) spec.providerID = opts.providerID;
  if (opts.taints) spec.taints = opts.taints;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "edge-1", uid: "node-uid", resourceVersion: "9", labels: opts.labels ?? { "kubernetes.io/hostname": "edge-1" } },
    spec,
    status: {
      addresses: opts.addresses ?? [
        { type: "InternalIP", address: "192.168.1.10" },
        { type: "Hostname", address: "pi" },
      ],
      conditions: [{ type: "Ready", status: opts.ready === false ? "Unknown" : "True" }],
    },
  };
}

const EDGE_MD = {
  providerID: "edge://edge-1",
  nodeAddresses: [{ type: "ExternalIP" as const, address: "203.0.113.5" }],
  zone: "AMS",
  region: "NL",
};

// ------------------------------------------------------------------ tests

describe("providerName", () => {
  it.each([
    [undefined, "edge"],
    ["", "edge"],
    ["edge", "edge"],
    [" none ", "none"],
  ])("%j → %s", (v, name) => {
    expect(providerName(v)).toBe(name);
  });
  it("fails clearly for an unknown provider", () => {
    expect(() => providerName("aws")).toThrow(/CLOUD_PROVIDER "aws" is not a known cloud provider: use one of edge, none/);
  });
});

describe("edgeInstanceExists", () => {
  it.each<[string, Obj | undefined, TunnelInfo | undefined, boolean]>([
    ["no credential, even if connected", undefined, tunnel({ connected: true }), false],
    ["credential and a connected tunnel", credential(), tunnel({ connected: true, lastSeen: ago(5 * HOUR) }), true],
    ["seen 10 minutes ago", credential(), tunnel({ lastSeen: ago(10 * 60_000) }), true],
    ["seen 2 hours ago", credential(), tunnel({ lastSeen: ago(2 * HOUR) }), false],
    ["never on a tunnel, joined 10 minutes ago", credential(10 * 60_000), tunnel(), true],
    ["never on a tunnel, joined 2 hours ago", credential(), tunnel(), false],
    ["the tunnel unknown, joined recently", credential(60_000), undefined, true],
    ["rejoined after the tunnel went quiet", credential(60_000), tunnel({ lastSeen: ago(5 * HOUR) }), true],
  ])("%s → %s", (_, cred, t, exists) => {
    expect(edgeInstanceExists(cred, t, NOW, HOUR)).toBe(exists);
  });
});

describe("edgeInstanceMetadata", () => {
  it("gives edge://<node>, the public address as ExternalIP, colo as zone and country as region", () => {
    expect(edgeInstanceMetadata("edge-1", tunnel({ remoteAddress: "203.0.113.5", colo: "AMS", country: "NL" }))).toEqual(EDGE_MD);
  });
  it("gives only the providerID when the tunnel knows nothing", () => {
    expect(edgeInstanceMetadata("edge-1", tunnel({ remoteAddress: "not an ip" }))).toEqual({
      providerID: "edge://edge-1",
      nodeAddresses: [],
    });
  });
});

describe("pollInstance", () => {
  const deps = (over: Partial<Parameters<typeof edgeProvider>[0]> = {}) =>
    edgeProvider({
      credential: async () => credential(60_000),
      tunnel: async () => tunnel({ connected: true, remoteAddress: "203.0.113.5", colo: "AMS", country: "NL" }),
      publicOrigin: () => undefined,
      instanceTtlMs: HOUR,
      now: () => NOW,
      ...over,
    });

  it("asks the edge provider for existence and metadata", async () => {
    expect(await pollInstance(deps(), node())).toEqual({ exists: true, shutdown: false, metadata: EDGE_MD });
  });
  it("records an error when the tunnel cannot be asked (never 'gone')", async () => {
    const v = await pollInstance(
      deps({
        tunnel: async () => {
          throw new Error("DO unavailable");
        },
      }),
      node(),
    );
    expect(v).toEqual({ error: "DO unavailable" });
  });
  it("says gone when the credential was deleted", async () => {
    expect(await pollInstance(deps({ credential: async () => undefined }), node())).toEqual({ exists: false });
  });
  it("none: every instance exists and has no metadata", async () => {
    expect(await pollInstance(noneProvider(), node())).toEqual({ exists: true, shutdown: false, metadata: undefined });
  });
});

describe("reconcileCloudNodeLifecycle", () => {
  const ours = "edge://edge-1";
  it.each<[string, Obj, Parameters<typeof reconcileCloudNodeLifecycle>[1], string[]]>([
    ["not polled yet", node({ ready: false, providerID: ours }), undefined, []],
    ["the provider erred", node({ ready: false, providerID: ours }), { error: "timeout" }, []],
    ["gone but still Ready", node({ providerID: ours }), { exists: false }, []],
    ["gone and not Ready", node({ ready: false, providerID: ours }), { exists: false }, ["event", "delete"]],
    ["gone, not Ready, never initialised by this provider", node({ ready: false }), { exists: false }, []],
    ["gone, not Ready, another provider's", node({ ready: false, providerID: "aws://i-1" }), { exists: false }, []],
    ["exists and not Ready", node({ ready: false, providerID: ours }), { exists: true }, []],
  ])("%s → %j", (_, n, view, types) => {
    expect(reconcileCloudNodeLifecycle(n, view, "edge").actions.map((a) => a.type)).toEqual(types);
  });

  it("deletes with the node's uid as precondition", () => {
    const r = reconcileCloudNodeLifecycle(node({ ready: false, providerID: ours }), { exists: false }, "edge");
    expect(r.actions[1]).toEqual({ type: "delete", gvr: NODES, name: "edge-1", preconditionUID: "node-uid" });
    expect(r.actions[0]).toMatchObject({ type: "event", reason: "DeletingNode" });
  });

  it("taints a shut-down instance and untaints it once Ready", () => {
    const down = reconcileCloudNodeLifecycle(node({ ready: false, providerID: ours }), { exists: true, shutdown: true }, "edge");
    expect(down.actions[0]).toMatchObject({
      type: "update",
      object: { spec: { taints: [{ key: TAINT_SHUTDOWN, effect: "NoSchedule" }] } },
    });
    const back = reconcileCloudNodeLifecycle(
      node({ providerID: ours, taints: [{ key: TAINT_SHUTDOWN, effect: "NoSchedule" }] }),
      { exists: true, shutdown: false },
      "edge",
    );
    expect(back.actions[0]).toMatchObject({ type: "update" });
    expect((back.actions[0] as Obj).object.spec.taints).toBeUndefined();
  });
});

describe("reconcileCloudNode", () => {
  const view = { exists: true, metadata: EDGE_MD };

  it("sets providerID and zone/region labels first (main resource)", () => {
    const r = reconcileCloudNode(node(), view);
    expect(r.actions).toHaveLength(1);
    const u = r.actions[0] as Obj;
    expect(u.subresource).toBeUndefined();
    expect(u.object.spec.providerID).toBe("edge://edge-1");
    expect(u.object.metadata.labels).toEqual({ "kubernetes.io/hostname": "edge-1", [LABEL_ZONE]: "AMS", [LABEL_REGION]: "NL" });
    expect(u.object.metadata.resourceVersion).toBe("9");
  });

  it("keeps zone labels the agent or an admin set, and never changes a providerID", () => {
    const n = node({ providerID: "edge://old-name", labels: { [LABEL_ZONE]: "home-lab", [LABEL_REGION]: "NL" } });
    const r = reconcileCloudNode(n, view);
    // Only the addresses are left to do.
    expect(r.actions).toHaveLength(1);
    expect((r.actions[0] as Obj).subresource).toBe("status");
  });

  it("merges the cloud's ExternalIP into the agent's addresses (status), then is done", () => {
    const initialised = node({ providerID: "edge://edge-1", labels: { [LABEL_ZONE]: "AMS", [LABEL_REGION]: "NL" } });
    const u = reconcileCloudNode(initialised, view).actions[0] as Obj;
    expect(u.subresource).toBe("status");
    expect(u.object.status.addresses).toEqual([
      { type: "InternalIP", address: "192.168.1.10" },
      { type: "Hostname", address: "pi" },
      { type: "ExternalIP", address: "203.0.113.5" },
    ]);
    expect(reconcileCloudNode({ ...initialised, status: u.object.status }, view)).toEqual({ actions: [] });
  });

  it.each([
    ["not polled", undefined],
    ["provider error", { error: "x" }],
    ["instance gone", { exists: false }],
    ["no metadata (none provider)", { exists: true }],
  ])("does nothing when %s", (_, v) => {
    expect(reconcileCloudNode(node(), v as never)).toEqual({ actions: [] });
  });

  it("mergeAddresses replaces only the types the cloud reports", () => {
    expect(
      mergeAddresses(
        [
          { type: "InternalIP", address: "10.0.0.2" },
          { type: "ExternalIP", address: "198.51.100.1" },
        ],
        [{ type: "ExternalIP", address: "203.0.113.5" }],
      ),
    ).toEqual([
      { type: "InternalIP", address: "10.0.0.2" },
      { type: "ExternalIP", address: "203.0.113.5" },
    ]);
  });
});
