// SPDY/3.1 framing and header compression (node-agent/spdy.ts): round trips of every
// frame type, incremental parsing with frames split anywhere, and the exact bytes
// kubectl 1.32 sends when it opens a forwarded connection.

import { describe, expect, it } from "vitest";
import {
  decodeHeaderBlock,
  encodeFrame,
  encodeHeaderBlock,
  FrameParser,
  HEADER_DICTIONARY,
  HeaderDeflater,
  HeaderInflater,
  header,
  type SpdyFrame,
  SpdyProtocolError,
} from "../../node-agent/spdy.ts";

const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const utf8 = (s: string) => new TextEncoder().encode(s);

function adler32(b: Uint8Array): number {
  let a = 1;
  let s = 0;
  for (const x of b) {
    a = (a + x) % 65521;
    s = (s + a) % 65521;
  }
  return ((s << 16) | a) >>> 0;
}

const FRAMES: SpdyFrame[] = [
  { type: "data", streamId: 3, fin: false, data: utf8("hello") },
  { type: "data", streamId: 0x7fff_ffff, fin: true, data: new Uint8Array(0) },
  {
    type: "syn_stream",
    streamId: 5,
    associatedTo: 0,
    priority: 7,
    slot: 0,
    fin: false,
    unidirectional: true,
    headerBlock: hex("0102030405"),
  },
  { type: "syn_reply", streamId: 5, fin: true, headerBlock: hex("aabb") },
  { type: "headers", streamId: 7, fin: false, headerBlock: new Uint8Array(0) },
  { type: "rst_stream", streamId: 9, status: 5 },
  {
    type: "settings",
    clear: true,
    entries: [
      { id: 7, flags: 1, value: 65536 },
      { id: 4, flags: 0, value: 100 },
    ],
  },
  { type: "ping", id: 0xffff_fffe },
  { type: "goaway", lastGoodStreamId: 11, status: 1 },
  { type: "window_update", streamId: 0, delta: 0x7fff_ffff },
  { type: "unknown", controlType: 0x42, flags: 3, body: hex("00ff") },
];

describe("frames", () => {
  it.each(FRAMES.map((f) => [f.type, f] as const))("round-trips %s", (_, f) => {
    expect(new FrameParser().push(encodeFrame(f))).toEqual([f]);
  });

  it("parses frames split at every byte and frames batched in one chunk alike", () => {
    const wire = Buffer.concat(FRAMES.map(encodeFrame));
    const parser = new FrameParser();
    const byByte: SpdyFrame[] = [];
    for (const b of wire) byByte.push(...parser.push(Uint8Array.of(b)));
    expect(byByte).toEqual(FRAMES);
    expect(parser.buffered).toBe(0);
    expect(new FrameParser().push(new Uint8Array(wire))).toEqual(FRAMES);
  });

  it("parses frames split at random places, with empty chunks", () => {
    const wire = new Uint8Array(Buffer.concat([...FRAMES, ...FRAMES].map(encodeFrame)));
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fff_ffff;
      return seed % n;
    };
    for (let round = 0; round < 50; round++) {
      const parser = new FrameParser();
      const got: SpdyFrame[] = [];
      for (let o = 0; o < wire.length; ) {
        const n = rnd(40);
        got.push(...parser.push(wire.subarray(o, o + n)));
        o += n;
      }
      expect(got).toEqual([...FRAMES, ...FRAMES]);
    }
  });

  it("holds a partial frame until its last byte arrives", () => {
    const f = encodeFrame({ type: "data", streamId: 1, fin: false, data: new Uint8Array(1000).fill(9) });
    const parser = new FrameParser();
    expect(parser.push(f.subarray(0, 3))).toEqual([]);
    expect(parser.push(f.subarray(3, 999))).toEqual([]);
    expect(parser.buffered).toBe(999);
    const [got] = parser.push(f.subarray(999));
    expect(got).toMatchObject({ type: "data", streamId: 1, fin: false });
    expect((got as { data: Uint8Array }).data).toEqual(new Uint8Array(1000).fill(9));
  });

  it("rejects other SPDY versions, data on stream 0 and control frames of the wrong size", () => {
    const v2 = encodeFrame({ type: "ping", id: 1 });
    v2[1] = 2;
    expect(() => new FrameParser().push(v2)).toThrow(SpdyProtocolError);
    expect(() => new FrameParser().push(hex("0000000000000000"))).toThrow(/stream 0/);
    const rst = encodeFrame({ type: "rst_stream", streamId: 1, status: 1 });
    rst[7] = 4; // a 4-byte body, cut short
    expect(() => new FrameParser().push(rst.subarray(0, 12))).toThrow(SpdyProtocolError);
    const settings = encodeFrame({ type: "settings", clear: false, entries: [{ id: 7, flags: 0, value: 1 }] });
    settings[11] = 2; // claims two entries
    expect(() => new FrameParser().push(settings)).toThrow(/SETTINGS/);
  });
});

