// Defaulting, after kube-apiserver's pkg/apis/*/v1/defaults.go plus the few admission
// plugins that fill fields on every pod (ServiceAccount, Priority, DefaultTolerationSeconds).
// Pure: no Node or Workers APIs. Values the user set are never overwritten; as in Go, an
// empty string counts as unset for string fields, and 0 for the non-pointer probe ints.

import type { ResourceInfo } from "./resources.ts";
import { parseQuantity } from "./validation.ts";

type Obj = Record<string, any>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

const unset = (v: unknown): boolean => v === undefined || v === null;
const unsetStr = (v: unknown): boolean => v === undefined || v === null || v === "";

/** Sets o[k] = v when o[k] is absent or null. */
function def(o: Obj, k: string, v: unknown): void {
  if (unset(o[k])) o[k] = v;
}

/** Sets o[k] = v when o[k] is absent, null or "". */
function defStr(o: Obj, k: string, v: string): void {
  if (unsetStr(o[k])) o[k] = v;
}

/** Sets o[k] = v when o[k] is absent, null or 0 (Go int32 fields, not pointers). */
function defInt(o: Obj, k: string, v: number): void {
  if (unset(o[k]) || o[k] === 0) o[k] = v;
}

/** o[k] as an object, creating it when absent; undefined when it holds something else. */
function child(o: Obj, k: string): Obj | undefined {
  if (unset(o[k])) o[k] = {};
  return isObj(o[k]) ? o[k] : undefined;
}

function objects(v: unknown): Obj[] {
  return Array.isArray(v) ? v.filter(isObj) : [];
}

function kindKey(info: ResourceInfo): string {
  return info.group ? `${info.kind}.${info.group}` : info.kind;
}

// ---------------------------------------------------------------------------------------
// Pods and pod templates.

/**
 * kubelet's rule: Always when the image's tag is "latest" or it has neither tag nor digest,
 * IfNotPresent otherwise.
 */
export function defaultImagePullPolicy(image: unknown): "Always" | "IfNotPresent" {
  if (typeof image !== "string" || image === "") return "IfNotPresent";
  const at = image.indexOf("@");
  const named = at >= 0 ? image.slice(0, at) : image;
  const hasDigest = at >= 0;
  const slash = named.lastIndexOf("/");
  const colon = named.lastIndexOf(":");
  const tag = colon > slash ? named.slice(colon + 1) : "";
  if (tag === "latest") return "Always";
  if (tag === "" && !hasDigest) return "Always";
  return "IfNotPresent";
}

function defaultHTTPGet(h: unknown): void {
  if (!isObj(h)) return;
  defStr(h, "path", "/");
  defStr(h, "scheme", "HTTP");
}

function defaultProbe(p: unknown): void {
  if (!isObj(p)) return;
  defInt(p, "timeoutSeconds", 1);
  defInt(p, "periodSeconds", 10);
  defInt(p, "successThreshold", 1);
  defInt(p, "failureThreshold", 3);
  defaultHTTPGet(p.httpGet);
}

function defaultContainer(c: Obj): void {
  defStr(c, "imagePullPolicy", defaultImagePullPolicy(c.image));
  defStr(c, "terminationMessagePath", "/dev/termination-log");
  defStr(c, "terminationMessagePolicy", "File");
  for (const port of objects(c.ports)) defStr(port, "protocol", "TCP");
  def(c, "resources", {});
  for (const k of ["livenessProbe", "readinessProbe", "startupProbe"]) defaultProbe(c[k]);
  if (isObj(c.lifecycle)) {
    for (const k of ["postStart", "preStop"]) if (isObj(c.lifecycle[k])) defaultHTTPGet(c.lifecycle[k].httpGet);
  }
}

const VOLUME_MODE_SOURCES = ["configMap", "secret", "projected", "downwardAPI"];

function defaultVolume(v: Obj): void {
  if (Object.keys(v).every((k) => k === "name" || unset(v[k]))) v.emptyDir = {};
  for (const src of VOLUME_MODE_SOURCES) if (isObj(v[src])) def(v[src], "defaultMode", 420);
  if (isObj(v.hostPath)) def(v.hostPath, "type", "");
}

/** SetDefaults_PodSpec: shared by pods and pod templates. */
function defaultPodSpec(spec: Obj): void {
  defStr(spec, "dnsPolicy", "ClusterFirst");
  defStr(spec, "restartPolicy", "Always");
  def(spec, "terminationGracePeriodSeconds", 30);
  defStr(spec, "schedulerName", "default-scheduler");
  def(spec, "securityContext", {});
  for (const k of ["initContainers", "containers"]) {
    for (const c of objects(spec[k])) {
      defaultContainer(c);
      if (spec.hostNetwork === true) {
        for (const port of objects(c.ports)) if (unset(port.hostPort) || port.hostPort === 0) port.hostPort = port.containerPort;
      }
    }
  }
  for (const v of objects(spec.volumes)) defaultVolume(v);
}

