// Store benchmark (npm run bench:store): write throughput/latency through the HTTP API
// and watch fan-out delivery delay, for the local control plane (Miniflare/workerd) and,
// with --vs-etcd, for a local single-node etcd through its HTTP/JSON gRPC gateway.
//
// Not a test: it prints figures. Everything listens on 127.0.0.1 only, every phase is
// bounded in time, and everything it starts is stopped at the end.
//
//   node bench/store.ts [--clients 32] [--seconds 10] [--warmup 2] [--count N]
//                       [--watchers 1000] [--watcher-threads T] [--value-bytes 1024]
//                       [--vs-etcd] [--etcd-only] [--probe] [--json] [--node-http]
//                       [--wait-idle S] [--var NAME=VALUE] [--url URL --token T] [--verbose]
//
// BENCH_DEBUG=1 logs every failed write (age, time into the run, error).
// --url/--token bench an already running control plane (plain HTTP; a fresh namespace
// is created in it and left there) instead of starting one.
// --var NAME=VALUE (repeatable) passes a Worker variable to the local control plane,
// e.g. --var STORE_SUBSCRIBERS= to measure writes without the scheduler/controller
// notifications.
// --wait-idle S waits up to S s for the machine to be idle before each load phase.
// --json prints the results as JSON on stdout (use `npm run -s` to drop npm's banner).
//
// Each write client loops: POST a new ConfigMap, then PUT it back with the
// resourceVersion from the reply (etcd: kv/put, then kv/txn with a mod_revision
// compare). A write is one HTTP request. The writer puts its send time (ms, from
// performance.timeOrigin + performance.now()) into the object; every watcher computes
// now - that time when the event arrives. Watchers run in worker_threads so that their
// parsing does not share the writers' event loop.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import {
  CpuMeter,
  type CpuReport,
  findDescendants,
  fmtMs,
  freePort,
  Histogram,
  type HistogramData,
  type HttpClient,
  httpClient,
  type LatencySummary,
  nowMs,
  type StreamHandle,
  sleep,
  summarize,
  waitIdle,
} from "./lib.ts";

const TS_KEY = '"benchTs":"';
const TS_LEN = 17; // 13 digits, ".", 3 decimals: e.g. 1780000000000.123
/** How the etcd values start: 12 + 17 bytes, inside the first 40 base64 characters. */
const ETCD_HEAD = `{${TS_KEY}`;

function tsString(): string {
  return nowMs().toFixed(3);
}

// =================================================================== watcher threads

type WatchKind = "k8s" | "etcd";

interface WatcherThreadData {
  role: "watchers";
  kind: WatchKind;
  origin: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  count: number;
  nodeHttp: boolean;
}

interface WatcherState {
  buf: string;
  events: number;
  ready: boolean;
  ended: boolean;
  errors: number;
  handle?: StreamHandle;
}

export interface WatcherThreadStats {
  opened: number;
  failed: number;
  firstError?: string;
  events: number;
  minPerWatcher: number;
  maxPerWatcher: number;
  complete: number;
  errorEvents: number;
  endedEarly: number;
  hist: HistogramData;
  perWrite: { ts: Float64Array; n: Uint32Array; first: Float64Array; last: Float64Array };
}

async function watcherThread(d: WatcherThreadData): Promise<void> {
  const port = parentPort!;
  const http: HttpClient = await httpClient(d.origin, d.count + 1, { forceNodeHttp: d.nodeHttp, timeoutMs: 60_000 });
  const ws: WatcherState[] = [];
  const hist = new Histogram();
  let measureFrom = Infinity;
  let failed = 0;
  let firstError: string | undefined;
  let closing = false;

  // Per write (keyed by its send timestamp): first and last arrival over this thread's
  // watchers, so the main thread can relate arrivals to the writer's reply.
  const perWrite = new Map<number, { n: number; first: number; last: number }>();
  const onEvent = (ts: number) => {
    const now = nowMs();
    if (ts < measureFrom) return;
    hist.record(now - ts);
    const a = perWrite.get(ts);
    if (a) {
      a.n++;
      if (now > a.last) a.last = now;
    } else perWrite.set(ts, { n: 1, first: now, last: now });
  };

  // Cheap line handling: no JSON.parse. k8s: one WatchEvent per line, find the marker.
  // etcd: one WatchResponse per line, possibly several events; each kv.value is base64
  // of a value that starts with {"benchTs":"<17 chars>", so 40 base64 chars suffice.
  const k8sLine = (w: WatcherState, s: string, start: number, end: number) => {
    const i = s.indexOf(TS_KEY, start);
    if (i >= 0 && i < end) {
      w.events++;
      onEvent(Number(s.substr(i + TS_KEY.length, TS_LEN)));
    } else if (s.startsWith('{"type":"ERROR"', start)) {
      w.errors++;
    }
  };
  const VALUE_KEY = '"value":"';
  const etcdLine = (w: WatcherState, s: string, start: number, end: number) => {
    let i = s.indexOf(VALUE_KEY, start);
    let any = false;
    while (i >= 0 && i < end) {
      any = true;
      const head = Buffer.from(s.substr(i + VALUE_KEY.length, 40), "base64").toString("latin1");
      w.events++;
      if (head.startsWith(ETCD_HEAD)) onEvent(Number(head.substr(ETCD_HEAD.length, TS_LEN)));
      i = s.indexOf(VALUE_KEY, i + VALUE_KEY.length);
    }
    if (any) return;
    const line = s.slice(start, end);
    if (line.includes('"created":true')) w.ready = true;
    if (line.includes('"canceled":true') || line.includes('"error"')) w.errors++;
  };
  const handleLine = d.kind === "k8s" ? k8sLine : etcdLine;

  const open = async (w: WatcherState) => {
    try {
      const h = await http.stream(d.method, d.path, d.headers, d.body, (chunk) => {
        const s = w.buf ? w.buf + chunk : chunk;
        let start = 0;
        let nl: number;
        while ((nl = s.indexOf("\n", start)) >= 0) {
          if (nl > start) handleLine(w, s, start, nl);
          start = nl + 1;
        }
        w.buf = start < s.length ? s.slice(start) : "";
      });
      w.handle = h;
      h.ended.then(() => {
        w.ended = true;
      });
      if (h.status !== 200) throw new Error(`watch: HTTP ${h.status}`);
      if (d.kind === "k8s") w.ready = true; // headers are sent once the store registered the watch
    } catch (e) {
      failed++;
      firstError ??= String(e);
      w.ended = true;
    }
  };

  port.on("message", async (m: any) => {
    if (m.cmd === "open") {
      for (let i = 0; i < d.count; i++) ws.push({ buf: "", events: 0, ready: false, ended: false, errors: 0 });
      // Open in waves so the server does not get 1000 connects in one burst.
      const WAVE = 50;
      for (let i = 0; i < ws.length; i += WAVE) await Promise.all(ws.slice(i, i + WAVE).map(open));
      const deadline = Date.now() + 60_000;
      while (ws.some((w) => !w.ready && !w.ended) && Date.now() < deadline) await sleep(20);
      const opened = ws.filter((w) => w.ready && !w.ended).length;
      port.postMessage({ type: "opened", opened, failed: ws.length - opened, firstError });
    } else if (m.cmd === "measureFrom") {
      measureFrom = m.t;
    } else if (m.cmd === "drain") {
      const expected: number = m.expected;
      while (Date.now() < m.deadline && ws.some((w) => w.events < expected && !w.ended)) await sleep(20);
      let events = 0;
      let min = Infinity;
      let max = 0;
      let complete = 0;
      let errorEvents = 0;
      let endedEarly = 0;
      for (const w of ws) {
        events += w.events;
        if (w.events < min) min = w.events;
        if (w.events > max) max = w.events;
        if (w.events >= expected) complete++;
        errorEvents += w.errors;
        if (w.ended) endedEarly++;
      }
      const stats: WatcherThreadStats = {
        opened: ws.length - failed,
        failed,
        firstError,
        events,
        minPerWatcher: ws.length ? min : 0,
        maxPerWatcher: max,
        complete,
        errorEvents,
        endedEarly,
        hist: hist.data(),
        perWrite: {
          ts: Float64Array.from(perWrite.keys()),
          n: Uint32Array.from(perWrite.values(), (v) => v.n),
          first: Float64Array.from(perWrite.values(), (v) => v.first),
          last: Float64Array.from(perWrite.values(), (v) => v.last),
        },
      };
      port.postMessage({ type: "stats", stats });
    } else if (m.cmd === "close") {
      if (closing) return;
      closing = true;
      for (const w of ws) w.handle?.close();
      await http.close();
      port.postMessage({ type: "closed" });
    }
  });
  port.postMessage({ type: "up" });
}

