// Server-side printing: the meta.k8s.io Table that kubectl asks for with
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`. The columns and cell
// formatting follow kube-apiserver's printers (pkg/printers/internalversion/printers.go):
// the server always prints the wide variant (priority-1 columns included) and kubectl
// hides the priority-1 columns unless asked for `-o wide`. Pure functions only: the
// route handlers decide when to call them.

type Obj = Record<string, any>;
type Cell = string | number | boolean | null;

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export type IncludeObjectPolicy = "None" | "Metadata" | "Object";

interface TableRowCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

interface Printer {
  columns: TableColumnDefinition[];
  cells(obj: Obj, now: number): Cell[];
  conditions?(obj: Obj): TableRowCondition[] | undefined;
}

// ------------------------------------------------------------------ Accept / query

const META_GROUP = "meta.k8s.io";

interface AcceptClause {
  type: string;
  subType: string;
  q: number;
  params: Map<string, string>;
}

/** goautoneg.ParseAccept: clauses sorted by q (desc), then concrete types before wildcards. */
function parseAccept(header: string): AcceptClause[] {
  const clauses: AcceptClause[] = [];
  for (const raw of header.split(",")) {
    const parts = raw.trim().split(";");
    const range = parts[0].split("/");
    const type = range[0].trim();
    let subType: string;
    if (range.length === 1 && type === "*") subType = "*";
    else if (range.length === 2) subType = range[1].trim();
    else continue;
    const clause: AcceptClause = { type, subType, q: 1, params: new Map() };
    for (const p of parts.slice(1)) {
      const eq = p.indexOf("=");
      if (eq < 0) continue;
      const key = p.slice(0, eq).trim();
      const value = p.slice(eq + 1).trim();
      if (key === "q") {
        const q = Number.parseFloat(value);
        clause.q = Number.isNaN(q) ? 0 : q;
      } else clause.params.set(key, value);
    }
    clauses.push(clause);
  }
  const rank = (c: AcceptClause) => (c.type === "*" ? 2 : 0) + (c.subType === "*" ? 1 : 0);
  return clauses
    .map((c, i) => ({ c, i }))
    .sort((a, b) => b.c.q - a.c.q || rank(a.c) - rank(b.c) || a.i - b.i)
    .map(({ c }) => c);
}

/**
 * Parses an Accept header; returns the Table version when the clause the server would
 * pick (kube's negotiation: clauses in goautoneg order, first one the endpoint can serve)
 * is `application/json;as=Table;g=meta.k8s.io;v=v1|v1beta1`. Returns null when that clause
 * asks for the plain object (or PartialObjectMetadata), or when nothing matches.
 */
export function wantsTable(accept: string | undefined): { version: "v1" | "v1beta1" } | null {
  if (!accept) return null;
  for (const clause of parseAccept(accept)) {
    // Only JSON is served here (kube also renders Tables as YAML; that clause is skipped).
    const json =
      (clause.type === "application" && (clause.subType === "json" || clause.subType === "*")) ||
      (clause.type === "*" && clause.subType === "*");
    if (!json) continue;
    const stream = clause.params.get("stream");
    if (stream && stream !== "watch") continue;
    const as = clause.params.get("as");
    const g = clause.params.get("g");
    const v = clause.params.get("v");
    if (as === undefined && g === undefined && v === undefined) return null; // the plain object
    if (g !== META_GROUP || (v !== "v1" && v !== "v1beta1")) continue; // a transform nobody serves
    if (as === "Table") return { version: v };
    if (as === "PartialObjectMetadata" || as === "PartialObjectMetadataList") return null;
  }
  return null;
}

const INCLUDE_OBJECT: readonly string[] = ["None", "Metadata", "Object"];

/**
 * The `includeObject` table option. Missing or empty means Metadata (the server's default:
 * each row carries a PartialObjectMetadata); kubectl sends `Object` when it needs the whole
 * object (e.g. `--sort-by`). An unrecognised value also yields Metadata here; use
 * includeObjectError to reject it the way kube-apiserver does.
 */
export function includeObjectPolicy(query: URLSearchParams): IncludeObjectPolicy {
  const v = query.get("includeObject") ?? "";
  return INCLUDE_OBJECT.includes(v) ? (v as IncludeObjectPolicy) : "Metadata";
}

/** kube-apiserver's 400 message for an invalid `includeObject`, or null when it is valid. */
export function includeObjectError(query: URLSearchParams): string | null {
  const v = query.get("includeObject") ?? "";
  if (v === "" || INCLUDE_OBJECT.includes(v)) return null;
  return `Unable to convert to Table as requested: includeObject: Invalid value: ${JSON.stringify(v)}: must be 'Metadata', 'Object', 'None', or empty`;
}

// ------------------------------------------------------------------ time

// Go's zero time.Time (metav1.Time{}.IsZero()) as it appears in JSON.
const GO_ZERO_TIME = Date.parse("0001-01-01T00:00:00Z");

/** Epoch milliseconds of an RFC 3339 timestamp; null when missing, invalid or Go's zero time. */
function parseTime(v: unknown): number | null {
  if (typeof v !== "string" || v === "") return null;
  const t = Date.parse(v);
  if (Number.isNaN(t) || t === GO_ZERO_TIME) return null;
  return t;
}

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration (~2-3 significant figures). */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(ms / 3_600_000);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${days}d` : `${days}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) {
    const dy = days % 365;
    return dy === 0 ? `${years}y` : `${years}y${dy}d`;
  }
  return `${years}y`;
}

/** printers.go translateTimestampSince: "<unknown>" for a missing timestamp. */
export function translateTimestampSince(timestamp: unknown, now: Date | number): string {
  const t = parseTime(timestamp);
  if (t === null) return "<unknown>";
  return humanDuration(+now - t);
}

// ------------------------------------------------------------------ small helpers

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function arr(v: unknown): any[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}
function int(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) : 0;
}
function keyCount(v: unknown): number {
  return isObj(v) ? Object.keys(v).length : 0;
}
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
function meta(obj: Obj): Obj {
  return isObj(obj.metadata) ? obj.metadata : {};
}
function age(obj: Obj, now: number): string {
  return translateTimestampSince(meta(obj).creationTimestamp, now);
}
/** A defaulted replicas count (apps/v1 defaults spec.replicas to 1). */
function replicas(spec: unknown): number {
  return isObj(spec) && typeof spec.replicas === "number" ? int(spec.replicas) : 1;
}

/** labels.FormatLabels: sorted k=v pairs, "<none>" when empty. */
function formatLabels(labels: unknown): string {
  if (!isObj(labels)) return "<none>";
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${str(v)}`);
  return pairs.length === 0 ? "<none>" : pairs.sort(byteOrder).join(",");
}

