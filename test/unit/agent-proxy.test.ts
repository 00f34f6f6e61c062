import dgram from "node:dgram";
import net, { type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig, UsageError } from "../../node-agent/main.ts";
import { serviceEnvVars, visibleServices } from "../../node-agent/proxy/envvars.ts";
import { backendsFor, cidrMatcher, desiredListeners } from "../../node-agent/proxy/plan.ts";
import { ServiceProxy } from "../../node-agent/proxy/service-proxy.ts";
import { connectHandler } from "../../node-agent/streams/connect.ts";
import type { StreamDeps } from "../../node-agent/streams/types.ts";
import { Mux, type StreamHeader, type TunnelStream } from "../../workers/shared/tunnel.ts";

type Obj = Record<string, any>;

// ---------------------------------------------------------------------------------------
// Fixtures

function newService(name: string, o: { namespace?: string; type?: string; clusterIP?: string; ports?: Obj[]; spec?: Obj } = {}): Obj {
  return {
    metadata: { name, namespace: o.namespace ?? "default", uid: `uid-${name}` },
    spec: {
      type: o.type ?? "ClusterIP",
      ...(o.clusterIP !== undefined ? { clusterIP: o.clusterIP } : {}),
      ports: o.ports ?? [{ port: 80, protocol: "TCP", targetPort: 8080 }],
      ...(o.spec ?? {}),
    },
  };
}

function addr(ip: string, nodeName?: string): Obj {
  return { ip, ...(nodeName ? { nodeName } : {}) };
}

function newEndpoints(name: string, subsets: Obj[], namespace = "default"): Obj {
  return { metadata: { name, namespace }, subsets };
}

// ---------------------------------------------------------------------------------------
// Pure: listeners

