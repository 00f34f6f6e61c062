import { describe, expect, it } from "vitest";
import { type ProbeState, recordProbe } from "../../node-agent/probes.ts";
import {
  type ContainerStatus,
  LABEL_ATTEMPT,
  LABEL_CONTAINER_NAME,
  LABEL_NODE,
  LABEL_POD_NAME,
  LABEL_POD_NAMESPACE,
  LABEL_POD_UID,
  LABEL_SPEC_HASH,
} from "../../node-agent/runtime/types.ts";
import {
  BACKOFF_INITIAL_MS,
  BACKOFF_MAX_MS,
  computeSync,
  containerSpecHash,
  KILL_SLACK_MS,
  ORPHAN_GRACE_SECONDS,
  type PodMemory,
  type SyncAction,
  type SyncInput,
} from "../../node-agent/sync.ts";

type Obj = Record<string, any>;

// ---------------------------------------------------------------------------------------
// Fixtures

const NODE = "node-1";
const T0 = Date.parse("2025-03-01T12:00:00Z");
const S = 1000;

function newContainer(name: string, extra: Obj = {}): Obj {
  return { name, image: `registry.example/${name}:1.0`, imagePullPolicy: "IfNotPresent", ...extra };
}

interface PodOpts {
  name?: string;
  uid?: string;
  restartPolicy?: string;
  containers?: Obj[];
  initContainers?: Obj[];
  nodeName?: string;
  phase?: string;
  grace?: number;
  deletionTimestamp?: number;
  deletionGracePeriodSeconds?: number;
}

function newPod(o: PodOpts = {}): Obj {
  const name = o.name ?? "web";
  const metadata: Obj = { name, namespace: "default", uid: o.uid ?? `uid-${name}` };
  if (o.deletionTimestamp !== undefined) metadata.deletionTimestamp = new Date(o.deletionTimestamp).toISOString().replace(/\.\d+Z$/, "Z");
  if (o.deletionGracePeriodSeconds !== undefined) metadata.deletionGracePeriodSeconds = o.deletionGracePeriodSeconds;
  const spec: Obj = {
    nodeName: o.nodeName ?? NODE,
    restartPolicy: o.restartPolicy ?? "Always",
    terminationGracePeriodSeconds: o.grace ?? 30,
    containers: o.containers ?? [newContainer("app")],
  };
  if (o.initContainers) spec.initContainers = o.initContainers;
  return { apiVersion: "v1", kind: "Pod", metadata, spec, status: { phase: o.phase ?? "Pending" } };
}

interface CsOpts {
  id?: string;
  attempt?: number;
  state?: ContainerStatus["state"];
  exitCode?: number;
  startedAt?: number;
  finishedAt?: number;
  /** null: no hash label; undefined: the hash of the pod's current spec. */
  hash?: string | null;
  reason?: string;
}

function specOf(pod: Obj, name: string): Obj {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c: Obj) => c.name === name) ?? newContainer(name);
}

function newContainerStatus(pod: Obj, name: string, o: CsOpts = {}): ContainerStatus {
  const attempt = o.attempt ?? 0;
  const state = o.state ?? "running";
  const labels: Record<string, string> = {
    [LABEL_POD_UID]: pod.metadata.uid,
    [LABEL_POD_NAME]: pod.metadata.name,
    [LABEL_POD_NAMESPACE]: pod.metadata.namespace,
    [LABEL_CONTAINER_NAME]: name,
    [LABEL_ATTEMPT]: String(attempt),
    [LABEL_NODE]: NODE,
  };
  if (o.hash !== null) labels[LABEL_SPEC_HASH] = o.hash ?? containerSpecHash(specOf(pod, name));
  const cs: ContainerStatus = {
    id: o.id ?? `${pod.metadata.name}-${name}-${attempt}`,
    name,
    labels,
    state,
    image: specOf(pod, name).image,
    imageID: "sha256:abc",
    startedAt: new Date(o.startedAt ?? T0),
  };
  if (state === "exited") {
    cs.exitCode = o.exitCode ?? 0;
    cs.finishedAt = new Date(o.finishedAt ?? (o.startedAt ?? T0) + S);
    if (o.reason) cs.reason = o.reason;
  }
  return cs;
}

function input(pods: Obj[], containers: ContainerStatus[], o: Partial<SyncInput> = {}): SyncInput {
  return { nodeName: NODE, now: T0, pods, containers, memory: new Map(), imageErrors: {}, ...o };
}

