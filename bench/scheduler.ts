// Scheduler benchmark (npm run bench:scheduler): how fast pending pods get bound end to
// end. Starts the control plane (Miniflare/workerd, fresh temp state dir), creates N
// Ready nodes through the API (spread over 3 zones), opens a watch on pods, then
// creates M pending pods through the API with C concurrent clients and records, per
// pod, the time from its create request being sent to the watch event in which
// spec.nodeName first appears. Pods have no owner: the scheduler Durable Object is woken
// by the store's commit notifications.
//
// Not a test: it prints figures. Loopback only, every phase bounded in time, everything
// it starts is stopped (and its temp dir removed) at the end.
//
//   node bench/scheduler.ts [--nodes 5000] [--pods 10000] [--concurrency 32]
//                           [--node-concurrency 32] [--timeout 180] [--probes 3]
//                           [--subscribers SCHEDULER,CONTROLLERS] [--wait-idle 60]
//                           [--no-offline] [--timeline] [--max-seconds 900] [--json] [--verbose]
//
// --subscribers     STORE_SUBSCRIBERS for the run: "SCHEDULER" leaves the controller
//                   manager out (its share of the workerd thread), "" leaves the scheduler
//                   out too (nothing binds: the API's own create ceiling).
// --wait-idle S     before the pod phase, wait up to S s for the machine to be idle (other
//                   processes on a shared machine skew the figures; their share is printed).
// --no-offline      skip the in-process breakdown (see below).
// --timeline        print creates/binds per second.
// --verbose         workerd's own console output (the DOs' logs) to stdout.
//
// Where the time goes is measured three ways:
// 1. online, from the watch: binds arrive in runs of consecutive resourceVersions (one
//    run per store.batch of up to 500 binds, or several adjacent ones); the runs, the
//    gaps between them and the delay from a create's reply to the first bind after it
//    show the scheduler's rounds; 1-pod probes on an idle cluster show the fixed cost
//    of one round (notification + sync + snapshot + plan + bind).
// 2. CPU of the workerd process (all Durable Objects and the Worker share one thread).
// 3. offline, in this Node process after the control plane is stopped, with the
//    scheduler's own pure modules (durable-objects/scheduler/*): snapshot build and plan
//    per round, bind preparation (prepareUpdate + encode) per pod, and the whole
//    Scheduler class against the in-memory Store (no RPC, no SQLite).
//
// The node lifecycle controller is given NODE_MONITOR_GRACE_SECONDS=86400: the nodes have
// no kubelets renewing leases (as in kube-scheduler's scheduler_perf, which runs no node
// lifecycle controller at all), so with the default 40 s they would turn NotReady mid-run.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  benchMain,
  CpuMeter,
  type CpuReport,
  findDescendants,
  fmtMs,
  type HttpClient,
  httpClient,
  type LatencySummary,
  nowMs,
  procCpuSeconds,
  type StreamHandle,
  sleep,
  summarize,
  waitIdle,
} from "./lib.ts";

const NS = "bench-sched";
const ZONE_LABEL = "topology.kubernetes.io/zone";
const ZONES = ["zone-a", "zone-b", "zone-c"];
/** The scheduler's BIND_BATCH (durable-objects/scheduler/scheduler.ts). */
const BIND_BATCH = 500;

interface Options {
  nodes: number;
  pods: number;
  concurrency: number;
  nodeConcurrency: number;
  timeoutSeconds: number;
  probes: number;
  subscribers: string;
  waitIdle: number;
  offline: boolean;
  timeline: boolean;
  maxSeconds: number;
  verbose: boolean;
  json: boolean;
}

