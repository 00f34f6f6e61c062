// Runs the control plane locally: bundles the Worker with esbuild and serves it through
// Miniflare's API (one workerd process, persisted Durable Object state). Used by
// `npm start`, the end-to-end tests and the benchmarks.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { generate as generateCert } from "selfsigned";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const COMPATIBILITY_DATE = "2026-08-01";

export interface ControlPlaneOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Where Durable Object state and the admin token live. */
  stateDir: string;
  /** Extra Worker variables (see workers/env.ts), e.g. shorter compaction for tests. */
  vars?: Record<string, string>;
  /** Run the cron resync every this many ms (default 60000; 0 disables). */
  cronIntervalMs?: number;
  /** workerd's own logs (console.*) to stdout. */
  verbose?: boolean;
  /**
   * Serve HTTPS with a self-signed certificate kept in stateDir. kubectl (client-go)
   * never sends bearer tokens over plain HTTP, so `npm start` serves TLS by default.
   */
  tls?: boolean;
}

export interface ControlPlane {
  url: string;
  token: string;
  /** PEM of the serving certificate (self-signed) when tls is on. */
  caCert?: string;
  mf: Miniflare;
  /** Runs the Worker's scheduled() handler once, as the cron trigger would. */
  cron(): Promise<void>;
  stop(): Promise<void>;
}

/** Bundles workers/index.ts into .wrangler/build/worker.js. */
export async function bundleWorker(): Promise<string> {
  const out = join(ROOT, ".wrangler", "build", "worker.js");
  await build({
    entryPoints: [join(ROOT, "workers", "index.ts")],
    outfile: out,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2023",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    external: ["cloudflare:*", "node:*"],
    loader: { ".sql": "text" },
    sourcemap: "linked",
    logLevel: "warning",
  });
  return out;
}

/** The admin token kept in stateDir, generated on first use. */
export function adminToken(stateDir: string): string {
  const file = join(stateDir, "admin-token");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(stateDir, { recursive: true });
  const token = randomBytes(32).toString("hex");
  writeFileSync(file, token + "\n", { mode: 0o600 });
  return token;
}

/** The serving certificate kept in stateDir (for 127.0.0.1, ::1 and localhost), made on first use. */
export async function servingCert(stateDir: string, host = "127.0.0.1"): Promise<{ key: string; cert: string }> {
  const keyFile = join(stateDir, "tls.key");
  const certFile = join(stateDir, "tls.crt");
  if (existsSync(keyFile) && existsSync(certFile)) return { key: readFileSync(keyFile, "utf8"), cert: readFileSync(certFile, "utf8") };
  mkdirSync(stateDir, { recursive: true });
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 10);
  const pems = await generateCert([{ name: "commonName", value: "kubeflare-local" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notAfterDate: notAfter,
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "keyUsage", digitalSignature: true, keyCertSign: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        // Loopback, this machine's name, and the listen address, so that agents on other
        // machines can verify it with --ca-file (made once; delete tls.* to remake).
        altNames: [
          { type: 2, value: "localhost" },
          { type: 2, value: hostname().toLowerCase() },
          { type: 7, ip: "127.0.0.1" },
          { type: 7, ip: "::1" },
          ...(host && !["127.0.0.1", "::1", "localhost", "0.0.0.0", "::"].includes(host)
            ? [/^[\d.]+$|:/.test(host) ? { type: 7 as const, ip: host } : { type: 2 as const, value: host }]
            : []),
        ],
      },
    ],
  });
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  writeFileSync(certFile, pems.cert);
  return { key: pems.private, cert: pems.cert };
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const scriptPath = await bundleWorker();
  const token = adminToken(opts.stateDir);
  const tls = opts.tls ? await servingCert(opts.stateDir, opts.host) : undefined;
  const host = opts.host ?? "127.0.0.1";
  // Plain HTTP is served on a direct socket to the Worker, skipping Miniflare's entry
  // worker (request rewriting and response compression: about a fifth of the CPU of a
  // write when profiled). HTTPS needs the entry socket, which terminates TLS.
  const mf = new Miniflare({
    host,
    port: tls ? (opts.port ?? 0) : 0,
    ...(tls ? { httpsKey: tls.key, httpsCert: tls.cert } : { unsafeDirectSockets: [{ host, port: opts.port ?? 0 }] }),
    modules: true,
    modulesRules: [{ type: "Text", include: ["**/*.sql"] }],
    scriptPath,
    compatibilityDate: COMPATIBILITY_DATE,
    compatibilityFlags: ["nodejs_compat"],
    durableObjects: {
      STORE: { className: "StoreDO", useSQLite: true },
      CONTROLLERS: { className: "ControllerManagerDO", useSQLite: true },
      SCHEDULER: { className: "SchedulerDO", useSQLite: true },
      TUNNELS: { className: "NodeTunnelDO", useSQLite: true },
    },
    durableObjectsPersist: join(opts.stateDir, "durable-objects"),
    bindings: { ADMIN_TOKEN: token, STORE_SUBSCRIBERS: "SCHEDULER,CONTROLLERS", ...(opts.vars ?? {}) },
    verbose: opts.verbose ?? false,
  });
  const entryURL = (await mf.ready).href.replace(/\/$/, "");
  const url = tls ? entryURL : (await mf.unsafeGetDirectURL()).href.replace(/\/$/, "");
  const cron = async () => {
    const w = await mf.getWorker();
    await w.scheduled({ cron: "* * * * *" });
  };
  const every = opts.cronIntervalMs ?? 60_000;
  const timer = every > 0 ? setInterval(() => cron().catch((e) => console.warn(`cron failed: ${String(e)}`)), every) : undefined;
  timer?.unref();
  return {
    url,
    token,
    caCert: tls?.cert,
    mf,
    cron,
    async stop() {
      if (timer) clearInterval(timer);
      await mf.dispose();
    },
  };
}

