// SchedulerDO: one per cluster. A thin host for Scheduler (scheduler.ts), woken by the
// store's commit notifications, the cron resync, and an alarm for retrying
// unschedulable pods.

import { DurableObject } from "cloudflare:workers";
import { type Env, intVar } from "../../workers/env.ts";
import { Pump } from "../pump.ts";
import { RemoteStore } from "../store/remote.ts";
import { Scheduler } from "./scheduler.ts";

export class SchedulerDO extends DurableObject<Env> {
  private readonly scheduler: Scheduler;
  private readonly pump: Pump;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const store = RemoteStore.forCluster(env.STORE, env.CLUSTER_NAME || "default");
    this.scheduler = new Scheduler(store, () => new Date(), intVar(env.SCHEDULER_SEED, 1));
    this.pump = new Pump(
      "scheduler",
      ctx.storage,
      async () => {
        await this.scheduler.sync();
        const stats = await this.scheduler.scheduleOnce();
        return stats.bound > 0 || stats.conflicts > 0;
      },
      () => this.scheduler.nextDue(),
    );
  }

  /** The store committed (or the cron asks for a resync). Returns at once. */
  async notify(_revision: number, _resync = false): Promise<void> {
    this.ctx.waitUntil(this.pump.run());
  }

  override async alarm(): Promise<void> {
    await this.pump.run();
  }
}
