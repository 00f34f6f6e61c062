// The agent's "http" and "websocket" stream handlers (the edge load balancer's last
// hop), through two real multiplexers wired back to back in memory (the control plane's
// side opens, the agent's side runs the handler) against real servers on 127.0.0.1.

import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { httpHandler, websocketHandler } from "../../node-agent/streams/http.ts";
import type { StreamDeps } from "../../node-agent/streams/types.ts";
import { MAX_CHUNK, Mux, type StreamHeader, type TunnelStream } from "../../workers/shared/tunnel.ts";

const deps = { nodeName: "n1", log: () => {} } as unknown as StreamDeps;

/** A control-plane mux whose peer agent mux hands every stream to the handlers under test. */
function tunnel(): Mux {
  let agent: Mux | undefined;
  const cp: Mux = new Mux({ side: "control-plane", send: (f) => queueMicrotask(() => agent?.receive(f)) });
  agent = new Mux({
    side: "agent",
    send: (f) => queueMicrotask(() => cp.receive(f)),
    onOpen: (s) => void (s.header.kind === "http" ? httpHandler : websocketHandler)(s, deps),
  });
  return cp;
}

async function readAll(s: TunnelStream): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of s) out.push(c);
  return out;
}

const text = (chunks: Uint8Array[]) => Buffer.concat(chunks).toString("utf8");

let server: http.Server;
let port: number;
let seen: { method?: string; url?: string; headers?: http.IncomingHttpHeaders; body?: string } = {};
let wss: WebSocketServer;
let wsPort: number;
let closedPort: number;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      seen = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() };
      if (req.url?.startsWith("/big")) {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        res.end(Buffer.alloc(300 * 1024, 7));
        return;
      }
      res.writeHead(req.method === "POST" ? 201 : 200, { "content-type": "text/plain", "x-backend": "yes" });
      res.end(req.method === "POST" ? `echo:${seen.body}` : "hello from the backend");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;

  wss = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: (ps) => (ps.has("chat.v2") ? "chat.v2" : false) });
  wss.on("connection", (ws, req) => {
    ws.send(`welcome ${req.url} ${req.headers["x-forwarded-for"] ?? ""}`);
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((r) => wss.once("listening", r));
  wsPort = (wss.address() as AddressInfo).port;

  // A port nothing listens on: bind, note it, close.
  const tmp = http.createServer();
  await new Promise<void>((r) => tmp.listen(0, "127.0.0.1", r));
  closedPort = (tmp.address() as AddressInfo).port;
  await new Promise<void>((r) => tmp.close(() => r()));
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => wss.close(() => r()));
});

function httpHeader(over: Partial<StreamHeader> = {}): StreamHeader {
  return { kind: "http", ip: "127.0.0.1", port, method: "GET", path: "/", headers: [], ...over };
}

describe("http stream handler", () => {
  it("forwards method, path with query and headers, and returns status, headers and body", async () => {
    const s = tunnel().open(
      httpHeader({
        path: "/a/b?x=1",
        headers: [
          ["x-forwarded-for", "203.0.113.9"],
          ["accept", "text/plain"],
          ["host", "evil.example"],
        ],
      }),
    );
    s.end();
    const reply = await s.waitReply();
    expect(reply.code).toBe(200);
    expect(reply.headers).toContainEqual(["x-backend", "yes"]);
    expect(reply.headers?.some(([k]) => k.toLowerCase() === "transfer-encoding" || k.toLowerCase() === "connection")).toBe(false);
    expect(text(await readAll(s))).toBe("hello from the backend");
    expect(seen.method).toBe("GET");
    expect(seen.url).toBe("/a/b?x=1");
    expect(seen.headers?.["x-forwarded-for"]).toBe("203.0.113.9");
    expect(seen.headers?.host).toBe(`127.0.0.1:${port}`);
  });

  it("sends the stream's chunks as the request body", async () => {
    const s = tunnel().open(httpHeader({ method: "POST", path: "/echo", headers: [["content-type", "text/plain"]] }));
    await s.write(new TextEncoder().encode("part one, "));
    await s.write(new TextEncoder().encode("part two"));
    s.end();
    expect((await s.waitReply()).code).toBe(201);
    expect(text(await readAll(s))).toBe("echo:part one, part two");
  });

  it("streams a body larger than the window in chunks of at most 64 KiB", async () => {
    const s = tunnel().open(httpHeader({ path: "/big" }));
    s.end();
    expect((await s.waitReply()).code).toBe(200);
    const chunks = await readAll(s);
    expect(chunks.reduce((n, c) => n + c.length, 0)).toBe(300 * 1024);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(MAX_CHUNK);
    expect(chunks.every((c) => c.every((b) => b === 7))).toBe(true);
  });

  it("answers 502 ServiceUnavailable when the backend refuses the connection", async () => {
    const s = tunnel().open(httpHeader({ port: closedPort }));
    s.end();
    const reply = await s.waitReply();
    expect(reply).toMatchObject({ code: 502, reason: "ServiceUnavailable" });
    expect(reply.message).toMatch(/ECONNREFUSED/);
  });

  it("answers 400 for a header without a valid ip", async () => {
    const s = tunnel().open(httpHeader({ ip: "not-an-ip" }));
    s.end();
    expect(await s.waitReply()).toMatchObject({ code: 400, reason: "BadRequest" });
  });
});

describe("websocket stream handler", () => {
  const frame = (type: 0 | 1, data: string | Uint8Array) => {
    const d = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const out = new Uint8Array(1 + d.length);
    out[0] = type;
    out.set(d, 1);
    return out;
  };

  it("bridges text and binary messages with the type byte and reports the chosen subprotocol", async () => {
    const s = tunnel().open({
      kind: "websocket",
      ip: "127.0.0.1",
      port: wsPort,
      path: "/chat?room=1",
      headers: [["x-forwarded-for", "198.51.100.7"]],
      protocols: ["chat.v1", "chat.v2"],
    });
    expect(await s.waitReply()).toMatchObject({ code: 101, protocol: "chat.v2" });
    const welcome = await s.read();
    expect(welcome?.[0]).toBe(1);
    expect(Buffer.from(welcome!.subarray(1)).toString()).toBe("welcome /chat?room=1 198.51.100.7");

    await s.write(frame(1, "ping"));
    const t = await s.read();
    expect([t?.[0], Buffer.from(t!.subarray(1)).toString()]).toEqual([1, "ping"]);

    await s.write(frame(0, new Uint8Array([0, 1, 2, 255])));
    const b = await s.read();
    expect([...b!]).toEqual([0, 0, 1, 2, 255]);

    s.end(); // the opener is done: the backend socket is closed and the stream ends
    expect(await s.read()).toBeNull();
  });

  it("answers 502 when the backend does not upgrade", async () => {
    const s = tunnel().open({ kind: "websocket", ip: "127.0.0.1", port, path: "/", headers: [], protocols: [] });
    const reply = await s.waitReply();
    expect(reply).toMatchObject({ code: 502, reason: "ServiceUnavailable" });
    expect(reply.message).toMatch(/200/);
  });
});
