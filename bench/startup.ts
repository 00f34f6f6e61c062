// Pod startup benchmark (npm run bench:startup): how long a Deployment's pods take to be
// Running and Ready on real node agents. Starts the control plane (Miniflare/workerd,
// fresh temp state dir, HTTPS with its self-signed certificate), creates a join token with
// the CLI, starts N node agents as separate processes (`node node-agent/main.ts`, the way a
// user does), waits for their Nodes to be Ready, opens a watch on the namespace's pods and
// one on its events, creates one Deployment of M replicas, and records per pod when the
// watch first saw it (ADDED), when it was bound, when its container was started (the
// agent's "Started" event arriving on the event watch) and the watch event in which
// status.phase became Running and the Ready condition True.
//
// Latency is measured from when the watch first saw the pod (its creationTimestamp has
// only 1 s resolution) and from the Deployment's create request. Memory: VmRSS of every
// agent process from /proc/<pid>/status, sampled before the rollout (idle, no pods),
// during it, and while idle after it.
//
// Not a test: it prints figures. Loopback only, every phase bounded in time, everything it
// starts (agents, their containers with --runtime process, the control plane) is stopped
// and its temp dir removed at the end.
//
//   node bench/startup.ts [--agents 10] [--replicas 100] [--runtime fake|process] [--bundle]
//                         [--wait-idle 60] [--timeout 120] [--max-seconds 600] [--json] [--verbose]
//
// --bundle          run the agents from the esbuild bundle (scripts/build-agent.ts, built into
//                   the temp dir) instead of node-agent/main.ts: no TypeScript stripping at
//                   run time, which is most of a Node process's memory
// --agent-node-options "..."   node flags for the agent processes, e.g. "--max-semi-space-size=1"
// --wait-idle S     before the rollout, wait up to S s for the machine to be idle (other
//                   processes on a shared machine skew the figures; their share is printed)
// --timeout S       how long to wait for all pods to be Running and Ready after the create
// --max-seconds S   watchdog for the whole run
// --verbose         the agents' and workerd's own output to stderr
//
// Targets: the Kubernetes pod startup SLO (p99 <= 5 s, creation to Running observed
// through a watch, image pulls excluded), ours (p99 <= 1 s), and under 60 MB of resident
// memory per agent.

import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent as UndiciAgent, request as undiciRequest } from "undici";
import { createJoinToken, kubeconfigYAML, spawnAgent, startControlPlane } from "../scripts/control-plane.ts";
import {
  benchMain,
  CpuMeter,
  type CpuReport,
  findDescendants,
  fmtMs,
  type LatencySummary,
  nowMs,
  procCpuSeconds,
  sleep,
  summarize,
  waitIdle,
} from "./lib.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const NS = "bench-startup";
const DEPLOYMENT = "startup";
const SLO_P99_MS = 5000;
const TARGET_P99_MS = 1000;
const TARGET_RSS_MB = 60;

interface Options {
  agents: number;
  replicas: number;
  runtime: "fake" | "process";
  bundle: boolean;
  /** Extra node options for the agent processes (e.g. "--max-semi-space-size=1"). */
  agentNodeOptions: string[];
  waitIdle: number;
  timeoutSeconds: number;
  maxSeconds: number;
  json: boolean;
  verbose: boolean;
}

