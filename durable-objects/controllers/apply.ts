// Applies reconcilers' actions through the API registry, so controller writes get the
// same defaulting, validation and compare-and-swap as any client's, and puts each
// result into the cache (write-through).

import { type Ctx, create, guaranteedUpdate, remove } from "../../workers/api/registry.ts";
import { hasPendingFinalizers, rfc3339 } from "../../workers/api/strategy.ts";
import { ApiError } from "../../workers/shared/errors.ts";
import { lookupResource, type ResourceInfo } from "../../workers/shared/resources.ts";
import type { CacheChange, ObjectCache } from "./cache.ts";
import type { Action, GVR, Obj } from "./types.ts";

export function infoOf(gvr: GVR): ResourceInfo {
  const info = lookupResource(gvr.group, gvr.version, gvr.resource);
  if (!info) throw new Error(`unknown resource ${gvr.group}/${gvr.version}/${gvr.resource}`);
  return info;
}

const EVENTS = lookupResource("", "v1", "events")!;

function hex(n: number): string {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** A core/v1 Event about an object, as client-go's event recorder writes them. */
export function eventObject(involved: Obj, type: string, reason: string, message: string, component: string, now: Date): Obj {
  const m = involved.metadata ?? {};
  const ts = rfc3339(now);
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: `${m.name}.${hex(8)}`, namespace: m.namespace || "default" },
    involvedObject: {
      kind: involved.kind,
      apiVersion: involved.apiVersion,
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
    },
    reason,
    message,
    type,
    source: { component },
    reportingComponent: component,
    reportingInstance: component,
    firstTimestamp: ts,
    lastTimestamp: ts,
    count: 1,
  };
}

export type ApplyOutcome = "done" | "conflict";

/**
 * Applies actions in order. A Conflict or NotFound (the snapshot was stale) stops the
 * rest and returns "conflict": the caller reconciles the key again, from fresh state.
 * Other errors are thrown (the caller backs off). Events are best-effort.
 */
export async function applyActions(
  ctx: Ctx,
  cache: ObjectCache,
  actions: Action[],
  component: string,
  onChange: (c: CacheChange) => void = () => {},
): Promise<ApplyOutcome> {
  // The store's own change events for these writes will be dropped by the cache (it
  // already holds them), so the keys they affect are reported here instead.
  const put = (info: ResourceInfo, obj: Obj, gone = false) => {
    const c = cache.put(info, obj, gone);
    if (c) onChange(c);
  };
  for (const a of actions) {
    try {
      switch (a.type) {
        case "create": {
          const info = infoOf(a.gvr);
          const obj = await create(ctx, { info, namespace: a.object.metadata?.namespace }, structuredClone(a.object), { dryRun: false });
          put(info, obj);
          break;
        }
        case "update": {
          const info = infoOf(a.gvr);
          const o = a.object;
          const rv = Number(o.metadata.resourceVersion);
          const res = await guaranteedUpdate(
            ctx,
            { info, namespace: o.metadata.namespace, name: o.metadata.name },
            () => structuredClone(o),
            {
              dryRun: false,
              subresource: a.subresource,
              pinnedRV: Number.isFinite(rv) && rv > 0 ? rv : undefined,
            },
          );
          const gone = res.metadata.deletionTimestamp && !hasPendingFinalizers(info, res);
          put(info, res, Boolean(gone));
          break;
        }
        case "delete": {
          const info = infoOf(a.gvr);
          const r = await remove(
            ctx,
            { info, namespace: a.namespace, name: a.name },
            {
              preconditions: a.preconditionUID ? { uid: a.preconditionUID } : undefined,
              propagationPolicy: a.propagationPolicy,
              gracePeriodSeconds: a.gracePeriodSeconds,
            },
            false,
          );
          put(info, r.obj, r.gone);
          break;
        }
        case "event": {
          try {
            await create(
              ctx,
              { info: EVENTS, namespace: a.involved.metadata?.namespace || "default" },
              eventObject(a.involved, a.eventType, a.reason, a.message, component, ctx.now()),
              {
                dryRun: false,
              },
            );
          } catch (e) {
            console.warn(`event ${a.reason} not recorded: ${String(e)}`);
          }
          break;
        }
      }
    } catch (e) {
      if (e instanceof ApiError && (e.code === 409 || e.code === 404)) return "conflict";
      throw e;
    }
  }
  return "done";
}
