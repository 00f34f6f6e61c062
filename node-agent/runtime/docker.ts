// DockerRuntime: containers through the Docker Engine API, HTTP over the engine's unix socket
// (node:http with socketPath; no client library). Works with podman's Docker-compatible
// socket too: only long-standing fields are used (no docker-only ones where a portable one
// exists), the API version is negotiated from /version (the engine's, capped at the newest
// this client knows, and never below the engine's minimum).
//
// Sandbox (the pod's shared network): one "infra" container per pod, like kube's pause
// container, made from a tiny image built here (pause.ts: a static binary that sleeps, imported
// with POST /images/create?fromSrc=-, so no registry is needed; the sandboxImage option picks
// another image, used with its own command). It gets the engine's default network (or the
// `network` option), the pod's hostname and the pod's hostPort bindings; every app container
// joins it with NetworkMode container:<infra>, so they share one IP and localhost, and a
// restarting app container keeps the pod's IP. The sandbox's IP is the pod IP (the host's
// primary IPv4 when the engine reports none, e.g. rootless podman). Containers that join
// another's network cannot publish ports, so hostPorts are published by the sandbox: pass the
// pod's ports to ensureSandbox; start() recreates a sandbox that lacks a hostPort only while
// none of the pod's containers runs, and fails otherwise.
//
// Logs: the engine keeps the container's output (its own log driver); after start() the
// runtime follows GET /containers/{id}/logs?follow=1&timestamps=1 and appends the demultiplexed
// stdout+stderr, without the timestamps, to logPath (opened per write, so copy-truncate or
// rename rotation both work). The timestamps let a broken stream resume where it stopped; an
// agent that restarts resumes following its running containers from logPath's mtime (the path
// is kept in a label), so output is neither lost nor, except within that instant, duplicated.
//
// Interactive sessions: execStream creates an exec and starts it hijacked (the HTTP
// connection upgraded to a raw stream: Docker's 8-byte multiplexing headers without a tty, raw
// bytes with one); attach hijacks POST /containers/{id}/attach the same way, multiplexed
// unless the container itself has a tty. Containers get OpenStdin/StdinOnce/Tty from the pod
// spec, so attach has a stdin to write to. Half-closing the connection is stdin's EOF. The
// engine cannot kill an exec'd process: abandoning a session closes its connection and
// kills the process by the host pid the engine reports (where that pid is ours to signal).
//
// Everything is found again by labels (LABEL_NODE=<node>), so a new DockerRuntime adopts the
// containers of the previous one. Exec probes use the exec API; a timed-out exec reports
// EXEC_TIMEOUT_EXIT_CODE (the engine has no way to kill an exec'd process: it runs on).

import * as fs from "node:fs";
import * as http from "node:http";
import type * as net from "node:net";
import { PassThrough, Writable } from "node:stream";
import { pauseImageTar } from "./pause.ts";
import {
  type ContainerConfig,
  type ContainerState,
  type ContainerStatus,
  EXEC_TIMEOUT_EXIT_CODE,
  type ExecSession,
  type ImagePullContext,
  ImagePullError,
  LABEL_ATTEMPT,
  LABEL_CONTAINER_NAME,
  LABEL_NODE,
  LABEL_POD_NAME,
  LABEL_POD_NAMESPACE,
  LABEL_POD_UID,
  type PodSandbox,
  type PortMapping,
  type Runtime,
  type StreamOptions,
} from "./types.ts";
import { appendCapped, appendToFile, exitReason, hostPrimaryIPv4, withNodeLabel } from "./util.ts";

/** Marks a pod's infra (sandbox) container. */
export const LABEL_SANDBOX = "io.kubeflare.sandbox";
/** Where the container's output is copied (so a restarted agent resumes following it). */
export const LABEL_LOG_PATH = "io.kubeflare.container.log-path";
/** The image of the built-in pause binary (pause.ts), imported on first use. */
export const BUILTIN_PAUSE_IMAGE = "kubeflare/pause:1";

/** The newest Engine API version this client is written against. */
const CLIENT_API_VERSION = "1.47";
/** Marks a container made with a tty: its logs are a raw stream, not multiplexed. */
export const LABEL_TTY = "io.kubeflare.container.tty";
/** Our labels that are not the agent's (not reported back in ContainerStatus.labels). */
const INTERNAL_LABELS = [LABEL_LOG_PATH, LABEL_TTY];

export interface DockerRuntimeOptions {
  /** The engine's unix socket (default /var/run/docker.sock; podman: /run/podman/podman.sock). */
  socketPath?: string;
  nodeName: string;
  /** Image of the pod sandboxes (default: the built-in pause image, made without a registry). */
  sandboxImage?: string;
  /** Network of the pod sandboxes (default: the engine's default network). */
  network?: string;
  /** Log driver of app containers, passed as HostConfig.LogConfig (default: the engine's). */
  logConfig?: { Type: string; Config?: Record<string, string> };
  /** Inactivity timeout of image pulls (default 10 minutes). */
  pullTimeoutMs?: number;
  /** Timeout of ordinary API calls (default 60 s). */
  requestTimeoutMs?: number;
}

export class DockerError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

