// Container logs on the agent: the pure helpers of node-agent/logs.ts, the size/time
// index, and the pods/log stream handler over a real Mux pair against real files,
// including a log rotated into <attempt>.log.1.

import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LogIndex, offsetSince, parseIndex, rfc3339Nano, tailOffset, timeAt } from "../../node-agent/logs.ts";
import { logHandler } from "../../node-agent/streams/log.ts";
import type { StreamDeps } from "../../node-agent/streams/types.ts";
import { Mux, type StreamHeader } from "../../workers/shared/tunnel.ts";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "kf-logs-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function file(content: string): string {
  const p = join(tmp(), "0.log");
  writeFileSync(p, content);
  return p;
}

describe("tailOffset", () => {
  it("finds the start of the n-th last line, counting a last line without a newline", () => {
    const p = file("a\nbb\nccc\n");
    expect(tailOffset(p, 9, 1)).toEqual({ offset: 5, lines: 1 });
    expect(tailOffset(p, 9, 2)).toEqual({ offset: 2, lines: 2 });
    expect(tailOffset(p, 9, 3)).toEqual({ offset: 0, lines: 3 });
    const q = file("a\nbb\nccc");
    expect(tailOffset(q, 8, 1)).toEqual({ offset: 5, lines: 1 });
    expect(tailOffset(q, 8, 0)).toEqual({ offset: 8, lines: 0 });
  });

  it("says how many lines a short file has", () => {
    expect(tailOffset(file("x\ny\n"), 4, 10)).toEqual({ offset: 0, lines: 2 });
    expect(tailOffset(file("x\ny"), 3, 10)).toEqual({ offset: 0, lines: 2 });
    expect(tailOffset(file(""), 0, 3)).toEqual({ offset: 0, lines: 0 });
  });

  it("works across its 64 KiB read blocks", () => {
    const line = `${"z".repeat(999)}\n`;
    const p = file(line.repeat(200));
    expect(tailOffset(p, 200_000, 150)).toEqual({ offset: 50_000, lines: 150 });
  });
});

describe("the size/time index", () => {
  it("parses, and gives a byte the time of the first sample at or past it", () => {
    const s = parseIndex("10 1000\n25 2000\nbad\n40 3000\n");
    expect(s).toEqual([
      [10, 1000],
      [25, 2000],
      [40, 3000],
    ]);
    expect(timeAt(s, 5, 9)).toBe(1000);
    expect(timeAt(s, 10, 9)).toBe(1000);
    expect(timeAt(s, 11, 9)).toBe(2000);
    expect(timeAt(s, 41, 9)).toBe(9); // not sampled yet: now
    expect(offsetSince(s, 1500)).toBe(10);
    expect(offsetSince(s, 500)).toBe(0);
    expect(offsetSince(s, 9999)).toBe(40);
  });

  it("LogIndex notes growth, persists it beside the log, and moves it along on rotation", () => {
    const root = tmp();
    const dir = join(root, "uid", "c");
    mkdirSync(dir, { recursive: true });
    const log = join(dir, "0.log");
    writeFileSync(log, "one\n");
    const idx = new LogIndex(root);
    idx.tick(1000);
    appendFileSync(log, "two\n");
    idx.tick(2000);
    idx.tick(3000); // no growth: no sample
    expect(idx.get(log)).toEqual([
      [4, 1000],
      [8, 2000],
    ]);
    expect(new LogIndex(root).get(log)).toEqual([
      [4, 1000],
      [8, 2000],
    ]);
    appendFileSync(log, "three\n"); // written after the last tick
    copyFileSync(log, `${log}.1`);
    truncateSync(log, 0);
    idx.rotated(log, 4000);
    const moved = [
      [4, 1000],
      [8, 2000],
      [14, 4000],
    ];
    expect(idx.get(`${log}.1`)).toEqual(moved);
    expect(idx.get(log)).toEqual([]);
    expect(new LogIndex(root).get(`${log}.1`)).toEqual(moved); // persisted too
    appendFileSync(log, "four\n");
    idx.tick(5000);
    expect(idx.get(log)).toEqual([[5, 5000]]);
  });

  it("prints kubelet's nanosecond timestamps", () => {
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toBe("2026-01-02T03:04:05.678000000Z");
  });
});

