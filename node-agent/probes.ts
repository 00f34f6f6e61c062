// Container probes, after kubelet's prober: when a probe is due (nextProbe), how a result
// moves the probe's state through successThreshold/failureThreshold (recordProbe), and the
// three executors (httpGet, tcpSocket, exec). Scheduling and state are pure (injected
// clock); only the executors do I/O, and they never throw.
//
// A ProbeState belongs to one container instance: the sync step (sync.ts) resets it when it
// starts a new instance. Results stay "unknown" until a threshold is reached; a reached
// result holds until the opposite threshold is reached (kube's worker keeps the last
// result between runs).

import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import type { Runtime } from "./runtime/types.ts";

type Obj = Record<string, any>;

export type ProbeKind = "liveness" | "readiness" | "startup";

export interface ProbeState {
  successes: number;
  failures: number;
  result: "success" | "failure" | "unknown";
  /** When the last result was recorded (ms). */
  lastRun?: number;
  /** Set once the result reached success (the startup probe's "started"). */
  started?: boolean;
  /** Message of the last failed run (for "Liveness probe failed: <message>" events). */
  message?: string;
}

export interface ProbeResult {
  ok: boolean;
  message: string;
}

export const DEFAULT_PERIOD_SECONDS = 10;
export const DEFAULT_TIMEOUT_SECONDS = 1;
export const DEFAULT_SUCCESS_THRESHOLD = 1;
export const DEFAULT_FAILURE_THRESHOLD = 3;
/** kubelet's User-Agent for HTTP probes. */
export const PROBE_USER_AGENT = "kube-probe/1.31";

const posInt = (v: unknown, def: number): number => (typeof v === "number" && Number.isFinite(v) && v > 0 ? Math.floor(v) : def);
const nonNegInt = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0);

/** Which handler a probe uses; undefined when it has none (nothing to run). */
export function probeHandler(probe: Obj | undefined): "exec" | "httpGet" | "tcpSocket" | "grpc" | undefined {
  if (!probe || typeof probe !== "object") return undefined;
  if (probe.exec && typeof probe.exec === "object") return "exec";
  if (probe.httpGet && typeof probe.httpGet === "object") return "httpGet";
  if (probe.tcpSocket && typeof probe.tcpSocket === "object") return "tcpSocket";
  if (probe.grpc && typeof probe.grpc === "object") return "grpc";
  return undefined;
}

/** The probe's timeoutSeconds in ms (default 1 s), for the executors. */
export function probeTimeoutMs(probe: Obj | undefined): number {
  return posInt(probe?.timeoutSeconds, DEFAULT_TIMEOUT_SECONDS) * 1000;
}

/** A fresh state: nothing known yet. */
export function initialProbeState(): ProbeState {
  return { successes: 0, failures: 0, result: "unknown" };
}

/**
 * When the probe is next due (ms): the container's start plus initialDelaySeconds for the
 * first run, then periodSeconds after the last run. A time <= now means "due now".
 * undefined when there is no probe (or it has no handler).
 */
export function nextProbe(
  probe: Obj | undefined,
  state: ProbeState | undefined,
  containerStartedAt: number,
  now: number,
): number | undefined {
  if (!probeHandler(probe)) return undefined;
  const first = containerStartedAt + nonNegInt(probe!.initialDelaySeconds) * 1000;
  if (state?.lastRun === undefined) return first;
  // A last run in the future means the clock went backwards: run again now.
  if (state.lastRun > now) return now;
  return Math.max(first, state.lastRun + posInt(probe!.periodSeconds, DEFAULT_PERIOD_SECONDS) * 1000);
}

/**
 * The state after one run: consecutive successes/failures, and the result once
 * successThreshold/failureThreshold consecutive runs agree (kube's prober worker).
 */
export function recordProbe(probe: Obj | undefined, state: ProbeState | undefined, ok: boolean, now: number, message?: string): ProbeState {
  const prev = state ?? initialProbeState();
  const next: ProbeState = { ...prev, lastRun: now };
  if (ok) {
    next.successes = prev.successes + 1;
    next.failures = 0;
    if (next.successes >= posInt(probe?.successThreshold, DEFAULT_SUCCESS_THRESHOLD)) {
      next.result = "success";
      next.started = true;
    }
    delete next.message;
  } else {
    next.failures = prev.failures + 1;
    next.successes = 0;
    if (next.failures >= posInt(probe?.failureThreshold, DEFAULT_FAILURE_THRESHOLD)) next.result = "failure";
    next.message = message ?? "";
  }
  return next;
}

/**
 * A port of a probe or lifecycle handler as a number: numbers and numeric strings as they
 * are, names looked up in the container's ports. undefined when it cannot be resolved.
 */