describe("header blocks", () => {
  it("round-trips names (lowercased) and several values per name", () => {
    const b = encodeHeaderBlock([
      ["StreamType", "data"],
      ["port", "8080"],
      ["x-multi", ["a", "b", ""]],
    ]);
    const h = decodeHeaderBlock(b);
    expect([...h]).toEqual([
      ["streamtype", ["data"]],
      ["port", ["8080"]],
      ["x-multi", ["a", "b", ""]],
    ]);
    expect(header(h, "StreamType")).toBe("data");
    expect(decodeHeaderBlock(encodeHeaderBlock([]))).toEqual(new Map());
  });

  it("rejects truncated blocks and trailing bytes", () => {
    const b = encodeHeaderBlock([["port", "8080"]]);
    expect(() => decodeHeaderBlock(b.subarray(0, b.length - 1))).toThrow(SpdyProtocolError);
    expect(() => decodeHeaderBlock(new Uint8Array([...b, 0]))).toThrow(SpdyProtocolError);
  });

  it("uses the 1423-byte SPDY/3 dictionary", () => {
    expect(HEADER_DICTIONARY.length).toBe(1423);
    expect(adler32(HEADER_DICTIONARY)).toBe(0xe3c6a7c2);
  });

  it("compresses block after block on one zlib stream, each decompressible on arrival", async () => {
    const deflater = new HeaderDeflater();
    const inflater = new HeaderInflater();
    const blocks = [0, 1, 2, 3, 4].map((i) =>
      encodeHeaderBlock([
        ["streamtype", i % 2 ? "data" : "error"],
        ["port", "8080"],
        ["requestid", String(i)],
      ]),
    );
    const compressed = await Promise.all(blocks.map((b) => deflater.compress(b)));
    // Later blocks reuse the earlier ones' context.
    expect(compressed[3].length).toBeLessThan(compressed[0].length);
    for (let i = 0; i < blocks.length; i++) expect(await inflater.decompress(compressed[i])).toEqual(blocks[i]);
    // A block out of turn cannot be read: the state is the connection's.
    const fresh = new HeaderInflater();
    await expect(fresh.decompress(compressed[2])).rejects.toThrow(SpdyProtocolError);
    await expect(fresh.decompress(compressed[3])).rejects.toThrow(SpdyProtocolError);
    deflater.close();
    inflater.close();
    await expect(deflater.compress(blocks[0])).rejects.toThrow(/closed/);
  });

  it("refuses a header block that inflates beyond the limit", async () => {
    const deflater = new HeaderDeflater();
    const big = await deflater.compress(encodeHeaderBlock([["x", "a".repeat(300 * 1024)]]));
    await expect(new HeaderInflater().decompress(big)).rejects.toThrow(/too large/);
    deflater.close();
  });
});

// The WebSocket messages kubectl 1.32.4 sent when curl made one request through
// `kubectl port-forward pod/x 18090:18081` (SPDY tunnelled over WebSocket): its SPDY
// writes a frame in several pieces, every piece a message (one of them empty).
const KUBECTL_MESSAGES = [
  // SYN_STREAM 1: streamtype=error, port=18081, requestid=0
  "8003",
  "0001",
  "0000003f",
  "00000001",
  "00000000",
  "00",
  "00",
  "78f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45a024cc6a686160014aa09c459078cc04a56f460300000000ffff",
  // DATA 1, FIN: kubectl does not write on the error stream
  "00000001",
  "01000000",
  "",
  // SYN_STREAM 3: streamtype=data, same port and request id (compressed against the first)
  "8003",
  "0001",
  "00000018",
  "00000003",
  "00000000",
  "00",
  "00",
  "c2aa1b54102512a119000000ffff",
  // DATA 3: the request
  "00000003",
  "00000052",
  "474554202f61626320485454502f312e310d0a486f73743a203132372e302e302e313a31383039300d0a557365722d4167656e743a206375726c2f372e38382e310d0a4163636570743a202a2f2a0d0a0d0a",
  // DATA 3, FIN: the local connection is over
  "00000003",
  "01000000",
];

describe("kubectl's bytes", () => {
  it("parses kubectl 1.32's opening of a forwarded connection, message by message", async () => {
    const parser = new FrameParser();
    const inflater = new HeaderInflater();
    const frames: SpdyFrame[] = [];
    for (const m of KUBECTL_MESSAGES) frames.push(...parser.push(hex(m)));
    expect(frames.map((f) => f.type)).toEqual(["syn_stream", "data", "syn_stream", "data", "data"]);

    const [errSyn, errFin, dataSyn, request, dataFin] = frames;
    if (errSyn.type !== "syn_stream" || dataSyn.type !== "syn_stream") throw new Error("unreachable");
    expect(errSyn).toMatchObject({ streamId: 1, associatedTo: 0, priority: 0, fin: false, unidirectional: false });
    const errHeaders = decodeHeaderBlock(await inflater.decompress(errSyn.headerBlock));
    expect(Object.fromEntries(errHeaders)).toEqual({ streamtype: ["error"], port: ["18081"], requestid: ["0"] });
    expect(errFin).toEqual({ type: "data", streamId: 1, fin: true, data: new Uint8Array(0) });

    expect(dataSyn.streamId).toBe(3);
    const dataHeaders = decodeHeaderBlock(await inflater.decompress(dataSyn.headerBlock));
    expect(Object.fromEntries(dataHeaders)).toEqual({ streamtype: ["data"], port: ["18081"], requestid: ["0"] });

    expect(request).toMatchObject({ type: "data", streamId: 3, fin: false });
    expect(new TextDecoder().decode((request as { data: Uint8Array }).data)).toMatch(/^GET \/abc HTTP\/1.1\r\n/);
    expect(dataFin).toEqual({ type: "data", streamId: 3, fin: true, data: new Uint8Array(0) });
    inflater.close();
  });
});