function memoryOf(inp: SyncInput, pod: Obj): PodMemory {
  return inp.memory.get(pod.metadata.uid)!;
}

const of = <T extends SyncAction["type"]>(actions: SyncAction[], type: T): Extract<SyncAction, { type: T }>[] =>
  actions.filter((a): a is Extract<SyncAction, { type: T }> => a.type === type);
const starts = (a: SyncAction[]) => of(a, "start").map((s) => ({ container: s.container, init: s.init, attempt: s.attempt }));
const stops = (a: SyncAction[]) => of(a, "stop").map((s) => ({ id: s.id, reason: s.reason, graceSeconds: s.graceSeconds }));
const events = (a: SyncAction[]) => of(a, "event").map((e) => `${e.eventType} ${e.reason}: ${e.message}`);
const kinds = (a: SyncAction[]) => a.map((x) => x.type);

// ---------------------------------------------------------------------------------------

describe("containerSpecHash", () => {
  it("is stable under key order and ignores null fields", () => {
    const a = { name: "app", image: "nginx:1", env: [{ name: "A", value: "1" }], ports: null };
    const b = { env: [{ value: "1", name: "A" }], image: "nginx:1", name: "app" };
    expect(containerSpecHash(a)).toBe(containerSpecHash(b));
    expect(containerSpecHash(a)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("changes when the image changes", () => {
    expect(containerSpecHash({ name: "app", image: "nginx:1" })).not.toBe(containerSpecHash({ name: "app", image: "nginx:2" }));
  });
});

describe("computeSync: starting containers", () => {
  it("pulls then starts every app container of a new pod, with a Pulling event first", () => {
    const pod = newPod({ containers: [newContainer("app"), newContainer("side", { imagePullPolicy: "Always" })] });
    const inp = input([pod], []);
    const { actions } = computeSync(inp);
    expect(kinds(actions)).toEqual(["event", "ensureImage", "start", "event", "ensureImage", "start"]);
    expect(of(actions, "ensureImage")).toEqual([
      { type: "ensureImage", podUID: "uid-web", container: "app", image: "registry.example/app:1.0", policy: "IfNotPresent" },
      { type: "ensureImage", podUID: "uid-web", container: "side", image: "registry.example/side:1.0", policy: "Always" },
    ]);
    expect(starts(actions)).toEqual([
      { container: "app", init: false, attempt: 0 },
      { container: "side", init: false, attempt: 0 },
    ]);
    expect(events(actions)[0]).toBe('Normal Pulling: Pulling image "registry.example/app:1.0"');
    expect(memoryOf(inp, pod).startTime).toBe(T0);
  });

  it("skips the Pulling event for imagePullPolicy Never", () => {
    const pod = newPod({ containers: [newContainer("app", { imagePullPolicy: "Never" })] });
    const { actions } = computeSync(input([pod], []));
    expect(kinds(actions)).toEqual(["ensureImage", "start"]);
  });

  it("defaults the pull policy from the image tag when the pod has none", () => {
    const pod = newPod({ containers: [{ name: "app", image: "nginx" }] });
    const { actions } = computeSync(input([pod], []));
    expect(of(actions, "ensureImage")[0].policy).toBe("Always");
  });

  it("does nothing for a pod whose containers are all running", () => {
    const pod = newPod();
    const res = computeSync(input([pod], [newContainerStatus(pod, "app")]));
    expect(res.actions).toEqual([]);
    expect(res.wakeAt).toBeUndefined();
  });

  it("retries a start that left no container behind only after a pause", () => {
    const pod = newPod();
    const inp = input([pod], []);
    expect(starts(computeSync(inp).actions)).toHaveLength(1);
    const again = computeSync({ ...inp, now: T0 + 2 * S });
    expect(starts(again.actions)).toEqual([]);
    expect(again.wakeAt).toBe(T0 + BACKOFF_INITIAL_MS);
    expect(starts(computeSync({ ...inp, now: T0 + BACKOFF_INITIAL_MS }).actions)).toHaveLength(1);
  });
});

describe("computeSync: restart policies", () => {
  const table: [policy: string, exitCode: number, restarts: boolean][] = [
    ["Always", 0, true],
    ["Always", 1, true],
    ["Always", 137, true],
    ["OnFailure", 0, false],
    ["OnFailure", 1, true],
    ["OnFailure", 137, true],
    ["Never", 0, false],
    ["Never", 1, false],
  ];
  it.each(table)("restartPolicy %s, exit code %i: restart %s", (policy, exitCode, restarts) => {
    const pod = newPod({ restartPolicy: policy });
    const exited = newContainerStatus(pod, "app", {
      state: "exited",
      exitCode,
      attempt: 2,
      startedAt: T0 - 60 * S,
      finishedAt: T0 - 30 * S,
    });
    const { actions } = computeSync(input([pod], [exited]));
    expect(starts(actions)).toEqual(restarts ? [{ container: "app", init: false, attempt: 3 }] : []);
    expect(of(actions, "remove")).toEqual([]); // the last exited instance is kept (status, logs)
  });

  it("keeps only the newest exited instance besides the running one", () => {
    const pod = newPod();
    const cs = [
      newContainerStatus(pod, "app", { attempt: 0, state: "exited", exitCode: 1 }),
      newContainerStatus(pod, "app", { attempt: 1, state: "exited", exitCode: 1 }),
      newContainerStatus(pod, "app", { attempt: 2 }),
    ];
    const { actions } = computeSync(input([pod], cs));
    expect(of(actions, "remove")).toEqual([{ type: "remove", id: "web-app-0" }]);
    expect(starts(actions)).toEqual([]);
  });
});

describe("computeSync: CrashLoopBackOff", () => {
  /** Lets a container crash 1 s after each start and returns the waits between exit and restart. */
  function crashLoop(restarts: number): { waits: number[]; backOffEvents: number } {
    const pod = newPod();
    const inp = input([pod], []);
    let now = T0;
    let containers: ContainerStatus[] = [];
    const waits: number[] = [];
    let backOffEvents = 0;
    let attempt = -1;
    for (let i = 0; i <= restarts; i++) {
      const { actions, wakeAt } = computeSync({ ...inp, now, containers });
      backOffEvents += events(actions).filter((e) => e.includes("BackOff")).length;
      const st = starts(actions);
      if (st.length === 0) {
        expect(wakeAt).toBeDefined();
        // Asking again before the back-off ends changes nothing.
        const early = computeSync({ ...inp, now: now + 1, containers });
        expect(starts(early.actions)).toEqual([]);
        backOffEvents += events(early.actions).filter((e) => e.includes("BackOff")).length;
        now = wakeAt!;
        i--;
        continue;
      }
      expect(st[0].attempt).toBe(attempt + 1);
      attempt++;
      if (attempt > 0) waits.push(now - (containers[0].finishedAt as Date).getTime());
      containers = [newContainerStatus(pod, "app", { attempt, state: "exited", exitCode: 1, startedAt: now, finishedAt: now + S })];
      now += S;
    }
    return { waits, backOffEvents };
  }

  it("restarts at once after the first crash, then backs off 10 s doubling up to 5 min", () => {
    const { waits, backOffEvents } = crashLoop(9);
    expect(waits).toEqual([0, 10 * S, 20 * S, 40 * S, 80 * S, 160 * S, 300 * S, 300 * S, 300 * S]);
    expect(backOffEvents).toBe(8); // one per exit that had to wait
  });

  it("emits the BackOff event like kubelet", () => {
    const pod = newPod();
    const mem = new Map<string, PodMemory>([
      ["uid-web", { backoff: { app: { until: 0, delayMs: 20 * S, lastStartedAt: T0 - 10 * S } }, probes: {}, initDone: [] }],
    ]);
    const exited = newContainerStatus(pod, "app", {
      attempt: 3,
      state: "exited",
      exitCode: 1,
      startedAt: T0 - 9 * S,
      finishedAt: T0 - 5 * S,
    });
    const { actions, wakeAt } = computeSync(input([pod], [exited], { memory: mem }));
    expect(starts(actions)).toEqual([]);
    expect(wakeAt).toBe(T0 + 15 * S);
    expect(events(actions)).toEqual(["Warning BackOff: Back-off restarting failed container app in pod web_default(uid-web)"]);
  });

  const resetTable: [desc: string, ranMs: number, restartNow: boolean, nextDelay: number][] = [
    ["ran 11 min: back-off reset, restart now", 11 * 60 * S, true, BACKOFF_INITIAL_MS],
    ["ran 9 min: still backing off", 9 * 60 * S, false, BACKOFF_MAX_MS],
  ];
  it.each(resetTable)("%s", (_desc, ranMs, restartNow, nextDelay) => {
    const pod = newPod();
    const startedAt = T0 - ranMs - S;
    const mem = new Map<string, PodMemory>([
      ["uid-web", { backoff: { app: { until: 0, delayMs: BACKOFF_MAX_MS, lastStartedAt: startedAt } }, probes: {}, initDone: [] }],
    ]);
    const exited = newContainerStatus(pod, "app", { attempt: 6, state: "exited", exitCode: 1, startedAt, finishedAt: T0 - S });
    const inp = input([pod], [exited], { memory: mem });
    const { actions } = computeSync(inp);
    expect(starts(actions)).toEqual(restartNow ? [{ container: "app", init: false, attempt: 7 }] : []);
    expect(memoryOf(inp, pod).backoff.app.delayMs).toBe(nextDelay);
  });
});

describe("computeSync: init containers", () => {
  const pod = (policy = "Always") =>
    newPod({ restartPolicy: policy, initContainers: [newContainer("init-a"), newContainer("init-b")], containers: [newContainer("app")] });

  const table: [
    desc: string,
    policy: string,
    states: [string, CsOpts][],
    expected: { container: string; init: boolean; attempt: number }[],
  ][] = [
    ["starts the first init container alone", "Always", [], [{ container: "init-a", init: true, attempt: 0 }]],
    ["waits while the first one runs", "Always", [["init-a", {}]], []],
    [
      "starts the next after a success",
      "Always",
      [["init-a", { state: "exited", exitCode: 0 }]],
      [{ container: "init-b", init: true, attempt: 0 }],
    ],
    [
      "starts the app containers after all succeeded",
      "Always",
      [
        ["init-a", { state: "exited", exitCode: 0 }],
        ["init-b", { state: "exited", exitCode: 0 }],
      ],
      [{ container: "app", init: false, attempt: 0 }],
    ],
    [
      "restarts a failed init container (Always)",
      "Always",
      [["init-a", { state: "exited", exitCode: 1 }]],
      [{ container: "init-a", init: true, attempt: 1 }],
    ],
    [
      "restarts a failed init container (OnFailure)",
      "OnFailure",
      [["init-a", { state: "exited", exitCode: 2 }]],
      [{ container: "init-a", init: true, attempt: 1 }],
    ],
    ["a failed init container fails the pod (Never)", "Never", [["init-a", { state: "exited", exitCode: 1 }]], []],
    ["does not rerun init containers once an app container exists", "Always", [["app", {}]], []],
  ];
  it.each(table)("%s", (_desc, policy, states, expected) => {
    const p = pod(policy);
    const cs = states.map(([name, o]) => newContainerStatus(p, name, o));
    const inp = input([p], cs);
    expect(starts(computeSync(inp).actions)).toEqual(expected);
  });

  it("remembers completed init containers", () => {
    const p = pod();
    const inp = input([p], [newContainerStatus(p, "init-a", { state: "exited", exitCode: 0 })]);
    computeSync(inp);
    expect(memoryOf(inp, p).initDone).toEqual(["init-a"]);
    // Gone from the runtime, still done (init-b's start left no container: retried after the pause).
    expect(starts(computeSync({ ...inp, containers: [], now: T0 + BACKOFF_INITIAL_MS }).actions)).toEqual([
      { container: "init-b", init: true, attempt: 0 },
    ]);
  });

  it("starts a sidecar (restartable init container) and goes on once it runs, keeping it running", () => {
    const p = newPod({
      initContainers: [newContainer("proxy", { restartPolicy: "Always" }), newContainer("setup")],
      containers: [newContainer("app")],
    });
    expect(starts(computeSync(input([p], [])).actions)).toEqual([{ container: "proxy", init: true, attempt: 0 }]);
    expect(starts(computeSync(input([p], [newContainerStatus(p, "proxy")])).actions)).toEqual([
      { container: "setup", init: true, attempt: 0 },
    ]);
    const crashed = [
      newContainerStatus(p, "proxy", { state: "exited", exitCode: 0 }),
      newContainerStatus(p, "setup", { state: "exited", exitCode: 0 }),
      newContainerStatus(p, "app"),
    ];
    expect(starts(computeSync(input([p], crashed)).actions)).toEqual([{ container: "proxy", init: true, attempt: 1 }]);
  });

  it("stops sidecars once the regular containers completed for good", () => {
    const p = newPod({
      restartPolicy: "Never",
      initContainers: [newContainer("proxy", { restartPolicy: "Always" })],
      containers: [newContainer("job")],
    });
    const cs = [newContainerStatus(p, "proxy"), newContainerStatus(p, "job", { state: "exited", exitCode: 0 })];
    const { actions } = computeSync(input([p], cs));
    expect(stops(actions)).toEqual([{ id: "web-proxy-0", reason: "Killing", graceSeconds: 30 }]);
    expect(starts(actions)).toEqual([]);
  });
});

describe("computeSync: deletion", () => {
  it("stops running containers with the pod's grace, once, then finishes the deletion", () => {
    const pod = newPod({ deletionTimestamp: T0 + 30 * S, deletionGracePeriodSeconds: 30 });
    const inp = input([pod], [newContainerStatus(pod, "app")]);
    const first = computeSync(inp);
    expect(stops(first.actions)).toEqual([{ id: "web-app-0", reason: "Deleted", graceSeconds: 30 }]);
    expect(events(first.actions)).toEqual(["Normal Killing: Stopping container app"]);
    expect(first.wakeAt).toBe(T0 + 30 * S + KILL_SLACK_MS);

    const second = computeSync({ ...inp, now: T0 + 5 * S });
    expect(second.actions).toEqual([]);

    const gone = computeSync({
      ...inp,
      now: T0 + 10 * S,
      containers: [newContainerStatus(pod, "app", { state: "exited", exitCode: 143 })],
    });
    expect(gone.actions).toEqual([
      { type: "remove", id: "web-app-0" },
      { type: "removeSandbox", podUID: "uid-web" },
      { type: "finishDeletion", pod },
    ]);
  });

  const graceTable: [desc: string, deletionIn: number, dgps: number | undefined, expected: number][] = [
    ["deletionGracePeriodSeconds", 30, 30, 30],
    ["capped by the time left to deletionTimestamp", 5, 30, 5],
    ["spec grace when deletionGracePeriodSeconds is unset", 100, undefined, 30],
    ["never negative", -10, 30, 0],
  ];
  it.each(graceTable)("grace: %s", (_desc, deletionIn, dgps, expected) => {
    const pod = newPod({ deletionTimestamp: T0 + deletionIn * S, deletionGracePeriodSeconds: dgps });
    const { actions } = computeSync(input([pod], [newContainerStatus(pod, "app")]));
    expect(stops(actions)[0].graceSeconds).toBe(expected);
  });

  it("stops again without grace when a stop is overdue", () => {
    const pod = newPod({ deletionTimestamp: T0 + 2 * S, deletionGracePeriodSeconds: 2 });
    const inp = input([pod], [newContainerStatus(pod, "app")]);
    computeSync(inp);
    const later = computeSync({ ...inp, now: T0 + 2 * S + KILL_SLACK_MS });
    expect(stops(later.actions)).toEqual([{ id: "web-app-0", reason: "Deleted", graceSeconds: 0 }]);
  });

  it("finishes the deletion of a pod that never ran a container", () => {
    const pod = newPod({ deletionTimestamp: T0 + 30 * S, deletionGracePeriodSeconds: 30 });
    expect(kinds(computeSync(input([pod], [])).actions)).toEqual(["removeSandbox", "finishDeletion"]);
  });
});

describe("computeSync: orphans", () => {
  it("stops and removes the containers of pods no longer desired, then the sandbox, and forgets them", () => {
    const gone = newPod({ name: "gone" });
    const inp = input([], [newContainerStatus(gone, "app"), newContainerStatus(gone, "app", { attempt: 1, state: "exited", id: "old" })]);
    inp.memory.set("uid-gone", { backoff: {}, probes: {}, initDone: ["x"] });
    const { actions } = computeSync(inp);
    expect(actions).toEqual([
      { type: "stop", id: "gone-app-0", podUID: "uid-gone", container: "app", graceSeconds: ORPHAN_GRACE_SECONDS, reason: "Orphan" },
      { type: "remove", id: "gone-app-0" },
      { type: "remove", id: "old" },
      { type: "removeSandbox", podUID: "uid-gone" },
    ]);
    expect(computeSync({ ...inp, containers: [] }).actions).toEqual([]);
    expect(inp.memory.has("uid-gone")).toBe(false);
  });

  it("treats a pod bound to another node as not desired", () => {
    const pod = newPod({ nodeName: "node-2" });
    const { actions } = computeSync(input([pod], [newContainerStatus(pod, "app")]));
    expect(stops(actions)).toEqual([{ id: "web-app-0", reason: "Orphan", graceSeconds: ORPHAN_GRACE_SECONDS }]);
    expect(starts(actions)).toEqual([]);
  });

  it("leaves containers without a pod label alone", () => {
    const c: ContainerStatus = { id: "foreign", name: "x", labels: {}, state: "running", image: "x" };
    expect(computeSync(input([], [c])).actions).toEqual([]);
  });

  it("stops containers the pod spec does not name", () => {
    const pod = newPod();
    const { actions } = computeSync(input([pod], [newContainerStatus(pod, "app"), newContainerStatus(pod, "stray")]));
    expect(stops(actions)).toEqual([{ id: "web-stray-0", reason: "Killing", graceSeconds: 30 }]);
  });
});

describe("computeSync: duplicates and spec changes", () => {
  it("stops the older-attempt duplicates of a running container", () => {
    const pod = newPod();
    const cs = [
      newContainerStatus(pod, "app", { attempt: 1 }),
      newContainerStatus(pod, "app", { attempt: 3 }),
      newContainerStatus(pod, "app", { attempt: 2 }),
    ];
    const { actions } = computeSync(input([pod], cs));
    expect(stops(actions)).toEqual([
      { id: "web-app-2", reason: "Killing", graceSeconds: 30 },
      { id: "web-app-1", reason: "Killing", graceSeconds: 30 },
    ]);
    expect(starts(actions)).toEqual([]);
  });

  it.each(["Always", "Never"])("replaces a container whose spec changed (restartPolicy %s)", (policy) => {
    const pod = newPod({ restartPolicy: policy, containers: [newContainer("app", { image: "registry.example/app:2.0" })] });
    const old = newContainerStatus(pod, "app", { attempt: 4, hash: containerSpecHash(newContainer("app")) });
    const inp = input([pod], [old]);
    const first = computeSync(inp);
    expect(stops(first.actions)).toEqual([{ id: "web-app-4", reason: "SpecChanged", graceSeconds: 30 }]);
    expect(events(first.actions)).toEqual(["Normal Killing: Container app definition changed, will be restarted"]);
    expect(starts(first.actions)).toEqual([]);

    const exited = { ...old, state: "exited" as const, exitCode: 137, finishedAt: new Date(T0 + S) };
    const second = computeSync({ ...inp, now: T0 + 2 * S, containers: [exited] });
    expect(starts(second.actions)).toEqual([{ container: "app", init: false, attempt: 5 }]);
    expect(of(second.actions, "ensureImage")[0].image).toBe("registry.example/app:2.0");
  });

  it("retries a replacement whose start left no container only after a pause", () => {
    const pod = newPod({ containers: [newContainer("app", { image: "registry.example/app:2.0" })] });
    const old = newContainerStatus(pod, "app", { attempt: 0, hash: "0000000000000000" });
    const inp = input([pod], [old]);
    computeSync(inp);
    const exited = [{ ...old, state: "exited" as const, exitCode: 143, finishedAt: new Date(T0 + S) }];
    expect(starts(computeSync({ ...inp, now: T0 + 2 * S, containers: exited }).actions)).toHaveLength(1);
    const again = computeSync({ ...inp, now: T0 + 4 * S, containers: exited });
    expect(starts(again.actions)).toEqual([]);
    expect(again.wakeAt).toBe(T0 + 2 * S + BACKOFF_INITIAL_MS);
  });

  it("adopts containers without a hash label", () => {
    const pod = newPod();
    expect(computeSync(input([pod], [newContainerStatus(pod, "app", { hash: null })])).actions).toEqual([]);
  });
});

describe("computeSync: terminal pods", () => {
  it.each(["Succeeded", "Failed"])("keeps no running container in a %s pod and starts none", (phase) => {
    const pod = newPod({ phase, containers: [newContainer("app"), newContainer("other")] });
    const { actions } = computeSync(input([pod], [newContainerStatus(pod, "app")]));
    expect(stops(actions)).toEqual([{ id: "web-app-0", reason: "Killing", graceSeconds: 30 }]);
    expect(starts(actions)).toEqual([]);
  });
});

describe("computeSync: probes", () => {
  const http = (extra: Obj = {}) => ({ httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 10, failureThreshold: 3, ...extra });
  const probed = (probes: Obj) => newPod({ containers: [newContainer("app", probes)] });
  const probeActions = (a: SyncAction[]) => of(a, "probe").map((p) => p.kind);

  function record(inp: SyncInput, pod: Obj, kind: "liveness" | "readiness" | "startup", results: boolean[], at: number, message = "") {
    const c = pod.spec.containers[0];
    const probe = c[`${kind}Probe`];
    const mem = memoryOf(inp, pod);
    mem.probes.app ??= {};
    let st: ProbeState | undefined = mem.probes.app[kind];
    results.forEach((ok, i) => {
      st = recordProbe(probe, st, ok, at + i * 10 * S, message);
    });
    mem.probes.app[kind] = st;
  }

  it("runs a probe after initialDelaySeconds, then every periodSeconds", () => {
    const pod = probed({ livenessProbe: http({ initialDelaySeconds: 5 }) });
    const inp = input([pod], [newContainerStatus(pod, "app", { startedAt: T0 })], { now: T0 + S });
    const early = computeSync(inp);
    expect(probeActions(early.actions)).toEqual([]);
    expect(early.wakeAt).toBe(T0 + 5 * S);
    const due = computeSync({ ...inp, now: T0 + 5 * S });
    expect(of(due.actions, "probe")).toEqual([{ type: "probe", podUID: "uid-web", container: "app", kind: "liveness", id: "web-app-0" }]);
    record(inp, pod, "liveness", [true], T0 + 5 * S);
    const after = computeSync({ ...inp, now: T0 + 6 * S });
    expect(probeActions(after.actions)).toEqual([]);
    expect(after.wakeAt).toBe(T0 + 15 * S);
  });

  it("kills a container whose liveness probe failed failureThreshold times, with events, and restarts it", () => {
    const pod = probed({ livenessProbe: http() });
    const inp = input([pod], [newContainerStatus(pod, "app", { startedAt: T0 })], { now: T0 + 40 * S });
    computeSync({ ...inp, now: T0 });
    record(inp, pod, "liveness", [false, false], T0);
    expect(stops(computeSync({ ...inp, now: T0 + 25 * S }).actions)).toEqual([]);
    record(inp, pod, "liveness", [false], T0 + 30 * S, "HTTP probe failed with statuscode: 500");
    const { actions } = computeSync(inp);
    expect(events(actions)).toEqual([
      "Warning Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500",
      "Normal Killing: Container app failed liveness probe, will be restarted",
    ]);
    expect(stops(actions)).toEqual([{ id: "web-app-0", reason: "Unhealthy", graceSeconds: 30 }]);
    expect(probeActions(actions)).toEqual([]);
    // Not stopped twice while the stop runs.
    expect(stops(computeSync({ ...inp, now: T0 + 41 * S }).actions)).toEqual([]);
    // Exited (even with 0 under OnFailure): restarted, with fresh probe state.
    const exited = newContainerStatus(pod, "app", { state: "exited", exitCode: 0, startedAt: T0, finishedAt: T0 + 42 * S });
    const podOnFailure = { ...pod, spec: { ...pod.spec, restartPolicy: "OnFailure" } };
    const restarted = computeSync({ ...inp, pods: [podOnFailure], now: T0 + 43 * S, containers: [exited] });
    expect(starts(restarted.actions)).toEqual([{ container: "app", init: false, attempt: 1 }]);
    expect(memoryOf(inp, pod).probes.app).toEqual({});
  });

  it("does not restart a liveness-killed container under restartPolicy Never", () => {
    const pod = newPod({ restartPolicy: "Never", containers: [newContainer("app", { livenessProbe: http() })] });
    const inp = input([pod], [newContainerStatus(pod, "app", { startedAt: T0 })], { now: T0 + 40 * S });
    computeSync(inp);
    record(inp, pod, "liveness", [false, false, false], T0);
    expect(stops(computeSync(inp).actions)).toHaveLength(1);
    const exited = newContainerStatus(pod, "app", { state: "exited", exitCode: 137, startedAt: T0, finishedAt: T0 + 41 * S });
    expect(starts(computeSync({ ...inp, now: T0 + 50 * S, containers: [exited] }).actions)).toEqual([]);
  });

  it("never kills for readiness failures", () => {
    const pod = probed({ readinessProbe: http() });
    const inp = input([pod], [newContainerStatus(pod, "app", { startedAt: T0 })], { now: T0 + 40 * S });
    computeSync(inp);
    record(inp, pod, "readiness", [false, false, false, false], T0);
    const { actions } = computeSync(inp);
    expect(stops(actions)).toEqual([]);
    expect(probeActions(actions)).toEqual(["readiness"]);
  });

  it("gates liveness and readiness behind the startup probe", () => {
    const pod = probed({ startupProbe: http({ failureThreshold: 30 }), livenessProbe: http(), readinessProbe: http() });
    const inp = input([pod], [newContainerStatus(pod, "app", { startedAt: T0 })], { now: T0 });
    expect(probeActions(computeSync(inp).actions)).toEqual(["startup"]);
    record(inp, pod, "startup", [false, false], T0);
    expect(probeActions(computeSync({ ...inp, now: T0 + 20 * S }).actions)).toEqual(["startup"]);
    record(inp, pod, "startup", [true], T0 + 20 * S);
    expect(probeActions(computeSync({ ...inp, now: T0 + 21 * S }).actions)).toEqual(["liveness", "readiness"]);
  });

  it("kills a container whose startup probe failed", () => {
    const pod = probed({ startupProbe: http({ failureThreshold: 2 }), livenessProbe: http() });
    const inp = input([pod], [newContainerStatus(pod, "app", { startedAt: T0 })], { now: T0 + 30 * S });
    computeSync(inp);
    record(inp, pod, "startup", [false, false], T0, "dial tcp 10.0.0.5:8080: connect: connection refused");
    const { actions } = computeSync(inp);
    expect(events(actions)[0]).toBe("Warning Unhealthy: Startup probe failed: dial tcp 10.0.0.5:8080: connect: connection refused");
    expect(stops(actions)).toEqual([{ id: "web-app-0", reason: "Unhealthy", graceSeconds: 30 }]);
  });

  it("ignores probe results of an earlier instance", () => {
    const pod = probed({ livenessProbe: http() });
    const inp = input([pod], [newContainerStatus(pod, "app", { attempt: 1, startedAt: T0 + 100 * S })], { now: T0 + 100 * S });
    inp.memory.set("uid-web", {
      backoff: {},
      probes: { app: { liveness: { successes: 0, failures: 3, result: "failure", lastRun: T0 + 50 * S } } },
      initDone: [],
    });
    const { actions } = computeSync(inp);
    expect(stops(actions)).toEqual([]);
    expect(probeActions(actions)).toEqual(["liveness"]);
  });
});

describe("computeSync: image errors", () => {
  it("backs off pulling, emits the failure events once per error, and retries", () => {
    const pod = newPod();
    const inp = input([pod], [], {
      now: T0 + S,
      imageErrors: { "uid-web/app": { reason: "ErrImagePull", message: "manifest unknown", at: T0 } },
    });
    const first = computeSync(inp);
    expect(events(first.actions)).toEqual([
      'Warning Failed: Failed to pull image "registry.example/app:1.0": manifest unknown',
      "Warning Failed: Error: ErrImagePull",
      'Normal BackOff: Back-off pulling image "registry.example/app:1.0"',
    ]);
    expect(of(first.actions, "ensureImage")).toEqual([]);
    expect(first.wakeAt).toBe(T0 + 10 * S);
    expect(computeSync({ ...inp, now: T0 + 5 * S }).actions).toEqual([]);
    const retry = computeSync({ ...inp, now: T0 + 10 * S });
    expect(kinds(retry.actions)).toEqual(["event", "ensureImage", "start"]);
    // The retry failed again: twice the delay.
    const again = computeSync({
      ...inp,
      now: T0 + 11 * S,
      imageErrors: { "uid-web/app": { reason: "ErrImagePull", message: "x", at: T0 + 10 * S } },
    });
    expect(again.wakeAt).toBe(T0 + 30 * S);
  });

  it("retries CreateContainerConfigError every 10 s with a Failed event", () => {
    const pod = newPod();
    const err = { reason: "CreateContainerConfigError", message: 'configmap "cfg" not found', at: T0 };
    const { actions, wakeAt } = computeSync(input([pod], [], { now: T0 + S, imageErrors: { "uid-web/app": err } }));
    expect(events(actions)).toEqual(['Warning Failed: Error: configmap "cfg" not found']);
    expect(wakeAt).toBe(T0 + 10 * S);
  });

  it("ignores an image error older than the running instance", () => {
    const pod = newPod();
    const inp = input([pod], [newContainerStatus(pod, "app", { startedAt: T0 })], {
      imageErrors: { "uid-web/app": { reason: "ErrImagePull", message: "x", at: T0 - 60 * S } },
    });
    expect(computeSync(inp).actions).toEqual([]);
  });
});
