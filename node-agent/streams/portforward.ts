// `kubectl port-forward` on the agent: the stream handler for kind "portforward".
//
// The control plane has accepted the client's WebSocket and forwards its messages as
// chunks (one chunk one message, both ways). Two protocols, picked by header.protocol:
//
// - "SPDY/3.1+portforward.k8s.io" (kubectl 1.31+): the messages are the bytes of a SPDY/3.1
//   connection in which the agent is the server, as kubelet is. Per forwarded connection
//   kubectl opens an "error" and a "data" stream (headers streamtype, port, requestid);
//   once both are there the agent connects to the pod's port and pipes bytes over the
//   data stream; a failure is reported as text on the error stream, whose end (empty)
//   means success. Many forwarded connections share the session; the session ends when
//   the client goes away.
// - "v4.channel.k8s.io" / "portforward.k8s.io": every message is [channel][bytes]; for the
//   i-th port of header.ports channel 2i carries data and 2i+1 errors, and the first
//   message on each is the port (u16 little-endian). One TCP connection per port; when
//   all of them are over the agent ends its side (kubelet closes the WebSocket then).
//
// Backpressure: a pod socket is paused until its bytes are accepted by the tunnel
// (stream.write waits for credit), and the handler reads no further chunks while a pod
// socket's write buffer is full (which, through the tunnel's credit, stops the client).

import net from "node:net";
import { MAX_CHUNK, StreamResetError, type TunnelStream } from "../../workers/shared/tunnel.ts";
import {
  DEFAULT_WINDOW,
  decodeHeaderBlock,
  encodeFrame,
  encodeHeaderBlock,
  FrameParser,
  GOAWAY_PROTOCOL_ERROR,
  HeaderDeflater,
  HeaderInflater,
  header,
  RST_CANCEL,
  RST_PROTOCOL_ERROR,
  RST_REFUSED_STREAM,
  type SpdyFrame,
  SpdyProtocolError,
} from "../spdy.ts";
import type { StreamHandler } from "./types.ts";

export const PROTOCOL_SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io";
export const PROTOCOL_V4_CHANNEL = "v4.channel.k8s.io";
export const PROTOCOL_PORTFORWARD = "portforward.k8s.io";

export interface PortForwardOptions {
  /** How long the error and data streams of one SPDY request may arrive apart (kubelet: 30 s). */
  pairTimeoutMs?: number;
  /** After the pod has closed its side, how long the client's bytes may still go to it (containerd: 1 s). */
  lingerMs?: number;
}

/** What the handlers need to know about the target pod. */
interface Target {
  host: string;
  /** "namespace/name", for messages. */
  pod: string;
  uid: string;
  log(msg: string): void;
}

/** A pod that neither accepts nor refuses within this long is reported unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;
/** How long a graceful end waits for queued chunks to go out. */
const FLUSH_MS = 5_000;

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** Builds the handler; tests shorten the timeouts. */
export function createPortForwardHandler(opts: PortForwardOptions = {}): StreamHandler {
  const pairTimeoutMs = opts.pairTimeoutMs ?? 30_000;
  const lingerMs = opts.lingerMs ?? 1_000;
  return async (stream, deps) => {
    const h = stream.header;
    const uid = typeof h.uid === "string" ? h.uid : "";
    const podIP = typeof h.podIP === "string" && h.podIP ? h.podIP : deps.podIP(uid);
    const target: Target = {
      host: podIP || "127.0.0.1",
      pod: `${h.namespace ?? ""}/${h.pod ?? ""}`,
      uid,
      log: deps.log,
    };
    const protocol = typeof h.protocol === "string" ? h.protocol : "";
    if (protocol === PROTOCOL_SPDY_TUNNEL) {
      stream.reply({ code: 200 });
      await new SpdyPortForward(stream, target, pairTimeoutMs, lingerMs).serve();
      return;
    }
    if (protocol === PROTOCOL_V4_CHANNEL || protocol === PROTOCOL_PORTFORWARD) {
      const ports = Array.isArray(h.ports) ? h.ports : [];
      if (ports.length === 0 || !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
        stream.reply({ code: 400, reason: "BadRequest", message: 'query parameter "port" is required: ports 1-65535' });
        stream.end();
        return;
      }
      stream.reply({ code: 200 });
      await serveChannels(stream, target, ports as number[], lingerMs);
      return;
    }
    stream.reply({ code: 400, reason: "BadRequest", message: `unsupported port-forward protocol "${protocol}"` });
    stream.end();
  };
}

