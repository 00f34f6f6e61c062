// Tunnel benchmark (npm run bench:tunnel): what the node tunnel costs. Starts the control
// plane (Miniflare/workerd, HTTPS, fresh temp state dir) and one node agent (process
// runtime) that only dials out, runs a TCP and an HTTP server in this process on the
// pod's address (the process runtime's pods share the host's network), and measures the
// same transfers three ways:
//
//   direct        loopback straight to the servers (the baseline)
//   port-forward  the real `kubectl port-forward`: kubectl → WebSocket (SPDY tunnelled)
//                 → Worker → NodeTunnelDO → agent's tunnel → agent → TCP server
//   edge LB       HTTPS to the Worker's /lb/<ns>/<svc>/ → NodeTunnelDO → agent → HTTP server
//
// Figures: throughput (MB/s) of one download, and latency of small round trips (a 1-byte
// echo over one TCP connection; sequential keep-alive GETs), with what the tunnel adds.
//
// Not a test: it prints figures. Loopback only; everything it starts is stopped and its
// temp dir removed at the end.
//
//   node bench/tunnel.ts [--mb 64] [--round-trips 500] [--max-seconds 300] [--json] [--verbose]

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Agent as HttpAgent, fetch as undiciFetch } from "undici";
import { killRecordedContainers } from "../node-agent/runtime/process.ts";
import { type ControlPlane, createJoinToken, kubeconfigYAML, spawnAgent, startControlPlane } from "../scripts/control-plane.ts";
import { benchMain, findDescendants, fmtMs, freePort, type LatencySummary, nowMs, procCpuSeconds, sleep, summarize } from "./lib.ts";

interface Opts {
  mb: number;
  roundTrips: number;
  maxSeconds: number;
  json: boolean;
  verbose: boolean;
}

interface PathResult {
  mbPerSec: number;
  latency: LatencySummary;
  /** CPU seconds per MB of the download, by process (this one, workerd, the agent, kubectl). */
  cpuPerMB?: Record<string, number>;
}

interface Result {
  machine: { cpus: number; model: string; memGiB: number; node: string };
  mb: number;
  roundTrips: number;
  tcp: { direct: PathResult; portForward: PathResult };
  http: { direct: PathResult; edgeLB: PathResult };
}

const KUBECTL = "/usr/bin/kubectl";
const log = (m: string) => process.stderr.write(`[bench:tunnel] ${m}\n`);

let cp: ControlPlane | undefined;
let agent: ChildProcess | undefined;
let portForward: ChildProcess | undefined;
let dir: string | undefined;
const servers: (net.Server | http.Server)[] = [];

function parse(): Opts | undefined {
  const { values } = parseArgs({
    options: {
      mb: { type: "string", default: "64" },
      "round-trips": { type: "string", default: "500" },
      "max-seconds": { type: "string", default: "300" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log("node bench/tunnel.ts [--mb 64] [--round-trips 500] [--max-seconds 300] [--json] [--verbose]");
    return undefined;
  }
  return {
    mb: Number(values.mb),
    roundTrips: Number(values["round-trips"]),
    maxSeconds: Number(values["max-seconds"]),
    json: values.json!,
    verbose: values.verbose!,
  };
}

/** CPU seconds of the processes on the path, for one measured transfer. */
function cpuOf(): Record<string, number> {
  const sum = (pids: number[]) => pids.reduce((a, p) => a + (procCpuSeconds(p) || 0), 0);
  return {
    bench: sum([process.pid]),
    workerd: sum(findDescendants(process.pid, "workerd")),
    agent: agent?.pid ? sum([agent.pid]) : 0,
    kubectl: portForward?.pid ? sum([portForward.pid]) : 0,
  };
}

async function metered<T>(mb: number, fn: () => Promise<T>): Promise<{ value: T; cpuPerMB: Record<string, number> }> {
  const c0 = cpuOf();
  const value = await fn();
  const c1 = cpuOf();
  const cpuPerMB: Record<string, number> = {};
  for (const k of Object.keys(c0)) cpuPerMB[k] = (c1[k] - c0[k]) / mb;
  return { value, cpuPerMB };
}

/** TCP server: a first byte "d" asks for `bytes` of data, "e" for an echo. */
function tcpServer(bytes: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, "z");
  const srv = net.createServer((sock) => {
    sock.once("data", (first) => {
      if (first[0] === 0x64) {
        let left = bytes;
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void sock.once("drain", pump);
          }
          sock.end();
        };
        pump();
      } else {
        if (first.length > 1) sock.write(first.subarray(1));
        sock.pipe(sock);
      }
    });
    sock.on("error", () => {});
  });
  servers.push(srv);
  return new Promise((r) => srv.listen(0, "0.0.0.0", () => r((srv.address() as net.AddressInfo).port)));
}