function log(msg: string): void {
  process.stderr.write(`[bench:startup ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}

// =================================================================== helpers

/**
 * VmRSS of a process and its RssAnon part (private memory: the heap and the rest; VmRSS also
 * counts the pages of the node binary it touched, which all agents on a host share), in MB
 * (10^6 bytes); NaN if it is gone.
 */
function rssMB(pid: number): { rss: number; anon: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => {
      const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(status);
      return m ? (Number(m[1]) * 1024) / 1e6 : Number.NaN;
    };
    return { rss: kb("VmRSS"), anon: kb("RssAnon") };
  } catch {
    return { rss: Number.NaN, anon: Number.NaN };
  }
}

class Api {
  readonly url: string;
  readonly token: string;
  readonly dispatcher: UndiciAgent;

  constructor(url: string, token: string, ca: string | undefined) {
    this.url = url;
    this.token = token;
    this.dispatcher = new UndiciAgent({ connect: { ca }, keepAliveTimeout: 60_000, connections: 8 });
  }

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
    const r = await undiciRequest(this.url + path, {
      dispatcher: this.dispatcher,
      method: method as "GET",
      headers: {
        authorization: `Bearer ${this.token}`,
        accept: "application/json",
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await r.body.text();
    let parsed: any = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { text };
    }
    return { status: r.statusCode, body: parsed, text };
  }

  async must(method: string, path: string, body?: unknown): Promise<any> {
    const r = await this.call(method, path, body);
    if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    return r.body;
  }

  /** A watch: onEvent gets every decoded event; close() ends it. */
  async watch(path: string, onEvent: (ev: any, at: number) => void): Promise<{ close(): void; ended: Promise<void> }> {
    const ac = new AbortController();
    const r = await undiciRequest(this.url + path, {
      dispatcher: this.dispatcher,
      method: "GET",
      headers: { authorization: `Bearer ${this.token}`, accept: "application/json" },
      signal: ac.signal,
      headersTimeout: 30_000,
      bodyTimeout: 0,
    });
    if (r.statusCode !== 200) throw new Error(`watch ${path}: HTTP ${r.statusCode} ${(await r.body.text()).slice(0, 300)}`);
    r.body.setEncoding("utf8");
    let buf = "";
    const ended = new Promise<void>((done) => {
      r.body.on("data", (chunk: string) => {
        const at = nowMs();
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line.trim()) continue;
          try {
            onEvent(JSON.parse(line), at);
          } catch (e) {
            log(`bad watch line (${String(e)}): ${line.slice(0, 120)}`);
          }
        }
      });
      r.body.on("end", () => done());
      r.body.on("error", () => done());
      r.body.on("close", () => done());
    });
    return {
      ended,
      close() {
        try {
          ac.abort();
        } catch {
          // already done
        }
        r.body.destroy();
      },
    };
  }

  async close(): Promise<void> {
    await this.dispatcher.destroy().catch(() => {});
  }
}

// =================================================================== pod tracking

interface PodTimes {
  name: string;
  seenAt: number;
  boundAt?: number;
  node?: string;
  /** The agent's events for the pod, when the event watch saw them (first of each reason). */
  pullingEventAt?: number;
  createdEventAt?: number;
  startedEventAt?: number;
  runningAt?: number;
  readyAt?: number;
  /** Status updates seen on the watch (resourceVersion changes after the bind). */
  updates: number;
}

class Tracker {
  readonly pods = new Map<string, PodTimes>();
  running = 0;
  ready = 0;
  events = 0;
  errors: string[] = [];
  /** "<pod>/<reason>" → when the event watch first saw it (events may arrive before the pod). */
  private readonly agentEvents = new Map<string, number>();

  onPod = (ev: any, at: number): void => {
    this.events++;
    if (ev.type === "ERROR") {
      this.errors.push(`pod watch ERROR: ${JSON.stringify(ev.object).slice(0, 200)}`);
      return;
    }
    if (ev.type === "BOOKMARK" || ev.type === "DELETED") return;
    const o = ev.object;
    const name: string = o?.metadata?.name;
    if (!name) return;
    let p = this.pods.get(name);
    if (!p) {
      p = { name, seenAt: at, updates: 0 };
      this.pods.set(name, p);
      this.applyEvents(p);
    } else p.updates++;
    if (o.spec?.nodeName && p.boundAt === undefined) {
      p.boundAt = at;
      p.node = o.spec.nodeName;
    }
    if (o.status?.phase === "Running" && p.runningAt === undefined) {
      p.runningAt = at;
      this.running++;
    }
    const ready = (o.status?.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True");
    if (ready && p.readyAt === undefined) {
      p.readyAt = at;
      this.ready++;
    }
  };

  onEvent = (ev: any, at: number): void => {
    if (ev.type !== "ADDED") return;
    const o = ev.object;
    if (o?.involvedObject?.kind !== "Pod" || !["Pulling", "Created", "Started"].includes(o?.reason)) return;
    const key = `${o.involvedObject.name}/${o.reason}`;
    if (this.agentEvents.has(key)) return;
    this.agentEvents.set(key, at);
    const p = this.pods.get(o.involvedObject.name);
    if (p) this.applyEvents(p);
  };

  private applyEvents(p: PodTimes): void {
    p.pullingEventAt ??= this.agentEvents.get(`${p.name}/Pulling`);
    p.createdEventAt ??= this.agentEvents.get(`${p.name}/Created`);
    p.startedEventAt ??= this.agentEvents.get(`${p.name}/Started`);
  }

  /** Pods Running with Ready True. */
  runningAndReady(): number {
    let n = 0;
    for (const p of this.pods.values()) if (p.runningAt !== undefined && p.readyAt !== undefined) n++;
    return n;
  }
}

// =================================================================== agents

interface AgentProc {
  name: string;
  stateDir: string;
  child: ChildProcess;
  output: string[];
  rss: { before: number[]; during: number[]; after: number[] };
  anon: { before: number[]; during: number[]; after: number[] };
  cpu0: number;
  cpuRollout: number;
}

function startAgent(
  nodeOptions: string[],
  entry: string,
  name: string,
  stateDir: string,
  url: string,
  caFile: string,
  token: string,
  runtime: string,
  verbose: boolean,
): AgentProc {
  const child = spawnAgent({ server: url, name, runtime, stateDir, caFile, joinToken: token, entry, nodeOptions });
  const output: string[] = [];
  const keep = (d: Buffer) => {
    const s = String(d);
    output.push(s);
    if (output.length > 200) output.shift();
    if (verbose) process.stderr.write(s);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return {
    name,
    stateDir,
    child,
    output,
    rss: { before: [], during: [], after: [] },
    anon: { before: [], during: [], after: [] },
    cpu0: 0,
    cpuRollout: 0,
  };
}

/** SIGKILLs what the process runtime started under a state dir (their records hold the pids). */
function killContainers(stateDir: string): number {
  const d = join(stateDir, "process-runtime");
  if (!existsSync(d)) return 0;
  let n = 0;
  for (const f of readdirSync(d)) {
    if (!f.endsWith(".json")) continue;
    try {
      const rec = JSON.parse(readFileSync(join(d, f), "utf8"));
      if (rec.pid && rec.exitCode === undefined) {
        process.kill(-rec.pid, "SIGKILL");
        n++;
      }
    } catch {
      // gone already
    }
  }
  return n;
}

function sample(a: AgentProc, phase: "before" | "during" | "after"): void {
  const m = rssMB(a.child.pid!);
  a.rss[phase].push(m.rss);
  a.anon[phase].push(m.anon);
}

async function stopAgent(a: AgentProc): Promise<void> {
  if (a.child.exitCode !== null || a.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => a.child.once("exit", () => r()));
  a.child.kill("SIGTERM");
  await Promise.race([exited, sleep(3000)]);
  if (a.child.exitCode === null && a.child.signalCode === null) {
    a.child.kill("SIGKILL");
    await Promise.race([exited, sleep(2000)]);
  }
}

// =================================================================== result

interface Result {
  machine: ReturnType<typeof machine>;
  options: Options;
  startSeconds: number;
  agentsReadySeconds: number;
  pods: {
    created: number;
    running: number;
    runningAndReady: number;
    createToAllRunningSeconds: number;
    /** First seen on the watch → Running and Ready observed (the SLO's measure). */
    seenToRunningMs: LatencySummary;
    seenToReadyMs: LatencySummary;
    /** Deployment create request sent → Running and Ready observed. */
    deploymentCreateToRunningMs: LatencySummary;
    perNode: Record<string, number>;
  };
  breakdown: {
    /** Deployment create request → pod first seen (deployment + replicaset controllers). */
    deploymentToSeenMs: LatencySummary;
    /** Pod seen → bound (scheduler). */
    seenToBoundMs: LatencySummary;
    /** Bound → the agent's Started event seen (agent watch delivery, sync, start, event POST). */
    boundToStartedEventMs: LatencySummary;
    /** Started event → Running seen (rest of the agent's sync batch, status PATCH). */
    startedEventToRunningMs: LatencySummary;
    /** Bound → Running seen (all of the agent's share). */
    boundToRunningMs: LatencySummary;
    /** Bound → Running of the first pod to run on each node (no queue ahead of it). */
    firstOnNodeBoundToRunningMs: LatencySummary;
    /** Bound → the agent's first event (Pulling) of the first pod bound on each node: watch delivery + one event POST. */
    firstOnNodeBoundToPullingMs: LatencySummary;
    /** Created → Started event of a pod: one awaited event POST of the agent, as the watch sees it. */
    createdToStartedEventMs: LatencySummary;
    /** Between consecutive Started events on one node: one pod's start step on an agent. */
    startStepOnNodeMs: LatencySummary;
    /** Between consecutive pods turning Running on one node: one status PATCH of an agent. */
    statusStepOnNodeMs: LatencySummary;
    /** Per pod: other pods of its node started after it and before its Running status (its report waited behind them). */
    startsBeforeOwnReport: LatencySummary;
    statusUpdatesPerPod: number;
  };
  memory: {
    agents: {
      name: string;
      pid: number;
      beforeMB: number;
      maxDuringMB: number;
      idleAfterMB: number;
      /** RssAnon: the agent's private memory (VmRSS minus shared file pages such as the node binary). */
      anonBeforeMB: number;
      anonMaxMB: number;
      anonIdleAfterMB: number;
      rolloutCpuSeconds: number;
    }[];
    anonMaxMB: number;
    maxMB: number;
    idleAfterMaxMB: number;
    beforeMaxMB: number;
  };
  workerdCpuSeconds: number;
  /** Machine load just before the rollout (after --wait-idle), and CPU during the rollout. */
  idleBefore: { busyPct: number; waitedSeconds: number } | null;
  cpu: { wallSeconds: number; workerdPct: number; agentsPct: number; benchPct: number; otherProcessesPct: number; machineBusyPct: number };
  watch: { events: number; errors: string[] };
  targets: {
    sloP99Ms: number;
    sloMet: boolean;
    ourP99Ms: number;
    ourMet: boolean;
    rssMB: number;
    rssMet: boolean;
    rssIdleMet: boolean;
  };
}

function machine() {
  const ver = (...paths: string[]) => {
    for (const p of paths) {
      try {
        return JSON.parse(readFileSync(join(ROOT, "node_modules", p, "package.json"), "utf8")).version as string;
      } catch {
        // next
      }
    }
    return "?";
  };
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? "?",
    memGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    // The workerd that serves the control plane: miniflare's own when it has one.
    workerd: ver("miniflare/node_modules/workerd", "workerd"),
    miniflare: ver("miniflare"),
  };
}

function parseOptions(): Options | null {
  const { values } = parseArgs({
    options: {
      agents: { type: "string", default: "10" },
      replicas: { type: "string", default: "100" },
      runtime: { type: "string", default: "fake" },
      bundle: { type: "boolean", default: false },
      "agent-node-options": { type: "string", default: "" },
      "wait-idle": { type: "string", default: "60" },
      timeout: { type: "string", default: "120" },
      "max-seconds": { type: "string", default: "600" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    const lines = readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n");
    const end = lines.findIndex((l) => !l.startsWith("//"));
    process.stdout.write(lines.slice(0, end).join("\n") + "\n");
    return null;
  }
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got "${v}"`);
    return n;
  };
  const runtime = values.runtime!;
  if (runtime !== "fake" && runtime !== "process") throw new Error(`--runtime must be fake or process, got "${runtime}"`);
  return {
    agents: int("agents", values.agents!, 1, 50),
    replicas: int("replicas", values.replicas!, 1, 2000),
    runtime,
    bundle: values.bundle!,
    agentNodeOptions: values["agent-node-options"]!.split(/\s+/).filter(Boolean),
    waitIdle: int("wait-idle", values["wait-idle"]!, 0, 600),
    timeoutSeconds: int("timeout", values.timeout!, 5, 3600),
    maxSeconds: int("max-seconds", values["max-seconds"]!, 30, 7200),
    json: values.json!,
    verbose: values.verbose!,
  };
}