export const portForwardHandler: StreamHandler = createPortForwardHandler();

// ------------------------------------------------------------- the pod's side

interface PodConnectionEvents {
  /** Bytes from the pod; the socket stays paused until the promise settles (a rejection destroys it). */
  data(chunk: Uint8Array): Promise<void> | undefined;
  /** The pod sends no more: it closed its side, reset, or (connectError) was never reached. Called once. */
  podDone(connectError?: Error): void;
  /** The socket is gone in both directions. Called once, last. */
  closed(): void;
}

/** One TCP connection to the pod, half-close aware. */
class PodConnection {
  private readonly socket: net.Socket;
  private connected = false;
  private podEnded = false;
  private linger: ReturnType<typeof setTimeout> | undefined;

  constructor(host: string, port: number, ev: PodConnectionEvents, lingerMs: number) {
    const s = net.connect({ host, port, allowHalfOpen: true });
    this.socket = s;
    s.setNoDelay(true);
    const dialTimer = setTimeout(() => s.destroy(new Error(`dial tcp ${host}:${port}: i/o timeout`)), CONNECT_TIMEOUT_MS);
    dialTimer.unref?.();
    s.on("connect", () => {
      clearTimeout(dialTimer);
      this.connected = true;
    });
    s.on("data", (b: Buffer) => {
      const p = ev.data(b);
      if (!p) return;
      s.pause();
      p.then(
        () => s.resume(),
        () => s.destroy(),
      );
    });
    const done = (err?: Error) => {
      if (this.podEnded) return;
      this.podEnded = true;
      ev.podDone(err);
      // The client may still be sending; give it a moment (or until it half-closes too,
      // which closes the socket), then drop the connection.
      if (!s.destroyed) {
        this.linger = setTimeout(() => s.destroy(), lingerMs);
        this.linger.unref?.();
      }
    };
    s.on("end", () => done());
    s.on("error", (e: Error) => done(this.connected ? undefined : e));
    s.on("close", () => {
      clearTimeout(dialTimer);
      clearTimeout(this.linger);
      done();
      ev.closed();
    });
  }

  /**
   * Hands client bytes to the pod. Returns a promise while the socket's write buffer is
   * full (settles at 'drain' or when the socket closes); the caller reads no more until then.
   */
  write(data: Uint8Array): Promise<void> | undefined {
    const s = this.socket;
    if (s.destroyed || s.writableEnded || data.length === 0) return;
    if (s.write(data)) return;
    return new Promise((resolve) => {
      const go = () => {
        s.off("drain", go);
        s.off("close", go);
        resolve();
      };
      s.on("drain", go);
      s.on("close", go);
    });
  }

  /** The client sends no more: half-close towards the pod. */
  endWrite(): void {
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function forwardError(t: Target, port: number, err: Error): string {
  return `error forwarding port ${port} to pod ${t.pod}, uid ${t.uid}: ${err.message}`;
}

/** Splits bytes into pieces of at most n. */
function pieces(b: Uint8Array, n: number): Uint8Array[] {
  if (b.length <= n) return [b];
  const out: Uint8Array[] = [];
  for (let o = 0; o < b.length; o += n) out.push(b.subarray(o, o + n));
  return out;
}

/**
 * Writes to the tunnel stream one chunk at a time, in call order. Each call resolves
 * when its chunk is handed over (after the stream's credit allowed it); after a reset
 * every call rejects. make() runs at the chunk's turn and may return null to skip it.
 */
class Sender {
  private readonly stream: TunnelStream;
  private tail: Promise<void> = Promise.resolve();
  ended = false;

  constructor(stream: TunnelStream) {
    this.stream = stream;
  }

  send(make: () => Uint8Array | null | Promise<Uint8Array | null>): Promise<void> {
    const p = this.tail.then(async () => {
      if (this.ended) return;
      const chunk = await make();
      if (chunk) await this.stream.write(chunk);
    });
    this.tail = p.catch(() => {});
    return p;
  }

  /**
   * Ends the stream. graceful: after what is queued so far has gone out (bounded by
   * FLUSH_MS, in case the peer grants no more credit); otherwise at once, dropping the
   * queue (the peer is gone, nobody would read it).
   */
  async end(graceful: boolean): Promise<void> {
    if (graceful) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, FLUSH_MS);
      });
      await Promise.race([this.tail, late]);
      clearTimeout(timer);
    }
    this.ended = true;
    this.stream.end();
  }
}

