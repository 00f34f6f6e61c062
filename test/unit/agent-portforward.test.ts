// `kubectl port-forward` through the agent's handler (node-agent/streams/portforward.ts):
// two real Mux instances back to back (control plane and agent), real TCP servers on
// 127.0.0.1 as the pod, and on the control plane's side a SPDY client built from
// node-agent/spdy.ts that behaves as kubectl 1.32 does (error stream, then data stream,
// per forwarded connection; frames written in pieces), or a v4 channel client.

import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  encodeFrame,
  encodeHeaderBlock,
  FrameParser,
  HeaderDeflater,
  HeaderInflater,
  RST_CANCEL,
  type SpdyFrame,
} from "../../node-agent/spdy.ts";
import { createPortForwardHandler, PROTOCOL_SPDY_TUNNEL } from "../../node-agent/streams/portforward.ts";
import type { StreamDeps } from "../../node-agent/streams/types.ts";
import { Mux, type StreamHeader, type TunnelStream } from "../../workers/shared/tunnel.ts";

const MB = 1024 * 1024;
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

// ------------------------------------------------------------- fixtures

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A TCP server on 127.0.0.1 playing the pod; tracks its open connections. */
async function newPod(onConn: (s: net.Socket) => void): Promise<{ port: number; open: () => number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, open: () => sockets.size };
}

/** Echoes, and half-closes when the client does. */
const echoPod = () => newPod((s) => s.pipe(s));

/** A port nothing listens on. */
async function refusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** The control plane and the agent, wired back to back; open() is what the control plane does for kubectl. */
function newTunnel() {
  const logs: string[] = [];
  const handlers: Promise<void>[] = [];
  const handler = createPortForwardHandler({ lingerMs: 100 });
  const deps = { log: (m: string) => logs.push(m), podIP: () => undefined } as Partial<StreamDeps> as StreamDeps;
  const cp: Mux = new Mux({ side: "control-plane", send: (f) => queueMicrotask(() => agent.receive(f)) });
  const agent: Mux = new Mux({
    side: "agent",
    send: (f) => queueMicrotask(() => cp.receive(f)),
    onOpen: (s) => handlers.push(handler(s, deps)),
  });
  cleanups.push(() => {
    cp.close();
    agent.close();
  });
  const open = (h: Partial<StreamHeader>) =>
    cp.open({ kind: "portforward", namespace: "default", pod: "web", uid: "u1", podIP: "127.0.0.1", ...h });
  return { open, logs, handlers };
}

// ------------------------------------------------------------- kubectl's SPDY side

class ClientStream {
  readonly id: number;
  readonly chunks: Uint8Array[] = [];
  received = 0;
  replied = false;
  fin = false;
  reset: number | null = null;

  constructor(id: number) {
    this.id = id;
  }

  get ended(): boolean {
    return this.fin || this.reset !== null;
  }

  bytes(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.chunks));
  }
}

/** The SPDY client kubectl runs over the WebSocket, reduced to what a port-forward does. */
class KubectlSpdy {
  readonly streams = new Map<number, ClientStream>();
  readonly pongs: number[] = [];
  readonly other: SpdyFrame[] = [];
  closed = false;
  /** While set, the client reads nothing from the tunnel. */
  hold: Promise<void> | null = null;
  private readonly tunnel: TunnelStream;
  private readonly parser = new FrameParser();
  private readonly deflater = new HeaderDeflater();
  private readonly inflater = new HeaderInflater();
  private nextId = 1;
  private tail: Promise<void> = Promise.resolve();

