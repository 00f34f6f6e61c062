// SPDY/3.1 as a port-forward server needs it: the frames kubectl's SPDY (moby/spdystream)
// sends and expects, parsed from an incremental byte stream (kubectl writes a frame in
// several pieces, and with SPDY tunnelled over WebSocket every piece is its own message),
// and the header blocks of SYN_STREAM, SYN_REPLY and HEADERS, which are compressed with
// one zlib stream per direction per connection, primed with the SPDY/3 dictionary and
// sync-flushed after every block.
//
// Framing and header blocks are pure; HeaderDeflater/HeaderInflater wrap node:zlib.
//
// Frame layout (all integers big-endian):
//   control: [1|version:15][type:16] [flags:8][length:24] [body: length bytes]
//   data:    [0|stream id:31]         [flags:8][length:24] [payload: length bytes]
//   SYN_STREAM    stream id, associated-to stream id, priority:3|unused:5, slot, header block
//   SYN_REPLY     stream id, header block
//   RST_STREAM    stream id, status
//   SETTINGS      count, count * ([flags:8][id:24], value)
//   PING          id (the client's are odd, the server's even)
//   GOAWAY        last good stream id, status
//   HEADERS       stream id, header block
//   WINDOW_UPDATE stream id (0: the whole session, SPDY/3.1), delta
// Header block (before compression): count, count * (name length, name, value length,
// value), names lowercase, several values of one name joined by NUL.

import zlib from "node:zlib";

export const SPDY_VERSION = 3;

export const TYPE_SYN_STREAM = 1;
export const TYPE_SYN_REPLY = 2;
export const TYPE_RST_STREAM = 3;
export const TYPE_SETTINGS = 4;
export const TYPE_PING = 6;
export const TYPE_GOAWAY = 7;
export const TYPE_HEADERS = 8;
export const TYPE_WINDOW_UPDATE = 9;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
export const FLAG_SETTINGS_CLEAR = 0x01;

/** RST_STREAM status codes. */
export const RST_PROTOCOL_ERROR = 1;
export const RST_INVALID_STREAM = 2;
export const RST_REFUSED_STREAM = 3;
export const RST_UNSUPPORTED_VERSION = 4;
export const RST_CANCEL = 5;
export const RST_INTERNAL_ERROR = 6;
export const RST_FLOW_CONTROL_ERROR = 7;

/** GOAWAY status codes. */
export const GOAWAY_OK = 0;
export const GOAWAY_PROTOCOL_ERROR = 1;
export const GOAWAY_INTERNAL_ERROR = 2;

export const SETTINGS_INITIAL_WINDOW_SIZE = 7;

/** The flow-control window every stream and the session start with (SPDY/3.1). */
export const DEFAULT_WINDOW = 64 * 1024;
/** Largest frame body the 24-bit length allows. */
export const MAX_FRAME_LENGTH = 0xff_ffff;

export type Headers = Map<string, string[]>;

export type SpdyFrame =
  | { type: "data"; streamId: number; fin: boolean; data: Uint8Array }
  | {
      type: "syn_stream";
      streamId: number;
      associatedTo: number;
      priority: number;
      slot: number;
      fin: boolean;
      unidirectional: boolean;
      /** Compressed: HeaderInflater turns it into a header block. */
      headerBlock: Uint8Array;
    }
  | { type: "syn_reply"; streamId: number; fin: boolean; headerBlock: Uint8Array }
  | { type: "headers"; streamId: number; fin: boolean; headerBlock: Uint8Array }
  | { type: "rst_stream"; streamId: number; status: number }
  | { type: "settings"; clear: boolean; entries: { id: number; flags: number; value: number }[] }
  | { type: "ping"; id: number }
  | { type: "goaway"; lastGoodStreamId: number; status: number }
  | { type: "window_update"; streamId: number; delta: number }
  /** A control frame of a type SPDY/3.1 does not define (the spec says: ignore it). */
  | { type: "unknown"; controlType: number; flags: number; body: Uint8Array };