/** The main thread's handle on the pool of watcher threads. */
class WatcherPool {
  private readonly threads: Worker[] = [];
  readonly sizes: number[] = [];

  constructor(total: number, nThreads: number, base: Omit<WatcherThreadData, "count" | "role">) {
    const n = Math.max(1, Math.min(nThreads, total));
    for (let i = 0; i < n; i++) {
      const count = Math.floor(total / n) + (i < total % n ? 1 : 0);
      this.sizes.push(count);
      const data: WatcherThreadData = { role: "watchers", count, ...base };
      const w = new Worker(new URL(import.meta.url), { workerData: data });
      w.on("error", (e) => console.error(`watcher thread ${i} failed: ${String(e)}`));
      this.threads.push(w);
    }
  }

  private ask<T>(w: Worker, msg: unknown, reply: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        w.off("message", on);
        reject(new Error(`watcher thread: no "${reply}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m: any) => {
        if (m?.type !== reply) return;
        clearTimeout(timer);
        w.off("message", on);
        resolve(m as T);
      };
      w.on("message", on);
      if (msg !== null) w.postMessage(msg);
    });
  }

  async up(): Promise<void> {
    await Promise.all(this.threads.map((w) => this.ask(w, null, "up", 30_000)));
  }

  async open(): Promise<{ opened: number; failed: number; firstError?: string }> {
    const rs = await Promise.all(this.threads.map((w) => this.ask<any>(w, { cmd: "open" }, "opened", 180_000)));
    return {
      opened: rs.reduce((a, r) => a + r.opened, 0),
      failed: rs.reduce((a, r) => a + r.failed, 0),
      firstError: rs.find((r) => r.firstError)?.firstError,
    };
  }

  measureFrom(t: number): void {
    for (const w of this.threads) w.postMessage({ cmd: "measureFrom", t });
  }

  async drain(expected: number, deadline: number): Promise<WatcherThreadStats[]> {
    const rs = await Promise.all(
      this.threads.map((w) =>
        this.ask<any>(w, { cmd: "drain", expected, deadline }, "stats", Math.max(10_000, deadline - Date.now() + 10_000)),
      ),
    );
    return rs.map((r) => r.stats as WatcherThreadStats);
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((w) => this.ask(w, { cmd: "close" }, "closed", 10_000).catch(() => {})));
    await Promise.all(this.threads.map((w) => w.terminate()));
  }
}

// =================================================================== targets

interface WriteResult {
  ok: boolean;
  status: number;
  error?: string;
  /** The send timestamp written into the object (what watchers see). */
  ts?: string;
}

interface Target {
  name: "ours" | "etcd";
  label: string;
  origin: string;
  /** Processes whose CPU is the server's. */
  serverPids(): number[];
  /** Prepares the namespace and a probe object. */
  setup(http: HttpClient): Promise<number>;
  /** The store's current revision: watches start after it. */
  currentRev(http: HttpClient): Promise<number>;
  /** Creates object `name`; returns state for update. */
  create(http: HttpClient, name: string): Promise<WriteResult & { state?: any }>;
  update(http: HttpClient, name: string, state: any): Promise<WriteResult & { state?: any }>;
  watchRequest(fromRev: number): { kind: WatchKind; method: string; path: string; headers: Record<string, string>; body?: string };
  probes(http: HttpClient): { name: string; run: () => Promise<boolean> }[];
  stop(): Promise<void>;
}

function padding(n: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  let s = "";
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += alphabet[x % alphabet.length];
  }
  return s;
}

const NS = "bench";

async function oursTarget(
  valueBytes: number,
  watchTimeoutSeconds: number,
  verbose: boolean,
  vars: Record<string, string>,
  external?: { url: string; token: string },
): Promise<Target> {
  let cp: { url: string; token: string; stop(): Promise<void> };
  let stateDir: string | undefined;
  if (external) {
    cp = { ...external, stop: async () => {} };
  } else {
    const { startControlPlane } = await import("../scripts/control-plane.ts");
    stateDir = mkdtempSync(join(tmpdir(), "kubeflare-bench-"));
    cp = await startControlPlane({ stateDir, port: 0, cronIntervalMs: 0, verbose, vars });
  }
  const pad = padding(valueBytes);
  const headers = { authorization: `Bearer ${cp.token}`, "content-type": "application/json", accept: "application/json" };
  let probeName = "";
  const workerdPids = external ? [] : findDescendants(process.pid, "workerd");
  const ns = external ? `bench-${Date.now().toString(36)}` : NS;
  const base = `/api/v1/namespaces/${ns}/configmaps`;
  return {
    name: "ours",
    label: external ? `kubeflare at ${external.url}` : "kubeflare (Miniflare/workerd, SQLite DO)",
    origin: cp.url,
    serverPids: () => workerdPids,
    async setup(http) {
      const r = await http.request(
        "POST",
        "/api/v1/namespaces",
        headers,
        JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }),
      );
      if (r.status !== 201) throw new Error(`namespace create: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      const p = await http.request(
        "POST",
        base,
        headers,
        JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "probe" }, data: { benchTs: tsString(), pad } }),
      );
      if (p.status !== 201) throw new Error(`configmap create: HTTP ${p.status} ${p.text.slice(0, 300)}`);
      probeName = "probe";
      return Number(JSON.parse(p.text).metadata.resourceVersion);
    },
    async currentRev(http) {
      const r = await http.request("GET", `${base}?limit=1`, { authorization: headers.authorization }, undefined);
      if (r.status !== 200) throw new Error(`configmap list: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      return Number(JSON.parse(r.text).metadata.resourceVersion);
    },
    async create(http, name) {
      const ts = tsString();
      const body = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"${name}"},"data":{"benchTs":"${ts}","pad":"${pad}"}}`;
      const r = await http.request("POST", base, headers, body);
      if (r.status !== 201) return { ok: false, status: r.status, error: r.text.slice(0, 200) };
      return { ok: true, status: r.status, state: r.text, ts };
    },
    async update(http, name, state) {
      // Send back the object from the last reply (with its resourceVersion), new timestamp.
      const obj = JSON.parse(state);
      const ts = tsString();
      obj.data = { benchTs: ts, pad };
      const r = await http.request("PUT", `${base}/${name}`, headers, JSON.stringify(obj));
      if (r.status !== 200) return { ok: false, status: r.status, error: r.text.slice(0, 200) };
      return { ok: true, status: r.status, state: r.text, ts };
    },
    watchRequest(fromRev) {
      return {
        kind: "k8s",
        method: "GET",
        path: `${base}?watch=true&resourceVersion=${fromRev}&timeoutSeconds=${watchTimeoutSeconds}`,
        headers: { authorization: headers.authorization },
      };
    },
    probes(http) {
      let state: string | undefined;
      const auth = { authorization: headers.authorization };
      return [
        {
          name: "GET /version (no auth, no store)",
          run: async () => (await http.request("GET", "/version", {}, undefined)).status === 200,
        },
        { name: "GET /api (auth only)", run: async () => (await http.request("GET", "/api", auth, undefined)).status === 200 },
        {
          name: "GET configmap (read)",
          run: async () => {
            const r = await http.request("GET", `${base}/${probeName}`, auth, undefined);
            state = r.text;
            return r.status === 200;
          },
        },
        {
          name: "PUT configmap (update, resourceVersion set)",
          run: async () => {
            const obj = JSON.parse(state!);
            obj.data = { benchTs: tsString(), pad };
            const r = await http.request("PUT", `${base}/${probeName}`, headers, JSON.stringify(obj));
            state = r.text;
            return r.status === 200;
          },
        },
        {
          name: "POST configmap (create)",
          run: async () =>
            (
              await http.request(
                "POST",
                base,
                headers,
                JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { generateName: "probe-" }, data: { pad } }),
              )
            ).status === 201,
        },
      ];
    },
    async stop() {
      await cp.stop();
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

function b64(s: string): string {
  return Buffer.from(s, "utf8").toString("base64");
}

function prefixEnd(p: string): string {
  return p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);
}