describe("desiredListeners", () => {
  const plan = { nodeName: "node-a" };

  it("gives every port of a ClusterIP service a cluster listener with its ready backends", () => {
    const svc = newService("web", {
      ports: [
        { name: "http", port: 80, protocol: "TCP", targetPort: "http" },
        { name: "dns", port: 53, protocol: "UDP", targetPort: 5353 },
      ],
    });
    const ep = newEndpoints("web", [
      {
        addresses: [addr("10.0.0.1", "node-a"), addr("10.0.0.2", "node-b")],
        notReadyAddresses: [addr("10.0.0.3", "node-a")],
        ports: [
          { name: "http", port: 8080, protocol: "TCP" },
          { name: "dns", port: 5353, protocol: "UDP" },
        ],
      },
    ]);
    expect(desiredListeners([svc], [ep], plan)).toEqual([
      {
        key: "cluster/default/web/http/TCP",
        kind: "cluster",
        namespace: "default",
        service: "web",
        portName: "http",
        protocol: "TCP",
        servicePort: 80,
        backends: [
          { ip: "10.0.0.1", port: 8080, local: true, nodeName: "node-a" },
          { ip: "10.0.0.2", port: 8080, local: false, nodeName: "node-b" },
        ],
      },
      {
        key: "cluster/default/web/dns/UDP",
        kind: "cluster",
        namespace: "default",
        service: "web",
        portName: "dns",
        protocol: "UDP",
        servicePort: 53,
        backends: [
          { ip: "10.0.0.1", port: 5353, local: true, nodeName: "node-a" },
          { ip: "10.0.0.2", port: 5353, local: false, nodeName: "node-b" },
        ],
      },
    ]);
  });

  it("adds a nodePort listener for NodePort and LoadBalancer services, after the cluster ones", () => {
    const np = newService("np", { type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] });
    const lb = newService("lb", { type: "LoadBalancer", ports: [{ port: 443, nodePort: 30443, protocol: "TCP" }] });
    const unallocated = newService("later", { type: "NodePort", ports: [{ port: 81 }] });
    const got = desiredListeners([np, lb, unallocated], [], plan).map((l) => [l.key, l.nodePort]);
    expect(got).toEqual([
      ["cluster/default/later//TCP", undefined],
      ["cluster/default/lb//TCP", undefined],
      ["cluster/default/np//TCP", undefined],
      ["nodePort/TCP/30443", 30443],
      ["nodePort/TCP/30080", 30080],
    ]);
  });

  it("skips headless and ExternalName services, SCTP ports, and gives a nodePort to the first claimant only", () => {
    const services = [
      newService("headless", { clusterIP: "None" }),
      newService("ext", { type: "ExternalName", spec: { externalName: "example.com" }, ports: [] }),
      newService("sctp", { ports: [{ port: 9, protocol: "SCTP" }] }),
      newService("a", { type: "NodePort", ports: [{ port: 80, nodePort: 30000 }] }),
      newService("b", { type: "NodePort", ports: [{ port: 80, nodePort: 30000 }] }),
    ];
    const np = desiredListeners(services, [], plan).filter((l) => l.kind === "nodePort");
    expect(np.map((l) => [l.service, l.key])).toEqual([["a", "nodePort/TCP/30000"]]);
    expect(desiredListeners(services, [], plan).map((l) => l.service)).toEqual(["a", "b", "a"]);
  });

  it("matches endpoint ports by the service port's name and protocol, per subset", () => {
    const sp = { name: "http", port: 80, protocol: "TCP" };
    const ep = newEndpoints("web", [
      { addresses: [addr("10.0.0.1")], ports: [{ name: "http", port: 8080, protocol: "TCP" }] },
      { addresses: [addr("10.0.0.2")], ports: [{ name: "http", port: 9090, protocol: "TCP" }] },
      { addresses: [addr("10.0.0.3")], ports: [{ name: "http", port: 7070, protocol: "UDP" }] },
      { addresses: [addr("10.0.0.4")], ports: [{ name: "admin", port: 6060, protocol: "TCP" }] },
      { notReadyAddresses: [addr("10.0.0.5")], ports: [{ name: "http", port: 8080, protocol: "TCP" }] },
    ]);
    expect(backendsFor(sp, ep, plan).map((b) => `${b.ip}:${b.port}`)).toEqual(["10.0.0.1:8080", "10.0.0.2:9090"]);
    // The unnamed single port matches the unnamed endpoint port.
    const unnamed = newEndpoints("x", [{ addresses: [addr("10.0.0.9")], ports: [{ port: 8080 }] }]);
    expect(backendsFor({ port: 80 }, unnamed, plan).map((b) => b.port)).toEqual([8080]);
    expect(backendsFor({ name: "http", port: 80 }, unnamed, plan)).toEqual([]);
  });

  it("marks a backend local when it runs on this node or its IP is in a routable CIDR", () => {
    const ep = newEndpoints("web", [
      {
        addresses: [addr("10.0.0.1", "node-a"), addr("10.1.2.3", "node-b"), addr("10.2.0.1", "node-c"), addr("fd00::5", "node-d")],
        ports: [{ port: 80 }],
      },
    ]);
    const isRoutable = cidrMatcher(["10.1.0.0/16", "fd00::/64"]);
    expect(backendsFor({ port: 80 }, ep, { nodeName: "node-a", isRoutable }).map((b) => [b.ip, b.local])).toEqual([
      ["10.0.0.1", true],
      ["10.1.2.3", true],
      ["10.2.0.1", false],
      ["fd00::5", true],
    ]);
    expect(() => cidrMatcher(["10.0.0.0/33"])).toThrow(/not a CIDR/);
    expect(() => cidrMatcher(["banana"])).toThrow(/not a CIDR/);
  });

  it("keeps only this node's backends under a Local traffic policy", () => {
    const svc = newService("web", {
      type: "NodePort",
      ports: [{ port: 80, nodePort: 30080 }],
      spec: { externalTrafficPolicy: "Local", internalTrafficPolicy: "Cluster" },
    });
    const ep = newEndpoints("web", [{ addresses: [addr("10.0.0.1", "node-a"), addr("10.0.0.2", "node-b")], ports: [{ port: 80 }] }]);
    const [cluster, nodePort] = desiredListeners([svc], [ep], plan);
    expect(cluster.backends.map((b) => b.ip)).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(nodePort.backends.map((b) => b.ip)).toEqual(["10.0.0.1"]);
  });
});