/** A malformed frame or header block: a session error (answer with GOAWAY, then close). */
export class SpdyProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SpdyProtocolError";
  }
}

// ------------------------------------------------------------- encoding

function controlFrame(type: number, flags: number, body: Uint8Array): Uint8Array {
  if (body.length > MAX_FRAME_LENGTH) throw new RangeError(`SPDY frame body of ${body.length} bytes is too long`);
  const out = new Uint8Array(8 + body.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0x8000 | SPDY_VERSION);
  v.setUint16(2, type);
  v.setUint32(4, ((flags & 0xff) << 24) | body.length);
  out.set(body, 8);
  return out;
}

function u32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const v = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) v.setUint32(4 * i, values[i] >>> 0);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Serializes one frame; header blocks must already be compressed (HeaderDeflater). */
export function encodeFrame(f: SpdyFrame): Uint8Array {
  switch (f.type) {
    case "data": {
      if (f.streamId <= 0 || f.streamId > 0x7fff_ffff) throw new RangeError(`bad stream id ${f.streamId}`);
      if (f.data.length > MAX_FRAME_LENGTH) throw new RangeError(`SPDY data frame of ${f.data.length} bytes is too long`);
      const out = new Uint8Array(8 + f.data.length);
      const v = new DataView(out.buffer);
      v.setUint32(0, f.streamId);
      v.setUint32(4, ((f.fin ? FLAG_FIN : 0) << 24) | f.data.length);
      out.set(f.data, 8);
      return out;
    }
    case "syn_stream": {
      const head = new Uint8Array(10);
      const v = new DataView(head.buffer);
      v.setUint32(0, f.streamId & 0x7fff_ffff);
      v.setUint32(4, f.associatedTo & 0x7fff_ffff);
      head[8] = (f.priority & 0x7) << 5;
      head[9] = f.slot & 0xff;
      const flags = (f.fin ? FLAG_FIN : 0) | (f.unidirectional ? FLAG_UNIDIRECTIONAL : 0);
      return controlFrame(TYPE_SYN_STREAM, flags, concat([head, f.headerBlock]));
    }
    case "syn_reply":
      return controlFrame(TYPE_SYN_REPLY, f.fin ? FLAG_FIN : 0, concat([u32s(f.streamId & 0x7fff_ffff), f.headerBlock]));
    case "headers":
      return controlFrame(TYPE_HEADERS, f.fin ? FLAG_FIN : 0, concat([u32s(f.streamId & 0x7fff_ffff), f.headerBlock]));
    case "rst_stream":
      return controlFrame(TYPE_RST_STREAM, 0, u32s(f.streamId & 0x7fff_ffff, f.status));
    case "settings": {
      const body = new Uint8Array(4 + 8 * f.entries.length);
      const v = new DataView(body.buffer);
      v.setUint32(0, f.entries.length);
      f.entries.forEach((e, i) => {
        v.setUint32(4 + 8 * i, ((e.flags & 0xff) << 24) | (e.id & 0xff_ffff));
        v.setUint32(8 + 8 * i, e.value >>> 0);
      });
      return controlFrame(TYPE_SETTINGS, f.clear ? FLAG_SETTINGS_CLEAR : 0, body);
    }
    case "ping":
      return controlFrame(TYPE_PING, 0, u32s(f.id));
    case "goaway":
      return controlFrame(TYPE_GOAWAY, 0, u32s(f.lastGoodStreamId & 0x7fff_ffff, f.status));
    case "window_update":
      return controlFrame(TYPE_WINDOW_UPDATE, 0, u32s(f.streamId & 0x7fff_ffff, f.delta & 0x7fff_ffff));
    case "unknown":
      return controlFrame(f.controlType, f.flags, f.body);
  }
}

// ------------------------------------------------------------- decoding

