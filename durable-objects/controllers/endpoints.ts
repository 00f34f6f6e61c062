// Endpoints controller, after kube-controller-manager's pkg/controller/endpoint
// (syncService, podToEndpointAddressForService, FindPort, RepackSubsets).
//
// A pure, level-based reconciler: from a Service, the pods of its namespace and the
// Endpoints object of the same name, it computes the Endpoints the Service calls for and
// returns the single write (create, update or delete) that gets there, or nothing when
// the stored object already matches. The result is deterministic (addresses sorted by
// IP, subsets by their first address), so reconciling an unchanged snapshot again
// produces no write.

import { deepEqual } from "../../workers/shared/patch.ts";
import { type LabelSelector, matchLabels } from "../../workers/shared/selectors.ts";
import { isObj, objects, str } from "./podutil.ts";
import { type Action, ENDPOINTS, type Obj, type ReconcileResult } from "./types.ts";

/** Label kube puts on the Endpoints of headless services (v1.IsHeadlessService). */
export const LABEL_HEADLESS_SERVICE = "service.kubernetes.io/headless";

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isPodReady(pod: Obj): boolean {
  return objects(pod.status?.conditions).some((c) => c.type === "Ready" && c.status === "True");
}

/** The pod IP of the service's (first) IP family; the pod's primary IP when the service names none. */
function podIPFor(pod: Obj, svc: Obj): string | undefined {
  const ips = objects(pod.status?.podIPs)
    .map((p) => str(p.ip))
    .filter((ip) => ip !== "");
  if (ips.length === 0 && str(pod.status?.podIP) !== "") ips.push(pod.status.podIP);
  const family = Array.isArray(svc.spec?.ipFamilies) ? svc.spec.ipFamilies[0] : undefined;
  if (family === "IPv4" || family === "IPv6") return ips.find((ip) => ip.includes(":") === (family === "IPv6"));
  return ips[0];
}

/**
 * podutil.FindPort: a numeric targetPort is used as is (unset means the service port);
 * a named one is looked up among the pod's container ports (and restartable init
 * containers') with the same name and protocol. undefined when the name is not found.
 */
export function findPort(pod: Obj, servicePort: Obj): number | undefined {
  const tp = servicePort.targetPort;
  if (tp === undefined || tp === null || tp === 0 || tp === "") return typeof servicePort.port === "number" ? servicePort.port : undefined;
  if (typeof tp === "number") return tp;
  if (typeof tp !== "string") return undefined;
  const protocol = str(servicePort.protocol) || "TCP";
  const containers = [...objects(pod.spec?.containers), ...objects(pod.spec?.initContainers).filter((c) => c.restartPolicy === "Always")];
  for (const c of containers) {
    for (const p of objects(c.ports)) {
      if (p.name === tp && (str(p.protocol) || "TCP") === protocol && typeof p.containerPort === "number") return p.containerPort;
    }
  }
  return undefined;
}

function selectorOf(svc: Obj): LabelSelector | undefined {
  const sel = svc.spec?.selector;
  if (!isObj(sel) || Object.keys(sel).length === 0) return undefined;
  return Object.entries(sel).map(([key, v]) => ({ key, op: "=" as const, values: [String(v)] }));
}

interface Entry {
  address: Obj;
  ready: boolean;
  ports: Obj[];
}

/**
 * The subsets for a service with a selector: one address per selected pod that is not
 * terminal, has an IP, and is not terminating (unless publishNotReadyAddresses); ready
 * pods (or all, with publishNotReadyAddresses) in addresses, the rest in
 * notReadyAddresses. Addresses are grouped into subsets by their resolved port set (a
 * named targetPort may resolve to different numbers on different pods); a pod none of
 * whose ports resolve is left out. Headless services without ports list addresses with
 * no ports.
 */
