// Service controller of the cloud controller manager, after k8s.io/cloud-provider's
// controllers/service (syncLoadBalancerIfNeeded, needsCleanup, the
// service.kubernetes.io/load-balancer-cleanup finalizer).
//
// Two pure steps around the provider call the manager makes: serviceStep() says what
// to ask the provider for, reconcileServiceLB() turns the provider's answer into the
// one write that comes next. One write per pass (each would lose the other's CAS):
//
//   wants a LB:   add the finalizer → ensure → provider annotations → status.loadBalancer
//   no longer:    ensureDeleted → clear status.loadBalancer → drop annotations and finalizer
//
// The finalizer goes on before the load balancer is made, so a Service deleted at any
// point still has its load balancer cleaned up; a Service that stops being type
// LoadBalancer is cleaned up the same way.

import { isObj, objects, semanticEqual, str } from "../podutil.ts";
import { type Action, type Obj, type ReconcileResult, SERVICES } from "../types.ts";
import type { LoadBalancerResult } from "./provider.ts";

export const LB_FINALIZER = "service.kubernetes.io/load-balancer-cleanup";
/** Annotations the load balancer owns on a Service start with this; removed on cleanup. */
export const LB_ANNOTATION_PREFIX = "kubeflare.dev/load-balancer-";

/** type LoadBalancer, not handed to another implementation (loadBalancerClass), not being deleted. */
export function wantsLoadBalancer(svc: Obj): boolean {
  return svc.spec?.type === "LoadBalancer" && str(svc.spec?.loadBalancerClass) === "" && !svc.metadata?.deletionTimestamp;
}

function hasFinalizer(svc: Obj): boolean {
  return Array.isArray(svc.metadata?.finalizers) && svc.metadata.finalizers.includes(LB_FINALIZER);
}

function hasIngress(svc: Obj): boolean {
  return objects(svc.status?.loadBalancer?.ingress).length > 0;
}

function ownedAnnotations(svc: Obj): string[] {
  const a = svc.metadata?.annotations;
  return isObj(a) ? Object.keys(a).filter((k) => k.startsWith(LB_ANNOTATION_PREFIX)) : [];
}

export type ServiceStep =
  /** Nothing to do for this service. */
  | "none"
  /** Wants a load balancer but the provider has none to give. */
  | "unsupported"
  /** Put the cleanup finalizer on first (no provider call). */
  | "add-finalizer"
  /** Call ensureLoadBalancer. */
  | "ensure"
  /** Call ensureLoadBalancerDeleted, then clean up. */
  | "delete";

/** What the controller must do next for a service (undefined: it is gone). */
export function serviceStep(svc: Obj | undefined, supported: boolean): ServiceStep {
  if (!svc) return "none";
  if (wantsLoadBalancer(svc)) {
    if (!supported) return "unsupported";
    return hasFinalizer(svc) ? "ensure" : "add-finalizer";
  }
  // A finalizer left by a provider that is no longer configured is removed all the same.
  if (hasFinalizer(svc) || (supported && hasIngress(svc))) return "delete";
  return "none";
}

export type ServiceOutcome =
  | { step: "none" }
  | { step: "unsupported"; provider: string; reported: boolean }
  | { step: "add-finalizer" }
  | { step: "ensure"; result: LoadBalancerResult }
  | { step: "ensure"; error: string }
  | { step: "delete" }
  | { step: "delete"; error: string };

function event(svc: Obj, eventType: "Normal" | "Warning", reason: string, message: string): Action {
  return { type: "event", involved: { apiVersion: "v1", kind: "Service", ...svc }, eventType, reason, message };
}

function update(svc: Obj, edit: (o: Obj) => void, subresource?: "status"): Action {
  const object = structuredClone(svc);
  object.metadata ??= {};
  edit(object);
  return subresource ? { type: "update", gvr: SERVICES, object, subresource } : { type: "update", gvr: SERVICES, object };
}

function withAnnotations(svc: Obj, want: Record<string, string>): Record<string, string> | undefined {
  const cur: Record<string, string> = isObj(svc.metadata?.annotations) ? { ...svc.metadata.annotations } : {};
  for (const k of Object.keys(cur)) if (k.startsWith(LB_ANNOTATION_PREFIX) && !(k in want)) delete cur[k];
  Object.assign(cur, want);
  return Object.keys(cur).length > 0 ? cur : undefined;
}

/** The write (and events) that follow the provider's answer for a service. */
export function reconcileServiceLB(svc: Obj, outcome: ServiceOutcome): ReconcileResult {
  const name = `${svc.metadata?.namespace}/${svc.metadata?.name}`;
  switch (outcome.step) {
    case "none":
      return { actions: [] };
    case "unsupported":
      if (outcome.reported) return { actions: [] };
      return {
        actions: [
          event(
            svc,
            "Warning",
            "LoadBalancerUnsupported",
            `the cloud provider "${outcome.provider}" has no load balancers: this Service stays pending (set CLOUD_PROVIDER=edge to serve it)`,
          ),
        ],
      };
    case "add-finalizer":
      return {
        actions: [
          update(svc, (o) => {
            o.metadata.finalizers = [...(Array.isArray(o.metadata.finalizers) ? o.metadata.finalizers : []), LB_FINALIZER];
          }),
        ],
      };
    case "ensure": {
      if ("error" in outcome) {
        return { actions: [event(svc, "Warning", "SyncLoadBalancerFailed", `Error syncing load balancer: ${outcome.error}`)] };
      }
      const annotations = withAnnotations(svc, outcome.result.annotations ?? {});
      if (!semanticEqual(annotations ?? {}, svc.metadata?.annotations ?? {})) {
        return {
          actions: [
            update(svc, (o) => {
              if (annotations) o.metadata.annotations = annotations;
              else delete o.metadata.annotations;
            }),
          ],
        };
      }
      const status = { ingress: outcome.result.status.ingress };
      if (semanticEqual(status, svc.status?.loadBalancer ?? {})) return { actions: [] };
      const hosts = status.ingress.map((i) => i.hostname ?? i.ip).join(", ");
      return {
        actions: [
          update(
            svc,
            (o) => {
              o.status = { ...(isObj(o.status) ? o.status : {}), loadBalancer: status };
            },
            "status",
          ),
          event(svc, "Normal", "EnsuredLoadBalancer", `Ensured load balancer for ${name}: ${hosts}`),
        ],
      };
    }
    case "delete": {
      if ("error" in outcome) {
        return { actions: [event(svc, "Warning", "SyncLoadBalancerFailed", `Error deleting load balancer: ${outcome.error}`)] };
      }
      // A Service being deleted is about to go: only the finalizer matters.
      if (hasIngress(svc) && !svc.metadata?.deletionTimestamp) {
        return {
          actions: [
            update(
              svc,
              (o) => {
                o.status = { ...(isObj(o.status) ? o.status : {}), loadBalancer: {} };
              },
              "status",
            ),
            event(svc, "Normal", "DeletedLoadBalancer", `Deleted load balancer for ${name}`),
          ],
        };
      }
      if (!hasFinalizer(svc) && ownedAnnotations(svc).length === 0) return { actions: [] };
      return {
        actions: [
          update(svc, (o) => {
            const annotations = withAnnotations(o, {});
            if (annotations) o.metadata.annotations = annotations;
            else delete o.metadata.annotations;
            const fins = (Array.isArray(o.metadata.finalizers) ? o.metadata.finalizers : []).filter((f: string) => f !== LB_FINALIZER);
            if (fins.length > 0) o.metadata.finalizers = fins;
            else delete o.metadata.finalizers;
          }),
        ],
      };
    }
  }
}
