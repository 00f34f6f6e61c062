// End to end: a control plane and two node agents (process runtime), each started the
// way a user would (join token from the CLI, `node node-agent/main.ts ...`), dialing out
// only. Deployments run, crash loops back off, a SIGKILLed agent re-adopts its
// containers, and a node that goes away for good loses its pods to the other one.

import { type ChildProcess, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent as HttpAgent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ControlPlane, createJoinToken, kubeconfigYAML, ROOT, spawnAgent, startControlPlane } from "../../scripts/control-plane.ts";
import { eventually, jsonApi, killProcessContainers } from "./kubectl-harness.ts";

const NODE = process.execPath;
let cp: ControlPlane;
let dir: string;
let kubeconfig: string;
let caFile: string;
let joinToken: string;
let dispatcher: HttpAgent;
const api = jsonApi(() => ({ cp: cp, dispatcher }));
const agents = new Map<string, ChildProcess>();
const logs = new Map<string, string[]>();

function runAgent(name: string, extra: string[] = [], token: string | undefined = joinToken): ChildProcess {
  const log = logs.get(name) ?? [];
  logs.set(name, log);
  const child = spawnAgent({
    server: cp.url,
    name,
    runtime: "process",
    stateDir: join(dir, name),
    caFile,
    joinToken: token,
    args: extra,
    log,
  });
  agents.set(name, child);
  return child;
}

/** Runs the agent CLI to completion (for the bad-input cases). */
function agentOnce(args: string[]): { code: number | null; output: string } {
  const r = spawnSync(NODE, ["node-agent/main.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

const ready = (p: any) => p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kf-agents-"));
  cp = await startControlPlane({
    stateDir: join(dir, "cp"),
    port: 0,
    tls: true,
    cronIntervalMs: 0,
    vars: { NODE_MONITOR_GRACE_SECONDS: "12", POD_EVICTION_TOLERATION_SECONDS: "2" },
  });
  caFile = join(dir, "cp", "tls.crt");
  dispatcher = new HttpAgent({ connect: { ca: cp.caCert } });
  kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigYAML(cp.url, cp.token, cp.caCert));
  joinToken = createJoinToken(kubeconfig);
  runAgent("agent-a");
  runAgent("agent-b");
}, 60_000);

