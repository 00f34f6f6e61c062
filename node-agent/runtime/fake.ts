// FakeRuntime: containers that "run" in memory, for tests and hollow nodes (kubemark-like).
// No processes, no timers: a container is a small record, and its state is computed from the
// (injectable) clock when list() asks, so many thousands of containers cost next to nothing.
//
// Steered by pod annotations; each key also exists per container as
// `fake.kubeflare.dev/<container>.<key>`, which wins over the pod-wide `fake.kubeflare.dev/<key>`:
//
//   fake.kubeflare.dev/run-seconds       exit N seconds (may be fractional) after start;
//                                        absent: run until stopped
//   fake.kubeflare.dev/exit-code         exit code when it exits by itself (default 0)
//   fake.kubeflare.dev/oom-killed        "true": it exits as OOMKilled (exit code 137 unless set)
//   fake.kubeflare.dev/start-error       start() fails with this message (nothing is created)
//   fake.kubeflare.dev/image-pull-error  ensureImage() fails with ImagePullError ErrImagePull
//                                        (ErrImageNeverPull with policy Never) and this message;
//                                        needs the ImagePullContext argument
//   fake.kubeflare.dev/exec-exit-code    exit code of every exec (default 0)
//   fake.kubeflare.dev/exec-output       output of every exec (default empty)
//   fake.kubeflare.dev/stop-exit-code    exit code after stop() of a running container
//                                        (default 143, terminated by SIGTERM)
//
// Interactive exec (execStream) runs a tiny deterministic built-in set instead of processes:
// `echo ARGS...` (stdout), `cat` (stdin to stdout until stdin ends), `true`, `false`,
// `exit N` and `sh -c "exit N"`; any other command prints exec-output and exits with
// exec-exit-code, as exec() does. With a tty stdout and stderr are one stream. attach is
// `cat` on the container: stdin comes back on stdout until stdin ends or the client detaches.
//
// Logs: start() appends one line to logPath ("<RFC3339> fake container <name> started ...") and
// stop() one more, so log plumbing can be tested; `logs: false` skips all file writes.
// Images are always present (unless image-pull-error says otherwise); the sandbox IP is the
// `podIP` option (default 127.0.0.1). Nothing survives the FakeRuntime object (no re-adoption).

import { PassThrough } from "node:stream";
import {
  type ContainerConfig,
  type ContainerStatus,
  type ExecSession,
  type ImagePullContext,
  ImagePullError,
  type PodSandbox,
  type PortMapping,
  type Runtime,
  type StreamOptions,
} from "./types.ts";
import { appendToFile, exitReason, withNodeLabel } from "./util.ts";

export const FAKE_ANNOTATION_PREFIX = "fake.kubeflare.dev/";

export interface FakeRuntimeOptions {
  nodeName: string;
  /** Clock in milliseconds since the epoch (default Date.now). */
  now?: () => number;
  /** Write the start/stop lines to logPath (default true). */
  logs?: boolean;
  /** IP reported for every pod sandbox (default 127.0.0.1), or a function of the pod UID. */
  podIP?: string | ((podUID: string) => string);
}

interface FakeContainer {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startedAt: number;
  /** When it exits by itself (undefined: never). */
  exitAt?: number;
  exitCode: number;
  oomKilled: boolean;
  /** Set by stop(): when and with which code it was stopped (if it was still running). */
  stoppedAt?: number;
  stopExitCode?: number;
  logPath: string;
}

/** The value of a fake annotation for a container: per-container key first, then pod-wide. */
export function fakeAnnotation(annotations: Record<string, string>, container: string | undefined, key: string): string | undefined {
  if (container !== undefined) {
    const own = annotations[`${FAKE_ANNOTATION_PREFIX}${container}.${key}`];
    if (own !== undefined) return own;
  }
  return annotations[`${FAKE_ANNOTATION_PREFIX}${key}`];
}

function intAnnotation(annotations: Record<string, string>, container: string, key: string, dflt: number): number {
  const v = fakeAnnotation(annotations, container, key);
  if (v === undefined || v.trim() === "") return dflt;
  const n = Number(v);
  return Number.isInteger(n) ? n : dflt;
}

