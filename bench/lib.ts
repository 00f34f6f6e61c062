// Shared helpers for the benchmarks: a latency histogram, percentiles, a small HTTP
// client (undici from node_modules when present, else node:http with a keep-alive
// Agent), process CPU accounting from /proc, and free loopback ports.
//
// Runs on Node's native TypeScript stripping: erasable syntax only.

import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";

/** Wall-clock time in ms with sub-ms resolution, comparable across threads and processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ------------------------------------------------------------------ histogram

/**
 * Fixed-bucket latency histogram in ms: 10 µs buckets up to 100 ms, 1 ms buckets up to
 * 100 s; the exact max is kept. Mergeable across threads (plain arrays).
 */
export class Histogram {
  fine = new Uint32Array(10_000); // [0, 100) ms by 0.01
  coarse = new Uint32Array(100_000); // [0, 100000) ms by 1
  over = 0;
  count = 0;
  sum = 0;
  max = 0;
  min = Infinity;

  record(ms: number): void {
    if (!(ms >= 0)) ms = 0; // clock jitter between threads can give -0.00x
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
    if (ms < this.min) this.min = ms;
    if (ms < 100) this.fine[Math.floor(ms * 100)]++;
    else if (ms < 100_000) this.coarse[Math.floor(ms)]++;
    else this.over++;
  }

  merge(o: HistogramData): void {
    for (let i = 0; i < this.fine.length; i++) this.fine[i] += o.fine[i];
    for (let i = 0; i < this.coarse.length; i++) this.coarse[i] += o.coarse[i];
    this.over += o.over;
    this.count += o.count;
    this.sum += o.sum;
    if (o.max > this.max) this.max = o.max;
    if (o.min < this.min) this.min = o.min;
  }

  /** Upper edge of the bucket holding the q-quantile (q in [0,1]). */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.fine.length; i++) {
      seen += this.fine[i];
      if (seen >= rank) return Math.min(this.max, (i + 1) / 100);
    }
    for (let i = 100; i < this.coarse.length; i++) {
      seen += this.coarse[i];
      if (seen >= rank) return Math.min(this.max, i + 1);
    }
    return this.max;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      mean: this.count ? this.sum / this.count : NaN,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: this.count ? this.max : NaN,
    };
  }

  data(): HistogramData {
    return { fine: this.fine, coarse: this.coarse, over: this.over, count: this.count, sum: this.sum, max: this.max, min: this.min };
  }
}

export interface HistogramData {
  fine: Uint32Array;
  coarse: Uint32Array;
  over: number;
  count: number;
  sum: number;
  max: number;
  min: number;
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Exact percentiles of a sample array (sorted in place). */
export function summarize(samples: number[]): LatencySummary {
  const n = samples.length;
  if (n === 0) return { count: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN };
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))];
  let sum = 0;
  for (const s of samples) sum += s;
  return { count: n, mean: sum / n, p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: samples[n - 1] };
}

export function fmtMs(v: number): string {
  if (!Number.isFinite(v)) return "-";
  if (Math.abs(v) < 10) return v.toFixed(2);
  if (Math.abs(v) < 100) return v.toFixed(1);
  return v.toFixed(0);
}

// ------------------------------------------------------------------ HTTP

export interface Reply {
  status: number;
  text: string;
}

export interface StreamHandle {
  status: number;
  close(): void;
  /** Resolves when the response body ends (or the stream is closed/broken). */
  ended: Promise<void>;
}

export interface HttpClient {
  readonly kind: string;
  request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply>;
  /** A streaming request: onData gets each chunk as a string (utf-8). */
  stream(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    onData: (s: string) => void,
  ): Promise<StreamHandle>;
  close(): Promise<void>;
}

let undiciMod: any | null | undefined;

async function loadUndici(): Promise<any | null> {
  if (undiciMod !== undefined) return undiciMod;
  try {
    undiciMod = await import("undici");
  } catch {
    undiciMod = null;
  }
  return undiciMod;
}

/**
 * A keep-alive client for one origin with up to `connections` sockets (one request in
 * flight per socket, no pipelining). undici's Pool when available, else node:http.
 */
export async function httpClient(
  origin: string,
  connections: number,
  opts: { forceNodeHttp?: boolean; timeoutMs?: number } = {},
): Promise<HttpClient> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const u = opts.forceNodeHttp ? null : await loadUndici();
  if (u?.Pool) return undiciClient(u, origin, connections, timeoutMs);
  return nodeHttpClient(origin, connections, timeoutMs);
}

