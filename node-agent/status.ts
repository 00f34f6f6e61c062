// The pod status the agent reports, after kubelet's generateAPIPodStatus: phase (getPhase,
// incl. restartPolicy; a terminal phase is never left), the kubelet-owned conditions with
// lastTransitionTime kept while their status is unchanged, initContainerStatuses and
// containerStatuses from the runtime's container instances plus what the sync step
// remembers (back-off, probe results, image errors), IPs, startTime and qosClass.
// Pure: the clock is injected. statusEqual lets the loop report only changes.

import { podQOSClass } from "../workers/shared/defaults.ts";
import { type ContainerStatus, LABEL_POD_UID } from "./runtime/types.ts";
import {
  containerRestartPolicy,
  currentImageError,
  exitCodeOf,
  formatPod,
  freshProbes,
  goDuration,
  hasStarted,
  instanceAttempt,
  instancesByName,
  isActive,
  isSidecar,
  type KillRecord,
  objects,
  type PodMemory,
  podRestartPolicy,
  restartAt,
  type SyncInput,
  toMs,
  wantsRestart,
} from "./sync.ts";

type Obj = Record<string, any>;

/** RFC 3339 in UTC without fractional seconds, like metav1.Time. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function time(d: unknown): string | undefined {
  const ms = toMs(d);
  return ms === undefined ? undefined : rfc3339(ms);
}

export interface NodeInfo {
  hostIP: string;
  podIP: string;
  /** Runtime name for containerID ("<runtime>://<id>"); default "docker". */
  runtime?: string;
}