export function resolvePort(port: unknown, container: Obj | undefined): number | undefined {
  if (typeof port === "number") return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
  if (typeof port !== "string" || port === "") return undefined;
  if (/^[0-9]+$/.test(port)) return resolvePort(Number(port), container);
  const ports: unknown = container?.ports;
  if (!Array.isArray(ports)) return undefined;
  const found = ports.find((p) => p && typeof p === "object" && p.name === port);
  return found ? resolvePort(found.containerPort, undefined) : undefined;
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function errText(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

/** Describes a socket error the way Go's net package does (what kube's probe messages show). */
function dialError(host: string, port: number, e: unknown): string {
  const code = (e as { code?: string } | undefined)?.code;
  const addr = hostPort(host, port);
  switch (code) {
    case "ECONNREFUSED":
      return `dial tcp ${addr}: connect: connection refused`;
    case "EHOSTUNREACH":
      return `dial tcp ${addr}: connect: no route to host`;
    case "ENETUNREACH":
      return `dial tcp ${addr}: connect: network is unreachable`;
    case "ECONNRESET":
      return `read tcp ${addr}: read: connection reset by peer`;
    default:
      return `dial tcp ${addr}: ${errText(e)}`;
  }
}

/**
 * HTTP GET probe: success for a status in [200, 400). The port must already be numeric
 * (resolvePort for named ports); host defaults to the pod IP; HTTPS skips verification like
 * kubelet does. Redirects are not followed (a 3xx counts as success).
 */
export function runHttpGet(probe: Obj, podIP: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const done = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const h: Obj = probe?.httpGet ?? probe ?? {};
      const port = resolvePort(h.port, undefined);
      const host = typeof h.host === "string" && h.host !== "" ? h.host : podIP;
      const scheme = String(h.scheme ?? "HTTP").toUpperCase() === "HTTPS" ? "https" : "http";
      let path = typeof h.path === "string" && h.path !== "" ? h.path : "/";
      if (!path.startsWith("/")) path = `/${path}`;
      const url = port === undefined ? `${scheme}://${host}${path}` : `${scheme}://${hostPort(host, port)}${path}`;
      if (port === undefined) return done({ ok: false, message: `Get "${url}": invalid port ${JSON.stringify(h.port)}` });
      if (!host) return done({ ok: false, message: `Get "${url}": no host to probe` });
      const headers: Record<string, string> = { "User-Agent": PROBE_USER_AGENT, Accept: "*/*" };
      if (Array.isArray(h.httpHeaders)) {
        for (const hd of h.httpHeaders) if (hd && typeof hd.name === "string" && hd.name) headers[hd.name] = String(hd.value ?? "");
      }
      const mod = scheme === "https" ? https : http;
      const req = mod.request(
        {
          host: host.replace(/^\[|\]$/g, ""),
          port,
          path,
          method: "GET",
          headers,
          ...(scheme === "https" ? { rejectUnauthorized: false } : {}),
        },
        (res) => {
          const code = res.statusCode ?? 0;
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            if (body.length < 10240) body += chunk;
          });
          const finish = (): void => {
            if (code >= 200 && code < 400) done({ ok: true, message: "" });
            else done({ ok: false, message: `HTTP probe failed with statuscode: ${code}` });
          };
          res.on("end", finish);
          res.on("error", finish);
          res.on("close", finish);
        },
      );
      timer = setTimeout(
        () => {
          done({ ok: false, message: `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` });
          req.destroy();
        },
        Math.max(1, timeoutMs),
      );
      req.on("error", (e) => done({ ok: false, message: `Get "${url}": ${dialError(host, port, e)}` }));
      req.end();
    } catch (e) {
      done({ ok: false, message: errText(e) });
    }
  });
}

/** TCP socket probe: success when a connection opens within the timeout. */
export function runTcpSocket(probe: Obj, podIP: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    let sock: net.Socket | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock?.destroy();
      resolve(r);
    };
    try {
      const t: Obj = probe?.tcpSocket ?? probe ?? {};
      const port = resolvePort(t.port, undefined);
      const host = typeof t.host === "string" && t.host !== "" ? t.host : podIP;
      if (port === undefined) return done({ ok: false, message: `invalid port ${JSON.stringify(t.port)}` });
      if (!host) return done({ ok: false, message: "no host to probe" });
      timer = setTimeout(() => done({ ok: false, message: `dial tcp ${hostPort(host, port)}: i/o timeout` }), Math.max(1, timeoutMs));
      sock = net.connect({ host: host.replace(/^\[|\]$/g, ""), port });
      sock.on("connect", () => done({ ok: true, message: "" }));
      sock.on("error", (e) => done({ ok: false, message: dialError(host, port, e) }));
    } catch (e) {
      done({ ok: false, message: errText(e) });
    }
  });
}

/**
 * Exec probe through the runtime: success when the command exits 0; the message of a
 * failure is the command's output (like kubelet), or the error.
 */
export async function runExec(probe: Obj, containerId: string, exec: Runtime["exec"], timeoutMs: number): Promise<ProbeResult> {
  const e: Obj = probe?.exec ?? probe ?? {};
  const command: string[] = Array.isArray(e.command) ? e.command.map(String) : [];
  if (command.length === 0) return { ok: false, message: "exec probe without a command" };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<ProbeResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, message: `command ${JSON.stringify(command.join(" "))} timed out` }),
      Math.max(1, timeoutMs) + 1000,
    );
  });
  const run = (async (): Promise<ProbeResult> => {
    try {
      const r = await exec(containerId, command, timeoutMs);
      if (r.exitCode === 0) return { ok: true, message: "" };
      const out = String(r.output ?? "").trim();
      return { ok: false, message: out || `command ${JSON.stringify(command.join(" "))} exited with ${r.exitCode}` };
    } catch (err) {
      return { ok: false, message: errText(err) };
    }
  })();
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