interface EngineVersion {
  Version: string;
  ApiVersion: string;
  MinAPIVersion?: string;
  Arch?: string;
  Os?: string;
  Components?: { Name: string; Version: string }[];
}

interface Follower {
  active: boolean;
  /** The engine refused to stream this container's logs (e.g. a log driver it cannot read): no retry. */
  refused?: boolean;
  /** Timestamp of the last log message copied (RFC 3339 as the engine wrote it). */
  lastTs?: string;
  req?: http.ClientRequest;
  /** Appends in order; resolves when everything received so far is written. */
  writes: Promise<void>;
  ended: Promise<void>;
}

interface CachedInspect {
  /** The list's State when this was inspected: re-inspect when it changes. */
  listState: string;
  status: ContainerStatus;
}

function versionTuple(v: string): [number, number] {
  const [a, b] = v.split(".").map((x) => Number.parseInt(x, 10));
  return [a || 0, b || 0];
}

function versionLess(a: string, b: string): boolean {
  const [a1, a2] = versionTuple(a);
  const [b1, b2] = versionTuple(b);
  return a1 < b1 || (a1 === b1 && a2 < b2);
}

/** The API version to speak: min(engine, client), but not below the engine's minimum. */
export function negotiateApiVersion(engine: EngineVersion): string {
  let v = engine.ApiVersion && versionLess(engine.ApiVersion, CLIENT_API_VERSION) ? engine.ApiVersion : CLIENT_API_VERSION;
  if (engine.MinAPIVersion && versionLess(v, engine.MinAPIVersion)) v = engine.MinAPIVersion;
  return v;
}

// Docker's reference grammar, simplified: [domain[:port]/]path[:tag][@digest].
const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const IMAGE_REF = new RegExp(
  `^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?${COMPONENT}(?:/${COMPONENT})*` +
    "(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$",
);

export function validImageName(image: string): boolean {
  return image.length <= 255 && IMAGE_REF.test(image);
}

/** fromImage and tag (or digest) for POST /images/create. */
export function splitImage(image: string): { fromImage: string; tag: string } {
  const at = image.indexOf("@");
  if (at >= 0) return { fromImage: image.slice(0, at), tag: image.slice(at + 1) };
  const colon = image.lastIndexOf(":");
  if (colon > image.lastIndexOf("/")) return { fromImage: image.slice(0, colon), tag: image.slice(colon + 1) };
  return { fromImage: image, tag: "latest" };
}

/** Splits Docker's multiplexed stream (8-byte frame headers) into payloads; returns the rest. */
export function demux(buf: Buffer, onFrame: (stream: number, payload: Buffer) => void): Buffer {
  let off = 0;
  while (buf.length - off >= 8) {
    const size = buf.readUInt32BE(off + 4);
    if (buf.length - off - 8 < size) break;
    onFrame(buf[off], buf.subarray(off + 8, off + 8 + size));
    off += 8 + size;
  }
  return buf.subarray(off);
}

const TS_PREFIX = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d) /;

/** The Unix "seconds.nanoseconds" form of an RFC 3339 timestamp plus 1 ns (logs' since). */
export function sinceAfter(ts: string): string | undefined {
  const m = TS_PREFIX.exec(ts + " ");
  if (!m) return undefined;
  const ms = Date.parse(m[1] + m[3]);
  if (Number.isNaN(ms)) return undefined;
  let secs = Math.floor(ms / 1000);
  let nanos = Number((m[2] ?? "").padEnd(9, "0").slice(0, 9)) + 1;
  if (nanos >= 1e9) {
    secs += 1;
    nanos -= 1e9;
  }
  return `${secs}.${String(nanos).padStart(9, "0")}`;
}

function parseTime(s: string | undefined): Date | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) || t <= 0 ? undefined : new Date(t);
}

/** Docker and podman state words to ours. */
export function mapState(s: string | undefined): ContainerState {
  switch ((s ?? "").toLowerCase()) {
    case "running":
    case "paused":
    case "restarting":
    case "stopping":
      return "running";
    case "created":
    case "configured":
    case "initialized":
      return "created";
    case "exited":
    case "stopped":
    case "dead":
    case "removing":
      return "exited";
    default:
      return "unknown";
  }
}

function readAll(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () => resolve(Buffer.concat(chunks)));
    res.on("error", reject);
    res.on("aborted", () => reject(new Error("response aborted")));
  });
}

function errorMessage(body: Buffer, status: number): string {
  const text = body.toString("utf8").trim();
  try {
    const j = JSON.parse(text);
    if (j && typeof j.message === "string") return j.message;
    if (j && typeof j.cause === "string") return j.cause;
  } catch {
    // not JSON
  }
  return text || `HTTP ${status}`;
}

/** The first error of a JSON-lines progress stream (pull, import), if any. */
function streamError(body: Buffer): string | undefined {
  for (const line of body.toString("utf8").split(/\r?\n/)) {
    if (!line.trim()) continue;
    try {
      const j = JSON.parse(line);
      if (j?.error) return typeof j.error === "string" ? j.error : (j.errorDetail?.message ?? JSON.stringify(j.error));
      if (j?.errorDetail?.message) return j.errorDetail.message;
    } catch {
      // progress lines may be split or not JSON: only errors matter
    }
  }
  return undefined;
}

