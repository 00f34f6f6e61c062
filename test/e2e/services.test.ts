// End to end: Services through the agents' user-space service proxy. A control plane and
// two process-runtime agents; a small HTTP server on each node (two Deployments, one
// pinned to each node, with the same app label and a named container port of a
// different number each, since process-runtime pods share the host's network). A
// NodePort Service selects both: traffic to node A's nodePort reaches the pod on A
// directly and the pod on B through the node tunnels (no routable CIDRs); a pod that
// turns unready stops getting traffic; a pod started later finds the service through
// its env vars (the service proxy address and the listener's port).

import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent as HttpAgent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ControlPlane, createJoinToken, kubeconfigYAML, spawnAgent, startControlPlane } from "../../scripts/control-plane.ts";
import { eventually as eventuallyWithin, jsonApi, killProcessContainers } from "./kubectl-harness.ts";

/** The harness's poll, with this suite's longer default (two agents relaying through the tunnels). */
const eventually = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 45_000) =>
  eventuallyWithin(what, fn, timeoutMs, 250);

const NODE = process.execPath;
let cp: ControlPlane;
let dir: string;
let caFile: string;
let joinToken: string;
let dispatcher: HttpAgent;
const api = jsonApi(() => ({ cp: cp, dispatcher }));
let nodePort: number;
const agents = new Map<string, ChildProcess>();
const logs = new Map<string, string[]>();
/** Where each agent binds its nodePorts: two loopback addresses, so both can listen on the same port. */
const NODE_ADDRESS: Record<string, string> = { "agent-a": "127.0.0.2", "agent-b": "127.0.0.3" };

function runAgent(name: string): ChildProcess {
  const log: string[] = [];
  logs.set(name, log);
  const child = spawnAgent({
    server: cp.url,
    name,
    runtime: "process",
    stateDir: join(dir, name),
    caFile,
    joinToken,
    args: ["--node-port-address", NODE_ADDRESS[name]],
    log,
  });
  agents.set(name, child);
  return child;
}