export function desiredSubsets(svc: Obj, pods: Obj[], serviceNamespace: string, serviceName: string): Obj[] {
  const selector = selectorOf(svc);
  if (!selector) return [];
  const publishNotReady = svc.spec?.publishNotReadyAddresses === true;
  const headless = svc.spec?.clusterIP === "None";
  const servicePorts = objects(svc.spec?.ports);
  const entries: Entry[] = [];
  for (const pod of pods) {
    if (!isObj(pod) || !isObj(pod.metadata)) continue;
    if (pod.metadata.namespace !== undefined && pod.metadata.namespace !== serviceNamespace) continue;
    if (!matchLabels(selector, pod.metadata.labels)) continue;
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") continue;
    if (pod.metadata.deletionTimestamp && !publishNotReady) continue;
    const ip = podIPFor(pod, svc);
    if (!ip) continue;

    const address: Obj = { ip };
    if (str(pod.spec?.hostname) !== "" && pod.spec?.subdomain === serviceName) address.hostname = pod.spec.hostname;
    if (str(pod.spec?.nodeName) !== "") address.nodeName = pod.spec.nodeName;
    address.targetRef = { kind: "Pod", namespace: serviceNamespace, name: pod.metadata.name, uid: pod.metadata.uid };

    const ports: Obj[] = [];
    for (const sp of servicePorts) {
      const port = findPort(pod, sp);
      if (port === undefined) continue;
      const ep: Obj = {};
      if (str(sp.name) !== "") ep.name = sp.name;
      ep.port = port;
      ep.protocol = str(sp.protocol) || "TCP";
      if (str(sp.appProtocol) !== "") ep.appProtocol = sp.appProtocol;
      ports.push(ep);
    }
    if (servicePorts.length > 0 ? ports.length === 0 : !headless) continue;
    entries.push({ address, ready: publishNotReady || isPodReady(pod), ports });
  }

  const byPorts = new Map<string, { ports: Obj[]; ready: Obj[]; notReady: Obj[] }>();
  for (const e of entries) {
    const key = JSON.stringify(e.ports);
    let group = byPorts.get(key);
    if (!group) byPorts.set(key, (group = { ports: e.ports, ready: [], notReady: [] }));
    (e.ready ? group.ready : group.notReady).push(e.address);
  }
  const byAddress = (a: Obj, b: Obj): number => cmp(a.ip, b.ip) || cmp(str(a.targetRef?.uid), str(b.targetRef?.uid));
  const subsets: { key: string; subset: Obj }[] = [];
  for (const [key, g] of byPorts) {
    const subset: Obj = {};
    if (g.ready.length > 0) subset.addresses = g.ready.sort(byAddress);
    if (g.notReady.length > 0) subset.notReadyAddresses = g.notReady.sort(byAddress);
    if (g.ports.length > 0) subset.ports = g.ports;
    subsets.push({ key, subset });
  }
  const first = (s: Obj): Obj => (s.addresses ?? s.notReadyAddresses)[0];
  subsets.sort((a, b) => byAddress(first(a.subset), first(b.subset)) || cmp(a.key, b.key));
  return subsets.map((s) => s.subset);
}

function desiredLabels(svc: Obj): Record<string, string> {
  const labels: Record<string, string> = isObj(svc.metadata?.labels) ? { ...svc.metadata.labels } : {};
  if (svc.spec?.clusterIP === "None") labels[LABEL_HEADLESS_SERVICE] = "";
  else delete labels[LABEL_HEADLESS_SERVICE];
  return labels;
}

/**
 * Reconciles the Endpoints of one Service:
 *
 * - service gone: the Endpoints of the same name, if any, is deleted (preconditionUID);
 * - service without a selector (or an empty one): its Endpoints are the user's, left alone;
 * - otherwise the desired Endpoints is `{metadata: {name, namespace, labels: the
 *   service's labels}, subsets: desiredSubsets(...)}`: created when missing, updated
 *   (compare-and-swap on the existing resourceVersion, other fields kept) only when its
 *   subsets or labels differ.
 */
export function reconcileEndpoints(
  svc: Obj | undefined,
  pods: Obj[],
  existing: Obj | undefined,
  serviceNamespace: string,
  serviceName: string,
): ReconcileResult {
  if (!svc) {
    if (!existing) return { actions: [] };
    return {
      actions: [
        { type: "delete", gvr: ENDPOINTS, namespace: serviceNamespace, name: serviceName, preconditionUID: existing.metadata?.uid },
      ],
    };
  }
  if (!selectorOf(svc)) return { actions: [] };

  const subsets = desiredSubsets(svc, pods, serviceNamespace, serviceName);
  const labels = desiredLabels(svc);
  const actions: Action[] = [];
  if (!existing) {
    const metadata: Obj = { name: serviceName, namespace: serviceNamespace };
    if (Object.keys(labels).length > 0) metadata.labels = labels;
    const object: Obj = { apiVersion: "v1", kind: "Endpoints", metadata };
    if (subsets.length > 0) object.subsets = subsets;
    actions.push({ type: "create", gvr: ENDPOINTS, object });
    return { actions };
  }
  const sameSubsets = deepEqual(objects(existing.subsets), subsets);
  const sameLabels = deepEqual(isObj(existing.metadata?.labels) ? existing.metadata.labels : {}, labels);
  if (sameSubsets && sameLabels) return { actions };
  const object = structuredClone(existing);
  object.metadata ??= {};
  if (Object.keys(labels).length > 0) object.metadata.labels = labels;
  else delete object.metadata.labels;
  if (subsets.length > 0) object.subsets = subsets;
  else delete object.subsets;
  actions.push({ type: "update", gvr: ENDPOINTS, object });
  return { actions };
}