const NOT_READY = "node.kubernetes.io/not-ready";
const UNREACHABLE = "node.kubernetes.io/unreachable";
const DEFAULT_TOLERATION_SECONDS = 300;

/** The DefaultTolerationSeconds admission plugin. */
function defaultTolerations(spec: Obj): void {
  if (!unset(spec.tolerations) && !Array.isArray(spec.tolerations)) return;
  const tols: unknown[] = spec.tolerations ?? [];
  const tolerates = (key: string): boolean =>
    tols.some((t) => isObj(t) && (unsetStr(t.key) || t.key === key) && (unsetStr(t.effect) || t.effect === "NoExecute"));
  const add: Obj[] = [];
  for (const key of [NOT_READY, UNREACHABLE]) {
    if (!tolerates(key)) add.push({ key, operator: "Exists", effect: "NoExecute", tolerationSeconds: DEFAULT_TOLERATION_SECONDS });
  }
  if (add.length) spec.tolerations = [...tols, ...add];
}

const SYSTEM_PRIORITY_CLASSES: Record<string, number> = {
  "system-node-critical": 2000001000,
  "system-cluster-critical": 2000000000,
};

function defaultPod(pod: Obj): void {
  const spec = child(pod, "spec");
  if (!spec) return;
  defaultPodSpec(spec);
  // SetDefaults_Pod (pods only, not templates).
  def(spec, "enableServiceLinks", true);
  for (const k of ["initContainers", "containers"]) {
    for (const c of objects(spec[k])) {
      const res = c.resources;
      if (!isObj(res) || !isObj(res.limits)) continue;
      if (unset(res.requests)) res.requests = {};
      if (!isObj(res.requests)) continue;
      for (const [name, q] of Object.entries(res.limits)) if (!Object.hasOwn(res.requests, name)) res.requests[name] = q;
    }
  }
  // ServiceAccount admission (and the deprecated serviceAccount alias).
  if (unsetStr(spec.serviceAccountName)) spec.serviceAccountName = unsetStr(spec.serviceAccount) ? "default" : spec.serviceAccount;
  defStr(spec, "serviceAccount", spec.serviceAccountName);
  // Priority admission: only what needs no PriorityClass lookup.
  if (unset(spec.priority)) {
    if (unsetStr(spec.priorityClassName)) spec.priority = 0;
    else if (Object.hasOwn(SYSTEM_PRIORITY_CLASSES, spec.priorityClassName))
      spec.priority = SYSTEM_PRIORITY_CLASSES[spec.priorityClassName];
  }
  defStr(spec, "preemptionPolicy", "PreemptLowerPriority");
  defaultTolerations(spec);
}

function defaultTemplate(spec: Obj): void {
  if (isObj(spec.template)) {
    const ts = child(spec.template, "spec");
    if (ts) defaultPodSpec(ts);
  }
}

// ---------------------------------------------------------------------------------------
// QoS class and pod status.

const QOS_RESOURCES = ["cpu", "memory"];

/** v1qos.GetPodQOS: BestEffort, Burstable or Guaranteed, from cpu/memory requests and limits. */
export function podQOSClass(spec: unknown): "BestEffort" | "Burstable" | "Guaranteed" {
  const s = isObj(spec) ? spec : {};
  const requests = new Map<string, number>();
  const limits = new Map<string, number>();
  let guaranteed = true;
  for (const c of [...objects(s.initContainers), ...objects(s.containers)]) {
    const res = isObj(c.resources) ? c.resources : {};
    const lim = isObj(res.limits) ? res.limits : {};
    // Requests default to limits (SetDefaults_Pod), in case defaulting has not run.
    const req = { ...lim, ...(isObj(res.requests) ? res.requests : {}) };
    for (const name of QOS_RESOURCES) {
      const r = quantity(req[name]);
      if (r > 0) requests.set(name, (requests.get(name) ?? 0) + r);
    }
    const found = new Set<string>();
    for (const name of QOS_RESOURCES) {
      const l = quantity(lim[name]);
      if (l > 0) {
        found.add(name);
        limits.set(name, (limits.get(name) ?? 0) + l);
      }
    }
    if (found.size !== QOS_RESOURCES.length) guaranteed = false;
  }
  if (requests.size === 0 && limits.size === 0) return "BestEffort";
  if (guaranteed) {
    for (const [name, r] of requests) if (limits.get(name) !== r) guaranteed = false;
    if (guaranteed && requests.size === limits.size) return "Guaranteed";
  }
  return "Burstable";
}

function quantity(v: unknown): number {
  const n = typeof v === "number" ? v : typeof v === "string" ? parseQuantity(v) : NaN;
  return Number.isFinite(n) ? n : 0;
}