// ------------------------------------------------------------- SPDY (kubectl)

/** Largest data frame payload, so that a frame fits in one tunnel chunk. */
const MAX_SPDY_DATA = MAX_CHUNK - 8;
/** Client bytes held for a data stream whose error stream has not arrived yet. */
const MAX_PENDING = 1024 * 1024;
/** The peer is granted more window once this much of it was consumed. */
const WINDOW_GRANT = DEFAULT_WINDOW / 2;
const EMPTY_HEADERS = encodeHeaderBlock([]);

/** One forwarded connection: kubelet's httpStreamPair. */
interface Forward {
  requestId: string;
  port: number;
  dataId: number; // 0 until the stream arrives
  errorId: number;
  conn: PodConnection | null;
  /** Client bytes that came before the pair was complete. */
  pending: Uint8Array[];
  pendingBytes: number;
  clientDataFin: boolean;
  dataFinSent: boolean;
  dataReset: boolean;
  errorClosed: boolean; // FIN sent or reset by the client
  timer: ReturnType<typeof setTimeout> | undefined;
  done: boolean;
}

interface StreamRef {
  fwd: Forward;
  kind: "data" | "error";
  /** Data consumed since the last WINDOW_UPDATE for this stream. */
  consumed: number;
}

/**
 * The SPDY server of one port-forward session.
 *
 * Flow control: the agent grants window (WINDOW_UPDATE, per stream and for the session)
 * as it hands data to the pod, as the spec asks, but does not hold its own sends to the
 * peer's window: kubectl's SPDY (spdystream) never grants any, so honouring the 64 KB
 * initial window would stall every connection after 64 KB. Its backpressure is the
 * tunnel's credit and the WebSocket's.
 */
class SpdyPortForward {
  private readonly stream: TunnelStream;
  private readonly t: Target;
  private readonly pairTimeoutMs: number;
  private readonly lingerMs: number;
  private readonly out: Sender;
  private readonly parser = new FrameParser();
  private readonly inflater = new HeaderInflater();
  private readonly deflater = new HeaderDeflater();
  private readonly streams = new Map<number, StreamRef>();
  private readonly forwards = new Map<string, Forward>();
  private lastStreamId = 0;
  private goneAway = false;
  private sessionConsumed = 0;

  constructor(stream: TunnelStream, t: Target, pairTimeoutMs: number, lingerMs: number) {
    this.stream = stream;
    this.t = t;
    this.pairTimeoutMs = pairTimeoutMs;
    this.lingerMs = lingerMs;
    this.out = new Sender(stream);
  }

  /** Runs until the client goes away (or breaks the protocol); then closes everything. */
  async serve(): Promise<void> {
    let graceful = false;
    try {
      for (;;) {
        const chunk = await this.stream.read();
        if (chunk === null) break;
        for (const f of this.parser.push(chunk)) await this.onFrame(f);
      }
    } catch (e) {
      if (e instanceof SpdyProtocolError) {
        this.t.log(`port-forward ${this.t.pod}: SPDY protocol error: ${e.message}`);
        const goaway = encodeFrame({ type: "goaway", lastGoodStreamId: this.lastStreamId, status: GOAWAY_PROTOCOL_ERROR });
        this.out.send(() => goaway).catch(() => {});
        graceful = true;
      } else if (!(e instanceof StreamResetError)) {
        this.t.log(`port-forward ${this.t.pod}: ${e instanceof Error ? e.message : String(e)}`);
      }
    } finally {
      for (const fwd of this.forwards.values()) {
        clearTimeout(fwd.timer);
        fwd.done = true;
        fwd.conn?.destroy();
      }
      this.forwards.clear();
      this.streams.clear();
      this.inflater.close();
      this.deflater.close();
      await this.out.end(graceful);
    }
  }

