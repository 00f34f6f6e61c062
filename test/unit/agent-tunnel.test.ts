// The agent's tunnel client (node-agent/tunnel.ts) against a plain WebSocket server on
// loopback standing in for the NodeTunnelDO's socket: it authenticates, serves streams
// the server opens, keeps a healthy connection up, and drops and redials a connection
// whose peer stopped answering its keep-alive pings.

import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type WebSocket, WebSocketServer } from "ws";
import type { StreamDeps } from "../../node-agent/streams/types.ts";
import { TunnelClient } from "../../node-agent/tunnel.ts";
import { Mux } from "../../workers/shared/tunnel.ts";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

interface Conn {
  ws: WebSocket;
  path: string;
  auth: string;
  mux: Mux;
}

async function server(opts: { answerPings: (n: number) => boolean }): Promise<{ url: string; conns: Conn[] }> {
  const conns: Conn[] = [];
  const srv = http.createServer();
  const wss = new WebSocketServer({ server: srv });
  wss.on("connection", (ws, req) => {
    const n = conns.length;
    const mux = new Mux({ side: "control-plane", send: (f) => ws.send(f) });
    conns.push({ ws, path: req.url ?? "", auth: req.headers.authorization ?? "", mux });
    ws.on("message", (data: Buffer, binary) => {
      if (!binary) {
        if (opts.answerPings(n) && data.toString() === "ping") ws.send("pong");
        return;
      }
      mux.receive(new Uint8Array(data));
    });
    ws.on("close", () => mux.close("closed"));
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  closers.push(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    srv.close();
  });
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, conns };
}

function client(url: string, pingIntervalMs: number): TunnelClient {
  const t = new TunnelClient({
    server: url,
    nodeName: "n1",
    token: "kfn_n1.secret",
    pingIntervalMs,
    backoff: () => 20,
    log: () => {},
    deps: {} as StreamDeps,
    handlers: {
      echo: async (s) => {
        s.reply({ code: 200 });
        for await (const c of s) await s.write(c);
        s.end();
      },
    },
  });
  void t.run();
  closers.push(() => t.stop());
  return t;
}

const waitFor = async (what: string, cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe("the agent's tunnel client", () => {
  it("dials its node's tunnel with its credential and serves the streams the control plane opens", async () => {
    const { url, conns } = await server({ answerPings: () => true });
    const t = client(url, 1000);
    await waitFor("connected", () => t.connected);
    expect(conns[0].path).toBe("/api/v1/nodes/n1/tunnel");
    expect(conns[0].auth).toBe("Bearer kfn_n1.secret");
    const s = conns[0].mux.open({ kind: "echo" });
    expect((await s.waitReply()).code).toBe(200);
    await s.write(new TextEncoder().encode("round trip"));
    s.end();
    let got = "";
    for await (const c of s) got += new TextDecoder().decode(c);
    expect(got).toBe("round trip");
    // A kind it does not serve is refused, not dropped.
    const other = conns[0].mux.open({ kind: "nope" });
    expect((await other.waitReply()).code).toBe(501);
  });

  it("keeps a connection whose peer answers its pings, and redials one whose peer went silent", async () => {
    // The first connection never answers; the second does.
    const srv = await server({ answerPings: (n) => n > 0 });
    const t = client(srv.url, 50);
    await waitFor("a second connection after the silent one", () => srv.conns.length >= 2);
    await waitFor("connected again", () => t.connected);
    await waitFor("the silent connection closed", () => srv.conns[0].ws.readyState === srv.conns[0].ws.CLOSED);
    // The answered connection stays up for many ping periods.
    await new Promise((r) => setTimeout(r, 600));
    expect(srv.conns.length).toBe(2);
    expect(t.stats().connects).toBe(2);
  });

  it("reconnects after the server closes the connection, and says the tunnel is down meanwhile", async () => {
    const { url, conns } = await server({ answerPings: () => true });
    const t = client(url, 1000);
    await waitFor("connected", () => t.connected);
    conns[0].ws.close(1012, "restarting");
    await waitFor("a new connection", () => conns.length === 2 && t.connected);
    expect(t.open({ kind: "echo" })).toBeDefined();
  });
});
