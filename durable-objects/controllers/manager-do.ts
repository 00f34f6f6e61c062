// ControllerManagerDO: one per cluster. A thin host for ControllerManager (manager.ts):
// the store's commit notifications and the cron resync wake it, one DO alarm wakes it
// for the earliest deadline (requeue-after, backoff, eviction times).
//
// Deadlines live in memory and are recomputed from the objects after a restart (the
// first sync relists and reconciles every key), so only the alarm itself needs to
// survive eviction, and the platform keeps it.

import { DurableObject } from "cloudflare:workers";
import { type Env, intVar } from "../../workers/env.ts";
import { Pump } from "../pump.ts";
import { RemoteStore } from "../store/remote.ts";
import { ControllerManager } from "./manager.ts";

export class ControllerManagerDO extends DurableObject<Env> {
  private readonly manager: ControllerManager;
  private readonly pump: Pump;
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
    // One pass: sync, then reconcile until the queue has nothing due; writes made by
    // reconcilers come back as changes and are picked up before sleeping.
    this.pump = new Pump(
      "controller manager",
      ctx.storage,
      async () => {
        const resync = this.resyncWanted;
        this.resyncWanted = false;
        await this.manager.sync(resync);
        while ((await this.manager.runReady()) > 0) await this.manager.sync();
        return false;
      },
      () => this.manager.nextDue(),
    );
  }

  /** The store committed up to revision (or the cron asks for a resync). Returns at once. */
  async notify(_revision: number, resync = false): Promise<void> {
    if (resync) this.resyncWanted = true;
    this.ctx.waitUntil(this.pump.run());
  }

  override async alarm(): Promise<void> {
    await this.pump.run();
  }

  /** For tests and operators: how much work is waiting. */
  async stats(): Promise<{ queued: number; revision: number }> {
    return { queued: this.manager.queue.size, revision: this.manager.cache.revision };
  }
}