// =================================================================== main

const cleanups: (() => Promise<void>)[] = [];
async function cleanup(): Promise<void> {
  while (cleanups.length) await cleanups.pop()!().catch((e) => log(`cleanup: ${String(e)}`));
}

function deployment(o: Options): any {
  const labels = { app: DEPLOYMENT };
  const container =
    o.runtime === "process"
      ? { name: "main", image: "busybox", command: ["sh", "-c", "exec sleep 3600"] }
      : { name: "main", image: "registry.k8s.io/pause:3.10" };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: DEPLOYMENT, namespace: NS },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { terminationGracePeriodSeconds: 2, containers: [container] } },
    },
  };
}

async function run(o: Options): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "kubeflare-bench-startup-"));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const cpDir = join(dir, "cp");

  log(`starting the control plane (Miniflare, TLS) in ${cpDir} ...`);
  let t = nowMs();
  const cp = await startControlPlane({ stateDir: cpDir, port: 0, tls: true, cronIntervalMs: 0, verbose: o.verbose });
  let cpStopped = false;
  cleanups.push(async () => {
    if (!cpStopped) {
      cpStopped = true;
      await cp.stop();
    }
  });
  const startSeconds = (nowMs() - t) / 1000;
  const workerdPids = findDescendants(process.pid, "workerd");
  log(`control plane at ${cp.url} in ${startSeconds.toFixed(1)} s (workerd pid ${workerdPids.join(",") || "?"})`);

  const api = new Api(cp.url, cp.token, cp.caCert);
  cleanups.push(() => api.close());
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigYAML(cp.url, cp.token, cp.caCert), { mode: 0o600 });
  const joinToken = createJoinToken(kubeconfig);

  // ---------------------------------------------------------------- agents
  let entry = join(ROOT, "node-agent", "main.ts");
  if (o.bundle) {
    const { buildAgent } = await import("../scripts/build-agent.ts");
    const b = await buildAgent(join(dir, "kubeflare-agent.mjs"));
    entry = b.outfile;
    log(`built the agent bundle ${entry} (${(b.bytes / 1024).toFixed(0)} KiB) in ${b.ms.toFixed(0)} ms`);
  }
  log(`starting ${o.agents} agents (${o.runtime} runtime, ${o.bundle ? "bundle" : "node-agent/main.ts"}) ...`);
  t = nowMs();
  const agents: AgentProc[] = [];
  const caFile = join(cpDir, "tls.crt");
  for (let i = 0; i < o.agents; i++) {
    const name = `startup-node-${String(i).padStart(2, "0")}`;
    const stateDir = join(dir, "agents", name);
    mkdirSync(stateDir, { recursive: true });
    agents.push(startAgent(o.agentNodeOptions, entry, name, stateDir, cp.url, caFile, joinToken, o.runtime, o.verbose));
  }
  cleanups.push(async () => {
    await Promise.all(agents.map(stopAgent));
    if (o.runtime === "process") {
      const n = agents.reduce((a, ag) => a + killContainers(ag.stateDir), 0);
      if (n) log(`killed ${n} leftover container processes`);
    }
  });
  const names = new Set(agents.map((a) => a.name));
  const readyDeadline = nowMs() + 90_000;
  for (;;) {
    const dead = agents.find((a) => a.child.exitCode !== null);
    if (dead) throw new Error(`agent ${dead.name} exited with ${dead.child.exitCode}: ${dead.output.join("").slice(-1000)}`);
    const nodes = (await api.must("GET", "/api/v1/nodes")).items ?? [];
    const ready = nodes.filter(
      (n: any) => names.has(n.metadata.name) && n.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"),
    ).length;
    if (ready === o.agents) break;
    if (nowMs() > readyDeadline) throw new Error(`only ${ready}/${o.agents} nodes Ready after 90 s`);
    await sleep(200);
  }
  const agentsReadySeconds = (nowMs() - t) / 1000;
  log(`${o.agents} nodes Ready ${agentsReadySeconds.toFixed(1)} s after the agents were started`);

  // Idle, no pods: let start-up work settle, then sample.
  await sleep(3000);
  for (let s = 0; s < 3; s++) {
    for (const a of agents) sample(a, "before");
    await sleep(500);
  }

  // ---------------------------------------------------------------- watches
  await api.must("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
  const tracker = new Tracker();
  const podList = await api.must("GET", `/api/v1/namespaces/${NS}/pods`);
  const podWatch = await api.watch(
    `/api/v1/namespaces/${NS}/pods?watch=true&resourceVersion=${podList.metadata.resourceVersion}&timeoutSeconds=${o.maxSeconds}`,
    tracker.onPod,
  );
  cleanups.push(async () => podWatch.close());
  const evList = await api.must("GET", `/api/v1/namespaces/${NS}/events`);
  const evWatch = await api.watch(
    `/api/v1/namespaces/${NS}/events?watch=true&resourceVersion=${evList.metadata.resourceVersion}&timeoutSeconds=${o.maxSeconds}`,
    tracker.onEvent,
  );
  cleanups.push(async () => evWatch.close());

  // ---------------------------------------------------------------- rollout
  let idleBefore: Result["idleBefore"] = null;
  if (o.waitIdle > 0) {
    // Other processes on a shared machine skew the figures: wait (bounded) for a quiet moment.
    const idle = await waitIdle(o.waitIdle, 30);
    idleBefore = { busyPct: idle.busyPct, waitedSeconds: idle.waitedSeconds };
    log(`machine busy ${idle.busyPct.toFixed(0)}% of one core after waiting ${idle.waitedSeconds.toFixed(0)} s for it to be idle`);
  }
  const meter = new CpuMeter([...workerdPids, ...agents.map((a) => a.child.pid!)]);
  meter.start();
  for (const a of agents) a.cpu0 = procCpuSeconds(a.child.pid!);
  const workerdCpu0 = workerdPids.reduce((s, p) => s + (procCpuSeconds(p) || 0), 0);
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const a of agents) sample(a, "during");
      await sleep(100);
    }
  })();
  log(`creating Deployment ${NS}/${DEPLOYMENT} with ${o.replicas} replicas ...`);
  const createdAt = nowMs();
  await api.must("POST", `/apis/apps/v1/namespaces/${NS}/deployments`, deployment(o));
  const progress = setInterval(
    () => log(`  ${tracker.pods.size} pods seen, ${tracker.running} Running, ${tracker.runningAndReady()} Running and Ready`),
    5000,
  );
  const deadline = createdAt + o.timeoutSeconds * 1000;
  while (tracker.runningAndReady() < o.replicas && nowMs() < deadline) await sleep(10);
  clearInterval(progress);
  const allAt = nowMs();
  sampling = false;
  const cpu = meter.stop();
  await sampler;
  for (const a of agents) a.cpuRollout = procCpuSeconds(a.child.pid!) - a.cpu0;
  const workerdCpuSeconds = workerdPids.reduce((s, p) => s + (procCpuSeconds(p) || 0), 0) - workerdCpu0;
  const done = tracker.runningAndReady();
  log(`${done}/${o.replicas} Running and Ready ${((allAt - createdAt) / 1000).toFixed(2)} s after the create request`);

  // Idle after the rollout: status loops and leases only.
  await sleep(3000);
  for (let s = 0; s < 5; s++) {
    for (const a of agents) sample(a, "after");
    await sleep(1000);
  }
  podWatch.close();
  evWatch.close();

  // ---------------------------------------------------------------- figures
  const pods = [...tracker.pods.values()];
  const full = pods.filter((p) => p.runningAt !== undefined && p.readyAt !== undefined);
  const rr = (p: PodTimes) => Math.max(p.runningAt!, p.readyAt!);
  let lastRunning = 0;
  for (const p of full) lastRunning = Math.max(lastRunning, rr(p));
  const perNode: Record<string, number> = {};
  const firstOnNode = new Map<string, PodTimes>();
  for (const p of pods) {
    if (!p.node) continue;
    perNode[p.node] = (perNode[p.node] ?? 0) + 1;
    const f = firstOnNode.get(p.node);
    if (p.boundAt !== undefined && (!f || p.boundAt < f.boundAt!)) firstOnNode.set(p.node, p);
  }
  const withStarted = full.filter((p) => p.startedEventAt !== undefined && p.boundAt !== undefined);
  // Per node: the steps of the agent's sync batch, from the order its events and statuses arrived.
  const startSteps: number[] = [];
  const statusSteps: number[] = [];
  const startsBefore: number[] = [];
  for (const node of Object.keys(perNode)) {
    const mine = pods.filter((p) => p.node === node);
    const starts = mine
      .map((p) => p.startedEventAt)
      .filter((x): x is number => x !== undefined)
      .sort((a, b) => a - b);
    const runs = mine
      .map((p) => p.runningAt)
      .filter((x): x is number => x !== undefined)
      .sort((a, b) => a - b);
    for (let i = 1; i < starts.length; i++) startSteps.push(starts[i] - starts[i - 1]);
    for (let i = 1; i < runs.length; i++) statusSteps.push(runs[i] - runs[i - 1]);
    for (const p of mine) {
      if (p.startedEventAt === undefined || p.runningAt === undefined) continue;
      startsBefore.push(starts.filter((s) => s > p.startedEventAt! && s < p.runningAt!).length);
    }
  }
  const memAgents = agents.map((a) => {
    const max = (xs: number[]) => {
      const ok = xs.filter(Number.isFinite);
      return ok.length ? Math.max(...ok) : Number.NaN;
    };
    const during = max([...a.rss.during, ...a.rss.after]);
    return {
      name: a.name,
      pid: a.child.pid!,
      beforeMB: max(a.rss.before),
      maxDuringMB: during,
      idleAfterMB: max(a.rss.after),
      anonBeforeMB: max(a.anon.before),
      anonMaxMB: max([...a.anon.during, ...a.anon.after]),
      anonIdleAfterMB: max(a.anon.after),
      rolloutCpuSeconds: a.cpuRollout,
    };
  });
  // NaN when any agent could not be sampled (no /proc, or it died): then no target is met.
  const maxOf = (xs: number[]) => (xs.length && xs.every(Number.isFinite) ? Math.max(...xs) : Number.NaN);
  const seenToRunning = summarize(full.map((p) => rr(p) - p.seenAt));
  const maxMB = maxOf(memAgents.map((m) => m.maxDuringMB));
  const idleAfterMaxMB = maxOf(memAgents.map((m) => m.idleAfterMB));
  return {
    machine: machine(),
    options: o,
    startSeconds,
    agentsReadySeconds,
    pods: {
      created: pods.length,
      running: tracker.running,
      runningAndReady: done,
      createToAllRunningSeconds: done === o.replicas ? (lastRunning - createdAt) / 1000 : Number.NaN,
      seenToRunningMs: seenToRunning,
      seenToReadyMs: summarize(full.map((p) => p.readyAt! - p.seenAt)),
      deploymentCreateToRunningMs: summarize(full.map((p) => rr(p) - createdAt)),
      perNode,
    },
    breakdown: {
      deploymentToSeenMs: summarize(pods.map((p) => p.seenAt - createdAt)),
      seenToBoundMs: summarize(pods.filter((p) => p.boundAt !== undefined).map((p) => p.boundAt! - p.seenAt)),
      boundToStartedEventMs: summarize(withStarted.map((p) => p.startedEventAt! - p.boundAt!)),
      startedEventToRunningMs: summarize(withStarted.map((p) => rr(p) - p.startedEventAt!)),
      boundToRunningMs: summarize(full.filter((p) => p.boundAt !== undefined).map((p) => rr(p) - p.boundAt!)),
      firstOnNodeBoundToRunningMs: summarize(
        [...firstOnNode.values()].filter((p) => p.runningAt !== undefined && p.readyAt !== undefined).map((p) => rr(p) - p.boundAt!),
      ),
      firstOnNodeBoundToPullingMs: summarize(
        [...firstOnNode.values()].filter((p) => p.pullingEventAt !== undefined).map((p) => p.pullingEventAt! - p.boundAt!),
      ),
      createdToStartedEventMs: summarize(
        pods
          .filter((p) => p.createdEventAt !== undefined && p.startedEventAt !== undefined)
          .map((p) => p.startedEventAt! - p.createdEventAt!),
      ),
      startStepOnNodeMs: summarize(startSteps),
      statusStepOnNodeMs: summarize(statusSteps),
      startsBeforeOwnReport: summarize(startsBefore),
      statusUpdatesPerPod: pods.reduce((a, p) => a + p.updates, 0) / Math.max(1, pods.length),
    },
    memory: {
      agents: memAgents,
      anonMaxMB: maxOf(memAgents.map((m) => m.anonMaxMB)),
      maxMB,
      idleAfterMaxMB,
      beforeMaxMB: maxOf(memAgents.map((m) => m.beforeMB)),
    },
    workerdCpuSeconds,
    idleBefore,
    cpu: cpuSummary(cpu, workerdPids),
    watch: { events: tracker.events, errors: tracker.errors.slice(0, 5) },
    targets: {
      sloP99Ms: SLO_P99_MS,
      sloMet: done === o.replicas && seenToRunning.p99 <= SLO_P99_MS,
      ourP99Ms: TARGET_P99_MS,
      ourMet: done === o.replicas && seenToRunning.p99 <= TARGET_P99_MS,
      rssMB: TARGET_RSS_MB,
      rssMet: maxMB < TARGET_RSS_MB,
      rssIdleMet: idleAfterMaxMB < TARGET_RSS_MB,
    },
  };
}

