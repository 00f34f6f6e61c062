import { describe, expect, it } from "vitest";
import { WorkQueue } from "../../durable-objects/controllers/queue.ts";

describe("WorkQueue", () => {
  it("de-duplicates keys added while waiting", () => {
    const q = new WorkQueue();
    q.add("a", 0);
    q.add("a", 0);
    q.add("b", 0);
    expect(q.takeReady(0)).toEqual(["a", "b"]);
    expect(q.takeReady(0)).toEqual([]);
  });

  it("keeps the earlier due time when a key is added twice", () => {
    const q = new WorkQueue();
    q.addAt("a", 100);
    q.addAt("a", 50);
    q.addAt("a", 200);
    expect(q.nextDue()).toBe(50);
    expect(q.takeReady(49)).toEqual([]);
    expect(q.takeReady(50)).toEqual(["a"]);
  });

  it("backs off exponentially per key and forgets on success", () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50 });
    expect(
      [1, 2, 3, 4].map(() => {
        const d = q.addRateLimited("k", 0);
        q.takeReady(1e9);
        return d;
      }),
    ).toEqual([10, 20, 40, 50]);
    expect(q.addRateLimited("other", 0)).toBe(10);
    q.forget("k");
    expect(q.failureCount("k")).toBe(0);
    expect(q.addRateLimited("k", 0)).toBe(10);
  });

  it("hands out due keys earliest first", () => {
    const q = new WorkQueue();
    q.addAt("late", 30);
    q.addAt("early", 10);
    q.addAt("future", 100);
    expect(q.takeReady(50)).toEqual(["early", "late"]);
    expect(q.nextDue()).toBe(100);
  });
});