  /** Handles one frame; resolves when the next may be handled (backpressure from a pod). */
  private async onFrame(f: SpdyFrame): Promise<void> {
    switch (f.type) {
      case "syn_stream":
        return this.onSynStream(f);
      case "syn_reply":
      case "headers":
        // The server opens no streams, so these carry nothing for it; their header blocks
        // still go through the inflater, whose state every block advances.
        decodeHeaderBlock(await this.inflater.decompress(f.headerBlock));
        if (f.fin) this.onClientFin(f.streamId);
        return;
      case "data":
        return this.onData(f.streamId, f.data, f.fin);
      case "rst_stream":
        this.onReset(f.streamId);
        return;
      case "ping": {
        // Odd ids are the client's pings: echo them. Even ones would answer ours (none sent).
        if (f.id % 2 === 1) {
          const pong = encodeFrame(f);
          this.out.send(() => pong).catch(() => {});
        }
        return;
      }
      case "goaway":
        this.goneAway = true;
        return;
      case "settings":
      case "window_update":
      case "unknown":
        return;
    }
  }

  private async onSynStream(f: Extract<SpdyFrame, { type: "syn_stream" }>): Promise<void> {
    const headers = decodeHeaderBlock(await this.inflater.decompress(f.headerBlock));
    const id = f.streamId;
    if (this.goneAway) return this.rst(id, RST_REFUSED_STREAM);
    // Client streams have odd, increasing ids.
    if (id % 2 === 0 || id <= this.lastStreamId) return this.rst(id, RST_PROTOCOL_ERROR);
    this.lastStreamId = id;

    const portString = header(headers, "port") ?? "";
    const port = /^[0-9]{1,5}$/.test(portString) ? Number(portString) : 0;
    const kind = header(headers, "streamtype");
    if (port < 1 || port > 65535 || (kind !== "data" && kind !== "error")) {
      // kubelet rejects such a stream with a reset.
      this.t.log(
        `port-forward ${this.t.pod}: rejected stream ${id}: port ${JSON.stringify(portString)}, streamtype ${JSON.stringify(kind)}`,
      );
      return this.rst(id, RST_CANCEL);
    }
    // Clients before requestid paired streams by id: error n, data n+2.
    const requestId = header(headers, "requestid") || String(kind === "error" ? id : id - 2);
    let fwd = this.forwards.get(requestId);
    if (fwd && (kind === "data" ? fwd.dataId : fwd.errorId) !== 0) {
      this.t.log(`port-forward ${this.t.pod}: request ${requestId} already has a ${kind} stream`);
      return this.rst(id, RST_PROTOCOL_ERROR);
    }
    this.replyTo(id);
    if (!fwd) {
      const created: Forward = {
        requestId,
        port,
        dataId: 0,
        errorId: 0,
        conn: null,
        pending: [],
        pendingBytes: 0,
        clientDataFin: false,
        dataFinSent: false,
        dataReset: false,
        errorClosed: false,
        timer: undefined,
        done: false,
      };
      created.timer = setTimeout(() => this.pairTimedOut(created), this.pairTimeoutMs);
      created.timer.unref?.();
      this.forwards.set(requestId, created);
      fwd = created;
    }
    if (kind === "data") {
      fwd.dataId = id;
      fwd.port = port; // kubelet forwards to the data stream's port
    } else {
      fwd.errorId = id;
    }
    this.streams.set(id, { fwd, kind, consumed: 0 });
    if (f.fin) this.onClientFin(id);
    if (fwd.dataId && fwd.errorId) {
      clearTimeout(fwd.timer);
      this.connect(fwd);
    }
  }

  private connect(fwd: Forward): void {
    const conn = new PodConnection(
      this.t.host,
      fwd.port,
      {
        data: (b) => this.sendData(fwd, b),
        podDone: (err) => {
          if (err) {
            const msg = forwardError(this.t, fwd.port, err);
            this.t.log(`port-forward: ${msg}`);
            this.sendError(fwd, msg);
          }
          this.closeError(fwd);
          this.closeData(fwd);
        },
        closed: () => this.finish(fwd),
      },
      this.lingerMs,
    );
    fwd.conn = conn;
    for (const b of fwd.pending) conn.write(b);
    fwd.pending = [];
    fwd.pendingBytes = 0;
    if (fwd.clientDataFin) conn.endWrite();
  }