type Query = Record<string, string | number | boolean | undefined>;

interface RequestOptions {
  query?: Query;
  body?: Buffer | object;
  contentType?: string;
  /** Socket inactivity timeout; 0 for none (followed streams). */
  timeoutMs?: number;
  /** false: no /v1.xx prefix (for /version itself). */
  versioned?: boolean;
}

export class DockerRuntime implements Runtime {
  readonly name = "docker";
  readonly nodeName: string;
  readonly socketPath: string;
  private readonly opts: DockerRuntimeOptions;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  private engine?: Promise<{ info: EngineVersion; prefix: string }>;
  private readonly followers = new Map<string, Follower>();
  private readonly inspectCache = new Map<string, CachedInspect>();
  private readonly sandboxLocks = new Map<string, Promise<unknown>>();
  private pauseImageReady?: Promise<void>;
  private closed = false;

  constructor(opts: DockerRuntimeOptions) {
    this.opts = opts;
    this.nodeName = opts.nodeName;
    this.socketPath = opts.socketPath ?? "/var/run/docker.sock";
  }

  // ---- HTTP ----

  private engineInfo(): Promise<{ info: EngineVersion; prefix: string }> {
    if (!this.engine) {
      this.engine = (async () => {
        const info = (await this.json("GET", "/version", { versioned: false })) as EngineVersion;
        return { info, prefix: `/v${negotiateApiVersion(info)}` };
      })();
      this.engine.catch(() => {
        this.engine = undefined; // try again next time
      });
    }
    return this.engine;
  }

  /** The negotiated API version (e.g. "1.41"). */
  async apiVersion(): Promise<string> {
    return (await this.engineInfo()).prefix.slice(2);
  }

