// ProcessRuntime: containers as plain host processes, like Nomad's raw_exec. NO ISOLATION:
// - the image is only a label (never pulled); the process runs command+args (kube semantics:
//   command replaces the entrypoint, args follow it; with no command, args alone), so at
//   least one of them is required;
// - it runs as the agent's user, on the host's filesystem and network: volume mounts are not
//   applied (KUBEFLARE_MOUNT_<n>=<hostPath>:<containerPath>[:ro] env vars hint at them),
//   ports need nothing (host network), cpu/memory limits are not enforced;
// - env is the container's env over PATH (the agent's) and HOSTNAME (the pod's name); the
//   working directory must exist on the host.
// Each container is its own process group (spawned detached), so stop()'s SIGTERM/SIGKILL
// reach its children too. stdout/stderr go straight to logPath (opened O_APPEND and handed to
// the child), so output is kept while the agent is down; rotate that file by copy+truncate.
//
// Interactive sessions (`kubectl exec` / `kubectl attach`): execStream spawns the command as
// exec does, with pipes; with a tty it runs under util-linux's `script` (a pty without a native
// module; resize runs `stty` on the pty), and without `script` it gets pipes only. A container
// whose spec has stdin keeps its stdin pipe in this runtime (lost when the agent restarts:
// the process then reads EOF); a tty container runs under `script` the same way. attach
// follows the container's log file from its current end (stdout and stderr are one file, so
// an attachment has no separate stderr) and writes to the kept stdin; with stdinOnce the first
// attachment that closes its stdin closes the container's.
//
// Re-adoption: every container's record (pid, /proc start time, labels, env, times, exit code
// when known) is a JSON file in stateDir. A new ProcessRuntime on the same stateDir lists a
// recorded pid that is still alive, with the same /proc/<pid>/stat start time (no pid reuse),
// as running; a dead one as exited with the exit code recorded, or exitCode 137 and reason
// "Unknown" when it died while no agent was watching (its exit code is lost).

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable, Writable } from "node:stream";
import {
  type ContainerConfig,
  type ContainerStatus,
  EXEC_TIMEOUT_EXIT_CODE,
  type ExecSession,
  type ImagePullContext,
  LABEL_NODE,
  type PodSandbox,
  type PortMapping,
  type Runtime,
  type StreamOptions,
} from "./types.ts";
import { appendCapped, exitReason, hostPrimaryIPv4, sleep, withNodeLabel } from "./util.ts";

export interface ProcessRuntimeOptions {
  /** Directory of the container records (created if missing); one per node. */
  stateDir: string;
  nodeName: string;
  /** Clock in milliseconds since the epoch (default Date.now). */
  now?: () => number;
  /** Container ids (default 24 random hex digits). */
  newId?: () => string;
  /** IP reported for every pod (default: the host's primary IPv4, or 127.0.0.1). */
  hostIP?: string;
  /** PATH of containers whose env has none (default: the agent's PATH). */
  path?: string;
  /** How often stop() checks whether an adopted process is gone (default 50 ms). */
  pollMs?: number;
}

/** What is persisted for each container (one JSON file per container in stateDir). */
export interface ProcessRecord {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  argv: string[];
  env: Record<string, string>;
  workingDir?: string;
  logPath: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot), to tell a reused pid apart. */
  procStartTime?: string;
  /** Runs on a pty (under `script`): resize applies. */
  tty?: boolean;
  startedAt: string;
  finishedAt?: string;
  exitCode?: number;
  reason?: string;
  message?: string;
}

const RECORD_SUFFIX = ".json";

/**
 * SIGKILLs the process group of every container recorded in a process runtime's state
 * dir. Containers outlive their agent by design; tests and benchmarks that start agents
 * use this to leave nothing running.
 */
export function killRecordedContainers(stateDir: string): void {
  let files: string[] = [];
  try {
    files = fs.readdirSync(stateDir);
  } catch {
    return;
  }
  for (const f of files) {
    if (!f.endsWith(RECORD_SUFFIX)) continue;
    try {
      const rec = JSON.parse(fs.readFileSync(path.join(stateDir, f), "utf8")) as ProcessRecord;
      if (typeof rec.pid === "number" && rec.pid > 1) process.kill(-rec.pid, "SIGKILL");
    } catch {
      // gone already, or not a record
    }
  }
}

