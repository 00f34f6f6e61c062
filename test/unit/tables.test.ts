import { describe, expect, it } from "vitest";
import {
  columnsFor,
  formatEndpoints,
  humanDuration,
  includeObjectError,
  includeObjectPolicy,
  podStatusCells,
  toTable,
  translateTimestampSince,
  wantsTable,
} from "../../workers/api/tables.ts";

type Obj = Record<string, any>;

// ------------------------------------------------------------------ fixtures

const NOW = new Date("2024-06-01T12:00:00Z");
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** An RFC 3339 timestamp `ms` before NOW. */
function ago(ms: number): string {
  return new Date(NOW.getTime() - ms).toISOString().replace(".000Z", "Z");
}

function metadata(name: string, extra: Obj = {}): Obj {
  return { name, namespace: "default", uid: `uid-${name}`, resourceVersion: "42", creationTimestamp: ago(10 * MINUTE), ...extra };
}

/** A one-row table's cells, keyed by column name. */
function row(resource: string, obj: Obj): Record<string, unknown> {
  const table = toTable(resource, [obj], NOW, { includeObject: "None" });
  const cells = table.rows[0].cells as unknown[];
  return Object.fromEntries(table.columnDefinitions.map((c: Obj, i: number) => [c.name, cells[i]]));
}

const running = { running: { startedAt: ago(9 * MINUTE) } };
const waiting = (reason: string) => ({ waiting: { reason } });
const terminated = (reason: string, exitCode = 0, extra: Obj = {}) => ({ terminated: { reason, exitCode, ...extra } });

function containerStatus(name: string, state: Obj, extra: Obj = {}): Obj {
  return { name, image: "nginx", ready: false, restartCount: 0, state, ...extra };
}

interface PodOpts {
  phase?: string;
  containers?: string[];
  statuses?: Obj[];
  initContainers?: Obj[];
  initStatuses?: Obj[];
  conditions?: Obj[];
  deleting?: boolean;
  reason?: string;
  spec?: Obj;
  status?: Obj;
}

function pod(opts: PodOpts = {}): Obj {
  const status: Obj = { phase: opts.phase ?? "Running", conditions: opts.conditions ?? [], ...opts.status };
  if (opts.statuses) status.containerStatuses = opts.statuses;
  if (opts.initStatuses) status.initContainerStatuses = opts.initStatuses;
  if (opts.reason) status.reason = opts.reason;
  const spec: Obj = { containers: (opts.containers ?? ["app"]).map((name) => ({ name, image: "nginx" })), ...opts.spec };
  if (opts.initContainers) spec.initContainers = opts.initContainers;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: metadata("web-1", opts.deleting ? { deletionTimestamp: ago(5 * SECOND) } : {}),
    spec,
    status,
  };
}

const readyCondition = (status: "True" | "False") => ({ type: "Ready", status });
const initialized = (status: "True" | "False") => ({ type: "Initialized", status });

function deployment(opts: { replicas?: number; status?: Obj; selector?: Obj } = {}): Obj {
  const spec: Obj = {
    selector: opts.selector ?? { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" } },
      spec: {
        containers: [
          { name: "web", image: "nginx:1.25" },
          { name: "sidecar", image: "busybox" },
        ],
      },
    },
  };
  if (opts.replicas !== undefined) spec.replicas = opts.replicas;
  return { apiVersion: "apps/v1", kind: "Deployment", metadata: metadata("web"), spec, status: opts.status ?? {} };
}

function replicaSet(opts: { replicas?: number; status?: Obj; selector?: Obj } = {}): Obj {
  const d = deployment(opts);
  return { ...d, kind: "ReplicaSet", metadata: metadata("web-abc") };
}

function node(
  opts: { ready?: "True" | "False" | "Unknown" | null; unschedulable?: boolean; labels?: Obj; info?: Obj; addresses?: Obj[] } = {},
): Obj {
  const conditions =
    opts.ready === null
      ? []
      : [
          { type: "MemoryPressure", status: "False" },
          { type: "Ready", status: opts.ready ?? "True" },
        ];
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "edge-1", creationTimestamp: ago(3 * DAY), labels: opts.labels ?? {} },
    spec: opts.unschedulable ? { unschedulable: true } : {},
    status: {
      conditions,
      addresses: opts.addresses ?? [
        { type: "InternalIP", address: "10.0.0.5" },
        { type: "Hostname", address: "edge-1" },
      ],
      nodeInfo: opts.info ?? {
        kubeletVersion: "v1.31.0",
        osImage: "Debian GNU/Linux 12 (bookworm)",
        kernelVersion: "6.1.0",
        containerRuntimeVersion: "containerd://1.7.0",
      },
    },
  };
}

function service(spec: Obj, status: Obj = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadata("web"),
    spec: { clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10"], ports: [{ port: 80, protocol: "TCP" }], ...spec },
    status,
  };
}