function httpServer(bytes: number): Promise<number> {
  const big = Buffer.alloc(bytes, "y");
  const srv = http.createServer((req, res) => {
    if (req.url === "/big") {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(big.length) });
      res.end(big);
    } else {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
    }
  });
  servers.push(srv);
  return new Promise((r) => srv.listen(0, "0.0.0.0", () => r((srv.address() as net.AddressInfo).port)));
}

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => resolve(s));
    s.once("error", reject);
  });
}

async function tcpDownload(host: string, port: number, bytes: number): Promise<number> {
  const s = await connect(host, port);
  const t0 = nowMs();
  s.write("d");
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    s.on("data", (d: Buffer) => (got += d.length));
    s.on("end", resolve);
    s.on("error", reject);
  });
  s.destroy();
  if (got !== bytes) throw new Error(`download through ${host}:${port}: got ${got} of ${bytes} bytes`);
  return bytes / 1e6 / ((nowMs() - t0) / 1000);
}

async function tcpEcho(host: string, port: number, n: number): Promise<LatencySummary> {
  const s = await connect(host, port);
  s.setNoDelay(true);
  s.write("e");
  const samples: number[] = [];
  let waiter: (() => void) | null = null;
  s.on("data", () => waiter?.());
  for (let i = 0; i < n + 10; i++) {
    const t0 = nowMs();
    await new Promise<void>((r) => {
      waiter = r;
      s.write("x");
    });
    if (i >= 10) samples.push(nowMs() - t0); // the first few warm the path up
  }
  s.destroy();
  return summarize(samples);
}

async function httpPath(base: string, n: number, bytes: number, dispatcher: HttpAgent): Promise<PathResult> {
  const samples: number[] = [];
  for (let i = 0; i < n + 10; i++) {
    const t0 = nowMs();
    const res = await undiciFetch(`${base}`, { dispatcher });
    const body = await res.text();
    if (res.status !== 200 || body !== "ok") throw new Error(`GET ${base}: ${res.status} ${body.slice(0, 200)}`);
    if (i >= 10) samples.push(nowMs() - t0);
  }
  const { value: mbPerSec, cpuPerMB } = await metered(bytes / 1e6, async () => {
    const t0 = nowMs();
    const res = await undiciFetch(`${base}big`, { dispatcher });
    const got = (await res.arrayBuffer()).byteLength;
    if (got !== bytes) throw new Error(`GET ${base}big: got ${got} of ${bytes} bytes`);
    return bytes / 1e6 / ((nowMs() - t0) / 1000);
  });
  return { mbPerSec, latency: summarize(samples), cpuPerMB };
}

