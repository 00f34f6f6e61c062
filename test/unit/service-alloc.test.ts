// The pure core of Service allocation: ranges, picking, holdings, update patching and claims.

import { describe, expect, it } from "vitest";
import {
  assignClaims,
  formatIPv4,
  heldIPs,
  heldNodePorts,
  ipSlot,
  parseIPv4,
  parsePortRange,
  parseServiceCIDR,
  pickFree,
  planClaims,
  prepareServiceUpdate,
  randomSlot,
  serviceNetwork,
} from "../../workers/shared/service-alloc.ts";

type Obj = Record<string, any>;

function newService(spec: Obj = {}, name = "web"): Obj {
  return {
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: { type: "ClusterIP", ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 80 }], ...spec },
  };
}

const seq = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length];
};

describe("ranges", () => {
  it("parses an IPv4 CIDR without the network and broadcast addresses", () => {
    const r = parseServiceCIDR("10.96.0.0/12");
    expect(r).toEqual({ cidr: "10.96.0.0/12", first: parseIPv4("10.96.0.1"), size: 2 ** 20 - 2, offset: 256 });
    expect(formatIPv4(r.first + r.size - 1)).toBe("10.111.255.254");
    expect(parseServiceCIDR("10.0.0.5/29")).toMatchObject({ cidr: "10.0.0.0/29", size: 6, offset: 0 });
    expect(parseServiceCIDR("192.168.0.0/24").offset).toBe(16);
  });

  it.each(["10.0.0.0", "10.0.0.0/31", "fd00::/108", "10.0.0.256/24", "x/12"])("rejects the service CIDR %s", (s) => {
    expect(() => parseServiceCIDR(s)).toThrow(/SERVICE_CIDR/);
  });

  it("parses node port ranges", () => {
    expect(parsePortRange("30000-32767")).toEqual({ text: "30000-32767", first: 30000, size: 2768, offset: 86 });
    expect(parsePortRange("31000")).toMatchObject({ first: 31000, size: 1, offset: 0 });
    for (const bad of ["32767-30000", "0-10", "30000-70000", "a-b", ""])
      expect(() => parsePortRange(bad)).toThrow(/SERVICE_NODE_PORT_RANGE/);
  });

  it("uses the defaults when the variables are unset", () => {
    const net = serviceNetwork(undefined, "");
    expect(net.ips.cidr).toBe("10.96.0.0/12");
    expect(net.ports.text).toBe("30000-32767");
  });

  it("finds slots only inside the usable range", () => {
    const r = parseServiceCIDR("10.0.0.0/29");
    expect(ipSlot(r, "10.0.0.0")).toBeUndefined();
    expect(ipSlot(r, "10.0.0.1")).toBe(0);
    expect(ipSlot(r, "10.0.0.6")).toBe(5);
    expect(ipSlot(r, "10.0.0.7")).toBeUndefined();
    expect(ipSlot(r, "fd00::1")).toBeUndefined();
  });
});

describe("pickFree", () => {
  it("prefers the dynamic band above the offset, then falls back to the static band", () => {
    const r = { first: 0, size: 10, offset: 4 };
    expect(pickFree(r, () => false, seq(0))).toBe(4);
    expect(pickFree(r, (s) => s >= 4, seq(0.5))).toBe(2);
    expect(pickFree(r, () => true, seq(0))).toBeUndefined();
  });

  it("scans forward from a random start and wraps within the band", () => {
    const r = { first: 0, size: 10, offset: 4 };
    expect(pickFree(r, (s) => s === 9, seq(0.99))).toBe(4);
  });

  it("never returns a used slot, whatever the random source", () => {
    const r = { first: 0, size: 50, offset: 16 };
    for (let k = 0; k < 200; k++) {
      const used = new Set(Array.from({ length: 30 }, () => Math.floor(Math.random() * 50)));
      const s = pickFree(r, (x) => used.has(x), Math.random);
      expect(s).toBeDefined();
      expect(used.has(s!)).toBe(false);
    }
    for (let k = 0; k < 100; k++) expect(randomSlot(r, Math.random)).toBeGreaterThanOrEqual(16);
  });
});