  constructor(tunnel: TunnelStream) {
    this.tunnel = tunnel;
    cleanups.push(() => {
      this.deflater.close();
      this.inflater.close();
    });
    void this.readLoop();
  }

  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        if (this.hold) await this.hold;
        const chunk = await this.tunnel.read();
        if (chunk === null) break;
        for (const f of this.parser.push(chunk)) await this.onFrame(f);
      }
    } catch {}
    this.closed = true;
  }

  private async onFrame(f: SpdyFrame): Promise<void> {
    switch (f.type) {
      case "syn_reply": {
        await this.inflater.decompress(f.headerBlock);
        const s = this.streams.get(f.streamId);
        if (s) s.replied = true;
        return;
      }
      case "data": {
        const s = this.streams.get(f.streamId);
        if (!s) return;
        s.chunks.push(f.data);
        s.received += f.data.length;
        if (f.fin) s.fin = true;
        return;
      }
      case "rst_stream": {
        const s = this.streams.get(f.streamId);
        if (s) s.reset = f.status;
        return;
      }
      case "ping":
        this.pongs.push(f.id);
        return;
      default:
        this.other.push(f);
    }
  }

  /** Writes a frame as Go's framer does: the 8-byte head in two pieces, then the body. */
  private send(make: () => Promise<Uint8Array> | Uint8Array): Promise<void> {
    const p = this.tail.then(async () => {
      const b = await make();
      await this.tunnel.write(b.subarray(0, 4));
      await this.tunnel.write(b.subarray(4, 8));
      if (b.length > 8) await this.tunnel.write(b.subarray(8));
    });
    this.tail = p.catch(() => {});
    return p;
  }

  /** Opens a stream and waits for the server's answer (a reply or a reset). */
  async open(headers: [string, string][]): Promise<ClientStream> {
    const s = new ClientStream(this.nextId);
    this.nextId += 2;
    this.streams.set(s.id, s);
    await this.send(async () =>
      encodeFrame({
        type: "syn_stream",
        streamId: s.id,
        associatedTo: 0,
        priority: 0,
        slot: 0,
        fin: false,
        unidirectional: false,
        headerBlock: await this.deflater.compress(encodeHeaderBlock(headers)),
      }),
    );
    await until(`stream ${s.id} answered`, () => s.replied || s.reset !== null);
    return s;
  }

  /** kubectl's handleConnection: an error stream it half-closes at once, then a data stream. */
  async forward(port: number, requestId: number): Promise<{ error: ClientStream; data: ClientStream }> {
    const h: [string, string][] = [
      ["streamtype", "error"],
      ["port", String(port)],
      ["requestid", String(requestId)],
    ];
    const error = await this.open(h);
    void this.write(error.id, new Uint8Array(0), true);
    const data = await this.open([["streamtype", "data"], ...h.slice(1)]);
    return { error, data };
  }

  /** Data in frames of at most 32 KB (io.Copy's buffer), the last one with fin if asked. */
  write(id: number, b: Uint8Array, fin = false): Promise<void> {
    let last: Promise<void> = Promise.resolve();
    for (let o = 0; o < b.length || (o === 0 && b.length === 0); o += 32 * 1024) {
      const piece = b.subarray(o, o + 32 * 1024);
      const isLast = o + 32 * 1024 >= b.length;
      last = this.send(() => encodeFrame({ type: "data", streamId: id, fin: fin && isLast, data: piece }));
      if (b.length === 0) break;
    }
    return last;
  }

  rst(id: number, status = RST_CANCEL): Promise<void> {
    return this.send(() => encodeFrame({ type: "rst_stream", streamId: id, status }));
  }

  ping(id: number): Promise<void> {
    return this.send(() => encodeFrame({ type: "ping", id }));
  }
}

function spdySession() {
  const t = newTunnel();
  const tunnel = t.open({ protocol: PROTOCOL_SPDY_TUNNEL });
  return { ...t, tunnel, kubectl: new KubectlSpdy(tunnel) };
}

// ------------------------------------------------------------- SPDY