async function api(method: string, path: string, body?: unknown, dispatcher?: HttpAgent): Promise<any> {
  const res = await undiciFetch(cp!.url + path, {
    dispatcher,
    method,
    headers: { authorization: `Bearer ${cp!.token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function run(o: Opts): Promise<Result> {
  if (!existsSync(KUBECTL)) throw new Error(`${KUBECTL} is needed for the port-forward path`);
  const bytes = o.mb * 1e6;
  dir = mkdtempSync(join(tmpdir(), "kf-bench-tunnel-"));
  cp = await startControlPlane({ stateDir: join(dir, "cp"), port: await freePort(), tls: true, cronIntervalMs: 0, verbose: o.verbose });
  const dispatcher = new HttpAgent({ connect: { ca: cp.caCert }, connections: 8 });
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigYAML(cp.url, cp.token, cp.caCert), { mode: 0o600 });
  agent = spawnAgent({
    server: cp.url,
    name: "bench-node",
    runtime: "process",
    stateDir: join(dir, "agent"),
    caFile: join(dir, "cp", "tls.crt"),
    joinToken: createJoinToken(kubeconfig),
    args: ["--no-service-proxy"],
    output: o.verbose ? "inherit" : "ignore",
  });
  const tcpPort = await tcpServer(bytes);
  const httpPort = await httpServer(bytes);
  log(`control plane ${cp.url}; servers tcp :${tcpPort} http :${httpPort}`);
  await api(
    "POST",
    "/api/v1/namespaces/default/pods",
    {
      metadata: { name: "bench", labels: { app: "bench" } },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: "main", image: "none", command: ["sleep", "3600"] }] },
    },
    dispatcher,
  );
  await api(
    "POST",
    "/api/v1/namespaces/default/services",
    {
      metadata: { name: "bench" },
      spec: { type: "LoadBalancer", selector: { app: "bench" }, ports: [{ port: 80, targetPort: httpPort }] },
    },
    dispatcher,
  );
  const pod = await until("pod Running and Ready", async () => {
    const p = await api("GET", "/api/v1/namespaces/default/pods/bench", undefined, dispatcher);
    return p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True") && p;
  });
  const podIP: string = pod.status.podIP;
  await until("the service's endpoint and ingress", async () => {
    const ep = await api("GET", "/api/v1/namespaces/default/endpoints/bench", undefined, dispatcher);
    const svc = await api("GET", "/api/v1/namespaces/default/services/bench", undefined, dispatcher);
    return ep.subsets?.[0]?.addresses?.length && svc.status?.loadBalancer?.ingress?.length;
  });

  const local = await freePort();
  portForward = spawn(KUBECTL, ["--kubeconfig", kubeconfig, "port-forward", "pod/bench", `${local}:${tcpPort}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let pfOut = "";
  portForward.stdout!.on("data", (d) => (pfOut += d));
  portForward.stderr!.on("data", (d) => (pfOut += d));
  await until("kubectl port-forward ready", async () => pfOut.includes("Forwarding from 127.0.0.1"));

  log(`TCP: ${o.mb} MB and ${o.roundTrips} echo round trips, direct to ${podIP} and through kubectl port-forward`);
  const tcpPath = async (host: string, port: number): Promise<PathResult> => {
    const { value: mbPerSec, cpuPerMB } = await metered(o.mb, () => tcpDownload(host, port, bytes));
    return { mbPerSec, cpuPerMB, latency: await tcpEcho(host, port, o.roundTrips) };
  };
  const tcp = { direct: await tcpPath(podIP, tcpPort), portForward: await tcpPath("127.0.0.1", local) };
  log(`HTTP: ${o.roundTrips} GETs and one ${o.mb} MB body, direct and through the edge load balancer`);
  const plain = new HttpAgent({ connections: 8 });
  const http = {
    direct: await httpPath(`http://${podIP}:${httpPort}/`, o.roundTrips, bytes, plain),
    edgeLB: await httpPath(`${cp.url}/lb/default/bench/`, o.roundTrips, bytes, dispatcher),
  };
  const cpu = cpus();
  return {
    machine: { cpus: cpu.length, model: cpu[0]?.model ?? "", memGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    mb: o.mb,
    roundTrips: o.roundTrips,
    tcp,
    http,
  };
}

function report(r: Result): string {
  const row = (name: string, p: PathResult, base?: PathResult) =>
    `  ${name.padEnd(14)} ${p.mbPerSec.toFixed(1).padStart(8)} MB/s   p50 ${fmtMs(p.latency.p50).padStart(6)} ms   p99 ${fmtMs(p.latency.p99).padStart(6)} ms` +
    (base
      ? `   (+${fmtMs(p.latency.p50 - base.latency.p50)} ms p50, ${((p.mbPerSec / base.mbPerSec) * 100).toFixed(1)}% of direct throughput)`
      : "");
  return [
    `machine: ${r.machine.cpus} CPUs (${r.machine.model}), ${r.machine.memGiB} GiB, Node ${r.machine.node}`,
    `TCP, ${r.mb} MB download and ${r.roundTrips} 1-byte echo round trips:`,
    row("direct", r.tcp.direct),
    row("port-forward", r.tcp.portForward, r.tcp.direct),
    `HTTP, ${r.mb} MB body and ${r.roundTrips} sequential GETs (keep-alive):`,
    row("direct", r.http.direct),
    row("edge LB", r.http.edgeLB, r.http.direct),
    "CPU ms per MB of the download, by process:",
    ...(
      [
        ["port-forward", r.tcp.portForward],
        ["edge LB", r.http.edgeLB],
      ] as const
    ).map(
      ([name, p]) =>
        `  ${name.padEnd(14)} ${Object.entries(p.cpuPerMB ?? {})
          .map(([k, v]) => `${k} ${(v * 1000).toFixed(1)}`)
          .join("   ")}`,
    ),
  ].join("\n");
}

async function cleanup(): Promise<void> {
  portForward?.kill("SIGTERM");
  agent?.kill("SIGTERM");
  if (dir) killRecordedContainers(join(dir, "agent", "process-runtime")); // containers outlive their agent
  for (const s of servers) s.close();
  await cp?.stop().catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
}

benchMain({ parse, run, report, cleanup, log });