describe("holdings", () => {
  it("counts cluster IPs except None and ExternalName, and every nodePort once", () => {
    expect(heldIPs(newService({ clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10"] }))).toEqual(["10.96.0.10"]);
    expect(heldIPs(newService({ clusterIP: "None", clusterIPs: ["None"] }))).toEqual([]);
    expect(heldIPs(newService({ type: "ExternalName", clusterIP: "10.96.0.10" }))).toEqual([]);
    const dns = newService({
      type: "NodePort",
      ports: [
        { name: "dns", port: 53, protocol: "UDP", nodePort: 30053 },
        { name: "dns-tcp", port: 53, protocol: "TCP", nodePort: 30053 },
      ],
    });
    expect(heldNodePorts(dns)).toEqual([30053]);
  });
});

describe("prepareServiceUpdate", () => {
  const old = newService({
    type: "NodePort",
    clusterIP: "10.96.0.10",
    clusterIPs: ["10.96.0.10"],
    externalTrafficPolicy: "Cluster",
    ports: [
      { name: "http", port: 80, protocol: "TCP", targetPort: 80, nodePort: 30080 },
      { name: "https", port: 443, protocol: "TCP", targetPort: 443, nodePort: 30443 },
    ],
  });

  it("keeps the allocated clusterIP and node ports (by port name) that a PUT leaves out", () => {
    const next = newService({
      type: "NodePort",
      ports: [
        { name: "https", port: 8443, protocol: "TCP" },
        { name: "http", port: 80, protocol: "TCP" },
        { name: "extra", port: 9000, protocol: "TCP" },
      ],
    });
    prepareServiceUpdate(old, next);
    expect(next.spec.clusterIP).toBe("10.96.0.10");
    expect(next.spec.clusterIPs).toEqual(["10.96.0.10"]);
    expect(next.spec.ports.map((p: Obj) => p.nodePort)).toEqual([30443, 30080, undefined]);
  });

  it("does not give an old node port to a second port when the client already uses it", () => {
    const next = newService({
      type: "NodePort",
      ports: [
        { name: "http", port: 80, protocol: "TCP" },
        { name: "https", port: 443, protocol: "TCP", nodePort: 30080 },
      ],
    });
    prepareServiceUpdate(old, next);
    expect(next.spec.ports.map((p: Obj) => p.nodePort)).toEqual([undefined, 30080]);
  });

  it("wipes node ports and externalTrafficPolicy the client did not change when the type becomes ClusterIP", () => {
    const next = structuredClone(old);
    next.spec.type = "ClusterIP";
    prepareServiceUpdate(old, next);
    expect(next.spec.ports.map((p: Obj) => p.nodePort)).toEqual([undefined, undefined]);
    expect(next.spec.externalTrafficPolicy).toBeUndefined();
    expect(next.spec.clusterIP).toBe("10.96.0.10");
  });

  it("wipes the cluster IP and families when the type becomes ExternalName", () => {
    const next = structuredClone(old);
    next.spec.ipFamilies = ["IPv4"];
    next.spec.ipFamilyPolicy = "SingleStack";
    const before = { ...structuredClone(old), spec: { ...structuredClone(old.spec), ipFamilies: ["IPv4"], ipFamilyPolicy: "SingleStack" } };
    Object.assign(next.spec, { type: "ExternalName", externalName: "db.example.com" });
    prepareServiceUpdate(before, next);
    expect(next.spec.clusterIP).toBeUndefined();
    expect(next.spec.clusterIPs).toBeUndefined();
    expect(next.spec.ipFamilies).toBeUndefined();
    expect(next.spec.ports.every((p: Obj) => p.nodePort === undefined)).toBe(true);
  });
});

describe("planClaims", () => {
  const net = serviceNetwork("10.96.0.0/12", "30000-32767");

  it("asks for a dynamic IP, and the first address for default/kubernetes", () => {
    expect(planClaims(net, undefined, newService()).claims.ip).toBe("dynamic");
    expect(planClaims(net, undefined, newService({}, "kubernetes")).claims.ip).toEqual({ ip: "10.96.0.1" });
    expect(planClaims(net, undefined, newService({ clusterIP: "None" })).claims.ip).toBeUndefined();
    expect(planClaims(net, undefined, newService({ type: "ExternalName", externalName: "x.example" })).claims.ip).toBeUndefined();
  });

  it("rejects a requested IP or node port outside the ranges", () => {
    const { errors } = planClaims(
      net,
      undefined,
      newService({ type: "NodePort", clusterIP: "10.0.0.5", ports: [{ name: "a", port: 80, protocol: "TCP", nodePort: 8080 }] }),
    );
    expect(errors.map((e) => `${e.field}: ${e.message}`)).toEqual([
      'spec.clusterIPs: Invalid value: ["10.0.0.5"]: failed to allocate IP 10.0.0.5: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12',
      "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767",
    ]);
  });

  it("shares one node port between ports with the same number (TCP and UDP)", () => {
    const svc = newService({
      type: "NodePort",
      ports: [
        { name: "dns", port: 53, protocol: "UDP" },
        { name: "dns-tcp", port: 53, protocol: "TCP" },
        { name: "metrics", port: 9153, protocol: "TCP", nodePort: 31000 },
      ],
    });
    const { claims } = planClaims(net, undefined, svc);
    expect(claims.dynamicPorts).toEqual([[0, 1]]);
    expect(claims.explicitPorts).toEqual([{ port: 31000, index: 2 }]);
    assignClaims(svc, claims, "10.96.5.5", [30053]);
    expect(svc.spec.ports.map((p: Obj) => p.nodePort)).toEqual([30053, 30053, 31000]);
    expect(svc.spec.clusterIPs).toEqual(["10.96.5.5"]);
  });

  it("claims nothing it already holds and releases what it gives up", () => {
    const old = newService({
      type: "NodePort",
      clusterIP: "10.96.0.10",
      clusterIPs: ["10.96.0.10"],
      ports: [
        { name: "a", port: 80, protocol: "TCP", nodePort: 30080 },
        { name: "b", port: 81, protocol: "TCP", nodePort: 30081 },
      ],
    });
    const next = structuredClone(old);
    next.spec.ports = [{ name: "a", port: 80, protocol: "TCP", nodePort: 30080 }];
    const { claims, errors } = planClaims(net, old, next);
    expect(errors).toEqual([]);
    expect(claims).toEqual({ explicitPorts: [], dynamicPorts: [], releaseIPs: [], releasePorts: [30081] });
    const external = { ...structuredClone(old), spec: { type: "ExternalName", externalName: "x.example", ports: [] } };
    expect(planClaims(net, old, external).claims).toMatchObject({ releaseIPs: ["10.96.0.10"], releasePorts: [30080, 30081] });
  });

  it("keeps an IP outside a since-changed range that the service already holds", () => {
    const old = newService({ clusterIP: "10.0.0.9", clusterIPs: ["10.0.0.9"] });
    expect(planClaims(net, old, structuredClone(old))).toEqual({
      claims: { explicitPorts: [], dynamicPorts: [], releaseIPs: [], releasePorts: [] },
      errors: [],
    });
  });

  it("does not allocate node ports for a LoadBalancer that opts out, but honours requested ones", () => {
    const svc = newService({
      type: "LoadBalancer",
      allocateLoadBalancerNodePorts: false,
      ports: [
        { name: "a", port: 80, protocol: "TCP" },
        { name: "b", port: 81, protocol: "TCP", nodePort: 30081 },
      ],
    });
    const { claims } = planClaims(net, undefined, svc);
    expect(claims.dynamicPorts).toEqual([]);
    expect(claims.explicitPorts).toEqual([{ port: 30081, index: 1 }]);
  });
});
