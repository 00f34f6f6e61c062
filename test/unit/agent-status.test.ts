import { describe, expect, it } from "vitest";
import {
  type ContainerStatus,
  LABEL_ATTEMPT,
  LABEL_CONTAINER_NAME,
  LABEL_POD_UID,
  LABEL_SPEC_HASH,
} from "../../node-agent/runtime/types.ts";
import { podStatus, rfc3339, statusEqual } from "../../node-agent/status.ts";
import { containerSpecHash, type PodMemory, type SyncInput } from "../../node-agent/sync.ts";

type Obj = Record<string, any>;

// ---------------------------------------------------------------------------------------
// Fixtures

const T0 = Date.parse("2025-03-01T12:00:00Z");
const S = 1000;
const NODE_IPS = { hostIP: "192.168.1.10", podIP: "10.88.0.7", runtime: "docker" };

function newContainer(name: string, extra: Obj = {}): Obj {
  return { name, image: `registry.example/${name}:1.0`, ...extra };
}

interface PodOpts {
  restartPolicy?: string;
  containers?: Obj[];
  initContainers?: Obj[];
  status?: Obj;
  deleted?: boolean;
  spec?: Obj;
}

function newPod(o: PodOpts = {}): Obj {
  const metadata: Obj = { name: "web", namespace: "default", uid: "uid-web" };
  if (o.deleted) metadata.deletionTimestamp = "2025-03-01T12:00:30Z";
  const spec: Obj = {
    nodeName: "node-1",
    restartPolicy: o.restartPolicy ?? "Always",
    containers: o.containers ?? [newContainer("app")],
    ...o.spec,
  };
  if (o.initContainers) spec.initContainers = o.initContainers;
  return { metadata, spec, status: o.status ?? { phase: "Pending", qosClass: "BestEffort" } };
}

interface CsOpts {
  attempt?: number;
  state?: ContainerStatus["state"];
  exitCode?: number;
  reason?: string;
  startedAt?: number;
  finishedAt?: number;
  id?: string;
}

function newContainerStatus(pod: Obj, name: string, o: CsOpts = {}): ContainerStatus {
  const attempt = o.attempt ?? 0;
  const state = o.state ?? "running";
  const spec = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c: Obj) => c.name === name);
  const cs: ContainerStatus = {
    id: o.id ?? `c-${name}-${attempt}`,
    name,
    labels: {
      [LABEL_POD_UID]: pod.metadata.uid,
      [LABEL_CONTAINER_NAME]: name,
      [LABEL_ATTEMPT]: String(attempt),
      [LABEL_SPEC_HASH]: containerSpecHash(spec ?? {}),
    },
    state,
    image: spec?.image ?? "x",
    imageID: "docker-pullable://registry.example/app@sha256:1234",
    startedAt: new Date(o.startedAt ?? T0 - 100 * S + 123),
  };
  if (state === "exited") {
    cs.exitCode = o.exitCode ?? 0;
    cs.finishedAt = new Date(o.finishedAt ?? T0 - 10 * S + 456);
    if (o.reason) cs.reason = o.reason;
  }
  return cs;
}

function newMemory(o: Partial<PodMemory> = {}): PodMemory {
  return { backoff: {}, probes: {}, initDone: [], ...o };
}

function status(
  pod: Obj,
  cs: ContainerStatus[],
  o: { memory?: PodMemory; imageErrors?: SyncInput["imageErrors"]; now?: number } = {},
): Obj {
  return podStatus(pod, cs, o.memory, o.imageErrors ?? {}, NODE_IPS, o.now ?? T0);
}

const cond = (s: Obj, type: string): Obj | undefined => s.conditions.find((c: Obj) => c.type === type);
const condStatus = (s: Obj) => Object.fromEntries(s.conditions.map((c: Obj) => [c.type, c.status]));

// ---------------------------------------------------------------------------------------