describe("port-forward over SPDY (kubectl 1.31+)", () => {
  it("answers 200 and forwards two concurrent connections, each to its own pod connection", async () => {
    const pod = await echoPod();
    const { tunnel, kubectl } = spdySession();
    expect(await tunnel.waitReply()).toEqual({ code: 200 });

    const [a, b] = await Promise.all([kubectl.forward(pod.port, 0), kubectl.forward(pod.port, 1)]);
    await Promise.all([kubectl.write(a.data.id, utf8("alpha")), kubectl.write(b.data.id, utf8("beta"))]);
    await until("both echoes", () => a.data.received === 5 && b.data.received === 4);
    expect(text(a.data.bytes())).toBe("alpha");
    expect(text(b.data.bytes())).toBe("beta");
    expect(pod.open()).toBe(2);

    // The local client of a is done: the pod sees the half-close, answers with its own,
    // and the error stream ends empty (success).
    await kubectl.write(a.data.id, utf8("!"), true);
    await until("a over", () => a.data.fin && a.error.fin);
    expect(text(a.data.bytes())).toBe("alpha!");
    expect(a.error.received).toBe(0);

    // b is untouched.
    await kubectl.write(b.data.id, utf8("-again"));
    await until("b echo", () => b.data.received === 10);
    expect(text(b.data.bytes())).toBe("beta-again");
    await kubectl.write(b.data.id, new Uint8Array(0), true);
    await until("b over", () => b.data.fin && b.error.fin);
    await until("pod connections closed", () => pod.open() === 0);
  });

  it("carries 5 MB each way intact", { timeout: 60_000 }, async () => {
    const down = randomBytes(5 * MB);
    let upHash = "";
    const pod = await newPod((s) => {
      const h = createHash("sha256");
      s.on("data", (c) => h.update(c));
      s.on("end", () => {
        upHash = h.digest("hex");
        s.end();
      });
      s.write(down);
    });
    const { kubectl } = spdySession();
    const { error, data } = await kubectl.forward(pod.port, 0);
    const up = randomBytes(5 * MB);
    await kubectl.write(data.id, up, true);
    await until("both directions", () => data.fin && upHash !== "", 50_000);
    expect(upHash).toBe(sha(up));
    expect(data.received).toBe(down.length);
    expect(sha(data.bytes())).toBe(sha(down));
    await until("error stream ends", () => error.fin);
    expect(error.received).toBe(0);
    // Window granted back as the pod took the bytes: for the stream and the session.
    const updates = kubectl.other.filter((f) => f.type === "window_update");
    expect(updates.some((f) => f.streamId === data.id)).toBe(true);
    expect(updates.some((f) => f.streamId === 0)).toBe(true);
  });

  it("reports a refused port on the error stream and keeps serving the session", async () => {
    const refused = await refusedPort();
    const pod = await echoPod();
    const { kubectl, logs } = spdySession();

    const bad = await kubectl.forward(refused, 0);
    await until("error stream ends", () => bad.error.fin);
    expect(text(bad.error.bytes())).toMatch(new RegExp(`^error forwarding port ${refused} to pod default/web, uid u1: .*ECONNREFUSED`));
    await until("data stream ends", () => bad.data.ended);
    expect(logs.join("\n")).toMatch(/ECONNREFUSED/);

    const good = await kubectl.forward(pod.port, 1);
    await kubectl.write(good.data.id, utf8("still here"), true);
    await until("echo", () => good.data.fin && good.error.fin);
    expect(text(good.data.bytes())).toBe("still here");
    expect(good.error.received).toBe(0);
  });

  it("answers pings and resets streams without a valid port or stream type", async () => {
    const { kubectl } = spdySession();
    await kubectl.ping(1);
    await until("pong", () => kubectl.pongs.includes(1));
    const noPort = await kubectl.open([["streamtype", "data"]]);
    expect(noPort.reset).toBe(RST_CANCEL);
    const badType = await kubectl.open([
      ["streamtype", "stdin"],
      ["port", "80"],
    ]);
    expect(badType.reset).toBe(RST_CANCEL);
    const badPort = await kubectl.open([
      ["streamtype", "data"],
      ["port", "70000"],
    ]);
    expect(badPort.reset).toBe(RST_CANCEL);
  });

  it("closes the pod connection and ends the error stream when kubectl resets the data stream", async () => {
    const pod = await echoPod();
    const { kubectl } = spdySession();
    const { error, data } = await kubectl.forward(pod.port, 0);
    await kubectl.write(data.id, utf8("x"));
    await until("echo", () => data.received === 1);
    await kubectl.rst(data.id);
    await until("error stream ends", () => error.fin);
    await until("pod connection closed", () => pod.open() === 0);
  });

  it("pairs streams by id for clients without requestid (error n, data n+2)", async () => {
    const pod = await echoPod();
    const { kubectl } = spdySession();
    const error = await kubectl.open([
      ["streamtype", "error"],
      ["port", String(pod.port)],
    ]);
    const data = await kubectl.open([
      ["streamtype", "data"],
      ["port", String(pod.port)],
    ]);
    await kubectl.write(data.id, utf8("old"), true);
    await until("echo", () => data.fin && error.fin);
    expect(text(data.bytes())).toBe("old");
  });

  it("closes every pod connection and returns when the client goes away", async () => {
    const pod = await echoPod();
    const { kubectl, tunnel, handlers } = spdySession();
    const a = await kubectl.forward(pod.port, 0);
    const b = await kubectl.forward(pod.port, 1);
    await kubectl.write(a.data.id, utf8("a"));
    await kubectl.write(b.data.id, utf8("b"));
    await until("echoes", () => a.data.received === 1 && b.data.received === 1);
    expect(pod.open()).toBe(2);

    tunnel.end(); // the WebSocket closed
    await handlers[0];
    await until("pod connections closed", () => pod.open() === 0);
    await until("agent's side ended", () => kubectl.closed);
  });

  it("stops taking the client's bytes while the pod does not read, and loses none", { timeout: 60_000 }, async () => {
    let podSocket: net.Socket | null = null;
    let got = 0;
    const hash = createHash("sha256");
    const pod = await newPod((s) => {
      podSocket = s;
      s.pause();
      s.on("data", (c) => {
        got += c.length;
        hash.update(c);
      });
    });
    const { kubectl, tunnel } = spdySession();
    const { data } = await kubectl.forward(pod.port, 0);
    const up = randomBytes(24 * MB);
    let written = false;
    const writing = kubectl.write(data.id, up).then(() => {
      written = true;
    });
    await sleep(1000);
    // Kernel buffers take some megabytes; the rest waits in kubectl for tunnel credit.
    expect(written).toBe(false);
    expect(tunnel.window).toBeLessThanOrEqual(0);
    expect(got).toBe(0);

    (podSocket as net.Socket | null)?.resume();
    await writing;
    await until("all bytes at the pod", () => got === up.length, 50_000);
    expect(hash.digest("hex")).toBe(sha(up));
  });

  it("pauses the pod while the client does not read, and loses none", { timeout: 60_000 }, async () => {
    const down = randomBytes(24 * MB);
    let flushed = 0;
    const pod = await newPod(async (s) => {
      for (let o = 0; o < down.length; o += 64 * 1024) {
        if (!s.write(down.subarray(o, o + 64 * 1024))) await new Promise((r) => s.once("drain", r));
        flushed = o;
      }
      s.end();
    });
    const { kubectl } = spdySession();
    const { data } = await kubectl.forward(pod.port, 0);
    let release: () => void = () => {};
    kubectl.hold = new Promise((r) => {
      release = r;
    });
    await sleep(1000);
    expect(flushed).toBeLessThan(down.length / 2);

    release();
    kubectl.hold = null;
    await until("all bytes at kubectl", () => data.fin, 50_000);
    expect(data.received).toBe(down.length);
    expect(sha(data.bytes())).toBe(sha(down));
  });
});

