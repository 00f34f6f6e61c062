// The scheduler's host logic, kept out of the Durable Object class so it runs with any
// Store: follow pods and nodes into a cache, and for pending pods run the pure pipeline
// (snapshot → filter → score → plan), then commit the bindings in one batched round
// trip, each a compare-and-swap on the pod's resourceVersion (a pod that changed
// meanwhile just loses its binding and is planned again).
//
// Pods that fit nowhere get PodScheduled=False and a FailedScheduling event, and are
// tried again only when something that could make room changes (a node, or a pod
// leaving a node), or after UNSCHEDULABLE_RETRY_MS, never on a spin.

import { encodeObject } from "../../workers/api/codec.ts";
import { type Ctx, guaranteedUpdate } from "../../workers/api/registry.ts";
import { prepareCreate, prepareUpdate } from "../../workers/api/strategy.ts";
import { bindPod } from "../../workers/api/subresources.ts";
import { ApiError } from "../../workers/shared/errors.ts";
import { lookupResource, objectKey } from "../../workers/shared/resources.ts";
import { applyActions, eventObject } from "../controllers/apply.ts";
import { ObjectCache } from "../controllers/cache.ts";
import { COMPONENTS, type Obj } from "../controllers/types.ts";
import type { Store } from "../store/types.ts";
import { plan } from "./plan.ts";
import { buildSnapshot, type Snapshot } from "./snapshot.ts";

const PODS = lookupResource("", "v1", "pods")!;
const NODES = lookupResource("", "v1", "nodes")!;
const EVENTS = lookupResource("", "v1", "events")!;

export const UNSCHEDULABLE_RETRY_MS = 60_000;
const BIND_BATCH = 500;

function isPending(p: Obj): boolean {
  return (
    !p.spec?.nodeName &&
    !p.metadata.deletionTimestamp &&
    (p.spec?.schedulerName ?? "default-scheduler") === "default-scheduler" &&
    p.status?.phase !== "Succeeded" &&
    p.status?.phase !== "Failed"
  );
}

export interface ScheduleStats {
  bound: number;
  unschedulable: number;
  conflicts: number;
}

export class Scheduler {
  readonly cache: ObjectCache;
  private readonly store: Store;
  private readonly ctx: Ctx;
  private readonly now: () => Date;
  private readonly seed: number;
  private started = false;
  /** uid → when the pod was found unschedulable, and with what message. */
  private readonly unschedulable = new Map<string, { at: number; message: string }>();
  /** Something changed that may make room for unschedulable pods. */
  private roomChanged = false;
  /**
   * The snapshot of nodes and bound pods, kept between rounds: plan() assumes its own
   * placements into it, so it stays right as long as nothing else moves pods or nodes.
   * Anything else (a node change, a pod leaving a node, a bind by someone else, a lost
   * bind) drops it and the next round rebuilds it.
   */
  private snapshot: Snapshot | undefined;

  constructor(store: Store, now: () => Date, seed = 1) {
    this.store = store;
    this.now = now;
    this.seed = seed;
    this.ctx = { store, now };
    this.cache = new ObjectCache(store, [PODS, NODES]);
  }

  async sync(): Promise<void> {
    if (!this.started) {
      await this.cache.relist();
      this.started = true;
      this.roomChanged = true;
      return;
    }
    const changes = await this.cache.catchUp();
    if (changes === null) {
      this.roomChanged = true;
      this.snapshot = undefined;
      return;
    }
    const terminal = (p: Obj | undefined) => ["Succeeded", "Failed"].includes(p?.status?.phase);
    for (const c of changes) {
      if (c.info === NODES) {
        this.roomChanged = true;
        this.snapshot = undefined;
        continue;
      }
      const wasOn = c.old?.spec?.nodeName;
      const isOn = c.type === "delete" ? undefined : c.obj.spec?.nodeName;
      const leaving = wasOn && (c.type === "delete" || !isOn || (terminal(c.obj) && !terminal(c.old)));
      if (leaving || (wasOn && c.obj.metadata.deletionTimestamp)) this.roomChanged = true;
      // Accounting changes made by others (pods leaving nodes, binds not made here) drop
      // the kept snapshot; this scheduler's own binds are already in it.
      if (leaving || (isOn && !wasOn)) this.snapshot = undefined;
      if (c.type === "delete") this.unschedulable.delete(c.obj.metadata.uid);
    }
  }

  /** Pods waiting for a node that should be tried now. */
  private candidates(t: number): Obj[] {
    const retryAll = this.roomChanged;
    return this.cache.list(PODS).filter((p) => {
      if (!isPending(p)) return false;
      const u = this.unschedulable.get(p.metadata.uid);
      return !u || retryAll || t - u.at >= UNSCHEDULABLE_RETRY_MS;
    });
  }

