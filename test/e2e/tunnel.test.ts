// End to end through the node tunnel: a TLS control plane and one process-runtime agent
// that only dials out (it listens on no port; everything below reaches it through its
// WebSocket to the NodeTunnelDO). The real kubectl reads logs (all of kube's options,
// -f), the agent's own endpoints answer through nodes/proxy, RBAC guards each verb, a
// node credential cannot reach another node's tunnel, 50 concurrent streams with one
// stalled reader keep flowing within bounded buffers, and the agent reconnects after
// the control plane restarts.

import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agent as HttpAgent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, eventually, hasKubectl, KUBECTL, show, sleep, startCluster } from "./kubectl-harness.ts";

const NODE = "tunnel-node";
let c: Cluster;
let dispatcher: HttpAgent;

async function api(
  path: string,
  init: { method?: string; body?: unknown; token?: string } = {},
): Promise<{ status: number; text: string; json: any }> {
  const res = await undiciFetch(c.cp.url + path, {
    dispatcher,
    method: init.method ?? "GET",
    headers: { authorization: `Bearer ${init.token ?? c.cp.token}`, ...(init.body ? { "content-type": "application/json" } : {}) },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, text, json };
}

function pod(name: string, script: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: { terminationGracePeriodSeconds: 1, containers: [{ name: "main", image: "busybox", command: ["sh", "-c", script], ...extra }] },
  };
}

async function running(name: string): Promise<any> {
  return eventually(`pod ${name} Running`, () => {
    const r = c.kubectl.run(["get", "pod", name, "-o", "json"]);
    if (r.code !== 0) return false;
    const p = JSON.parse(r.stdout);
    return p.status?.phase === "Running" && p;
  });
}