/** Decodes one frame from its 8-byte head and its body (the caller split them off). */
export function decodeFrame(head: Uint8Array, body: Uint8Array): SpdyFrame {
  const hv = new DataView(head.buffer, head.byteOffset, 8);
  const first = hv.getUint32(0);
  const flags = head[4];
  if ((first & 0x8000_0000) === 0) {
    const streamId = first & 0x7fff_ffff;
    if (streamId === 0) throw new SpdyProtocolError("data frame on stream 0");
    return { type: "data", streamId, fin: (flags & FLAG_FIN) !== 0, data: body };
  }
  const version = (first >>> 16) & 0x7fff;
  const type = first & 0xffff;
  if (version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${version}`);
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const need = (n: number, exact = false) => {
    if (exact ? body.length !== n : body.length < n) {
      throw new SpdyProtocolError(`control frame type ${type} with a body of ${body.length} bytes`);
    }
  };
  const fin = (flags & FLAG_FIN) !== 0;
  switch (type) {
    case TYPE_SYN_STREAM: {
      need(10);
      const streamId = v.getUint32(0) & 0x7fff_ffff;
      if (streamId === 0) throw new SpdyProtocolError("SYN_STREAM for stream 0");
      return {
        type: "syn_stream",
        streamId,
        associatedTo: v.getUint32(4) & 0x7fff_ffff,
        priority: body[8] >>> 5,
        slot: body[9],
        fin,
        unidirectional: (flags & FLAG_UNIDIRECTIONAL) !== 0,
        headerBlock: body.subarray(10),
      };
    }
    case TYPE_SYN_REPLY:
    case TYPE_HEADERS: {
      need(4);
      const streamId = v.getUint32(0) & 0x7fff_ffff;
      if (streamId === 0) throw new SpdyProtocolError(`control frame type ${type} for stream 0`);
      return { type: type === TYPE_SYN_REPLY ? "syn_reply" : "headers", streamId, fin, headerBlock: body.subarray(4) };
    }
    case TYPE_RST_STREAM:
      need(8, true);
      return { type: "rst_stream", streamId: v.getUint32(0) & 0x7fff_ffff, status: v.getUint32(4) };
    case TYPE_SETTINGS: {
      need(4);
      const n = v.getUint32(0);
      if (body.length !== 4 + 8 * n) throw new SpdyProtocolError(`SETTINGS with ${n} entries in ${body.length} bytes`);
      const entries: { id: number; flags: number; value: number }[] = [];
      for (let i = 0; i < n; i++) {
        const fid = v.getUint32(4 + 8 * i);
        entries.push({ flags: fid >>> 24, id: fid & 0xff_ffff, value: v.getUint32(8 + 8 * i) });
      }
      return { type: "settings", clear: (flags & FLAG_SETTINGS_CLEAR) !== 0, entries };
    }
    case TYPE_PING:
      need(4, true);
      return { type: "ping", id: v.getUint32(0) };
    case TYPE_GOAWAY:
      need(8, true);
      return { type: "goaway", lastGoodStreamId: v.getUint32(0) & 0x7fff_ffff, status: v.getUint32(4) };
    case TYPE_WINDOW_UPDATE:
      need(8, true);
      return { type: "window_update", streamId: v.getUint32(0) & 0x7fff_ffff, delta: v.getUint32(4) & 0x7fff_ffff };
    default:
      return { type: "unknown", controlType: type, flags, body };
  }
}

/**
 * Splits an incremental byte stream into frames. push() takes the next chunk (any size,
 * frame boundaries anywhere) and returns the frames it completed; bodies are views of
 * the pushed chunks when a body lies within one chunk (the caller must not reuse them).
 * Throws SpdyProtocolError for a malformed frame, after which the parser is unusable.
 */
export class FrameParser {
  private chunks: Uint8Array[] = [];
  private offset = 0; // into chunks[0]
  private size = 0; // bytes buffered
  private head: Uint8Array | null = null; // the current frame's 8 bytes, once complete
  private length = 0;

  /** Bytes received but not yet part of a returned frame. */
  get buffered(): number {
    return this.size + (this.head ? 8 : 0);
  }

  push(chunk: Uint8Array): SpdyFrame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    const out: SpdyFrame[] = [];
    for (;;) {
      if (!this.head) {
        if (this.size < 8) break;
        this.head = this.take(8);
        this.length = ((this.head[5] << 16) | (this.head[6] << 8) | this.head[7]) >>> 0;
      }
      if (this.size < this.length) break;
      const head = this.head;
      this.head = null;
      out.push(decodeFrame(head, this.take(this.length)));
    }
    return out;
  }

  /** The next n buffered bytes: a view when they lie in one chunk, else a copy. */
  private take(n: number): Uint8Array {
    this.size -= n;
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) {
        this.chunks.shift();
        this.offset = 0;
      }
      return out;
    }
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0];
      const k = Math.min(n - o, c.length - this.offset);
      out.set(c.subarray(this.offset, this.offset + k), o);
      o += k;
      this.offset += k;
      if (this.offset === c.length) {
        this.chunks.shift();
        this.offset = 0;
      }
    }
    return out;
  }
}

// ------------------------------------------------------------- header blocks

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An uncompressed header block; names are lowercased, several values joined by NUL. */
export function encodeHeaderBlock(headers: Iterable<[string, string | string[]]>): Uint8Array {
  const parts: Uint8Array[] = [];
  let count = 0;
  for (const [name, value] of headers) {
    const n = enc.encode(name.toLowerCase());
    const val = enc.encode(Array.isArray(value) ? value.join("\0") : value);
    parts.push(u32s(n.length), n, u32s(val.length), val);
    count++;
  }
  return concat([u32s(count), ...parts]);
}

/** Parses an uncompressed header block; a repeated name adds values. */
export function decodeHeaderBlock(b: Uint8Array): Headers {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  const u32 = () => {
    if (o + 4 > b.length) throw new SpdyProtocolError("truncated header block");
    const x = v.getUint32(o);
    o += 4;
    return x;
  };
  const bytes = (n: number) => {
    if (o + n > b.length) throw new SpdyProtocolError("truncated header block");
    const x = b.subarray(o, o + n);
    o += n;
    return x;
  };
  const count = u32();
  const headers: Headers = new Map();
  for (let i = 0; i < count; i++) {
    const name = dec.decode(bytes(u32())).toLowerCase();
    const values = dec.decode(bytes(u32())).split("\0");
    const prev = headers.get(name);
    if (prev) prev.push(...values);
    else headers.set(name, values);
  }
  if (o !== b.length) throw new SpdyProtocolError(`${b.length - o} bytes after the header block`);
  return headers;
}

/** The first value of a header, or undefined. */
export function header(h: Headers, name: string): string | undefined {
  return h.get(name.toLowerCase())?.[0];
}

// ------------------------------------------------------------- compression

// The SPDY/3 header dictionary (SPDY Protocol Draft 3, 2.6.10.1): length-prefixed header
// names and values, then common status lines, dates and media types.
const DICTIONARY_WORDS = [
  "options",
  "head",
  "post",
  "put",
  "delete",
  "trace",
  "accept",
  "accept-charset",
  "accept-encoding",
  "accept-language",
  "accept-ranges",
  "age",
  "allow",
  "authorization",
  "cache-control",
  "connection",
  "content-base",
  "content-encoding",
  "content-language",
  "content-length",
  "content-location",
  "content-md5",
  "content-range",
  "content-type",
  "date",
  "etag",
  "expect",
  "expires",
  "from",
  "host",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "pragma",
  "proxy-authenticate",
  "proxy-authorization",
  "range",
  "referer",
  "retry-after",
  "server",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "vary",
  "via",
  "warning",
  "www-authenticate",
  "method",
  "get",
  "status",
  "200 OK",
  "version",
  "HTTP/1.1",
  "url",
  "public",
  "set-cookie",
  "keep-alive",
  "origin",
];
const DICTIONARY_TAIL =
  "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505" +
  "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request" +
  "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented" +
  "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 " +
  "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif," +
  "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=" +
  "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/** The 1423-byte zlib dictionary both directions' header compression is primed with. */
export const HEADER_DICTIONARY: Uint8Array = concat([
  ...DICTIONARY_WORDS.flatMap((w) => [u32s(w.length), enc.encode(w)]),
  enc.encode(DICTIONARY_TAIL),
]);

/** Largest decompressed header block accepted (a guard against zlib bombs). */
const MAX_HEADER_BLOCK = 256 * 1024;

type ZlibStream = zlib.Deflate | zlib.Inflate;

/**
 * One direction's zlib stream: each call feeds one frame's bytes, sync-flushes, and
 * resolves with exactly the output of that flush. Calls run one at a time, in call order
 * (the zlib state is shared by every frame of the connection, so order is the protocol).
 * After a zlib error every later call rejects.
 */
class ZlibChannel {
  private readonly z: ZlibStream;
  private readonly limit: number;
  private out: Buffer[] = [];
  private outBytes = 0;
  private error: Error | null = null;
  private current: { resolve(b: Uint8Array): void; reject(e: Error): void } | null = null;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(z: ZlibStream, limit: number) {
    this.z = z;
    this.limit = limit;
    z.on("data", (b: Buffer) => {
      this.out.push(b);
      this.outBytes += b.length;
      if (this.outBytes > this.limit) this.fail(new SpdyProtocolError("header block too large"));
    });
    z.on("error", (e: Error) => this.fail(new SpdyProtocolError(`header compression: ${e.message}`)));
  }

  run(input: Uint8Array): Promise<Uint8Array> {
    const p = this.tail.then(
      () =>
        new Promise<Uint8Array>((resolve, reject) => {
          if (this.error) return reject(this.error);
          this.current = { resolve, reject };
          this.out = [];
          this.outBytes = 0;
          if (input.length > 0) this.z.write(input);
          // The output of a write is emitted before the flush's callback runs (the order
          // ws's permessage-deflate relies on too).
          this.z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            const c = this.current;
            this.current = null;
            if (!c) return;
            if (this.error) c.reject(this.error);
            else c.resolve(new Uint8Array(Buffer.concat(this.out, this.outBytes)));
            this.out = [];
          });
        }),
    );
    this.tail = p.catch(() => {});
    return p;
  }

  /** Fails the call in progress and every later one; a closed zlib never calls back. */
  private fail(e: Error): void {
    if (this.error) return;
    this.error = e;
    const c = this.current;
    this.current = null;
    c?.reject(e);
    this.z.close();
  }

  close(): void {
    this.fail(new SpdyProtocolError("header compression closed"));
  }
}

/** Compresses the header blocks one side sends on one connection. */
export class HeaderDeflater {
  private readonly ch = new ZlibChannel(zlib.createDeflate({ dictionary: HEADER_DICTIONARY }), Number.POSITIVE_INFINITY);

  /** The compressed form of one header block (encodeHeaderBlock), to put in one frame. */
  compress(block: Uint8Array): Promise<Uint8Array> {
    return this.ch.run(block);
  }

  close(): void {
    this.ch.close();
  }
}

/** Decompresses the header blocks one side receives on one connection. */
export class HeaderInflater {
  private readonly ch = new ZlibChannel(zlib.createInflate({ dictionary: HEADER_DICTIONARY }), MAX_HEADER_BLOCK);

  /**
   * One frame's compressed header block, decompressed (decodeHeaderBlock parses it).
   * Every header block the peer sends must pass through here in order, including those
   * of frames that are then ignored, or the shared zlib state goes out of step.
   */
  decompress(compressed: Uint8Array): Promise<Uint8Array> {
    return this.ch.run(compressed);
  }

  close(): void {
    this.ch.close();
  }
}