/**
 * metav1.LabelSelectorAsSelector(sel).String(): "" for a nil or empty selector, null when
 * the selector cannot be converted (bad operator or values).
 */
function labelSelectorString(sel: unknown): string | null {
  if (!isObj(sel)) return "";
  const reqs: { key: string; text: string }[] = [];
  if (isObj(sel.matchLabels)) {
    for (const [key, value] of Object.entries(sel.matchLabels)) reqs.push({ key, text: `${key}=${str(value)}` });
  }
  for (const expr of arr(sel.matchExpressions)) {
    const key = str(expr?.key);
    const values = arr(expr?.values).map(str);
    const list = values.length === 1 ? values[0] : [...values].sort(byteOrder).join(",");
    switch (expr?.operator) {
      case "In":
      case "NotIn":
        if (values.length === 0) return null;
        reqs.push({ key, text: `${key} ${expr.operator === "In" ? "in" : "notin"} (${list})` });
        break;
      case "Exists":
      case "DoesNotExist":
        if (values.length !== 0) return null;
        reqs.push({ key, text: expr.operator === "Exists" ? key : `!${key}` });
        break;
      default:
        return null;
    }
  }
  return reqs
    .sort((a, b) => byteOrder(a.key, b.key))
    .map((r) => r.text)
    .join(",");
}