export function podStatus(
  pod: Obj,
  containers: ContainerStatus[],
  memory: PodMemory | undefined,
  imageErrors: SyncInput["imageErrors"] | undefined,
  node: NodeInfo,
  now: number,
): Obj {
  const meta = pod?.metadata ?? {};
  const spec = pod?.spec ?? {};
  const prev: Obj = pod?.status && typeof pod.status === "object" ? pod.status : {};
  const uid: string = meta.uid ?? "";
  const mine = (containers ?? []).filter((c) => !c.labels?.[LABEL_POD_UID] || c.labels[LABEL_POD_UID] === uid);
  const byName = instancesByName(mine);
  const inits = objects(spec.initContainers).filter((c) => typeof c.name === "string");
  const apps = objects(spec.containers).filter((c) => typeof c.name === "string");
  const hasInit = inits.length > 0;
  const prevTerminal = prev.phase === "Succeeded" || prev.phase === "Failed";
  const deleting = Boolean(meta.deletionTimestamp);
  const killedBy = new Map<string, KillRecord>((memory?.killing ?? []).map((k) => [k.id, k]));
  const runtime = node.runtime || "docker";
  const containerID = (id: string): string => (id.includes("://") ? id : `${runtime}://${id}`);
  const anyAppStarted = apps.some((c) => (byName.get(c.name)?.length ?? 0) > 0);

  const terminated = (inst: ContainerStatus): Obj => {
    const exitCode = exitCodeOf(inst);
    const t: Obj = { exitCode, reason: inst.reason || (exitCode === 0 ? "Completed" : "Error") };
    if (inst.message) t.message = inst.message;
    const s = time(inst.startedAt);
    const f = time(inst.finishedAt);
    if (s) t.startedAt = s;
    if (f) t.finishedAt = f;
    t.containerID = containerID(inst.id);
    return t;
  };

  const imageWaiting = (c: Obj, err: { reason: string; message: string; at: number }): Obj => {
    if (err.reason === "ErrImagePull" && memory?.pulls?.[c.name]?.at === err.at) {
      return { reason: "ImagePullBackOff", message: `Back-off pulling image "${c.image ?? ""}": ErrImagePull: ${err.message}` };
    }
    return err.message ? { reason: err.reason, message: err.message } : { reason: err.reason };
  };

  const status = (c: Obj, init: boolean): Obj => {
    const list = byName.get(c.name) ?? [];
    const shown = list.find(isActive) ?? list[0];
    const previous = list.find((i) => i !== shown && !isActive(i));
    let state: Obj;
    let lastState: Obj = previous ? { terminated: terminated(previous) } : {};
    let ready = false;
    let started = false;
    if (!shown) {
      const err = currentImageError(imageErrors, uid, c.name, undefined);
      state = { waiting: err ? imageWaiting(c, err) : { reason: hasInit ? "PodInitializing" : "ContainerCreating" } };
    } else if (shown.state === "running") {
      state = { running: time(shown.startedAt) ? { startedAt: time(shown.startedAt) } : {} };
      started = hasStarted(c, shown, memory);
      if (!init || isSidecar(c)) {
        const readiness = freshProbes(memory, c.name, toMs(shown.startedAt)).readiness;
        ready = started && (c.readinessProbe ? readiness?.result === "success" : true);
      }
    } else if (shown.state === "created") {
      state = { waiting: { reason: "ContainerCreating" } };
    } else if (shown.state === "unknown") {
      state = { waiting: { reason: "ContainerStatusUnknown", message: "The container state could not be determined" } };
    } else {
      const term = { terminated: terminated(shown) };
      state = term;
      const rec = killedBy.get(shown.id);
      const restarting = !deleting && !prevTerminal && wantsRestart(containerRestartPolicy(pod, c, init), shown, rec);
      if (restarting) {
        const err = currentImageError(imageErrors, uid, c.name, shown);
        const entry = memory?.backoff?.[c.name];
        if (err) {
          state = { waiting: imageWaiting(c, err) };
          lastState = term;
        } else if (rec?.reason !== "SpecChanged" && entry && now < restartAt(entry, shown).at) {
          state = {
            waiting: {
              reason: "CrashLoopBackOff",
              message: `back-off ${goDuration(entry.delayMs)} restarting failed container=${c.name} pod=${formatPod(pod)}`,
            },
          };
          lastState = term;
        }
      }
      if (init && !isSidecar(c)) ready = state.terminated?.exitCode === 0;
    }
    const s: Obj = {
      name: c.name,
      state,
      lastState,
      ready,
      restartCount: shown ? instanceAttempt(shown) : 0,
      image: shown?.image || c.image || "",
      imageID: shown?.imageID ?? "",
    };
    if (shown) s.containerID = containerID(shown.id);
    s.started = started;
    return s;
  };

  const initStatuses = inits.map((c) => status(c, true));
  const appStatuses = apps.map((c) => status(c, false));

  // getPhase.
  const policy = podRestartPolicy(pod);
  const podIsTerminal = deleting && !mine.some(isActive);
  let pendingInit = 0;
  let failedInit = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  inits.forEach((c, i) => {
    const st = initStatuses[i];
    const s = st.state;
    if (isSidecar(c)) {
      // A running sidecar keeps the pod running; a terminated one does not count.
      if (s.running) {
        running++;
        if (!st.started) pendingInit++;
      } else if (s.waiting && !st.lastState.terminated) {
        pendingInit++;
        waiting++;
      }
      return;
    }
    if (s.running) pendingInit++;
    else if (s.terminated) {
      if (s.terminated.exitCode !== 0) failedInit++;
    } else if (s.waiting && st.lastState.terminated) {
      if (st.lastState.terminated.exitCode !== 0) failedInit++;
    } else pendingInit++;
  });
  for (const st of appStatuses) {
    const s = st.state;
    if (s.running) running++;
    else if (s.terminated) {
      stopped++;
      if (s.terminated.exitCode === 0) succeeded++;
    } else if (st.lastState.terminated) stopped++;
    else waiting++;
  }
  let phase: string;
  if (failedInit > 0 && policy === "Never") phase = "Failed";
  else if ((pendingInit > 0 && !anyAppStarted) || waiting > 0) phase = "Pending";
  else if (running > 0) phase = "Running";
  else if (stopped > 0) {
    if (podIsTerminal) phase = stopped === succeeded ? "Succeeded" : "Failed";
    else if (policy === "Always") phase = "Running";
    else if (stopped === succeeded) phase = "Succeeded";
    else if (policy === "Never") phase = "Failed";
    else phase = "Running";
  } else phase = "Pending";
  if (phase !== "Succeeded" && phase !== "Failed" && prevTerminal) phase = prev.phase;

  // Conditions.
  const prevConds = objects(prev.conditions);
  const cond = (type: string, ok: boolean, reason?: string, message?: string): Obj => {
    const st = ok ? "True" : "False";
    const old = prevConds.find((x) => x.type === type);
    const c: Obj = {
      type,
      status: st,
      lastProbeTime: null,
      lastTransitionTime: old?.status === st && old.lastTransitionTime ? old.lastTransitionTime : rfc3339(now),
    };
    if (reason) c.reason = reason;
    if (message) c.message = message;
    return c;
  };
  const initDone = (c: Obj, i: number): boolean => {
    if (anyAppStarted) return true;
    if (isSidecar(c)) return Boolean(initStatuses[i].state.running && initStatuses[i].started);
    if (memory?.initDone?.includes(c.name)) return true;
    const latest = byName.get(c.name)?.[0];
    return latest !== undefined && !isActive(latest) && exitCodeOf(latest) === 0;
  };
  const notInitialized = inits.filter((c, i) => !initDone(c, i)).map((c) => c.name);
  const unready = [...inits.filter(isSidecar).map((c) => initStatuses[inits.indexOf(c)]), ...appStatuses]
    .filter((s) => !s.ready)
    .map((s) => s.name);
  const conditions: Obj[] = [];
  if (phase === "Succeeded") {
    conditions.push(cond("Initialized", true, "PodCompleted"));
    conditions.push(cond("Ready", false, "PodCompleted"));
    conditions.push(cond("ContainersReady", false, "PodCompleted"));
  } else {
    const initialized = notInitialized.length === 0;
    conditions.push(
      initialized
        ? cond("Initialized", true)
        : cond("Initialized", false, "ContainersNotInitialized", `containers with incomplete status: [${notInitialized.join(" ")}]`),
    );
    const containersReady = unready.length === 0;
    const notReadyMsg = `containers with unready status: [${unready.join(" ")}]`;
    let ready = containersReady ? cond("Ready", true) : cond("Ready", false, "ContainersNotReady", notReadyMsg);
    if (containersReady) {
      const gateMsgs: string[] = [];
      for (const g of objects(spec.readinessGates)) {
        const t = g.conditionType;
        const c = prevConds.find((x) => x.type === t);
        if (!c) gateMsgs.push(`corresponding condition of pod readiness gate "${t}" does not exist.`);
        else if (c.status !== "True") gateMsgs.push(`the status of pod readiness gate "${t}" is not "True", but ${c.status}`);
      }
      if (gateMsgs.length > 0) ready = cond("Ready", false, "ReadinessGatesNotReady", gateMsgs.join(", "));
    }
    conditions.push(ready);
    conditions.push(containersReady ? cond("ContainersReady", true) : cond("ContainersReady", false, "ContainersNotReady", notReadyMsg));
  }
  const scheduled = prevConds.find((x) => x.type === "PodScheduled");
  conditions.push(scheduled?.status === "True" ? scheduled : cond("PodScheduled", true));
  const owned = new Set(["Initialized", "Ready", "ContainersReady", "PodScheduled"]);
  for (const c of prevConds) if (!owned.has(c.type)) conditions.push(c);

  const out: Obj = { phase, conditions };
  if (phase === prev.phase) {
    if (prev.message) out.message = prev.message;
    if (prev.reason) out.reason = prev.reason;
  }
  if (prev.nominatedNodeName) out.nominatedNodeName = prev.nominatedNodeName;
  if (node.hostIP) {
    out.hostIP = node.hostIP;
    out.hostIPs = [{ ip: node.hostIP }];
  }
  const podIP = spec.hostNetwork === true && node.hostIP ? node.hostIP : node.podIP;
  if (podIP) {
    out.podIP = podIP;
    out.podIPs = [{ ip: podIP }];
  }
  out.startTime = typeof prev.startTime === "string" && prev.startTime ? prev.startTime : rfc3339(memory?.startTime ?? now);
  if (hasInit) out.initContainerStatuses = initStatuses;
  out.containerStatuses = appStatuses;
  out.qosClass = prev.qosClass || podQOSClass(spec);
  return out;
}