function etcdVersion(): { version: string; prefix: string } | null {
  const r = spawnSync("etcd", ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (r.error || r.status !== 0) return null;
  const m = /etcd Version:\s*(\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
  if (!m) return { version: r.stdout.trim().split("\n")[0], prefix: "/v3" };
  const [maj, min] = [Number(m[1]), Number(m[2])];
  // gRPC gateway paths: /v3alpha (3.2), /v3beta (3.3), /v3 (3.4+; 3.3 also serves /v3beta).
  const prefix = maj > 3 || min >= 4 ? "/v3" : min === 3 ? "/v3beta" : "/v3alpha";
  return { version: `${m[1]}.${m[2]}.${m[3]}`, prefix };
}

async function etcdTarget(valueBytes: number, ver: { version: string; prefix: string }): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), "etcd-bench-"));
  const cport = await freePort();
  const pport = await freePort();
  const client = `http://127.0.0.1:${cport}`;
  const peer = `http://127.0.0.1:${pport}`;
  const logFile = join(dir, "etcd.log");
  const logFd = openSync(logFile, "a");
  const proc: ChildProcess = spawn(
    "etcd",
    [
      "--name",
      "bench",
      "--data-dir",
      join(dir, "data"),
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `bench=${peer}`,
      "--initial-cluster-state",
      "new",
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", logFd, logFd] },
  );
  closeSync(logFd);
  let exited = false;
  proc.on("exit", () => (exited = true));
  const stop = async () => {
    if (!exited) {
      proc.kill("SIGTERM");
      for (let i = 0; i < 50 && !exited; i++) await sleep(100);
      if (!exited) proc.kill("SIGKILL");
      for (let i = 0; i < 20 && !exited; i++) await sleep(100);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Wait for it to serve.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) {
      const log = existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-2000) : "";
      await stop();
      throw new Error(`etcd exited at start:\n${log}`);
    }
    try {
      const r = await fetch(`${client}/health`);
      if (r.ok && ((await r.json()) as { health?: string }).health === "true") break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error("etcd did not become healthy within 30 s");
    }
    await sleep(100);
  }
  const P = ver.prefix;
  const headers = { "content-type": "application/json" };
  const pad = padding(valueBytes);
  const prefix = `/registry/configmaps/${NS}/`;
  // A value shaped like the stored ConfigMap, with the timestamp first so watchers can
  // read it from the first 40 base64 characters.
  const value = (name: string, ts = tsString()) =>
    `{"benchTs":"${ts}","apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"${name}","namespace":"${NS}","uid":"${randomUUID()}","creationTimestamp":"${new Date().toISOString().replace(/\.\d+Z$/, "Z")}"},"data":{"pad":"${pad}"}}`;
  const rev = (text: string) => Number(JSON.parse(text).header.revision);
  return {
    name: "etcd",
    label: `etcd ${ver.version} (single node, HTTP/JSON gateway ${P}/)`,
    origin: client,
    serverPids: () => (proc.pid ? [proc.pid] : []),
    async setup(http) {
      const r = await http.request(
        "POST",
        `${P}/kv/put`,
        headers,
        JSON.stringify({ key: b64(`/registry/namespaces/${NS}`), value: b64(`{"metadata":{"name":"${NS}"}}`) }),
      );
      if (r.status !== 200) throw new Error(`etcd put: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      const p = await http.request(
        "POST",
        `${P}/kv/put`,
        headers,
        JSON.stringify({ key: b64(`${prefix}probe`), value: b64(value("probe")) }),
      );
      if (p.status !== 200) throw new Error(`etcd put: HTTP ${p.status} ${p.text.slice(0, 300)}`);
      return rev(p.text);
    },
    async currentRev(http) {
      const r = await http.request("POST", `${P}/kv/range`, headers, JSON.stringify({ key: b64(`${prefix}probe`) }));
      if (r.status !== 200) throw new Error(`etcd range: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      return rev(r.text);
    },
    async create(http, name) {
      const key = b64(prefix + name);
      const ts = tsString();
      const r = await http.request("POST", `${P}/kv/put`, headers, `{"key":"${key}","value":"${b64(value(name, ts))}"}`);
      if (r.status !== 200) return { ok: false, status: r.status, error: r.text.slice(0, 200) };
      return { ok: true, status: r.status, state: rev(r.text), ts };
    },
    async update(http, name, modRev) {
      const key = b64(prefix + name);
      const ts = tsString();
      const body = `{"compare":[{"key":"${key}","result":"EQUAL","target":"MOD","mod_revision":"${modRev}"}],"success":[{"request_put":{"key":"${key}","value":"${b64(value(name, ts))}"}}],"failure":[]}`;
      const r = await http.request("POST", `${P}/kv/txn`, headers, body);
      if (r.status !== 200) return { ok: false, status: r.status, error: r.text.slice(0, 200) };
      const j = JSON.parse(r.text);
      if (!j.succeeded) return { ok: false, status: 409, error: "txn compare failed" };
      return { ok: true, status: r.status, state: Number(j.header.revision), ts };
    },
    watchRequest(fromRev) {
      return {
        kind: "etcd",
        method: "POST",
        path: `${P}/watch`,
        headers,
        body: JSON.stringify({
          create_request: { key: b64(prefix), range_end: b64(prefixEnd(prefix)), start_revision: String(fromRev + 1) },
        }),
      };
    },
    probes(http) {
      let modRev = 0;
      const key = b64(`${prefix}probe`);
      return [
        {
          name: "POST /v3/kv/range (1 key)",
          run: async () => (await http.request("POST", `${P}/kv/range`, headers, `{"key":"${key}"}`)).status === 200,
        },
        {
          name: "POST /v3/kv/put",
          run: async () => {
            const r = await http.request("POST", `${P}/kv/put`, headers, `{"key":"${key}","value":"${b64(value("probe"))}"}`);
            modRev = rev(r.text);
            return r.status === 200;
          },
        },
        {
          name: "POST /v3/kv/txn (mod_revision CAS put)",
          run: async () => {
            const body = `{"compare":[{"key":"${key}","result":"EQUAL","target":"MOD","mod_revision":"${modRev}"}],"success":[{"request_put":{"key":"${key}","value":"${b64(value("probe"))}"}}]}`;
            const r = await http.request("POST", `${P}/kv/txn`, headers, body);
            modRev = rev(r.text);
            return r.status === 200 && JSON.parse(r.text).succeeded === true;
          },
        },
      ];
    },
    stop,
  };
}