export class FakeRuntime implements Runtime {
  readonly name = "fake";
  readonly nodeName: string;
  private readonly now: () => number;
  private readonly logs: boolean;
  private readonly podIP: (podUID: string) => string;
  private readonly containers = new Map<string, FakeContainer>();
  private readonly sandboxes = new Map<string, PodSandbox>();
  private seq = 0;

  constructor(opts: FakeRuntimeOptions) {
    this.nodeName = opts.nodeName;
    this.now = opts.now ?? Date.now;
    this.logs = opts.logs ?? true;
    const ip = opts.podIP ?? "127.0.0.1";
    this.podIP = typeof ip === "function" ? ip : () => ip;
  }

  async version(): Promise<string> {
    return "0.1.0";
  }

  async ensureImage(image: string, policy: ContainerConfig["imagePullPolicy"], context?: ImagePullContext): Promise<void> {
    if (!context) return;
    const err = fakeAnnotation(context.podAnnotations, context.containerName, "image-pull-error");
    if (err === undefined) return;
    if (policy === "Never") {
      throw new ImagePullError("ErrImageNeverPull", `Container image "${image}" is not present with pull policy of Never: ${err}`);
    }
    throw new ImagePullError("ErrImagePull", err || `failed to pull image "${image}"`);
  }

  async ensureSandbox(podUID: string, _podName: string, _podNamespace: string, _ports?: PortMapping[]): Promise<PodSandbox> {
    let sb = this.sandboxes.get(podUID);
    if (!sb) {
      sb = { ip: this.podIP(podUID) };
      this.sandboxes.set(podUID, sb);
    }
    return sb;
  }

  async removeSandbox(podUID: string): Promise<void> {
    this.sandboxes.delete(podUID);
  }

  async start(config: ContainerConfig): Promise<string> {
    const a = config.podAnnotations;
    const startError = fakeAnnotation(a, config.name, "start-error");
    if (startError !== undefined) throw new Error(startError || "fake start error");
    const now = this.now();
    const run = fakeAnnotation(a, config.name, "run-seconds")?.trim();
    const runSeconds = run ? Number(run) : Number.NaN;
    const oomKilled = fakeAnnotation(a, config.name, "oom-killed") === "true";
    const id = `fake-${(++this.seq).toString(16).padStart(8, "0")}`;
    const c: FakeContainer = {
      id,
      name: config.name,
      image: config.image,
      labels: withNodeLabel(config.labels, this.nodeName),
      annotations: a,
      startedAt: now,
      exitAt: Number.isFinite(runSeconds) && runSeconds >= 0 ? now + runSeconds * 1000 : undefined,
      exitCode: intAnnotation(a, config.name, "exit-code", oomKilled ? 137 : 0),
      oomKilled,
      logPath: config.logPath,
    };
    this.containers.set(id, c);
    if (this.logs && config.logPath) {
      await appendToFile(config.logPath, `${new Date(now).toISOString()} fake container ${config.name} started (image ${config.image})\n`);
    }
    return id;
  }

  async stop(id: string, _graceSeconds: number): Promise<void> {
    const c = this.containers.get(id);
    if (!c || c.stoppedAt !== undefined) return;
    const now = this.now();
    if (c.exitAt !== undefined && c.exitAt <= now) return; // already exited by itself
    c.stoppedAt = now;
    c.stopExitCode = intAnnotation(c.annotations, c.name, "stop-exit-code", 143);
    if (this.logs && c.logPath) {
      await appendToFile(c.logPath, `${new Date(now).toISOString()} fake container ${c.name} stopped\n`);
    }
  }

  async remove(id: string): Promise<void> {
    this.containers.delete(id);
  }

  async list(): Promise<ContainerStatus[]> {
    const now = this.now();
    const out: ContainerStatus[] = [];
    for (const c of this.containers.values()) out.push(this.status(c, now));
    return out;
  }

  /** The status of one container (undefined if unknown); cheaper than list() for a single id. */
  inspect(id: string): ContainerStatus | undefined {
    const c = this.containers.get(id);
    return c && this.status(c, this.now());
  }

  /** How many containers this runtime holds (running or not). */
  get size(): number {
    return this.containers.size;
  }