afterAll(async () => {
  for (const a of agents.values()) a.kill("SIGKILL");
  for (const n of ["agent-a", "agent-b"]) killProcessContainers(join(dir, n));
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("node agents", () => {
  it("join with a join token, register Ready nodes with capacity, labels and node info, and renew Leases", async () => {
    for (const name of ["agent-a", "agent-b"]) {
      const node = await eventually(`node ${name} Ready`, async () => {
        const n = (await api("GET", `/api/v1/nodes/${name}`)).body;
        return n?.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True") && n;
      });
      expect(node.metadata.labels).toMatchObject({ "kubernetes.io/hostname": name, "kubernetes.io/os": "linux" });
      expect(Number(node.status.capacity.cpu)).toBeGreaterThan(0);
      expect(node.status.allocatable.pods).toBe("110");
      expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(/^process:\/\//);
      expect(node.status.conditions.map((c: any) => c.type).sort()).toEqual(["DiskPressure", "MemoryPressure", "PIDPressure", "Ready"]);
      // The Lease comes from the agent's lease loop, which may run just after the Node is Ready.
      const lease = await eventually(`lease of ${name}`, async () => {
        const r = await api("GET", `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`);
        return r.status === 200 && r.body;
      });
      expect(lease.spec.holderIdentity).toBe(name);
      expect(existsSync(join(dir, name, "credential.json"))).toBe(true);
    }
  });

  it("runs a Deployment of 3 replicas to Running and Ready with kubelet-like status", async () => {
    const labels = { app: "sleeper" };
    const d = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "sleeper" },
      spec: {
        replicas: 3,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            terminationGracePeriodSeconds: 2,
            containers: [
              {
                name: "main",
                image: "busybox",
                command: ["sh", "-c", "echo hello from $POD_NAME; exec sleep 3600"],
                env: [{ name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
              },
            ],
          },
        },
      },
    };
    expect((await api("POST", "/apis/apps/v1/namespaces/default/deployments", d)).status).toBe(201);
    const pods = await eventually(
      "3 running, ready pods",
      async () => {
        const items = (await api("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dsleeper")).body.items;
        return items.length === 3 && items.every((p: any) => p.status.phase === "Running" && ready(p)) && items;
      },
      45_000,
    );
    for (const p of pods) {
      const cs = p.status.containerStatuses[0];
      expect(cs).toMatchObject({ name: "main", ready: true, restartCount: 0, started: true });
      expect(cs.state.running.startedAt).toMatch(/Z$/);
      expect(cs.containerID).toMatch(/^process:\/\//);
      expect(p.status.hostIP).toBeTruthy();
      expect(p.status.podIP).toBeTruthy();
      expect(p.status.startTime).toBeTruthy();
      expect(p.status.conditions.map((c: any) => c.type).sort()).toEqual(["ContainersReady", "Initialized", "PodScheduled", "Ready"]);
    }
    expect(new Set(pods.map((p: any) => p.spec.nodeName))).toEqual(new Set(["agent-a", "agent-b"]));
    const events = (await api("GET", "/api/v1/namespaces/default/events")).body.items.map((e: any) => e.reason);
    expect(events).toEqual(expect.arrayContaining(["Created", "Started"]));
    // The container's output landed in the agent's per-container log file.
    const p0 = pods[0];
    const logDir = join(dir, p0.spec.nodeName, "logs", p0.metadata.uid, "main");
    const text = readdirSync(logDir)
      .map((f) => readFileSync(join(logDir, f), "utf8"))
      .join("");
    expect(text).toContain(`hello from ${p0.metadata.name}`);
  });

  it("puts a crashing container into CrashLoopBackOff", async () => {
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "crasher" },
      spec: { containers: [{ name: "c", image: "busybox", command: ["sh", "-c", "exit 3"] }] },
    };
    expect((await api("POST", "/api/v1/namespaces/default/pods", pod)).status).toBe(201);
    const p = await eventually(
      "CrashLoopBackOff",
      async () => {
        const o = (await api("GET", "/api/v1/namespaces/default/pods/crasher")).body;
        const cs = o.status?.containerStatuses?.[0];
        return cs?.state?.waiting?.reason === "CrashLoopBackOff" && o;
      },
      40_000,
    );
    const cs = p.status.containerStatuses[0];
    expect(cs.restartCount).toBeGreaterThanOrEqual(1);
    expect(cs.lastState.terminated).toMatchObject({ exitCode: 3, reason: "Error" });
    const events = (await api("GET", "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dcrasher")).body.items;
    expect(events.map((e: any) => e.reason)).toContain("BackOff");
    // Repeats are one event with a count, as kubelet's are ("x2 over ..."), not one each.
    const started = events.filter((e: any) => e.reason === "Started");
    expect(started).toHaveLength(1);
    expect(started[0].count).toBeGreaterThanOrEqual(2);
    expect(Date.parse(started[0].lastTimestamp)).toBeGreaterThanOrEqual(Date.parse(started[0].firstTimestamp));
    await api("DELETE", "/api/v1/namespaces/default/pods/crasher");
  });

  it("deletes a pod gracefully: SIGTERM, SIGKILL after the grace period, then the agent completes the deletion", async () => {
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "stubborn" },
      spec: {
        nodeName: "agent-a",
        terminationGracePeriodSeconds: 2,
        containers: [{ name: "c", image: "busybox", command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"] }],
      },
    };
    expect((await api("POST", "/api/v1/namespaces/default/pods", pod)).status).toBe(201);
    const running = await eventually("stubborn running", async () => {
      const o = (await api("GET", "/api/v1/namespaces/default/pods/stubborn")).body;
      return o.status?.phase === "Running" && o;
    });
    const id = running.status.containerStatuses[0].containerID.replace("process://", "");
    const rec = JSON.parse(readFileSync(join(dir, "agent-a", "process-runtime", `${id}.json`), "utf8"));
    const started = Date.now();
    const d = await api("DELETE", "/api/v1/namespaces/default/pods/stubborn");
    expect(d.body.metadata.deletionGracePeriodSeconds).toBe(2);
    await eventually("pod gone", async () => (await api("GET", "/api/v1/namespaces/default/pods/stubborn")).status === 404, 20_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500); // it ignored TERM, so it took the grace period
    expect(() => process.kill(rec.pid, 0)).toThrow(); // and it was killed
  });

  it("re-adopts its containers after a SIGKILL and restart: same container ids, no restarts, no duplicates", async () => {
    const before = (await api("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dsleeper")).body.items.filter(
      (p: any) => p.spec.nodeName === "agent-a",
    );
    expect(before.length).toBeGreaterThan(0);
    const ids = new Map(before.map((p: any) => [p.metadata.uid, p.status.containerStatuses[0].containerID]));
    agents.get("agent-a")!.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 1000));
    runAgent("agent-a", [], undefined); // no join token: the credential in the state dir is reused
    await eventually(
      "agent-a back, same containers",
      async () => {
        const items = (await api("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dsleeper")).body.items.filter(
          (p: any) => p.spec.nodeName === "agent-a",
        );
        return (
          items.length === before.length &&
          items.every(
            (p: any) =>
              ids.get(p.metadata.uid) === p.status.containerStatuses[0].containerID &&
              p.status.containerStatuses[0].restartCount === 0 &&
              ready(p),
          )
        );
      },
      30_000,
    );
    // Exactly one live process record per container.
    const recs = readdirSync(join(dir, "agent-a", "process-runtime")).filter((f) => f.endsWith(".json"));
    const live = recs
      .map((f) => JSON.parse(readFileSync(join(dir, "agent-a", "process-runtime", f), "utf8")))
      .filter((r) => r.exitCode === undefined && r.finishedAt === undefined);
    const perContainer = new Map<string, number>();
    for (const r of live) {
      const k = `${r.labels?.["io.kubeflare.pod.uid"]}/${r.labels?.["io.kubeflare.container.name"]}`;
      perContainer.set(k, (perContainer.get(k) ?? 0) + 1);
    }
    expect([...perContainer.values()].every((n) => n === 1)).toBe(true);
    // The restarted agent has its tunnel again: a re-adopted pod's log (written before
    // the restart) is readable through it.
    const pod = before[0];
    const log = await eventually(
      "the re-adopted pod's log through the new tunnel",
      async () => {
        const r = await api("GET", `/api/v1/namespaces/default/pods/${pod.metadata.name}/log`);
        return r.status === 200 && r.body;
      },
      30_000,
    );
    // Exactly one line: the restarted agent started no second copy of the container.
    expect(log).toBe(`hello from ${pod.metadata.name}\n`);
  });

  it("refuses a node credential used for another node's objects", async () => {
    const cred = JSON.parse(readFileSync(join(dir, "agent-a", "credential.json"), "utf8"));
    const r = await api(
      "PATCH",
      "/api/v1/nodes/agent-b",
      { metadata: { labels: { stolen: "yes" } } },
      cred.token,
      "application/merge-patch+json",
    );
    expect(r.status).toBe(403);
    expect(r.body.reason).toBe("Forbidden");
  });

  it("moves the pods of a node that stops for good to the other node", async () => {
    agents.get("agent-b")!.kill("SIGKILL");
    await eventually(
      "agent-b NotReady",
      async () => {
        const n = (await api("GET", "/api/v1/nodes/agent-b")).body;
        return n.status.conditions.find((c: any) => c.type === "Ready")?.status === "Unknown";
      },
      30_000,
    );
    await eventually(
      "3 ready pods on agent-a",
      async () => {
        const items = (await api("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dsleeper")).body.items.filter(
          (p: any) => !p.metadata.deletionTimestamp,
        );
        return items.length === 3 && items.every((p: any) => p.spec.nodeName === "agent-a" && ready(p));
      },
      45_000,
    );
    killProcessContainers(join(dir, "agent-b"));
  });
  it("runs pods in polling mode (--poll-interval) for proxies that cut long requests", async () => {
    runAgent("agent-poll", ["--poll-interval", "1"]);
    await eventually("agent-poll Ready", async () => {
      const n = (await api("GET", "/api/v1/nodes/agent-poll")).body;
      return n?.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");
    });
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "polled" },
      spec: { nodeName: "agent-poll", containers: [{ name: "c", image: "busybox", command: ["sleep", "3600"] }] },
    };
    expect((await api("POST", "/api/v1/namespaces/default/pods", pod)).status).toBe(201);
    await eventually(
      "polled pod Running",
      async () => (await api("GET", "/api/v1/namespaces/default/pods/polled")).body.status?.phase === "Running",
    );
    await api("DELETE", "/api/v1/namespaces/default/pods/polled?gracePeriodSeconds=1");
    await eventually("polled pod gone", async () => (await api("GET", "/api/v1/namespaces/default/pods/polled")).status === 404);
    agents.get("agent-poll")!.kill("SIGKILL");
    killProcessContainers(join(dir, "agent-poll"));
    await api("DELETE", "/api/v1/nodes/agent-poll");
  });
});