async function freePort(host = "127.0.0.1"): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** One GET on a fresh connection (so every request is a new connection for the proxy). */
function get(host: string, port: number, path = "/"): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}: ${body}`))));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/** Raw HTTP/1.0 request, then FIN; resolves with the body once the server closes. */
function requestThenHalfClose(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, allowHalfOpen: true }, () => {
      sock.end("GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    });
    let data = "";
    sock.setEncoding("utf8");
    sock.on("data", (d) => (data += d));
    sock.on("end", () => {
      sock.destroy();
      const body = data.split("\r\n\r\n")[1];
      body ? resolve(body) : reject(new Error(`no answer after a half-close: ${JSON.stringify(data)}`));
    });
    sock.setTimeout(10_000, () => sock.destroy(new Error("timeout after a half-close")));
    sock.on("error", reject);
  });
}

// The pods' server: answers its NAME, /ready with 200 until /unready was called.
const SERVER = `
const http = require("http");
let ready = true;
http.createServer((q, s) => {
  if (q.url === "/ready") { s.writeHead(ready ? 200 : 503); return s.end(); }
  if (q.url === "/unready") { ready = false; return s.end("ok"); }
  s.end(process.env.NAME);
}).listen(Number(process.env.PORT));
`;

function webDeployment(name: string, node: string, port: number): any {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: "default" },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "web", instance: name } },
      template: {
        metadata: { labels: { app: "web", instance: name } },
        spec: {
          nodeSelector: { "kubernetes.io/hostname": node },
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: "server",
              image: "node",
              command: [NODE, "-e", SERVER],
              env: [
                { name: "NAME", value: name },
                { name: "PORT", value: String(port) },
              ],
              ports: [{ name: "http", containerPort: port }],
              readinessProbe: { httpGet: { path: "/ready", port: "http" }, periodSeconds: 1, failureThreshold: 1 },
            },
          ],
        },
      },
    },
  };
}

const ports: Record<string, number> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kf-services-"));
  cp = await startControlPlane({ stateDir: join(dir, "cp"), port: 0, tls: true, cronIntervalMs: 0 });
  caFile = join(dir, "cp", "tls.crt");
  dispatcher = new HttpAgent({ connect: { ca: cp.caCert } });
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigYAML(cp.url, cp.token, cp.caCert));
  joinToken = createJoinToken(kubeconfig);
  runAgent("agent-a");
  runAgent("agent-b");
  ports["web-a"] = await freePort("0.0.0.0");
  ports["web-b"] = await freePort("0.0.0.0");
}, 60_000);

afterAll(async () => {
  for (const a of agents.values()) a.kill("SIGKILL");
  for (const n of ["agent-a", "agent-b"]) killProcessContainers(join(dir, n));
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const readyIPsAndPorts = (ep: any): string[] =>
  (ep?.subsets ?? []).flatMap((s: any) =>
    (s.addresses ?? []).flatMap((a: any) => (s.ports ?? []).map((p: any) => `${a.nodeName}:${p.port}`)),
  );

describe("services through the agents' service proxy", () => {
  it("sends NodePort traffic to the ready pods of both nodes, the remote one through the tunnels", async () => {
    for (const name of ["agent-a", "agent-b"]) {
      await eventually(`node ${name} Ready`, async () => {
        const n = (await api("GET", `/api/v1/nodes/${name}`)).body;
        return n?.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");
      });
    }
    const svc = await api("POST", "/api/v1/namespaces/default/services", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web", namespace: "default" },
      spec: { type: "NodePort", selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
    });
    expect(svc.status, JSON.stringify(svc.body)).toBe(201);
    nodePort = svc.body.spec.ports[0].nodePort; // allocated by the API server
    expect(nodePort).toBeGreaterThanOrEqual(30000);
    expect(
      (await api("POST", "/apis/apps/v1/namespaces/default/deployments", webDeployment("web-a", "agent-a", ports["web-a"]))).status,
    ).toBe(201);
    expect(
      (await api("POST", "/apis/apps/v1/namespaces/default/deployments", webDeployment("web-b", "agent-b", ports["web-b"]))).status,
    ).toBe(201);

    await eventually("both pods ready in the Endpoints", async () => {
      const ep = (await api("GET", "/api/v1/namespaces/default/endpoints/web")).body;
      const got = readyIPsAndPorts(ep).sort();
      return got.length === 2 && got[0] === `agent-a:${ports["web-a"]}` && got[1] === `agent-b:${ports["web-b"]}`;
    });
    // Node A's nodePort: round robin over its own pod and node B's (relayed).
    const seen = await eventually(
      "answers from both pods through node A's nodePort",
      async () => {
        const names = new Set<string>();
        for (let i = 0; i < 6; i++) names.add(await get(NODE_ADDRESS["agent-a"], nodePort));
        return names.size === 2 && names;
      },
      30_000,
    ).catch((e) => {
      throw new Error(
        `${e.message}\n--- agent-a ---\n${logs.get("agent-a")?.join("").slice(-3000)}\n--- agent-b ---\n${logs.get("agent-b")?.join("").slice(-3000)}`,
      );
    });
    expect([...seen].sort()).toEqual(["web-a", "web-b"]);
    // And node B's.
    const names = new Set<string>();
    for (let i = 0; i < 6; i++) names.add(await get(NODE_ADDRESS["agent-b"], nodePort));
    expect([...names].sort()).toEqual(["web-a", "web-b"]);
    // A client that half-closes after its request still gets the whole answer, from the
    // local pod and from the relayed one (the half-close crosses the tunnels).
    const halfClosed = new Set<string>();
    for (let i = 0; i < 6; i++) halfClosed.add(await requestThenHalfClose(NODE_ADDRESS["agent-a"], nodePort));
    expect([...halfClosed].sort()).toEqual(["web-a", "web-b"]);
  });

  it("stops sending traffic to a pod that turns unready", async () => {
    // The pod on node B fails its readiness probe from now on.
    const hostIP = (await api("GET", "/api/v1/namespaces/default/endpoints/web")).body.subsets.flatMap((s: any) => s.addresses)[0].ip;
    expect(await get(hostIP, ports["web-b"], "/unready")).toBe("ok");
    await eventually("web-b not ready in the Endpoints", async () => {
      const ep = (await api("GET", "/api/v1/namespaces/default/endpoints/web")).body;
      return readyIPsAndPorts(ep).join() === `agent-a:${ports["web-a"]}`;
    });
    // Once the agents have the Endpoints update, every new connection goes to web-a.
    await eventually("only web-a answers", async () => {
      for (let i = 0; i < 6; i++) if ((await get(NODE_ADDRESS["agent-a"], nodePort)) !== "web-a") return false;
      for (let i = 0; i < 6; i++) if ((await get(NODE_ADDRESS["agent-b"], nodePort)) !== "web-a") return false;
      return true;
    });
  });

  it("gives a pod started later the service's env vars, pointing at the node's listener", async () => {
    const script = `
const http = require("http");
const { WEB_SERVICE_HOST: host, WEB_SERVICE_PORT: port } = process.env;
console.log("env", host, port, process.env.WEB_SERVICE_PORT_HTTP, process.env.WEB_PORT_80_TCP, process.env.KUBERNETES_SERVICE_HOST === undefined);
const ask = (n) => http.get({ host, port, path: "/", agent: false }, (r) => { let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => console.log("answer", b)); })
  .on("error", (e) => (n > 0 ? setTimeout(() => ask(n - 1), 500) : console.log("failed", e.message)));
ask(20);
setInterval(() => {}, 1000);
`;
    const pod = await api("POST", "/api/v1/namespaces/default/pods", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "client", namespace: "default" },
      spec: {
        nodeSelector: { "kubernetes.io/hostname": "agent-b" },
        terminationGracePeriodSeconds: 1,
        containers: [{ name: "client", image: "node", command: [NODE, "-e", script] }],
      },
    });
    expect(pod.status).toBe(201);
    const uid = pod.body.metadata.uid;
    const logFile = join(dir, "agent-b", "logs", uid, "client", "0.log");
    const out = await eventually("the client's answer", async () => {
      const text = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
      return /answer|failed/.test(text) && text;
    });
    const env = /env (\S+) (\d+) (\d+) (\S+)/.exec(out);
    expect(env, out).not.toBeNull();
    const [, host, port, named, link] = env!;
    expect(host).toBe("127.0.0.1"); // the process runtime's service proxy address
    expect(named).toBe(port);
    expect(link).toBe(`tcp://127.0.0.1:${port}`);
    expect(out).toContain("answer web-a");
  });
});