describe("the pods/log stream handler", () => {
  async function readLog(
    files: string[],
    header: Partial<StreamHeader>,
    index = new LogIndex(tmp()),
    running: () => boolean = () => false,
  ): Promise<{ code: number; text: string }> {
    const deps = {
      logFiles: () => files,
      findContainer: async () => (running() ? { state: "running" } : { state: "exited" }),
    } as unknown as StreamDeps;
    const handler = logHandler(index);
    let agent: Mux;
    const cp: Mux = new Mux({ side: "control-plane", send: (f) => queueMicrotask(() => agent.receive(f)) });
    agent = new Mux({
      side: "agent",
      send: (f) => queueMicrotask(() => cp.receive(f)),
      onOpen: (s) => void handler(s, deps),
    });
    const s = cp.open({ kind: "log", namespace: "ns", pod: "p", uid: "u", container: "c", ...header });
    s.end();
    const reply = await s.waitReply();
    let text = "";
    for await (const c of s) text += new TextDecoder().decode(c);
    return { code: reply.code, text };
  }

  it("reads a rotated file, then the current one, and takes the tail across both", async () => {
    const d = tmp();
    writeFileSync(join(d, "0.log.1"), "r1\nr2\nr3\n");
    writeFileSync(join(d, "0.log"), "c1\nc2\n");
    const files = [join(d, "0.log.1"), join(d, "0.log")];
    expect(await readLog(files, {})).toEqual({ code: 200, text: "r1\nr2\nr3\nc1\nc2\n" });
    expect((await readLog(files, { tailLines: 3 })).text).toBe("r3\nc1\nc2\n");
    expect((await readLog(files, { tailLines: 1 })).text).toBe("c2\n");
    expect((await readLog(files, { tailLines: 0 })).text).toBe("");
    expect((await readLog(files, { limitBytes: 5 })).text).toBe("r1\nr2");
  });

  it("prefixes lines with their indexed times and starts --since where they begin", async () => {
    const root = tmp();
    const dir = join(root, "u", "c");
    mkdirSync(dir, { recursive: true });
    const log = join(dir, "0.log");
    const index = new LogIndex(root);
    writeFileSync(log, "old\n");
    index.tick(Date.UTC(2026, 0, 1, 0, 0, 0));
    appendFileSync(log, "new\npartial");
    index.tick(Date.UTC(2026, 0, 1, 0, 0, 10));
    const stamped = (await readLog([log], { timestamps: true }, index)).text.split("\n");
    expect(stamped[0]).toBe("2026-01-01T00:00:00.000000000Z old");
    expect(stamped[1]).toBe("2026-01-01T00:00:10.000000000Z new");
    expect(stamped[2]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z partial$/);
    const since = await readLog([log], { sinceTime: new Date(Date.UTC(2026, 0, 1, 0, 0, 5)).toISOString() }, index);
    expect(since.text).toBe("new\npartial");
  });

  it("follows the file through a rotation without losing what was written just before it", async () => {
    const d = tmp();
    const log = join(d, "0.log");
    writeFileSync(log, "a\n");
    let running = true;
    const reading = readLog([log], { follow: true }, new LogIndex(d), () => running);
    await new Promise((r) => setTimeout(r, 400));
    appendFileSync(log, "b\n");
    await new Promise((r) => setTimeout(r, 400));
    appendFileSync(log, "c\n"); // not read yet when the rotation comes
    copyFileSync(log, `${log}.1`);
    truncateSync(log, 0);
    appendFileSync(log, "d\n");
    await new Promise((r) => setTimeout(r, 400));
    running = false;
    const r = await reading;
    expect(r.text).toBe("a\nb\nc\nd\n");
  });

  it("answers 400 when the container has no log yet", async () => {
    const r = await readLog([], {});
    expect(r.code).toBe(400);
  });
});
