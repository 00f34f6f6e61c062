#!/usr/bin/env node

// kubeflare-agent: the node agent's command line.
//
//   kubeflare-agent --server URL --join-token T [--name N] [--runtime docker|process|fake]
//                   [--state-dir D] [--labels k=v,...] [--ca-file F] [--insecure-skip-tls-verify]
//                   [--poll-interval SECONDS] [--docker-socket PATH]
//                   [--no-service-proxy] [--service-proxy-address IP] [--routable-cidrs CIDR,...]
//                   [--node-port-address IP]
//
// The join token is exchanged once for a node credential kept in the state dir; later
// starts reuse it (the join token may be gone by then). Nothing is registered until the
// credential is in hand, so a bad token leaves nothing half-done.

import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import os from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent } from "./agent.ts";
import { ApiClient, ApiStatusError } from "./client.ts";
import { cidrMatcher } from "./proxy/plan.ts";
import type { Runtime } from "./runtime/types.ts";

export class UsageError extends Error {}

export interface AgentConfig {
  server: string;
  joinToken?: string;
  name: string;
  runtime: "docker" | "process" | "fake";
  stateDir: string;
  labels: Record<string, string>;
  ca?: string;
  insecure: boolean;
  pollIntervalMs?: number;
  dockerSocket?: string;
  serviceProxy: boolean;
  serviceProxyAddress?: string;
  routableCIDRs: string[];
  nodePortAddress?: string;
}