function endpoints(subsets: Obj[] | undefined): Obj {
  const ep: Obj = { apiVersion: "v1", kind: "Endpoints", metadata: metadata("web") };
  if (subsets) ep.subsets = subsets;
  return ep;
}

const addrs = (...ips: string[]) => ips.map((ip) => ({ ip }));

function event(extra: Obj = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: metadata("web-1.17d"),
    involvedObject: { kind: "Pod", namespace: "default", name: "web-1", fieldPath: "spec.containers{app}" },
    reason: "BackOff",
    message: "Back-off restarting failed container\n",
    source: { component: "kubelet", host: "edge-1" },
    firstTimestamp: ago(HOUR),
    lastTimestamp: ago(5 * MINUTE),
    count: 3,
    type: "Warning",
    ...extra,
  };
}

// ------------------------------------------------------------------ content negotiation

const KUBECTL_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

describe("wantsTable", () => {
  it.each<[string, string | undefined, { version: string } | null]>([
    ["kubectl get's Accept header", KUBECTL_ACCEPT, { version: "v1" }],
    [
      "an older kubectl asking for v1beta1 first",
      "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
      { version: "v1beta1" },
    ],
    ["a single v1 Table clause", "application/json;as=Table;v=v1;g=meta.k8s.io", { version: "v1" }],
    ["parameters with spaces", "application/json; as=Table; v=v1; g=meta.k8s.io", { version: "v1" }],
    ["plain JSON", "application/json", null],
    ["a JSON clause listed before the Table one", "application/json,application/json;as=Table;v=v1;g=meta.k8s.io", null],
    ["a Table clause preferred by q", "application/json;q=0.5,application/json;as=Table;v=v1;g=meta.k8s.io", { version: "v1" }],
    ["any type", "*/*", null],
    ["no header", undefined, null],
    ["an empty header", "", null],
    ["a Table in another group", "application/json;as=Table;v=v1;g=example.com,application/json", null],
    [
      "an unknown Table version before a known one",
      "application/json;as=Table;v=v2;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io",
      { version: "v1beta1" },
    ],
    [
      "a protobuf Table before a JSON one",
      "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io",
      { version: "v1" },
    ],
    ["a YAML Table only", "application/yaml;as=Table;v=v1;g=meta.k8s.io", null],
    [
      "PartialObjectMetadataList (metadata informers)",
      "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
      null,
    ],
    ["a Table through a wildcard", "*/*;as=Table;v=v1;g=meta.k8s.io", { version: "v1" }],
  ])("recognises %s", (_name, accept, expected) => {
    expect(wantsTable(accept)).toEqual(expected);
  });
});

describe("includeObject", () => {
  it.each<[string, "None" | "Metadata" | "Object", string | null]>([
    ["", "Metadata", null],
    ["includeObject=", "Metadata", null],
    ["includeObject=Metadata", "Metadata", null],
    ["includeObject=Object", "Object", null],
    ["includeObject=None", "None", null],
    [
      "includeObject=object",
      "Metadata",
      `Unable to convert to Table as requested: includeObject: Invalid value: "object": must be 'Metadata', 'Object', 'None', or empty`,
    ],
  ])("reads %j as %s", (query, policy, error) => {
    const q = new URLSearchParams(query);
    expect(includeObjectPolicy(q)).toBe(policy);
    expect(includeObjectError(q)).toBe(error);
  });

  const pods = [pod(), { ...pod(), metadata: metadata("web-2", { labels: { app: "web" } }) }];

  it("carries PartialObjectMetadata in each row by default", () => {
    const table = toTable("pods", pods, NOW, { includeObject: "Metadata" });
    expect(table.rows.map((r: Obj) => r.object)).toEqual([
      { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: pods[0].metadata },
      { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: pods[1].metadata },
    ]);
  });

  it("labels PartialObjectMetadata with the Table's own group version", () => {
    const table = toTable("pods", pods, NOW, { includeObject: "Metadata", apiVersion: "meta.k8s.io/v1beta1" });
    expect(table.apiVersion).toBe("meta.k8s.io/v1beta1");
    expect(table.rows[0].object.apiVersion).toBe("meta.k8s.io/v1beta1");
  });

  it("carries the whole object for Object", () => {
    const table = toTable("pods", pods, NOW, { includeObject: "Object" });
    expect(table.rows[1].object).toEqual(pods[1]);
  });

  it("omits the object for None", () => {
    const table = toTable("pods", pods, NOW, { includeObject: "None" });
    expect(table.rows.every((r: Obj) => !("object" in r))).toBe(true);
  });
});

// ------------------------------------------------------------------ table shape

