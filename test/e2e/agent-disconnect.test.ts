// End to end: a node agent (process runtime) keeps its pods going while the control plane
// is away. One pod runs `sleep 3600`, another crashes every second (restartPolicy Always).
// The control plane is stopped for ~15 s: the running container's process stays alive and
// the crashing one keeps being restarted by the agent (its runtime records show new
// attempts). A new control plane on the same state dir and port then gets the statuses
// that piled up: restartCount beyond what it was before the outage, the running pod still
// Running with the same container. The agent is never restarted: it reconnects by itself.
//
// Also: the standalone agent bundle (scripts/build-agent.ts) builds, prints its usage, runs
// through a symlink as npm's `bin` does, and joins as a node.

import { type ChildProcess, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent as HttpAgent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAgent } from "../../scripts/build-agent.ts";
import { type ControlPlane, createJoinToken, kubeconfigYAML, ROOT, spawnAgent, startControlPlane } from "../../scripts/control-plane.ts";
import { eventually, jsonApi } from "./kubectl-harness.ts";

const NODE = process.execPath;
const NODE_NAME = "agent-d";
let cp: ControlPlane | undefined;
let port: number;
let dir: string;
let cpDir: string;
let kubeconfig: string;
let caFile: string;
let joinToken: string;
let dispatcher: HttpAgent;
const api = jsonApi(() => ({ cp: cp!, dispatcher }));
const agents = new Map<string, ChildProcess>();
const logs = new Map<string, string[]>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runAgent(name: string, entry: string, runtime: string): ChildProcess {
  const log = logs.get(name) ?? [];
  logs.set(name, log);
  const child = spawnAgent({ server: cp!.url, name, runtime, entry, stateDir: join(dir, name), caFile, joinToken, log });
  agents.set(name, child);
  return child;
}

interface ProcessRecord {
  id: string;
  pid: number;
  labels: Record<string, string>;
  exitCode?: number;
  startedAt: string;
}

/** The process runtime's container records under an agent's state dir. */
function records(name: string): ProcessRecord[] {
  const d = join(dir, name, "process-runtime");
  if (!existsSync(d)) return [];
  const out: ProcessRecord[] = [];
  for (const f of readdirSync(d)) {
    if (!f.endsWith(".json")) continue;
    try {
      out.push(JSON.parse(readFileSync(join(d, f), "utf8")));
    } catch {
      // being renamed into place
    }
  }
  return out;
}

/** Highest attempt label (kube's restartCount) among the records of one pod's container. */
function maxAttempt(name: string, podUID: string): number {
  return Math.max(
    -1,
    ...records(name)
      .filter((r) => r.labels["io.kubeflare.pod.uid"] === podUID)
      .map((r) => Number(r.labels["io.kubeflare.container.attempt"] ?? 0)),
  );
}

/** Whether a pid is a live process (not a zombie). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Kills every process the process runtime started under a state dir. */
function killContainers(name: string): void {
  for (const rec of records(name)) {
    try {
      if (rec.pid) process.kill(-rec.pid, "SIGKILL");
    } catch {}
  }
}

const ready = (p: any) => p?.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");

function pod(name: string, script: string): any {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: {
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "c", image: "busybox", command: ["sh", "-c", script] }],
    },
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kf-disconnect-"));
  cpDir = join(dir, "cp");
  cp = await startControlPlane({ stateDir: cpDir, port: 0, tls: true, cronIntervalMs: 0 });
  port = Number(new URL(cp.url).port);
  caFile = join(cpDir, "tls.crt");
  dispatcher = new HttpAgent({ connect: { ca: cp.caCert } });
  kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigYAML(cp.url, cp.token, cp.caCert));
  joinToken = createJoinToken(kubeconfig);
  runAgent(NODE_NAME, "node-agent/main.ts", "process");
}, 60_000);

