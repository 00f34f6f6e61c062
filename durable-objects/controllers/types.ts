// What reconcilers see and return. A reconciler is a pure function of a snapshot of
// the objects it cares about (and an injected clock) that returns the writes to make;
// the ControllerManagerDO applies them through the API registry (defaulting,
// validation, compare-and-swap on resourceVersion), so a stale snapshot loses its
// write with a Conflict and the key is simply reconciled again.

export type Obj = Record<string, any>;

/** A resource as the registry knows it: group ("" for core), version, plural. */
export interface GVR {
  group: string;
  version: string;
  resource: string;
}

export const PODS: GVR = { group: "", version: "v1", resource: "pods" };
export const NODES: GVR = { group: "", version: "v1", resource: "nodes" };
export const NAMESPACES: GVR = { group: "", version: "v1", resource: "namespaces" };
export const SERVICES: GVR = { group: "", version: "v1", resource: "services" };
export const ENDPOINTS: GVR = { group: "", version: "v1", resource: "endpoints" };
export const EVENTS: GVR = { group: "", version: "v1", resource: "events" };
export const LEASES: GVR = { group: "coordination.k8s.io", version: "v1", resource: "leases" };
export const DEPLOYMENTS: GVR = { group: "apps", version: "v1", resource: "deployments" };
export const REPLICASETS: GVR = { group: "apps", version: "v1", resource: "replicasets" };

export type Action =
  /** Create object (its metadata.namespace says where, for namespaced resources). */
  | { type: "create"; gvr: GVR; object: Obj }
  /**
   * Replace object, compare-and-swap on object.metadata.resourceVersion (which must be
   * the version the reconciler read). subresource "status" writes only status.
   */
  | { type: "update"; gvr: GVR; object: Obj; subresource?: "status" }
  /** Delete; preconditionUID guards against deleting a newer object of the same name. */
  | {
      type: "delete";
      gvr: GVR;
      namespace?: string;
      name: string;
      preconditionUID?: string;
      propagationPolicy?: "Background" | "Foreground" | "Orphan";
      gracePeriodSeconds?: number;
    }
  /** Record a core/v1 Event about an object. */
  | { type: "event"; involved: Obj; eventType: "Normal" | "Warning"; reason: string; message: string };

export interface ReconcileResult {
  actions: Action[];
  /** Reconcile this key again after this many ms even if nothing changes (deadlines). */
  requeueAfterMs?: number;
}

/** The name of the component writing events and owner references. */
export const COMPONENTS = {
  replicaset: "replicaset-controller",
  deployment: "deployment-controller",
  nodeLifecycle: "node-controller",
  gc: "garbagecollector",
  endpoints: "endpoint-controller",
  namespace: "namespace-controller",
  scheduler: "default-scheduler",
} as const;