  /** One scheduling round over every candidate pod. */
  async scheduleOnce(): Promise<ScheduleStats> {
    const now = this.now();
    const t = now.getTime();
    const pending = this.candidates(t);
    this.roomChanged = false;
    const stats: ScheduleStats = { bound: 0, unschedulable: 0, conflicts: 0 };
    if (pending.length === 0) return stats;
    const snapshot = (this.snapshot ??= buildSnapshot(this.cache.list(NODES), this.cache.list(PODS)));
    const result = plan(pending, snapshot, this.seed);

    for (let i = 0; i < result.bindings.length; i += BIND_BATCH) {
      const chunk = result.bindings.slice(i, i + BIND_BATCH);
      const prepared = chunk.map(({ pod, node }) => {
        const bound = prepareUpdate(PODS, pod, bindPod(structuredClone(pod), node, now), "binding");
        delete bound.metadata.resourceVersion;
        return { pod, bound };
      });
      const res = await this.store.batch(
        prepared.map(({ pod, bound }) => [
          {
            op: "update" as const,
            key: objectKey(PODS, pod.metadata.namespace, pod.metadata.name),
            value: encodeObject(bound),
            expectedRevision: Number(pod.metadata.resourceVersion),
          },
        ]),
      );
      const scheduled: Obj[] = [];
      res.forEach((r, j) => {
        const { pod, bound } = prepared[j];
        if (r instanceof ApiError) {
          stats.conflicts++;
          this.snapshot = undefined; // it assumed a placement that did not happen
          return;
        }
        bound.metadata.resourceVersion = String(r[0].modRevision);
        this.cache.put(PODS, bound);
        this.unschedulable.delete(pod.metadata.uid);
        stats.bound++;
        scheduled.push(bound);
      });
      await this.recordScheduled(scheduled, now);
    }

    for (const { pod, message } of result.unschedulable) {
      stats.unschedulable++;
      const prev = this.unschedulable.get(pod.metadata.uid);
      this.unschedulable.set(pod.metadata.uid, { at: t, message });
      if (prev?.message === message) continue; // already reported
      await this.reportUnschedulable(pod, message);
    }
    return stats;
  }

  /** "Scheduled" events for a round's binds, written in one batched round trip (best effort). */
  private async recordScheduled(pods: Obj[], now: Date): Promise<void> {
    if (pods.length === 0) return;
    const txns = pods.map((pod) => {
      const ev = prepareCreate(
        EVENTS,
        eventObject(
          pod,
          "Normal",
          "Scheduled",
          `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${pod.spec.nodeName}`,
          COMPONENTS.scheduler,
          now,
        ),
        now,
        crypto.randomUUID(),
      );
      return [{ op: "create" as const, key: objectKey(EVENTS, ev.metadata.namespace, ev.metadata.name), value: encodeObject(ev) }];
    });
    try {
      await this.store.batch(txns);
    } catch (e) {
      console.warn(`Scheduled events not recorded: ${String(e)}`);
    }
  }

  private async reportUnschedulable(pod: Obj, message: string): Promise<void> {
    try {
      const updated = await guaranteedUpdate(
        this.ctx,
        { info: PODS, namespace: pod.metadata.namespace, name: pod.metadata.name },
        (cur) => {
          if (cur.spec?.nodeName) return cur;
          cur.status ??= {};
          const conds: Obj[] = (cur.status.conditions ??= []);
          const c = conds.find((x) => x.type === "PodScheduled");
          const ts = this.now()
            .toISOString()
            .replace(/\.\d{3}Z$/, "Z");
          const want = { type: "PodScheduled", status: "False", reason: "Unschedulable", message, lastProbeTime: null };
          if (c) {
            if (c.status !== "False") c.lastTransitionTime = ts;
            Object.assign(c, want);
          } else conds.push({ ...want, lastTransitionTime: ts });
          return cur;
        },
        { dryRun: false, subresource: "status" },
      );
      this.cache.put(PODS, updated);
      await applyActions(
        this.ctx,
        this.cache,
        [{ type: "event", involved: updated, eventType: "Warning", reason: "FailedScheduling", message }],
        COMPONENTS.scheduler,
      );
    } catch (e) {
      if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) throw e;
    }
  }

  /** When unschedulable pods should next be retried even if nothing changed. */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const u of this.unschedulable.values()) {
      const at = u.at + UNSCHEDULABLE_RETRY_MS;
      if (min === undefined || at < min) min = at;
    }
    return min;
  }

  hasPending(): boolean {
    return this.cache.list(PODS).some(isPending);
  }
}