afterAll(async () => {
  for (const a of agents.values()) a.kill("SIGKILL");
  killContainers(NODE_NAME);
  await cp?.stop();
  await dispatcher?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("agent without its control plane", () => {
  it("keeps running and restarting its pods through a control plane outage, then reconnects and reports by itself", async () => {
    const agent = agents.get(NODE_NAME)!;
    await eventually(`node ${NODE_NAME} Ready`, async () => ready((await api("GET", `/api/v1/nodes/${NODE_NAME}`)).body));
    expect((await api("POST", "/api/v1/namespaces/default/pods", pod("runner", "sleep 3600"))).status).toBe(201);
    expect((await api("POST", "/api/v1/namespaces/default/pods", pod("crasher", "sleep 1; exit 1"))).status).toBe(201);

    // Before: the runner Running and Ready, the crasher restarted at least once.
    const runner = await eventually(
      "runner Running and Ready",
      async () => {
        const p = (await api("GET", "/api/v1/namespaces/default/pods/runner")).body;
        return p.status?.phase === "Running" && ready(p) && p;
      },
      30_000,
    );
    expect(runner.spec.nodeName).toBe(NODE_NAME);
    const crasher = await eventually(
      "crasher restarted",
      async () => {
        const p = (await api("GET", "/api/v1/namespaces/default/pods/crasher")).body;
        return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && p;
      },
      30_000,
    );
    const containerID: string = runner.status.containerStatuses[0].containerID;
    expect(containerID).toMatch(/^process:\/\//);
    const runnerRec = records(NODE_NAME).find((r) => r.id === containerID.slice("process://".length));
    expect(runnerRec, "the runner's process record").toBeDefined();
    const runnerPid = runnerRec!.pid;
    expect(alive(runnerPid)).toBe(true);
    const crasherUID: string = crasher.metadata.uid;
    const apiRestartsBefore: number = crasher.status.containerStatuses[0].restartCount;
    const attemptBefore = maxAttempt(NODE_NAME, crasherUID);
    expect(attemptBefore).toBeGreaterThanOrEqual(apiRestartsBefore);

    // The outage: at least 15 s, and until the agent has restarted the crasher on its own
    // (kubelet's back-off: the first restart is immediate, the next one 10 s after the exit).
    await cp!.stop();
    cp = undefined;
    const down = Date.now();
    let attemptDuring = attemptBefore;
    while (Date.now() - down < 15_000 || (attemptDuring <= attemptBefore && Date.now() - down < 45_000)) {
      await sleep(500);
      expect(alive(runnerPid), "the running container's process while the control plane is down").toBe(true);
      expect(agent.exitCode, "the agent process").toBeNull();
      attemptDuring = Math.max(attemptDuring, maxAttempt(NODE_NAME, crasherUID));
    }
    expect(attemptDuring, "crasher restarts by the agent while the control plane was down").toBeGreaterThan(attemptBefore);
    const outageSeconds = (Date.now() - down) / 1000;
    expect(outageSeconds).toBeGreaterThanOrEqual(15);
    // The new attempt really ran as a process: its record has a pid and a start time after the outage began.
    const during = records(NODE_NAME).filter(
      (r) => r.labels["io.kubeflare.pod.uid"] === crasherUID && Date.parse(r.startedAt) > down && r.pid > 0,
    );
    expect(during.length).toBeGreaterThan(0);

    // A new control plane on the same state dir and port; the agent is the same process.
    cp = await startControlPlane({ stateDir: cpDir, port, tls: true, cronIntervalMs: 0 });
    expect(Number(new URL(cp.url).port)).toBe(port);
    await dispatcher.close();
    dispatcher = new HttpAgent({ connect: { ca: cp.caCert } });

    const caughtUp = await eventually(
      "crasher's restartCount beyond the outage's start",
      async () => {
        const p = (await api("GET", "/api/v1/namespaces/default/pods/crasher")).body;
        const rc = p.status?.containerStatuses?.[0]?.restartCount ?? 0;
        return rc > apiRestartsBefore && rc >= attemptDuring && p;
      },
      45_000,
    );
    expect(caughtUp.metadata.uid).toBe(crasherUID);
    const after = (await api("GET", "/api/v1/namespaces/default/pods/runner")).body;
    expect(after.status.phase).toBe("Running");
    expect(ready(after)).toBe(true);
    expect(after.status.containerStatuses[0]).toMatchObject({ containerID, restartCount: 0, ready: true });
    expect(alive(runnerPid)).toBe(true);
    // The node renews its Lease with the new control plane and stays Ready.
    await eventually(
      "lease renewed after the outage",
      async () => {
        const l = (await api("GET", `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${NODE_NAME}`)).body;
        return Date.parse(l.spec?.renewTime) > down + outageSeconds * 1000 - 1000;
      },
      30_000,
    );
    expect(ready((await api("GET", `/api/v1/nodes/${NODE_NAME}`)).body)).toBe(true);
    expect(agent.exitCode, "the agent was never restarted").toBeNull();
    expect(logs.get(NODE_NAME)!.join("")).toContain("control plane reachable again");
    // One live process per container: nothing was started twice.
    const live = records(NODE_NAME).filter((r) => r.exitCode === undefined && alive(r.pid));
    const perContainer = new Map<string, number>();
    for (const r of live) perContainer.set(r.labels["io.kubeflare.pod.uid"], (perContainer.get(r.labels["io.kubeflare.pod.uid"]) ?? 0) + 1);
    expect([...perContainer.values()].every((n) => n === 1)).toBe(true);
  }, 150_000);
});

describe("standalone agent bundle", () => {
  it("builds into one file that prints its usage, runs through a symlink (npm's bin) and joins as a node", async () => {
    const out = join(dir, "bundle", "kubeflare-agent.mjs");
    const b = await buildAgent(out);
    expect(b.bytes).toBeGreaterThan(10_000);
    const text = readFileSync(out, "utf8");
    expect(text.startsWith("#!/usr/bin/env node\n")).toBe(true);
    expect(text.match(/^#!/gm)?.length).toBe(1);
    // Only Node's built-ins are imported: everything else is inlined.
    const imports = [...text.matchAll(/^import .* from "([^"]+)";?$/gm)].map((m) => m[1]);
    expect(imports.every((i) => i.startsWith("node:"))).toBe(true);

    const source = spawnSync(NODE, ["node-agent/main.ts", "--help"], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
    const help = spawnSync(NODE, [out, "--help"], { cwd: tmpdir(), encoding: "utf8", timeout: 30_000 });
    expect(`${help.stdout}${help.stderr}`).toContain("usage: kubeflare-agent --server URL");
    expect(help.status).toBe(source.status);
    const link = join(dir, "bundle", "bin-kubeflare-agent");
    symlinkSync(out, link);
    const viaLink = spawnSync(NODE, [link, "--help"], { cwd: tmpdir(), encoding: "utf8", timeout: 30_000 });
    expect(`${viaLink.stdout}${viaLink.stderr}`).toContain("usage: kubeflare-agent --server URL");

    // A real join with the fake runtime, from the bundle.
    runAgent("bundled", out, "fake");
    const node = await eventually(
      "the bundled agent's node Ready",
      async () => {
        const n = (await api("GET", "/api/v1/nodes/bundled")).body;
        return ready(n) && n;
      },
      30_000,
    );
    expect(node.status.nodeInfo.containerRuntimeVersion).toBe("fake://0.1.0");
    // Its tunnel (the bundled ws client) is up: the node answers through it.
    const health = await eventually(
      "the bundled agent's tunnel",
      async () => {
        const r = await api("GET", "/api/v1/nodes/bundled/proxy/healthz");
        return r.status === 200 && r.body;
      },
      30_000,
    );
    expect(health).toBe("ok");
    agents.get("bundled")!.kill("SIGTERM");
  }, 60_000);
});