// ---------------------------------------------------------------------------------------
// Pure: environment variables

describe("serviceEnvVars", () => {
  it("names the variables exactly as kubelet does", () => {
    const svc = newService("redis-primary", {
      clusterIP: "10.96.0.11",
      ports: [
        { name: "", port: 6379, protocol: "TCP" },
        { name: "metrics-port", port: 9121, protocol: "UDP" },
      ],
    });
    expect(serviceEnvVars([svc], { namespace: "default", enableServiceLinks: true })).toEqual({
      REDIS_PRIMARY_SERVICE_HOST: "10.96.0.11",
      REDIS_PRIMARY_SERVICE_PORT: "6379",
      REDIS_PRIMARY_SERVICE_PORT_METRICS_PORT: "9121",
      REDIS_PRIMARY_PORT: "tcp://10.96.0.11:6379",
      REDIS_PRIMARY_PORT_6379_TCP: "tcp://10.96.0.11:6379",
      REDIS_PRIMARY_PORT_6379_TCP_PROTO: "tcp",
      REDIS_PRIMARY_PORT_6379_TCP_PORT: "6379",
      REDIS_PRIMARY_PORT_6379_TCP_ADDR: "10.96.0.11",
      REDIS_PRIMARY_PORT_9121_UDP: "udp://10.96.0.11:9121",
      REDIS_PRIMARY_PORT_9121_UDP_PROTO: "udp",
      REDIS_PRIMARY_PORT_9121_UDP_PORT: "9121",
      REDIS_PRIMARY_PORT_9121_UDP_ADDR: "10.96.0.11",
    });
  });

  it("brackets IPv6 addresses in the URLs", () => {
    const env = serviceEnvVars([newService("v6", { clusterIP: "fd00::10", ports: [{ port: 80 }] })], {
      namespace: "default",
      enableServiceLinks: true,
    });
    expect(env.V6_PORT).toBe("tcp://[fd00::10]:80");
    expect(env.V6_PORT_80_TCP_ADDR).toBe("fd00::10");
  });

  it("sees the pod's namespace, plus default/kubernetes even without service links", () => {
    const services = [
      newService("kubernetes", { clusterIP: "10.96.0.1", ports: [{ name: "https", port: 443 }] }),
      newService("db", { namespace: "shop", clusterIP: "10.96.0.2" }),
      newService("cache", { namespace: "other", clusterIP: "10.96.0.3" }),
      newService("headless", { namespace: "shop", clusterIP: "None" }),
      newService("ext", { namespace: "shop", type: "ExternalName", spec: { externalName: "example.com" } }),
      newService("pending", { namespace: "shop" }), // no cluster IP: kubelet skips it
    ];
    expect(
      Object.keys(serviceEnvVars(services, { namespace: "shop", enableServiceLinks: true })).filter((k) => k.endsWith("_SERVICE_HOST")),
    ).toEqual(["DB_SERVICE_HOST", "KUBERNETES_SERVICE_HOST"]);
    expect(
      Object.keys(serviceEnvVars(services, { namespace: "shop", enableServiceLinks: false })).filter((k) => k.endsWith("_SERVICE_HOST")),
    ).toEqual(["KUBERNETES_SERVICE_HOST"]);
    expect(serviceEnvVars(services, { namespace: "shop", enableServiceLinks: false }).KUBERNETES_SERVICE_PORT_HTTPS).toBe("443");
  });

  it("lets a service called kubernetes in the pod's namespace win over default/kubernetes", () => {
    const services = [
      newService("kubernetes", { namespace: "shop", clusterIP: "10.96.9.9" }),
      newService("kubernetes", { clusterIP: "10.96.0.1" }),
    ];
    expect(visibleServices(services, "shop", true).map((s) => s.metadata.namespace)).toEqual(["shop"]);
    expect(visibleServices([...services].reverse(), "shop", true).map((s) => s.metadata.namespace)).toEqual(["shop"]);
    expect(visibleServices(services, "shop", false).map((s) => s.metadata.namespace)).toEqual(["default"]);
  });

  it("in user-space mode points every port at its listener and keeps the service port in the names", () => {
    const svc = newService("web", {
      ports: [
        { name: "http", port: 80 },
        { name: "grpc", port: 9000 },
      ],
    });
    const listener: Record<number, number> = { 80: 41000, 9000: 9000 };
    const env = serviceEnvVars([svc], {
      namespace: "default",
      enableServiceLinks: true,
      address: (_svc, p) => ({ host: "127.0.0.1", port: listener[p.port] }),
    });
    expect(env).toMatchObject({
      WEB_SERVICE_HOST: "127.0.0.1",
      WEB_SERVICE_PORT: "41000",
      WEB_SERVICE_PORT_HTTP: "41000",
      WEB_SERVICE_PORT_GRPC: "9000",
      WEB_PORT: "tcp://127.0.0.1:41000",
      WEB_PORT_80_TCP: "tcp://127.0.0.1:41000",
      WEB_PORT_80_TCP_PORT: "41000",
      WEB_PORT_80_TCP_ADDR: "127.0.0.1",
    });
    // A service with a port that has no listener yet is left out whole.
    expect(serviceEnvVars([svc], { namespace: "default", enableServiceLinks: true, address: () => undefined })).toEqual({});
  });
});

