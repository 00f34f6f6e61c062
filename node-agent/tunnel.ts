// The agent's end of its node tunnel: one outbound WebSocket to the control plane
// (GET /api/v1/nodes/<node>/tunnel, authenticated with the node credential), kept up
// with keep-alive pings and reconnected with jittered back-off whenever it drops (a
// control-plane restart, a network change). Streams the control plane opens are handed
// to the handler of their kind (streams/index.ts); the agent opens "connect" streams
// for service traffic to backends it cannot reach itself.

import WebSocket from "ws";
import { Mux, type MuxStats, type StreamHeader, type TunnelStream } from "../workers/shared/tunnel.ts";
import type { StreamDeps, StreamHandler } from "./streams/types.ts";

export interface TunnelOptions {
  server: string;
  nodeName: string;
  token: string;
  ca?: string;
  insecureSkipTLSVerify?: boolean;
  handlers: Record<string, StreamHandler>;
  deps: StreamDeps;
  /** Keep-alive period; the connection is dropped after two missed answers. */
  pingIntervalMs?: number;
  log?: (msg: string) => void;
  backoff?: (attempt: number) => number;
}

export interface TunnelStats extends MuxStats {
  connected: boolean;
  connects: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class TunnelClient {
  private readonly o: TunnelOptions;
  private ws: WebSocket | null = null;
  private mux: Mux | null = null;
  private stopped = false;
  private connects = 0;
  private wake: (() => void) | null = null;

  constructor(o: TunnelOptions) {
    this.o = o;
  }

  get connected(): boolean {
    return this.mux !== null && !this.mux.isClosed;
  }

  stats(): TunnelStats {
    const m = this.mux?.stats() ?? { streams: 0, perStream: [] };
    return { ...m, connected: this.connected, connects: this.connects };
  }

  /** Opens a stream to the control plane; undefined while the tunnel is down. */
  open(header: StreamHeader): TunnelStream | undefined {
    if (!this.connected) return undefined;
    return this.mux!.open(header);
  }

  stop(): void {
    this.stopped = true;
    this.ws?.close(1000, "agent stopping");
    this.wake?.();
  }

  /** Runs until stop(): connect, serve, reconnect. */
  async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      const started = Date.now();
      const why = await this.session().catch((e) => (e instanceof Error ? e.message : String(e)));
      if (this.stopped) return;
      if (Date.now() - started > 30_000) attempt = 0; // it was up a while: start the back-off over
      const d = (this.o.backoff ?? defaultBackoff)(attempt++);
      this.log(`tunnel down (${why}); reconnecting in ${d} ms`);
      await Promise.race([sleep(d), new Promise<void>((r) => (this.wake = r))]);
    }
  }

  private log(msg: string): void {
    (this.o.log ?? console.log)(msg);
  }

  /** One connection, from dial to close; resolves with why it ended. */
  private session(): Promise<string> {
    const url = new URL(`/api/v1/nodes/${encodeURIComponent(this.o.nodeName)}/tunnel`, this.o.server);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return new Promise((resolve) => {
      const ws = new WebSocket(url, {
        headers: { authorization: `Bearer ${this.o.token}`, "user-agent": "kubeflare-agent" },
        ca: this.o.ca,
        rejectUnauthorized: !this.o.insecureSkipTLSVerify,
        handshakeTimeout: 15_000,
        // No permessage-deflate: the streams carry what they carry (often compressed
        // already), and compressing every frame costs the agent more than the bytes saved.
        perMessageDeflate: false,
        // Masking (RFC 6455 §10.3) keeps intermediaries that read plain HTTP from taking
        // frame bytes for requests; inside TLS nobody can read them, and masking every
        // byte in JavaScript was the agent's largest cost. A zero key means no masking.
        ...(url.protocol === "wss:" ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
        maxPayload: 16 * 1024 * 1024,
      });
      this.ws = ws;
      let pingTimer: ReturnType<typeof setInterval> | undefined;
      let unanswered = 0;
      const finish = (why: string) => {
        if (pingTimer) clearInterval(pingTimer);
        this.mux?.close(why);
        this.mux = null;
        this.ws = null;
        ws.removeAllListeners();
        ws.on("error", () => {});
        ws.terminate();
        resolve(why);
      };
      ws.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => {
          let msg = body;
          try {
            msg = JSON.parse(body).message ?? body;
          } catch {}
          finish(`HTTP ${res.statusCode}: ${msg.slice(0, 200)}`);
        });
      });
      ws.on("open", () => {
        this.connects++;
        this.log(`tunnel connected to ${url.host}`);
        const mux = new Mux({
          side: "agent",
          send: (frame) => ws.send(frame),
          onOpen: (s) => this.dispatch(s),
        });
        this.mux = mux;
        pingTimer = setInterval(() => {
          if (unanswered >= 2) return finish("keep-alive unanswered");
          unanswered++;
          ws.send("ping");
        }, this.o.pingIntervalMs ?? 30_000);
      });
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        unanswered = 0;
        if (!isBinary) return; // "pong"
        this.mux?.receive(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      });
      ws.on("close", (code, reason) => finish(`closed ${code}${reason.length ? ` ${reason.toString()}` : ""}`));
      ws.on("error", (e) => finish(e.message));
    });
  }

  private dispatch(s: TunnelStream): void {
    const handler = this.o.handlers[s.header.kind];
    if (!handler) {
      s.reply({
        code: 501,
        reason: "NotImplemented" as string,
        message: `this agent does not serve ${JSON.stringify(s.header.kind)} streams`,
      });
      s.reset("unsupported");
      return;
    }
    handler(s, this.o.deps).catch((e) => {
      const msg = e instanceof Error ? e.message : String(e);
      if (!s.isReset) this.log(`${s.header.kind} stream failed: ${msg}`);
      s.reply({ code: 500, reason: "InternalError", message: msg });
      s.reset(msg);
    });
  }
}

function defaultBackoff(attempt: number): number {
  const cap = Math.min(30_000, 500 * 2 ** Math.min(attempt, 16));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}