describe("podStatus: phase", () => {
  const exited = (exitCode: number): CsOpts => ({ state: "exited", exitCode });
  const table: [desc: string, policy: string, states: [string, CsOpts][], phase: string, containers?: string[]][] = [
    ["no containers yet", "Always", [], "Pending"],
    ["running", "Always", [["app", {}]], "Running"],
    ["created, not running", "Always", [["app", { state: "created" }]], "Pending"],
    ["Always, exited 0 (restarting)", "Always", [["app", exited(0)]], "Running"],
    ["Always, exited 1 (restarting)", "Always", [["app", exited(1)]], "Running"],
    ["OnFailure, exited 0", "OnFailure", [["app", exited(0)]], "Succeeded"],
    ["OnFailure, exited 1 (restarting)", "OnFailure", [["app", exited(1)]], "Running"],
    ["Never, exited 0", "Never", [["app", exited(0)]], "Succeeded"],
    ["Never, exited 1", "Never", [["app", exited(1)]], "Failed"],
    [
      "Never, one exited 1, one running",
      "Never",
      [
        ["app", exited(1)],
        ["other", {}],
      ],
      "Running",
      ["app", "other"],
    ],
    ["Never, one exited 0, one not started", "Never", [["app", exited(0)]], "Pending", ["app", "other"]],
    [
      "Never, both exited 0",
      "Never",
      [
        ["app", exited(0)],
        ["other", exited(0)],
      ],
      "Succeeded",
      ["app", "other"],
    ],
  ];
  it.each(table)("%s → %s", (_desc, policy, states, phase, containers) => {
    const pod = newPod({ restartPolicy: policy, containers: (containers ?? ["app"]).map((n) => newContainer(n)) });
    expect(
      status(
        pod,
        states.map(([n, o]) => newContainerStatus(pod, n, o)),
      ).phase,
    ).toBe(phase);
  });

  const initTable: [desc: string, policy: string, states: [string, CsOpts][], phase: string][] = [
    ["init running", "Always", [["init", {}]], "Pending"],
    ["init done, app not started", "Always", [["init", exited(0)]], "Pending"],
    [
      "init done, app running",
      "Always",
      [
        ["init", exited(0)],
        ["app", {}],
      ],
      "Running",
    ],
    ["init failed, Never", "Never", [["init", exited(1)]], "Failed"],
    ["init failed, OnFailure (restarting)", "OnFailure", [["init", exited(1)]], "Pending"],
  ];
  it.each(initTable)("%s → %s", (_desc, policy, states, phase) => {
    const pod = newPod({ restartPolicy: policy, initContainers: [newContainer("init")] });
    expect(
      status(
        pod,
        states.map(([n, o]) => newContainerStatus(pod, n, o)),
      ).phase,
    ).toBe(phase);
  });

  const sidecarTable: [desc: string, states: [string, CsOpts][], phase: string][] = [
    ["sidecar starting", [["proxy", { state: "created" }]], "Pending"],
    ["sidecar running, app not started", [["proxy", {}]], "Pending"],
    [
      "sidecar and app running",
      [
        ["proxy", {}],
        ["job", {}],
      ],
      "Running",
    ],
    [
      "app done, sidecar still running",
      [
        ["proxy", {}],
        ["job", exited(0)],
      ],
      "Running",
    ],
    [
      "app done, sidecar stopped",
      [
        ["proxy", exited(137)],
        ["job", exited(0)],
      ],
      "Succeeded",
    ],
  ];
  it.each(sidecarTable)("with a sidecar (restartPolicy Never): %s → %s", (_desc, states, phase) => {
    const pod = newPod({
      restartPolicy: "Never",
      initContainers: [newContainer("proxy", { restartPolicy: "Always" })],
      containers: [newContainer("job")],
    });
    expect(
      status(
        pod,
        states.map(([n, o]) => newContainerStatus(pod, n, o)),
      ).phase,
    ).toBe(phase);
  });

  it("never leaves a terminal phase, and keeps its reason", () => {
    const pod = newPod({ status: { phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." } });
    const s = status(pod, [newContainerStatus(pod, "app")]);
    expect(s.phase).toBe("Failed");
    expect(s.reason).toBe("Evicted");
    expect(s.message).toBe("The node was low on resource: memory.");
  });

  it.each([
    [0, "Succeeded"],
    [137, "Failed"],
  ])("a deleted pod whose containers stopped (exit %i) is %s", (exitCode, phase) => {
    const pod = newPod({ deleted: true });
    expect(status(pod, [newContainerStatus(pod, "app", { state: "exited", exitCode })]).phase).toBe(phase);
  });
});

describe("podStatus: container states", () => {
  it("reports a running container like kubelet", () => {
    const pod = newPod();
    const s = status(pod, [
      newContainerStatus(pod, "app", { attempt: 2 }),
      newContainerStatus(pod, "app", { attempt: 1, state: "exited", exitCode: 1 }),
    ]);
    expect(s.containerStatuses).toEqual([
      {
        name: "app",
        state: { running: { startedAt: "2025-03-01T11:58:20Z" } },
        lastState: {
          terminated: {
            exitCode: 1,
            reason: "Error",
            startedAt: "2025-03-01T11:58:20Z",
            finishedAt: "2025-03-01T11:59:50Z",
            containerID: "docker://c-app-1",
          },
        },
        ready: true,
        restartCount: 2,
        image: "registry.example/app:1.0",
        imageID: "docker-pullable://registry.example/app@sha256:1234",
        containerID: "docker://c-app-2",
        started: true,
      },
    ]);
  });

  const terminatedTable: [desc: string, o: CsOpts, reason: string][] = [
    ["exit 0", { exitCode: 0 }, "Completed"],
    ["exit 1", { exitCode: 1 }, "Error"],
    ["the runtime's reason", { exitCode: 137, reason: "OOMKilled" }, "OOMKilled"],
  ];
  it.each(terminatedTable)("terminated reason: %s → %s", (_desc, o, reason) => {
    const pod = newPod({ restartPolicy: "Never" });
    const s = status(pod, [newContainerStatus(pod, "app", { state: "exited", ...o })]);
    expect(s.containerStatuses[0].state.terminated).toMatchObject({ exitCode: o.exitCode, reason, containerID: "docker://c-app-0" });
    expect(s.containerStatuses[0].ready).toBe(false);
    expect(s.containerStatuses[0].started).toBe(false);
  });

  const waitingTable: [
    desc: string,
    setup: () => { pod: Obj; cs: ContainerStatus[]; memory?: PodMemory; imageErrors?: SyncInput["imageErrors"] },
    waiting: Obj,
  ][] = [
    ["no instance yet", () => ({ pod: newPod(), cs: [] }), { reason: "ContainerCreating" }],
    [
      "no instance yet, pod with init containers",
      () => ({ pod: newPod({ initContainers: [newContainer("init")] }), cs: [] }),
      { reason: "PodInitializing" },
    ],
    [
      "pull just failed",
      () => ({
        pod: newPod(),
        cs: [],
        imageErrors: { "uid-web/app": { reason: "ErrImagePull", message: "manifest unknown", at: T0 - S } },
      }),
      { reason: "ErrImagePull", message: "manifest unknown" },
    ],
    [
      "pull backing off",
      () => ({
        pod: newPod(),
        cs: [],
        memory: newMemory({ pulls: { app: { at: T0 - S, delayMs: 10 * S } } }),
        imageErrors: { "uid-web/app": { reason: "ErrImagePull", message: "manifest unknown", at: T0 - S } },
      }),
      { reason: "ImagePullBackOff", message: 'Back-off pulling image "registry.example/app:1.0": ErrImagePull: manifest unknown' },
    ],
    [
      "config error",
      () => ({
        pod: newPod(),
        cs: [],
        imageErrors: { "uid-web/app": { reason: "CreateContainerConfigError", message: 'configmap "cfg" not found', at: T0 - S } },
      }),
      { reason: "CreateContainerConfigError", message: 'configmap "cfg" not found' },
    ],
    [
      "crash loop",
      () => {
        const pod = newPod();
        return {
          pod,
          cs: [
            newContainerStatus(pod, "app", { attempt: 3, state: "exited", exitCode: 2, startedAt: T0 - 20 * S, finishedAt: T0 - 5 * S }),
          ],
          memory: newMemory({ backoff: { app: { until: 0, delayMs: 40 * S, lastStartedAt: T0 - 21 * S } } }),
        };
      },
      { reason: "CrashLoopBackOff", message: "back-off 40s restarting failed container=app pod=web_default(uid-web)" },
    ],
  ];
  it.each(waitingTable)("waiting: %s", (_desc, setup, waiting) => {
    const { pod, cs, memory, imageErrors } = setup();
    const s = status(pod, cs, { memory, imageErrors });
    expect(s.containerStatuses[0].state).toEqual({ waiting });
    expect(s.containerStatuses[0].ready).toBe(false);
    expect(s.phase).toBe(cs.length ? "Running" : "Pending");
  });

  it("shows the crashed instance as lastState while backing off, and restartCount from the attempt label", () => {
    const pod = newPod();
    const cs = [
      newContainerStatus(pod, "app", { attempt: 3, state: "exited", exitCode: 2, startedAt: T0 - 20 * S, finishedAt: T0 - 5 * S }),
    ];
    const s = status(pod, cs, { memory: newMemory({ backoff: { app: { until: 0, delayMs: 40 * S, lastStartedAt: T0 - 21 * S } } }) });
    expect(s.containerStatuses[0].lastState.terminated).toMatchObject({ exitCode: 2, reason: "Error", finishedAt: "2025-03-01T11:59:55Z" });
    expect(s.containerStatuses[0].restartCount).toBe(3);
    // Back-off over: terminated until the restart.
    const later = status(pod, cs, {
      memory: newMemory({ backoff: { app: { until: 0, delayMs: 40 * S, lastStartedAt: T0 - 21 * S } } }),
      now: T0 + 40 * S,
    });
    expect(later.containerStatuses[0].state.terminated.exitCode).toBe(2);
  });

  it("reports completed init containers ready, like kubelet", () => {
    const pod = newPod({ initContainers: [newContainer("init")] });
    const s = status(pod, [newContainerStatus(pod, "init", { state: "exited", exitCode: 0 }), newContainerStatus(pod, "app")]);
    expect(s.initContainerStatuses[0]).toMatchObject({
      name: "init",
      ready: true,
      started: false,
      state: { terminated: { reason: "Completed" } },
    });
    expect(cond(s, "Initialized")!.status).toBe("True");
  });

  it("uses the id as containerID when it already names the runtime", () => {
    const pod = newPod();
    const s = podStatus(pod, [newContainerStatus(pod, "app", { id: "fake://abc" })], undefined, {}, NODE_IPS, T0);
    expect(s.containerStatuses[0].containerID).toBe("fake://abc");
  });

  it("ignores containers of other pods", () => {
    const pod = newPod();
    const other = newContainerStatus(newPod(), "app");
    other.labels[LABEL_POD_UID] = "uid-other";
    expect(status(pod, [other]).containerStatuses[0].state).toEqual({ waiting: { reason: "ContainerCreating" } });
  });
});

describe("podStatus: readiness", () => {
  const probe = { httpGet: { path: "/", port: 80 } };
  const table: [desc: string, container: Obj, probes: PodMemory["probes"][string], ready: boolean, started: boolean][] = [
    ["no readiness probe: ready when running", newContainer("app"), {}, true, true],
    ["readiness not run yet", newContainer("app", { readinessProbe: probe }), {}, false, true],
    [
      "readiness succeeded",
      newContainer("app", { readinessProbe: probe }),
      { readiness: { successes: 1, failures: 0, result: "success", lastRun: T0 } },
      true,
      true,
    ],
    [
      "readiness failed",
      newContainer("app", { readinessProbe: probe }),
      { readiness: { successes: 0, failures: 3, result: "failure", lastRun: T0 } },
      false,
      true,
    ],
    ["startup probe pending", newContainer("app", { startupProbe: probe }), {}, false, false],
    [
      "startup probe passed",
      newContainer("app", { startupProbe: probe }),
      { startup: { successes: 1, failures: 0, result: "success", started: true, lastRun: T0 } },
      true,
      true,
    ],
    [
      "readiness result of an earlier instance",
      newContainer("app", { readinessProbe: probe }),
      { readiness: { successes: 1, failures: 0, result: "success", lastRun: T0 - 200 * S } },
      false,
      true,
    ],
  ];
  it.each(table)("%s", (_desc, container, probes, ready, started) => {
    const pod = newPod({ containers: [container] });
    const s = status(pod, [newContainerStatus(pod, "app")], { memory: newMemory({ probes: { app: probes } }) });
    expect(s.containerStatuses[0].ready).toBe(ready);
    expect(s.containerStatuses[0].started).toBe(started);
    expect(cond(s, "ContainersReady")!.status).toBe(ready ? "True" : "False");
    expect(cond(s, "Ready")!.status).toBe(ready ? "True" : "False");
  });
});

describe("podStatus: conditions", () => {
  it("reports why a pod is not ready or not initialized", () => {
    const pod = newPod({
      initContainers: [newContainer("init-a"), newContainer("init-b")],
      containers: [newContainer("app"), newContainer("db")],
    });
    const s = status(pod, [newContainerStatus(pod, "init-a", { state: "exited", exitCode: 0 })]);
    expect(s.conditions).toEqual([
      {
        type: "Initialized",
        status: "False",
        lastProbeTime: null,
        lastTransitionTime: "2025-03-01T12:00:00Z",
        reason: "ContainersNotInitialized",
        message: "containers with incomplete status: [init-b]",
      },
      {
        type: "Ready",
        status: "False",
        lastProbeTime: null,
        lastTransitionTime: "2025-03-01T12:00:00Z",
        reason: "ContainersNotReady",
        message: "containers with unready status: [app db]",
      },
      {
        type: "ContainersReady",
        status: "False",
        lastProbeTime: null,
        lastTransitionTime: "2025-03-01T12:00:00Z",
        reason: "ContainersNotReady",
        message: "containers with unready status: [app db]",
      },
      { type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: "2025-03-01T12:00:00Z" },
    ]);
  });

  it("keeps lastTransitionTime while a condition's status is unchanged, and moves it on change", () => {
    const before = "2025-03-01T11:00:00Z";
    const conditions = ["Initialized", "Ready", "ContainersReady", "PodScheduled"].map((type) => ({
      type,
      status: type === "Ready" || type === "ContainersReady" ? "False" : "True",
      lastTransitionTime: before,
    }));
    const pod = newPod({ status: { phase: "Running", conditions } });
    const s = status(pod, [newContainerStatus(pod, "app")], { now: T0 + 1500 });
    expect(condStatus(s)).toEqual({ Initialized: "True", Ready: "True", ContainersReady: "True", PodScheduled: "True" });
    expect(cond(s, "Initialized")!.lastTransitionTime).toBe(before);
    expect(cond(s, "PodScheduled")!.lastTransitionTime).toBe(before);
    expect(cond(s, "Ready")!.lastTransitionTime).toBe("2025-03-01T12:00:01Z");
  });

  it("marks a succeeded pod PodCompleted", () => {
    const pod = newPod({ restartPolicy: "Never" });
    const s = status(pod, [newContainerStatus(pod, "app", { state: "exited", exitCode: 0 })]);
    expect(s.conditions.slice(0, 3).map((c: Obj) => [c.type, c.status, c.reason])).toEqual([
      ["Initialized", "True", "PodCompleted"],
      ["Ready", "False", "PodCompleted"],
      ["ContainersReady", "False", "PodCompleted"],
    ]);
  });

  it("holds Ready until the readiness gates are True, and keeps foreign conditions", () => {
    const gated = (gateStatus?: string) =>
      newPod({
        spec: { readinessGates: [{ conditionType: "example.com/lb" }] },
        status: { phase: "Running", conditions: gateStatus ? [{ type: "example.com/lb", status: gateStatus }] : [] },
      });
    let pod = gated();
    let s = status(pod, [newContainerStatus(pod, "app")]);
    expect(cond(s, "ContainersReady")!.status).toBe("True");
    expect(cond(s, "Ready")).toMatchObject({
      status: "False",
      reason: "ReadinessGatesNotReady",
      message: 'corresponding condition of pod readiness gate "example.com/lb" does not exist.',
    });
    pod = gated("True");
    s = status(pod, [newContainerStatus(pod, "app")]);
    expect(cond(s, "Ready")!.status).toBe("True");
    expect(cond(s, "example.com/lb")).toEqual({ type: "example.com/lb", status: "True" });
  });
});

describe("podStatus: pod fields", () => {
  it("reports IPs, start time and QoS class", () => {
    const pod = newPod({
      status: { phase: "Pending" },
      containers: [newContainer("app", { resources: { limits: { cpu: "1", memory: "1Gi" } } })],
    });
    const s = status(pod, [], { memory: newMemory({ startTime: T0 - 2500 }) });
    expect(s).toMatchObject({
      hostIP: "192.168.1.10",
      hostIPs: [{ ip: "192.168.1.10" }],
      podIP: "10.88.0.7",
      podIPs: [{ ip: "10.88.0.7" }],
      startTime: "2025-03-01T11:59:57Z",
      qosClass: "Guaranteed",
    });
    expect(s.initContainerStatuses).toBeUndefined();
  });

  it("keeps the reported start time and QoS class", () => {
    const pod = newPod({ status: { phase: "Running", startTime: "2025-01-01T00:00:00Z", qosClass: "Burstable" } });
    const s = status(pod, [], { memory: newMemory({ startTime: T0 }) });
    expect(s.startTime).toBe("2025-01-01T00:00:00Z");
    expect(s.qosClass).toBe("Burstable");
  });

  it("reports the host IP as pod IP for hostNetwork pods", () => {
    const pod = newPod({ spec: { hostNetwork: true } });
    expect(status(pod, []).podIP).toBe("192.168.1.10");
  });

  it("leaves podIP out until the sandbox has one", () => {
    const pod = newPod();
    const s = podStatus(pod, [], undefined, {}, { hostIP: "192.168.1.10", podIP: "" }, T0);
    expect(s.podIP).toBeUndefined();
    expect(s.podIPs).toBeUndefined();
  });

  it("formats every timestamp as RFC 3339 without fractional seconds", () => {
    const pod = newPod();
    const s = status(pod, [
      newContainerStatus(pod, "app", { attempt: 1 }),
      newContainerStatus(pod, "app", { state: "exited", exitCode: 1 }),
    ]);
    const times = JSON.stringify(s).match(/"\d{4}-[^"]*"/g) ?? [];
    expect(times.length).toBeGreaterThan(5);
    for (const t of times) expect(t).toMatch(/^"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"$/);
    expect(rfc3339(T0 + 999)).toBe("2025-03-01T12:00:00Z");
  });
});

describe("statusEqual", () => {
  const pod = newPod({ initContainers: [newContainer("init")], containers: [newContainer("a"), newContainer("b")] });
  const base = status(pod, []);

  const equalTable: [desc: string, change: (s: Obj) => Obj][] = [
    ["key order", (s) => Object.fromEntries(Object.entries(s).reverse())],
    ["condition order", (s) => ({ ...s, conditions: [...s.conditions].reverse() })],
    ["container status order", (s) => ({ ...s, containerStatuses: [...s.containerStatuses].reverse() })],
    ["timestamp formatting", (s) => ({ ...s, startTime: s.startTime.replace("Z", ".000Z") })],
    ["timestamp offset", (s) => ({ ...s, startTime: "2025-03-01T13:00:00+01:00" })],
    ["null vs. absent", (s) => ({ ...s, conditions: s.conditions.map(({ lastProbeTime: _, ...c }: Obj) => c) })],
  ];
  it.each(equalTable)("ignores %s", (_desc, change) => {
    expect(statusEqual(base, change(structuredClone(base)))).toBe(true);
  });

  const differentTable: [desc: string, change: (s: Obj) => Obj][] = [
    ["phase", (s) => ({ ...s, phase: "Running" })],
    ["a ready flag", (s) => ({ ...s, containerStatuses: s.containerStatuses.map((c: Obj) => ({ ...c, ready: true })) })],
    [
      "a transition time",
      (s) => ({ ...s, conditions: s.conditions.map((c: Obj) => ({ ...c, lastTransitionTime: "2025-03-01T12:00:01Z" })) }),
    ],
    ["podIP", (s) => ({ ...s, podIP: "10.88.0.8" })],
  ];
  it.each(differentTable)("notices a changed %s", (_desc, change) => {
    expect(statusEqual(base, change(structuredClone(base)))).toBe(false);
  });
});
