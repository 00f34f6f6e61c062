// The port-forward handler against the real kubectl (1.32, SPDY tunnelled over WebSocket).
// A minimal API server stands in for the control plane only where kubectl needs one
// (discovery, GET of the pod, the WebSocket upgrade of pods/portforward) and bridges the
// WebSocket through a real Mux pair to the agent's handler, one message one chunk, as
// the control plane does; the pod is an HTTP server on 127.0.0.1.

import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { portForwardHandler } from "../../node-agent/streams/portforward.ts";
import type { StreamDeps } from "../../node-agent/streams/types.ts";
import { Mux } from "../../workers/shared/tunnel.ts";

const KUBECTL = "/usr/bin/kubectl";
const PROTOCOLS = ["SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io", "portforward.k8s.io"];
const big = randomBytes(5 * 1024 * 1024);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const listen = (s: http.Server) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as net.AddressInfo).port)));

function get(port: number, path: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: body ? "POST" : "GET", agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe.skipIf(!existsSync(KUBECTL))("kubectl port-forward against the agent's handler", () => {
  const dir = mkdtempSync(join(tmpdir(), "kf-portforward-"));
  const logs: string[] = [];
  const handlers: Promise<void>[] = [];
  const podSockets = new Set<net.Socket>();
  const kubectls: ChildProcess[] = [];
  let apiPort = 0;
  let podPort = 0;
  let api: http.Server;
  let pod: http.Server;

  beforeAll(async () => {
    pod = http.createServer((req, res) => {
      if (req.url === "/big") return void res.end(big);
      const h = createHash("sha256");
      req.on("data", (c) => h.update(c));
      req.on("end", () => res.end(`${req.method} ${req.url} ${h.digest("hex")}`));
    });
    pod.on("connection", (s) => {
      podSockets.add(s);
      s.on("close", () => podSockets.delete(s));
    });
    podPort = await listen(pod);

    const deps = { log: (m: string) => logs.push(m), podIP: () => undefined } as Partial<StreamDeps> as StreamDeps;
    const json = (res: http.ServerResponse, v: unknown) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(v));
    };
    api = http.createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      if (path === "/api") return json(res, { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] });
      if (path === "/apis") return json(res, { kind: "APIGroupList", apiVersion: "v1", groups: [] });
      if (path === "/api/v1") {
        return json(res, {
          kind: "APIResourceList",
          groupVersion: "v1",
          resources: [{ name: "pods", singularName: "pod", namespaced: true, kind: "Pod", verbs: ["get"], shortNames: ["po"] }],
        });
      }
      if (path === "/api/v1/namespaces/default/pods/web") {
        return json(res, {
          kind: "Pod",
          apiVersion: "v1",
          metadata: { name: "web", namespace: "default", uid: "u1" },
          spec: { containers: [{ name: "c", image: "i" }] },
          status: { phase: "Running", podIP: "127.0.0.1" },
        });
      }
      res.statusCode = 404;
      json(res, { kind: "Status", apiVersion: "v1", status: "Failure", code: 404, reason: "NotFound" });
    });
    const wss = new WebSocketServer({ noServer: true });
    api.on("upgrade", (req, socket, head) => {
      // ws refuses "SPDY/3.1+portforward.k8s.io" ("/" is no token character), so the
      // subprotocol is negotiated here: the first of ours the client offers.
      const offered = String(req.headers["sec-websocket-protocol"] ?? "")
        .split(",")
        .map((p) => p.trim());
      const protocol = PROTOCOLS.find((p) => offered.includes(p));
      if (!protocol) return void socket.destroy();
      delete req.headers["sec-websocket-protocol"];
      wss.once("headers", (h) => h.push(`Sec-WebSocket-Protocol: ${protocol}`));
      wss.handleUpgrade(req, socket, head, (ws) => {
        const cp: Mux = new Mux({ side: "control-plane", send: (f) => queueMicrotask(() => agent.receive(f)) });
        const agent: Mux = new Mux({
          side: "agent",
          send: (f) => queueMicrotask(() => cp.receive(f)),
          onOpen: (s) => handlers.push(portForwardHandler(s, deps)),
        });
        const stream = cp.open({
          kind: "portforward",
          namespace: "default",
          pod: "web",
          uid: "u1",
          podIP: "127.0.0.1",
          protocol,
          ports: [],
        });
        // Client to agent: stop reading the WebSocket while the stream has no credit.
        ws.on("message", (m: Buffer) => {
          ws.pause();
          stream.write(new Uint8Array(m)).then(
            () => ws.resume(),
            () => ws.terminate(),
          );
        });
        ws.on("close", () => stream.end());
        void (async () => {
          try {
            for await (const c of stream) await new Promise<void>((r) => ws.send(c, { binary: true }, () => r()));
          } catch {}
          ws.close(1000);
        })();
      });
    });
    apiPort = await listen(api);
  });

  afterAll(() => {
    for (const k of kubectls) k.kill("SIGKILL");
    api?.close();
    pod?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts `kubectl port-forward pod/web :REMOTE`; resolves with the local port it listens on. */
  async function portForward(remote: number): Promise<{ local: number; proc: ChildProcess; output: () => string }> {
    const proc = spawn(
      KUBECTL,
      ["--server", `http://127.0.0.1:${apiPort}`, "--cache-dir", join(dir, "cache"), "port-forward", "pod/web", `:${remote}`],
      { env: { ...process.env, KUBECONFIG: join(dir, "none"), HOME: dir }, stdio: ["ignore", "pipe", "pipe"] },
    );
    kubectls.push(proc);
    let out = "";
    proc.stdout?.on("data", (c) => {
      out += c;
    });
    proc.stderr?.on("data", (c) => {
      out += c;
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) return { local: Number(m[1]), proc, output: () => out };
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`kubectl port-forward did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("forwards requests, concurrent ones and 5 MB each way, and cleans up when kubectl exits", { timeout: 60_000 }, async () => {
    const { local, proc } = await portForward(podPort);
    const first = await get(local, "/hello");
    expect(first.body.toString()).toBe(`GET /hello ${sha(new Uint8Array(0))}`);

    const many = await Promise.all([1, 2, 3, 4].map((i) => get(local, `/c${i}`)));
    expect(many.map((r) => r.body.toString().split(" ")[1])).toEqual(["/c1", "/c2", "/c3", "/c4"]);

    const down = await get(local, "/big");
    expect(sha(down.body)).toBe(sha(big));
    const up = await get(local, "/up", big);
    expect(up.body.toString()).toBe(`POST /up ${sha(big)}`);

    const before = handlers.length;
    proc.kill("SIGINT");
    await new Promise((r) => proc.once("exit", r));
    await Promise.all(handlers.slice(0, before));
    const deadline = Date.now() + 5_000;
    while (podSockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(podSockets.size).toBe(0);
  });

  it("reports a refused port as kubectl's forwarding error", { timeout: 60_000 }, async () => {
    const closed = http.createServer();
    const refused = await listen(closed);
    await new Promise((r) => closed.close(r));
    const { local, proc, output } = await portForward(refused);
    await expect(get(local, "/x")).rejects.toThrow();
    // kubectl 1.32 logs the error stream's text and gives up the session.
    await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once("exit", r)));
    expect(output()).toMatch(new RegExp(`error forwarding port ${refused} to pod default/web, uid u1: .*ECONNREFUSED`));
    expect(output()).toMatch(/lost connection to pod/);
  });
});
