import { describe, expect, it } from "vitest";
import { ObjectCache } from "../../durable-objects/controllers/cache.ts";
import { MemoryStore } from "../../durable-objects/store/memory.ts";
import { encodeObject } from "../../workers/api/codec.ts";
import { lookupResource } from "../../workers/shared/resources.ts";

const PODS = lookupResource("", "v1", "pods")!;
const SAS = lookupResource("", "v1", "serviceaccounts")!;
const pod = (name: string, rv: number) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "d", uid: `u-${name}`, resourceVersion: String(rv) },
});

describe("ObjectCache", () => {
  it("follows the store's changes and never goes back behind a write-through", async () => {
    const store = new MemoryStore();
    const cache = new ObjectCache(store, [PODS]);
    await cache.relist();
    const a = await store.create("/registry/core/pods/d/a", encodeObject(pod("a", 0)));
    cache.put(PODS, pod("a", a.modRevision + 5)); // a newer write this subscriber made
    await cache.catchUp();
    expect(cache.get(PODS, "d", "a")!.metadata.resourceVersion).toBe(String(a.modRevision + 5));
    await store.create("/registry/core/pods/d/b", encodeObject(pod("b", 0)));
    const changes = await cache.catchUp();
    expect(changes!.map((c) => c.key)).toEqual(["/registry/core/pods/d/b"]);
  });

  it("ignores write-through of kinds it does not follow", () => {
    const cache = new ObjectCache(new MemoryStore(), [PODS]);
    expect(cache.put(SAS, { metadata: { name: "default", namespace: "d", resourceVersion: "3" } })).toBeUndefined();
  });

  it("relists when its cursor was compacted away", async () => {
    const store = new MemoryStore(Date.now, { minAgeMs: 0, minRevisions: 1 });
    const cache = new ObjectCache(store, [PODS]);
    await cache.relist();
    for (const n of ["a", "b", "c"]) await store.create(`/registry/core/pods/d/${n}`, encodeObject(pod(n, 0)));
    store.compact();
    expect(await cache.catchUp()).toBeNull();
    expect(cache.list(PODS, "d").map((p) => p.metadata.name)).toEqual(["a", "b", "c"]);
  });
});