// ------------------------------------------------------------- channels

/** The v4 channel client: every message is [channel][bytes]. */
function channelSession(protocol: string, ports: number[]) {
  const t = newTunnel();
  const tunnel = t.open({ protocol, ports });
  const channels = new Map<number, Uint8Array[]>();
  let ended = false;
  void (async () => {
    try {
      for await (const m of tunnel) {
        const list = channels.get(m[0]) ?? [];
        list.push(m.subarray(1));
        channels.set(m[0], list);
      }
    } catch {}
    ended = true;
  })();
  const received = (ch: number) => Buffer.concat(channels.get(ch) ?? []);
  return { ...t, tunnel, channels, received, ended: () => ended };
}

const portLE = (p: number) => [p & 0xff, p >> 8];

describe("port-forward over the WebSocket channel protocol", () => {
  it("announces each port, forwards every port, and reports a refused one on its error channel", async () => {
    const pod = await echoPod();
    const refused = await refusedPort();
    const { tunnel, channels, received } = channelSession("v4.channel.k8s.io", [pod.port, refused]);
    expect(await tunnel.waitReply()).toEqual({ code: 200 });

    await until("error on channel 3", () => (channels.get(3)?.length ?? 0) >= 2);
    for (const [ch, port] of [
      [0, pod.port],
      [1, pod.port],
      [2, refused],
      [3, refused],
    ]) {
      expect([...(channels.get(ch)?.[0] ?? [])]).toEqual(portLE(port));
    }
    expect(text(channels.get(3)?.[1] ?? new Uint8Array())).toMatch(
      new RegExp(`^error forwarding port ${refused} to pod default/web, uid u1: .*ECONNREFUSED`),
    );

    await tunnel.write(new Uint8Array([0, ...utf8("ping")]));
    await tunnel.write(new Uint8Array([0, ...utf8("-pong")]));
    await until("echo", () => received(0).length === 2 + 9);
    expect(text(received(0).subarray(2))).toBe("ping-pong");
    expect(channels.get(1)?.length).toBe(1); // no error for the good port
  });

  it("carries 5 MB each way intact and ends once the pod connection is over", { timeout: 60_000 }, async () => {
    const down = randomBytes(5 * MB);
    const up = randomBytes(5 * MB);
    const h = createHash("sha256");
    let got = 0;
    let upHash = "";
    const pod = await newPod((s) => {
      s.write(down);
      s.on("data", (c) => {
        h.update(c);
        got += c.length;
        if (got === up.length) {
          upHash = h.digest("hex");
          s.end();
        }
      });
    });
    const { tunnel, received, ended, handlers } = channelSession("portforward.k8s.io", [pod.port]);
    for (let o = 0; o < up.length; o += 32 * 1024) {
      await tunnel.write(new Uint8Array([0, ...up.subarray(o, o + 32 * 1024)]));
    }
    await until("the agent ends the stream", ended, 50_000);
    await handlers[0];
    expect(upHash).toBe(sha(up));
    const r = received(0);
    expect(r.length).toBe(2 + down.length);
    expect(sha(r.subarray(2))).toBe(sha(down));
    expect(pod.open()).toBe(0);
  });

  it("closes the pod connections when the client goes away", async () => {
    const pod = await echoPod();
    const { tunnel, handlers } = channelSession("v4.channel.k8s.io", [pod.port, pod.port]);
    await until("two pod connections", () => pod.open() === 2);
    tunnel.end();
    await handlers[0];
    await until("pod connections closed", () => pod.open() === 0);
  });

  it("refuses an unknown protocol, and the channel protocol without ports", async () => {
    const t = newTunnel();
    expect(await t.open({ protocol: "v5.channel.k8s.io", ports: [80] }).waitReply()).toMatchObject({
      code: 400,
      reason: "BadRequest",
    });
    expect(await t.open({ protocol: "v4.channel.k8s.io", ports: [] }).waitReply()).toMatchObject({ code: 400 });
    expect(await t.open({ protocol: "v4.channel.k8s.io", ports: [0] }).waitReply()).toMatchObject({ code: 400 });
  });
});
