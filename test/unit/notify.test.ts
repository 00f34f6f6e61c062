import { describe, expect, it } from "vitest";
import { Notifier } from "../../durable-objects/store/notify.ts";

function manualScheduler() {
  const queue: (() => void)[] = [];
  return {
    schedule: (fn: () => void) => queue.push(fn),
    run: () => {
      for (const f of queue.splice(0)) f();
    },
    get size() {
      return queue.length;
    },
  };
}

describe("Notifier", () => {
  it("coalesces a burst of commits into one notification of the newest revision", () => {
    const sent: [number, boolean][] = [];
    const s = manualScheduler();
    const n = new Notifier((rev, resync) => void sent.push([rev, resync]), s.schedule);
    n.kick(5);
    n.kick(7);
    n.kick(6);
    expect(s.size).toBe(1);
    s.run();
    expect(sent).toEqual([[7, false]]);
  });

  it("notifies again for commits after a delivery", () => {
    const sent: number[] = [];
    const s = manualScheduler();
    const n = new Notifier((rev) => void sent.push(rev), s.schedule);
    n.kick(1);
    s.run();
    n.kick(2);
    s.run();
    expect(sent).toEqual([1, 2]);
  });

  it("carries a resync request through coalescing, once", () => {
    const sent: [number, boolean][] = [];
    const s = manualScheduler();
    const n = new Notifier((rev, resync) => void sent.push([rev, resync]), s.schedule);
    n.kick(3);
    n.kick(3, true);
    s.run();
    n.kick(4);
    s.run();
    expect(sent).toEqual([
      [3, true],
      [4, false],
    ]);
  });

  it("sends nothing more while a delivery is in flight, then the newest revision once", async () => {
    const sent: number[] = [];
    const s = manualScheduler();
    let release = () => {};
    const n = new Notifier((rev) => {
      sent.push(rev);
      return new Promise<void>((r) => (release = r));
    }, s.schedule);
    n.kick(1);
    s.run();
    n.kick(2);
    n.kick(3);
    s.run();
    expect(sent).toEqual([1]);
    release();
    await new Promise((r) => setTimeout(r, 0));
    s.run();
    expect(sent).toEqual([1, 3]);
  });

  it("survives a subscriber that throws or rejects", async () => {
    const s = manualScheduler();
    let calls = 0;
    const n = new Notifier(() => {
      calls++;
      if (calls === 1) throw new Error("boom");
      return Promise.reject(new Error("later boom"));
    }, s.schedule);
    n.kick(1);
    expect(() => s.run()).not.toThrow();
    n.kick(2);
    s.run();
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toBe(2);
  });
});
