// Stream kinds "http" and "websocket": the edge load balancer (workers/lb.ts) reaching
// a backend on this node through the node tunnel.
//
//   http       { ip, port, method, path, headers: [k, v][] }: the request body arrives as
//              the stream's chunks; the answer is reply({ code, headers }) then the
//              response body as chunks of at most MAX_CHUNK (each write awaited, so a slow
//              client slows the backend read), then end(). A backend that cannot be
//              reached (refused, timed out) gets reply 502 ServiceUnavailable instead; an
//              error after the reply resets the stream.
//   websocket  { ip, port, path, headers: [k, v][], protocols: string[] }: a WebSocket
//              client (the `ws` package) to ws://ip:port/path; reply({ code: 101,
//              protocol }) once open, then each message both ways is one chunk
//              [0 = binary | 1 = text, ...data]. The opener's END closes the backend
//              socket (1000); the backend's close ends the stream.

import http from "node:http";
import net from "node:net";
import WebSocket from "ws";
import { MAX_CHUNK, type TunnelStream } from "../../workers/shared/tunnel.ts";
import type { StreamHandler } from "./types.ts";

const DIAL_TIMEOUT_MS = 5000;
/** Response headers that describe this hop, not the message (the tunnel re-frames the body). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "trailer", "te"]);

interface Target {
  ip: string;
  port: number;
  path: string;
  headers: [string, string][];
}

function refuse(stream: TunnelStream, message: string, code = 502): void {
  stream.reply({ code, reason: code === 400 ? "BadRequest" : "ServiceUnavailable", message });
  stream.end();
}

/** The header's target, or a message saying what is wrong with it. */
function target(h: Record<string, unknown>): Target | string {
  const { ip, port, path } = h;
  if (typeof ip !== "string" || net.isIP(ip) === 0) return `invalid ip ${JSON.stringify(ip)}`;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) return `invalid port ${JSON.stringify(port)}`;
  if (typeof path !== "string" || !path.startsWith("/")) return `invalid path ${JSON.stringify(path)}`;
  const headers = Array.isArray(h.headers)
    ? h.headers.filter((kv): kv is [string, string] => Array.isArray(kv) && typeof kv[0] === "string" && typeof kv[1] === "string")
    : [];
  return { ip, port, path, headers };
}

/** [k, v] pairs as Node's outgoing headers (repeated names become arrays). */
function headerObject(pairs: [string, string][]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of pairs) {
    const key = k.toLowerCase();
    if (key === "host") continue;
    const cur = out[key];
    if (cur === undefined) out[key] = v;
    else out[key] = Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}

function hostPort(ip: string, port: number): string {
  return net.isIPv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Connections to pods are kept alive between load-balanced requests (as a reverse proxy does). */
const podAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 16, timeout: 60_000 });

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export const httpHandler: StreamHandler = async (stream) => {
  const t = target(stream.header);
  const method = stream.header.method;
  if (typeof t === "string" || typeof method !== "string" || !/^[A-Za-z]+$/.test(method)) {
    refuse(stream, typeof t === "string" ? t : `invalid method ${JSON.stringify(method)}`, 400);
    return;
  }
  const req = http.request({ host: t.ip, port: t.port, method, path: t.path, headers: headerObject(t.headers), agent: podAgent });
  const dial = setTimeout(() => req.destroy(new Error(`dial ${hostPort(t.ip, t.port)}: timed out`)), DIAL_TIMEOUT_MS);
  req.once("socket", (s) => {
    if (!s.connecting) clearTimeout(dial);
    else s.once("connect", () => clearTimeout(dial));
  });

  let replied = false;
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once("response", resolve);
    req.once("error", reject);
  });

  // The request body, from the stream's chunks, with the socket's backpressure.
  const body = (async () => {
    try {
      for await (const chunk of stream) {
        if (req.destroyed) return;
        if (!req.write(chunk)) await new Promise<void>((r) => req.once("drain", r).once("close", r));
      }
      req.end();
    } catch (e) {
      req.destroy(e instanceof Error ? e : new Error(String(e))); // the opener reset the stream
    }
  })();

  try {
    let res: http.IncomingMessage;
    try {
      res = await response;
    } catch (e) {
      clearTimeout(dial);
      refuse(stream, `${method} http://${hostPort(t.ip, t.port)}${t.path}: ${message(e)}`);
      return;
    }
    clearTimeout(dial);
    const headers: [string, string][] = [];
    for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
      if (!HOP_BY_HOP.has(res.rawHeaders[i].toLowerCase())) headers.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
    }
    stream.reply({ code: res.statusCode ?? 502, headers });
    replied = true;
    for await (const data of res) {
      const buf = data as Buffer;
      for (let off = 0; off < buf.length; off += MAX_CHUNK) {
        await stream.write(new Uint8Array(buf.buffer, buf.byteOffset + off, Math.min(MAX_CHUNK, buf.length - off)));
      }
    }
    stream.end();
  } catch (e) {
    req.destroy();
    if (!replied) refuse(stream, message(e));
    else stream.reset(message(e));
  } finally {
    await body;
  }
};