function undiciClient(u: any, origin: string, connections: number, timeoutMs: number): HttpClient {
  const pool = new u.Pool(origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: timeoutMs,
    bodyTimeout: 0, // streams are long-lived; request() bodies are bounded by the caller
    connectTimeout: timeoutMs,
  });
  return {
    kind: "undici Pool",
    async request(method, path, headers, body) {
      const r = await pool.request({ method, path, headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      const text = await r.body.text();
      return { status: r.statusCode, text };
    },
    async stream(method, path, headers, body, onData) {
      const ac = new AbortController();
      const r = await pool.request({ method, path, headers, body, signal: ac.signal, headersTimeout: timeoutMs, bodyTimeout: 0 });
      r.body.setEncoding("utf8");
      const ended = new Promise<void>((resolve) => {
        r.body.on("data", onData);
        r.body.on("end", () => resolve());
        r.body.on("error", () => resolve());
        r.body.on("close", () => resolve());
      });
      return {
        status: r.statusCode,
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
    },
    async close() {
      await pool.destroy().catch(() => {});
    },
  };
}

function nodeHttpClient(origin: string, connections: number, timeoutMs: number): HttpClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const o = new URL(origin);
  const base = { host: o.hostname, port: Number(o.port), agent };
  const start = (method: string, path: string, headers: Record<string, string>, body: string | undefined) =>
    new Promise<http.IncomingMessage>((resolve, reject) => {
      const h: Record<string, string | number> = { ...headers };
      if (body !== undefined) h["content-length"] = Buffer.byteLength(body);
      const req = http.request({ ...base, method, path, headers: h }, resolve);
      req.setTimeout(timeoutMs, () => req.destroy(new Error("request timeout")));
      req.on("error", reject);
      req.end(body);
    });
  return {
    kind: "node:http Agent(keepAlive)",
    async request(method, path, headers, body) {
      const res = await start(method, path, headers, body);
      res.setEncoding("utf8");
      let text = "";
      for await (const c of res) text += c;
      return { status: res.statusCode ?? 0, text };
    },
    async stream(method, path, headers, body, onData) {
      const res = await start(method, path, headers, body);
      res.socket.setTimeout(0);
      res.setEncoding("utf8");
      const ended = new Promise<void>((resolve) => {
        res.on("data", onData);
        res.on("end", () => resolve());
        res.on("error", () => resolve());
        res.on("close", () => resolve());
      });
      return {
        status: res.statusCode ?? 0,
        ended,
        close() {
          res.destroy();
        },
      };
    },
    async close() {
      agent.destroy();
    },
  };
}

// ------------------------------------------------------------------ processes

/** A free TCP port on 127.0.0.1 (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const CLK_TCK = 100; // USER_HZ on Linux

function statFields(path: string): string[] | null {
  try {
    const s = readFileSync(path, "utf8");
    // comm may contain spaces; fields after the closing paren are space-separated.
    const close = s.lastIndexOf(")");
    return [s.slice(s.indexOf("(") + 1, close), ...s.slice(close + 2).split(" ")];
  } catch {
    return null;
  }
}

/** CPU seconds (user+system) of a process, or NaN when /proc is not readable. */
export function procCpuSeconds(pid: number): number {
  const f = statFields(`/proc/${pid}/stat`);
  if (!f) return NaN;
  // After comm: [1]=state ... utime is field 14 overall → index 12 here (comm at 0).
  return (Number(f[12]) + Number(f[13])) / CLK_TCK;
}

/** CPU seconds per thread of a process: name → seconds (threads with the same name summed per tid). */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const f = statFields(`/proc/${pid}/task/${tid}/stat`);
    if (!f) continue;
    out.set(`${f[0]}#${tid}`, (Number(f[12]) + Number(f[13])) / CLK_TCK);
  }
  return out;
}

