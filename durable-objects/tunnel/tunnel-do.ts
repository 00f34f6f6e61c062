// NodeTunnelDO: one per node (idFromName(node name)). The node's agent keeps one
// outbound WebSocket here (it only ever dials out, so NAT does not matter); the API
// server asks the node for logs, exec, attach, port-forward, proxied HTTP and service
// traffic by opening multiplexed streams on it (workers/shared/tunnel.ts).
//
// The agent's socket is accepted with the hibernation API: with no stream open the
// object may be evicted and the socket stays up; its keep-alive pings are answered by
// the runtime without waking the object. Open streams belong to requests in flight, so
// the object stays in memory while any exists. Client WebSockets (kubectl exec and
// port-forward, load-balanced WebSockets) are accepted without hibernation for the same
// reason.
//
// Three kinds of request reach it, all from the Worker (durable-objects/tunnel/client.ts):
//  - the agent's WebSocket upgrade (header x-kubeflare-agent), authenticated by the
//    Worker as system:node:<this node>;
//  - a stream request (header x-kubeflare-stream, JSON {header, protocols}): a WebSocket
//    upgrade is bridged message by message to a stream, anything else gets the agent's
//    reply as an HTTP response whose body is pulled from the stream (so a slow reader
//    stops its stream, and only its stream, through flow control);
//  - a stream the agent opens itself: "connect", a service backend on another node,
//    which is checked against the Service's Endpoints and relayed to that node's tunnel.

import { DurableObject } from "cloudflare:workers";
import { type Env, intVar } from "../../workers/env.ts";
import { lookupResource, objectKey } from "../../workers/shared/resources.ts";
import { MAX_CHUNK, Mux, type StreamHeader, type StreamReply, type TunnelStream } from "../../workers/shared/tunnel.ts";
import { RemoteStore } from "../store/remote.ts";
import { AGENT_HEADER, CREDENTIAL_HEADER, NODE_UNAVAILABLE_HEADER, STREAM_HEADER, STREAM_ID_HEADER, tunnelFor } from "./client.ts";

/** What the tunnel knows of its node's machine (the edge cloud provider's instance view). */
export interface TunnelInfo {
  node: string;
  /** An agent WebSocket is open now. */
  connected: boolean;
  /** When an agent last connected / last spoke (ISO), if ever. */
  connectedAt?: string;
  lastSeen?: string;
  /** The agent's public address as the edge saw it (CF-Connecting-IP), its colo and country. */
  remoteAddress?: string;
  colo?: string;
  country?: string;
  /** Open streams. */
  streams: number;
}

const AGENT_TAG = "agent";
const ENDPOINTS = lookupResource("", "v1", "endpoints")!;
const SECRETS = lookupResource("", "v1", "secrets")!;
/** How long an opened stream may wait for the agent's answer. */
const REPLY_TIMEOUT_MS = 30_000;
/** Client WebSocket input queued for a stream without credit before the client is cut off. */
const MAX_CLIENT_BACKLOG = 8 * 1024 * 1024;
/** lastSeen is written to storage at most this often. */
const PERSIST_SEEN_MS = 60_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

function status(code: number, reason: string, message: string): Response {
  return new Response(JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code }), {
    status: code,
    headers: { "content-type": "application/json" },
  });
}

function replyStatus(r: StreamReply): Response {
  return status(r.code >= 400 ? r.code : 502, r.reason ?? "InternalError", r.message ?? `the node answered ${r.code}`);
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(onTimeout()), ms)))]).finally(() => clearTimeout(timer));
}

/** Splits a chunk into pieces of at most MAX_CHUNK (byte streams only; messages stay whole). */
function* pieces(b: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < b.length; i += MAX_CHUNK) yield b.subarray(i, Math.min(b.length, i + MAX_CHUNK));
}

/** A stream's chunks as a pull-based body: nothing is read (no credit granted) until the client reads. */
export function streamBody(s: TunnelStream): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctrl) {
        try {
          const c = await s.read();
          if (c === null) ctrl.close();
          else ctrl.enqueue(c);
        } catch (e) {
          ctrl.error(e);
        }
      },
      cancel() {
        s.reset("client went away");
      },
    },
    { highWaterMark: 0 },
  );
}