/** A kubeconfig for the admin user of a local control plane. */
export function kubeconfigYAML(url: string, token: string, caCert?: string, cluster = "kubeflare"): string {
  // Plain HTTP: client-node refuses an http:// server unless TLS verification is marked off.
  const ca = caCert
    ? `\n    certificate-authority-data: ${Buffer.from(caCert).toString("base64")}`
    : url.startsWith("http:")
      ? "\n    insecure-skip-tls-verify: true"
      : "";
  return `apiVersion: v1
kind: Config
clusters:
- name: ${cluster}
  cluster:
    server: ${url}${ca}
users:
- name: ${cluster}-admin
  user:
    token: ${token}
contexts:
- name: ${cluster}
  context:
    cluster: ${cluster}
    user: ${cluster}-admin
    namespace: default
current-context: ${cluster}
`;
}

/**
 * A join token made the way a user makes one (`scripts/cli.ts join-token create`, with
 * a kubeconfig); throws with the CLI's output if it could not.
 */
export function createJoinToken(kubeconfig: string, args: string[] = []): string {
  const r = spawnSync(process.execPath, [join(ROOT, "scripts", "cli.ts"), "join-token", "create", ...args, "--kubeconfig", kubeconfig], {
    encoding: "utf8",
    timeout: 30_000,
  });
  const token = /([a-z0-9]{6}\.[a-z0-9]{16})/.exec(r.stdout ?? "")?.[1];
  if (!token) throw new Error(`join-token create failed: ${r.stdout ?? ""}${r.stderr ?? ""}`);
  return token;
}

export interface AgentProcessOptions {
  server: string;
  name: string;
  runtime: string;
  stateDir: string;
  caFile?: string;
  /** Only for a first start: later starts reuse the credential in the state dir. */
  joinToken?: string;
  /** More agent flags. */
  args?: string[];
  /** The agent to run (default node-agent/main.ts; e.g. the bundle). */
  entry?: string;
  /** Flags for node itself. */
  nodeOptions?: string[];
  /** "pipe" (default) to read its output, "inherit" to show it. */
  output?: "pipe" | "inherit" | "ignore";
  /** With "pipe": every chunk of stdout and stderr is appended here. */
  log?: string[];
  env?: NodeJS.ProcessEnv;
}

/** Starts a node agent as its own process, the way a user does (`node node-agent/main.ts ...`). */
export function spawnAgent(o: AgentProcessOptions): ChildProcess {
  const args = [...(o.nodeOptions ?? []), o.entry ?? join(ROOT, "node-agent", "main.ts")];
  args.push("--server", o.server, "--name", o.name, "--runtime", o.runtime, "--state-dir", o.stateDir);
  if (o.caFile) args.push("--ca-file", o.caFile);
  if (o.joinToken) args.push("--join-token", o.joinToken);
  args.push(...(o.args ?? []));
  const output = o.output ?? "pipe";
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", output, output], env: o.env });
  if (o.log && output === "pipe") {
    const log = o.log;
    child.stdout!.on("data", (d) => log.push(String(d)));
    child.stderr!.on("data", (d) => log.push(String(d)));
  }
  return child;
}
