// ControllerManagerDO: one per cluster. A thin host for ControllerManager (manager.ts):
// the store's commit notifications and the cron resync wake it, one DO alarm wakes it
// for the earliest deadline (requeue-after, backoff, eviction times).
//
// Deadlines live in memory and are recomputed from the objects after a restart (the
// first sync relists and reconciles every key), so only the alarm itself needs to
// survive eviction, and the platform keeps it.

import { DurableObject } from "cloudflare:workers";
import { systemSecretKey } from "../../workers/api/authn.ts";
import { decodeKV } from "../../workers/api/codec.ts";
import { NODE_CREDENTIAL_PREFIX } from "../../workers/api/nodes-join.ts";
import { type Env, intVar } from "../../workers/env.ts";
import { Pump } from "../pump.ts";
import { RemoteStore } from "../store/remote.ts";
import type { Store } from "../store/types.ts";
import { edgeProvider } from "./cloud/edge.ts";
import { noneProvider } from "./cloud/none.ts";
import { type CloudProvider, providerName } from "./cloud/provider.ts";
import { ControllerManager } from "./manager.ts";

/** Where the control plane's public origin, as the Worker last saw it, is kept. */
const ORIGIN_KEY = "cloud:publicOrigin";

/**
 * The public origin from PUBLIC_HOSTNAME ("host", "host:port", or a URL), if set.
 * A bare host means https.
 */
export function configuredOrigin(v: string | undefined): string | undefined {
  const s = v?.trim();
  if (!s) return undefined;
  try {
    return new URL(s.includes("://") ? s : `https://${s}`).origin;
  } catch {
    throw new Error(`PUBLIC_HOSTNAME ${JSON.stringify(v)} is not a host name`);
  }
}

/** The provider CLOUD_PROVIDER names. Throws for an unknown name (the DO then fails to start). */
export function cloudProviderFromEnv(env: Env, store: Store, publicOrigin: () => string | undefined): CloudProvider {
  switch (providerName(env.CLOUD_PROVIDER)) {
    case "none":
      return noneProvider();
    case "edge":
      return edgeProvider({
        async credential(node) {
          const kv = await store.get(systemSecretKey(NODE_CREDENTIAL_PREFIX + node));
          return kv ? decodeKV(kv) : undefined;
        },
        tunnel: (node) => env.TUNNELS.get(env.TUNNELS.idFromName(node)).info(),
        publicOrigin,
        lbDomain: env.EDGE_LB_DOMAIN || undefined,
        instanceTtlMs: intVar(env.EDGE_INSTANCE_TTL_SECONDS, 3600) * 1000,
        now: () => new Date(),
      });
  }
}

export class ControllerManagerDO extends DurableObject<Env> {
  private readonly manager: ControllerManager;
  private readonly pump: Pump;
  private resyncWanted = false;
  private readonly configuredOrigin: string | undefined;
  private observedOrigin: string | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const store = RemoteStore.forCluster(env.STORE, env.CLUSTER_NAME || "default");
    const toleration = env.POD_EVICTION_TOLERATION_SECONDS;
    // An unknown CLOUD_PROVIDER (or a malformed PUBLIC_HOSTNAME) throws here: every call
    // to the controller manager then fails with that message rather than running without.
    this.configuredOrigin = configuredOrigin(env.PUBLIC_HOSTNAME);
    const provider = cloudProviderFromEnv(env, store, () => this.configuredOrigin ?? this.observedOrigin);
    ctx.blockConcurrencyWhile(async () => {
      this.observedOrigin = await ctx.storage.get<string>(ORIGIN_KEY);
    });
    this.manager = new ControllerManager(store, () => new Date(), {
      node: {
        gracePeriodMs: intVar(env.NODE_MONITOR_GRACE_SECONDS, 40) * 1000,
        ...(toleration ? { evictionTolerationSeconds: intVar(toleration, 300) } : {}),
      },
      cloud: { provider, pollIntervalMs: intVar(env.CLOUD_INSTANCE_POLL_SECONDS, 60) * 1000 },
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

  /**
   * The Worker saw the API reached at this origin (scheme://host[:port]). Kept as the
   * control plane's public host for load balancers unless PUBLIC_HOSTNAME is set. A
   * change re-reconciles every Service, but only in a manager that is already running:
   * this never wakes the controllers by itself.
   */
  async observeOrigin(origin: string): Promise<void> {
    let o: string;
    try {
      o = new URL(origin).origin;
    } catch {
      return;
    }
    if (o === "null" || o === this.observedOrigin) return;
    this.observedOrigin = o;
    await this.ctx.storage.put(ORIGIN_KEY, o);
    if (this.configuredOrigin || !this.manager.isStarted) return;
    this.manager.enqueueLoadBalancers();
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