describe("agent flags", () => {
  const base = ["--server", "https://cp.example", "--name", "n1"];

  it("parses the service proxy flags", () => {
    const cfg = parseConfig([
      ...base,
      "--no-service-proxy",
      "--service-proxy-address",
      "172.17.0.1",
      "--routable-cidrs",
      "10.0.0.0/8, fd00::/8",
      "--node-port-address",
      "127.0.0.2",
    ]);
    expect(cfg).toMatchObject({
      serviceProxy: false,
      serviceProxyAddress: "172.17.0.1",
      routableCIDRs: ["10.0.0.0/8", "fd00::/8"],
      nodePortAddress: "127.0.0.2",
    });
    expect(parseConfig(base)).toMatchObject({ serviceProxy: true, routableCIDRs: [] });
  });

  it("rejects a bad CIDR or address", () => {
    expect(() => parseConfig([...base, "--routable-cidrs", "10.0.0.0/40"])).toThrow(UsageError);
    expect(() => parseConfig([...base, "--service-proxy-address", "docker0"])).toThrow(/not an IP address/);
  });
});

// ---------------------------------------------------------------------------------------
// I/O: real sockets on 127.0.0.1

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A TCP server that answers each connection with its name and then echoes. */
async function tcpBackend(name: string): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((s) => {
    s.write(`${name}\n`);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { port: (server.address() as AddressInfo).port, server };
}

/** A UDP server that answers each datagram with "<name>:<datagram>". */
async function udpBackend(name: string): Promise<number> {
  const sock = dgram.createSocket("udp4");
  sock.on("message", (m, r) => sock.send(`${name}:${m}`, r.port, r.address));
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
  return sock.address().port;
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Connects, reads the backend's greeting line, and leaves the connection open. */
async function greet(port: number): Promise<{ name: string; socket: net.Socket }> {
  const socket = net.connect(port, "127.0.0.1");
  cleanups.push(() => socket.destroy());
  const name = await new Promise<string>((resolve, reject) => {
    let buf = "";
    socket.on("data", (d) => {
      buf += d;
      if (buf.includes("\n")) resolve(buf.slice(0, buf.indexOf("\n")));
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error("closed before a greeting")));
  });
  return { name, socket };
}

async function udpAsk(port: number, msg: string, from?: dgram.Socket): Promise<string> {
  const sock = from ?? dgram.createSocket("udp4");
  if (!from) cleanups.push(() => sock.close());
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no UDP answer")), 2000);
    sock.once("message", (m) => {
      clearTimeout(t);
      resolve(String(m));
    });
    sock.send(msg, port, "127.0.0.1");
  });
}