function cpuSummary(c: CpuReport, workerdPids: number[]): Result["cpu"] {
  const w = new Set(workerdPids);
  const sum = (f: (pid: number) => boolean) =>
    c.procs.filter((p) => f(p.pid)).reduce((a, p) => a + (Number.isFinite(p.cpuPct) ? p.cpuPct : 0), 0);
  return {
    wallSeconds: c.wallSeconds,
    workerdPct: sum((p) => w.has(p)),
    agentsPct: sum((p) => !w.has(p)),
    benchPct: c.benchProcessCpuPct,
    otherProcessesPct: c.otherProcessesPct,
    machineBusyPct: c.machineBusyPct,
  };
}

function lat(s: LatencySummary): string {
  return `p50 ${fmtMs(s.p50)}  p90 ${fmtMs(s.p90)}  p99 ${fmtMs(s.p99)}  max ${fmtMs(s.max)} ms`;
}

function report(r: Result): string {
  const o = r.options;
  const p = r.pods;
  const b = r.breakdown;
  const m = r.memory;
  const yes = (v: boolean) => (v ? "MET" : "NOT MET");
  const out: string[] = [];
  out.push("");
  out.push("==================== pod startup benchmark ====================");
  out.push(
    `machine   ${r.machine.nproc} CPUs (${r.machine.cpu}), ${r.machine.memGiB} GiB, node ${r.machine.node}, workerd ${r.machine.workerd}, miniflare ${r.machine.miniflare}`,
  );
  out.push(
    `config    ${o.agents} agents (${o.runtime} runtime, one process each, ${o.bundle ? "the esbuild bundle" : "node node-agent/main.ts"}${o.agentNodeOptions.length ? `, node ${o.agentNodeOptions.join(" ")}` : ""}), 1 Deployment of ${o.replicas} replicas`,
  );
  out.push(
    `start     control plane ${r.startSeconds.toFixed(1)} s; ${o.agents} nodes Ready ${r.agentsReadySeconds.toFixed(1)} s after starting the agents`,
  );
  out.push(
    `pods      ${p.runningAndReady}/${o.replicas} Running and Ready; all of them ${Number.isFinite(p.createToAllRunningSeconds) ? `${p.createToAllRunningSeconds.toFixed(2)} s` : "never"} after the Deployment's create request; per node ${Object.entries(
      p.perNode,
    )
      .sort()
      .map(([, n]) => n)
      .join("/")}`,
  );
  out.push(`STARTUP   pod seen → Running+Ready  ${lat(p.seenToRunningMs)}`);
  out.push(`          Deployment create → Running+Ready  ${lat(p.deploymentCreateToRunningMs)}`);
  out.push("where     (times at the bench's watches)");
  out.push(`          Deployment create → pod seen (controllers)       ${lat(b.deploymentToSeenMs)}`);
  out.push(`          pod seen → bound (scheduler)                     ${lat(b.seenToBoundMs)}`);
  out.push(`          bound → Started event (agent watch + start)      ${lat(b.boundToStartedEventMs)}`);
  out.push(`          Started event → Running+Ready (status report)    ${lat(b.startedEventToRunningMs)}`);
  out.push(`          bound → Running+Ready (agent's share)            ${lat(b.boundToRunningMs)}`);
  out.push(`          same, first pod on each node                     ${lat(b.firstOnNodeBoundToRunningMs)}`);
  out.push("agent     (its sync batch, per node, from the order of its events and statuses)");
  out.push(`          bound → first event (Pulling), first pod on a node ${lat(b.firstOnNodeBoundToPullingMs)}`);
  out.push(`          one event POST (Created → Started event)         ${lat(b.createdToStartedEventMs)}`);
  out.push(`          one pod's start step (Started → next Started)    ${lat(b.startStepOnNodeMs)}`);
  out.push(`          one status PATCH (Running → next Running)        ${lat(b.statusStepOnNodeMs)} (the tail: gaps between sync batches)`);
  const q = b.startsBeforeOwnReport;
  out.push(`          pods started after a pod and before its status report: p50 ${q.p50}  p90 ${q.p90}  max ${q.max}`);
  out.push(`          ${b.statusUpdatesPerPod.toFixed(1)} updates per pod seen on the watch after ADDED`);
  out.push(
    `memory    agent VmRSS: before the rollout max ${m.beforeMaxMB.toFixed(1)} MB; max during/after ${m.maxMB.toFixed(1)} MB; idle after the rollout max ${m.idleAfterMaxMB.toFixed(1)} MB`,
  );
  for (const a of m.agents)
    out.push(
      `          ${a.name} pid ${a.pid}: VmRSS before ${a.beforeMB.toFixed(1)}, max ${a.maxDuringMB.toFixed(1)}, idle after ${a.idleAfterMB.toFixed(1)} MB (RssAnon ${a.anonBeforeMB.toFixed(1)} / ${a.anonMaxMB.toFixed(1)} / ${a.anonIdleAfterMB.toFixed(1)}); rollout CPU ${a.rolloutCpuSeconds.toFixed(2)} s`,
    );
  out.push(
    `          RssAnon (private; VmRSS also counts the node binary's pages, shared by all agents on a host) max ${m.anonMaxMB.toFixed(1)} MB`,
  );
  const c = r.cpu;
  out.push(
    `cpu       during the rollout (${c.wallSeconds.toFixed(1)} s), % of one core: workerd ${c.workerdPct.toFixed(0)}%, agents ${c.agentsPct.toFixed(0)}%, bench ${c.benchPct.toFixed(0)}%, other processes ~${c.otherProcessesPct.toFixed(0)}%; machine ${c.machineBusyPct.toFixed(0)}% of ${r.machine.nproc * 100}%`,
  );
  if (r.idleBefore)
    out.push(
      `          before the rollout the machine was ${r.idleBefore.busyPct.toFixed(0)}% busy (waited ${r.idleBefore.waitedSeconds.toFixed(0)} s for < 30%)`,
    );
  if (r.watch.errors.length) out.push(`watch     errors: ${r.watch.errors.join(" | ")}`);
  out.push(
    `target    Kubernetes SLO p99 <= ${r.targets.sloP99Ms / 1000} s: ${yes(r.targets.sloMet)} (p99 ${fmtMs(p.seenToRunningMs.p99)} ms)`,
  );
  out.push(`target    ours p99 <= ${r.targets.ourP99Ms / 1000} s: ${yes(r.targets.ourMet)}`);
  out.push(
    `target    agent RSS < ${r.targets.rssMB} MB: peak ${yes(r.targets.rssMet)} (${m.maxMB.toFixed(1)} MB), idle ${yes(r.targets.rssIdleMet)} (${m.idleAfterMaxMB.toFixed(1)} MB)`,
  );
  out.push("===============================================================");
  return out.join("\n");
}

benchMain({ parse: parseOptions, run, report, cleanup, log, cleanupGraceMs: 20_000 });