/** State and start time of a process from /proc, or undefined if there is no such process. */
function procStat(pid: number): { state: string; startTime: string } | undefined | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (e: any) {
    if (e?.code === "ENOENT" || e?.code === "ESRCH") return undefined;
    return null; // no /proc (or unreadable): the caller falls back to kill(pid, 0)
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: rest[0], startTime: rest[19] };
}

function pidAlive(pid: number, startTime: string | undefined): boolean {
  const st = procStat(pid);
  if (st === undefined) return false;
  if (st !== null) {
    if (st.state === "Z" || st.state === "X" || st.state === "x") return false;
    return startTime === undefined || startTime === st.startTime;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e?.code === "EPERM";
  }
}

/** Signals a whole process group (falls back to the pid alone); false if nothing was there. */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

let scriptPath: string | null | undefined;

/** util-linux's script(1), which gives a command a pty; null when the host has none. */
export function findScript(): string | null {
  if (scriptPath === undefined) {
    scriptPath = null;
    for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
      const f = path.join(dir || ".", "script");
      try {
        fs.accessSync(f, fs.constants.X_OK);
        scriptPath = f;
        break;
      } catch {
        // not here
      }
    }
  }
  return scriptPath;
}

/** A POSIX shell word for each argument (script -c takes one command line). */
export function shellJoin(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** argv run on a pty by script(1): -e passes the exit code on, -f flushes output at once. */
function underScript(script: string, argv: string[]): string[] {
  return [script, "-q", "-f", "-e", "-c", shellJoin(argv), "/dev/null"];
}

/**
 * Sets the terminal size of the pty that script(1) (pid) runs its command on: stty on the
 * child's stdin, which is the pty (setting it sends the foreground job SIGWINCH). Best effort;
 * retried briefly while script has not forked yet.
 */
async function resizePty(pid: number, width: number, height: number): Promise<void> {
  for (let attempt = 0; attempt < 40; attempt++) {
    let children: string[] = [];
    try {
      children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    } catch {
      return; // gone, or no /proc
    }
    let tty = "";
    try {
      // right after the fork the child's stdin is still script's own
      if (children.length > 0) tty = fs.readlinkSync(`/proc/${children[0]}/fd/0`);
    } catch {
      tty = "";
    }
    if (tty.startsWith("/dev/pts/")) {
      await new Promise<void>((resolve) => {
        execFile("stty", ["-F", tty, "cols", String(width), "rows", String(height)], () => resolve());
      });
      return;
    }
    await sleep(25);
  }
}

/** Serializes resizes (the last one wins) of one pty. */
function ptyResizer(pid: () => number | undefined): (width: number, height: number) => void {
  let chain = Promise.resolve();
  return (width, height) => {
    const p = pid();
    if (!p || !Number.isInteger(width) || !Number.isInteger(height)) return;
    chain = chain.then(() => resizePty(p, width, height)).catch(() => {});
  };
}

/**
 * The bytes appended to file from offset on, until done() is true and everything is read.
 * A file that shrinks (copy+truncate rotation) is read again from its start.
 */
async function* followFile(file: string, offset: number, done: () => boolean, pollMs: number, stopped: () => boolean) {
  const buf = Buffer.alloc(64 * 1024);
  while (!stopped()) {
    const finished = done();
    let size = 0;
    try {
      size = (await fs.promises.stat(file)).size;
    } catch {
      size = 0;
    }
    if (size < offset) offset = 0;
    if (size > offset) {
      const fh = await fs.promises.open(file, "r");
      try {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - offset), offset);
        offset += bytesRead;
        if (bytesRead > 0) yield Buffer.from(buf.subarray(0, bytesRead));
      } finally {
        await fh.close();
      }
      continue;
    }
    if (finished) return;
    await sleep(pollMs);
  }
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? os.constants.signals[signal] : undefined;
  return 128 + (n ?? 9);
}

export class ProcessRuntime implements Runtime {
  readonly name = "process";
  readonly nodeName: string;
  readonly stateDir: string;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly hostIP: string;
  private readonly pathEnv: string;
  private readonly pollMs: number;
  private readonly records = new Map<string, ProcessRecord>();
  /** Processes started by this instance (their exit is observed, not polled). */
  private readonly children = new Map<string, { child: ChildProcess; exited: Promise<void>; stdinOnce?: boolean }>();

