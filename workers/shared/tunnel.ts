// The node tunnel's wire protocol, shared by the NodeTunnelDO (workerd) and the agent
// (Node): many logical streams multiplexed over one WebSocket, each binary WebSocket
// message one frame. Runtime-free (Uint8Array, no Buffer, no timers).
//
// Frame: [type u8][stream id u32 big-endian][payload]. Streams opened by the control
// plane have odd ids, streams opened by the agent even ids (no collisions, as HTTP/2).
//
//   OPEN   payload: JSON StreamHeader           opens a stream
//   REPLY  payload: JSON StreamReply            the opened side's answer (status first)
//   DATA   payload: one chunk                   never split or merged: a chunk is a message
//   WINDOW payload: u32 bytes                   the receiver consumed this much: send more
//   END    (empty)                              the sender half-closes: no more DATA
//   RESET  payload: UTF-8 reason                aborts both directions
//
// Flow control is per stream and credit based: a sender may send DATA while its window
// for the stream is positive (so it can overdraw by at most one chunk); the receiver
// grants credit as its consumer takes chunks, not when they arrive. A consumer that
// stops reading therefore stops its own stream after about one window, and every other
// stream keeps flowing; no side ever buffers more than window + one chunk per stream.

export const FRAME_OPEN = 1;
export const FRAME_REPLY = 2;
export const FRAME_DATA = 3;
export const FRAME_WINDOW = 4;
export const FRAME_END = 5;
export const FRAME_RESET = 6;

/** Credit each side starts with, per stream (bytes). */
export const INITIAL_WINDOW = 256 * 1024;
/** Largest chunk a writer should send (bigger ones are legal but overdraw the window more). */
export const MAX_CHUNK = 64 * 1024;
/** The receiver returns credit once this much has been consumed (fewer WINDOW frames). */
const GRANT_THRESHOLD = INITIAL_WINDOW / 4;

/** What a stream is for; the opener's parameters ride along. */
export interface StreamHeader {
  kind: string;
  [key: string]: unknown;
}

/** The answer to an OPEN: an HTTP-like status, and for errors a Kubernetes Status reason. */
export interface StreamReply {
  code: number;
  reason?: string;
  message?: string;
  headers?: [string, string][];
  [key: string]: unknown;
}

export interface Frame {
  type: number;
  id: number;
  payload: Uint8Array;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeFrame(type: number, id: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, id >>> 0);
  out.set(payload, 5);
  return out;
}

/** Parses one frame; null for a message too short to be one. */
export function decodeFrame(msg: Uint8Array): Frame | null {
  if (msg.length < 5) return null;
  const id = new DataView(msg.buffer, msg.byteOffset, msg.byteLength).getUint32(1);
  return { type: msg[0], id, payload: msg.subarray(5) };
}

export function encodeJSON(v: unknown): Uint8Array {
  return enc.encode(JSON.stringify(v));
}

function parseJSON<T>(b: Uint8Array): T | null {
  try {
    const v = JSON.parse(dec.decode(b));
    return v && typeof v === "object" ? (v as T) : null;
  } catch {
    return null;
  }
}

export class StreamResetError extends Error {
  constructor(reason: string) {
    super(reason || "stream reset");
    this.name = "StreamResetError";
  }
}

/** One logical stream. Reading (the async iterator) is what grants the peer more credit. */
export class TunnelStream implements AsyncIterable<Uint8Array> {
  readonly id: number;
  readonly header: StreamHeader;
  private readonly mux: Mux;
  private sendWindow = INITIAL_WINDOW;
  private readonly writeWaiters: (() => void)[] = [];
  private readonly inbox: Uint8Array[] = [];
  private inboxBytes = 0;
  private consumedSinceGrant = 0;
  private readWaiter: (() => void) | null = null;
  private remoteEnded = false;
  private localEnded = false;
  private resetReason: string | null = null;
  private replyValue: StreamReply | null = null;
  private readonly replyWaiters: ((r: StreamReply) => void)[] = [];
  private readonly closeWaiters: (() => void)[] = [];
  /** Bytes sent and received on this stream (for stats). */
  bytesOut = 0;
  bytesIn = 0;

  constructor(mux: Mux, id: number, header: StreamHeader) {
    this.mux = mux;
    this.id = id;
    this.header = header;
  }

  /** True once both directions are done or the stream was reset. */
  get closed(): boolean {
    return this.resetReason !== null || (this.remoteEnded && this.localEnded);
  }

  get isReset(): boolean {
    return this.resetReason !== null;
  }