describe("toTable", () => {
  it("is shaped like kube-apiserver's Table", () => {
    const table = toTable(
      "namespaces",
      [{ metadata: { name: "default", creationTimestamp: ago(2 * DAY) }, status: { phase: "Active" } }],
      NOW,
      {
        includeObject: "None",
        listMeta: { resourceVersion: "100", continue: "abc", remainingItemCount: 4 },
      },
    );
    expect(table).toEqual({
      kind: "Table",
      apiVersion: "meta.k8s.io/v1",
      metadata: { resourceVersion: "100", continue: "abc", remainingItemCount: 4 },
      columnDefinitions: columnsFor("namespaces"),
      rows: [{ cells: ["default", "Active", "2d"] }],
    });
    expect(Object.keys(table)).toEqual(["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]);
    expect(Object.keys(table.columnDefinitions[0])).toEqual(["name", "type", "format", "description", "priority"]);
  });

  it("keeps remainingItemCount of zero but drops an empty continue", () => {
    const table = toTable("pods", [], NOW, {
      includeObject: "Metadata",
      listMeta: { resourceVersion: "7", continue: "", remainingItemCount: 0 },
    });
    expect(table.metadata).toEqual({ resourceVersion: "7", remainingItemCount: 0 });
    expect(table.rows).toEqual([]);
  });

  it("takes a single object's resourceVersion when there is no list (get, watch events)", () => {
    expect(toTable("pods", [pod()], NOW, { includeObject: "None" }).metadata).toEqual({ resourceVersion: "42" });
    expect(toTable("pods", [pod(), pod()], NOW, { includeObject: "None" }).metadata).toEqual({});
  });

  it("sends null column definitions when headers are not wanted (watch events after the first)", () => {
    expect(toTable("pods", [pod()], NOW, { includeObject: "None", noHeaders: true }).columnDefinitions).toBeNull();
  });

  it.each([
    ["pods", pod()],
    ["deployments", deployment({ replicas: 2 })],
    ["replicasets", replicaSet({ replicas: 2 })],
    ["nodes", node()],
    ["services", service({})],
    ["endpoints", endpoints([{ addresses: addrs("10.0.0.1"), ports: [{ port: 80 }] }])],
    ["namespaces", { metadata: { name: "ns" } }],
    ["events", event()],
    ["leases", { metadata: metadata("l"), spec: {} }],
    ["configmaps", { metadata: metadata("c") }],
    ["secrets", { metadata: metadata("s") }],
    ["serviceaccounts", { metadata: metadata("sa") }],
    ["widgets", { metadata: metadata("w") }],
  ])("prints as many %s cells as there are columns", (resource, obj) => {
    const table = toTable(resource, [obj], NOW, { includeObject: "None" });
    expect(table.rows[0].cells).toHaveLength(table.columnDefinitions.length);
  });
});

describe("columnsFor", () => {
  // [resource, default columns, -o wide columns (priority 1)]
  it.each<[string, string[], string[]]>([
    ["pods", ["Name", "Ready", "Status", "Restarts", "Age"], ["IP", "Node", "Nominated Node", "Readiness Gates"]],
    ["deployments", ["Name", "Ready", "Up-to-date", "Available", "Age"], ["Containers", "Images", "Selector"]],
    ["replicasets", ["Name", "Desired", "Current", "Ready", "Age"], ["Containers", "Images", "Selector"]],
    [
      "nodes",
      ["Name", "Status", "Roles", "Age", "Version"],
      ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"],
    ],
    ["services", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"], ["Selector"]],
    ["endpoints", ["Name", "Endpoints", "Age"], []],
    ["namespaces", ["Name", "Status", "Age"], []],
    ["events", ["Last Seen", "Type", "Reason", "Object", "Message"], ["Subobject", "Source", "First Seen", "Count", "Name"]],
    ["leases", ["Name", "Holder", "Age"], []],
    ["configmaps", ["Name", "Data", "Age"], []],
    ["secrets", ["Name", "Type", "Data", "Age"], []],
    ["serviceaccounts", ["Name", "Secrets", "Age"], []],
    ["widgets", ["Name", "Age"], []],
  ])("lists the %s columns kubectl shows, wide ones at priority 1", (resource, normal, wide) => {
    const cols = columnsFor(resource);
    expect(cols.filter((c) => c.priority === 0).map((c) => c.name)).toEqual(normal);
    expect(cols.filter((c) => c.priority === 1).map((c) => c.name)).toEqual(wide);
  });

  it("marks the name column with format name", () => {
    expect(columnsFor("pods")[0]).toMatchObject({ name: "Name", type: "string", format: "name", priority: 0 });
    expect(columnsFor("events").filter((c) => c.format === "name")).toEqual([expect.objectContaining({ name: "Name", priority: 1 })]);
    expect(columnsFor("replicasets")[1]).toMatchObject({ name: "Desired", type: "integer", format: "" });
  });

  it("returns copies that callers may change", () => {
    columnsFor("pods")[0].name = "changed";
    expect(columnsFor("pods")[0].name).toBe("Name");
  });
});

// ------------------------------------------------------------------ AGE

describe("humanDuration (AGE)", () => {
  it.each<[number, string]>([
    [0, "0s"],
    [5 * SECOND, "5s"],
    [119 * SECOND, "119s"],
    [2 * MINUTE, "2m"],
    [3 * MINUTE + 20 * SECOND, "3m20s"],
    [9 * MINUTE + 59 * SECOND, "9m59s"],
    [10 * MINUTE + 30 * SECOND, "10m"],
    [179 * MINUTE, "179m"],
    [3 * HOUR, "3h"],
    [3 * HOUR + 5 * MINUTE, "3h5m"],
    [8 * HOUR + 30 * MINUTE, "8h"],
    [47 * HOUR, "47h"],
    [2 * DAY, "2d"],
    [2 * DAY + 3 * HOUR, "2d3h"],
    [8 * DAY + 3 * HOUR, "8d"],
    [729 * DAY, "729d"],
    [2 * 365 * DAY, "2y"],
    [2 * 365 * DAY + 10 * DAY, "2y10d"],
    [9 * 365 * DAY + 100 * DAY, "9y"],
    [-1500, "0s"],
    [-2 * SECOND, "<invalid>"],
  ])("formats %d ms as %s", (ms, expected) => {
    expect(humanDuration(ms)).toBe(expected);
  });

  it.each<[string, unknown, string]>([
    ["a timestamp", ago(3 * MINUTE + 20 * SECOND), "3m20s"],
    ["a timestamp with fractional seconds", "2024-06-01T11:59:55.250000Z", "4s"],
    ["a missing timestamp", undefined, "<unknown>"],
    ["Go's zero time", "0001-01-01T00:00:00Z", "<unknown>"],
    ["garbage", "yesterday", "<unknown>"],
  ])("shows %s as %s", (_name, ts, expected) => {
    expect(translateTimestampSince(ts, NOW)).toBe(expected);
    expect(row("widgets", { metadata: { name: "w", creationTimestamp: ts } }).Age).toBe(expected);
  });
});

// ------------------------------------------------------------------ pods

describe("pod READY, STATUS and RESTARTS", () => {
  it.each<[string, Obj, string, string, string]>([
    ["a running ready pod", pod({ statuses: [containerStatus("app", running, { ready: true })] }), "1/1", "Running", "0"],
    ["a pending pod without statuses", pod({ phase: "Pending" }), "0/1", "Pending", "0"],
    ["a pod with no phase yet", pod({ phase: "" }), "0/1", "", "0"],
    [
      "a pod pulling its image",
      pod({ phase: "Pending", statuses: [containerStatus("app", waiting("ContainerCreating"))] }),
      "0/1",
      "ContainerCreating",
      "0",
    ],
    [
      "a crash-looping pod",
      pod({
        statuses: [
          containerStatus("app", waiting("CrashLoopBackOff"), {
            restartCount: 5,
            lastState: terminated("Error", 1, { finishedAt: ago(5 * MINUTE) }),
          }),
        ],
      }),
      "0/1",
      "CrashLoopBackOff",
      "5 (5m ago)",
    ],
    [
      "restarts without a last termination time",
      pod({ statuses: [containerStatus("app", running, { ready: true, restartCount: 3 })] }),
      "1/1",
      "Running",
      "3",
    ],
    ["a completed pod", pod({ phase: "Succeeded", statuses: [containerStatus("app", terminated("Completed"))] }), "0/1", "Completed", "0"],
    ["a failed pod", pod({ phase: "Failed", statuses: [containerStatus("app", terminated("Error", 1))] }), "0/1", "Error", "0"],
    [
      "a container killed without a reason",
      pod({ statuses: [containerStatus("app", { terminated: { exitCode: 137 } })] }),
      "0/1",
      "ExitCode:137",
      "0",
    ],
    [
      "a container killed by a signal",
      pod({ statuses: [containerStatus("app", { terminated: { exitCode: 0, signal: 9 } })] }),
      "0/1",
      "Signal:9",
      "0",
    ],
    [
      "a pod being deleted",
      pod({ deleting: true, statuses: [containerStatus("app", running, { ready: true })] }),
      "1/1",
      "Terminating",
      "0",
    ],
    [
      "a completed pod being deleted",
      pod({ phase: "Succeeded", deleting: true, statuses: [containerStatus("app", terminated("Completed"))] }),
      "0/1",
      "Completed",
      "0",
    ],
    ["a pod on a lost node being deleted", pod({ deleting: true, reason: "NodeLost" }), "0/1", "Unknown", "0"],
    ["an evicted pod", pod({ phase: "Failed", reason: "Evicted" }), "0/1", "Evicted", "0"],
    [
      "a scheduling-gated pod",
      pod({ phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "SchedulingGated" }] }),
      "0/1",
      "SchedulingGated",
      "0",
    ],
    [
      "two containers, one ready",
      pod({
        containers: ["app", "sidecar"],
        statuses: [containerStatus("app", running, { ready: true }), containerStatus("sidecar", running)],
      }),
      "1/2",
      "Running",
      "0",
    ],
    [
      "the first container's reason winning",
      pod({
        containers: ["app", "sidecar"],
        statuses: [containerStatus("app", waiting("ImagePullBackOff")), containerStatus("sidecar", waiting("CrashLoopBackOff"))],
      }),
      "0/2",
      "ImagePullBackOff",
      "0",
    ],
    [
      "one container completed while another still runs (Ready)",
      pod({
        containers: ["job", "app"],
        conditions: [readyCondition("True")],
        statuses: [containerStatus("job", terminated("Completed")), containerStatus("app", running, { ready: true })],
      }),
      "1/2",
      "Running",
      "0",
    ],
    [
      "one container completed while another still runs (not Ready)",
      pod({
        containers: ["job", "app"],
        conditions: [readyCondition("False")],
        statuses: [containerStatus("job", terminated("Completed")), containerStatus("app", running, { ready: true })],
      }),
      "1/2",
      "NotReady",
      "0",
    ],
    [
      "an init container still running",
      pod({
        phase: "Pending",
        initContainers: [{ name: "init", image: "busybox" }],
        initStatuses: [containerStatus("init", running)],
        statuses: [containerStatus("app", waiting("PodInitializing"))],
        conditions: [initialized("False")],
      }),
      "0/1",
      "Init:0/1",
      "0",
    ],
    [
      "the second of two init containers waiting",
      pod({
        phase: "Pending",
        initContainers: [
          { name: "a", image: "busybox" },
          { name: "b", image: "busybox" },
        ],
        initStatuses: [containerStatus("a", terminated("Completed")), containerStatus("b", waiting("PodInitializing"))],
      }),
      "0/1",
      "Init:1/2",
      "0",
    ],
    [
      "a crash-looping init container",
      pod({
        phase: "Pending",
        initContainers: [{ name: "init", image: "busybox" }],
        initStatuses: [
          containerStatus("init", waiting("CrashLoopBackOff"), {
            restartCount: 2,
            lastState: terminated("Error", 1, { finishedAt: ago(30 * SECOND) }),
          }),
        ],
      }),
      "0/1",
      "Init:CrashLoopBackOff",
      "2 (30s ago)",
    ],
    [
      "a failed init container",
      pod({ phase: "Pending", initContainers: [{ name: "init" }], initStatuses: [containerStatus("init", terminated("Error", 1))] }),
      "0/1",
      "Init:Error",
      "0",
    ],
    [
      "an init container exiting without a reason",
      pod({
        phase: "Pending",
        initContainers: [{ name: "init" }],
        initStatuses: [containerStatus("init", { terminated: { exitCode: 2 } })],
      }),
      "0/1",
      "Init:ExitCode:2",
      "0",
    ],
    [
      "a started sidecar (restartable init container)",
      pod({
        initContainers: [{ name: "proxy", image: "envoy", restartPolicy: "Always" }],
        initStatuses: [containerStatus("proxy", running, { ready: true, started: true, restartCount: 1 })],
        statuses: [containerStatus("app", running, { ready: true, restartCount: 2 })],
        conditions: [initialized("True"), readyCondition("True")],
      }),
      "2/2",
      "Running",
      "3",
    ],
  ])("shows %s", (_name, p, ready, status, restarts) => {
    expect(podStatusCells(p, NOW)).toEqual({ ready, status, restarts });
    const cells = row("pods", p);
    expect([cells.Ready, cells.Status, cells.Restarts]).toEqual([ready, status, restarts]);
  });

  it("uses the latest termination across containers for the restart age", () => {
    const p = pod({
      containers: ["a", "b"],
      statuses: [
        containerStatus("a", running, { ready: true, restartCount: 1, lastState: terminated("Error", 1, { finishedAt: ago(2 * HOUR) }) }),
        containerStatus("b", running, { ready: true, restartCount: 2, lastState: terminated("Error", 1, { finishedAt: ago(3 * MINUTE) }) }),
      ],
    });
    expect(podStatusCells(p, NOW).restarts).toBe("3 (3m ago)");
  });

  it("prints the wide pod columns", () => {
    const p = pod({
      spec: { nodeName: "edge-1", readinessGates: [{ conditionType: "example.com/lb" }, { conditionType: "example.com/dns" }] },
      status: { podIP: "10.244.0.7", podIPs: [{ ip: "10.244.0.7" }, { ip: "fd00::7" }], nominatedNodeName: "edge-2" },
      conditions: [
        { type: "example.com/lb", status: "True" },
        { type: "example.com/dns", status: "False" },
      ],
    });
    expect(row("pods", p)).toMatchObject({
      Name: "web-1",
      Age: "10m",
      IP: "10.244.0.7",
      Node: "edge-1",
      "Nominated Node": "edge-2",
      "Readiness Gates": "1/2",
    });
  });

  it("prints <none> for an unscheduled pod's wide columns", () => {
    expect(row("pods", pod({ phase: "Pending" }))).toMatchObject({
      IP: "<none>",
      Node: "<none>",
      "Nominated Node": "<none>",
      "Readiness Gates": "<none>",
    });
  });

  it("falls back to status.podIP when podIPs is missing", () => {
    expect(row("pods", pod({ status: { podIP: "10.244.0.9" } })).IP).toBe("10.244.0.9");
  });

  it.each<[string, Obj[] | undefined]>([
    ["Succeeded", [{ type: "Completed", status: "True", reason: "Succeeded", message: "The pod has completed successfully." }]],
    ["Failed", [{ type: "Completed", status: "True", reason: "Failed", message: "The pod failed." }]],
    ["Running", undefined],
  ])("marks a %s pod's row conditions", (phase, conditions) => {
    const table = toTable("pods", [pod({ phase })], NOW, { includeObject: "None" });
    expect(table.rows[0].conditions).toEqual(conditions);
  });
});

// ------------------------------------------------------------------ workloads

describe("deployment cells", () => {
  it("prints READY as ready/desired with the wide columns", () => {
    const d = deployment({ replicas: 3, status: { replicas: 3, readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 } });
    expect(toTable("deployments", [d], NOW, { includeObject: "None" }).rows[0].cells).toEqual([
      "web",
      "2/3",
      3,
      2,
      "10m",
      "web,sidecar",
      "nginx:1.25,busybox",
      "app=web",
    ]);
  });

  it.each<[string, Obj, string]>([
    ["an unset replicas count as 1", deployment(), "0/1"],
    ["a scaled-to-zero deployment", deployment({ replicas: 0 }), "0/0"],
  ])("treats %s", (_name, d, ready) => {
    expect(row("deployments", d).Ready).toBe(ready);
  });

  it.each<[string, Obj | undefined, string]>([
    ["match labels, sorted by key", { matchLabels: { tier: "front", app: "web" } }, "app=web,tier=front"],
    [
      "match expressions",
      {
        matchLabels: { app: "web" },
        matchExpressions: [
          { key: "tier", operator: "In", values: ["front", "back"] },
          { key: "env", operator: "NotIn", values: ["dev"] },
          { key: "canary", operator: "DoesNotExist" },
          { key: "zone", operator: "Exists" },
        ],
      },
      "app=web,!canary,env notin (dev),tier in (back,front),zone",
    ],
    ["an empty selector", {}, ""],
    ["a bad operator", { matchExpressions: [{ key: "a", operator: "Near", values: ["b"] }] }, "<invalid>"],
  ])("prints the selector from %s", (_name, selector, expected) => {
    expect(row("deployments", deployment({ replicas: 1, selector })).Selector).toBe(expected);
  });
});

describe("replicaset cells", () => {
  it("prints desired, current and ready counts with the wide columns", () => {
    const rs = replicaSet({
      replicas: 3,
      status: { replicas: 3, readyReplicas: 1 },
      selector: { matchLabels: { app: "web", "pod-template-hash": "abc" } },
    });
    expect(toTable("replicasets", [rs], NOW, { includeObject: "None" }).rows[0].cells).toEqual([
      "web-abc",
      3,
      3,
      1,
      "10m",
      "web,sidecar",
      "nginx:1.25,busybox",
      "app=web,pod-template-hash=abc",
    ]);
  });

  it.each<[string, Obj, string]>([
    ["an empty selector", {}, "<none>"],
    ["a bad selector", { matchExpressions: [{ key: "a", operator: "In", values: [] }] }, "<error>"],
  ])("prints %s as %s", (_name, selector, expected) => {
    expect(row("replicasets", replicaSet({ selector })).Selector).toBe(expected);
  });
});

// ------------------------------------------------------------------ nodes

describe("node cells", () => {
  it.each<[string, Obj, string]>([
    ["a ready node", node(), "Ready"],
    ["a node whose kubelet reports not ready", node({ ready: "False" }), "NotReady"],
    ["a node that stopped reporting", node({ ready: "Unknown" }), "NotReady"],
    ["a node without a Ready condition", node({ ready: null }), "Unknown"],
    ["a cordoned node", node({ unschedulable: true }), "Ready,SchedulingDisabled"],
    ["a cordoned node that is not ready", node({ ready: "False", unschedulable: true }), "NotReady,SchedulingDisabled"],
  ])("shows %s as %s", (_name, n, status) => {
    expect(row("nodes", n).Status).toBe(status);
  });

  it.each<[string, Obj, string]>([
    ["no role labels", {}, "<none>"],
    [
      "node-role labels, sorted",
      { "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "", "kubernetes.io/hostname": "edge-1" },
      "control-plane,worker",
    ],
    ["the legacy kubernetes.io/role label", { "kubernetes.io/role": "master", "node-role.kubernetes.io/master": "" }, "master"],
    ["an empty role suffix", { "node-role.kubernetes.io/": "x" }, "<none>"],
  ])("derives ROLES from %s", (_name, labels, roles) => {
    expect(row("nodes", node({ labels })).Roles).toBe(roles);
  });

  it("prints the version and wide columns", () => {
    expect(toTable("nodes", [node()], NOW, { includeObject: "None" }).rows[0].cells).toEqual([
      "edge-1",
      "Ready",
      "<none>",
      "3d",
      "v1.31.0",
      "10.0.0.5",
      "<none>",
      "Debian GNU/Linux 12 (bookworm)",
      "6.1.0",
      "containerd://1.7.0",
    ]);
  });

  it("prints <unknown> for missing node info and <none> for missing addresses", () => {
    expect(row("nodes", node({ info: {}, addresses: [] }))).toMatchObject({
      Version: "",
      "Internal-IP": "<none>",
      "External-IP": "<none>",
      "OS-Image": "<unknown>",
      "Kernel-Version": "<unknown>",
      "Container-Runtime": "<unknown>",
    });
  });
});

// ------------------------------------------------------------------ services and endpoints

describe("service cells", () => {
  it.each<[string, Obj, Obj, Record<string, string>]>([
    [
      "a ClusterIP service",
      { type: "ClusterIP", selector: { app: "web" } },
      {},
      { Type: "ClusterIP", "Cluster-IP": "10.96.0.10", "External-IP": "<none>", "Port(s)": "80/TCP", Selector: "app=web" },
    ],
    [
      "a service without a type (defaulted)",
      { selector: { tier: "a", app: "web" } },
      {},
      { Type: "ClusterIP", Selector: "app=web,tier=a" },
    ],
    [
      "a NodePort service",
      {
        type: "NodePort",
        ports: [
          { port: 80, nodePort: 30080, protocol: "TCP" },
          { port: 53, nodePort: 30053, protocol: "UDP" },
        ],
      },
      {},
      { Type: "NodePort", "External-IP": "<none>", "Port(s)": "80:30080/TCP,53:30053/UDP", Selector: "<none>" },
    ],
    [
      "a LoadBalancer without ingress",
      { type: "LoadBalancer", ports: [{ port: 443, nodePort: 31443, protocol: "TCP" }] },
      {},
      { "External-IP": "<pending>", "Port(s)": "443:31443/TCP" },
    ],
    [
      "a LoadBalancer with ingress",
      { type: "LoadBalancer" },
      { loadBalancer: { ingress: [{ ip: "203.0.113.9" }, { hostname: "lb.example.com" }, { ip: "203.0.113.2" }] } },
      { "External-IP": "203.0.113.2,203.0.113.9,lb.example.com" },
    ],
    [
      "a LoadBalancer with external IPs",
      { type: "LoadBalancer", externalIPs: ["198.51.100.1"] },
      { loadBalancer: { ingress: [{ ip: "203.0.113.9" }] } },
      { "External-IP": "203.0.113.9,198.51.100.1" },
    ],
    [
      "a ClusterIP service with external IPs",
      { externalIPs: ["198.51.100.1", "198.51.100.2"] },
      {},
      { "External-IP": "198.51.100.1,198.51.100.2" },
    ],
    [
      "an ExternalName service",
      { type: "ExternalName", externalName: "db.example.com", clusterIP: undefined, clusterIPs: undefined, ports: [] },
      {},
      { Type: "ExternalName", "Cluster-IP": "<none>", "External-IP": "db.example.com", "Port(s)": "<none>" },
    ],
    ["a headless service", { clusterIP: "None", clusterIPs: ["None"] }, {}, { "Cluster-IP": "None" }],
    ["a port without a protocol (defaulted)", { ports: [{ port: 8080 }] }, {}, { "Port(s)": "8080/TCP" }],
  ])("prints %s", (_name, spec, status, expected) => {
    expect(row("services", service(spec, status))).toMatchObject(expected);
  });
});

describe("endpoints cells", () => {
  it.each<[string, Obj[] | undefined, string]>([
    ["no subsets", undefined, "<none>"],
    ["two addresses", [{ addresses: addrs("10.0.0.1", "10.0.0.2"), ports: [{ name: "http", port: 80 }] }], "10.0.0.1:80,10.0.0.2:80"],
    [
      "more than three addresses",
      [{ addresses: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"), ports: [{ port: 80 }] }],
      "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...",
    ],
    [
      "two ports on two addresses",
      [{ addresses: addrs("10.0.0.1", "10.0.0.2"), ports: [{ port: 80 }, { port: 443 }] }],
      "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
    ],
    [
      "several subsets",
      [
        { addresses: addrs("10.0.0.1"), ports: [{ port: 80 }] },
        { addresses: addrs("10.0.0.2", "10.0.0.3", "10.0.0.4"), ports: [{ port: 8080 }] },
      ],
      "10.0.0.1:80,10.0.0.2:8080,10.0.0.3:8080 + 1 more...",
    ],
    ["a headless service without ports", [{ addresses: addrs("10.0.0.1", "10.0.0.2") }], "10.0.0.1,10.0.0.2"],
    ["an IPv6 address", [{ addresses: addrs("fd00::1"), ports: [{ port: 80 }] }], "[fd00::1]:80"],
    ["only not-ready addresses", [{ notReadyAddresses: addrs("10.0.0.1"), ports: [{ port: 80 }] }], ""],
  ])("prints %s", (_name, subsets, expected) => {
    expect(formatEndpoints(endpoints(subsets))).toBe(expected);
    expect(row("endpoints", endpoints(subsets)).Endpoints).toBe(expected);
  });
});

// ------------------------------------------------------------------ events

describe("event cells", () => {
  it("prints kube's event columns, wide ones last", () => {
    expect(toTable("events", [event()], NOW, { includeObject: "None" }).rows[0].cells).toEqual([
      "5m",
      "Warning",
      "BackOff",
      "pod/web-1",
      "spec.containers{app}",
      "kubelet, edge-1",
      "Back-off restarting failed container",
      "60m",
      3,
      "web-1.17d",
    ]);
  });

  it.each<[string, Obj, Record<string, unknown>]>([
    ["no last timestamp (first seen instead)", { lastTimestamp: null }, { "Last Seen": "60m" }],
    [
      "only an eventTime (events.k8s.io style)",
      { firstTimestamp: null, lastTimestamp: null, eventTime: "2024-06-01T11:58:00.000000Z", count: 0 },
      { "Last Seen": "2m", "First Seen": "2m", Count: 1 },
    ],
    [
      "a series",
      { firstTimestamp: null, lastTimestamp: null, eventTime: ago(HOUR), series: { count: 7, lastObservedTime: ago(30 * SECOND) } },
      { "Last Seen": "30s", "First Seen": "60m", Count: 7 },
    ],
    ["an object without a name", { involvedObject: { kind: "Node" } }, { Object: "node", Subobject: "" }],
    [
      "a reporting controller instead of a source",
      { source: {}, reportingComponent: "deployment-controller", reportingInstance: "" },
      { Source: "deployment-controller" },
    ],
    [
      "no timestamps at all",
      { firstTimestamp: undefined, lastTimestamp: undefined },
      { "Last Seen": "<unknown>", "First Seen": "<unknown>" },
    ],
  ])("prints an event with %s", (_name, extra, expected) => {
    expect(row("events", event(extra))).toMatchObject(expected);
  });
});

// ------------------------------------------------------------------ the simple ones

describe("simple resources", () => {
  it.each<[string, Obj, unknown[]]>([
    [
      "namespaces",
      { metadata: metadata("prod", { namespace: undefined }), status: { phase: "Terminating" } },
      ["prod", "Terminating", "10m"],
    ],
    [
      "leases",
      { metadata: metadata("kube-scheduler"), spec: { holderIdentity: "scheduler-0_abc" } },
      ["kube-scheduler", "scheduler-0_abc", "10m"],
    ],
    ["leases", { metadata: metadata("free"), spec: {} }, ["free", "", "10m"]],
    ["configmaps", { metadata: metadata("cfg"), data: { a: "1", b: "2" }, binaryData: { c: "AA==" } }, ["cfg", 3, "10m"]],
    ["configmaps", { metadata: metadata("empty") }, ["empty", 0, "10m"]],
    [
      "secrets",
      { metadata: metadata("tls"), type: "kubernetes.io/tls", data: { "tls.crt": "x", "tls.key": "y" } },
      ["tls", "kubernetes.io/tls", 2, "10m"],
    ],
    [
      "secrets",
      { metadata: metadata("mixed"), type: "Opaque", data: { a: "x" }, stringData: { a: "y", b: "z" } },
      ["mixed", "Opaque", 2, "10m"],
    ],
    ["serviceaccounts", { metadata: metadata("default"), secrets: [{ name: "default-token" }] }, ["default", 1, "10m"]],
    ["serviceaccounts", { metadata: metadata("builder") }, ["builder", 0, "10m"]],
  ])("prints %s cells", (resource, obj, cells) => {
    expect(toTable(resource, [obj], NOW, { includeObject: "None" }).rows[0].cells).toEqual(cells);
  });
});

describe("default table", () => {
  it("prints Name and Age for a resource without a printer", () => {
    const table = toTable("widgets", [{ apiVersion: "example.com/v1", kind: "Widget", metadata: metadata("w1") }], NOW, {
      includeObject: "Metadata",
    });
    expect(table.columnDefinitions.map((c: Obj) => [c.name, c.type, c.format, c.priority])).toEqual([
      ["Name", "string", "name", 0],
      ["Age", "date", "", 0],
    ]);
    expect(table.rows).toEqual([
      { cells: ["w1", "10m"], object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: metadata("w1") } },
    ]);
  });

  it("does not mistake inherited property names for resources", () => {
    expect(columnsFor("constructor").map((c) => c.name)).toEqual(["Name", "Age"]);
  });
});
