// The Store contract: every implementation (the StoreDO over RPC, the in-memory store)
// must pass these same cases.

import { describe, expect, it } from "vitest";
import type { RetentionPolicy, Store, Watch, WatchEvent } from "../../durable-objects/store/types.ts";
import { ApiError } from "../../workers/shared/errors.ts";

export type TestStore = Store & { compactNow(r: RetentionPolicy): Promise<number> };

async function rejects(p: Promise<unknown>, code: number, reason?: string): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe(code);
    if (reason) expect((e as ApiError).reason).toBe(reason);
    return e as ApiError;
  }
  throw new Error(`expected a ${code} rejection`);
}

/** Reads n data events (skipping progress) from a watch, failing after timeoutMs. */
export async function take(w: Watch, n: number, timeoutMs = 3000): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  const it = w[Symbol.asyncIterator]();
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${out.length}/${n} events`);
    const r = await Promise.race([it.next(), new Promise<"t">((res) => setTimeout(() => res("t"), left))]);
    if (r === "t") throw new Error(`timed out after ${out.length}/${n} events`);
    if (r.done) throw new Error(`watch ended after ${out.length}/${n} events`);
    if (r.value.type === "progress") continue;
    out.push(r.value);
  }
  return out;
}

export function storeContract(name: string, make: () => Promise<TestStore>): void {
  describe(`Store contract: ${name}`, () => {
    it("creates a key and reads it back at the revision of the write", async () => {
      const s = await make();
      const before = await s.currentRevision();
      const kv = await s.create("/r/a", "1");
      expect(kv.modRevision).toBeGreaterThan(before);
      expect(kv.createRevision).toBe(kv.modRevision);
      expect(await s.get("/r/a")).toEqual(kv);
      expect(await s.currentRevision()).toBe(kv.modRevision);
    });

    it("refuses to create a live key with AlreadyExists", async () => {
      const s = await make();
      await s.create("/r/a", "1");
      await rejects(s.create("/r/a", "2"), 409, "AlreadyExists");
      expect((await s.get("/r/a"))!.value).toBe("1");
    });

    it("updates only at the expected revision, keeping createRevision", async () => {
      const s = await make();
      const a = await s.create("/r/a", "1");
      const b = await s.update("/r/a", "2", a.modRevision);
      expect(b.modRevision).toBeGreaterThan(a.modRevision);
      expect(b.createRevision).toBe(a.createRevision);
      await rejects(s.update("/r/a", "3", a.modRevision), 409, "Conflict");
      expect((await s.get("/r/a"))!.value).toBe("2");
      await rejects(s.update("/r/missing", "x", 1), 404, "NotFound");
    });

    it("deletes with and without an expected revision", async () => {
      const s = await make();
      const a = await s.create("/r/a", "1");
      await s.create("/r/b", "1");
      await rejects(s.delete("/r/a", a.modRevision - 1), 409, "Conflict");
      const d = await s.delete("/r/a", a.modRevision);
      expect(d.value).toBe("1");
      expect(d.modRevision).toBeGreaterThan(a.modRevision);
      expect(await s.get("/r/a")).toBeNull();
      await s.delete("/r/b");
      await rejects(s.delete("/r/b"), 404, "NotFound");
      const again = await s.create("/r/a", "new");
      expect(again.createRevision).toBeGreaterThan(d.modRevision);
    });

    it("lists live keys under a prefix in key order, and only that prefix", async () => {
      const s = await make();
      for (const k of ["/p/x/c", "/p/x/a", "/p/xy/b", "/p/x/b", "/q/x/a"]) await s.create(k, k);
      await s.delete("/p/x/b");
      const res = await s.list("/p/x/");
      expect(res.items.map((i) => i.key)).toEqual(["/p/x/a", "/p/x/c"]);
      expect(res.revision).toBe(await s.currentRevision());
      expect(res.more).toBe(false);
      expect(await s.count("/p/x/")).toBe(2);
    });

    it("lists a consistent snapshot at an older revision", async () => {
      const s = await make();
      const a = await s.create("/s/a", "a1");
      await s.create("/s/b", "b1");
      const snap = await s.currentRevision();
      await s.update("/s/a", "a2", a.modRevision);
      await s.delete("/s/b");
      await s.create("/s/c", "c1");
      const old = await s.list("/s/", { revision: snap });
      expect(old.items.map((i) => [i.key, i.value])).toEqual([
        ["/s/a", "a1"],
        ["/s/b", "b1"],
      ]);
      expect(old.revision).toBe(snap);
      expect((await s.get("/s/b", snap))!.value).toBe("b1");
      const now = await s.list("/s/");
      expect(now.items.map((i) => i.value)).toEqual(["a2", "c1"]);
    });

    it("pages with limit and startKey and counts what remains", async () => {
      const s = await make();
      for (let i = 0; i < 7; i++) await s.create(`/l/k${i}`, String(i));
      const p1 = await s.list("/l/", { limit: 3 });
      expect(p1.items.map((i) => i.value)).toEqual(["0", "1", "2"]);
      expect(p1.more).toBe(true);
      expect(p1.remaining).toBe(4);
      await s.create("/l/k9", "9"); // after the snapshot: not in later pages at p1.revision
      const p2 = await s.list("/l/", { limit: 3, revision: p1.revision, startKey: p1.items[2].key + "\u0000" });
      expect(p2.items.map((i) => i.value)).toEqual(["3", "4", "5"]);
      const p3 = await s.list("/l/", { limit: 3, revision: p1.revision, startKey: p2.items[2].key + "\u0000" });
      expect(p3.items.map((i) => i.value)).toEqual(["6"]);
      expect(p3.more).toBe(false);
    });

    it("applies a transaction atomically, with consecutive revisions", async () => {
      const s = await make();
      const a = await s.create("/t/a", "1");
      const res = await s.txn([
        { op: "update", key: "/t/a", value: "2", expectedRevision: a.modRevision },
        { op: "create", key: "/t/b", value: "b" },
        { op: "delete", key: "/t/a" },
      ]);
      expect(res.map((r) => r.modRevision)).toEqual([a.modRevision + 1, a.modRevision + 2, a.modRevision + 3]);
      expect(await s.get("/t/a")).toBeNull();
      const rev = await s.currentRevision();
      await rejects(
        s.txn([
          { op: "create", key: "/t/c", value: "c" },
          { op: "create", key: "/t/b", value: "dup" },
        ]),
        409,
        "AlreadyExists",
      );
      expect(await s.get("/t/c")).toBeNull();
      expect(await s.currentRevision()).toBe(rev);
    });

    it("runs independent transactions in one batch, each succeeding or failing alone", async () => {
      const s = await make();
      const a = await s.create("/b/a", "1");
      const res = await s.batch([
        [{ op: "update", key: "/b/a", value: "2", expectedRevision: a.modRevision }],
        [{ op: "create", key: "/b/a", value: "dup" }],
        [{ op: "create", key: "/b/c", value: "c" }],
      ]);
      expect(Array.isArray(res[0])).toBe(true);
      expect(res[1]).toBeInstanceOf(ApiError);
      expect((res[1] as ApiError).reason).toBe("AlreadyExists");
      expect(Array.isArray(res[2])).toBe(true);
      expect((await s.get("/b/a"))!.value).toBe("2");
      expect((await s.get("/b/c"))!.value).toBe("c");
    });

    it("reports a read above the current revision as a 504 Timeout", async () => {
      const s = await make();
      await s.create("/f/a", "1");
      const rev = await s.currentRevision();
      await rejects(s.list("/f/", { revision: rev + 100 }), 504, "Timeout");
    });

    it("watches: replays history after a revision, then streams live events", async () => {
      const s = await make();
      const a = await s.create("/w/a", "1");
      const b = await s.update("/w/a", "2", a.modRevision);
      await s.create("/other/x", "x");
      const w = await s.watch("/w/", a.modRevision);
      const first = await take(w, 1);
      expect(first[0]).toMatchObject({ type: "put", kv: { key: "/w/a", value: "2", modRevision: b.modRevision } });
      await s.create("/w/b", "b");
      await s.create("/other/y", "y");
      await s.delete("/w/a");
      const live = await take(w, 2);
      expect(live.map((e) => e.type)).toEqual(["put", "delete"]);
      expect(live[1]).toMatchObject({ type: "delete", kv: { key: "/w/a", value: "2" } });
      w.close();
    });

    it("gives watchers that ask for it the previous value of updated keys", async () => {
      const s = await make();
      const a = await s.create("/wp/a", "old");
      const from = await s.currentRevision();
      await s.update("/wp/a", "new", a.modRevision);
      const w = await s.watch("/wp/", from, true);
      const [ev] = await take(w, 1);
      expect(ev).toMatchObject({ type: "put", prev: "old", kv: { value: "new" } });
      const plain = await s.watch("/wp/", from);
      const [ev2] = await take(plain, 1);
      expect((ev2 as { prev?: string }).prev).toBeUndefined();
      w.close();
      plain.close();
    });

    it("reads the changes after a revision in pages, without waiting", async () => {
      const s = await make();
      const from = await s.currentRevision();
      const a = await s.create("/ch/a", "1");
      await s.create("/other/b", "x");
      await s.update("/ch/a", "2", a.modRevision);
      await s.delete("/ch/a");
      const p1 = await s.changes("/ch/", from, 2);
      expect(p1.events.map((e) => e.type)).toEqual(["put", "put"]);
      expect(p1.more).toBe(true);
      const last = p1.events[1];
      const p2 = await s.changes("/ch/", last.type === "put" ? last.kv.modRevision : 0, 2);
      expect(p2.events.map((e) => e.type)).toEqual(["delete"]);
      expect(p2.more).toBe(false);
      expect(p2.revision).toBe(await s.currentRevision());
      const both = await s.changes(["/ch/", "/other/"], from, 10);
      expect(both.events.map((e) => (e.type === "progress" || e.type === "error" ? e.type : e.kv.key))).toEqual([
        "/ch/a",
        "/other/b",
        "/ch/a",
        "/ch/a",
      ]);
    });

    it("compacts superseded history; older reads and watches are 410 Expired", async () => {
      const s = await make();
      const a = await s.create("/c/a", "1");
      const b = await s.update("/c/a", "2", a.modRevision);
      await s.create("/c/gone", "g");
      await s.delete("/c/gone");
      const c = await s.update("/c/a", "3", b.modRevision);
      const z = await s.create("/c/z", "z");
      const compacted = await s.compactNow({ minAgeMs: 0, minRevisions: 1 });
      // The newest revision is always kept, so compaction stops just below it.
      expect(compacted).toBe(z.modRevision - 1);
      expect(compacted).toBeGreaterThanOrEqual(c.modRevision);
      expect(await s.compactedRevision()).toBe(compacted);
      await rejects(s.watch("/c/", a.modRevision), 410, "Expired");
      await rejects(s.changes("/c/", a.modRevision), 410, "Expired");
      await rejects(s.get("/c/a", a.modRevision), 410, "Expired");
      const now = await s.list("/c/");
      expect(now.items.map((i) => [i.key, i.value])).toEqual([
        ["/c/a", "3"],
        ["/c/z", "z"],
      ]);
      // Watching from the compacted revision itself still works and sees new writes.
      const w = await s.watch("/c/", compacted);
      await s.create("/c/new", "n");
      const evs = await take(w, 2);
      expect(evs.map((e) => (e.type === "put" ? e.kv.key : e.type))).toEqual(["/c/z", "/c/new"]);
      w.close();
      // Revisions keep increasing after compaction.
      expect((await s.create("/c/after", "x")).modRevision).toBeGreaterThan(await s.compactedRevision());
    });

    it("keeps at least minRevisions of history when compacting", async () => {
      const s = await make();
      for (let i = 0; i < 10; i++) await s.create(`/k/${i}`, "v");
      const rev = await s.currentRevision();
      const compacted = await s.compactNow({ minAgeMs: 0, minRevisions: 5 });
      expect(compacted).toBeLessThanOrEqual(rev - 5);
      const w = await s.watch("/k/", rev - 5);
      expect((await take(w, 5)).length).toBe(5);
      w.close();
    });
  });
}