/** Status a new pod starts with: phase Pending and its QoS class. Call on create only. */
export function defaultPodStatusOnCreate(pod: Record<string, any>): void {
  if (!isObj(pod)) return;
  const status = child(pod, "status");
  if (!status) return;
  defStr(status, "phase", "Pending");
  defStr(status, "qosClass", podQOSClass(pod.spec));
}

// ---------------------------------------------------------------------------------------
// Other kinds.

function defaultDeployment(d: Obj): void {
  const spec = child(d, "spec");
  if (!spec) return;
  def(spec, "replicas", 1);
  const strategy = child(spec, "strategy");
  if (strategy) {
    defStr(strategy, "type", "RollingUpdate");
    if (strategy.type === "RollingUpdate") {
      const ru = child(strategy, "rollingUpdate");
      if (ru) {
        def(ru, "maxUnavailable", "25%");
        def(ru, "maxSurge", "25%");
      }
    }
  }
  def(spec, "revisionHistoryLimit", 10);
  def(spec, "progressDeadlineSeconds", 600);
  defaultTemplate(spec);
}

function defaultReplicaSet(rs: Obj): void {
  const spec = child(rs, "spec");
  if (!spec) return;
  def(spec, "replicas", 1);
  defaultTemplate(spec);
}

function defaultService(svc: Obj): void {
  const spec = child(svc, "spec");
  if (!spec) return;
  defStr(spec, "type", "ClusterIP");
  defStr(spec, "sessionAffinity", "None");
  if (spec.sessionAffinity === "ClientIP") {
    const cfg = child(spec, "sessionAffinityConfig");
    const clientIP = cfg && child(cfg, "clientIP");
    if (clientIP) def(clientIP, "timeoutSeconds", 10800);
  }
  for (const port of objects(spec.ports)) {
    defStr(port, "protocol", "TCP");
    if (unsetStr(port.targetPort) || port.targetPort === 0) port.targetPort = port.port;
  }
  if (spec.type === "NodePort" || spec.type === "LoadBalancer") defStr(spec, "externalTrafficPolicy", "Cluster");
  if (spec.type === "LoadBalancer") def(spec, "allocateLoadBalancerNodePorts", true);
  if (
    typeof spec.clusterIP === "string" &&
    spec.clusterIP !== "" &&
    (unset(spec.clusterIPs) || (Array.isArray(spec.clusterIPs) && spec.clusterIPs.length === 0))
  ) {
    spec.clusterIPs = [spec.clusterIP];
  }
  if (spec.type !== "ExternalName") {
    defStr(spec, "internalTrafficPolicy", "Cluster");
    if (unset(spec.ipFamilies) || (Array.isArray(spec.ipFamilies) && spec.ipFamilies.length === 0)) {
      const ip = typeof spec.clusterIP === "string" ? spec.clusterIP : "";
      spec.ipFamilies = [ip.includes(":") ? "IPv6" : "IPv4"];
    }
    defStr(spec, "ipFamilyPolicy", "SingleStack");
  }
}

function defaultNamespace(ns: Obj): void {
  // The namespace strategy adds the "kubernetes" finalizer at create, and updates keep the
  // old spec.finalizers. A namespace being deleted is left alone: after the finalize
  // subresource empties the list, re-adding it would keep the namespace forever.
  if (!isObj(ns.metadata) || unset(ns.metadata.deletionTimestamp)) {
    const spec = child(ns, "spec");
    if (spec && unset(spec.finalizers)) spec.finalizers = ["kubernetes"];
  }
  const status = child(ns, "status");
  if (status) defStr(status, "phase", "Active");
}

function defaultNode(node: Obj): void {
  // SetDefaults_NodeStatus: allocatable defaults to capacity.
  const status = node.status;
  if (isObj(status) && isObj(status.capacity) && unset(status.allocatable)) status.allocatable = { ...status.capacity };
}

function defaultEndpoints(ep: Obj): void {
  for (const subset of objects(ep.subsets)) for (const port of objects(subset.ports)) defStr(port, "protocol", "TCP");
}

/** Fills defaults on a new or updated object in place, as kube-apiserver's defaulters do. */
export function applyDefaults(info: ResourceInfo, obj: Record<string, any>): void {
  if (!isObj(obj)) return;
  switch (kindKey(info)) {
    case "Pod":
      defaultPod(obj);
      break;
    case "Deployment.apps":
      defaultDeployment(obj);
      break;
    case "ReplicaSet.apps":
      defaultReplicaSet(obj);
      break;
    case "Service":
      defaultService(obj);
      break;
    case "Secret":
      defStr(obj, "type", "Opaque");
      break;
    case "Namespace":
      defaultNamespace(obj);
      break;
    case "Node":
      defaultNode(obj);
      break;
    case "Endpoints":
      defaultEndpoints(obj);
      break;
  }
}
