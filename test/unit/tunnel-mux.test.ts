// The tunnel multiplexer (workers/shared/tunnel.ts) on its own: two real Mux instances
// wired back to back, as the NodeTunnelDO and the agent are over their WebSocket.

import { describe, expect, it } from "vitest";
import {
  decodeFrame,
  encodeFrame,
  FRAME_DATA,
  INITIAL_WINDOW,
  Mux,
  StreamResetError,
  type TunnelStream,
} from "../../workers/shared/tunnel.ts";

function pair(onAgentOpen: (s: TunnelStream) => void) {
  let wire = 0;
  // Frames cross asynchronously (as over a socket), in order.
  const cp: Mux = new Mux({
    side: "control-plane",
    send: (f) => {
      wire += f.length;
      queueMicrotask(() => agent.receive(f));
    },
  });
  const agent: Mux = new Mux({
    side: "agent",
    send: (f) => {
      wire += f.length;
      queueMicrotask(() => cp.receive(f));
    },
    onOpen: onAgentOpen,
  });
  return { cp, agent, wire: () => wire };
}

const tick = () => new Promise((r) => setTimeout(r, 5));
const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);

describe("frames", () => {
  it("round-trips type, id and payload, and rejects short messages", () => {
    const f = decodeFrame(encodeFrame(FRAME_DATA, 0xfffffffe, new Uint8Array([1, 2, 3])))!;
    expect(f.type).toBe(FRAME_DATA);
    expect(f.id).toBe(0xfffffffe);
    expect([...f.payload]).toEqual([1, 2, 3]);
    expect(decodeFrame(new Uint8Array([1, 0, 0]))).toBeNull();
  });
});

describe("Mux", () => {
  it("opens a stream with its header, replies, and carries chunks whole and in order both ways", async () => {
    const { cp } = pair(async (s) => {
      expect(s.header).toEqual({ kind: "echo", n: 1 });
      s.reply({ code: 200 });
      for await (const c of s) await s.write(c);
      s.end();
    });
    const s = cp.open({ kind: "echo", n: 1 });
    expect(s.id % 2).toBe(1);
    expect((await s.waitReply()).code).toBe(200);
    const sent = [bytes(10, 1), bytes(70_000, 2), bytes(1, 3)];
    for (const c of sent) await s.write(c);
    s.end();
    const got: Uint8Array[] = [];
    for await (const c of s) got.push(c);
    expect(got.map((c) => [c.length, c[0]])).toEqual(sent.map((c) => [c.length, c[0]]));
    await s.done();
    expect(cp.stats().streams).toBe(0);
  });

  it("a reader that stops reading stops only its own stream, and nothing buffers past one window", async () => {
    const writers: Promise<number>[] = [];
    const { cp, agent } = pair((s) => {
      s.reply({ code: 200 });
      // Each agent-side stream writes as fast as the window lets it.
      writers.push(
        (async () => {
          let sent = 0;
          try {
            for (;;) {
              await s.write(bytes(16 * 1024));
              sent += 16 * 1024;
              if (sent >= 4 * 1024 * 1024) break;
            }
            s.end();
          } catch {}
          return sent;
        })(),
      );
    });
    const slow = cp.open({ kind: "src" });
    const fast = Array.from({ length: 9 }, () => cp.open({ kind: "src" }));
    let fastBytes = 0;
    await Promise.all(
      fast.map(async (s) => {
        for await (const c of s) fastBytes += c.length;
        s.end();
      }),
    );
    // Every fast stream finished its 4 MiB while the slow one was never read.
    expect(fastBytes).toBe(9 * 4 * 1024 * 1024);
    await tick();
    expect(slow.buffered).toBeLessThanOrEqual(INITIAL_WINDOW + 16 * 1024);
    expect(slow.buffered).toBeGreaterThan(0);
    const slowSender = agent.stats().perStream.find((p) => p.id === slow.id)!;
    expect(slowSender.window).toBeLessThanOrEqual(0);
    // Reading a little lets a little more through, never more than the window.
    for (let i = 0; i < 20; i++) await slow.read();
    await tick();
    expect(slow.buffered).toBeLessThanOrEqual(INITIAL_WINDOW + 16 * 1024);
    slow.reset("done");
    await tick();
    expect(cp.stats().streams).toBe(0);
  });

  it("a reset reaches the peer's reader and writer with the reason", async () => {
    let agentSide: TunnelStream | undefined;
    const { cp } = pair((s) => {
      agentSide = s;
    });
    const s = cp.open({ kind: "x" });
    await tick();
    s.reset("client went away");
    await tick();
    await expect(agentSide!.read()).rejects.toThrow(StreamResetError);
    await expect(agentSide!.write(bytes(1))).rejects.toThrow("client went away");
  });

  it("closing the connection resets every stream and fails pending replies", async () => {
    const { cp } = pair(() => {});
    const a = cp.open({ kind: "x" });
    const b = cp.open({ kind: "y" });
    const reply = a.waitReply();
    cp.close("agent disconnected");
    expect((await reply).code).toBe(502);
    await expect(b.read()).rejects.toThrow("agent disconnected");
    expect(cp.open({ kind: "z" }).isReset).toBe(true);
  });

  it("refuses streams the side has no handler for", async () => {
    const { agent } = pair(() => {});
    // The control-plane side here has no onOpen: an agent-opened stream is refused.
    const s = agent.open({ kind: "connect" });
    expect(s.id % 2).toBe(0);
    expect(await s.waitReply()).toMatchObject({ code: 400, reason: "BadRequest" });
    await expect(s.read()).rejects.toThrow("unknown stream kind");
  });

  it("an OPEN that reuses a live id supersedes the old stream (a peer that lost its state)", async () => {
    const seen: TunnelStream[] = [];
    const { cp, agent } = pair((s) => seen.push(s));
    const first = new Mux({ side: "control-plane", firstId: 41, send: (f) => queueMicrotask(() => agent.receive(f)) });
    first.open({ kind: "a" });
    await tick();
    const again = new Mux({ side: "control-plane", firstId: 41, send: (f) => queueMicrotask(() => agent.receive(f)) });
    again.open({ kind: "b" });
    await tick();
    expect(seen.map((s) => [s.id, s.header.kind, s.isReset])).toEqual([
      [41, "a", true],
      [41, "b", false],
    ]);
    expect(cp.isClosed).toBe(false);
  });
});