function newProxy(extra: Partial<ConstructorParameters<typeof ServiceProxy>[0]> = {}): ServiceProxy {
  const p = new ServiceProxy({
    nodeName: "node-a",
    address: "127.0.0.1",
    nodePortAddress: "127.0.0.1",
    log: () => {},
    connectTimeoutMs: 1000,
    ...extra,
  });
  cleanups.push(() => p.stop());
  return p;
}

const localSubset = (ports: Obj[], ready: number[], notReady: number[] = []): Obj => ({
  addresses: ready.map(() => addr("127.0.0.1", "node-a")),
  notReadyAddresses: notReady.map(() => addr("127.0.0.1", "node-a")),
  ports,
});

/** Endpoints whose backends are all on 127.0.0.1, told apart by port (one subset each). */
function endpointsOn(name: string, ready: number[], notReady: number[] = [], protocol = "TCP"): Obj {
  return newEndpoints(name, [
    ...ready.map((p) => localSubset([{ port: p, protocol }], [p])),
    ...notReady.map((p) => localSubset([{ port: p, protocol }], [], [p])),
  ]);
}

function listenerPort(p: ServiceProxy, key: string): number {
  const l = p.listeners().find((x) => x.key === key);
  if (!l) throw new Error(`no listener ${key}: ${JSON.stringify(p.listeners().map((x) => x.key))}`);
  return l.port;
}

describe("ServiceProxy: TCP", () => {
  it("round-robins new connections across the ready backends of a cluster listener", async () => {
    const a = await tcpBackend("a");
    const b = await tcpBackend("b");
    const p = newProxy();
    await p.update([newService("web")], [endpointsOn("web", [a.port, b.port])]);
    const port = listenerPort(p, "cluster/default/web//TCP");
    const names = [];
    for (let i = 0; i < 4; i++) names.push((await greet(port)).name);
    expect(names.sort()).toEqual(["a", "a", "b", "b"]);
  });

  it("pipes both ways and passes a half-close on", async () => {
    const a = await tcpBackend("a");
    const p = newProxy();
    await p.update([newService("web")], [endpointsOn("web", [a.port])]);
    const { socket } = await greet(listenerPort(p, "cluster/default/web//TCP"));
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const got: Buffer[] = [];
    socket.on("data", (d) => got.push(d));
    const ended = new Promise((r) => socket.on("end", r));
    socket.end(big); // half-close: the echo server still sends everything back, then ends
    await ended;
    expect(Buffer.concat(got).length).toBe(big.length);
  });

  it("sends no new connections to a backend that turned unready, and keeps established ones", async () => {
    const a = await tcpBackend("a");
    const b = await tcpBackend("b");
    const p = newProxy();
    await p.update([newService("web")], [endpointsOn("web", [a.port, b.port])]);
    const port = listenerPort(p, "cluster/default/web//TCP");
    const first = await greet(port);
    const second = await greet(port);
    const onB = first.name === "b" ? first : second;
    await p.update([newService("web")], [endpointsOn("web", [a.port], [b.port])]);
    expect(listenerPort(p, "cluster/default/web//TCP")).toBe(port); // same listener, backends replaced
    for (let i = 0; i < 4; i++) expect((await greet(port)).name).toBe("a");
    // The connection to b made before still works.
    const echoed = new Promise<string>((r) => onB.socket.once("data", (d) => r(String(d))));
    onB.socket.write("still here");
    expect(await echoed).toBe("still here");
  });

  it("skips a backend it cannot connect to", async () => {
    const a = await tcpBackend("a");
    const dead = await deadPort();
    const p = newProxy();
    await p.update([newService("web")], [endpointsOn("web", [dead, a.port])]);
    const port = listenerPort(p, "cluster/default/web//TCP");
    for (let i = 0; i < 4; i++) expect((await greet(port)).name).toBe("a");
  });

  it("listens on the nodePort and closes listeners of removed services", async () => {
    const a = await tcpBackend("a");
    const nodePort = await deadPort();
    const p = newProxy();
    const svc = newService("web", { type: "NodePort", ports: [{ port: 80, nodePort }] });
    await p.update([svc], [endpointsOn("web", [a.port])]);
    expect((await greet(nodePort)).name).toBe("a");
    await p.update([], []);
    expect(p.listeners()).toEqual([]);
    await expect(greet(nodePort)).rejects.toThrow();
  });

  it("retries a nodePort that is taken until it is free", async () => {
    const a = await tcpBackend("a");
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(0, "127.0.0.1", r));
    const nodePort = (squatter.address() as AddressInfo).port;
    const p = newProxy({ retryMs: 50 });
    await p.update([newService("web", { type: "NodePort", ports: [{ port: 80, nodePort }] })], [endpointsOn("web", [a.port])]);
    expect(p.listeners().map((l) => l.kind)).toEqual(["cluster"]);
    await new Promise((r) => squatter.close(r));
    const deadline = Date.now() + 3000;
    while (p.listeners().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await greet(nodePort)).name).toBe("a");
  });

  it("without listeners gives kubelet's clusterIP env vars", async () => {
    const p = newProxy({ listen: false });
    await p.update([newService("web", { clusterIP: "10.96.0.7" })], []);
    expect(p.listeners()).toEqual([]);
    expect(await p.waitSynced(0)).toBe(true);
    expect(p.serviceEnv("default", true)).toMatchObject({ WEB_SERVICE_HOST: "10.96.0.7", WEB_SERVICE_PORT: "80" });
  });

  it("prefers the service port for a cluster listener and keeps a listener's port while the service lives", async () => {
    const free = await deadPort(); // ≥ 1024, free
    const a = await tcpBackend("a");
    const p = newProxy();
    const svc = newService("web", { ports: [{ port: free }] });
    await p.update([svc], [endpointsOn("web", [a.port])]);
    expect(listenerPort(p, "cluster/default/web//TCP")).toBe(free);
    const low = newService("low", { ports: [{ port: 80 }] });
    await p.update([svc, low], [endpointsOn("web", [a.port])]);
    expect(listenerPort(p, "cluster/default/low//TCP")).not.toBe(80);
    expect(listenerPort(p, "cluster/default/web//TCP")).toBe(free);
    expect(p.serviceEnv("default", true)).toMatchObject({
      WEB_SERVICE_HOST: "127.0.0.1",
      WEB_SERVICE_PORT: String(free),
      LOW_SERVICE_PORT: String(listenerPort(p, "cluster/default/low//TCP")),
      LOW_PORT_80_TCP: `tcp://127.0.0.1:${listenerPort(p, "cluster/default/low//TCP")}`,
    });
  });
});