// ---------------------------------------------------------------------------------------
// statusEqual.

const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function normalize(v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  if (typeof v === "string") {
    if (RFC3339_RE.test(v)) {
      const t = Date.parse(v);
      if (Number.isFinite(t)) return `@time:${Math.floor(t / 1000)}`;
    }
    return v;
  }
  if (Array.isArray(v)) {
    const items = v.map(normalize);
    const keyed = (k: string): boolean =>
      v.length > 0 && v.every((x) => x !== null && typeof x === "object" && typeof (x as Obj)[k] === "string");
    const key = keyed("type") ? "type" : keyed("name") ? "name" : undefined;
    if (key) {
      const order = v
        .map((x, i) => [(x as Obj)[key] as string, i] as const)
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
      return order.map(([, i]) => items[i]);
    }
    return items;
  }
  if (typeof v === "object") {
    const out: Obj = {};
    for (const k of Object.keys(v as Obj).sort()) {
      const x = normalize((v as Obj)[k]);
      if (x !== undefined) out[k] = x;
    }
    return out;
  }
  return v;
}

/**
 * Whether two statuses say the same: key order, order of conditions (by type) and of
 * container statuses (by name), null vs. absent, and timestamp formatting (second
 * precision, any offset) do not count.
 */
export function statusEqual(a: Obj | undefined, b: Obj | undefined): boolean {
  return JSON.stringify(normalize(a ?? {})) === JSON.stringify(normalize(b ?? {}));
}
