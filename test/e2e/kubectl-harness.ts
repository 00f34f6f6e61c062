// Helpers for test/e2e/kubectl.test.ts: a TLS control plane with one node agent (fake
// runtime, so pods become Running without containers), a temp kubeconfig, and the real
// kubectl run against it, synchronously (spawnSync) or as a long-running watch (spawn).

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Agent as HttpAgent, fetch as undiciFetch } from "undici";
import { killRecordedContainers } from "../../node-agent/runtime/process.ts";
import { type ControlPlane, createJoinToken, kubeconfigYAML, ROOT, spawnAgent, startControlPlane } from "../../scripts/control-plane.ts";

export const KUBECTL = "/usr/bin/kubectl";
export const hasKubectl = existsSync(KUBECTL);

/** The agent and the CLI are TypeScript run by Node >= 22 (type stripping): the project's node if present. */
export const NODE = existsSync(join(ROOT, "node_modules", ".bin", "node")) ? join(ROOT, "node_modules", ".bin", "node") : process.execPath;

export interface Result {
  /** Exit code (null when killed by the timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** The command line, for failure messages. */
  cmd: string;
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);

/** Describes a result for an assertion message. */
export function show(r: Result): string {
  return `$ ${r.cmd}\n[exit ${r.code}]\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

export class Kubectl {
  readonly kubeconfig: string;
  readonly cacheDir: string;
  constructor(kubeconfig: string, cacheDir: string) {
    this.kubeconfig = kubeconfig;
    this.cacheDir = cacheDir;
  }

  private argv(args: string[]): string[] {
    return ["--kubeconfig", this.kubeconfig, "--cache-dir", this.cacheDir, ...args];
  }

  /** Runs kubectl to completion. */
  run(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Result {
    const r = spawnSync(KUBECTL, this.argv(args), {
      input: opts.input,
      encoding: "utf8",
      timeout: opts.timeoutMs ?? 30_000,
      env: { ...process.env, KUBECONFIG: "", KUBECTL_EXTERNAL_DIFF: "" },
    });
    return {
      code: r.status,
      stdout: r.stdout ?? "",
      stderr: (r.stderr ?? "") + (r.error ? String(r.error) : ""),
      cmd: `kubectl ${args.map(quote).join(" ")}`,
    };
  }

  /** Runs kubectl and returns stdout; throws with the whole exchange unless it exits 0. */
  ok(args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    const r = this.run(args, opts);
    if (r.code !== 0) throw new Error(`kubectl failed:\n${show(r)}`);
    return r.stdout;
  }

  /** `kubectl ARGS -o json`, parsed. */
  json(args: string[]): any {
    return JSON.parse(this.ok([...args, "-o", "json"]));
  }

  /** Starts a long-running kubectl with a pipe to its stdin. */
  spawnWithInput(args: string[]): Watch {
    return new Watch(spawn(KUBECTL, this.argv(args), { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, KUBECONFIG: "" } }));
  }

  /** Starts a long-running kubectl (e.g. `get -w`), collecting its output. */
  spawn(args: string[]): Watch {
    return new Watch(spawn(KUBECTL, this.argv(args), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBECONFIG: "" } }));
  }
}

export class Watch {
  stdout = "";
  stderr = "";
  code: number | null | undefined = undefined;
  readonly child: ChildProcess;
  constructor(child: ChildProcess) {
    this.child = child;
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (this.stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (this.stderr += d));
    child.on("exit", (code) => (this.code = code));
  }

  /** Resolves with stdout once it matches re; rejects on timeout or exit. */
  async waitFor(re: RegExp, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (re.test(this.stdout)) return this.stdout;
      if (this.code !== undefined || Date.now() > deadline) {
        throw new Error(
          `kubectl ${this.code !== undefined ? `exited (${this.code})` : "timed out"} before printing ${re}\n--- stdout\n${this.stdout}--- stderr\n${this.stderr}`,
        );
      }
      await sleep(100);
    }
  }

  stop(): void {
    if (this.code === undefined) this.child.kill("SIGTERM");
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls fn (sync or async) until it returns something truthy; throws with what (and the
 * last value) on timeout.
 */
export async function eventually<T>(
  what: string,
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  everyMs = 300,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(everyMs);
  }
}

export interface Cluster {
  cp: ControlPlane;
  dir: string;
  kubeconfig: string;
  kubectl: Kubectl;
  nodeName: string;
  agentLog: string[];
  /** Stops the control plane and starts it again on the same state dir and port. */
  restartControlPlane(): Promise<void>;
  /** Pids of the agent process (for checks on its sockets). */
  agentPids(): number[];
  /** A kubectl for another kubeconfig (e.g. a user's), sharing the cache dir. */
  kubectlFor(kubeconfig: string): Kubectl;
  /** Runs scripts/cli.ts with the admin kubeconfig. */
  cli(args: string[]): Result;
  stop(): Promise<void>;
}

/** Starts a TLS control plane on a temp state dir, writes an admin kubeconfig, joins one fake-runtime agent and waits for its node to be Ready. */
export async function startCluster(
  nodeName = "kubectl-node",
  opts: { runtime?: "fake" | "process" | "docker"; agentArgs?: string[]; vars?: Record<string, string> } = {},
): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), "kf-kubectl-"));
  let cp: ControlPlane | undefined;
  let agent: ChildProcess | undefined;
  const agentLog: string[] = [];
  const stop = async () => {
    agent?.kill("SIGKILL");
    killProcessContainers(join(dir, nodeName));
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    cp = await startControlPlane({
      stateDir: join(dir, "cp"),
      port: 0,
      tls: true,
      cronIntervalMs: 0,
      vars: opts.vars,
      verbose: !!process.env.KF_VERBOSE,
    });
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(kubeconfig, kubeconfigYAML(cp.url, cp.token, cp.caCert), { mode: 0o600 });
    const cacheDir = join(dir, "kube-cache");
    mkdirSync(cacheDir);
    const cli = (args: string[]): Result => {
      const r = spawnSync(NODE, ["scripts/cli.ts", "--kubeconfig", kubeconfig, ...args], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
      return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", cmd: `node scripts/cli.ts ${args.join(" ")}` };
    };
    agent = spawnAgent({
      server: cp.url,
      name: nodeName,
      runtime: opts.runtime ?? "fake",
      stateDir: join(dir, nodeName),
      caFile: join(dir, "cp", "tls.crt"),
      joinToken: createJoinToken(kubeconfig),
      args: opts.agentArgs,
      log: agentLog,
    });
    const kubectl = new Kubectl(kubeconfig, cacheDir);
    await eventually(
      `node ${nodeName} Ready (agent log: ${agentLog.join("")})`,
      () => {
        const r = kubectl.run(["get", "node", nodeName, "-o", "json"]);
        if (r.code !== 0) return false;
        return JSON.parse(r.stdout).status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");
      },
      30_000,
      500,
    );
    const cluster: Cluster = {
      cp,
      dir,
      kubeconfig,
      kubectl,
      nodeName,
      agentLog,
      agentPids: () => (agent?.pid ? [agent.pid] : []),
      async restartControlPlane() {
        const port = Number(new URL(cluster.cp.url).port);
        await cluster.cp.stop();
        cluster.cp = await startControlPlane({ stateDir: join(dir, "cp"), port, tls: true, cronIntervalMs: 0, vars: opts.vars });
        cp = cluster.cp;
      },
      kubectlFor: (kc) => new Kubectl(kc, cacheDir),
      cli,
      stop,
    };
    return cluster;
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * A JSON client for the API: `api(method, path, body?, token?, contentType?)` with the
 * admin token unless another is given; the reply's body parsed as JSON where it is.
 * `target` is read on every call (tests restart control planes).
 */
export function jsonApi(target: () => { cp: { url: string; token: string }; dispatcher: HttpAgent }) {
  return async (
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    contentType = "application/json",
  ): Promise<{ status: number; body: any }> => {
    const { cp, dispatcher } = target();
    const res = await undiciFetch(cp.url + path, {
      dispatcher,
      method,
      headers: { authorization: `Bearer ${token ?? cp.token}`, ...(body !== undefined ? { "content-type": contentType } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.status, body: parsed };
  };
}

/** Kills every process the process runtime started under an agent's state dir. */
export function killProcessContainers(stateDir: string): void {
  killRecordedContainers(join(stateDir, "process-runtime"));
}

/** The header and rows of a kubectl table, split on runs of 2+ spaces. */
export function table(text: string): { header: string[]; rows: string[][] } {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const split = (l: string) => l.trim().split(/\s{2,}/);
  return { header: lines.length ? split(lines[0]) : [], rows: lines.slice(1).map(split) };
}