  constructor(opts: ProcessRuntimeOptions) {
    this.nodeName = opts.nodeName;
    this.stateDir = opts.stateDir;
    this.now = opts.now ?? Date.now;
    this.newId = opts.newId ?? (() => randomBytes(12).toString("hex"));
    this.hostIP = opts.hostIP ?? hostPrimaryIPv4();
    this.pathEnv = opts.path ?? process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    this.pollMs = opts.pollMs ?? 50;
    fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    for (const f of fs.readdirSync(this.stateDir)) {
      if (!f.endsWith(RECORD_SUFFIX)) continue;
      try {
        const rec = JSON.parse(fs.readFileSync(path.join(this.stateDir, f), "utf8")) as ProcessRecord;
        if (rec && typeof rec.id === "string" && typeof rec.pid === "number") this.records.set(rec.id, rec);
      } catch {
        // a torn or foreign file: not ours to manage
      }
    }
  }

  async version(): Promise<string> {
    return process.versions.node;
  }

  /** Images are not used: nothing to pull, whatever the policy. */
  async ensureImage(_image: string, _policy: ContainerConfig["imagePullPolicy"], _context?: ImagePullContext): Promise<void> {}

  async ensureSandbox(_podUID: string, _podName: string, _podNamespace: string, _ports?: PortMapping[]): Promise<PodSandbox> {
    return { ip: this.hostIP };
  }

  async removeSandbox(_podUID: string): Promise<void> {}