// =================================================================== one run

interface Options {
  clients: number;
  seconds: number;
  warmup: number;
  count: number;
  maxSeconds: number;
  watchers: number;
  watcherThreads: number;
  valueBytes: number;
  drainSeconds: number;
  probe: boolean;
  nodeHttp: boolean;
  waitIdle: number;
}

interface ProbeResult {
  name: string;
  n: number;
  p50: number;
  mean: number;
  p99: number;
}

export interface RunResult {
  target: string;
  label: string;
  http: string;
  clients: number;
  watchers: number;
  watcherThreads: number;
  measuredSeconds: number;
  writes: number;
  writesPerSecond: number;
  /** Requests sent inside the window that completed successfully (the latency samples). */
  latencySamples: number;
  /** Requests sent inside the window still without a reply 60 s after it closed. */
  unfinished: number;
  /** Gaps between consecutive completed writes in the window (server stalls). */
  stalls: { longestGapMs: number; gapsOver50ms: number; timeInGapsOver50msPct: number };
  errors: number;
  firstError?: string;
  errorKinds: Record<string, number>;
  latencyMs: LatencySummary;
  createLatencyMs: LatencySummary;
  updateLatencyMs: LatencySummary;
  watch?: {
    opened: number;
    failed: number;
    openSeconds: number;
    expectedPerWatcher: number;
    expectedEvents: number;
    receivedEvents: number;
    completeWatchers: number;
    minPerWatcher: number;
    errorEvents: number;
    endedEarly: number;
    drainSeconds: number;
    /** Over the events of writes sent after warmup that arrived by the end of the drain. */
    deliveryMs: LatencySummary;
    /** Events those writes should have produced (writes x watchers). */
    measuredEventsExpected: number;
    /**
     * Per post-warmup write seen by every watcher: first and last watcher arrival relative
     * to the moment the writer had its reply (negative: the event beat the reply), and
     * the spread between first and last watcher.
     */
    perWrite: {
      writes: number;
      firstArrivalMinusReplyMs: LatencySummary;
      lastArrivalMinusReplyMs: LatencySummary;
      firstToLastArrivalMs: LatencySummary;
    };
    /** From the end of the load to the end of the drain: undelivered events are older than this. */
    loadEndToDrainEndSeconds: number;
    firstError?: string;
  };
  cpu: CpuReport;
  /** With --wait-idle: machine busy (% of one core) just before the load started. */
  busyBeforePct?: number;
  probes?: ProbeResult[];
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

async function runProbes(t: Target, http: HttpClient): Promise<ProbeResult[]> {
  const out: ProbeResult[] = [];
  for (const p of t.probes(http)) {
    const lat: number[] = [];
    const until = performance.now() + 1500;
    let ok = true;
    while (performance.now() < until && lat.length < 2000) {
      const t0 = performance.now();
      ok = (await p.run()) && ok;
      lat.push(performance.now() - t0);
    }
    const s = summarize(lat);
    out.push({ name: p.name + (ok ? "" : " (some failed)"), n: s.count, p50: s.p50, mean: s.mean, p99: s.p99 });
  }
  return out;
}

async function runTarget(t: Target, o: Options): Promise<RunResult> {
  const http = await httpClient(t.origin, o.clients + 2, { forceNodeHttp: o.nodeHttp });
  let pool: WatcherPool | null = null;
  try {
    await t.setup(http);
    const probes = o.probe ? await runProbes(t, http) : undefined;
    const fromRev = await t.currentRev(http);

    let openSeconds = 0;
    let opened: { opened: number; failed: number; firstError?: string } = { opened: 0, failed: 0 };
    if (o.watchers > 0) {
      const wr = t.watchRequest(fromRev);
      pool = new WatcherPool(o.watchers, o.watcherThreads, {
        kind: wr.kind,
        origin: t.origin,
        method: wr.method,
        path: wr.path,
        headers: wr.headers,
        body: wr.body,
        nodeHttp: o.nodeHttp,
      });
      await pool.up();
      const t0 = performance.now();
      opened = await pool.open();
      openSeconds = (performance.now() - t0) / 1000;
      log(
        `${t.name}: ${opened.opened}/${o.watchers} watches open in ${openSeconds.toFixed(1)} s (${pool.sizes.length} watcher threads)${opened.firstError ? `; first error: ${opened.firstError}` : ""}`,
      );
    }

    let idle: { busyPct: number; waitedSeconds: number } | undefined;
    if (o.waitIdle > 0) {
      idle = await waitIdle(o.waitIdle, 30);
      log(
        `${t.name}: machine busy ${idle.busyPct.toFixed(0)}% of one core before the load (waited ${idle.waitedSeconds.toFixed(0)} s${idle.busyPct > 30 ? ", gave up waiting for an idle machine" : ""})`,
      );
    }

    // ---- write load
    const createLat: number[] = [];
    const updateLat: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    const errorKinds: Record<string, number> = {};
    /** send timestamp -> when the writer had the reply (ms, same clock as the watchers). */
    const acked = new Map<number, number>();
    let okWrites = 0; // all phases, for the watch expectation
    let measuring = false;
    let stopping = false;
    let measuredStarted = 0;
    let measuredDone = 0;
    let lastDone = 0;
    // Throughput (time mode): successful completions inside the window, whenever sent.
    // Latency: requests sent inside the window, whenever they complete.
    let windowStart = Number.POSITIVE_INFINITY;
    let windowEnd = Number.POSITIVE_INFINITY;
    let completedInWindow = 0;
    let pendingInWindow = 0;
    // Stalls: gaps between consecutive successful completions inside the window.
    let lastCompletion = Number.NaN;
    let longestGap = 0;
    let gapsOver50 = 0;
    let gapsOver50Ms = 0;
    const loadStart = performance.now();
    const cpu = new CpuMeter(t.serverPids());

    const takeSlot = (): boolean => {
      if (stopping) return false;
      if (measuring && o.count > 0) {
        if (measuredStarted >= o.count) return false;
        measuredStarted++;
      }
      return true;
    };
    const one = async (kind: "c" | "u", fn: () => Promise<WriteResult & { state?: any }>) => {
      const inWindow = measuring;
      const t0 = performance.now();
      if (inWindow) pendingInWindow++;
      let r: WriteResult & { state?: any };
      try {
        r = await fn();
      } catch (e) {
        r = { ok: false, status: 0, error: String(e) };
      }
      const doneAt = performance.now();
      const dt = doneAt - t0;
      if (inWindow) pendingInWindow--;
      if (r.ok) okWrites++;
      if (r.ok && doneAt >= windowStart && doneAt <= windowEnd) {
        completedInWindow++;
        const gap = doneAt - (Number.isNaN(lastCompletion) ? windowStart : lastCompletion);
        lastCompletion = doneAt;
        if (gap > longestGap) longestGap = gap;
        if (gap > 50) {
          gapsOver50++;
          gapsOver50Ms += gap;
        }
      }
      if (r.ok && inWindow && r.ts !== undefined) acked.set(Number(r.ts), performance.timeOrigin + t0 + dt);
      if (inWindow) {
        if (r.ok) {
          (kind === "c" ? createLat : updateLat).push(dt);
          measuredDone++;
          lastDone = performance.now();
        } else {
          errors++;
          firstError ??= `HTTP ${r.status}: ${r.error}`;
          const k = `${kind === "c" ? "create" : "update"} HTTP ${r.status}: ${String(r.error).slice(0, 80)}`;
          if (process.env.BENCH_DEBUG) log(`error after ${dt.toFixed(0)} ms at +${(t0 - loadStart).toFixed(0)} ms: ${k}`);
          errorKinds[k] = (errorKinds[k] ?? 0) + 1;
        }
      } else if (!r.ok) {
        firstError ??= `(warmup) HTTP ${r.status}: ${r.error}`;
      }
      return r;
    };
    const clientLoop = async (id: number) => {
      for (let i = 0; ; i++) {
        const name = `w${id}-${i}`;
        if (!takeSlot()) return;
        const c = await one("c", () => t.create(http, name));
        if (!c.ok) {
          if (c.status === 0) await sleep(10); // connection trouble: do not spin
          continue;
        }
        if (!takeSlot()) return;
        await one("u", () => t.update(http, name, c.state));
      }
    };
    const loops = Array.from({ length: o.clients }, (_, i) => clientLoop(i));

    await sleep(o.warmup * 1000);
    measuring = true;
    const mStart = performance.now();
    windowStart = mStart;
    pool?.measureFrom(performance.timeOrigin + mStart);
    cpu.start();
    const endBy = mStart + (o.count > 0 ? o.maxSeconds : o.seconds) * 1000;
    while (performance.now() < endBy) {
      if (o.count > 0 && measuredDone + errors >= o.count) break;
      await sleep(20);
    }
    const mEnd = performance.now();
    windowEnd = mEnd;
    stopping = true;
    const cpuReport = cpu.stop();
    await Promise.race([Promise.all(loops), sleep(60_000)]);
    const latencySamples = createLat.length + updateLat.length;
    // Count mode: the N writes sent after warmup, over the time until the last completed.
    // Time mode: successful completions inside the window, over the window.
    const measuredSeconds = o.count > 0 ? (Math.max(lastDone, mStart + 1) - mStart) / 1000 : (mEnd - mStart) / 1000;
    const writes = o.count > 0 ? latencySamples : completedInWindow;
    const unfinished = pendingInWindow;
    log(
      `${t.name}: ${writes} writes in ${measuredSeconds.toFixed(1)} s after ${o.warmup} s warmup (${okWrites} successful writes in all, ${((performance.now() - loadStart) / 1000).toFixed(1)} s${unfinished ? `; ${unfinished} requests sent in the window still unfinished after 60 s` : ""})`,
    );

    // ---- watch drain
    let watch: RunResult["watch"];
    if (pool) {
      const d0 = performance.now();
      const stats = await pool.drain(okWrites, Date.now() + o.drainSeconds * 1000);
      const drainSeconds = (performance.now() - d0) / 1000;
      const h = new Histogram();
      for (const s of stats) h.merge(s.hist);
      const received = stats.reduce((a, s) => a + s.events, 0);
      // Fan-out relative to the writer's reply: per write, first and last watcher arrival.
      const agg = new Map<number, { n: number; first: number; last: number }>();
      for (const st of stats) {
        for (let i = 0; i < st.perWrite.ts.length; i++) {
          const k = st.perWrite.ts[i];
          const a = agg.get(k);
          if (a) {
            a.n += st.perWrite.n[i];
            if (st.perWrite.first[i] < a.first) a.first = st.perWrite.first[i];
            if (st.perWrite.last[i] > a.last) a.last = st.perWrite.last[i];
          } else agg.set(k, { n: st.perWrite.n[i], first: st.perWrite.first[i], last: st.perWrite.last[i] });
        }
      }
      const firstVsAck: number[] = [];
      const lastVsAck: number[] = [];
      const spread: number[] = [];
      for (const [ts, ackAt] of acked) {
        const a = agg.get(ts);
        if (!a || a.n < o.watchers) continue; // not seen by every watcher
        firstVsAck.push(a.first - ackAt);
        lastVsAck.push(a.last - ackAt);
        spread.push(a.last - a.first);
      }
      watch = {
        opened: opened.opened,
        failed: opened.failed,
        openSeconds,
        expectedPerWatcher: okWrites,
        expectedEvents: okWrites * o.watchers,
        receivedEvents: received,
        completeWatchers: stats.reduce((a, s) => a + s.complete, 0),
        minPerWatcher: Math.min(...stats.map((s) => s.minPerWatcher)),
        errorEvents: stats.reduce((a, s) => a + s.errorEvents, 0),
        endedEarly: stats.reduce((a, s) => a + s.endedEarly, 0),
        drainSeconds,
        deliveryMs: h.summary(),
        measuredEventsExpected: latencySamples * o.watchers,
        perWrite: {
          writes: lastVsAck.length,
          firstArrivalMinusReplyMs: summarize(firstVsAck),
          lastArrivalMinusReplyMs: summarize(lastVsAck),
          firstToLastArrivalMs: summarize(spread),
        },
        loadEndToDrainEndSeconds: (performance.now() - mEnd) / 1000,
        firstError: opened.firstError,
      };
    }
    const all = [...createLat, ...updateLat];
    return {
      target: t.name,
      label: t.label,
      http: http.kind,
      clients: o.clients,
      watchers: o.watchers,
      watcherThreads: pool ? pool.sizes.length : 0,
      measuredSeconds,
      writes,
      writesPerSecond: writes / measuredSeconds,
      latencySamples,
      unfinished,
      stalls: { longestGapMs: longestGap, gapsOver50ms: gapsOver50, timeInGapsOver50msPct: (100 * gapsOver50Ms) / (mEnd - mStart) },
      errors,
      firstError,
      errorKinds,
      latencyMs: summarize(all),
      createLatencyMs: summarize(createLat),
      updateLatencyMs: summarize(updateLat),
      watch,
      cpu: cpuReport,
      busyBeforePct: idle?.busyPct,
      probes,
    };
  } finally {
    if (pool) await pool.close().catch(() => {});
    await http.close();
  }
}

// =================================================================== report

function line(r: RunResult): string[] {
  const out: string[] = [];
  const L = r.latencyMs;
  out.push(`${r.label}`);
  out.push(
    `  load      ${r.clients} clients, ${r.watchers} watchers${r.watchers ? ` (${r.watcherThreads} worker_threads in the bench process)` : ""}, HTTP: ${r.http}`,
  );
  out.push(
    `  writes    ${r.writesPerSecond.toFixed(0)} writes/s  (${r.writes} in ${r.measuredSeconds.toFixed(1)} s, ${r.errors} errors${r.firstError ? `; first: ${r.firstError.slice(0, 160)}` : ""})`,
  );
  out.push(
    `  stalls    longest gap between completed writes ${fmtMs(r.stalls.longestGapMs)} ms; ${r.stalls.gapsOver50ms} gaps > 50 ms covering ${r.stalls.timeInGapsOver50msPct.toFixed(0)}% of the window`,
  );
  for (const [k, n] of Object.entries(r.errorKinds)) out.push(`  error     ${n} x ${k}`);
  out.push(
    `  latency   p50 ${fmtMs(L.p50)}  p90 ${fmtMs(L.p90)}  p99 ${fmtMs(L.p99)}  max ${fmtMs(L.max)} ms   (create p50/p99 ${fmtMs(r.createLatencyMs.p50)}/${fmtMs(r.createLatencyMs.p99)}, update p50/p99 ${fmtMs(r.updateLatencyMs.p50)}/${fmtMs(r.updateLatencyMs.p99)}; ${r.latencySamples} writes sent in the window${r.unfinished ? `, ${r.unfinished} never answered` : ""})`,
  );
  if (r.watch) {
    const w = r.watch;
    const D = w.deliveryMs;
    out.push(
      `  watch     delivery p50 ${fmtMs(D.p50)}  p90 ${fmtMs(D.p90)}  p99 ${fmtMs(D.p99)}  max ${fmtMs(D.max)} ms  (over ${D.count} events sent after warmup)`,
    );
    const pw = w.perWrite;
    if (pw.writes > 0) {
      out.push(
        `            per write (${pw.writes}): first watcher ${fmtMs(pw.firstArrivalMinusReplyMs.p50)} / last watcher ${fmtMs(pw.lastArrivalMinusReplyMs.p50)} ms after the writer's reply (p50; p99 ${fmtMs(pw.firstArrivalMinusReplyMs.p99)} / ${fmtMs(pw.lastArrivalMinusReplyMs.p99)}), first-to-last spread p50 ${fmtMs(pw.firstToLastArrivalMs.p50)} p99 ${fmtMs(pw.firstToLastArrivalMs.p99)} ms`,
      );
    }
    const frac = D.count / Math.max(1, w.measuredEventsExpected);
    if (frac < 0.99) {
      out.push(
        `            INCOMPLETE: only ${(100 * frac).toFixed(1)}% of the ${w.measuredEventsExpected} events of post-warmup writes arrived; the rest were still undelivered ${w.loadEndToDrainEndSeconds.toFixed(1)} s after the load ended, so the true p99 is larger than that`,
      );
    }
    out.push(
      `            events ${w.receivedEvents}/${w.expectedEvents} (${((100 * w.receivedEvents) / Math.max(1, w.expectedEvents)).toFixed(2)}%), ${w.completeWatchers}/${r.watchers} watchers complete, min ${w.minPerWatcher}/${w.expectedPerWatcher} per watcher, ${w.errorEvents} error events, ${w.endedEarly} streams ended, drain ${w.drainSeconds.toFixed(1)} s; ${w.opened} opened in ${w.openSeconds.toFixed(1)} s${w.failed ? `, ${w.failed} failed (${w.firstError})` : ""}`,
    );
  }
  const c = r.cpu;
  const procs = c.procs
    .map(
      (p) =>
        `${r.target === "ours" ? "workerd" : "etcd"} pid ${p.pid} ${p.cpuPct.toFixed(0)}% (busiest thread ${p.busiestThread.replace(/#.*/, "")} ${p.busiestThreadPct.toFixed(0)}%)`,
    )
    .join(", ");
  out.push(`  cpu       ${procs || "server: n/a"}; bench process ${c.benchProcessCpuPct.toFixed(0)}%  (% of one core, measured window)`);
  out.push(
    `            machine busy ${c.machineBusyPct.toFixed(0)}% of ${cpus().length * 100}%, other processes ~${c.otherProcessesPct.toFixed(0)}%, iowait ${c.iowaitPct.toFixed(0)}%`,
  );
  if (r.probes) {
    out.push(`  1-client probes (sequential, ~1.5 s each):`);
    for (const p of r.probes)
      out.push(`    ${p.name.padEnd(46)} p50 ${fmtMs(p.p50)}  mean ${fmtMs(p.mean)}  p99 ${fmtMs(p.p99)} ms  (n=${p.n})`);
  }
  return out;
}

let runningWorkerd: string | null = null;

/** The version of the workerd binary a pid runs (Miniflare may ship its own workerd). */
function workerdBinaryVersion(pid: number | undefined): string | null {
  if (!pid) return null;
  try {
    const exe = readlinkSync(`/proc/${pid}/exe`);
    const r = spawnSync(exe, ["--version"], { encoding: "utf8", timeout: 10_000 });
    return `${r.stdout.trim()} (${exe.replace(/^.*?\/node_modules\//, "node_modules/")})`;
  } catch {
    return null;
  }
}

function machine(etcd: string | null) {
  let workerd = "?";
  try {
    workerd = JSON.parse(readFileSync(new URL("../node_modules/workerd/package.json", import.meta.url), "utf8")).version;
  } catch {
    // not installed
  }
  const git = (args: string[]) =>
    spawnSync("git", args, { cwd: new URL("..", import.meta.url), encoding: "utf8", timeout: 5000 }).stdout?.trim() ?? "";
  const commit = git(["rev-parse", "--short", "HEAD"]) || "?";
  const dirty = git(["status", "--porcelain", "--untracked-files=no"]).split("\n").filter(Boolean).length;
  let miniflare = "?";
  try {
    miniflare = JSON.parse(readFileSync(new URL("../node_modules/miniflare/package.json", import.meta.url), "utf8")).version;
  } catch {
    // not installed
  }
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? "?",
    memGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    workerd,
    workerdRunning: runningWorkerd,
    miniflare,
    etcd,
    commit,
    modifiedFiles: dirty,
  };
}

