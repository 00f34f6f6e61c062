// ControllerManagerDO: one per cluster. A thin host for ControllerManager (manager.ts):
// the store's commit notifications and the cron resync wake it, one DO alarm wakes it
// for the earliest deadline (requeue-after, backoff, eviction times).
//
// Deadlines live in memory and are recomputed from the objects after a restart (the
// first sync relists and reconciles every key), so only the alarm itself needs to
// survive eviction, and the platform keeps it.

import { DurableObject } from "cloudflare:workers";
import { type Env, intVar } from "../../workers/env.ts";
import { RemoteStore } from "../store/remote.ts";
import { ControllerManager } from "./manager.ts";

export class ControllerManagerDO extends DurableObject<Env> {
  private readonly manager: ControllerManager;
  private running = false;
  private again = false;
  private resyncWanted = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const store = RemoteStore.forCluster(env.STORE, env.CLUSTER_NAME || "default");
    const toleration = env.POD_EVICTION_TOLERATION_SECONDS;
    this.manager = new ControllerManager(store, () => new Date(), {
      node: {
        gracePeriodMs: intVar(env.NODE_MONITOR_GRACE_SECONDS, 40) * 1000,
        ...(toleration ? { evictionTolerationSeconds: intVar(toleration, 300) } : {}),
      },
    });
  }

  /** The store committed up to revision (or the cron asks for a resync). Returns at once. */
  async notify(_revision: number, resync = false): Promise<void> {
    if (resync) this.resyncWanted = true;
    this.ctx.waitUntil(this.pump());
  }

  override async alarm(): Promise<void> {
    await this.pump();
  }

  /** Runs sync + reconcile until nothing new arrived meanwhile; one pump at a time. */
  private async pump(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        const resync = this.resyncWanted;
        this.resyncWanted = false;
        await this.manager.sync(resync);
        while ((await this.manager.runReady()) > 0) {
          // Writes made by reconcilers come back as changes; pick them up before sleeping.
          await this.manager.sync();
        }
      } while (this.again);
    } catch (e) {
      console.error(`controller manager pump failed: ${e instanceof Error ? e.stack : String(e)}`);
    } finally {
      this.running = false;
      await this.scheduleAlarm();
    }
  }

  private async scheduleAlarm(): Promise<void> {
    const due = this.manager.nextDue();
    // Without deadlines, still look again now and then: a safety net like the cron's.
    const at = due ?? Date.now() + 5 * 60_000;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at || current < Date.now()) await this.ctx.storage.setAlarm(Math.max(at, Date.now() + 10));
  }

  /** For tests and operators: how much work is waiting. */
  async stats(): Promise<{ queued: number; revision: number }> {
    return { queued: this.manager.queue.size, revision: this.manager.cache.revision };
  }
}
