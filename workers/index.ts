// Worker entry: fetch serves the Kubernetes API; scheduled (cron) is the safety-net
// resync that tells every subscriber of the store to look at everything again.

import { RemoteStore } from "../durable-objects/store/remote.ts";
import { createApp } from "./api/app.ts";
import type { Env } from "./env.ts";

export { StoreDO } from "../durable-objects/store/store-do.ts";

const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    ctx.waitUntil(RemoteStore.forCluster(env.STORE, env.CLUSTER_NAME || "default").resync());
  },
} satisfies ExportedHandler<Env>;