  async start(config: ContainerConfig): Promise<string> {
    let argv = config.command.length > 0 ? [...config.command, ...config.args] : [...config.args];
    if (argv.length === 0) throw new Error("the process runtime needs command or args (images are not run)");
    const script = config.tty ? findScript() : null;
    if (script) argv = underScript(script, argv);
    if (config.workingDir && !fs.existsSync(config.workingDir)) {
      throw new Error(`workingDir ${config.workingDir} does not exist on the host (the process runtime has no isolation)`);
    }
    const env: Record<string, string> = { PATH: this.pathEnv, HOSTNAME: config.podName };
    config.mounts.forEach((m, i) => {
      env[`KUBEFLARE_MOUNT_${i}`] = `${m.hostPath}:${m.containerPath}${m.readOnly ? ":ro" : ""}`;
    });
    if (script) env.TERM = "xterm";
    Object.assign(env, config.env);

    await fs.promises.mkdir(path.dirname(config.logPath), { recursive: true });
    const fd = fs.openSync(config.logPath, "a");
    const id = this.newId();
    let child: ChildProcess;
    let exited: Promise<void>;
    try {
      child = spawn(argv[0], argv.slice(1), {
        cwd: config.workingDir || undefined,
        env,
        detached: true,
        stdio: [config.stdin ? "pipe" : "ignore", fd, fd],
      });
      child.stdin?.on("error", () => {}); // EPIPE after the process closed its stdin
      exited = new Promise<void>((resolve) => {
        child.once("exit", (code, signal) => {
          this.children.delete(id);
          const r = this.records.get(id);
          if (r && r.exitCode === undefined) {
            r.exitCode = exitCodeOf(code, signal);
            r.reason = exitReason(r.exitCode);
            r.finishedAt = new Date(this.now()).toISOString();
            this.persist(r);
          }
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", reject);
      });
    } catch (e: any) {
      throw new Error(`cannot start ${argv[0]}: ${e?.message ?? e}`);
    } finally {
      fs.closeSync(fd);
    }
    const pid = child.pid!;
    const rec: ProcessRecord = {
      id,
      name: config.name,
      image: config.image,
      labels: withNodeLabel(config.labels, this.nodeName),
      argv,
      env,
      workingDir: config.workingDir || undefined,
      logPath: config.logPath,
      tty: script ? true : undefined,
      pid,
      procStartTime: procStat(pid)?.startTime,
      startedAt: new Date(this.now()).toISOString(),
    };
    child.unref();
    this.records.set(id, rec);
    this.children.set(id, { child, exited, stdinOnce: config.stdinOnce });
    this.persist(rec);
    return id;
  }

  async stop(id: string, graceSeconds: number): Promise<void> {
    const rec = this.records.get(id);
    if (!rec || !this.running(rec)) return;
    signalGroup(rec.pid, "SIGTERM");
    let signal: NodeJS.Signals = "SIGTERM";
    if (!(await this.waitExit(rec, Math.max(0, graceSeconds) * 1000))) {
      signal = "SIGKILL";
      signalGroup(rec.pid, "SIGKILL");
      await this.waitExit(rec, 10_000);
    }
    // what is left of the group (children that outlived their parent) goes too
    signalGroup(rec.pid, "SIGKILL");
    await this.children.get(id)?.exited;
    if (rec.exitCode === undefined) {
      // an adopted process: its exit status went to someone else, so infer it from the signal
      rec.exitCode = signal === "SIGKILL" ? 137 : 143;
      rec.reason = "Error";
      rec.message = `stopped with ${signal} (adopted process: exit code inferred)`;
      rec.finishedAt = new Date(this.now()).toISOString();
      this.persist(rec);
    }
  }

  async remove(id: string): Promise<void> {
    const rec = this.records.get(id);
    if (!rec) return;
    if (this.running(rec)) {
      signalGroup(rec.pid, "SIGKILL");
      await this.waitExit(rec, 10_000);
    }
    this.children.delete(id);
    this.records.delete(id);
    fs.rmSync(this.recordPath(id), { force: true });
  }

  async list(): Promise<ContainerStatus[]> {
    const out: ContainerStatus[] = [];
    for (const rec of this.records.values()) {
      if (rec.labels[LABEL_NODE] !== undefined && rec.labels[LABEL_NODE] !== this.nodeName) continue;
      out.push(this.status(rec));
    }
    return out;
  }

  async exec(id: string, command: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const rec = this.records.get(id);
    if (!rec) throw new Error(`container ${id} not found`);
    if (!this.running(rec)) throw new Error(`container ${id} is not running`);
    if (command.length === 0) throw new Error("exec needs a command");
    const chunks: Buffer[] = [];
    const size = { size: 0 };
    return new Promise((resolve) => {
      const child = spawn(command[0], command.slice(1), {
        cwd: rec.workingDir,
        env: rec.env,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      const onData = (b: Buffer) => appendCapped(chunks, size, b);
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      let done = false;
      const finish = (exitCode: number, extra = "") => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ exitCode, output: Buffer.concat(chunks).toString("utf8") + extra });
      };
      const timer = setTimeout(() => {
        if (child.pid) signalGroup(child.pid, "SIGKILL");
        finish(EXEC_TIMEOUT_EXIT_CODE, `\nexec timed out after ${timeoutMs}ms`);
      }, timeoutMs);
      child.once("error", (e) => finish(127, String(e.message)));
      child.once("close", (code, signal) => finish(exitCodeOf(code, signal)));
    });
  }

  async execStream(id: string, command: string[], opts: StreamOptions): Promise<ExecSession> {
    const rec = this.records.get(id);
    if (!rec) throw new Error(`container ${id} not found`);
    if (!this.running(rec)) throw new Error(`container ${id} is not running`);
    if (command.length === 0) throw new Error("exec needs a command");
    const script = opts.tty ? findScript() : null;
    const argv = script ? underScript(script, command) : command;
    const env = script ? { ...rec.env, TERM: rec.env.TERM ?? "xterm" } : rec.env;
    const child = spawn(argv[0], argv.slice(1), {
      cwd: rec.workingDir,
      env,
      detached: true,
      stdio: [opts.stdin ? "pipe" : "ignore", "pipe", script ? "ignore" : "pipe"],
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    child.stdin?.on("error", () => {});
    const exited = new Promise<number>((resolve) => child.once("close", (code, signal) => resolve(exitCodeOf(code, signal))));
    return {
      stdin: child.stdin ?? undefined,
      stdout: child.stdout!,
      stderr: opts.tty ? undefined : (child.stderr ?? undefined),
      resize: script ? ptyResizer(() => child.pid) : () => {},
      exited,
      close: () => {
        if (child.pid && child.exitCode === null && child.signalCode === null) signalGroup(child.pid, "SIGKILL");
      },
    };
  }

  async attach(id: string, opts: StreamOptions): Promise<ExecSession> {
    const rec = this.records.get(id);
    if (!rec) throw new Error(`container ${id} not found`);
    if (!this.running(rec)) throw new Error(`container ${id} is not running`);
    let offset = 0;
    try {
      offset = fs.statSync(rec.logPath).size;
    } catch {
      offset = 0;
    }
    let detached = false;
    let exitedFlag = false;
    const own = this.children.get(id);
    const exited = (async (): Promise<number | null> => {
      if (own) await own.exited;
      else await this.waitExit(rec, Number.MAX_SAFE_INTEGER, () => detached);
      exitedFlag = true;
      return rec.exitCode ?? null;
    })();
    let detach!: () => void;
    const detachedP = new Promise<null>((resolve) => {
      detach = () => {
        detached = true;
        resolve(null);
      };
    });
    const stdout = Readable.from(
      followFile(
        rec.logPath,
        offset,
        () => exitedFlag,
        this.pollMs,
        () => detached,
      ),
      { objectMode: false },
    );
    let stdin: Writable | undefined;
    const target = own?.child.stdin;
    if (opts.stdin && target && !target.destroyed && !target.writableEnded) {
      // the container's stdin outlives an attachment; with stdinOnce the first close ends it
      const stdinOnce = own?.stdinOnce === true;
      stdin = new Writable({
        write(chunk, _enc, cb) {
          if (target.destroyed || target.writableEnded) return cb();
          if (target.write(chunk)) cb();
          else {
            const go = () => {
              target.off("drain", go);
              target.off("close", go);
              cb();
            };
            target.on("drain", go);
            target.on("close", go);
          }
        },
        final(cb) {
          if (stdinOnce && !target.writableEnded) target.end();
          cb();
        },
      });
    }
    return {
      stdin,
      stdout,
      resize: rec.tty ? ptyResizer(() => (this.running(rec) ? rec.pid : undefined)) : () => {},
      exited: Promise.race([exited, detachedP]),
      close: () => {
        detach();
        stdout.destroy();
      },
    };
  }

  /**
   * Stops watching the processes this instance started (as if the agent exited): they go on
   * running, and their exit code is no longer recorded. For tests of re-adoption and shutdown.
   */
  close(): void {
    for (const { child } of this.children.values()) child.removeAllListeners("exit");
    this.children.clear();
  }

  /** The persisted record of a container (for debugging and tests). */
  record(id: string): ProcessRecord | undefined {
    return this.records.get(id);
  }

  private running(rec: ProcessRecord): boolean {
    if (rec.exitCode !== undefined) return false;
    if (this.children.has(rec.id)) return true; // ours: running until its exit event
    if (pidAlive(rec.pid, rec.procStartTime)) return true;
    rec.exitCode = 137;
    rec.reason = "Unknown";
    rec.message = "the process ended while no agent was watching it; its exit code is unknown";
    rec.finishedAt = new Date(this.now()).toISOString();
    this.persist(rec);
    return false;
  }

  private async waitExit(rec: ProcessRecord, ms: number, abandon?: () => boolean): Promise<boolean> {
    const own = this.children.get(rec.id);
    if (own) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        own.exited.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), ms);
        }),
      ]);
      clearTimeout(timer);
      return !timedOut;
    }
    const deadline = Date.now() + ms;
    for (;;) {
      if (!pidAlive(rec.pid, rec.procStartTime)) return true;
      if (Date.now() >= deadline || abandon?.()) return false;
      await sleep(this.pollMs);
    }
  }

  private status(rec: ProcessRecord): ContainerStatus {
    const running = this.running(rec);
    return {
      id: rec.id,
      name: rec.name,
      labels: rec.labels,
      state: running ? "running" : "exited",
      exitCode: running ? undefined : rec.exitCode,
      reason: running ? undefined : rec.reason,
      message: running ? undefined : rec.message,
      startedAt: new Date(rec.startedAt),
      finishedAt: !running && rec.finishedAt ? new Date(rec.finishedAt) : undefined,
      image: rec.image,
    };
  }

  private recordPath(id: string): string {
    return path.join(this.stateDir, id + RECORD_SUFFIX);
  }

  private persist(rec: ProcessRecord): void {
    if (!this.records.has(rec.id)) return; // removed meanwhile
    const file = this.recordPath(rec.id);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(rec), { mode: 0o600 });
    fs.renameSync(tmp, file);
  }
}
