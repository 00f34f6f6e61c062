// Durability: what a client wrote before the control plane restarted (stop + start on the
// same state dir) is exactly what it reads afterwards, and revisions keep going up.
// Also: authentication with the admin token kept in the state dir.

import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlane } from "../../scripts/control-plane.ts";
import { api, type Json, must, removeStateDir, rv, start, tempStateDir } from "./harness.ts";

const NS = "durable";
const CMS = `/api/v1/namespaces/${NS}/configmaps`;

function cm(name: string, data: Record<string, string>): Json {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels: { app: "durability" } }, data };
}

function expectStatus(body: Json, code: number, reason: string): void {
  expect(body).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason });
  expect(typeof body.message).toBe("string");
}

interface Snapshot {
  objects: Map<string, Json>;
  listRV: number;
}

/** Every ConfigMap in NS, read one by one and as a list. */
async function snapshot(cp: ControlPlane, names: string[]): Promise<Snapshot> {
  const objects = new Map<string, Json>();
  for (const name of names) {
    const r = await api(cp, "GET", `${CMS}/${name}`);
    if (r.status === 200) objects.set(name, r.body);
    else expect(r.status).toBe(404);
  }
  const list = await must(cp, "GET", CMS);
  const listed = new Map<string, Json>((list.items as Json[]).map((o) => [o.metadata.name as string, o]));
  // The list and the gets agree.
  expect([...listed.keys()].sort()).toEqual([...objects.keys()].sort());
  for (const [name, o] of objects) expect(listed.get(name)).toEqual(o);
  return { objects, listRV: Number(list.metadata.resourceVersion) };
}