  private async onData(id: number, data: Uint8Array, fin: boolean): Promise<void> {
    const ref = this.streams.get(id);
    let wait: Promise<void> | undefined;
    if (ref && ref.kind === "data" && data.length > 0 && !ref.fwd.clientDataFin) {
      const fwd = ref.fwd;
      if (fwd.conn) {
        wait = fwd.conn.write(data);
      } else {
        fwd.pending.push(data);
        fwd.pendingBytes += data.length;
        if (fwd.pendingBytes > MAX_PENDING) {
          this.t.log(`port-forward ${this.t.pod}: request ${fwd.requestId} sent too much before its error stream`);
          this.rst(id, RST_CANCEL);
          this.abandon(fwd);
          return;
        }
      }
    }
    if (fin) this.onClientFin(id);
    if (wait) await wait;
    this.consumed(ref, data.length);
  }

  /** Grants the client more window once enough of it was handed on. */
  private consumed(ref: StreamRef | undefined, n: number): void {
    if (n === 0) return;
    this.sessionConsumed += n;
    if (this.sessionConsumed >= WINDOW_GRANT) {
      const f = encodeFrame({ type: "window_update", streamId: 0, delta: this.sessionConsumed });
      this.sessionConsumed = 0;
      this.out.send(() => f).catch(() => {});
    }
    // Only data streams carry the client's bytes; an ended one needs no more window.
    if (ref?.kind !== "data" || ref.fwd.done || ref.fwd.clientDataFin) return;
    ref.consumed += n;
    if (ref.consumed >= WINDOW_GRANT) {
      const id = ref.fwd.dataId;
      const delta = ref.consumed;
      ref.consumed = 0;
      this.out.send(() => encodeFrame({ type: "window_update", streamId: id, delta })).catch(() => {});
    }
  }

  private onClientFin(id: number): void {
    const ref = this.streams.get(id);
    if (ref?.kind !== "data") return; // kubectl half-closes the error stream at once
    ref.fwd.clientDataFin = true;
    ref.fwd.conn?.endWrite();
  }

  private onReset(id: number): void {
    const ref = this.streams.get(id);
    if (!ref) return;
    const fwd = ref.fwd;
    if (ref.kind === "error") {
      fwd.errorClosed = true;
      return;
    }
    // kubectl resets the data stream when it is done with a connection (1.31+) and then
    // waits for the error stream to end.
    fwd.dataReset = true;
    if (fwd.conn) fwd.conn.destroy();
    else this.abandon(fwd);
  }

  private pairTimedOut(fwd: Forward): void {
    if (fwd.done || fwd.conn) return;
    this.t.log(`port-forward ${this.t.pod}: request ${fwd.requestId} timed out waiting for streams`);
    this.sendError(fwd, `timed out waiting for streams of request ${fwd.requestId}`);
    if (fwd.dataId && !fwd.dataReset) this.rst(fwd.dataId, RST_CANCEL);
    fwd.dataReset = true;
    this.abandon(fwd);
  }

  /** Ends a forward that never got (or no longer has) a pod connection. */
  private abandon(fwd: Forward): void {
    this.closeError(fwd);
    this.closeData(fwd);
    this.finish(fwd);
  }

  private finish(fwd: Forward): void {
    if (fwd.done) return;
    this.closeError(fwd);
    this.closeData(fwd);
    fwd.done = true;
    clearTimeout(fwd.timer);
    if (this.forwards.get(fwd.requestId) === fwd) this.forwards.delete(fwd.requestId);
    if (this.streams.get(fwd.dataId)?.fwd === fwd) this.streams.delete(fwd.dataId);
    if (this.streams.get(fwd.errorId)?.fwd === fwd) this.streams.delete(fwd.errorId);
  }

  // --------------------------------------------------------- sending

  private replyTo(id: number): void {
    this.out
      .send(async () =>
        encodeFrame({ type: "syn_reply", streamId: id, fin: false, headerBlock: await this.deflater.compress(EMPTY_HEADERS) }),
      )
      .catch(() => {});
  }