export class NodeTunnelDO extends DurableObject<Env> {
  private mux: Mux | null = null;
  private agent: WebSocket | null = null;
  private node = "";
  private lastSeenMs = 0;
  private persistedSeenMs = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    // Back from hibernation: the agent's socket survived; a fresh multiplexer takes it.
    const ws = this.ctx.getWebSockets(AGENT_TAG)[0];
    if (ws) this.adopt(ws);
  }

  // ---------------------------------------------------------------- agent side

  private adopt(ws: WebSocket): void {
    this.agent = ws;
    const attachment = (ws.deserializeAttachment() ?? {}) as { node?: string };
    if (attachment.node) this.node = attachment.node;
    this.mux = new Mux({
      side: "control-plane",
      // A random odd start: never reuse an id the agent may hold from before hibernation.
      firstId: (crypto.getRandomValues(new Uint32Array(1))[0] | 1) >>> 0,
      send: (frame) => ws.send(frame),
      onOpen: (s) => this.onAgentStream(s),
    });
  }

  private async connectAgent(request: Request, node: string): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return status(400, "BadRequest", "expected a WebSocket upgrade");
    // A new connection from the node supersedes the old one (the agent restarted or
    // its network changed); the old one's streams fail and their clients retry.
    for (const old of this.ctx.getWebSockets(AGENT_TAG)) {
      try {
        old.close(1012, "superseded by a new connection");
      } catch {}
    }
    this.mux?.close("agent reconnected");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.node = node;
    server.serializeAttachment({ node });
    this.ctx.acceptWebSocket(server, [AGENT_TAG]);
    this.adopt(server);
    const cf = (request as unknown as { cf?: { colo?: string; country?: string } }).cf;
    const now = Date.now();
    const credentialRevision = Number(request.headers.get(CREDENTIAL_HEADER) ?? 0);
    this.lastSeenMs = now;
    this.persistedSeenMs = now;
    await this.ctx.storage.put({
      node,
      connectedAt: new Date(now).toISOString(),
      lastSeen: new Date(now).toISOString(),
      remoteAddress: request.headers.get("cf-connecting-ip") ?? "",
      colo: cf?.colo ?? "",
      country: cf?.country ?? "",
      credentialRevision,
    });
    await this.ctx.storage.setAlarm(now + this.credentialCheckMs());
    return new Response(null, { status: 101, webSocket: client });
  }

  private seen(): void {
    const now = Date.now();
    this.lastSeenMs = now;
    if (now - this.persistedSeenMs >= PERSIST_SEEN_MS) {
      this.persistedSeenMs = now;
      this.ctx.waitUntil(this.ctx.storage.put("lastSeen", new Date(now).toISOString()));
    }
  }

  private credentialCheckMs(): number {
    return Math.max(1, intVar(this.env.TUNNEL_CREDENTIAL_CHECK_SECONDS, 120)) * 1000;
  }

  /**
   * While an agent is connected, its node credential is checked every
   * TUNNEL_CREDENTIAL_CHECK_SECONDS: a revoked (deleted) or rotated credential ends the
   * connection, which the request that opened it authorized only once.
   */
  override async alarm(): Promise<void> {
    const sockets = this.ctx.getWebSockets(AGENT_TAG);
    if (sockets.length === 0) return;
    const node = this.node || ((await this.ctx.storage.get<string>("node")) ?? "");
    const want = (await this.ctx.storage.get<number>("credentialRevision")) ?? 0;
    const store = RemoteStore.forCluster(this.env.STORE, this.env.CLUSTER_NAME || "default");
    const kv = await store.get(objectKey(SECRETS, "kube-system", `node-credential-${node}`));
    if (!kv || kv.modRevision !== want) {
      for (const ws of sockets) {
        try {
          ws.close(1008, kv ? "node credential rotated" : "node credential revoked");
        } catch {}
        this.agentGone(ws, "node credential revoked");
      }
      return;
    }
    await this.ctx.storage.setAlarm(Date.now() + this.credentialCheckMs());
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (ws !== this.agent) {
      // A socket of an earlier incarnation: adopt it if it is the agent's.
      if (!this.ctx.getWebSockets(AGENT_TAG).includes(ws)) return;
      this.adopt(ws);
    }
    this.seen();
    if (typeof message === "string") return; // keep-alive text
    this.mux?.receive(new Uint8Array(message));
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.agentGone(ws, `agent disconnected (${code}${reason ? `: ${reason}` : ""})`);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.agentGone(ws, `agent connection failed: ${String(error)}`);
  }

  private agentGone(ws: WebSocket, why: string): void {
    if (ws !== this.agent) return;
    this.agent = null;
    this.mux?.close(why);
    this.mux = null;
    this.ctx.waitUntil(this.ctx.storage.put("lastSeen", new Date().toISOString()));
  }

  /** Streams the agent opens: relays to a service backend on another node. */
  private onAgentStream(s: TunnelStream): void {
    if (s.header.kind !== "connect") {
      s.reply({ code: 400, reason: "BadRequest", message: `agents may not open ${JSON.stringify(s.header.kind)} streams` });
      s.reset("refused");
      return;
    }
    this.ctx.waitUntil(
      this.relay(s).catch((e) => {
        s.reply({ code: 502, reason: "ServiceUnavailable", message: String(e) });
        s.reset(String(e));
      }),
    );
  }

  /**
   * A service connection to a backend this node cannot route to: allowed only for an
   * address:port the Service's Endpoints list as ready on the named node, so a node can
   * never use the tunnels to reach anything else on another node.
   */
  private async relay(s: TunnelStream): Promise<void> {
    const h = s.header as StreamHeader & {
      node?: string;
      namespace?: string;
      service?: string;
      ip?: string;
      port?: number;
      protocol?: string;
    };
    const target = {
      node: String(h.node ?? ""),
      ip: String(h.ip ?? ""),
      port: Number(h.port),
      protocol: h.protocol === "UDP" ? "UDP" : "TCP",
    };
    const store = RemoteStore.forCluster(this.env.STORE, this.env.CLUSTER_NAME || "default");
    const kv =
      typeof h.namespace === "string" && typeof h.service === "string"
        ? await store.get(objectKey(ENDPOINTS, h.namespace, h.service))
        : null;
    const ep = kv ? JSON.parse(kv.value) : null;
    const allowed = (ep?.subsets ?? []).some(
      (ss: any) =>
        (ss.addresses ?? []).some((a: any) => a.ip === target.ip && a.nodeName === target.node) &&
        (ss.ports ?? []).some((p: any) => p.port === target.port && (p.protocol ?? "TCP") === target.protocol),
    );
    if (!allowed) {
      s.reply({
        code: 403,
        reason: "Forbidden",
        message: `${target.ip}:${target.port} is not a ready endpoint of ${h.namespace}/${h.service} on node ${target.node}`,
      });
      s.reset("forbidden");
      return;
    }
    const res = await tunnelFor(this.env, target.node).fetch("https://tunnel.internal/connect", {
      headers: {
        upgrade: "websocket",
        [STREAM_HEADER]: JSON.stringify({ header: { kind: "connect", ...target }, protocols: [] }),
      },
    });
    const ws = res.webSocket;
    if (res.status !== 101 || !ws) {
      let msg = `node ${target.node} answered ${res.status}`;
      try {
        msg = ((await res.json()) as { message?: string }).message ?? msg;
      } catch {}
      s.reply({ code: res.status >= 400 ? res.status : 502, reason: "ServiceUnavailable", message: msg });
      s.reset(msg);
      return;
    }
    ws.accept();
    s.reply({ code: 200 });
    this.bridge(ws, s, "relay");
  }

  // ---------------------------------------------------------------- API side

  /** The client of a streamed body went away (the Worker saw it): drop the stream. */
  async cancel(id: number): Promise<void> {
    this.mux?.reset(id, "client went away");
  }

  async info(): Promise<TunnelInfo> {
    const m = await this.ctx.storage.get<string>(["node", "connectedAt", "lastSeen", "remoteAddress", "colo", "country"]);
    const connected = this.agent !== null || this.ctx.getWebSockets(AGENT_TAG).length > 0;
    let seen = Math.max(this.lastSeenMs, Date.parse(m.get("lastSeen") ?? "") || 0);
    const ws = this.agent ?? this.ctx.getWebSockets(AGENT_TAG)[0];
    const pinged = ws ? this.ctx.getWebSocketAutoResponseTimestamp(ws) : null;
    if (pinged) seen = Math.max(seen, pinged.getTime());
    if (connected) seen = Math.max(seen, Date.now() - 60_000); // a live socket is pinged every 30 s
    const opt = (k: string) => m.get(k) || undefined;
    return {
      node: this.node || (m.get("node") ?? ""),
      connected,
      connectedAt: opt("connectedAt"),
      lastSeen: seen ? new Date(seen).toISOString() : undefined,
      remoteAddress: opt("remoteAddress"),
      colo: opt("colo"),
      country: opt("country"),
      streams: this.mux?.stats().streams ?? 0,
    };
  }

  override async fetch(request: Request): Promise<Response> {
    const agentNode = request.headers.get(AGENT_HEADER);
    if (agentNode) return this.connectAgent(request, agentNode);
    const raw = request.headers.get(STREAM_HEADER);
    if (!raw) return status(400, "BadRequest", "not a tunnel request");
    let spec: { header: StreamHeader; protocols: string[] };
    try {
      spec = JSON.parse(raw);
    } catch {
      return status(400, "BadRequest", "malformed stream header");
    }
    if (!this.mux || !this.agent) {
      const name = this.node || ((await this.ctx.storage.get<string>("node")) ?? "");
      const res = status(503, "ServiceUnavailable", `node ${JSON.stringify(name)} is not connected: its agent has no tunnel open`);
      res.headers.set(NODE_UNAVAILABLE_HEADER, "1");
      return res;
    }
    const upgrade = request.headers.get("upgrade")?.toLowerCase() === "websocket";
    return upgrade ? this.openWebSocket(request, spec.header, spec.protocols) : this.openHTTP(request, spec.header);
  }

  private async openHTTP(request: Request, header: StreamHeader): Promise<Response> {
    const s = this.mux!.open(header);
    // The request body goes up as the stream's chunks (flow-controlled), then END.
    const body = request.body;
    this.ctx.waitUntil(
      (async () => {
        try {
          if (body) for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) for (const p of pieces(chunk)) await s.write(p);
          s.end();
        } catch (e) {
          s.reset(`request body: ${String(e)}`);
        }
      })(),
    );
    const reply = await withTimeout(s.waitReply(), REPLY_TIMEOUT_MS, () => ({
      code: 504,
      reason: "Timeout",
      message: "the node did not answer in time",
    }));
    const passthrough = header.kind === "http" || header.kind === "proxy";
    if (reply.code >= 400 && !passthrough) {
      s.reset("refused");
      return replyStatus(reply);
    }
    if (reply.code === 502 && passthrough && reply.reason) {
      s.reset("refused");
      return replyStatus(reply);
    }
    const headers = new Headers();
    for (const [k, v] of reply.headers ?? []) {
      try {
        headers.append(k, v);
      } catch {}
    }
    if (!headers.has("content-type") && !passthrough) headers.set("content-type", "text/plain");
    // A followed log trickles: edge compression would hold it back (gzip buffers), so
    // mark it as already encoded, which compression leaves alone.
    if (header.kind === "log" && !headers.has("content-encoding")) headers.set("content-encoding", "identity");
    const noBody = reply.code === 204 || reply.code === 304 || request.method === "HEAD";
    if (noBody) s.reset("no body");
    else headers.set(STREAM_ID_HEADER, String(s.id));
    return new Response(noBody ? null : streamBody(s), { status: reply.code >= 200 && reply.code <= 599 ? reply.code : 502, headers });
  }

  private async openWebSocket(request: Request, header: StreamHeader, protocols: string[]): Promise<Response> {
    const offered = (request.headers.get("sec-websocket-protocol") ?? "")
      .split(",")
      .map((p) => p.trim())
      .filter(Boolean);
    let protocol = "";
    if (protocols.length > 0) {
      protocol = offered.find((p) => protocols.includes(p)) ?? "";
      if (!protocol)
        return status(
          400,
          "BadRequest",
          `none of the offered WebSocket subprotocols (${offered.join(", ")}) is supported; expected one of ${protocols.join(", ")}`,
        );
    }
    const s = this.mux!.open({
      ...header,
      ...(protocol ? { protocol } : {}),
      ...(header.kind === "websocket" ? { protocols: offered } : {}),
    });
    const reply = await withTimeout(s.waitReply(), REPLY_TIMEOUT_MS, () => ({
      code: 504,
      reason: "Timeout",
      message: "the node did not answer in time",
    }));
    if (reply.code !== 200 && reply.code !== 101) {
      s.reset("refused");
      return replyStatus(reply);
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    server.accept();
    this.bridge(server, s, header.kind === "websocket" ? "typed" : header.kind === "connect" ? "relay" : "raw");
    const chosen = protocol || (typeof reply.protocol === "string" ? reply.protocol : "");
    return new Response(null, { status: 101, webSocket: client, headers: chosen ? { "sec-websocket-protocol": chosen } : {} });
  }

  /**
   * Bridges a WebSocket and a stream, one message a chunk. "typed": chunks carry a first
   * byte 0 (binary) or 1 (text), for proxied WebSockets whose message types matter.
   * "relay": between two NodeTunnelDOs (service traffic), where a text "END" carries a
   * half-close each way and the socket closes once both directions are done.
   */
  private bridge(ws: WebSocket, s: TunnelStream, mode: "raw" | "typed" | "relay"): void {
    const typed = mode === "typed";
    let backlog = 0;
    let chain = Promise.resolve();
    // Binary messages as ArrayBuffers (the default for this compatibility date is Blob).
    (ws as unknown as { binaryType: string }).binaryType = "arraybuffer";
    ws.addEventListener("message", (e) => {
      const raw = e.data as string | ArrayBuffer | Blob;
      if (mode === "relay" && raw === "END") {
        chain = chain.then(() => s.end());
        return;
      }
      const size = typeof raw === "string" ? raw.length : raw instanceof ArrayBuffer ? raw.byteLength : raw.size;
      backlog += size;
      if (backlog > MAX_CLIENT_BACKLOG) {
        s.reset("client sent faster than the node reads");
        try {
          ws.close(1009, "too much unread input");
        } catch {}
        return;
      }
      // In order: a Blob is read asynchronously, so every message waits its turn.
      chain = chain.then(async () => {
        let data: Uint8Array;
        if (typeof raw === "string") data = typed ? concat(1, enc.encode(raw)) : enc.encode(raw);
        else {
          const b = new Uint8Array(raw instanceof ArrayBuffer ? raw : await raw.arrayBuffer());
          data = typed ? concat(0, b) : b;
        }
        try {
          await s.write(data);
        } catch {}
        backlog -= size;
      });
    });
    const closeStream = () => {
      chain.then(() => s.reset("client closed"));
    };
    ws.addEventListener("close", closeStream);
    ws.addEventListener("error", closeStream);
    this.ctx.waitUntil(
      (async () => {
        let code = 1000;
        let reason = "";
        try {
          for await (const c of s) {
            if (!typed) ws.send(c);
            else if (c[0] === 1) ws.send(dec.decode(c.subarray(1)));
            else ws.send(c.subarray(1));
          }
          if (mode === "relay") {
            ws.send("END");
            await s.done();
          }
        } catch (e) {
          code = 1011;
          reason = String(e instanceof Error ? e.message : e).slice(0, 120);
        }
        try {
          ws.close(code, reason);
        } catch {}
      })(),
    );
  }
}

function concat(first: number, rest: Uint8Array): Uint8Array {
  const out = new Uint8Array(rest.length + 1);
  out[0] = first;
  out.set(rest, 1);
  return out;
}