/** metav1.FormatLabelSelector: like labelSelectorString, "<none>" when empty, "<error>" when invalid. */
function formatLabelSelector(sel: unknown): string {
  const s = labelSelectorString(sel);
  if (s === null) return "<error>";
  return s === "" ? "<none>" : s;
}

/** layoutContainerCells: comma-joined container names and images. */
function containerCells(template: unknown): [string, string] {
  const containers = arr(isObj(template) && isObj(template.spec) ? template.spec.containers : undefined);
  return [containers.map((c) => str(c?.name)).join(","), containers.map((c) => str(c?.image)).join(",")];
}

/** net.JoinHostPort. */
function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

// ------------------------------------------------------------------ column definitions

function col(name: string, type: string, description: string, priority = 0, format = ""): TableColumnDefinition {
  return { name, type, format, description, priority };
}

const D = {
  name: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
  creationTimestamp:
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
  containers: "Names of each container in the template.",
  images: "Images referenced by each container in the template.",
};

const NAME = col("Name", "string", D.name, 0, "name");
const AGE = col("Age", "string", D.creationTimestamp);

const POD_COLUMNS = [
  NAME,
  col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
  col("Status", "string", "The aggregate status of the containers in this pod."),
  col(
    "Restarts",
    "string",
    "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
  ),
  AGE,
  col("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
  col(
    "Node",
    "string",
    "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    1,
  ),
  col(
    "Nominated Node",
    "string",
    "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    1,
  ),
  col(
    "Readiness Gates",
    "string",
    'If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to "True" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates',
    1,
  ),
];

const DEPLOYMENT_COLUMNS = [
  NAME,
  col("Ready", "string", "Number of the pod with ready state"),
  col("Up-to-date", "string", "Total number of non-terminating pods targeted by this deployment that have the desired template spec."),
  col(
    "Available",
    "string",
    "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
  ),
  AGE,
  col("Containers", "string", D.containers, 1),
  col("Images", "string", D.images, 1),
  col(
    "Selector",
    "string",
    "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    1,
  ),
];

const REPLICASET_COLUMNS = [
  NAME,
  col(
    "Desired",
    "integer",
    "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
  ),
  col(
    "Current",
    "integer",
    "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
  ),
  col("Ready", "integer", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
  AGE,
  col("Containers", "string", D.containers, 1),
  col("Images", "string", D.images, 1),
  col(
    "Selector",
    "string",
    "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    1,
  ),
];

const NODE_ADDRESSES =
  "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";

const NODE_COLUMNS = [
  NAME,
  col("Status", "string", "The status of the node"),
  col("Roles", "string", "The roles of the node"),
  AGE,
  col("Version", "string", "Kubelet Version reported by the node."),
  col("Internal-IP", "string", NODE_ADDRESSES, 1),
  col("External-IP", "string", NODE_ADDRESSES, 1),
  col("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
  col("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
  col(
    "Container-Runtime",
    "string",
    "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    1,
  ),
];

const SERVICE_COLUMNS = [
  NAME,
  col(
    "Type",
    "string",
    'type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is "None", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. "NodePort" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. "LoadBalancer" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. "ExternalName" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types',
  ),
  col(
    "Cluster-IP",
    "string",
    'clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are "None", empty string (""), or a valid IP address. Setting this to "None" makes a "headless service" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies',
  ),
  col(
    "External-IP",
    "string",
    "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
  ),
  col(
    "Port(s)",
    "string",
    "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
  ),
  AGE,
  col(
    "Selector",
    "string",
    "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
    1,
  ),
];

const ENDPOINTS_COLUMNS = [
  NAME,
  col(
    "Endpoints",
    "string",
    "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
  ),
  AGE,
];

const NAMESPACE_COLUMNS = [NAME, col("Status", "string", "The status of the namespace"), AGE];

const EVENT_COLUMNS = [
  col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
  col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
  col(
    "Reason",
    "string",
    "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
  ),
  col("Object", "string", "The object that this event is about."),
  col(
    "Subobject",
    "string",
    'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: "spec.containers{name}" (where "name" refers to the name of the container that triggered the event) or if no container name is specified "spec.containers[2]" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.',
    1,
  ),
  col("Source", "string", "The component reporting this event. Should be a short machine understandable string.", 1),
  col("Message", "string", "A human-readable description of the status of this operation."),
  col("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1),
  col("Count", "string", "The number of times this event has occurred.", 1),
  col("Name", "string", D.name, 1, "name"),
];

const LEASE_COLUMNS = [
  NAME,
  col(
    "Holder",
    "string",
    "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
  ),
  AGE,
];

const CONFIGMAP_COLUMNS = [
  NAME,
  col(
    "Data",
    "string",
    "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
  ),
  AGE,
];

const SECRET_COLUMNS = [
  NAME,
  col(
    "Type",
    "string",
    "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
  ),
  col(
    "Data",
    "string",
    "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
  ),
  AGE,
];

const SERVICEACCOUNT_COLUMNS = [
  NAME,
  col(
    "Secrets",
    "string",
    'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a "kubernetes.io/enforce-mountable-secrets" annotation set to "true". The "kubernetes.io/enforce-mountable-secrets" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret',
  ),
  AGE,
];

// Like a CustomResourceDefinition without additionalPrinterColumns: Name, then Age as a
// "date" column whose cell is already humanised.
const DEFAULT_COLUMNS = [NAME, col("Age", "date", D.creationTimestamp)];

// ------------------------------------------------------------------ pods

const POD_SUCCEEDED: TableRowCondition[] = [
  { type: "Completed", status: "True", reason: "Succeeded", message: "The pod has completed successfully." },
];
const POD_FAILED: TableRowCondition[] = [{ type: "Completed", status: "True", reason: "Failed", message: "The pod failed." }];

function isRestartableInitContainer(c: unknown): boolean {
  return isObj(c) && c.restartPolicy === "Always";
}

function hasCondition(status: Obj, type: string): boolean {
  return arr(status.conditions).some((c) => c?.type === type && c?.status === "True");
}

/** isPodInitializedConditionTrue: the first Initialized condition decides. */
function podInitialized(status: Obj): boolean {
  const c = arr(status.conditions).find((x) => x?.type === "Initialized");
  return c?.status === "True";
}

/** The later of a running maximum and a container's last termination time. */
function laterTermination(current: number | null, containerStatus: Obj): number | null {
  const terminated = containerStatus.lastState?.terminated;
  if (!isObj(terminated)) return current;
  const t = parseTime(terminated.finishedAt);
  return t !== null && (current === null || current < t) ? t : current;
}

/** The READY, STATUS and RESTARTS cells: printPod's status-reason logic. */
export function podStatusCells(pod: Obj, now: Date | number): { ready: string; status: string; restarts: string } {
  const spec = isObj(pod.spec) ? pod.spec : {};
  const status = isObj(pod.status) ? pod.status : {};
  const phase = str(status.phase);
  let reason = status.reason ? str(status.reason) : phase;
  for (const c of arr(status.conditions)) {
    if (c?.type === "PodScheduled" && c?.reason === "SchedulingGated") reason = "SchedulingGated";
  }

  let restarts = 0;
  let restartableInitRestarts = 0;
  let lastRestart: number | null = null;
  let lastRestartableInitRestart: number | null = null;
  let readyContainers = 0;
  let totalContainers = arr(spec.containers).length;

  const initSpecs = arr(spec.initContainers);
  const initByName = new Map<string, Obj>();
  for (const c of initSpecs) {
    initByName.set(str(c?.name), c);
    if (isRestartableInitContainer(c)) totalContainers++;
  }

  let initializing = false;
  const initStatuses = arr(status.initContainerStatuses);
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = isObj(initStatuses[i]) ? initStatuses[i] : {};
    const restartable = isRestartableInitContainer(initByName.get(str(cs.name)));
    restarts += int(cs.restartCount);
    lastRestart = laterTermination(lastRestart, cs);
    if (restartable) {
      restartableInitRestarts += int(cs.restartCount);
      lastRestartableInitRestart = laterTermination(lastRestartableInitRestart, cs);
    }
    const terminated = isObj(cs.state?.terminated) ? cs.state.terminated : null;
    const waiting = isObj(cs.state?.waiting) ? cs.state.waiting : null;
    if (terminated && int(terminated.exitCode) === 0) continue;
    if (restartable && cs.started === true) {
      if (cs.ready === true) readyContainers++;
      continue;
    }
    if (terminated) {
      if (!terminated.reason) {
        reason = int(terminated.signal) !== 0 ? `Init:Signal:${int(terminated.signal)}` : `Init:ExitCode:${int(terminated.exitCode)}`;
      } else reason = `Init:${terminated.reason}`;
    } else if (waiting?.reason && waiting.reason !== "PodInitializing") {
      reason = `Init:${waiting.reason}`;
    } else {
      reason = `Init:${i}/${initSpecs.length}`;
    }
    initializing = true;
    break;
  }

  if (!initializing || podInitialized(status)) {
    restarts = restartableInitRestarts;
    lastRestart = lastRestartableInitRestart;
    let hasRunning = false;
    const statuses = arr(status.containerStatuses);
    // Backwards, so that the first container's reason wins.
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = isObj(statuses[i]) ? statuses[i] : {};
      restarts += int(cs.restartCount);
      lastRestart = laterTermination(lastRestart, cs);
      const waiting = isObj(cs.state?.waiting) ? cs.state.waiting : null;
      const terminated = isObj(cs.state?.terminated) ? cs.state.terminated : null;
      if (waiting?.reason) reason = str(waiting.reason);
      else if (terminated?.reason) reason = str(terminated.reason);
      else if (terminated) {
        reason = int(terminated.signal) !== 0 ? `Signal:${int(terminated.signal)}` : `ExitCode:${int(terminated.exitCode)}`;
      } else if (cs.ready === true && isObj(cs.state?.running)) {
        hasRunning = true;
        readyContainers++;
      }
    }
    // Back to Running when a container still runs after another completed.
    if (reason === "Completed" && hasRunning) reason = hasCondition(status, "Ready") ? "Running" : "NotReady";
  }

  const deleting = meta(pod).deletionTimestamp != null;
  if (deleting && status.reason === "NodeLost") reason = "Unknown";
  else if (deleting && phase !== "Succeeded" && phase !== "Failed") reason = "Terminating";

  let restartsCell = String(restarts);
  if (restarts !== 0 && lastRestart !== null) restartsCell = `${restarts} (${humanDuration(+now - lastRestart)} ago)`;
  return { ready: `${readyContainers}/${totalContainers}`, status: reason, restarts: restartsCell };
}

function podCells(pod: Obj, now: number): Cell[] {
  const spec = isObj(pod.spec) ? pod.spec : {};
  const status = isObj(pod.status) ? pod.status : {};
  const { ready, status: reason, restarts } = podStatusCells(pod, now);
  const podIPs = arr(status.podIPs);
  const ip = (podIPs.length > 0 ? str(podIPs[0]?.ip) : str(status.podIP)) || "<none>";
  let readinessGates = "<none>";
  const gates = arr(spec.readinessGates);
  if (gates.length > 0) {
    let trueConditions = 0;
    for (const gate of gates) {
      const cond = arr(status.conditions).find((c) => c?.type === gate?.conditionType);
      if (cond?.status === "True") trueConditions++;
    }
    readinessGates = `${trueConditions}/${gates.length}`;
  }
  return [
    str(meta(pod).name),
    ready,
    reason,
    restarts,
    age(pod, now),
    ip,
    str(spec.nodeName) || "<none>",
    str(status.nominatedNodeName) || "<none>",
    readinessGates,
  ];
}

// ------------------------------------------------------------------ workloads

function deploymentCells(d: Obj, now: number): Cell[] {
  const status = isObj(d.status) ? d.status : {};
  const [names, images] = containerCells(d.spec?.template);
  const selector = labelSelectorString(d.spec?.selector);
  return [
    str(meta(d).name),
    `${int(status.readyReplicas)}/${replicas(d.spec)}`,
    int(status.updatedReplicas),
    int(status.availableReplicas),
    age(d, now),
    names,
    images,
    selector ?? "<invalid>",
  ];
}

function replicaSetCells(rs: Obj, now: number): Cell[] {
  const status = isObj(rs.status) ? rs.status : {};
  const [names, images] = containerCells(rs.spec?.template);
  return [
    str(meta(rs).name),
    replicas(rs.spec),
    int(status.replicas),
    int(status.readyReplicas),
    age(rs, now),
    names,
    images,
    formatLabelSelector(rs.spec?.selector),
  ];
}

// ------------------------------------------------------------------ nodes

const NODE_ROLE_PREFIX = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL = "kubernetes.io/role";

/** findNodeRoles: node-role.kubernetes.io/<role> keys and kubernetes.io/role=<role>, sorted. */
function nodeRoles(node: Obj): string[] {
  const roles = new Set<string>();
  const labels = isObj(meta(node).labels) ? meta(node).labels : {};
  for (const [k, v] of Object.entries(labels)) {
    if (k.startsWith(NODE_ROLE_PREFIX)) {
      const role = k.slice(NODE_ROLE_PREFIX.length);
      if (role) roles.add(role);
    } else if (k === NODE_ROLE_LABEL && str(v) !== "") roles.add(str(v));
  }
  return [...roles].sort(byteOrder);
}

function nodeAddress(node: Obj, type: string): string {
  const a = arr(node.status?.addresses).find((x) => x?.type === type);
  return a ? str(a.address) : "<none>";
}

function nodeCells(node: Obj, now: number): Cell[] {
  const status = isObj(node.status) ? node.status : {};
  const info = isObj(status.nodeInfo) ? status.nodeInfo : {};
  const states: string[] = [];
  // The last Ready condition wins, as in kube's condition map.
  const ready = arr(status.conditions).findLast((c) => c?.type === "Ready");
  if (ready) states.push(ready.status === "True" ? "Ready" : "NotReady");
  if (states.length === 0) states.push("Unknown");
  if (node.spec?.unschedulable === true) states.push("SchedulingDisabled");
  const roles = nodeRoles(node).join(",");
  return [
    str(meta(node).name),
    states.join(","),
    roles || "<none>",
    age(node, now),
    str(info.kubeletVersion),
    nodeAddress(node, "InternalIP"),
    nodeAddress(node, "ExternalIP"),
    str(info.osImage) || "<unknown>",
    str(info.kernelVersion) || "<unknown>",
    str(info.containerRuntimeVersion) || "<unknown>",
  ];
}

// ------------------------------------------------------------------ services and endpoints

/** loadBalancerStatusStringer in wide mode (the server always prints wide): sorted, unique. */
function loadBalancerIngress(svc: Obj): string {
  const seen = new Set<string>();
  for (const ing of arr(svc.status?.loadBalancer?.ingress)) {
    if (str(ing?.ip)) seen.add(str(ing.ip));
    else if (str(ing?.hostname)) seen.add(str(ing.hostname));
  }
  return [...seen].sort(byteOrder).join(",");
}

function serviceExternalIP(svc: Obj, type: string): string {
  const externalIPs = arr(svc.spec?.externalIPs).map(str);
  switch (type) {
    case "ClusterIP":
    case "NodePort":
      return externalIPs.length > 0 ? externalIPs.join(",") : "<none>";
    case "LoadBalancer": {
      const lb = loadBalancerIngress(svc);
      if (externalIPs.length > 0) return [...(lb ? lb.split(",") : []), ...externalIPs].join(",");
      return lb || "<pending>";
    }
    case "ExternalName":
      return str(svc.spec?.externalName);
  }
  return "<unknown>";
}

/** makePortString: "80/TCP", "80:30080/TCP", comma-joined. */
function servicePorts(svc: Obj): string {
  return arr(svc.spec?.ports)
    .map((p) => {
      const protocol = str(p?.protocol) || "TCP";
      return int(p?.nodePort) > 0 ? `${int(p.port)}:${int(p.nodePort)}/${protocol}` : `${int(p?.port)}/${protocol}`;
    })
    .join(",");
}

function serviceCells(svc: Obj, now: number): Cell[] {
  const spec = isObj(svc.spec) ? svc.spec : {};
  const type = str(spec.type) || "ClusterIP";
  const clusterIPs = arr(spec.clusterIPs);
  const clusterIP = clusterIPs.length > 0 ? str(clusterIPs[0]) : str(spec.clusterIP) || "<none>";
  return [
    str(meta(svc).name),
    type,
    clusterIP,
    serviceExternalIP(svc, type),
    servicePorts(svc) || "<none>",
    age(svc, now),
    formatLabels(spec.selector),
  ];
}

/** formatEndpoints: up to three host:port pairs, then " + N more...". */
export function formatEndpoints(endpoints: Obj): string {
  const subsets = arr(endpoints.subsets);
  if (subsets.length === 0) return "<none>";
  const max = 3;
  const list: string[] = [];
  let more = false;
  let count = 0;
  for (const ss of subsets) {
    const addresses = arr(ss?.addresses);
    const ports = arr(ss?.ports);
    if (ports.length === 0) {
      // Headless services may have no ports.
      count += addresses.length;
      for (const a of addresses) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(str(a?.ip));
      }
      continue;
    }
    for (const port of ports) {
      count += addresses.length;
      for (const a of addresses) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(joinHostPort(str(a?.ip), int(port?.port)));
      }
    }
  }
  const joined = list.join(",");
  return more ? `${joined} + ${count - max} more...` : joined;
}

// ------------------------------------------------------------------ events

function formatEventSource(ev: Obj): string {
  const component = str(ev.source?.component) || str(ev.reportingComponent);
  const instance = str(ev.source?.host) || str(ev.reportingInstance);
  return instance ? `${component}, ${instance}` : component;
}

function eventCells(ev: Obj, now: number): Cell[] {
  let firstSeen = translateTimestampSince(ev.firstTimestamp, now);
  if (parseTime(ev.firstTimestamp) === null) firstSeen = translateTimestampSince(ev.eventTime, now);
  let lastSeen = translateTimestampSince(ev.lastTimestamp, now);
  if (parseTime(ev.lastTimestamp) === null) lastSeen = firstSeen;
  let count = int(ev.count);
  if (isObj(ev.series)) {
    lastSeen = translateTimestampSince(ev.series.lastObservedTime, now);
    count = int(ev.series.count);
  } else if (count === 0) {
    count = 1; // singleton events have no count in the new API
  }
  const involved = isObj(ev.involvedObject) ? ev.involvedObject : {};
  const kind = str(involved.kind).toLowerCase();
  const target = str(involved.name) ? `${kind}/${str(involved.name)}` : kind;
  return [
    lastSeen,
    str(ev.type),
    str(ev.reason),
    target,
    str(involved.fieldPath),
    formatEventSource(ev),
    str(ev.message).trim(),
    firstSeen,
    count,
    str(meta(ev).name),
  ];
}

// ------------------------------------------------------------------ the rest

function secretDataCount(secret: Obj): number {
  // The internal type folds stringData into data, so count both (once per key).
  const keys = new Set([
    ...Object.keys(isObj(secret.data) ? secret.data : {}),
    ...Object.keys(isObj(secret.stringData) ? secret.stringData : {}),
  ]);
  return keys.size;
}

const PRINTERS: Record<string, Printer> = {
  pods: {
    columns: POD_COLUMNS,
    cells: podCells,
    conditions: (pod) => {
      const phase = pod.status?.phase;
      return phase === "Succeeded" ? POD_SUCCEEDED : phase === "Failed" ? POD_FAILED : undefined;
    },
  },
  deployments: { columns: DEPLOYMENT_COLUMNS, cells: deploymentCells },
  replicasets: { columns: REPLICASET_COLUMNS, cells: replicaSetCells },
  nodes: { columns: NODE_COLUMNS, cells: nodeCells },
  services: { columns: SERVICE_COLUMNS, cells: serviceCells },
  endpoints: { columns: ENDPOINTS_COLUMNS, cells: (o, now) => [str(meta(o).name), formatEndpoints(o), age(o, now)] },
  namespaces: { columns: NAMESPACE_COLUMNS, cells: (o, now) => [str(meta(o).name), str(o.status?.phase), age(o, now)] },
  events: { columns: EVENT_COLUMNS, cells: eventCells },
  leases: { columns: LEASE_COLUMNS, cells: (o, now) => [str(meta(o).name), str(o.spec?.holderIdentity), age(o, now)] },
  configmaps: {
    columns: CONFIGMAP_COLUMNS,
    cells: (o, now) => [str(meta(o).name), keyCount(o.data) + keyCount(o.binaryData), age(o, now)],
  },
  secrets: { columns: SECRET_COLUMNS, cells: (o, now) => [str(meta(o).name), str(o.type), secretDataCount(o), age(o, now)] },
  serviceaccounts: { columns: SERVICEACCOUNT_COLUMNS, cells: (o, now) => [str(meta(o).name), arr(o.secrets).length, age(o, now)] },
};

const DEFAULT_PRINTER: Printer = { columns: DEFAULT_COLUMNS, cells: (o, now) => [str(meta(o).name), age(o, now)] };

function printerFor(resource: string): Printer {
  return Object.hasOwn(PRINTERS, resource) ? PRINTERS[resource] : DEFAULT_PRINTER;
}

// ------------------------------------------------------------------ tables

/** The column definitions for a resource (by plural, e.g. "pods"); priority 1 marks `-o wide` columns. */
export function columnsFor(resource: string): TableColumnDefinition[] {
  return printerFor(resource).columns.map((c) => ({ ...c }));
}

/** The Table's ListMeta: from the list, or a single object's resourceVersion (as kube does for get and watch). */
function tableMetadata(objects: Obj[], listMeta: Record<string, unknown> | undefined): Obj {
  const out: Obj = {};
  if (listMeta) {
    if (typeof listMeta.resourceVersion === "string" && listMeta.resourceVersion !== "") out.resourceVersion = listMeta.resourceVersion;
    if (typeof listMeta.continue === "string" && listMeta.continue !== "") out.continue = listMeta.continue;
    if (typeof listMeta.remainingItemCount === "number") out.remainingItemCount = listMeta.remainingItemCount;
  } else if (objects.length === 1) {
    const rv = meta(objects[0]).resourceVersion;
    if (typeof rv === "string" && rv !== "") out.resourceVersion = rv;
  }
  return out;
}

function rowObject(obj: Obj, policy: IncludeObjectPolicy, apiVersion: string): Obj | undefined {
  switch (policy) {
    case "None":
      return undefined;
    case "Object":
      return obj;
    default:
      return { kind: "PartialObjectMetadata", apiVersion, metadata: { ...meta(obj) } };
  }
}

/**
 * A Table of the given objects, shaped as kube-apiserver returns it. listMeta carries
 * resourceVersion/continue/remainingItemCount from the list; without it a single object's
 * resourceVersion is used. noHeaders sends `columnDefinitions: null`, as kube does on every
 * watch event after the first.
 */
export function toTable(
  resource: string,
  objects: Record<string, any>[],
  now: Date,
  opts: {
    includeObject: IncludeObjectPolicy;
    listMeta?: Record<string, unknown>;
    apiVersion?: "meta.k8s.io/v1" | "meta.k8s.io/v1beta1";
    noHeaders?: boolean;
  },
): Record<string, any> {
  const apiVersion = opts.apiVersion ?? "meta.k8s.io/v1";
  const printer = printerFor(resource);
  const nowMs = now.getTime();
  const rows = objects.map((obj) => {
    const row: Obj = { cells: printer.cells(obj, nowMs) };
    const conditions = printer.conditions?.(obj);
    if (conditions) row.conditions = conditions.map((c) => ({ ...c }));
    const object = rowObject(obj, opts.includeObject, apiVersion);
    if (object !== undefined) row.object = object;
    return row;
  });
  return {
    kind: "Table",
    apiVersion,
    metadata: tableMetadata(objects, opts.listMeta),
    columnDefinitions: opts.noHeaders ? null : columnsFor(resource),
    rows,
  };
}