// =================================================================== main

/** Stops whatever is still running (control plane, etcd), newest first. */
const cleanups: (() => Promise<void>)[] = [];
async function cleanup(): Promise<void> {
  while (cleanups.length) await cleanups.pop()!().catch((e) => log(`cleanup: ${String(e)}`));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: "string", default: "32" },
      seconds: { type: "string", default: "10" },
      warmup: { type: "string", default: "2" },
      count: { type: "string", default: "0" },
      "max-seconds": { type: "string", default: "120" },
      watchers: { type: "string", default: "1000" },
      "watcher-threads": { type: "string" },
      "value-bytes": { type: "string", default: "1024" },
      drain: { type: "string", default: "15" },
      "vs-etcd": { type: "boolean", default: false },
      "etcd-only": { type: "boolean", default: false },
      probe: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      "node-http": { type: "boolean", default: false },
      "wait-idle": { type: "string", default: "0" },
      verbose: { type: "boolean", default: false },
      url: { type: "string" },
      var: { type: "string", multiple: true },
      token: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    const header: string[] = [];
    for (const l of readFileSync(new URL(import.meta.url), "utf8").split("\n")) {
      if (!l.startsWith("//")) break;
      header.push(l.replace(/^\/\/ ?/, ""));
    }
    process.stdout.write(`${header.join("\n")}\n`);
    return;
  }
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in [${min}, ${max}], got "${v}"`);
    return n;
  };
  const watchers = int("watchers", values.watchers!, 0, 20_000);
  const o: Options = {
    clients: int("clients", values.clients!, 1, 1024),
    seconds: int("seconds", values.seconds!, 0.5, 600),
    warmup: int("warmup", values.warmup!, 0, 120),
    count: int("count", values.count!, 0, 10_000_000),
    maxSeconds: int("max-seconds", values["max-seconds"]!, 1, 600),
    watchers,
    watcherThreads: int("watcher-threads", values["watcher-threads"] ?? String(Math.min(4, Math.max(1, Math.ceil(watchers / 250)))), 1, 64),
    valueBytes: int("value-bytes", values["value-bytes"]!, 16, 1_000_000),
    drainSeconds: int("drain", values.drain!, 1, 120),
    probe: values.probe!,
    nodeHttp: values["node-http"]!,
    waitIdle: int("wait-idle", values["wait-idle"]!, 0, 600),
  };
  const wantEtcd = values["vs-etcd"] || values["etcd-only"];
  const runSeconds = o.count > 0 ? o.maxSeconds : o.seconds;
  // Hard bound for the whole run: start-up, watch opening, load, drain, shutdown.
  const perTarget = 90 + 200 + o.waitIdle + o.warmup + runSeconds + 60 + o.drainSeconds + 30 + (o.probe ? 15 : 0);
  const watchdog = setTimeout(
    async () => {
      log(`giving up: the run exceeded its ${perTarget * 2} s bound`);
      await Promise.race([cleanup(), sleep(15_000)]);
      process.exit(3);
    },
    perTarget * 2 * 1000,
  );
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, async () => {
      log(`${sig}: stopping`);
      await Promise.race([cleanup(), sleep(15_000)]);
      process.exit(130);
    });
  }

  const ver = wantEtcd ? etcdVersion() : null;
  const vars: Record<string, string> = {};
  for (const kv of values.var ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new Error(`--var wants NAME=VALUE, got "${kv}"`);
    vars[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (wantEtcd && !ver) log("etcd is not on PATH (apt-get install etcd-server): running only ours, no comparison.");
  const results: RunResult[] = [];
  const watchTimeout = Math.ceil(perTarget);

  if (!values["etcd-only"] || !ver) {
    log(`ours: starting the control plane (Miniflare) ...`);
    if (values.url && !values.token) throw new Error("--url needs --token (the admin bearer token)");
    const t = await oursTarget(
      o.valueBytes,
      watchTimeout,
      values.verbose!,
      vars,
      values.url ? { url: values.url.replace(/\/$/, ""), token: values.token! } : undefined,
    );
    let stopped = false;
    const stop = async () => {
      if (!stopped) {
        stopped = true;
        await t.stop();
      }
    };
    cleanups.push(stop);
    log(`ours: ${t.origin}; workerd pid(s) ${t.serverPids().join(",") || "?"}`);
    runningWorkerd = workerdBinaryVersion(t.serverPids()[0]);
    results.push(await runTarget(t, o));
    await stop();
  }
  if (ver) {
    log(`etcd: starting etcd ${ver.version} on 127.0.0.1 (gateway ${ver.prefix}/) ...`);
    const t = await etcdTarget(o.valueBytes, ver);
    let stopped = false;
    const stop = async () => {
      if (!stopped) {
        stopped = true;
        await t.stop();
      }
    };
    cleanups.push(stop);
    log(`etcd: ${t.origin}; pid ${t.serverPids().join(",")}`);
    results.push(await runTarget(t, o));
    await stop();
  }
  clearTimeout(watchdog);

  const ours = results.find((r) => r.target === "ours");
  const etcd = results.find((r) => r.target === "etcd");
  const ratios =
    ours && etcd
      ? {
          throughput: ours.writesPerSecond / etcd.writesPerSecond,
          p99WriteLatency: ours.latencyMs.p99 / etcd.latencyMs.p99,
          p50WriteLatency: ours.latencyMs.p50 / etcd.latencyMs.p50,
          p99WatchDelivery:
            ours.watch &&
            etcd.watch &&
            ours.watch.deliveryMs.count >= 0.99 * ours.watch.measuredEventsExpected &&
            etcd.watch.deliveryMs.count >= 0.99 * etcd.watch.measuredEventsExpected
              ? ours.watch.deliveryMs.p99 / etcd.watch.deliveryMs.p99
              : undefined,
        }
      : undefined;
  const targets = ours
    ? {
        throughputAtLeastEtcd: ratios ? ratios.throughput >= 1 : null,
        p99WriteLatencyAtMost20ms: ours.latencyMs.p99 <= 20,
        watchDeliveryP99AtMost50ms: ours.watch
          ? ours.watch.deliveryMs.p99 <= 50 && ours.watch.deliveryMs.count >= 0.99 * ours.watch.measuredEventsExpected
          : null,
      }
    : undefined;

  const m = machine(ver?.version ?? null);
  const text: string[] = [];
  text.push("");
  text.push("==================== store benchmark ====================");
  text.push(
    `machine   ${m.nproc} CPUs (${m.cpu}), ${m.memGiB} GiB, node ${m.node}, workerd ${m.workerd}${m.etcd ? `, etcd ${m.etcd}` : ""}`,
  );
  text.push(`          miniflare ${m.miniflare}, running workerd binary: ${m.workerdRunning ?? "n/a"}`);
  text.push(`code      commit ${m.commit}${m.modifiedFiles ? ` + ${m.modifiedFiles} modified tracked files` : ""}`);
  text.push(
    `config    ${o.clients} clients, ${o.count > 0 ? `${o.count} writes` : `${o.seconds} s`} after ${o.warmup} s warmup, ${o.valueBytes} B values, ${o.watchers} watchers${Object.keys(vars).length ? `, vars ${JSON.stringify(vars)}` : ""}`,
  );
  for (const r of results) text.push(...line(r));
  if (ratios) {
    text.push(
      `ours/etcd throughput ${ratios.throughput.toFixed(2)}x, p50 write latency ${ratios.p50WriteLatency.toFixed(2)}x, p99 write latency ${ratios.p99WriteLatency.toFixed(2)}x${ratios.p99WatchDelivery !== undefined ? `, p99 watch delivery ${ratios.p99WatchDelivery.toFixed(2)}x` : ours!.watchers ? ", p99 watch delivery: no ratio (a side delivered < 99% of events)" : ""}`,
    );
  }
  if (targets && ours) {
    const yn = (b: boolean | null) => (b === null ? "not measured" : b ? "MET" : "NOT MET");
    text.push(
      `targets   write throughput >= etcd's: ${yn(targets.throughputAtLeastEtcd)}${ratios ? ` (${ours.writesPerSecond.toFixed(0)} vs ${etcd!.writesPerSecond.toFixed(0)} writes/s)` : ""}`,
    );
    text.push(`          p99 write latency <= 20 ms:  ${yn(targets.p99WriteLatencyAtMost20ms)} (${fmtMs(ours.latencyMs.p99)} ms)`);
    text.push(
      `          watch delivery p99 <= 50 ms: ${yn(targets.watchDeliveryP99AtMost50ms)}${ours.watch ? ` (${fmtMs(ours.watch.deliveryMs.p99)} ms, ${ours.watch.receivedEvents}/${ours.watch.expectedEvents} events)` : ""}`,
    );
  }
  text.push("=========================================================");
  if (values.json) {
    process.stderr.write(text.join("\n") + "\n");
    process.stdout.write(JSON.stringify({ machine: m, options: o, vars, results, ratios, targets }, null, 2) + "\n");
  } else {
    process.stdout.write(text.join("\n") + "\n");
  }
}

if (!isMainThread && (workerData as WatcherThreadData | undefined)?.role === "watchers") {
  void watcherThread(workerData as WatcherThreadData);
} else {
  main().then(
    () => process.exit(0),
    async (e) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      await Promise.race([cleanup(), sleep(15_000)]);
      process.exit(1);
    },
  );
}
