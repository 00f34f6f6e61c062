// Worker entry: fetch serves the Kubernetes API; scheduled (cron) is the safety-net
// resync: it tells the scheduler and the controller manager directly (not through the
// store's notifications, which are what it backs up) to look at everything again.

import { createApp } from "./api/app.ts";
import type { Env } from "./env.ts";
import { serveLoadBalancer } from "./lb.ts";

export { ControllerManagerDO } from "../durable-objects/controllers/manager-do.ts";
export { SchedulerDO } from "../durable-objects/scheduler/scheduler-do.ts";
export { StoreDO } from "../durable-objects/store/store-do.ts";
export { NodeTunnelDO } from "../durable-objects/tunnel/tunnel-do.ts";

const app = createApp();

/** The resync hook: every reconciler sees every object again. */
export async function resyncAll(env: Env): Promise<void> {
  const cluster = env.CLUSTER_NAME || "default";
  await Promise.all([
    env.CONTROLLERS.get(env.CONTROLLERS.idFromName(cluster)).notify(0, true),
    env.SCHEDULER.get(env.SCHEDULER.idFromName(cluster)).notify(0, true),
  ]);
}

export default {
  // Load-balancer traffic (public, no Kubernetes authentication) first, then the API.
  fetch: (request: Request, env: Env, ctx: ExecutionContext) => serveLoadBalancer(request, env, ctx) ?? app.fetch(request, env, ctx),
  async scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    ctx.waitUntil(resyncAll(env));
  },
} satisfies ExportedHandler<Env>;