describe("ServiceProxy: UDP", () => {
  it("round-robins sessions, answers each client, and drops sessions of a backend that turned unready", async () => {
    const a = await udpBackend("a");
    const b = await udpBackend("b");
    const p = newProxy();
    const svc = newService("dns", { ports: [{ port: 53, protocol: "UDP" }] });
    await p.update([svc], [endpointsOn("dns", [a, b], [], "UDP")]);
    const port = listenerPort(p, "cluster/default/dns//UDP");
    const c1 = dgram.createSocket("udp4");
    const c2 = dgram.createSocket("udp4");
    cleanups.push(
      () => c1.close(),
      () => c2.close(),
    );
    const r1 = await udpAsk(port, "q1", c1);
    const r2 = await udpAsk(port, "q2", c2);
    expect([r1[0], r2[0]].sort()).toEqual(["a", "b"]);
    // A session sticks to its backend.
    expect((await udpAsk(port, "again", c1))[0]).toBe(r1[0]);
    // The backend of c1 turns unready: c1's next datagram goes to the other one.
    const other = r1[0] === "a" ? b : a;
    const gone = r1[0] === "a" ? a : b;
    await p.update([svc], [endpointsOn("dns", [other], [gone], "UDP")]);
    expect(await udpAsk(port, "q3", c1)).toBe(`${r1[0] === "a" ? "b" : "a"}:q3`);
  });

  it("closes a session after it has been idle", async () => {
    const a = await udpBackend("a");
    const p = newProxy({ udpIdleTimeoutMs: 100 });
    const svc = newService("dns", { ports: [{ port: 53, protocol: "UDP" }] });
    await p.update([svc], [endpointsOn("dns", [a], [], "UDP")]);
    const port = listenerPort(p, "cluster/default/dns//UDP");
    expect(await udpAsk(port, "x")).toBe("a:x");
    const sessions = () => (p as any).live.get("cluster/default/dns//UDP").sessions.size;
    expect(sessions()).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(sessions()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------
// Remote backends: through a tunnel to another agent's connect handler

/** Two muxes wired back to back: the proxy's agent opens, the "other node" runs connectHandler. */
function tunnel(): { open: (h: StreamHeader) => TunnelStream | undefined; opened: StreamHeader[] } {
  const opened: StreamHeader[] = [];
  const deps = { log: () => {} } as unknown as StreamDeps;
  let other: Mux | undefined;
  const here = new Mux({ side: "agent", send: (f) => queueMicrotask(() => other?.receive(f)) });
  other = new Mux({
    side: "control-plane",
    send: (f) => queueMicrotask(() => here.receive(f)),
    onOpen: (s) => {
      opened.push(s.header);
      void connectHandler(s, deps);
    },
  });
  cleanups.push(() => {
    here.close();
    other?.close();
  });
  return { open: (h) => here.open(h), opened };
}

describe("ServiceProxy: remote backends", () => {
  it("relays TCP to a backend on another node through a connect stream", async () => {
    const a = await tcpBackend("remote-a");
    const t = tunnel();
    const p = newProxy({ openStream: t.open });
    await p.update([newService("web")], [newEndpoints("web", [{ addresses: [addr("127.0.0.1", "node-b")], ports: [{ port: a.port }] }])]);
    const { name, socket } = await greet(listenerPort(p, "cluster/default/web//TCP"));
    expect(name).toBe("remote-a");
    expect(t.opened[0]).toEqual({
      kind: "connect",
      node: "node-b",
      namespace: "default",
      service: "web",
      ip: "127.0.0.1",
      port: a.port,
      protocol: "TCP",
    });
    const big = Buffer.alloc(1024 * 1024, 3);
    const got: Buffer[] = [];
    socket.on("data", (d) => got.push(d));
    const ended = new Promise((r) => socket.on("end", r));
    socket.end(big);
    await ended;
    expect(Buffer.concat(got).length).toBe(big.length);
  });

  it("skips a remote backend while the tunnel is down or the other node cannot dial it", async () => {
    const a = await tcpBackend("a");
    const dead = await deadPort();
    const t = tunnel();
    let up = false;
    const p = newProxy({ openStream: (h) => (up ? t.open(h) : undefined) });
    const eps = newEndpoints("web", [
      { addresses: [addr("127.0.0.1", "node-b")], ports: [{ port: dead }] },
      { addresses: [addr("127.0.0.1", "node-a")], ports: [{ port: a.port }] },
    ]);
    await p.update([newService("web")], [eps]);
    const port = listenerPort(p, "cluster/default/web//TCP");
    for (let i = 0; i < 2; i++) expect((await greet(port)).name).toBe("a");
    up = true;
    for (let i = 0; i < 2; i++) expect((await greet(port)).name).toBe("a");
    expect(t.opened.length).toBeGreaterThan(0);
  });

  it("relays UDP datagrams through a connect stream", async () => {
    const a = await udpBackend("remote-a");
    const t = tunnel();
    const p = newProxy({ openStream: t.open });
    const svc = newService("dns", { ports: [{ port: 53, protocol: "UDP" }] });
    await p.update([svc], [newEndpoints("dns", [{ addresses: [addr("127.0.0.1", "node-b")], ports: [{ port: a, protocol: "UDP" }] }])]);
    const port = listenerPort(p, "cluster/default/dns//UDP");
    const c = dgram.createSocket("udp4");
    cleanups.push(() => c.close());
    expect(await udpAsk(port, "q1", c)).toBe("remote-a:q1");
    expect(await udpAsk(port, "q2", c)).toBe("remote-a:q2");
    expect(t.opened.filter((h) => h.protocol === "UDP").length).toBe(1);
  });
});