describe("agent bad input", () => {
  it("rejects an unknown runtime", () => {
    const r = agentOnce(["--server", cp.url, "--join-token", joinToken, "--runtime", "lxc", "--state-dir", join(dir, "bad1")]);
    expect(r.code).toBe(2);
    expect(r.output).toContain('unknown runtime "lxc"');
  });

  it("says clearly when the server cannot be reached", () => {
    const r = agentOnce([
      "--server",
      "https://127.0.0.1:1",
      "--join-token",
      joinToken,
      "--runtime",
      "fake",
      "--name",
      "nowhere",
      "--state-dir",
      join(dir, "bad2"),
    ]);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain("cannot reach the control plane");
  });

  it("rejects a wrong join token and registers nothing", async () => {
    const r = agentOnce([
      "--server",
      cp.url,
      "--join-token",
      "abcdef.0123456789abcdef",
      "--runtime",
      "fake",
      "--name",
      "intruder",
      "--state-dir",
      join(dir, "bad3"),
      "--ca-file",
      caFile,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain("join token was rejected");
    expect((await api("GET", "/api/v1/nodes/intruder")).status).toBe(404);
    expect(existsSync(join(dir, "bad3", "credential.json"))).toBe(false);
  });

  it("refuses a state dir that holds another node's credential", () => {
    const r = agentOnce([
      "--server",
      cp.url,
      "--name",
      "someone-else",
      "--runtime",
      "fake",
      "--state-dir",
      join(dir, "agent-a"),
      "--ca-file",
      caFile,
    ]);
    expect(r.code).toBe(2);
    expect(r.output).toContain('holds the credential of node "agent-a"');
  });
});