const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function parseConfig(argv: string[]): AgentConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      server: { type: "string" },
      "join-token": { type: "string" },
      name: { type: "string" },
      runtime: { type: "string", default: "docker" },
      "state-dir": { type: "string" },
      labels: { type: "string" },
      "ca-file": { type: "string" },
      "insecure-skip-tls-verify": { type: "boolean", default: false },
      "poll-interval": { type: "string" },
      "docker-socket": { type: "string" },
      "no-service-proxy": { type: "boolean", default: false },
      "service-proxy-address": { type: "string" },
      "routable-cidrs": { type: "string" },
      "node-port-address": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) throw new UsageError("");
  if (!values.server) throw new UsageError("--server is required (the control plane's URL)");
  let url: URL;
  try {
    url = new URL(values.server);
  } catch {
    throw new UsageError(`--server: not a URL: ${values.server}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new UsageError(`--server: must be http(s): ${values.server}`);
  const runtime = values.runtime!;
  if (runtime !== "docker" && runtime !== "process" && runtime !== "fake") {
    throw new UsageError(`--runtime: unknown runtime "${runtime}" (choose docker, process or fake)`);
  }
  const name = (values.name ?? os.hostname()).toLowerCase();
  if (name.length > 253 || !DNS1123.test(name))
    throw new UsageError(`--name: "${name}" is not a valid node name (lowercase DNS subdomain)`);
  const labels: Record<string, string> = {};
  for (const kv of (values.labels ?? "").split(",").filter(Boolean)) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new UsageError(`--labels: expected k=v, got "${kv}"`);
    labels[kv.slice(0, i)] = kv.slice(i + 1);
  }
  let pollIntervalMs: number | undefined;
  if (values["poll-interval"] !== undefined) {
    const s = Number(values["poll-interval"]);
    if (!Number.isFinite(s) || s <= 0) throw new UsageError(`--poll-interval: expected seconds > 0, got "${values["poll-interval"]}"`);
    pollIntervalMs = s * 1000;
  }
  for (const flag of ["service-proxy-address", "node-port-address"] as const) {
    const v = values[flag];
    if (v !== undefined && isIP(v) === 0) throw new UsageError(`--${flag}: not an IP address: "${v}"`);
  }
  const routableCIDRs = (values["routable-cidrs"] ?? "")
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);
  try {
    cidrMatcher(routableCIDRs);
  } catch (e) {
    throw new UsageError(`--routable-cidrs: ${e instanceof Error ? e.message : String(e)}`);
  }
  const ca = values["ca-file"] ? readFileSync(values["ca-file"], "utf8") : undefined;
  return {
    server: url.href.replace(/\/$/, ""),
    joinToken: values["join-token"],
    name,
    runtime,
    stateDir: resolve(values["state-dir"] ?? join(os.homedir(), ".kubeflare-agent", name)),
    labels,
    ca,
    insecure: values["insecure-skip-tls-verify"] ?? false,
    pollIntervalMs,
    dockerSocket: values["docker-socket"],
    serviceProxy: !values["no-service-proxy"],
    serviceProxyAddress: values["service-proxy-address"],
    routableCIDRs,
    nodePortAddress: values["node-port-address"],
  };
}

interface Credential {
  server: string;
  nodeName: string;
  token: string;
}

/** The node credential from the state dir, or a new one from the join token. */
export async function obtainCredential(cfg: AgentConfig): Promise<Credential> {
  const file = join(cfg.stateDir, "credential.json");
  if (existsSync(file)) {
    const cred = JSON.parse(readFileSync(file, "utf8")) as Credential;
    if (cred.nodeName !== cfg.name) {
      throw new UsageError(
        `state dir ${cfg.stateDir} holds the credential of node "${cred.nodeName}", not "${cfg.name}": use another --state-dir`,
      );
    }
    if (cred.server !== cfg.server)
      throw new UsageError(`state dir ${cfg.stateDir} belongs to control plane ${cred.server}, not ${cfg.server}`);
    return cred;
  }
  if (!cfg.joinToken) throw new UsageError("--join-token is required the first time a node joins (no credential in the state dir)");
  if (!/^[a-z0-9]{6}\.[a-z0-9]{16}$/.test(cfg.joinToken))
    throw new UsageError("--join-token: malformed (expected [a-z0-9]{6}.[a-z0-9]{16})");
  const client = new ApiClient({ server: cfg.server, token: cfg.joinToken, ca: cfg.ca, insecureSkipTLSVerify: cfg.insecure });
  try {
    await client.get("/version");
  } catch (e) {
    throw new UsageError(`cannot reach the control plane at ${cfg.server}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let res: { token: string };
  try {
    res = (await client.request("POST", "/apis/kubeflare.dev/v1/nodecredentials", { nodeName: cfg.name })) as { token: string };
  } catch (e) {
    if (e instanceof ApiStatusError && e.code === 401) throw new UsageError("the join token was rejected: it is wrong, expired or revoked");
    throw new UsageError(`joining failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    client.close();
  }
  const cred: Credential = { server: cfg.server, nodeName: cfg.name, token: res.token };
  mkdirSync(cfg.stateDir, { recursive: true });
  writeFileSync(file, JSON.stringify(cred, null, 2), { mode: 0o600 });
  return cred;
}

export async function makeRuntime(cfg: AgentConfig): Promise<Runtime> {
  switch (cfg.runtime) {
    case "docker": {
      const { DockerRuntime } = await import("./runtime/docker.ts");
      const rt = new DockerRuntime({ socketPath: cfg.dockerSocket, nodeName: cfg.name });
      try {
        await rt.version();
      } catch (e) {
        throw new UsageError(
          `the docker runtime cannot reach a Docker engine at ${cfg.dockerSocket ?? "/var/run/docker.sock"}: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
      return rt;
    }
    case "process": {
      const { ProcessRuntime } = await import("./runtime/process.ts");
      return new ProcessRuntime({ stateDir: join(cfg.stateDir, "process-runtime"), nodeName: cfg.name });
    }
    case "fake": {
      const { FakeRuntime } = await import("./runtime/fake.ts");
      return new FakeRuntime({ nodeName: cfg.name });
    }
  }
}

export async function main(argv: string[]): Promise<number> {
  let cfg: AgentConfig;
  try {
    cfg = parseConfig(argv);
    const runtime = await makeRuntime(cfg);
    const cred = await obtainCredential(cfg);
    const client = new ApiClient({ server: cfg.server, token: cred.token, ca: cfg.ca, insecureSkipTLSVerify: cfg.insecure });
    const agent = new Agent({
      nodeName: cfg.name,
      client,
      runtime,
      stateDir: cfg.stateDir,
      labels: cfg.labels,
      pollIntervalMs: cfg.pollIntervalMs,
      serviceProxy: cfg.serviceProxy,
      serviceProxyAddress: cfg.serviceProxyAddress,
      routableCIDRs: cfg.routableCIDRs,
      nodePortAddress: cfg.nodePortAddress,
      tunnel: { server: cfg.server, token: cred.token, ca: cfg.ca, insecureSkipTLSVerify: cfg.insecure },
    });
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.on(sig, () => {
        console.log(`[agent ${cfg.name}] stopping (containers keep running)`);
        agent.stop();
        setTimeout(() => process.exit(0), 500).unref();
      });
    }
    console.log(`[agent ${cfg.name}] joined ${cfg.server} with the ${cfg.runtime} runtime; state in ${cfg.stateDir}`);
    await agent.run();
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      const usage =
        "usage: kubeflare-agent --server URL --join-token T [--name N] [--runtime docker|process|fake] [--state-dir D]\n" +
        "                       [--labels k=v,...] [--ca-file F] [--insecure-skip-tls-verify] [--poll-interval S] [--docker-socket PATH]\n" +
        "                       [--no-service-proxy] [--service-proxy-address IP] [--routable-cidrs CIDR,...] [--node-port-address IP]";
      if (!e.message) {
        console.log(usage); // --help
        return 0;
      }
      console.error(`kubeflare-agent: ${e.message}`);
      return 2;
    }
    console.error(`kubeflare-agent: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

/** Whether this module is the program being run (also through a symlink, as npm installs bins). */
function isEntry(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(resolve(process.argv[1])) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv.slice(2)).then((code) => {
    if (code !== 0) process.exit(code);
  });
}