export const websocketHandler: StreamHandler = async (stream) => {
  const t = target(stream.header);
  if (typeof t === "string") {
    refuse(stream, t, 400);
    return;
  }
  const protocols = Array.isArray(stream.header.protocols) ? stream.header.protocols.filter((p): p is string => typeof p === "string") : [];
  const url = `ws://${hostPort(t.ip, t.port)}${t.path}`;
  const ws = new WebSocket(url, protocols, {
    headers: headerObject(t.headers),
    handshakeTimeout: DIAL_TIMEOUT_MS,
    perMessageDeflate: false,
  });

  // Messages can arrive in the same read as the handshake's answer, before "open" is
  // seen here: the listener is attached at once and its writes wait for the reply.
  let replied!: () => void;
  let writing = new Promise<void>((r) => {
    replied = r;
  });
  // Backend → opener: one chunk a message; the socket is paused while a write waits for credit.
  ws.on("message", (data, isBinary) => {
    const bufs = Array.isArray(data) ? data : [Buffer.from(data as ArrayBuffer | Buffer)];
    const len = bufs.reduce((n, b) => n + b.length, 0);
    const chunk = new Uint8Array(1 + len);
    chunk[0] = isBinary ? 0 : 1;
    let off = 1;
    for (const b of bufs) {
      chunk.set(b, off);
      off += b.length;
    }
    ws.pause();
    writing = writing
      .then(() => stream.write(chunk))
      .then(
        () => ws.resume(),
        () => ws.terminate(),
      );
  });

  const opened = await new Promise<string | null>((resolve) => {
    ws.once("open", () => resolve(null));
    ws.once("unexpected-response", (_req, res) => {
      resolve(`the backend answered ${res.statusCode} to the WebSocket upgrade`);
      res.resume();
      ws.terminate();
    });
    ws.once("error", (e) => resolve(message(e)));
  });
  if (opened !== null) {
    refuse(stream, `${url}: ${opened}`);
    return;
  }
  stream.reply({ code: 101, protocol: ws.protocol });
  replied();

  const closed = new Promise<void>((resolve) => {
    ws.once("close", () => {
      void writing.then(() => {
        stream.end();
        resolve();
      });
    });
    ws.on("error", () => {}); // 'close' follows
  });

  // Opener → backend, each send awaited (the socket's backpressure).
  try {
    for await (const chunk of stream) {
      if (chunk.length === 0 || ws.readyState !== WebSocket.OPEN) continue;
      const data = Buffer.from(chunk.buffer, chunk.byteOffset + 1, chunk.length - 1);
      await new Promise<void>((resolve) =>
        ws.send(chunk[0] === 1 ? data.toString("utf8") : data, { binary: chunk[0] !== 1 }, () => resolve()),
      );
    }
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
  } catch {
    ws.terminate(); // the opener reset the stream
  }
  await closed;
};
