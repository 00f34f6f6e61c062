// No lost updates: many clients doing read-increment-write on one ConfigMap over HTTP,
// each write carrying the resourceVersion it read. Every write must be a compare-and-
// swap: a stale one gets 409 Conflict, so the counter ends at exactly the number of
// writes that succeeded, and no two successful writes wrote the same value.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlane } from "../../scripts/control-plane.ts";
import { api, type Json, must, removeStateDir, start, tempStateDir } from "./harness.ts";

const NS = "counters";
const WRITERS = 32;
const INCREMENTS = 10;

interface Outcome {
  successes: number;
  conflicts: number;
  conflictBodies: Json[];
  written: number[];
  unexpected: string[];
}

type WriteFn = (cp: ControlPlane, path: string, cur: Json, next: number) => Promise<{ status: number; body: Json; text: string }>;

const putWrite: WriteFn = (cp, path, cur, next) =>
  // The whole object as read, so metadata.resourceVersion is the one read.
  api(cp, "PUT", path, { ...cur, data: { ...cur.data, n: String(next) } });

const patchWrite: WriteFn = (cp, path, cur, next) =>
  // A merge patch that pins the resourceVersion read (optimistic lock).
  api(
    cp,
    "PATCH",
    path,
    { metadata: { resourceVersion: cur.metadata.resourceVersion }, data: { n: String(next) } },
    { contentType: "application/merge-patch+json" },
  );

async function writer(cp: ControlPlane, path: string, write: WriteFn, out: Outcome): Promise<void> {
  let done = 0;
  let attempts = 0;
  while (done < INCREMENTS) {
    if (++attempts > 5000) throw new Error("writer made no progress");
    const g = await api(cp, "GET", path);
    if (g.status !== 200) {
      out.unexpected.push(`GET ${g.status}: ${g.text}`);
      return;
    }
    const next = Number(g.body.data.n) + 1;
    const r = await write(cp, path, g.body, next);
    if (r.status === 200) {
      // The response is the object as written.
      if (r.body.data?.n !== String(next)) out.unexpected.push(`write returned n=${r.body.data?.n}, wanted ${next}`);
      if (Number(r.body.metadata.resourceVersion) <= Number(g.body.metadata.resourceVersion))
        out.unexpected.push("resourceVersion did not increase");
      out.written.push(next);
      out.successes++;
      done++;
    } else if (r.status === 409) {
      out.conflicts++;
      out.conflictBodies.push(r.body);
      // A little jitter so 32 writers do not all re-read in lockstep.
      await new Promise((res) => setTimeout(res, Math.random() * 3));
    } else {
      out.unexpected.push(`write ${r.status}: ${r.text}`);
      return;
    }
  }
}

async function race(cp: ControlPlane, name: string, write: WriteFn): Promise<{ out: Outcome; final: Json }> {
  const path = `/api/v1/namespaces/${NS}/configmaps/${name}`;
  await must(
    cp,
    "POST",
    `/api/v1/namespaces/${NS}/configmaps`,
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { n: "0" } },
    [201],
  );
  const out: Outcome = { successes: 0, conflicts: 0, conflictBodies: [], written: [], unexpected: [] };
  await Promise.all(Array.from({ length: WRITERS }, () => writer(cp, path, write, out)));
  const final = await must(cp, "GET", path);
  return { out, final };
}

function check({ out, final }: { out: Outcome; final: Json }, name: string): void {
  expect(out.unexpected).toEqual([]);
  expect(out.successes).toBe(WRITERS * INCREMENTS);
  // Nothing lost: the counter is the number of successful writes ...
  expect(Number(final.data.n)).toBe(out.successes);
  // ... and every successful write wrote a distinct value: 1..N, each exactly once.
  expect([...out.written].sort((a, b) => a - b)).toEqual(Array.from({ length: out.successes }, (_, i) => i + 1));
  // The writers really raced (otherwise this proves nothing), and every loser was told
  // why with a Conflict Status about this object.
  expect(out.conflicts).toBeGreaterThan(0);
  expect(out.conflictBodies.length).toBe(out.conflicts);
  for (const b of out.conflictBodies) {
    expect(b).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", code: 409, reason: "Conflict" });
    expect(b.details).toMatchObject({ name, kind: "configmaps" });
    expect(String(b.message)).toContain(`configmaps "${name}"`);
  }
}

describe("concurrent read-modify-write over HTTP loses no update", () => {
  let stateDir = "";
  let cp: ControlPlane | undefined;

  beforeAll(async () => {
    stateDir = tempStateDir();
    cp = await start({ stateDir });
    await must(cp, "POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } }, [201]);
  });

  afterAll(async () => {
    await cp?.stop();
    removeStateDir(stateDir);
  });

  it(`${WRITERS} writers doing GET + PUT with the read resourceVersion: every stale PUT is a 409 Conflict and the count is exact`, async () => {
    const res = await race(cp!, "counter-put", putWrite);
    check(res, "counter-put");
  });

  it(`${WRITERS} writers doing GET + merge PATCH pinning metadata.resourceVersion: patches are compare-and-swap too`, async () => {
    const res = await race(cp!, "counter-patch", patchWrite);
    check(res, "counter-patch");
  });

  it("a PUT or PATCH with a stale resourceVersion changes nothing", async () => {
    const c = cp!;
    const path = `/api/v1/namespaces/${NS}/configmaps/stale`;
    const v1 = await must(
      c,
      "POST",
      `/api/v1/namespaces/${NS}/configmaps`,
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "stale" }, data: { n: "1" } },
      [201],
    );
    const v2 = await must(c, "PUT", path, { ...v1, data: { n: "2" } }, [200]);
    const put = await api(c, "PUT", path, { ...v1, data: { n: "stale-put" } });
    expect(put.status).toBe(409);
    expect(put.body).toMatchObject({ kind: "Status", code: 409, reason: "Conflict" });
    const pat = await api(
      c,
      "PATCH",
      path,
      { metadata: { resourceVersion: v1.metadata.resourceVersion }, data: { n: "stale-patch" } },
      { contentType: "application/merge-patch+json" },
    );
    expect(pat.status).toBe(409);
    expect(pat.body).toMatchObject({ kind: "Status", code: 409, reason: "Conflict" });
    expect(await must(c, "GET", path)).toEqual(v2);
  });
});