function log(msg: string): void {
  process.stderr.write(`[bench:scheduler ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}

const rfc3339 = (d = new Date()) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

function nodeName(i: number): string {
  return `node-${String(i).padStart(5, "0")}`;
}

function podName(i: number): string {
  return `sp-${String(i).padStart(6, "0")}`;
}

function nodeObject(i: number, now = rfc3339()): Record<string, any> {
  const name = nodeName(i);
  const res = { cpu: "32", memory: "128Gi", pods: "110" };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", [ZONE_LABEL]: ZONES[i % ZONES.length] } },
    spec: {},
    status: {
      capacity: res,
      allocatable: res,
      conditions: [
        { type: "Ready", status: "True", reason: "KubeletReady", message: "bench node", lastHeartbeatTime: now, lastTransitionTime: now },
      ],
    },
  };
}

function podObject(name: string): Record<string, any> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { app: "bench-sched" } },
    spec: {
      containers: [{ name: "c", image: "registry.k8s.io/pause:3.10", resources: { requests: { cpu: "100m", memory: "128Mi" } } }],
    },
  };
}

/** Runs fn(i) for i in [0, n) with at most `concurrency` in flight. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/** Waits until the workerd processes use less than maxPct of one core over 1 s; returns the seconds waited. */
async function workerdIdle(pids: number[], maxSeconds: number, maxPct: number): Promise<number> {
  const t0 = nowMs();
  const cpu = () => pids.reduce((a, p) => a + (procCpuSeconds(p) || 0), 0);
  while ((nowMs() - t0) / 1000 < maxSeconds) {
    const a = cpu();
    await sleep(1000);
    if (100 * (cpu() - a) < maxPct) break;
  }
  return (nowMs() - t0) / 1000;
}

// =================================================================== pod watch

interface BindRecord {
  rv: number;
  at: number;
}

/** Follows the pod watch: when each pod was first seen (ADDED) and first seen bound. */
class PodTracker {
  readonly addedAt: Float64Array;
  readonly boundAt: Float64Array;
  readonly bindRv: Float64Array;
  readonly nodeOf: string[];
  readonly probeBound = new Map<string, number>();
  bound = 0;
  events = 0;
  errors: string[] = [];
  private buf = "";

  constructor(pods: number) {
    this.addedAt = new Float64Array(pods);
    this.boundAt = new Float64Array(pods);
    this.bindRv = new Float64Array(pods);
    this.nodeOf = new Array(pods);
  }

  onData = (chunk: string): void => {
    this.buf += chunk;
    let i: number;
    while ((i = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      if (line) this.onLine(line);
    }
  };

  private onLine(line: string): void {
    const now = nowMs();
    let ev: any;
    try {
      ev = JSON.parse(line);
    } catch {
      this.errors.push(`unparsable watch line: ${line.slice(0, 120)}`);
      return;
    }
    this.events++;
    if (ev.type === "ERROR") {
      this.errors.push(`watch ERROR: ${JSON.stringify(ev.object).slice(0, 200)}`);
      return;
    }
    if (ev.type === "BOOKMARK") return;
    const o = ev.object;
    const name: string = o?.metadata?.name ?? "";
    const node: string | undefined = o?.spec?.nodeName;
    if (name.startsWith("probe-")) {
      if (node && !this.probeBound.has(name)) this.probeBound.set(name, now);
      return;
    }
    if (!name.startsWith("sp-")) return;
    const idx = Number(name.slice(3));
    if (!(idx >= 0 && idx < this.addedAt.length)) return;
    if (ev.type === "ADDED" && this.addedAt[idx] === 0) this.addedAt[idx] = now;
    if (node && this.boundAt[idx] === 0) {
      this.boundAt[idx] = now;
      this.bindRv[idx] = Number(o.metadata.resourceVersion);
      this.nodeOf[idx] = node;
      this.bound++;
    }
  }
}

// =================================================================== offline breakdown

interface OfflineResult {
  roundSize: number;
  rounds: number;
  snapshotEmptyMs: number;
  snapshotFullMs: number;
  snapshotPerRoundMeanMs: number;
  planPerPodUs: number;
  planTotalMs: number;
  bindPreparePerPodUs: number;
  /** The Scheduler class on the in-memory Store, pods arriving in rounds of roundSize. */
  memoryStore: MemoryStoreRun[];
}

interface MemoryStoreRun {
  roundSize: number;
  podsPerSecond: number;
  syncMs: number;
  scheduleOnceMs: number;
  storeBatchMs: number;
  bound: number;
}

/**
 * The scheduler's costs without workerd, RPC or SQLite, in this Node process (V8 as in
 * workerd): the pure pipeline per round of `roundSize` pods, and the Scheduler class
 * against the in-memory Store, fed in rounds of the same size.
 */
async function offlineBreakdown(nodes: number, pods: number, roundSize: number): Promise<OfflineResult> {
  const { buildSnapshot } = await import("../durable-objects/scheduler/snapshot.ts");
  const { plan } = await import("../durable-objects/scheduler/plan.ts");
  const { Scheduler } = await import("../durable-objects/scheduler/scheduler.ts");
  const { MemoryStore } = await import("../durable-objects/store/memory.ts");
  const { prepareCreate, prepareUpdate } = await import("../workers/api/strategy.ts");
  const { bindPod } = await import("../workers/api/subresources.ts");
  const { encodeObject } = await import("../workers/api/codec.ts");
  const { lookupResource, objectKey } = await import("../workers/shared/resources.ts");
  const PODS = lookupResource("", "v1", "pods")!;
  const NODES = lookupResource("", "v1", "nodes")!;
  const now = new Date();
  const ts = rfc3339(now);
  const uid = (p: string, i: number) => `00000000-0000-4000-8000-${p}${String(i).padStart(11, "0")}`;

  const nodeObjs = Array.from({ length: nodes }, (_, i) => prepareCreate(NODES, nodeObject(i, ts), now, uid("a", i)));
  const podObjs = Array.from({ length: pods }, (_, i) => {
    const p = podObject(podName(i));
    p.metadata.namespace = NS;
    const o = prepareCreate(PODS, p, now, uid("b", i));
    o.metadata.resourceVersion = String(i + 1);
    return o;
  });

  // 1. the pure pipeline, one round per roundSize pods: snapshot of everything bound so
  // far, then plan the round's pods.
  buildSnapshot(nodeObjs, []); // warm-up (JIT)
  let t = performance.now();
  buildSnapshot(nodeObjs, []);
  const snapshotEmptyMs = performance.now() - t;
  const bound: any[] = [];
  let snapMs = 0;
  let planMs = 0;
  let rounds = 0;
  const bindings: { pod: any; node: string }[] = [];
  for (let i = 0; i < pods; i += roundSize) {
    const chunk = podObjs.slice(i, i + roundSize);
    t = performance.now();
    const snap = buildSnapshot(nodeObjs, bound);
    snapMs += performance.now() - t;
    t = performance.now();
    const res = plan(chunk, snap, 1);
    planMs += performance.now() - t;
    rounds++;
    for (const b of res.bindings) {
      bindings.push(b);
      bound.push({ ...b.pod, spec: { ...b.pod.spec, nodeName: b.node } });
    }
  }
  t = performance.now();
  buildSnapshot(nodeObjs, bound);
  const snapshotFullMs = performance.now() - t;

  // 2. bind preparation, as scheduleOnce does it per pod.
  t = performance.now();
  for (const { pod, node } of bindings) {
    const b = prepareUpdate(PODS, pod, bindPod(structuredClone(pod), node, now), "binding");
    delete b.metadata.resourceVersion;
    encodeObject(b);
  }
  const bindPrepareMs = performance.now() - t;

  // 3. the Scheduler class against the in-memory Store, pods arriving in rounds.
  const memoryStoreRun = async (size: number): Promise<MemoryStoreRun> => {
    const store = new MemoryStore();
    for (const n of nodeObjs) await store.create(objectKey(NODES, undefined, n.metadata.name), encodeObject(n));
    const timed = { batch: 0 };
    const wrapped = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === "batch" && typeof v === "function") {
          return async (...args: unknown[]) => {
            const t0 = performance.now();
            try {
              return await v.apply(target, args);
            } finally {
              timed.batch += performance.now() - t0;
            }
          };
        }
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const sched = new Scheduler(wrapped, () => new Date(), 1);
    await sched.sync();
    let syncMs = 0;
    let schedMs = 0;
    let boundN = 0;
    for (let i = 0; i < pods; i += size) {
      for (const p of podObjs.slice(i, i + size)) {
        const { resourceVersion: _rv, ...meta } = p.metadata;
        await store.create(objectKey(PODS, NS, p.metadata.name), encodeObject({ ...p, metadata: meta }));
      }
      let s = performance.now();
      await sched.sync();
      syncMs += performance.now() - s;
      s = performance.now();
      boundN += (await sched.scheduleOnce()).bound;
      schedMs += performance.now() - s;
    }
    return {
      roundSize: size,
      podsPerSecond: boundN / Math.max(1e-9, syncMs / 1000 + schedMs / 1000),
      syncMs,
      scheduleOnceMs: schedMs,
      storeBatchMs: timed.batch,
      bound: boundN,
    };
  };

  const memoryStore: MemoryStoreRun[] = [];
  for (const size of [...new Set([roundSize, BIND_BATCH])]) memoryStore.push(await memoryStoreRun(size));
  return {
    roundSize,
    rounds,
    snapshotEmptyMs,
    snapshotFullMs,
    snapshotPerRoundMeanMs: snapMs / Math.max(1, rounds),
    planPerPodUs: (1000 * planMs) / Math.max(1, pods),
    planTotalMs: planMs,
    bindPreparePerPodUs: (1000 * bindPrepareMs) / Math.max(1, bindings.length),
    memoryStore,
  };
}

// =================================================================== analysis

interface BindRun {
  firstRv: number;
  size: number;
  firstAt: number;
  lastAt: number;
}

/** Maximal runs of consecutive bind revisions: one per store.batch (or adjacent batches). */
function bindRuns(records: BindRecord[]): BindRun[] {
  const sorted = [...records].sort((a, b) => a.rv - b.rv);
  const runs: BindRun[] = [];
  let cur: BindRun | undefined;
  let prevRv = -2;
  for (const r of sorted) {
    if (cur && r.rv === prevRv + 1) {
      cur.size++;
      cur.firstAt = Math.min(cur.firstAt, r.at);
      cur.lastAt = Math.max(cur.lastAt, r.at);
    } else {
      cur = { firstRv: r.rv, size: 1, firstAt: r.at, lastAt: r.at };
      runs.push(cur);
    }
    prevRv = r.rv;
  }
  return runs;
}

interface Result {
  machine: ReturnType<typeof machine>;
  options: Options;
  startSeconds: number;
  nodes: { created: number; errors: number; seconds: number; perSecond: number; latencyMs: LatencySummary; settleSeconds: number };
  probes: { latencyMs: number[] };
  pods: {
    created: number;
    createErrors: number;
    firstError?: string;
    createSeconds: number;
    createsPerSecond: number;
    createLatencyMs: LatencySummary;
    bound: number;
    unbound: number;
    endToEndSeconds: number;
    boundPerSecond: number;
    createToBoundMs: LatencySummary;
    replyToBoundMs: LatencySummary;
    replyToAddedEventMs: LatencySummary;
    bindPhaseSeconds: number;
    bindsPerSecondAfterLastCreate: number | null;
    perZone: Record<string, number>;
    nodesUsed: number;
    maxPodsOnANode: number;
  };
  runs: {
    count: number;
    sizeP50: number;
    sizeMax: number;
    fullBatches: number;
    arrivalSpreadP50Ms: number;
    gapP50Ms: number;
    gapP90Ms: number;
    gapMaxMs: number;
  };
  timeline: { second: number; created: number; bound: number }[];
  watch: { events: number; errors: string[] };
  cpu: CpuReport | null;
  offline: OfflineResult | null;
  target: { podsPerSecond: number; met: boolean };
}

function scheduling(o: Options): boolean {
  return o.subscribers.split(",").includes("SCHEDULER");
}

function machine() {
  const ver = (pkg: string) => {
    try {
      return JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), "utf8")).version as string;
    } catch {
      return "?";
    }
  };
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? "?",
    memGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    workerd: ver("workerd"),
    miniflare: ver("miniflare"),
  };
}

// =================================================================== main

const cleanups: (() => Promise<void>)[] = [];
async function cleanup(): Promise<void> {
  while (cleanups.length) await cleanups.pop()!().catch((e) => log(`cleanup: ${String(e)}`));
}

function parseOptions(): Options | null {
  const { values } = parseArgs({
    options: {
      nodes: { type: "string", default: "5000" },
      pods: { type: "string", default: "10000" },
      concurrency: { type: "string", default: "32" },
      "node-concurrency": { type: "string", default: "32" },
      timeout: { type: "string", default: "180" },
      probes: { type: "string", default: "3" },
      subscribers: { type: "string", default: "SCHEDULER,CONTROLLERS" },
      "wait-idle": { type: "string", default: "60" },
      "no-offline": { type: "boolean", default: false },
      timeline: { type: "boolean", default: false },
      "max-seconds": { type: "string", default: "900" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      readFileSync(new URL(import.meta.url), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("//"))
        .slice(0, 24)
        .join("\n") + "\n",
    );
    return null;
  }
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got "${v}"`);
    return n;
  };
  return {
    nodes: int("nodes", values.nodes!, 1, 50_000),
    pods: int("pods", values.pods!, 1, 200_000),
    concurrency: int("concurrency", values.concurrency!, 1, 512),
    nodeConcurrency: int("node-concurrency", values["node-concurrency"]!, 1, 512),
    timeoutSeconds: int("timeout", values.timeout!, 1, 3600),
    probes: int("probes", values.probes!, 0, 20),
    subscribers: values.subscribers!,
    waitIdle: int("wait-idle", values["wait-idle"]!, 0, 600),
    offline: !values["no-offline"],
    timeline: values.timeline!,
    maxSeconds: int("max-seconds", values["max-seconds"]!, 30, 7200),
    verbose: values.verbose!,
    json: values.json!,
  };
}