describe("control plane durability across restarts", () => {
  let stateDir = "";
  let cp: ControlPlane | undefined;

  beforeAll(async () => {
    stateDir = tempStateDir();
    cp = await start({ stateDir });
  });

  afterAll(async () => {
    await cp?.stop();
    removeStateDir(stateDir);
  });

  async function restart(): Promise<ControlPlane> {
    await cp!.stop();
    cp = undefined;
    cp = await start({ stateDir });
    return cp;
  }

  it("keeps objects, resourceVersions and uids, keeps deletions, and keeps counting revisions after a restart", async () => {
    let c = cp!;
    const token1 = c.token;
    const ns = await must(c, "POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } }, [201]);
    const names = Array.from({ length: 12 }, (_, i) => `cm-${i}`);
    const allRVs: number[] = [rv(ns)];
    for (const name of names) {
      const o = await must(c, "POST", CMS, cm(name, { v: "created", name }), [201]);
      allRVs.push(rv(o));
    }
    // Updates (PUT with the read resourceVersion) and merge patches.
    for (const name of ["cm-1", "cm-2", "cm-3"]) {
      const cur = await must(c, "GET", `${CMS}/${name}`);
      const o = await must(c, "PUT", `${CMS}/${name}`, { ...cur, data: { v: "updated", name } }, [200]);
      allRVs.push(rv(o));
    }
    for (const name of ["cm-4", "cm-2"]) {
      const o = await must(c, "PATCH", `${CMS}/${name}`, { data: { patched: "yes" } }, [200], "application/merge-patch+json");
      allRVs.push(rv(o));
    }
    // Deletions, the last write before the restart being a deletion: then only a
    // tombstone carries the newest revision.
    const deleted = ["cm-5", "cm-6", "cm-11"];
    for (const name of deleted) {
      const r = await api(c, "DELETE", `${CMS}/${name}`);
      expect(r.status).toBe(200);
    }

    const before = await snapshot(c, names);
    expect(before.objects.size).toBe(names.length - deleted.length);
    for (const name of deleted) expect(before.objects.has(name)).toBe(false);
    expect(before.objects.get("cm-2")!.data).toEqual({ v: "updated", name: "cm-2", patched: "yes" });
    // The deletions advanced the revision past every object's resourceVersion.
    expect(before.listRV).toBeGreaterThan(Math.max(...allRVs));
    const nsBefore = await must(c, "GET", `/api/v1/namespaces/${NS}`);

    // ---- restart on the same state dir
    c = await restart();

    expect(c.token).toBe(token1);
    const after = await snapshot(c, names);
    expect([...after.objects.keys()].sort()).toEqual([...before.objects.keys()].sort());
    for (const [name, o] of before.objects) {
      const a = after.objects.get(name)!;
      expect(a.metadata.resourceVersion).toBe(o.metadata.resourceVersion);
      expect(a.metadata.uid).toBe(o.metadata.uid);
      expect(a).toEqual(o); // data, labels, creationTimestamp: all of it
    }
    for (const name of deleted) {
      const r = await api(c, "GET", `${CMS}/${name}`);
      expect(r.status).toBe(404);
      expectStatus(r.body, 404, "NotFound");
    }
    // The current revision was recovered (not reset): it is at least the one before the
    // restart (equal unless a background controller wrote meanwhile).
    expect(after.listRV).toBeGreaterThanOrEqual(before.listRV);
    expect(await must(c, "GET", `/api/v1/namespaces/${NS}`)).toEqual(nsBefore);

    // A new write gets a revision above every revision handed out before the restart
    // (including the tombstones'), and a re-created name gets a new uid.
    const fresh = await must(c, "POST", CMS, cm("cm-after", { v: "after" }), [201]);
    expect(rv(fresh)).toBeGreaterThan(before.listRV);
    const recreated = await must(c, "POST", CMS, cm("cm-5", { v: "again" }), [201]);
    expect(rv(recreated)).toBeGreaterThan(rv(fresh));
    const oldUids = new Set([...before.objects.values()].map((o) => o.metadata.uid as string));
    expect(oldUids.has(recreated.metadata.uid as string)).toBe(false);
    const upd = await must(c, "PATCH", `${CMS}/cm-0`, { data: { v: "after-restart" } }, [200], "application/merge-patch+json");
    expect(rv(upd)).toBeGreaterThan(rv(recreated));
    expect(upd.metadata.uid).toBe(before.objects.get("cm-0")!.metadata.uid);

    // ---- a second restart keeps the writes made after the first one
    c = await restart();
    expect(c.token).toBe(token1);
    expect(await must(c, "GET", `${CMS}/cm-after`)).toEqual(fresh);
    expect(await must(c, "GET", `${CMS}/cm-5`)).toEqual(recreated);
    expect(await must(c, "GET", `${CMS}/cm-0`)).toEqual(upd);
    const again = await must(c, "POST", CMS, cm("cm-after-2", {}), [201]);
    expect(rv(again)).toBeGreaterThan(rv(upd));
  });

  it("keeps the admin token in the state dir and rejects missing or wrong tokens with a 401 Status", async () => {
    const c = cp!;
    const file = path.join(stateDir, "admin-token");
    expect(fs.readFileSync(file, "utf8").trim()).toBe(c.token);
    expect(c.token.length).toBeGreaterThanOrEqual(32);

    const ok = await api(c, "GET", "/api/v1/namespaces");
    expect(ok.status).toBe(200);
    expect(ok.body.kind).toBe("NamespaceList");

    const attempts: Array<[string, string | null]> = [
      ["no authorization header", null],
      ["wrong token", `Bearer ${c.token.slice(0, -1)}${c.token.endsWith("0") ? "1" : "0"}`],
      ["token with a suffix", `Bearer ${c.token}x`],
      ["empty bearer", "Bearer "],
      ["basic auth with the token", `Basic ${Buffer.from(`admin:${c.token}`).toString("base64")}`],
    ];
    for (const [what, authorization] of attempts) {
      for (const p of ["/api/v1/namespaces", `/api/v1/namespaces/${NS}/configmaps/cm-0`, "/api"]) {
        const r = await api(c, "GET", p, undefined, { authorization });
        expect(r.status, `${what} GET ${p}`).toBe(401);
        expectStatus(r.body, 401, "Unauthorized");
        expect(r.headers.get("content-type")).toMatch(/^application\/json/);
      }
      // Writes are refused too, and change nothing.
      const w = await api(c, "POST", CMS, cm(`sneaky`, { v: "x" }), { authorization });
      expect(w.status, `${what} POST`).toBe(401);
      expectStatus(w.body, 401, "Unauthorized");
    }
    expect((await api(c, "GET", `${CMS}/sneaky`)).status).toBe(404);
  });
});