  /** Bytes received but not yet taken by the consumer (bounded by the window). */
  get buffered(): number {
    return this.inboxBytes;
  }

  /** Credit left to send on (may be negative by up to one chunk). */
  get window(): number {
    return this.sendWindow;
  }

  // ------------------------------------------------------------- sending

  /**
   * Sends one chunk, kept whole. Resolves once the chunk is handed to the connection,
   * which waits while the stream has no credit. Rejects (StreamResetError) after a reset.
   */
  async write(chunk: Uint8Array): Promise<void> {
    while (this.sendWindow <= 0 && this.resetReason === null) {
      await new Promise<void>((r) => this.writeWaiters.push(r));
    }
    if (this.resetReason !== null) throw new StreamResetError(this.resetReason);
    if (this.localEnded) throw new StreamResetError("write after end");
    this.sendWindow -= chunk.length;
    this.bytesOut += chunk.length;
    this.mux.sendFrame(FRAME_DATA, this.id, chunk);
  }

  /** Half-closes: the peer's reader ends after the chunks already sent. */
  end(): void {
    if (this.localEnded || this.resetReason !== null) return;
    this.localEnded = true;
    this.mux.sendFrame(FRAME_END, this.id);
    this.maybeDone();
  }

  /** Aborts the stream in both directions; the peer sees the reason. */
  reset(reason = ""): void {
    if (this.resetReason !== null) return;
    if (!this.closed) this.mux.sendFrame(FRAME_RESET, this.id, enc.encode(reason));
    this.onReset(reason || "reset");
  }

  /** The opened side's answer; send it before the first chunk. */
  reply(r: StreamReply): void {
    if (this.resetReason !== null) return;
    this.mux.sendFrame(FRAME_REPLY, this.id, encodeJSON(r));
  }

  /** The opener waits for the answer (a reset resolves it with code 502 and the reason). */
  waitReply(): Promise<StreamReply> {
    if (this.replyValue) return Promise.resolve(this.replyValue);
    if (this.resetReason !== null) return Promise.resolve({ code: 502, reason: "ServiceUnavailable", message: this.resetReason });
    return new Promise((r) => this.replyWaiters.push(r));
  }

  /** Resolves when the stream is fully closed or reset. */
  done(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => this.closeWaiters.push(r));
  }

  // ------------------------------------------------------------- receiving

  /** The next chunk, or null at the peer's END. Throws StreamResetError after a reset. */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.inbox.shift();
      if (chunk) {
        this.inboxBytes -= chunk.length;
        this.consumed(chunk.length);
        return chunk;
      }
      if (this.resetReason !== null) throw new StreamResetError(this.resetReason);
      if (this.remoteEnded) return null;
      await new Promise<void>((r) => {
        this.readWaiter = r;
      });
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const c = await this.read();
      if (c === null) return;
      yield c;
    }
  }

  private consumed(n: number): void {
    this.consumedSinceGrant += n;
    if (this.consumedSinceGrant >= GRANT_THRESHOLD && !this.remoteEnded && this.resetReason === null) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, this.consumedSinceGrant);
      this.consumedSinceGrant = 0;
      this.mux.sendFrame(FRAME_WINDOW, this.id, b);
    }
  }

  private wakeReader(): void {
    const w = this.readWaiter;
    this.readWaiter = null;
    w?.();
  }

  // ------------------------------------------------------------- from the mux

  /** @internal */
  onFrame(f: Frame): void {
    switch (f.type) {
      case FRAME_DATA:
        if (this.remoteEnded || this.resetReason !== null) return;
        this.bytesIn += f.payload.length;
        // A copy: the frame's buffer belongs to the connection.
        this.inbox.push(f.payload.slice());
        this.inboxBytes += f.payload.length;
        this.wakeReader();
        return;
      case FRAME_WINDOW: {
        if (f.payload.length < 4) return;
        this.sendWindow += new DataView(f.payload.buffer, f.payload.byteOffset, 4).getUint32(0);
        const ws = this.writeWaiters.splice(0);
        for (const w of ws) w();
        return;
      }
      case FRAME_REPLY: {
        const r = parseJSON<StreamReply>(f.payload) ?? { code: 502, message: "malformed reply" };
        if (typeof r.code !== "number") r.code = 502;
        this.replyValue = r;
        for (const w of this.replyWaiters.splice(0)) w(r);
        return;
      }
      case FRAME_END:
        this.remoteEnded = true;
        this.wakeReader();
        this.maybeDone();
        return;
      case FRAME_RESET:
        this.onReset(dec.decode(f.payload) || "reset by peer");
        return;
    }
  }

  /** @internal */
  onReset(reason: string): void {
    if (this.resetReason !== null) return;
    this.resetReason = reason;
    for (const w of this.writeWaiters.splice(0)) w();
    for (const w of this.replyWaiters.splice(0)) w({ code: 502, reason: "ServiceUnavailable", message: reason });
    this.wakeReader();
    this.finish();
  }

  private maybeDone(): void {
    if (this.remoteEnded && this.localEnded) this.finish();
  }

  private finish(): void {
    this.mux.forget(this.id);
    for (const w of this.closeWaiters.splice(0)) w();
  }
}