describe.skipIf(!hasKubectl)("node tunnel", () => {
  beforeAll(async () => {
    // No service proxy: the agent then has no listening socket at all, only its outbound ones.
    c = await startCluster(NODE, { runtime: "process", agentArgs: ["--no-service-proxy"], vars: { TUNNEL_CREDENTIAL_CHECK_SECONDS: "1" } });
    dispatcher = new HttpAgent({ connect: { ca: c.cp.caCert }, connections: 64 });
    await api("/api/v1/namespaces/default/pods", {
      method: "POST",
      body: pod("talker", "for i in 1 2 3; do echo line $i; done; echo err-line >&2; while true; do echo tick; sleep 0.2; done"),
    });
    await running("talker");
  }, 90_000);

  afterAll(async () => {
    await c?.stop();
  });

  it("the agent listens on no port: everything below goes through its outbound tunnel", () => {
    const pids = c.agentPids();
    expect(pids.length).toBe(1);
    // The agent's sockets (fd → socket:[inode]) against the kernel's listening TCP/UDP sockets.
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pids[0]}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pids[0]}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {}
    }
    expect(inodes.size).toBeGreaterThan(0); // it does have sockets: the outbound ones
    const listening: string[] = [];
    for (const table of ["tcp", "tcp6", "udp", "udp6"]) {
      let rows: string[] = [];
      try {
        rows = readFileSync(`/proc/net/${table}`, "utf8").trim().split("\n").slice(1);
      } catch {
        continue;
      }
      for (const row of rows) {
        const f = row.trim().split(/\s+/);
        const listens = table.startsWith("tcp") ? f[3] === "0A" : true; // any bound UDP socket receives
        if (listens && inodes.has(f[9])) listening.push(`${table} ${f[1]}`);
      }
    }
    expect(listening).toEqual([]);
  });

  it("kubectl logs: whole log, --tail, --limit-bytes, --timestamps, --since, and stderr interleaved", async () => {
    const all = await eventually("log lines", () => {
      const out = c.kubectl.run(["logs", "talker"]).stdout;
      // Enough ticks that every --tail below sees only ticks.
      return (out.match(/^tick$/gm)?.length ?? 0) >= 5 && out;
    });
    expect(all.startsWith("line 1\nline 2\nline 3\n")).toBe(true);
    expect(all).toContain("err-line\n");
    const tail = c.kubectl.ok(["logs", "talker", "--tail=2"]);
    expect(tail.trim().split("\n")).toEqual(["tick", "tick"]);
    expect(c.kubectl.ok(["logs", "talker", "--limit-bytes=9"])).toBe("line 1\nli");
    const stamped = c.kubectl.ok(["logs", "talker", "--timestamps", "--tail=3"]).trim().split("\n");
    expect(stamped).toHaveLength(3);
    for (const l of stamped) {
      const [ts, rest] = l.split(" ");
      expect(ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      expect(Math.abs(Date.now() - Date.parse(ts))).toBeLessThan(10_000);
      expect(rest).toBe("tick");
    }
    // Lines from the first second are not in the last second.
    await sleep(2500);
    const recent = c.kubectl.ok(["logs", "talker", "--since=1s"]);
    expect(recent).toContain("tick");
    expect(recent).not.toContain("line 1");
    expect(c.kubectl.ok(["logs", "talker", "-c", "main", "--tail=1"]).trim()).toBe("tick");
  });

  it("kubectl logs -f streams new lines as they are written", async () => {
    const w = c.kubectl.spawn(["logs", "-f", "talker", "--tail=1"]);
    try {
      const before = Date.now();
      await w.waitFor(/(tick\n[\s\S]*){4}/, 15_000);
      expect(Date.now() - before).toBeLessThan(10_000);
    } finally {
      w.stop();
    }
  });

  it("kubectl logs --previous reads the container's instance before the last restart", async () => {
    await api("/api/v1/namespaces/default/pods", { method: "POST", body: pod("crashy", "echo run-$(date +%s%N); sleep 1; exit 1") });
    await eventually(
      "crashy restarted",
      () => {
        const r = c.kubectl.run(["get", "pod", "crashy", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"]);
        return Number(r.stdout) >= 1;
      },
      30_000,
    );
    const previous = c.kubectl.ok(["logs", "crashy", "--previous"]);
    expect(previous).toMatch(/^run-\d+\n$/);
    const current = await eventually("the current instance's line", () => {
      const out = c.kubectl.run(["logs", "crashy"]).stdout;
      return /^run-\d+\n$/.test(out) && out;
    });
    expect(current).not.toBe(previous);
    c.kubectl.ok(["delete", "pod", "crashy", "--grace-period=0", "--force"]);
  });

  it("log errors are Kubernetes Statuses: bad container, bad options, unbound pod, no pod", async () => {
    let r = c.kubectl.run(["logs", "talker", "-c", "nope"]);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toContain("container nope is not valid for pod talker");
    const bad = await api("/api/v1/namespaces/default/pods/talker/log?tailLines=-1");
    expect(bad.status).toBe(422);
    expect(bad.json).toMatchObject({ kind: "Status", reason: "Invalid" });
    expect((await api("/api/v1/namespaces/default/pods/talker/log?tailLines=x")).status).toBe(400);
    expect((await api("/api/v1/namespaces/default/pods/talker/log?sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z")).status).toBe(422);
    await api("/api/v1/namespaces/default/pods", {
      method: "POST",
      body: { ...pod("nowhere", "sleep 1"), spec: { ...pod("nowhere", "sleep 1").spec, nodeSelector: { absent: "label" } } },
    });
    const unbound = await api("/api/v1/namespaces/default/pods/nowhere/log");
    expect(unbound.status).toBe(400);
    expect(unbound.json.message).toBe("pod nowhere does not have a host assigned");
    r = c.kubectl.run(["logs", "ghost"]);
    expect(r.stderr).toContain('pods "ghost" not found');
    const prev = await api("/api/v1/namespaces/default/pods/talker/log?previous=true");
    expect(prev.status).toBe(400);
    expect(prev.json.message).toContain('previous terminated container "main" in pod "talker" not found');
  });

  it("nodes/proxy reaches the agent's own endpoints", async () => {
    expect(c.kubectl.ok(["get", "--raw", `/api/v1/nodes/${NODE}/proxy/healthz`])).toBe("ok");
    const pods = JSON.parse(c.kubectl.ok(["get", "--raw", `/api/v1/nodes/${NODE}/proxy/pods`]));
    expect(pods.kind).toBe("PodList");
    expect(pods.items.map((p: any) => p.metadata.name)).toContain("talker");
    const missing = c.kubectl.run(["get", "--raw", "/api/v1/nodes/no-such-node/proxy/healthz"]);
    expect(missing.stderr).toContain("NotFound");
  });

  it("RBAC: view may read logs but not exec or port-forward; a node may not reach another node", async () => {
    const user = c.cli(["user", "create", "viewer", "--kubeconfig-out", join(c.dir, "kubeconfig-viewer")]);
    const token = /(kfu_[\w.]+)/.exec(user.stdout)?.[1];
    expect(token, show(user)).toBeTruthy();
    c.kubectl.ok(["create", "rolebinding", "viewer-view", "--clusterrole=view", "--user=viewer"]);
    await eventually(
      "view binding in effect",
      async () => (await api("/api/v1/namespaces/default/pods/talker/log?tailLines=1", { token })).status === 200,
    );
    const can = (verb: string, sub: string) => c.kubectl.run(["auth", "can-i", verb, `pods/${sub}`, "--as=viewer"]).stdout.trim();
    expect(can("get", "log")).toBe("yes");
    expect(can("create", "exec")).toBe("no");
    expect(can("create", "portforward")).toBe("no");
    expect(can("create", "attach")).toBe("no");
    // And the requests themselves: kubectl's WebSocket GET is authorized as a create.
    const viewer = c.kubectlFor(join(c.dir, "kubeconfig-viewer"));
    expect(viewer.ok(["logs", "talker", "--tail=1"])).toBe("tick\n");
    const denied = viewer.run(["exec", "talker", "--", "true"]);
    expect(denied.code, show(denied)).not.toBe(0);
    expect(denied.stderr).toContain('cannot create resource "pods/exec"');
    const pf = viewer.run(["port-forward", "pod/talker", "0:1"], { timeoutMs: 15_000 });
    expect(pf.stderr, show(pf)).toContain('cannot create resource "pods/portforward"');
    // The node's own credential: may open its own tunnel only, and no nodes/proxy at all.
    const cred = JSON.parse(readFileSync(join(c.dir, NODE, "credential.json"), "utf8")).token as string;
    const other = await api("/api/v1/nodes/other-node/tunnel", { token: cred });
    expect(other.status).toBe(403);
    const proxy = await api(`/api/v1/nodes/${NODE}/proxy/healthz`, { token: cred });
    expect(proxy.status).toBe(403);
    const own = await api(`/api/v1/nodes/${NODE}/tunnel`, { token: cred });
    expect(own.status).toBe(400); // allowed, but not a WebSocket upgrade
    expect(own.json.message).toBe("Upgrade request required");
    const admin = await api(`/api/v1/nodes/${NODE}/tunnel`);
    expect(admin.status).toBe(403); // not even an admin may pose as the node
  });

  it("kubectl exec: stdout, stderr and the exit code; stdin with -i; a terminal with -it", async () => {
    let r = c.kubectl.run(["exec", "talker", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r.code, show(r)).toBe(3);
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toContain("err\n");
    r = c.kubectl.run(["exec", "-i", "talker", "--", "cat"], { input: "hello through the tunnel\n" });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe("hello through the tunnel\n");
    // -t needs a terminal on kubectl's side: script(1) gives it one.
    const cmd = `${KUBECTL} --kubeconfig ${c.kubeconfig} exec -it talker -- sh`;
    const t = spawnSync("script", ["-qfec", cmd, "/dev/null"], {
      input: "echo sum=$((6*7)); tty; exit 5\n",
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(t.stdout, `${t.stdout}${t.stderr}`).toContain("sum=42");
    expect(t.stdout).toMatch(/\/dev\/pts\/\d+/); // the command ran on a terminal
    expect(t.status).toBe(5);
    r = c.kubectl.run(["exec", "talker", "-c", "nope", "--", "true"]);
    expect(r.stderr).toContain("container nope is not valid for pod talker");
  });

  it("kubectl attach: input to a container's stdin, its output back", async () => {
    await api("/api/v1/namespaces/default/pods", {
      method: "POST",
      body: pod("reader", "while read l; do echo got:$l; done", { stdin: true }),
    });
    await running("reader");
    const w = c.kubectl.spawnWithInput(["attach", "-i", "reader"]);
    try {
      w.child.stdin!.write("one\n");
      await w.waitFor(/got:one/, 20_000);
      w.child.stdin!.write("two\n");
      await w.waitFor(/got:two/, 10_000);
    } finally {
      w.stop();
    }
  });

  it("kubectl port-forward: HTTP and a 2 MB body through the tunnel, and a refused port reported", async () => {
    const port = 20000 + Math.floor(Math.random() * 9000);
    const server = `require("http").createServer((q, s) => s.end(q.url === "/big" ? "y".repeat(2e6) : "hi from the pod")).listen(${port})`;
    await api("/api/v1/namespaces/default/pods", {
      method: "POST",
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "web" },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: "web", image: "node", command: [process.execPath, "-e", server] }] },
      },
    });
    await running("web");
    const local = 30000 + Math.floor(Math.random() * 9000);
    const pf = c.kubectl.spawn(["port-forward", "pod/web", `${local}:${port}`]);
    try {
      await pf.waitFor(/Forwarding from 127\.0\.0\.1/, 20_000);
      const hi = await eventually(
        "an answer through port-forward",
        async () => {
          const res = await fetch(`http://127.0.0.1:${local}/`).catch(() => null);
          return res?.ok && (await res.text());
        },
        20_000,
      );
      expect(hi).toBe("hi from the pod");
      const big = await (await fetch(`http://127.0.0.1:${local}/big`)).text();
      expect(big.length).toBe(2e6);
    } finally {
      pf.stop();
    }
    // Nothing listens on the pod's port+1: kubectl reports the pod side's refusal.
    const pf2 = c.kubectl.spawn(["port-forward", "pod/web", `${local + 1}:${port + 1}`]);
    try {
      await pf2.waitFor(/Forwarding from 127\.0\.0\.1/, 20_000);
      await fetch(`http://127.0.0.1:${local + 1}/`).catch(() => null);
      await eventually("the refusal reported", () => /refused|error forwarding/i.test(pf2.stderr) && pf2.stderr, 15_000);
    } finally {
      pf2.stop();
    }
  });

  it("kubectl cp both ways and kubectl run -it --rm (exec's binary stdin/stdout; attach right after create)", () => {
    const src = join(c.dir, "cp-src.bin");
    const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff));
    writeFileSync(src, payload);
    const remote = `/tmp/kf-cp-${process.pid}.bin`;
    let r = c.kubectl.run(["cp", src, `talker:${remote}`]);
    expect(r.code, show(r)).toBe(0);
    const back = join(c.dir, "cp-back.bin");
    r = c.kubectl.run(["cp", `talker:${remote}`, back]);
    expect(r.code, show(r)).toBe(0);
    expect(readFileSync(back).equals(payload)).toBe(true);
    c.kubectl.run(["exec", "talker", "--", "rm", "-f", remote]);
    const cmd = `${KUBECTL} --kubeconfig ${c.kubeconfig} run -it --rm once --image=busybox --restart=Never -- sh`;
    const t = spawnSync("script", ["-qfec", cmd, "/dev/null"], {
      input: "echo inside-$((2+3))\nexit\n",
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(t.stdout, `${t.stdout}${t.stderr}`).toContain("inside-5");
    expect(t.stdout).toContain('pod "once" deleted');
    expect(t.status).toBe(0);
  });

  it("50 concurrent streams with one stalled reader: the others flow, buffers stay bounded, the stall ends cleanly", async () => {
    const LOG_BYTES = 9_500_000; // under the agent's 10 MiB rotation
    await api("/api/v1/namespaces/default/pods", {
      method: "POST",
      body: pod("bulk", `head -c ${LOG_BYTES} /dev/zero | tr '\\0' x | fold -w 99; exec sleep 3600`),
    });
    await running("bulk");
    await eventually("the whole log written", async () => {
      const r = await api("/api/v1/namespaces/default/pods/bulk/log?tailLines=1");
      // fold leaves the last, partial line without a newline.
      return r.status === 200 && r.text === "x".repeat(LOG_BYTES % 99 || 99);
    });
    const stats = async () => (await api(`/api/v1/nodes/${NODE}/proxy/stats/tunnel`)).json;
    const rssBefore = (await stats()).memory.rss;

    // The stalled reader: takes one chunk, then stops reading.
    const slowRes = await undiciFetch(`${c.cp.url}/api/v1/namespaces/default/pods/bulk/log`, {
      dispatcher,
      headers: { authorization: `Bearer ${c.cp.token}` },
    });
    const slow = slowRes.body!.getReader();
    const first = await slow.read();
    expect(first.value!.length).toBeGreaterThan(0);

    // 49 others read 1 MB each, all at once.
    const t0 = Date.now();
    const sizes = await Promise.all(
      Array.from({ length: 49 }, async () => {
        const r = await undiciFetch(`${c.cp.url}/api/v1/namespaces/default/pods/bulk/log?limitBytes=1000000`, {
          dispatcher,
          headers: { authorization: `Bearer ${c.cp.token}` },
        });
        return (await r.arrayBuffer()).byteLength;
      }),
    );
    const took = Date.now() - t0;
    expect(sizes).toEqual(Array(49).fill(1_000_000));
    expect(took).toBeLessThan(60_000);

    // The stalled stream stopped at the agent: what it sent stays put, well below the log
    // (what it did send is one window plus the sockets' buffers between here and workerd).
    const logStreams = async () => ((await stats()).tunnel.perStream as any[]).filter((p) => p.kind === "log");
    const a = await logStreams();
    expect(a).toHaveLength(1);
    await sleep(1000);
    const b = await logStreams();
    expect(b[0].bytesOut).toBe(a[0].bytesOut);
    expect(b[0].window).toBeLessThanOrEqual(0);
    expect(b[0].bytesOut).toBeLessThan(LOG_BYTES * 0.75);
    const rssAfter = (await stats()).memory.rss;
    expect(rssAfter - rssBefore).toBeLessThan(64 * 1024 * 1024);

    // The client goes away: the stream is torn down on the agent too.
    await slow.cancel();
    await eventually("the stalled stream closed on the agent", async () => (await logStreams()).length === 0, 15_000);
  });

  it("the agent reconnects after the control plane restarts, and the tunnel works again", async () => {
    const before = (await api(`/api/v1/nodes/${NODE}/proxy/stats/tunnel`)).json.tunnel.connects;
    await c.restartControlPlane();
    const log = await eventually(
      "logs through the new tunnel",
      () => {
        const r = c.kubectl.run(["logs", "talker", "--tail=1"]);
        return r.code === 0 && r.stdout;
      },
      60_000,
      500,
    );
    expect(log).toBe("tick\n");
    const after = (await api(`/api/v1/nodes/${NODE}/proxy/stats/tunnel`)).json.tunnel.connects;
    expect(after).toBe(before + 1);
  });

  // Last: it leaves the agent without a credential.
  it("revoking the node credential ends the open tunnel, and the agent cannot come back", async () => {
    expect(c.kubectl.ok(["get", "--raw", `/api/v1/nodes/${NODE}/proxy/healthz`])).toBe("ok");
    c.kubectl.ok(["delete", "secret", "-n", "kube-system", `node-credential-${NODE}`]);
    const down = await eventually(
      "the tunnel closed",
      async () => {
        const r = await api(`/api/v1/nodes/${NODE}/proxy/healthz`);
        return r.status === 503 && r.json;
      },
      20_000,
    );
    expect(down.message).toContain("is not connected");
    await sleep(3000); // reconnect attempts are refused (401), so it stays down
    expect((await api(`/api/v1/nodes/${NODE}/proxy/healthz`)).status).toBe(503);
    expect(c.agentLog.join("")).toMatch(/tunnel down \(closed 1008 node credential revoked\)/);
  });
});