  private rst(id: number, status: number): void {
    const f = encodeFrame({ type: "rst_stream", streamId: id, status });
    this.out.send(() => f).catch(() => {});
  }

  /** Pod bytes on the data stream, queued at once (so a later FIN follows them). */
  private sendData(fwd: Forward, b: Uint8Array): Promise<void> | undefined {
    let last: Promise<void> | undefined;
    for (const piece of pieces(b, MAX_SPDY_DATA)) {
      last = this.out.send(() =>
        fwd.dataFinSent || fwd.dataReset ? null : encodeFrame({ type: "data", streamId: fwd.dataId, fin: false, data: piece }),
      );
    }
    return last;
  }

  private sendError(fwd: Forward, msg: string): void {
    if (!fwd.errorId || fwd.errorClosed) return;
    const f = encodeFrame({ type: "data", streamId: fwd.errorId, fin: false, data: enc.encode(msg) });
    this.out.send(() => f).catch(() => {});
  }

  /** The error stream's end: empty means the forward succeeded. */
  private closeError(fwd: Forward): void {
    if (!fwd.errorId || fwd.errorClosed) return;
    fwd.errorClosed = true;
    const f = encodeFrame({ type: "data", streamId: fwd.errorId, fin: true, data: EMPTY });
    this.out.send(() => f).catch(() => {});
  }

  private closeData(fwd: Forward): void {
    if (!fwd.dataId || fwd.dataFinSent || fwd.dataReset) return;
    const id = fwd.dataId;
    this.out
      .send(() => {
        if (fwd.dataFinSent || fwd.dataReset) return null;
        fwd.dataFinSent = true;
        return encodeFrame({ type: "data", streamId: id, fin: true, data: EMPTY });
      })
      .catch(() => {});
  }
}

// ------------------------------------------------------------- channels (v4)

/** Serves the WebSocket channel protocol: one pod connection per port in header.ports. */
async function serveChannels(stream: TunnelStream, t: Target, ports: number[], lingerMs: number): Promise<void> {
  const out = new Sender(stream);
  const conns: (PodConnection | null)[] = ports.map(() => null);
  let live = ports.length;
  let allDone: () => void = () => {};
  const over = new Promise<null>((resolve) => {
    allDone = () => resolve(null);
  });

  const message = (channel: number, b: Uint8Array) => {
    const m = new Uint8Array(1 + b.length);
    m[0] = channel;
    m.set(b, 1);
    return m;
  };
  const swallow = (p: Promise<void>) => {
    p.catch(() => {});
    return p;
  };

  ports.forEach((port, i) => {
    const portBytes = new Uint8Array([port & 0xff, port >> 8]);
    swallow(out.send(() => message(2 * i, portBytes)));
    swallow(out.send(() => message(2 * i + 1, portBytes)));
  });
  ports.forEach((port, i) => {
    conns[i] = new PodConnection(
      t.host,
      port,
      {
        data: (b) => {
          let last: Promise<void> | undefined;
          for (const piece of pieces(b, MAX_CHUNK - 1)) last = out.send(() => message(2 * i, piece));
          return last;
        },
        podDone: (err) => {
          if (!err) return;
          const msg = forwardError(t, port, err);
          t.log(`port-forward: ${msg}`);
          swallow(out.send(() => message(2 * i + 1, enc.encode(msg))));
        },
        closed: () => {
          conns[i] = null;
          if (--live === 0) allDone();
        },
      },
      lingerMs,
    );
  });

  let graceful = false;
  try {
    for (;;) {
      const chunk = await Promise.race([stream.read(), over]);
      if (chunk === null) {
        // Every pod connection is over (send what is queued, e.g. an error), or the client is gone.
        graceful = live === 0;
        break;
      }
      const ch = chunk[0];
      // Even channels carry data to the pod; the error channels are the server's to write.
      if (chunk.length < 2 || ch % 2 !== 0 || ch / 2 >= ports.length) continue;
      const wait = conns[ch / 2]?.write(chunk.subarray(1));
      if (wait) await wait;
    }
  } catch (e) {
    if (!(e instanceof StreamResetError)) t.log(`port-forward ${t.pod}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    for (const c of conns) c?.destroy();
    await out.end(graceful);
  }
}
