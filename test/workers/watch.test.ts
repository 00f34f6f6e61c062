// ?watch=true: resume from a resourceVersion, initial state, bookmarks, selectors,
// timeoutSeconds and 410 after compaction. The test config sets WATCH_PROGRESS_MS=100
// and WATCH_BOOKMARK_SECONDS=0 so that bookmarks arrive quickly.

import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RemoteStore } from "../../durable-objects/store/remote.ts";
import { api, freshNamespace, newConfigMap, readEvents, watch } from "./helpers.ts";

describe("watch", () => {
  it("resumes after a resourceVersion: only later changes, in order, with their types", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("before"));
    const rv = (await api("GET", `/api/v1/namespaces/${ns}/configmaps`)).body.metadata.resourceVersion;
    const a = (await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("a"))).body;
    await api("PUT", `/api/v1/namespaces/${ns}/configmaps/a`, { ...a, data: { k: "2" } });
    await api("DELETE", `/api/v1/namespaces/${ns}/configmaps/a`);
    const res = await watch(`/api/v1/namespaces/${ns}/configmaps?watch=true&resourceVersion=${rv}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    const evs = await readEvents(res, 3);
    expect(evs.map((e) => [e.type, e.object.metadata.name])).toEqual([
      ["ADDED", "a"],
      ["MODIFIED", "a"],
      ["DELETED", "a"],
    ]);
    const rvs = evs.map((e) => Number(e.object.metadata.resourceVersion));
    expect(rvs[0]).toBeGreaterThan(Number(rv));
    expect([...rvs].sort((x, y) => x - y)).toEqual(rvs);
    expect(evs[2].object.data).toEqual({ k: "2" }); // DELETED carries the last state
  });

  it("streams live changes after the watch starts", async () => {
    const ns = await freshNamespace();
    const rv = (await api("GET", `/api/v1/namespaces/${ns}/configmaps`)).body.metadata.resourceVersion;
    const res = await watch(`/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${rv}`);
    const pending = readEvents(res, 2);
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("live1"));
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("live2"));
    const evs = await pending;
    expect(evs.map((e) => e.object.metadata.name)).toEqual(["live1", "live2"]);
  });

  it("without a resourceVersion, starts with the current state as ADDED events", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x"));
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("y"));
    for (const q of ["", "&resourceVersion=0"]) {
      const evs = await readEvents(await watch(`/api/v1/namespaces/${ns}/configmaps?watch=true${q}`), 2);
      expect(evs.map((e) => [e.type, e.object.metadata.name])).toEqual([
        ["ADDED", "x"],
        ["ADDED", "y"],
      ]);
    }
  });

  it("sends BOOKMARK events when allowed, and marks the end of initial events", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x"));
    const res = await watch(
      `/api/v1/namespaces/${ns}/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan`,
    );
    const evs = await readEvents(res, 3);
    expect(evs[0]).toMatchObject({ type: "ADDED", object: { metadata: { name: "x" } } });
    expect(evs[1]).toMatchObject({
      type: "BOOKMARK",
      object: { kind: "ConfigMap", metadata: { annotations: { "k8s.io/initial-events-end": "true" } } },
    });
    expect(evs[2].type).toBe("BOOKMARK"); // a periodic one
    expect(Number(evs[2].object.metadata.resourceVersion)).toBeGreaterThanOrEqual(Number(evs[1].object.metadata.resourceVersion));
    const none = await readEvents(
      await watch(`/api/v1/namespaces/${ns}/configmaps?watch=true&resourceVersion=${evs[1].object.metadata.resourceVersion}`),
      1,
      600,
    );
    expect(none).toEqual([]); // no bookmarks unless asked for
  });

  it("turns objects entering and leaving a label selector into ADDED and DELETED", async () => {
    const ns = await freshNamespace();
    const rv = (await api("GET", `/api/v1/namespaces/${ns}/configmaps`)).body.metadata.resourceVersion;
    const res = await watch(`/api/v1/namespaces/${ns}/configmaps?watch=true&resourceVersion=${rv}&labelSelector=team%3Dblue`);
    const pending = readEvents(res, 4);
    const cm = (await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("c", {}, { team: "red" }))).body;
    const merge = { contentType: "application/merge-patch+json" };
    await api("PATCH", `/api/v1/namespaces/${ns}/configmaps/c`, { metadata: { labels: { team: "blue" } } }, merge);
    await api("PATCH", `/api/v1/namespaces/${ns}/configmaps/c`, { data: { more: "1" } }, merge);
    await api("PATCH", `/api/v1/namespaces/${ns}/configmaps/c`, { metadata: { labels: { team: "red" } } }, merge);
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("b", {}, { team: "blue" }));
    void cm;
    const evs = await pending;
    expect(evs.map((e) => [e.type, e.object.metadata.name])).toEqual([
      ["ADDED", "c"],
      ["MODIFIED", "c"],
      ["DELETED", "c"],
      ["ADDED", "b"],
    ]);
  });

  it("watches one object by field selector and on the legacy /watch/ path", async () => {
    const ns = await freshNamespace();
    const rv = (await api("GET", `/api/v1/namespaces/${ns}/configmaps`)).body.metadata.resourceVersion;
    const one = readEvents(
      await watch(`/api/v1/namespaces/${ns}/configmaps?watch=true&resourceVersion=${rv}&fieldSelector=metadata.name%3Dme`),
      1,
    );
    const legacy = readEvents(await watch(`/api/v1/watch/namespaces/${ns}/configmaps?resourceVersion=${rv}`), 2);
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("me-not"));
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("me"));
    expect((await one).map((e) => e.object.metadata.name)).toEqual(["me"]);
    expect((await legacy).map((e) => e.object.metadata.name)).toEqual(["me-not", "me"]);
  });

  it("ends the stream after timeoutSeconds", async () => {
    const ns = await freshNamespace();
    const rv = (await api("GET", `/api/v1/namespaces/${ns}/configmaps`)).body.metadata.resourceVersion;
    const started = Date.now();
    const res = await watch(`/api/v1/namespaces/${ns}/configmaps?watch=true&resourceVersion=${rv}&timeoutSeconds=1`);
    const body = await res.text(); // resolves only when the server ends the stream
    const took = Date.now() - started;
    expect(body).toBe("");
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(5000);
  });

  it("answers a watch from a compacted resourceVersion with a 410 ERROR event", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("a"));
    const old = (await api("GET", `/api/v1/namespaces/${ns}/configmaps`)).body.metadata.resourceVersion;
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("b"));
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("c"));
    await RemoteStore.forCluster(env.STORE, "default").compact({ minAgeMs: 0, minRevisions: 1 });
    const evs = await readEvents(await watch(`/api/v1/namespaces/${ns}/configmaps?watch=true&resourceVersion=${Number(old) - 1}`), 1);
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } });
  });
});