/** Descendant pids of pid whose command name is comm. */
export function findDescendants(pid: number, comm: string): number[] {
  const children = new Map<number, number[]>();
  const names = new Map<number, string>();
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const f = statFields(`/proc/${e}/stat`);
    if (!f) continue;
    const p = Number(e);
    const ppid = Number(f[2]);
    names.set(p, f[0]);
    const list = children.get(ppid) ?? [];
    list.push(p);
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const c of children.get(p) ?? []) {
      if (names.get(c) === comm) out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Aggregate CPU time of the machine from /proc/stat, in seconds: busy, idle, iowait. */
export function machineCpu(): { busy: number; idle: number; iowait: number } {
  try {
    const first = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = first;
    return { busy: (user + nice + system + irq + softirq + steal) / CLK_TCK, idle: idle / CLK_TCK, iowait: (iowait ?? 0) / CLK_TCK };
  } catch {
    return { busy: NaN, idle: NaN, iowait: NaN };
  }
}

/**
 * Waits (up to maxSeconds) until the whole machine is nearly idle: busy below
 * maxBusyPct (% of one core) over a 1 s sample. Returns the last sample's busy %.
 */
export async function waitIdle(maxSeconds: number, maxBusyPct: number): Promise<{ busyPct: number; waitedSeconds: number }> {
  const t0 = performance.now();
  let busyPct = NaN;
  do {
    const a = machineCpu();
    await sleep(1000);
    const b = machineCpu();
    busyPct = 100 * (b.busy - a.busy);
    if (!(busyPct > maxBusyPct)) break;
  } while ((performance.now() - t0) / 1000 < maxSeconds);
  return { busyPct, waitedSeconds: (performance.now() - t0) / 1000 };
}

/**
 * CPU use of a set of processes over an interval: call start(), then stop() → total
 * seconds and the busiest thread's seconds per pid.
 */
export class CpuMeter {
  private readonly pids: number[];
  private t0 = 0;
  private c0 = new Map<number, number>();
  private th0 = new Map<number, Map<string, number>>();
  private self0: NodeJS.CpuUsage | null = null;
  private m0 = machineCpu();

  constructor(pids: number[]) {
    this.pids = pids;
  }

  start(): void {
    this.t0 = performance.now();
    this.self0 = process.cpuUsage();
    this.m0 = machineCpu();
    for (const p of this.pids) {
      this.c0.set(p, procCpuSeconds(p));
      this.th0.set(p, threadCpuSeconds(p));
    }
  }

  stop(): CpuReport {
    const wall = (performance.now() - this.t0) / 1000;
    const self = process.cpuUsage(this.self0 ?? undefined);
    const procs: CpuReport["procs"] = [];
    for (const p of this.pids) {
      const total = procCpuSeconds(p) - (this.c0.get(p) ?? NaN);
      const th1 = threadCpuSeconds(p);
      const before = this.th0.get(p) ?? new Map();
      let busiest = 0;
      let busiestName = "";
      for (const [k, v] of th1) {
        const d = v - (before.get(k) ?? 0);
        if (d > busiest) {
          busiest = d;
          busiestName = k;
        }
      }
      procs.push({
        pid: p,
        cpuSeconds: total,
        cpuPct: (100 * total) / wall,
        busiestThread: busiestName,
        busiestThreadPct: (100 * busiest) / wall,
      });
    }
    const m1 = machineCpu();
    const benchPct = (100 * (self.user + self.system)) / 1e6 / wall;
    const machineBusyPct = (100 * (m1.busy - this.m0.busy)) / wall;
    const ours = benchPct + procs.reduce((a, p) => a + (Number.isFinite(p.cpuPct) ? p.cpuPct : 0), 0);
    return {
      wallSeconds: wall,
      benchProcessCpuPct: benchPct,
      procs,
      machineBusyPct,
      iowaitPct: (100 * (m1.iowait - this.m0.iowait)) / wall,
      otherProcessesPct: Math.max(0, machineBusyPct - ours),
    };
  }
}

export interface CpuReport {
  wallSeconds: number;
  /** This Node process (write clients and watcher threads), % of one core. */
  benchProcessCpuPct: number;
  procs: { pid: number; cpuSeconds: number; cpuPct: number; busiestThread: string; busiestThreadPct: number }[];
  /** All CPUs of the machine, % of one core (200% = two cores busy). */
  machineBusyPct: number;
  iowaitPct: number;
  /** Machine busy minus the server and this process: other load sharing the CPUs. */
  otherProcessesPct: number;
}

/**
 * The main() every benchmark shares: parse options (undefined: --help was printed), run
 * with a watchdog of maxSeconds, clean up on every way out (done, error, signal,
 * watchdog), print the report (and the raw result as JSON with --json).
 */
export function benchMain<O extends { maxSeconds: number; json: boolean }, R>(opts: {
  parse: () => O | undefined | null;
  run: (o: O) => Promise<R>;
  report: (r: R) => string;
  cleanup: () => Promise<void>;
  log: (msg: string) => void;
  cleanupGraceMs?: number;
}): void {
  const grace = opts.cleanupGraceMs ?? 15_000;
  const stop = (code: number) => Promise.race([opts.cleanup(), sleep(grace)]).then(() => process.exit(code));
  const main = async () => {
    const o = opts.parse();
    if (!o) return;
    const watchdog = setTimeout(() => {
      opts.log(`giving up: the run exceeded --max-seconds ${o.maxSeconds}`);
      void stop(3);
    }, o.maxSeconds * 1000);
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.once(sig, () => {
        opts.log(`${sig}: stopping`);
        void stop(130);
      });
    }
    const r = await opts.run(o);
    clearTimeout(watchdog);
    await opts.cleanup();
    const text = opts.report(r);
    if (o.json) {
      process.stderr.write(`${text}\n`);
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    } else {
      process.stdout.write(`${text}\n`);
    }
  };
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      void stop(1);
    },
  );
}
