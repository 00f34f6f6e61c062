// npm start: a local control plane on https://127.0.0.1:8787 with state kept across
// restarts, a kubeconfig for its admin user, and local node agents (docker if a Docker
// engine answers, otherwise the process runtime), so `kubectl apply` of a Deployment
// runs pods right away.
//
//   npm start -- [--port N] [--host H] [--state-dir D] [--kubeconfig F] [--http]
//                [--agents N] [--no-agent] [--runtime docker|process|fake] [--verbose]

import type { ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import http from "node:http";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createJoinToken, kubeconfigYAML, ROOT, spawnAgent, startControlPlane } from "./control-plane.ts";

const USAGE = `usage: npm start -- [options]
  --port N            port to listen on (default 8787; 0: any free port)
  --host H            address to listen on (default 127.0.0.1)
  --state-dir D       state kept across restarts (default .wrangler/state)
  --kubeconfig F      where to write the admin kubeconfig (default ./kubeconfig)
  --http              serve plain HTTP instead of HTTPS (kubectl then sends no token)
  --agents N          local node agents to start (default 1)
  --no-agent          start no node agent
  --runtime R         the agents' runtime: docker, process or fake (default: docker if a
                      Docker engine answers on /var/run/docker.sock, else process)
  --verbose           print workerd's logs`;

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    host: { type: "string", default: "127.0.0.1" },
    "state-dir": { type: "string", default: join(ROOT, ".wrangler", "state") },
    kubeconfig: { type: "string", default: join(process.cwd(), "kubeconfig") },
    verbose: { type: "boolean", default: false },
    http: { type: "boolean", default: false },
    agents: { type: "string", default: "1" },
    "no-agent": { type: "boolean", default: false },
    runtime: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});

function fail(msg: string): never {
  console.error(`${msg}\n\n${USAGE}`);
  process.exit(2);
}

if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port: not a port number: ${values.port}`);
const agentCount = values["no-agent"] ? 0 : Number(values.agents);
if (!Number.isInteger(agentCount) || agentCount < 0 || agentCount > 50) fail(`--agents: expected 0..50, got ${values.agents}`);
if (values.runtime && !["docker", "process", "fake"].includes(values.runtime)) fail(`--runtime: unknown runtime "${values.runtime}"`);

/** Whether a Docker engine answers on its default socket. */
function dockerAnswers(): Promise<boolean> {
  if (!existsSync("/var/run/docker.sock")) return Promise.resolve(false);
  return new Promise((done) => {
    const req = http.request({ socketPath: "/var/run/docker.sock", path: "/_ping", timeout: 2000 }, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    req.on("error", () => done(false));
    req.on("timeout", () => {
      req.destroy();
      done(false);
    });
    req.end();
  });
}

const stateDir = resolve(values["state-dir"]!);
const cp = await startControlPlane({ host: values.host, port, stateDir, verbose: values.verbose, tls: !values.http });
const kubeconfig = resolve(values.kubeconfig!);
writeFileSync(kubeconfig, kubeconfigYAML(cp.url, cp.token, cp.caCert), { mode: 0o600 });

console.log(`control plane: ${cp.url}`);
console.log(`state:         ${stateDir}`);
console.log(`kubeconfig:    ${kubeconfig}`);

const agents: ChildProcess[] = [];
if (agentCount > 0) {
  const runtime = values.runtime ?? ((await dockerAnswers()) ? "docker" : "process");
  const base =
    hostname()
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, "-")
      .replace(/^-+|-+$/g, "") || "node";
  const names = Array.from({ length: agentCount }, (_, i) => (agentCount === 1 ? base : `${base}-${i + 1}`));
  const dirs = names.map((n) => join(stateDir, "agents", n));
  // A join token only for agents that have no credential yet (restarts reuse theirs).
  let token: string | undefined;
  if (dirs.some((d) => !existsSync(join(d, "credential.json")))) {
    try {
      token = createJoinToken(kubeconfig, ["--ttl", "1h", "--description", "npm start"]);
    } catch (e) {
      console.error(`could not create a join token for the local agents: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  for (let i = 0; i < names.length; i++) {
    agents.push(
      spawnAgent({
        server: cp.url,
        name: names[i],
        runtime,
        stateDir: dirs[i],
        caFile: cp.caCert ? join(stateDir, "tls.crt") : undefined,
        joinToken: token,
        output: "inherit",
      }),
    );
  }
  console.log(`agents:        ${names.join(", ")} (${runtime} runtime)`);
}
console.log(`try:           KUBECONFIG=${kubeconfig} kubectl get nodes`);

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    console.log("stopping");
    for (const a of agents) a.kill("SIGTERM");
    await cp.stop();
    process.exit(0);
  });
}
