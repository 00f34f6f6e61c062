// Runs the control plane locally: bundles the Worker with esbuild and serves it through
// Miniflare's API (one workerd process, persisted Durable Object state). Used by
// `npm start`, the end-to-end tests and the benchmarks.

import { Miniflare } from "miniflare";
import { build } from "esbuild";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

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
}

export interface ControlPlane {
  url: string;
  token: string;
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

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const scriptPath = await bundleWorker();
  const token = adminToken(opts.stateDir);
  const mf = new Miniflare({
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? 0,
    modules: true,
    modulesRules: [{ type: "Text", include: ["**/*.sql"] }],
    scriptPath,
    compatibilityDate: COMPATIBILITY_DATE,
    compatibilityFlags: ["nodejs_compat"],
    durableObjects: { STORE: { className: "StoreDO", useSQLite: true } },
    durableObjectsPersist: join(opts.stateDir, "durable-objects"),
    bindings: { ADMIN_TOKEN: token, ...(opts.vars ?? {}) },
    verbose: opts.verbose ?? false,
  });
  const url = (await mf.ready).href.replace(/\/$/, "");
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
    mf,
    cron,
    async stop() {
      if (timer) clearInterval(timer);
      await mf.dispose();
    },
  };
}

/** A kubeconfig for the admin user of a local control plane. */
export function kubeconfigYAML(url: string, token: string, cluster = "kubeflare"): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: ${cluster}
  cluster:
    server: ${url}
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