  private async send(method: string, p: string, o: RequestOptions = {}): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
    const prefix = o.versioned === false ? "" : (await this.engineInfo()).prefix;
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const q = qs.toString();
    let body: Buffer | undefined;
    const headers: Record<string, string> = {};
    if (Buffer.isBuffer(o.body)) {
      body = o.body as Buffer;
      headers["content-type"] = o.contentType ?? "application/octet-stream";
    } else if (o.body !== undefined) {
      body = Buffer.from(JSON.stringify(o.body));
      headers["content-type"] = "application/json";
    }
    if (body) headers["content-length"] = String(body.length);
    const timeout = o.timeoutMs ?? this.opts.requestTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const req = http.request(
        { socketPath: this.socketPath, agent: this.agent, method, path: prefix + p + (q ? `?${q}` : ""), headers },
        (res) => resolve({ req, res }),
      );
      req.on("error", reject);
      if (timeout > 0) req.setTimeout(timeout, () => req.destroy(new Error(`docker: ${method} ${p} timed out after ${timeout}ms`)));
      req.end(body);
    });
  }

  private async call(method: string, p: string, o: RequestOptions = {}): Promise<{ status: number; body: Buffer }> {
    const { res } = await this.send(method, p, o);
    const body = await readAll(res);
    return { status: res.statusCode ?? 0, body };
  }

  /** A call that must succeed (2xx, or one of okStatuses): its JSON body (undefined if empty). */
  private async json(method: string, p: string, o: RequestOptions = {}, okStatuses: number[] = []): Promise<any> {
    const { status, body } = await this.call(method, p, o);
    if ((status < 200 || status >= 300) && !okStatuses.includes(status)) throw new DockerError(status, errorMessage(body, status));
    const text = body.toString("utf8").trim();
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }

  // ---- Runtime ----

  async version(): Promise<string> {
    return (await this.engineInfo()).info.Version;
  }

  /** Whether an engine answers on the socket (no error thrown). */
  async ping(): Promise<boolean> {
    try {
      await this.engineInfo();
      return true;
    } catch {
      return false;
    }
  }

  async imagePresent(image: string): Promise<boolean> {
    const { status, body } = await this.call("GET", `/images/${encodeURI(image)}/json`);
    if (status === 200) return true;
    if (status === 404) return false;
    throw new DockerError(status, errorMessage(body, status));
  }

  async ensureImage(image: string, policy: ContainerConfig["imagePullPolicy"], _context?: ImagePullContext): Promise<void> {
    if (!validImageName(image))
      throw new ImagePullError("InvalidImageName", `Failed to apply default image tag "${image}": invalid reference format`);
    if (policy !== "Always" && (await this.imagePresent(image))) return;
    if (policy === "Never") {
      throw new ImagePullError("ErrImageNeverPull", `Container image "${image}" is not present with pull policy of Never`);
    }
    const { fromImage, tag } = splitImage(image);
    let result: { status: number; body: Buffer };
    try {
      result = await this.call("POST", "/images/create", { query: { fromImage, tag }, timeoutMs: this.opts.pullTimeoutMs ?? 600_000 });
    } catch (e: any) {
      throw new ImagePullError("ErrImagePull", `failed to pull image "${image}": ${e?.message ?? e}`);
    }
    const err = result.status >= 300 ? errorMessage(result.body, result.status) : streamError(result.body);
    if (err !== undefined) throw new ImagePullError("ErrImagePull", `failed to pull image "${image}": ${err}`);
    if (!(await this.imagePresent(image))) {
      throw new ImagePullError("ErrImagePull", `failed to pull image "${image}": the engine reported no error but the image is absent`);
    }
  }

  async ensureSandbox(podUID: string, podName: string, podNamespace: string, ports: PortMapping[] = []): Promise<PodSandbox> {
    const sb = await this.withSandboxLock(podUID, () => this.sandbox(podUID, podName, podNamespace, ports));
    return { ip: sb.ip };
  }

  async removeSandbox(podUID: string): Promise<void> {
    await this.withSandboxLock(podUID, async () => {
      for (const c of await this.findSandboxes(podUID)) await this.forceRemove(c.Id);
    });
  }

  async start(config: ContainerConfig): Promise<string> {
    const hostPorts = config.ports.filter((p) => p.hostPort);
    const sandbox = await this.withSandboxLock(config.podUID, async () => {
      let sb = await this.sandbox(config.podUID, config.podName, config.podNamespace, config.ports);
      const missing = hostPorts.filter((p) => !sb.published.has(portKey(p)));
      if (missing.length > 0) {
        const others = await this.podContainers(config.podUID);
        if (others.some((c) => mapState(c.State) === "running")) {
          throw new Error(
            `hostPort ${missing.map((p) => p.hostPort).join(", ")} of container ${config.name} is not published by the pod's sandbox, ` +
              "which cannot change while the pod's containers run (pass the pod's ports to ensureSandbox)",
          );
        }
        await this.forceRemove(sb.id);
        sb = await this.sandbox(config.podUID, config.podName, config.podNamespace, [...sb.ports, ...config.ports]);
      }
      return sb;
    });

    const labels: Record<string, string> = { ...withNodeLabel(config.labels, this.nodeName), [LABEL_LOG_PATH]: config.logPath };
    if (config.tty) labels[LABEL_TTY] = "true";
    const hostConfig: Record<string, unknown> = {
      NetworkMode: `container:${sandbox.id}`,
      Binds: config.mounts.map((m) => `${m.hostPath}:${m.containerPath}${m.readOnly ? ":ro" : ""}`),
      RestartPolicy: { Name: "no" },
    };
    if (config.cpuMilli) hostConfig.NanoCpus = config.cpuMilli * 1_000_000;
    if (config.memoryBytes) hostConfig.Memory = config.memoryBytes;
    if (this.opts.logConfig) hostConfig.LogConfig = this.opts.logConfig;
    const body: Record<string, unknown> = {
      Image: config.image,
      Env: Object.entries(config.env).map(([k, v]) => `${k}=${v}`),
      Labels: labels,
      Tty: config.tty === true,
      OpenStdin: config.stdin === true,
      StdinOnce: config.stdinOnce === true,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      HostConfig: hostConfig,
    };
    // kube semantics: command replaces the entrypoint (and then the image's CMD is dropped),
    // args replace CMD
    if (config.command.length > 0) {
      body.Entrypoint = config.command;
      body.Cmd = config.args;
    } else if (config.args.length > 0) {
      body.Cmd = config.args;
    }
    if (config.workingDir) body.WorkingDir = config.workingDir;
    const name = containerName(config);
    const id = await this.create(name, body);
    try {
      await this.json("POST", `/containers/${id}/start`, {}, [304]);
    } catch (e: any) {
      await this.forceRemove(id).catch(() => {});
      throw new Error(`cannot start container ${config.name}: ${e?.message ?? e}`);
    }
    this.follow(id, config.logPath, undefined, config.tty === true);
    return id;
  }

  async stop(id: string, graceSeconds: number): Promise<void> {
    const t = Math.max(0, Math.ceil(graceSeconds));
    await this.json("POST", `/containers/${id}/stop`, { query: { t }, timeoutMs: (t + 60) * 1000 }, [304, 404]);
  }

  async remove(id: string): Promise<void> {
    await this.forceRemove(id);
    this.inspectCache.delete(id);
  }

  async list(): Promise<ContainerStatus[]> {
    const all = (await this.json("GET", "/containers/json", {
      query: { all: 1, filters: JSON.stringify({ label: [`${LABEL_NODE}=${this.nodeName}`] }) },
    })) as any[];
    const out: ContainerStatus[] = [];
    const seen = new Set<string>();
    for (const c of all ?? []) {
      const labels: Record<string, string> = c.Labels ?? {};
      if (labels[LABEL_SANDBOX]) continue;
      seen.add(c.Id);
      let cached = this.inspectCache.get(c.Id);
      if (!cached || cached.listState !== c.State) {
        const status = await this.inspectStatus(c.Id);
        if (!status) continue; // removed meanwhile
        cached = { listState: c.State, status };
        this.inspectCache.set(c.Id, cached);
      }
      out.push(cached.status);
      this.resumeFollowing(c.Id, cached.status.state, labels[LABEL_LOG_PATH], labels[LABEL_TTY] === "true");
    }
    for (const id of this.inspectCache.keys()) if (!seen.has(id)) this.inspectCache.delete(id);
    return out;
  }

  async exec(id: string, command: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    if (command.length === 0) throw new Error("exec needs a command");
    const created = await this.json("POST", `/containers/${id}/exec`, {
      body: { AttachStdin: false, AttachStdout: true, AttachStderr: true, Tty: false, Cmd: command },
    });
    const execId: string = created.Id;
    const chunks: Buffer[] = [];
    const size = { size: 0 };
    const { req, res } = await this.send("POST", `/exec/${execId}/start`, { body: { Detach: false, Tty: false }, timeoutMs: 0 });
    if ((res.statusCode ?? 0) >= 300) {
      const body = await readAll(res);
      throw new DockerError(res.statusCode ?? 0, errorMessage(body, res.statusCode ?? 0));
    }
    const timedOut = await new Promise<boolean>((resolve) => {
      let rest: Buffer = Buffer.alloc(0);
      const timer = setTimeout(() => {
        req.destroy();
        resolve(true);
      }, timeoutMs);
      res.on("data", (c: Buffer) => {
        rest = demux(rest.length ? Buffer.concat([rest, c]) : c, (_s, payload) => appendCapped(chunks, size, payload));
      });
      const done = () => {
        clearTimeout(timer);
        resolve(false);
      };
      res.on("end", done);
      res.on("close", done);
      res.on("error", done);
    });
    const output = Buffer.concat(chunks).toString("utf8");
    if (timedOut) return { exitCode: EXEC_TIMEOUT_EXIT_CODE, output: `${output}\nexec timed out after ${timeoutMs}ms` };
    // the exit code is there once the stream has ended (podman may need a moment)
    for (let i = 0; i < 50; i++) {
      const info = await this.json("GET", `/exec/${execId}/json`);
      if (!info.Running && typeof info.ExitCode === "number") return { exitCode: info.ExitCode, output };
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`exec ${execId}: no exit code reported`);
  }

  async execStream(id: string, command: string[], opts: StreamOptions): Promise<ExecSession> {
    if (command.length === 0) throw new Error("exec needs a command");
    const created = await this.json("POST", `/containers/${id}/exec`, {
      body: { AttachStdin: opts.stdin, AttachStdout: true, AttachStderr: true, Tty: opts.tty, Cmd: command },
    });
    const execId: string = created.Id;
    const { socket, head } = await this.hijack(`/exec/${execId}/start`, {}, { Detach: false, Tty: opts.tty });
    const out = hijackedOutput(socket, head, !opts.tty);
    const exited = out.ended.then(() => this.execExitCode(execId));
    return {
      stdin: opts.stdin ? hijackedStdin(socket) : undefined,
      stdout: out.stdout,
      stderr: out.stderr,
      resize: (w, h) => {
        if (opts.tty) this.call("POST", `/exec/${execId}/resize`, { query: { h, w } }).catch(() => {});
      },
      exited,
      close: () => {
        socket.destroy();
        void this.killExec(execId);
      },
    };
  }

  /**
   * The engine has no call to stop an exec'd process; it reports the process's pid on the
   * host, though, and the agent runs on that host: a process still running after its
   * client went away is killed (best effort: a remote or rootless engine's pids are not
   * ours to signal).
   */
  private async killExec(execId: string): Promise<void> {
    try {
      const info = await this.json("GET", `/exec/${execId}/json`);
      if (info?.Running && typeof info.Pid === "number" && info.Pid > 1) process.kill(info.Pid, "SIGKILL");
    } catch {
      // gone already, or not ours to signal
    }
  }

  async attach(id: string, opts: StreamOptions): Promise<ExecSession> {
    const info = await this.json("GET", `/containers/${id}/json`);
    if (!info?.State?.Running) throw new Error(`container ${id} is not running`);
    const tty = info.Config?.Tty === true;
    const stdin = opts.stdin && info.Config?.OpenStdin === true;
    const { socket, head } = await this.hijack(`/containers/${id}/attach`, { stream: 1, stdin: stdin ? 1 : 0, stdout: 1, stderr: 1 });
    const out = hijackedOutput(socket, head, !tty);
    const exited = out.ended.then(async () => {
      const after = await this.json("GET", `/containers/${id}/json`, {}, [404]);
      return after?.State && !after.State.Running && typeof after.State.ExitCode === "number" ? (after.State.ExitCode as number) : null;
    });
    return {
      stdin: stdin ? hijackedStdin(socket) : undefined,
      stdout: out.stdout,
      stderr: out.stderr,
      resize: (w, h) => {
        if (tty) this.call("POST", `/containers/${id}/resize`, { query: { h, w } }).catch(() => {});
      },
      exited,
      close: () => socket.destroy(),
    };
  }

  /** An exec's exit code, once the engine reports it ended (podman may need a moment). */
  private async execExitCode(execId: string): Promise<number> {
    for (let i = 0; i < 100; i++) {
      const info = await this.json("GET", `/exec/${execId}/json`);
      if (!info.Running && typeof info.ExitCode === "number") return info.ExitCode;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`exec ${execId}: no exit code reported`);
  }

  /**
   * POSTs and takes over the connection ("Upgrade: tcp"): the engine answers 101 and the
   * socket then carries the session. Its own connection, never a pooled one.
   */
  private async hijack(p: string, query: Query, body?: object): Promise<{ socket: net.Socket; head: Buffer }> {
    const prefix = (await this.engineInfo()).prefix;
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    const q = qs.toString();
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { connection: "Upgrade", upgrade: "tcp" };
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: this.socketPath,
        agent: false,
        method: "POST",
        path: prefix + p + (q ? `?${q}` : ""),
        headers,
      });
      req.on("upgrade", (_res, socket, head) => resolve({ socket, head }));
      req.on("response", (res) => {
        readAll(res)
          .then((b) => reject(new DockerError(res.statusCode ?? 0, errorMessage(b, res.statusCode ?? 0))))
          .catch(reject);
      });
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** Resolves when the copied logs of a container are written (after its stream ended). */
  async logsFlushed(id: string): Promise<void> {
    const f = this.followers.get(id);
    if (!f) return;
    await f.ended;
    await f.writes;
  }

  /** Stops following logs and closes idle connections (containers go on running). */
  close(): void {
    this.closed = true;
    for (const f of this.followers.values()) f.req?.destroy();
    this.agent.destroy();
  }

  // ---- containers ----

  private async create(name: string, body: Record<string, unknown>): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const { status, body: res } = await this.call("POST", "/containers/create", { query: { name }, body });
      if (status === 201 || status === 200) return JSON.parse(res.toString("utf8")).Id;
      const msg = errorMessage(res, status);
      if (status === 409 && attempt === 0) {
        // a leftover of an earlier try with the same name: replace it unless it runs
        const old = await this.json("GET", `/containers/${encodeURIComponent(name)}/json`, {}, [404]);
        if (old?.State?.Running) throw new Error(`container ${name} already exists and runs (${old.Id})`);
        if (old?.Id) await this.forceRemove(old.Id);
        continue;
      }
      if (status === 404) throw new Error(`cannot create container ${name}: ${msg} (ensureImage first)`);
      throw new DockerError(status, `cannot create container ${name}: ${msg}`);
    }
  }

  private async forceRemove(id: string): Promise<void> {
    await this.json("DELETE", `/containers/${id}`, { query: { force: 1, v: 1 } }, [404]);
  }

  private async inspectStatus(id: string): Promise<ContainerStatus | undefined> {
    const { status, body } = await this.call("GET", `/containers/${id}/json`);
    if (status === 404) return undefined;
    if (status !== 200) throw new DockerError(status, errorMessage(body, status));
    const c = JSON.parse(body.toString("utf8"));
    const labels: Record<string, string> = { ...(c.Config?.Labels ?? {}) };
    for (const k of INTERNAL_LABELS) delete labels[k];
    const s = c.State ?? {};
    const state = mapState(s.Status ?? (s.Running ? "running" : undefined));
    const st: ContainerStatus = {
      id: c.Id,
      name: labels[LABEL_CONTAINER_NAME] ?? String(c.Name ?? "").replace(/^\//, ""),
      labels,
      state,
      startedAt: parseTime(s.StartedAt),
      image: c.Config?.Image ?? "",
      imageID: c.Image,
    };
    if (state === "exited") {
      st.exitCode = typeof s.ExitCode === "number" ? s.ExitCode : undefined;
      st.reason = exitReason(st.exitCode ?? 0, !!s.OOMKilled);
      if (s.Error) st.message = s.Error;
      st.finishedAt = parseTime(s.FinishedAt);
    }
    return st;
  }

  private async podContainers(podUID: string): Promise<any[]> {
    const filters = { label: [`${LABEL_NODE}=${this.nodeName}`, `${LABEL_POD_UID}=${podUID}`] };
    const all = (await this.json("GET", "/containers/json", { query: { all: 1, filters: JSON.stringify(filters) } })) as any[];
    return (all ?? []).filter((c) => !c.Labels?.[LABEL_SANDBOX]);
  }

  // ---- sandboxes ----

  private async withSandboxLock<T>(podUID: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.sandboxLocks.get(podUID) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.sandboxLocks.set(podUID, next);
    try {
      return await next;
    } finally {
      if (this.sandboxLocks.get(podUID) === next) this.sandboxLocks.delete(podUID);
    }
  }

  private async findSandboxes(podUID: string): Promise<any[]> {
    const filters = { label: [`${LABEL_NODE}=${this.nodeName}`, `${LABEL_POD_UID}=${podUID}`, `${LABEL_SANDBOX}=true`] };
    return ((await this.json("GET", "/containers/json", { query: { all: 1, filters: JSON.stringify(filters) } })) as any[]) ?? [];
  }

  /** The pod's running sandbox, created (or replaced, if it stopped) as needed. Under the pod's lock. */
  private async sandbox(
    podUID: string,
    podName: string,
    podNamespace: string,
    ports: PortMapping[],
  ): Promise<{ id: string; ip: string; published: Set<string>; ports: PortMapping[] }> {
    for (const c of await this.findSandboxes(podUID)) {
      const info = await this.json("GET", `/containers/${c.Id}/json`, {}, [404]);
      if (info?.State?.Running) return sandboxInfo(info);
      // a stopped sandbox lost its network namespace: replace it
      await this.forceRemove(c.Id);
    }
    const image = this.opts.sandboxImage ?? BUILTIN_PAUSE_IMAGE;
    if (this.opts.sandboxImage) await this.ensureImage(image, "IfNotPresent");
    else await this.ensurePauseImage();
    const published = dedupePorts(ports.filter((p) => p.hostPort));
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const p of published) {
      const key = portKey(p);
      exposed[key] = {};
      (bindings[key] ??= []).push({ HostIp: p.hostIP ?? "", HostPort: String(p.hostPort) });
    }
    const hostConfig: Record<string, unknown> = { PortBindings: bindings, RestartPolicy: { Name: "no" } };
    if (this.opts.network) hostConfig.NetworkMode = this.opts.network;
    const body: Record<string, unknown> = {
      Image: image,
      Hostname: hostname(podName),
      Labels: {
        [LABEL_NODE]: this.nodeName,
        [LABEL_POD_UID]: podUID,
        [LABEL_POD_NAME]: podName,
        [LABEL_POD_NAMESPACE]: podNamespace,
        [LABEL_SANDBOX]: "true",
        [PORTS_LABEL]: JSON.stringify(published),
      },
      ExposedPorts: exposed,
      HostConfig: hostConfig,
    };
    if (!this.opts.sandboxImage) body.Entrypoint = ["/pause"];
    const id = await this.create(sanitizeName(`k8s_POD_${podName}_${podNamespace}_${podUID}`), body);
    try {
      await this.json("POST", `/containers/${id}/start`, {}, [304]);
    } catch (e) {
      await this.forceRemove(id).catch(() => {});
      throw e;
    }
    return sandboxInfo(await this.json("GET", `/containers/${id}/json`));
  }

  private ensurePauseImage(): Promise<void> {
    if (!this.pauseImageReady) {
      this.pauseImageReady = (async () => {
        if (await this.imagePresent(BUILTIN_PAUSE_IMAGE)) return;
        const { info } = await this.engineInfo();
        const { fromImage, tag } = splitImage(BUILTIN_PAUSE_IMAGE);
        const { status, body } = await this.call("POST", "/images/create", {
          query: { fromSrc: "-", repo: fromImage, tag },
          body: pauseImageTar(info.Arch ?? process.arch),
          contentType: "application/x-tar",
        });
        const err = status >= 300 ? errorMessage(body, status) : streamError(body);
        if (err !== undefined) throw new Error(`cannot import the pause image ${BUILTIN_PAUSE_IMAGE}: ${err}`);
      })();
      this.pauseImageReady.catch(() => {
        this.pauseImageReady = undefined;
      });
    }
    return this.pauseImageReady;
  }

  // ---- logs ----

  /** Starts copying a container's output to logPath (since: Unix seconds, engine syntax). */
  private follow(id: string, logPath: string, since?: string, tty = false): void {
    if (this.closed) return;
    let resolveEnded!: () => void;
    const f: Follower = {
      active: true,
      lastTs: this.followers.get(id)?.lastTs,
      writes: this.followers.get(id)?.writes ?? Promise.resolve(),
      ended: new Promise((r) => {
        resolveEnded = r;
      }),
    };
    this.followers.set(id, f);
    const end = () => {
      f.active = false;
      f.req = undefined;
      resolveEnded();
    };
    const write = (data: Buffer) => {
      f.writes = f.writes.then(() => appendToFile(logPath, data)).catch(() => {});
    };
    this.send("GET", `/containers/${id}/logs`, { query: { follow: 1, stdout: 1, stderr: 1, timestamps: 1, since }, timeoutMs: 0 })
      .then(({ req, res }) => {
        f.req = req;
        if (this.closed) req.destroy();
        if ((res.statusCode ?? 0) >= 300) {
          f.refused = res.statusCode !== 404;
          res.resume();
          res.on("end", end);
          res.on("close", end);
          return;
        }
        let rest: Buffer = Buffer.alloc(0);
        if (tty) {
          // a tty's logs are raw: each line carries its timestamp
          const strip = (line: Buffer) => {
            const m = TS_PREFIX.exec(line.subarray(0, 48).toString("latin1"));
            if (!m) return line;
            f.lastTs = m[0].slice(0, -1);
            return line.subarray(m[0].length);
          };
          res.on("data", (c: Buffer) => {
            const buf = rest.length ? Buffer.concat([rest, c]) : c;
            const pieces: Buffer[] = [];
            let off = 0;
            for (let nl = buf.indexOf(10, off); nl >= 0; nl = buf.indexOf(10, off)) {
              pieces.push(strip(buf.subarray(off, nl + 1)));
              off = nl + 1;
            }
            rest = Buffer.from(buf.subarray(off));
            if (pieces.length) write(Buffer.concat(pieces));
          });
          const flush = () => {
            if (rest.length) write(strip(rest));
            rest = Buffer.alloc(0);
          };
          res.on("end", () => {
            flush();
            end();
          });
          res.on("close", () => {
            flush();
            end();
          });
          res.on("error", end);
          return;
        }
        res.on("data", (c: Buffer) => {
          const pieces: Buffer[] = [];
          rest = demux(rest.length ? Buffer.concat([rest, c]) : c, (_stream, payload) => {
            const head = payload.subarray(0, 48).toString("latin1");
            const m = TS_PREFIX.exec(head);
            if (m) {
              f.lastTs = m[0].slice(0, -1);
              pieces.push(payload.subarray(m[0].length));
            } else {
              pieces.push(payload);
            }
          });
          if (pieces.length) write(Buffer.concat(pieces));
        });
        res.on("end", end);
        res.on("close", end);
        res.on("error", end);
      })
      .catch(end);
  }

  /** After an agent restart or a broken stream: follow again from where the copy stopped. */
  private resumeFollowing(id: string, state: ContainerState, logPath: string | undefined, tty = false): void {
    if (!logPath || this.closed) return;
    const f = this.followers.get(id);
    if (f?.active || f?.refused) return;
    if (f && state !== "running") return; // followed to its end in this process
    if (state !== "running" && state !== "exited") return;
    let since = f?.lastTs ? sinceAfter(f.lastTs) : undefined;
    if (!since && !f) {
      try {
        const mtime = fs.statSync(logPath).mtimeMs;
        since = `${Math.floor(mtime / 1000)}.${String(Math.round((mtime % 1000) * 1e6)).padStart(9, "0")}`;
      } catch {
        since = undefined; // no copy yet: everything
      }
    }
    this.follow(id, logPath, since, tty);
  }
}

