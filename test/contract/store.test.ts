import { env } from "cloudflare:test";
import { MemoryStore } from "../../durable-objects/store/memory.ts";
import { RemoteStore } from "../../durable-objects/store/remote.ts";
import { storeContract, type TestStore } from "./store-contract.ts";

let n = 0;

storeContract("StoreDO (SQLite, over RPC)", async () => {
  const remote = RemoteStore.forCluster(env.STORE, `contract-${Date.now()}-${n++}`);
  return Object.assign(remote, { compactNow: (r: Parameters<TestStore["compactNow"]>[0]) => remote.compact(r) }) as TestStore;
});

storeContract("MemoryStore", async () => {
  let retention = { minAgeMs: 0, minRevisions: 1 };
  const mem = new MemoryStore(Date.now, {
    get minAgeMs() {
      return retention.minAgeMs;
    },
    get minRevisions() {
      return retention.minRevisions;
    },
  });
  return Object.assign(mem, {
    compactNow: async (r: typeof retention) => {
      retention = r;
      return mem.compact();
    },
  }) as TestStore;
});