  async exec(id: string, _command: string[], _timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const c = this.containers.get(id);
    if (!c) throw new Error(`container ${id} not found`);
    if (this.status(c, this.now()).state !== "running") throw new Error(`container ${id} is not running`);
    return {
      exitCode: intAnnotation(c.annotations, c.name, "exec-exit-code", 0),
      output: fakeAnnotation(c.annotations, c.name, "exec-output") ?? "",
    };
  }

  async execStream(id: string, command: string[], opts: StreamOptions): Promise<ExecSession> {
    const c = this.running(id);
    if (command.length === 0) throw new Error("exec needs a command");
    const stdout = new PassThrough();
    const stderr = opts.tty ? stdout : new PassThrough();
    const stdin = opts.stdin ? new PassThrough() : undefined;
    let finish!: (code: number) => void;
    const exited = new Promise<number>((resolve) => {
      finish = resolve;
    });
    const end = (code: number) => {
      stdin?.unpipe(stdout);
      stdout.end();
      if (stderr !== stdout) stderr.end();
      stdin?.resume(); // input after the end is dropped
      finish(code);
    };
    let argv = command;
    if (argv[0] === "sh" && argv[1] === "-c" && argv.length === 3) argv = argv[2].trim().split(/\s+/);
    const exitArg = (s: string | undefined) => {
      const n = Number(s ?? "0");
      return Number.isInteger(n) ? ((n % 256) + 256) % 256 : 2;
    };
    const [cmd, ...args] = argv;
    if (cmd === "cat" && args.length === 0) {
      if (!stdin) queueMicrotask(() => end(0));
      else {
        stdin.pipe(stdout, { end: false });
        stdin.once("end", () => end(0));
      }
    } else {
      queueMicrotask(() => {
        if (cmd === "echo") {
          stdout.write(`${args.join(" ")}\n`);
          end(0);
        } else if (cmd === "true") end(0);
        else if (cmd === "false") end(1);
        else if (cmd === "exit") end(exitArg(args[0]));
        else {
          const output = fakeAnnotation(c.annotations, c.name, "exec-output") ?? "";
          if (output) stdout.write(output);
          end(intAnnotation(c.annotations, c.name, "exec-exit-code", 0));
        }
      });
    }
    return {
      stdin,
      stdout,
      stderr: opts.tty ? undefined : stderr,
      resize: () => {},
      exited,
      close: () => end(137),
    };
  }

  async attach(id: string, opts: StreamOptions): Promise<ExecSession> {
    this.running(id);
    const stdout = new PassThrough();
    const stdin = opts.stdin ? new PassThrough() : undefined;
    let finish!: (code: null) => void;
    const exited = new Promise<null>((resolve) => {
      finish = resolve;
    });
    const end = () => {
      stdin?.unpipe(stdout);
      stdin?.resume();
      stdout.end();
      finish(null);
    };
    if (stdin) {
      stdin.pipe(stdout, { end: false });
      stdin.once("end", end);
    }
    return { stdin, stdout, resize: () => {}, exited, close: end };
  }

  private running(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw new Error(`container ${id} not found`);
    if (this.status(c, this.now()).state !== "running") throw new Error(`container ${id} is not running`);
    return c;
  }

  private status(c: FakeContainer, now: number): ContainerStatus {
    const base = {
      id: c.id,
      name: c.name,
      labels: c.labels,
      image: c.image,
      imageID: `fake://${c.image}`,
      startedAt: new Date(c.startedAt),
    };
    if (c.exitAt !== undefined && c.exitAt <= now && (c.stoppedAt === undefined || c.exitAt <= c.stoppedAt)) {
      return {
        ...base,
        state: "exited",
        exitCode: c.exitCode,
        reason: exitReason(c.exitCode, c.oomKilled),
        finishedAt: new Date(c.exitAt),
      };
    }
    if (c.stoppedAt !== undefined) {
      const code = c.stopExitCode ?? 143;
      return { ...base, state: "exited", exitCode: code, reason: exitReason(code), finishedAt: new Date(c.stoppedAt) };
    }
    return { ...base, state: "running" };
  }
}