const PORTS_LABEL = "io.kubeflare.sandbox.ports";

function portKey(p: PortMapping): string {
  return `${p.containerPort}/${p.protocol.toLowerCase()}`;
}

function dedupePorts(ports: PortMapping[]): PortMapping[] {
  const seen = new Set<string>();
  return ports.filter((p) => {
    const k = `${portKey(p)}:${p.hostIP ?? ""}:${p.hostPort}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function sandboxInfo(info: any): { id: string; ip: string; published: Set<string>; ports: PortMapping[] } {
  const ns = info.NetworkSettings ?? {};
  let ip: string = ns.IPAddress || "";
  for (const n of Object.values<any>(ns.Networks ?? {})) {
    if (n?.IPAddress) {
      ip = n.IPAddress;
      break;
    }
  }
  let ports: PortMapping[] = [];
  try {
    ports = JSON.parse(info.Config?.Labels?.[PORTS_LABEL] ?? "[]");
  } catch {
    ports = [];
  }
  return { id: info.Id, ip: ip || hostPrimaryIPv4(), published: new Set(ports.map(portKey)), ports };
}

function sanitizeName(s: string): string {
  return s.replace(/[^a-zA-Z0-9_.-]/g, "-");
}

function hostname(podName: string): string {
  return (
    podName
      .replace(/[^a-zA-Z0-9.-]/g, "-")
      .slice(0, 63)
      .replace(/[.-]+$/, "") || "pod"
  );
}

/** kubelet-style names: k8s_<container>_<pod>_<namespace>_<uid>_<attempt>. */
function containerName(c: ContainerConfig): string {
  return sanitizeName(`k8s_${c.name}_${c.podName}_${c.podNamespace}_${c.podUID}_${c.labels[LABEL_ATTEMPT] ?? "0"}`);
}

/**
 * A hijacked session's output as readables: demultiplexed (stdout, stderr) or raw (stdout).
 * The socket pauses while a consumer does not keep up. ended resolves when the session's
 * output is over (the engine closed it, or close() destroyed the socket).
 */
function hijackedOutput(socket: net.Socket, head: Buffer, multiplexed: boolean) {
  const stdout = new PassThrough();
  const stderr = multiplexed ? new PassThrough() : undefined;
  const outs = stderr ? [stdout, stderr] : [stdout];
  let rest: Buffer = Buffer.alloc(0);
  const resumeIfDrained = () => {
    if (outs.every((o) => !o.writableNeedDrain)) socket.resume();
  };
  for (const o of outs) o.on("drain", resumeIfDrained);
  const push = (o: PassThrough, b: Buffer) => {
    if (b.length && !o.writableEnded && !o.write(b)) socket.pause();
  };
  const onData = (c: Buffer) => {
    if (!multiplexed) return push(stdout, c);
    rest = demux(rest.length ? Buffer.concat([rest, c]) : c, (stream, payload) => {
      // 0 is stdin, which the engine echoes with a tty only: show it as output
      push(stream === 2 && stderr ? stderr : stdout, Buffer.from(payload));
    });
  };
  let resolveEnded!: () => void;
  const ended = new Promise<void>((r) => {
    resolveEnded = r;
  });
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    for (const o of outs) o.end();
    resolveEnded();
  };
  if (head.length) onData(head);
  socket.on("data", onData);
  socket.on("end", finish);
  socket.on("close", finish);
  socket.on("error", finish);
  return { stdout, stderr, ended };
}

/** The session's stdin: writes go to the socket as they flush; end() half-closes it (EOF). */
function hijackedStdin(socket: net.Socket): Writable {
  return new Writable({
    write(chunk, _enc, cb) {
      if (socket.destroyed || socket.writableEnded) return cb();
      socket.write(chunk, () => cb());
    },
    final(cb) {
      if (!socket.destroyed && !socket.writableEnded) socket.end();
      cb();
    },
  });
}