export interface MuxOptions {
  /** Hands one encoded frame to the connection (one binary WebSocket message). */
  send(frame: Uint8Array): void;
  /** The control plane's side opens odd stream ids, the agent's side even ones. */
  side: "control-plane" | "agent";
  /** A stream the peer opened. Without it, peer OPENs are refused. */
  onOpen?(stream: TunnelStream): void;
  /**
   * First stream id to use (of the side's parity). A control plane that comes back from
   * hibernation starts somewhere new, so it never reuses an id the agent may still hold.
   */
  firstId?: number;
}

export interface MuxStats {
  streams: number;
  perStream: { id: number; kind: string; buffered: number; window: number; bytesIn: number; bytesOut: number }[];
}

/** The multiplexer of one connection. */
export class Mux {
  private readonly o: MuxOptions;
  private readonly streams = new Map<number, TunnelStream>();
  private nextId: number;
  private closedReason: string | null = null;

  constructor(o: MuxOptions) {
    this.o = o;
    const parity = o.side === "control-plane" ? 1 : 0;
    const first = o.firstId ?? parity;
    this.nextId = (first - (first % 2) + parity || 2) >>> 0;
  }

  get isClosed(): boolean {
    return this.closedReason !== null;
  }

  /** Opens a stream; the peer's onOpen sees the header. */
  open(header: StreamHeader): TunnelStream {
    const id = this.nextId;
    this.nextId = (this.nextId + 2) % 0x1_0000_0000 || 2;
    const s = new TunnelStream(this, id, header);
    if (this.closedReason !== null) {
      s.onReset(this.closedReason);
      return s;
    }
    this.streams.set(id, s);
    this.sendFrame(FRAME_OPEN, id, encodeJSON(header));
    return s;
  }

  /** Feeds one received message (binary) into the mux. Malformed frames are dropped. */
  receive(msg: Uint8Array): void {
    const f = decodeFrame(msg);
    if (!f) return;
    if (f.type === FRAME_OPEN) {
      const theirs = this.o.side === "control-plane" ? f.id % 2 === 0 : f.id % 2 === 1;
      if (!theirs) return;
      // An id the peer reuses supersedes the stream we still had under it (the peer lost it).
      this.streams.get(f.id)?.onReset("superseded");
      const header = parseJSON<StreamHeader>(f.payload);
      const s = new TunnelStream(this, f.id, header && typeof header.kind === "string" ? header : { kind: "" });
      this.streams.set(f.id, s);
      if (!header || typeof header.kind !== "string" || !this.o.onOpen) {
        s.reply({ code: 400, reason: "BadRequest", message: "unknown stream kind" });
        s.reset("unknown stream kind");
        return;
      }
      this.o.onOpen(s);
      return;
    }
    this.streams.get(f.id)?.onFrame(f);
  }

  /** The connection is gone: every stream is reset with the reason. */
  close(reason = "tunnel closed"): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    for (const s of [...this.streams.values()]) s.onReset(reason);
    this.streams.clear();
  }

  /** Resets one stream by id (no-op if it is gone). */
  reset(id: number, reason: string): void {
    this.streams.get(id)?.reset(reason);
  }

  stats(): MuxStats {
    const perStream = [...this.streams.values()].map((s) => ({
      id: s.id,
      kind: s.header.kind,
      buffered: s.buffered,
      window: s.window,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
    }));
    return { streams: perStream.length, perStream };
  }

  /** @internal */
  sendFrame(type: number, id: number, payload?: Uint8Array): void {
    if (this.closedReason !== null) return;
    try {
      this.o.send(encodeFrame(type, id, payload));
    } catch (e) {
      this.close(e instanceof Error ? e.message : String(e));
    }
  }

  /** @internal */
  forget(id: number): void {
    this.streams.delete(id);
  }
}