async function run(o: Options): Promise<Result> {
  const stateDir = mkdtempSync(join(tmpdir(), "kubeflare-bench-sched-"));
  cleanups.push(async () => rmSync(stateDir, { recursive: true, force: true }));
  const vars: Record<string, string> = { NODE_MONITOR_GRACE_SECONDS: "86400", STORE_SUBSCRIBERS: o.subscribers };
  const schedules = scheduling(o);

  log(`starting the control plane (Miniflare) in ${stateDir} ...`);
  let t = nowMs();
  const { startControlPlane } = await import("../scripts/control-plane.ts");
  const cp = await startControlPlane({ stateDir, port: 0, cronIntervalMs: 0, verbose: o.verbose, vars });
  let stopped = false;
  const stopCP = async () => {
    if (!stopped) {
      stopped = true;
      await cp.stop();
    }
  };
  cleanups.push(stopCP);
  const startSeconds = (nowMs() - t) / 1000;
  const workerdPids = findDescendants(process.pid, "workerd");
  log(`control plane at ${cp.url} in ${startSeconds.toFixed(1)} s; workerd pid(s) ${workerdPids.join(",") || "?"}`);

  const http: HttpClient = await httpClient(cp.url, Math.max(o.concurrency, o.nodeConcurrency) + 4, { timeoutMs: 60_000 });
  cleanups.push(() => http.close());
  const auth = { authorization: `Bearer ${cp.token}` };
  const headers = { ...auth, "content-type": "application/json", accept: "application/json" };
  const ns = await http.request("POST", "/api/v1/namespaces", headers, JSON.stringify({ metadata: { name: NS } }));
  if (ns.status !== 201) throw new Error(`namespace create: HTTP ${ns.status} ${ns.text.slice(0, 300)}`);

  // ---------------------------------------------------------------- nodes
  log(`creating ${o.nodes} nodes (${o.nodeConcurrency} concurrent) ...`);
  const nodeLat: number[] = [];
  let nodeErrors = 0;
  let firstNodeError = "";
  const nodeNow = rfc3339();
  t = nowMs();
  await pool(o.nodes, o.nodeConcurrency, async (i) => {
    const s = nowMs();
    const r = await http.request("POST", "/api/v1/nodes", headers, JSON.stringify(nodeObject(i, nodeNow)));
    nodeLat.push(nowMs() - s);
    if (r.status !== 201) {
      nodeErrors++;
      firstNodeError ||= `HTTP ${r.status} ${r.text.slice(0, 200)}`;
    }
  });
  const nodeSeconds = (nowMs() - t) / 1000;
  log(`${o.nodes - nodeErrors} nodes in ${nodeSeconds.toFixed(1)} s (${((o.nodes - nodeErrors) / nodeSeconds).toFixed(0)}/s)`);
  if (nodeErrors > 0) throw new Error(`${nodeErrors} node creates failed; first: ${firstNodeError}`);

  // Let the scheduler and the controllers digest the nodes before pods arrive: workerd
  // idle (below 10% of a core over 1 s), then, on a shared machine, everything else too.
  const settleSeconds = await workerdIdle(workerdPids, 180, 10);
  log(`workerd settled ${settleSeconds.toFixed(1)} s after the last node create`);
  if (o.waitIdle > 0) {
    const idle = await waitIdle(o.waitIdle, 30);
    log(`machine busy ${idle.busyPct.toFixed(0)}% of one core after waiting ${idle.waitedSeconds.toFixed(0)} s for it to be idle`);
  }

  // ---------------------------------------------------------------- watch
  const list = await http.request("GET", "/api/v1/pods?limit=1", auth, undefined);
  if (list.status !== 200) throw new Error(`pod list: HTTP ${list.status} ${list.text.slice(0, 300)}`);
  const fromRv = JSON.parse(list.text).metadata.resourceVersion;
  const tracker = new PodTracker(o.pods);
  const watchSeconds = o.maxSeconds + 60;
  const watch: StreamHandle = await http.stream(
    "GET",
    `/api/v1/pods?watch=true&resourceVersion=${fromRv}&timeoutSeconds=${watchSeconds}`,
    auth,
    undefined,
    tracker.onData,
  );
  if (watch.status !== 200) throw new Error(`pod watch: HTTP ${watch.status}`);
  cleanups.push(async () => watch.close());

  // ---------------------------------------------------------------- probes
  const probeLat: number[] = [];
  for (let i = 0; i < (schedules ? o.probes : 0); i++) {
    const name = `probe-${i}`;
    const s = nowMs();
    const r = await http.request("POST", `/api/v1/namespaces/${NS}/pods`, headers, JSON.stringify(podObject(name)));
    if (r.status !== 201) throw new Error(`probe pod: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    const deadline = s + 30_000;
    while (!tracker.probeBound.has(name) && nowMs() < deadline) await sleep(2);
    const at = tracker.probeBound.get(name);
    if (at === undefined) throw new Error(`probe pod ${name} not bound within 30 s`);
    probeLat.push(at - s);
    await sleep(300);
  }
  if (o.probes && schedules) log(`1-pod probes on the idle cluster: create→bound ${probeLat.map((x) => fmtMs(x)).join(", ")} ms`);

  // ---------------------------------------------------------------- pods
  log(`creating ${o.pods} pods (${o.concurrency} concurrent) ...`);
  const sentAt = new Float64Array(o.pods);
  const replyAt = new Float64Array(o.pods);
  const ok = new Uint8Array(o.pods);
  let createErrors = 0;
  let firstError: string | undefined;
  const meter = new CpuMeter(workerdPids);
  meter.start();
  const firstSent = nowMs();
  const progress = setInterval(() => {
    const created = ok.reduce((a, b) => a + b, 0);
    log(`  ${created} created, ${tracker.bound} bound`);
  }, 5000);
  cleanups.push(async () => clearInterval(progress));
  await pool(o.pods, o.concurrency, async (i) => {
    const body = JSON.stringify(podObject(podName(i)));
    sentAt[i] = nowMs();
    try {
      const r = await http.request("POST", `/api/v1/namespaces/${NS}/pods`, headers, body);
      replyAt[i] = nowMs();
      if (r.status === 201) ok[i] = 1;
      else {
        createErrors++;
        firstError ??= `HTTP ${r.status} ${r.text.slice(0, 200)}`;
      }
    } catch (e) {
      replyAt[i] = nowMs();
      createErrors++;
      firstError ??= String(e);
    }
  });
  const lastReply = nowMs();
  const created = o.pods - createErrors;
  log(`${created} pods created in ${((lastReply - firstSent) / 1000).toFixed(1)} s; ${tracker.bound} bound so far; waiting ...`);
  const waitUntil = lastReply + o.timeoutSeconds * 1000;
  while (schedules && tracker.bound < created && nowMs() < waitUntil) await sleep(20);
  clearInterval(progress);
  const cpu = workerdPids.length ? meter.stop() : null;
  log(`${tracker.bound}/${created} bound`);
  watch.close();
  await http.close();
  await stopCP();

  // ---------------------------------------------------------------- figures
  const createLat: number[] = [];
  const createToBound: number[] = [];
  const replyToBound: number[] = [];
  const replyToAdded: number[] = [];
  const binds: BindRecord[] = [];
  const perZone: Record<string, number> = {};
  const perNode = new Map<string, number>();
  let lastBound = 0;
  for (let i = 0; i < o.pods; i++) {
    if (!ok[i]) continue;
    createLat.push(replyAt[i] - sentAt[i]);
    if (tracker.addedAt[i]) replyToAdded.push(tracker.addedAt[i] - replyAt[i]);
    const b = tracker.boundAt[i];
    if (!b) continue;
    createToBound.push(b - sentAt[i]);
    replyToBound.push(b - replyAt[i]);
    binds.push({ rv: tracker.bindRv[i], at: b });
    if (b > lastBound) lastBound = b;
    const node = tracker.nodeOf[i];
    perNode.set(node, (perNode.get(node) ?? 0) + 1);
    const zone = ZONES[Number(node.slice(5)) % ZONES.length];
    perZone[zone] = (perZone[zone] ?? 0) + 1;
  }
  const bound = createToBound.length;
  const endToEnd = bound ? (lastBound - firstSent) / 1000 : NaN;
  const boundAfter = binds.filter((b) => b.at > lastReply).length;
  const runs = bindRuns(binds);
  const byTime = [...runs].sort((a, b) => a.firstAt - b.firstAt);
  const gaps: number[] = [];
  for (let i = 1; i < byTime.length; i++) gaps.push(byTime[i].firstAt - byTime[i - 1].lastAt);
  const sizes = summarize(runs.map((r) => r.size));
  const spread = summarize(runs.map((r) => r.lastAt - r.firstAt));
  const gapS = summarize(gaps);
  const timeline: Result["timeline"] = [];
  const secs = Math.ceil(((lastBound || lastReply) - firstSent) / 1000);
  for (let s = 0; s < secs && s < 3600; s++) timeline.push({ second: s, created: 0, bound: 0 });
  for (let i = 0; i < o.pods; i++) {
    if (ok[i]) {
      const s = Math.floor((replyAt[i] - firstSent) / 1000);
      if (timeline[s]) timeline[s].created++;
    }
    if (tracker.boundAt[i]) {
      const s = Math.floor((tracker.boundAt[i] - firstSent) / 1000);
      if (timeline[s]) timeline[s].bound++;
    }
  }
  const boundPerSecond = bound / endToEnd;

  let offline: OfflineResult | null = null;
  if (o.offline) {
    const round = Math.max(1, Math.round(sizes.p50 || BIND_BATCH));
    log(`offline breakdown in this process (rounds of ${round} pods) ...`);
    offline = await offlineBreakdown(o.nodes, o.pods, round);
  }

  return {
    machine: machine(),
    options: o,
    startSeconds,
    nodes: {
      created: o.nodes - nodeErrors,
      errors: nodeErrors,
      seconds: nodeSeconds,
      perSecond: (o.nodes - nodeErrors) / nodeSeconds,
      latencyMs: summarize(nodeLat),
      settleSeconds,
    },
    probes: { latencyMs: probeLat },
    pods: {
      created,
      createErrors,
      firstError,
      createSeconds: (lastReply - firstSent) / 1000,
      createsPerSecond: created / ((lastReply - firstSent) / 1000),
      createLatencyMs: summarize(createLat),
      bound,
      unbound: created - bound,
      endToEndSeconds: endToEnd,
      boundPerSecond,
      createToBoundMs: summarize(createToBound),
      replyToBoundMs: summarize(replyToBound),
      replyToAddedEventMs: summarize(replyToAdded),
      bindPhaseSeconds: bound ? (lastBound - lastReply) / 1000 : NaN,
      bindsPerSecondAfterLastCreate: lastBound > lastReply ? boundAfter / ((lastBound - lastReply) / 1000) : null,
      perZone,
      nodesUsed: perNode.size,
      maxPodsOnANode: Math.max(0, ...perNode.values()),
    },
    runs: {
      count: runs.length,
      sizeP50: sizes.p50,
      sizeMax: sizes.max,
      fullBatches: runs.filter((r) => r.size >= BIND_BATCH).length,
      arrivalSpreadP50Ms: spread.p50,
      gapP50Ms: gapS.p50,
      gapP90Ms: gapS.p90,
      gapMaxMs: gapS.max,
    },
    timeline,
    watch: { events: tracker.events, errors: tracker.errors.slice(0, 5) },
    cpu,
    offline,
    target: { podsPerSecond: 1000, met: boundPerSecond >= 1000 && bound === created },
  };
}

function report(r: Result): string {
  const o = r.options;
  const p = r.pods;
  const L = p.createToBoundMs;
  const out: string[] = [];
  out.push("");
  out.push("==================== scheduler benchmark ====================");
  out.push(
    `machine   ${r.machine.nproc} CPUs (${r.machine.cpu}), ${r.machine.memGiB} GiB, node ${r.machine.node}, workerd ${r.machine.workerd}, miniflare ${r.machine.miniflare}`,
  );
  out.push(
    `config    ${o.nodes} nodes (3 zones, 32 cpu / 128Gi / 110 pods), ${o.pods} pods (100m / 128Mi), ${o.concurrency} create clients; STORE_SUBSCRIBERS="${o.subscribers}"`,
  );
  out.push(`start     control plane ${r.startSeconds.toFixed(1)} s`);
  out.push(
    `nodes     ${r.nodes.created} in ${r.nodes.seconds.toFixed(1)} s (${r.nodes.perSecond.toFixed(0)}/s, p50 ${fmtMs(r.nodes.latencyMs.p50)} ms, p99 ${fmtMs(r.nodes.latencyMs.p99)} ms); settled in ${r.nodes.settleSeconds.toFixed(1)} s`,
  );
  if (r.probes.latencyMs.length)
    out.push(`probes    1 pod on the idle cluster: create→bound ${r.probes.latencyMs.map((x) => fmtMs(x)).join(", ")} ms`);
  out.push(
    `creates   ${p.created} in ${p.createSeconds.toFixed(1)} s = ${p.createsPerSecond.toFixed(0)} creates/s (request p50 ${fmtMs(p.createLatencyMs.p50)} ms, p99 ${fmtMs(p.createLatencyMs.p99)} ms)${p.createErrors ? `, ${p.createErrors} errors (first: ${p.firstError})` : ""}`,
  );
  if (!scheduling(o)) {
    out.push(`BOUND     nothing schedules with STORE_SUBSCRIBERS="${o.subscribers}": this run measures the API's create path alone`);
  } else {
    out.push(
      `BOUND     ${p.bound}/${p.created} in ${p.endToEndSeconds.toFixed(1)} s from the first create = ${p.boundPerSecond.toFixed(0)} pods/s end to end; unbound after ${o.timeoutSeconds} s: ${p.unbound}`,
    );
    out.push(
      `latency   create→bound p50 ${fmtMs(L.p50)}  p90 ${fmtMs(L.p90)}  p99 ${fmtMs(L.p99)}  max ${fmtMs(L.max)} ms (create reply→bound p50 ${fmtMs(p.replyToBoundMs.p50)}  p99 ${fmtMs(p.replyToBoundMs.p99)} ms)`,
    );
    if (p.bindPhaseSeconds >= 1 && p.bindsPerSecondAfterLastCreate !== null)
      out.push(
        `tail      after the last create: ${p.bindPhaseSeconds.toFixed(1)} s of binding at ${p.bindsPerSecondAfterLastCreate.toFixed(0)} binds/s`,
      );
    else
      out.push(
        `tail      the last bind came ${fmtMs(1000 * p.bindPhaseSeconds)} ms after the last create's reply: binding kept up with creating`,
      );
    out.push(
      `placement ${p.nodesUsed} nodes used, at most ${p.maxPodsOnANode} pods on one; per zone ${Object.entries(p.perZone)
        .sort()
        .map(([z, n]) => `${z} ${n}`)
        .join(", ")}`,
    );
    const R = r.runs;
    out.push(
      `rounds    ${R.count} runs of consecutive bind revisions (one per store.batch): p50 ${R.sizeP50} binds, max ${R.sizeMax} (${R.fullBatches} of ${BIND_BATCH}); gap between runs p50 ${fmtMs(R.gapP50Ms)}  p90 ${fmtMs(R.gapP90Ms)}  max ${fmtMs(R.gapMaxMs)} ms`,
    );
  }
  out.push(
    `watch     create reply→ADDED event at the bench's pod watch p50 ${fmtMs(p.replyToAddedEventMs.p50)}  p99 ${fmtMs(p.replyToAddedEventMs.p99)} ms`,
  );
  if (r.cpu) {
    const c = r.cpu;
    const procs = c.procs
      .map(
        (x) =>
          `workerd pid ${x.pid} ${x.cpuPct.toFixed(0)}% (busiest thread ${x.busiestThread.replace(/#.*/, "")} ${x.busiestThreadPct.toFixed(0)}%)`,
      )
      .join(", ");
    const perPod = c.procs.reduce((a, x) => a + x.cpuSeconds, 0) / Math.max(1, p.created);
    out.push(
      `cpu       ${procs} = ${(1000 * perPod).toFixed(2)} ms of workerd CPU per pod; bench process ${c.benchProcessCpuPct.toFixed(0)}%; other processes ~${c.otherProcessesPct.toFixed(0)}%; machine ${c.machineBusyPct.toFixed(0)}% of ${r.machine.nproc * 100}% (% of one core, pod phase, ${c.wallSeconds.toFixed(1)} s)`,
    );
  }
  if (r.offline) {
    const f = r.offline;
    out.push(`offline   (this Node process, same modules, no workerd/RPC/SQLite; rounds of ${f.roundSize} pods, ${f.rounds} rounds)`);
    out.push(
      `          snapshot build ${fmtMs(f.snapshotEmptyMs)} ms with 0 pods bound, ${fmtMs(f.snapshotFullMs)} ms with all ${o.pods}; mean ${fmtMs(f.snapshotPerRoundMeanMs)} ms per round`,
    );
    out.push(
      `          plan ${f.planPerPodUs.toFixed(0)} µs/pod (${fmtMs(f.planTotalMs)} ms for all); bind prepare (prepareUpdate + encode) ${f.bindPreparePerPodUs.toFixed(0)} µs/pod`,
    );
    for (const m of f.memoryStore)
      out.push(
        `          Scheduler on MemoryStore, rounds of ${m.roundSize}: sync ${fmtMs(m.syncMs)} ms + scheduleOnce ${fmtMs(m.scheduleOnceMs)} ms (store.batch ${fmtMs(m.storeBatchMs)} ms) for ${m.bound} pods = ${m.podsPerSecond.toFixed(0)} pods/s of scheduler CPU`,
      );
  }
  if (r.watch.errors.length) out.push(`watch     errors: ${r.watch.errors.join(" | ")}`);
  if (o.timeline) {
    out.push("timeline  second: created / bound");
    for (const x of r.timeline)
      out.push(`          ${String(x.second).padStart(4)}: ${String(x.created).padStart(5)} / ${String(x.bound).padStart(5)}`);
  }
  if (scheduling(o))
    out.push(
      `target    >= ${r.target.podsPerSecond} pods/s end to end on this machine: ${r.target.met ? "MET" : "NOT MET"} (${p.boundPerSecond.toFixed(0)} pods/s)`,
    );
  out.push("=============================================================");
  return out.join("\n");
}

benchMain({ parse: parseOptions, run, report, cleanup, log, cleanupGraceMs: 15_000 });
