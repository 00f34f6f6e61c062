// SchedulerDO: one per cluster. A thin host for Scheduler (scheduler.ts), woken by the
// store's commit notifications, the cron resync, and an alarm for retrying
// unschedulable pods.

import { DurableObject } from "cloudflare:workers";
import { type Env, intVar } from "../../workers/env.ts";
import { RemoteStore } from "../store/remote.ts";
import { Scheduler } from "./scheduler.ts";

export class SchedulerDO extends DurableObject<Env> {
  private readonly scheduler: Scheduler;
  private running = false;
  private again = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const store = RemoteStore.forCluster(env.STORE, env.CLUSTER_NAME || "default");
    this.scheduler = new Scheduler(store, () => new Date(), intVar(env.SCHEDULER_SEED, 1));
  }

  async notify(_revision: number, _resync = false): Promise<void> {
    this.ctx.waitUntil(this.pump());
  }

  override async alarm(): Promise<void> {
    await this.pump();
  }

  private async pump(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        await this.scheduler.sync();
        const stats = await this.scheduler.scheduleOnce();
        if (stats.bound > 0 || stats.conflicts > 0) this.again = true;
      } while (this.again);
    } catch (e) {
      console.error(`scheduler pump failed: ${e instanceof Error ? e.stack : String(e)}`);
    } finally {
      this.running = false;
      const due = this.scheduler.nextDue();
      const at = due ?? Date.now() + 5 * 60_000;
      const current = await this.ctx.storage.getAlarm();
      if (current === null || current > at || current < Date.now()) await this.ctx.storage.setAlarm(Math.max(at, Date.now() + 10));
    }
  }
}
