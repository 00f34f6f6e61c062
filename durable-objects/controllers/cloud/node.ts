// Node controllers of the cloud controller manager, after k8s.io/cloud-provider's
// controllers/node (initialising nodes from InstanceMetadata) and
// controllers/nodelifecycle (deleting nodes whose machine is gone, the shutdown taint).
//
// Pure: they see the Node and the manager's last view of its instance (polled on a
// timer, never per request) and return at most one write.

import { isObj, objects, str } from "../podutil.ts";
import { type Action, NODES, type Obj, type ReconcileResult } from "../types.ts";
import { type InstanceMetadata, LABEL_REGION, LABEL_ZONE } from "./provider.ts";

/** kube's taint for a node whose machine is shut down (cloudproviderapi.TaintNodeShutdown). */
export const TAINT_SHUTDOWN = "node.cloudprovider.kubernetes.io/shutdown";

/** The manager's last poll of a node's instance. error: the provider could not tell. */
export interface InstanceView {
  exists?: boolean;
  shutdown?: boolean;
  metadata?: InstanceMetadata;
  error?: string;
}

function isReady(node: Obj): boolean {
  return objects(node.status?.conditions).some((c) => c.type === "Ready" && c.status === "True");
}

function event(node: Obj, eventType: "Normal" | "Warning", reason: string, message: string): Action {
  const m = node.metadata ?? {};
  // Events about cluster-scoped objects live in "default", as kube's recorder puts them.
  return { type: "event", involved: { apiVersion: "v1", kind: "Node", metadata: { ...m, namespace: "" } }, eventType, reason, message };
}

/**
 * Node lifecycle, as kube's cloud node lifecycle controller:
 *
 * - no view yet, or the provider erred: nothing (a node is never deleted on an error);
 * - a Ready node is left alone (only the shutdown taint is removed from it);
 * - a node that is not Ready and whose providerID is this provider's: deleted when the
 *   provider says its instance does not exist, tainted `shutdown:NoSchedule` while the
 *   instance is shut down. Nodes without this provider's providerID (registered by hand,
 *   never initialised by the node controller) are not the cloud's to delete.
 */
export function reconcileCloudNodeLifecycle(node: Obj, view: InstanceView | undefined, provider: string): ReconcileResult {
  if (!view || view.error !== undefined || view.exists === undefined) return { actions: [] };
  const taints = objects(node.spec?.taints);
  const tainted = taints.some((t) => t.key === TAINT_SHUTDOWN);
  const withoutTaint = (): Action => {
    const object = structuredClone(node);
    const rest = taints.filter((t) => t.key !== TAINT_SHUTDOWN);
    if (rest.length > 0) object.spec.taints = rest;
    else delete object.spec.taints;
    return { type: "update", gvr: NODES, object };
  };
  if (isReady(node)) return { actions: tainted ? [withoutTaint()] : [] };
  if (!str(node.spec?.providerID).startsWith(`${provider}://`)) return { actions: [] };
  if (view.exists === false) {
    const name = node.metadata?.name;
    return {
      actions: [
        event(node, "Normal", "DeletingNode", `Deleting node ${name} because it does not exist in the cloud provider`),
        { type: "delete", gvr: NODES, name, preconditionUID: node.metadata?.uid },
      ],
    };
  }
  if (view.shutdown && !tainted) {
    const object = structuredClone(node);
    object.spec = { ...(isObj(object.spec) ? object.spec : {}), taints: [...taints, { key: TAINT_SHUTDOWN, effect: "NoSchedule" }] };
    return { actions: [{ type: "update", gvr: NODES, object }] };
  }
  if (!view.shutdown && tainted) return { actions: [withoutTaint()] };
  return { actions: [] };
}

/**
 * The addresses a node should have: the agent's, except that the address types the
 * cloud reports are the cloud's (an agent's InternalIP and Hostname stay; the ExternalIP
 * is what the edge saw). Order: the agent's first, then the cloud's.
 */
export function mergeAddresses(current: Obj[], cloud: { type: string; address: string }[]): Obj[] {
  const cloudTypes = new Set(cloud.map((a) => a.type));
  return [...current.filter((a) => !cloudTypes.has(a.type)), ...cloud.map((a) => ({ type: a.type, address: a.address }))];
}

/**
 * Node initialisation, as kube's cloud node controller, for nodes whose instance exists:
 * spec.providerID is set once (never changed), the zone and region labels are added when
 * the node has none (what the agent or an admin set is kept), and status.addresses get
 * the cloud's addresses merged in. Main fields first, the status on the next pass.
 */
export function reconcileCloudNode(node: Obj, view: InstanceView | undefined): ReconcileResult {
  const md = view?.metadata;
  if (!view || view.error !== undefined || view.exists !== true || !md) return { actions: [] };
  const object = structuredClone(node);
  object.metadata ??= {};
  object.spec = isObj(object.spec) ? object.spec : {};
  let changed = false;
  if (str(node.spec?.providerID) === "" && md.providerID) {
    object.spec.providerID = md.providerID;
    changed = true;
  }
  const labels: Record<string, string> = isObj(object.metadata.labels) ? { ...object.metadata.labels } : {};
  for (const [k, v] of [
    [LABEL_ZONE, md.zone],
    [LABEL_REGION, md.region],
  ] as const) {
    if (v && labels[k] === undefined) {
      labels[k] = v;
      changed = true;
    }
  }
  if (changed) {
    object.metadata.labels = labels;
    return { actions: [{ type: "update", gvr: NODES, object }] };
  }
  const current = objects(node.status?.addresses);
  const merged = mergeAddresses(current, md.nodeAddresses);
  const same = merged.length === current.length && merged.every((a, i) => a.type === current[i].type && a.address === current[i].address);
  if (same) return { actions: [] };
  object.status = { ...(isObj(object.status) ? object.status : {}), addresses: merged };
  return { actions: [{ type: "update", gvr: NODES, object, subresource: "status" }] };
}
