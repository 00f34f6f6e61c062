// The node agent's decision core (our kubelet's SyncPod), compute-then-apply like Nomad's
// reconciler: computeSync looks at the desired pods, the runtime's containers, and what the
// agent remembers per pod, and returns the actions to take plus the earliest time it wants
// to be asked again. The loop (loop.ts) applies the actions and calls again on any change
// or when wakeAt passes.
//
// Contract with the loop:
// - Actions are applied in order. When an ensureImage fails, the loop records the error in
//   imageErrors["<podUID>/<container>"] = { reason, message, at } and skips the start of
//   that container in the same batch; it deletes the entry after a successful pull. Other
//   errors that keep a container from starting (CreateContainerConfigError from
//   containerConfigs, RunContainerError) may be recorded the same way: status.ts shows
//   them as the waiting reason and computeSync retries after a back-off (pull errors: 10 s
//   doubling to 5 min; others: every 10 s) and emits the Failed/BackOff events itself.
// - A batch is applied before computeSync is called again (or the loop dedupes in-flight
//   actions itself): computeSync keeps stop actions from repeating while their grace period
//   runs (memory.killing), but a probe action is repeated on every call until its result is
//   recorded (probes.ts recordProbe into memory.probes[container][kind]).
// - The loop emits Pulled (after ensureImage succeeded), Created and Started (after start).
// - memory is the one input computeSync updates in place: back-off entries, init
//   containers done, start time, stops in flight, pull back-off; it adds entries for new
//   pods and drops those of pods that are gone with all their containers.
//
// Kubelet semantics kept: init containers one at a time in order (restartable "sidecar"
// init containers, restartPolicy Always, count as done once started and keep running);
// restartPolicy Always/OnFailure/Never; CrashLoopBackOff measured from the exit like
// kubelet's flowcontrol.Backoff (the first restart is immediate, then 10 s doubling to
// 5 min, reset when the container ran more than 10 min); a running container whose spec
// hash label differs from the pod's spec is replaced right away; liveness and startup
// probe failures kill the container (restarted unless restartPolicy is Never).

import { defaultImagePullPolicy } from "../workers/shared/defaults.ts";
import { nextProbe, type ProbeKind, type ProbeState, probeHandler } from "./probes.ts";
import { type ContainerStatus, LABEL_ATTEMPT, LABEL_CONTAINER_NAME, LABEL_POD_UID, LABEL_SPEC_HASH } from "./runtime/types.ts";

type Obj = Record<string, any>;

export const BACKOFF_INITIAL_MS = 10_000;
export const BACKOFF_MAX_MS = 300_000;
/** A container that ran longer than this before exiting restarts without back-off. */
export const BACKOFF_RESET_MS = 600_000;
/** Retry interval for start errors other than image pulls (kubelet's pod worker back-off). */
export const START_ERROR_RETRY_MS = 10_000;
export const DEFAULT_GRACE_SECONDS = 30;
/** Grace for containers of pods the agent no longer knows (kubelet's minimumGracePeriodInSeconds). */
export const ORPHAN_GRACE_SECONDS = 2;
/** How long after a stop's grace period the agent waits before stopping again with no grace. */
export const KILL_SLACK_MS = 5_000;

export type StopReason = "Killing" | "Unhealthy" | "Deleted" | "Orphan" | "SpecChanged";

export interface BackoffEntry {
  /** End of the current back-off (ms), kept for wakeAt/status; restarts are gated by restartAt(). */
  until: number;
  /** kubelet's per-container back-off: 0 before the first restart, then 10 s doubling to 5 min. */
  delayMs: number;
  /** When the agent last asked to start this container. */
  lastStartedAt?: number;
  /** Id of the exited instance the BackOff event was emitted for (once per exit). */
  notified?: string;
}

export interface KillRecord {
  container: string;
  /** Runtime id of the instance being stopped. */
  id: string;
  since: number;
  graceSeconds: number;
  reason: StopReason;
}

export interface PodMemory {
  backoff: Record<string /*container*/, BackoffEntry>;
  probes: Record<string /*container*/, { liveness?: ProbeState; readiness?: ProbeState; startup?: ProbeState }>;
  initDone: string[]; // init containers that completed successfully
  startTime?: number;
  killing?: KillRecord[];
  /** Image pull back-off per container: the error seen last ("at" of imageErrors) and the delay. */
  pulls?: Record<string /*container*/, { at: number; delayMs: number }>;
}

export interface SyncInput {
  nodeName: string;
  now: number;
  pods: Obj[] /* desired: bound to this node, incl. terminating */;
  containers: ContainerStatus[] /* runtime.list() */;
  memory: Map<string, PodMemory>;
  imageErrors: Record<string /* podUID/container */, { reason: string; message: string; at: number }>;
}

export type SyncAction =
  | { type: "ensureImage"; podUID: string; container: string; image: string; policy: string }
  | { type: "start"; pod: Obj; container: string; init: boolean; attempt: number }
  | { type: "stop"; id: string; podUID: string; container: string; graceSeconds: number; reason: StopReason }
  | { type: "remove"; id: string }
  | { type: "probe"; podUID: string; container: string; kind: ProbeKind; id: string }
  | { type: "finishDeletion"; pod: Obj } // all containers gone: delete the pod with gracePeriodSeconds=0
  | { type: "removeSandbox"; podUID: string }
  | { type: "event"; pod: Obj; eventType: "Normal" | "Warning"; reason: string; message: string };

export interface SyncResult {
  actions: SyncAction[];
  /** Earliest timer: back-off end, probe due, grace deadline. */
  wakeAt?: number;
}

export function newPodMemory(): PodMemory {
  return { backoff: {}, probes: {}, initDone: [] };
}

// ---------------------------------------------------------------------------------------
// Spec hash.

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : canonical(x)));
  if (v !== null && typeof v === "object") {
    const out: Obj = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Obj)[k];
      if (x === undefined || x === null) continue;
      out[k] = canonical(x);
    }
    return out;
  }
  return v;
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = (1n << 64n) - 1n;

/** Stable hash of a container spec (canonical key order, nulls dropped): FNV-1a 64, hex. */
export function containerSpecHash(container: Obj): string {
  const bytes = new TextEncoder().encode(JSON.stringify(canonical(container ?? {})));
  let h = FNV_OFFSET;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * FNV_PRIME) & MASK64;
  }
  return h.toString(16).padStart(16, "0");
}

// ---------------------------------------------------------------------------------------
// Helpers shared with status.ts.

export function objects(v: unknown): Obj[] {
  return Array.isArray(v) ? v.filter((x) => x !== null && typeof x === "object" && !Array.isArray(x)) : [];
}

/** A time as ms since the epoch, from a Date, an RFC 3339 string or a number. */
export function toMs(d: unknown): number | undefined {
  if (d instanceof Date) return Number.isFinite(d.getTime()) ? d.getTime() : undefined;
  if (typeof d === "number") return Number.isFinite(d) ? d : undefined;
  if (typeof d === "string" && d !== "") {
    const t = Date.parse(d);
    return Number.isFinite(t) ? t : undefined;
  }
  return undefined;
}

/** The attempt label: how many restarts came before this instance (kube's restartCount). */
export function instanceAttempt(c: ContainerStatus): number {
  const n = Number(c.labels?.[LABEL_ATTEMPT]);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

export function instanceName(c: ContainerStatus): string {
  return c.labels?.[LABEL_CONTAINER_NAME] || c.name;
}

/** Anything but exited counts as (about to be) running: it must be stopped, not started again. */
export function isActive(c: ContainerStatus): boolean {
  return c.state !== "exited";
}

/** A pod's containers by container name, newest first (attempt, then start time). */
export function instancesByName(containers: ContainerStatus[]): Map<string, ContainerStatus[]> {
  const m = new Map<string, ContainerStatus[]>();
  for (const c of containers) {
    const name = instanceName(c);
    const list = m.get(name);
    if (list) list.push(c);
    else m.set(name, [c]);
  }
  for (const list of m.values()) {
    list.sort(
      (a, b) =>
        instanceAttempt(b) - instanceAttempt(a) ||
        (toMs(b.startedAt) ?? 0) - (toMs(a.startedAt) ?? 0) ||
        Number(isActive(b)) - Number(isActive(a)) ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
  }
  return m;
}

export type RestartPolicy = "Always" | "OnFailure" | "Never";

export function podRestartPolicy(pod: Obj): RestartPolicy {
  const p = pod?.spec?.restartPolicy;
  return p === "OnFailure" || p === "Never" ? p : "Always";
}

/** A restartable init container (a sidecar). */
export function isSidecar(c: Obj): boolean {
  return c?.restartPolicy === "Always";
}

/** The policy that applies to one container: init containers restart only on failure. */
export function containerRestartPolicy(pod: Obj, c: Obj, init: boolean): RestartPolicy {
  if (init && isSidecar(c)) return "Always";
  const p = podRestartPolicy(pod);
  if (init) return p === "Never" ? "Never" : "OnFailure";
  return p;
}

/** The exit code of an exited instance (a runtime that does not know it: 0 when "Completed", else 1). */
export function exitCodeOf(inst: ContainerStatus): number {
  if (typeof inst.exitCode === "number" && Number.isFinite(inst.exitCode)) return inst.exitCode;
  return inst.reason === "Completed" ? 0 : 1;
}

/** Whether an exited instance is to be started again (ignoring back-off). */
export function wantsRestart(policy: RestartPolicy, inst: ContainerStatus, kill?: KillRecord): boolean {
  if (kill?.reason === "SpecChanged") return true;
  if (kill?.reason === "Unhealthy") return policy !== "Never";
  if (policy === "Always") return true;
  if (policy === "OnFailure") return exitCodeOf(inst) !== 0;
  return false;
}

/**
 * Earliest restart of an exited instance under kubelet's back-off: immediately when there
 * is no entry or the container ran longer than BACKOFF_RESET_MS ("reset"), else delayMs
 * after its exit (or after the agent's last start request, whichever is later).
 */
export function restartAt(entry: BackoffEntry | undefined, inst: ContainerStatus): { at: number; reset: boolean } {
  const finished = toMs(inst.finishedAt) ?? toMs(inst.startedAt) ?? entry?.lastStartedAt ?? 0;
  if (!entry) return { at: finished, reset: true };
  const started = toMs(inst.startedAt) ?? entry.lastStartedAt;
  if (started !== undefined && finished - started > BACKOFF_RESET_MS) return { at: finished, reset: true };
  return { at: Math.max(finished, entry.lastStartedAt ?? Number.NEGATIVE_INFINITY) + entry.delayMs, reset: false };
}

/** The image error of a container unless an instance started after it (the error is stale then). */
export function currentImageError(
  imageErrors: SyncInput["imageErrors"] | undefined,
  podUID: string,
  name: string,
  latest: ContainerStatus | undefined,
): { reason: string; message: string; at: number } | undefined {
  const err = imageErrors?.[`${podUID}/${name}`];
  if (!err) return undefined;
  if (latest && (isActive(latest) || (toMs(latest.startedAt) ?? Number.NEGATIVE_INFINITY) >= err.at)) return undefined;
  return err;
}

/** The probe states of the instance that started at startedAt (older results are dropped). */
export function freshProbes(mem: PodMemory | undefined, name: string, startedAt: number | undefined): PodMemory["probes"][string] {
  const st = mem?.probes?.[name] ?? {};
  const out: PodMemory["probes"][string] = {};
  for (const k of ["liveness", "readiness", "startup"] as const) {
    const s = st[k];
    if (!s) continue;
    if (startedAt !== undefined && s.lastRun !== undefined && s.lastRun < startedAt) continue;
    out[k] = s;
  }
  return out;
}

/** A running instance has started when it has no startup probe or that probe succeeded. */
export function hasStarted(c: Obj, inst: ContainerStatus, mem: PodMemory | undefined): boolean {
  if (inst.state !== "running") return false;
  if (!probeHandler(c.startupProbe)) return true;
  return freshProbes(mem, c.name, toMs(inst.startedAt)).startup?.started === true;
}

/** "name_namespace(uid)", kubelet's format.Pod. */
export function formatPod(pod: Obj): string {
  const m = pod?.metadata ?? {};
  return `${m.name ?? ""}_${m.namespace ?? ""}(${m.uid ?? ""})`;
}

/** Go's time.Duration.String() for whole seconds: "10s", "1m20s", "5m0s". */
export function goDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  return `${Math.floor(m / 60)}h${m % 60}m${s % 60}s`;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** The pod's termination grace period (spec.terminationGracePeriodSeconds, default 30). */
export function podGraceSeconds(pod: Obj): number {
  return Math.max(0, num(pod?.spec?.terminationGracePeriodSeconds) ?? DEFAULT_GRACE_SECONDS);
}

/** Grace for a deleted pod: deletionGracePeriodSeconds capped by the time left to deletionTimestamp. */
export function deletionGraceSeconds(pod: Obj, now: number): number {
  const m = pod?.metadata ?? {};
  let g = num(m.deletionGracePeriodSeconds) ?? podGraceSeconds(pod);
  const dt = toMs(m.deletionTimestamp);
  if (dt !== undefined) g = Math.min(g, Math.ceil((dt - now) / 1000));
  return Math.max(0, Math.floor(g));
}

// ---------------------------------------------------------------------------------------
// computeSync.

class Plan {
  readonly actions: SyncAction[] = [];
  wakeAt: number | undefined;
  readonly now: number;
  constructor(now: number) {
    this.now = now;
  }
  wake(t: number | undefined): void {
    if (t === undefined || !Number.isFinite(t) || t <= this.now) return;
    if (this.wakeAt === undefined || t < this.wakeAt) this.wakeAt = t;
  }
  event(pod: Obj, eventType: "Normal" | "Warning", reason: string, message: string): void {
    this.actions.push({ type: "event", pod, eventType, reason, message });
  }
}

export function computeSync(input: SyncInput): SyncResult {
  const plan = new Plan(input.now);
  const byPod = new Map<string, ContainerStatus[]>();
  for (const c of input.containers ?? []) {
    const uid = c?.labels?.[LABEL_POD_UID];
    if (!uid) continue; // not created by an agent: not ours to touch
    const list = byPod.get(uid);
    if (list) list.push(c);
    else byPod.set(uid, [c]);
  }
  const desired = new Map<string, Obj>();
  for (const pod of input.pods ?? []) {
    const uid = pod?.metadata?.uid;
    if (typeof uid !== "string" || uid === "" || pod.spec?.nodeName !== input.nodeName) continue;
    desired.set(uid, pod);
  }
  const memFor = (uid: string): PodMemory => {
    let m = input.memory.get(uid);
    if (!m) input.memory.set(uid, (m = newPodMemory()));
    m.backoff ??= {};
    m.probes ??= {};
    m.initDone ??= [];
    return m;
  };
  for (const [uid, pod] of desired) new PodSync(plan, input, pod, memFor(uid), byPod.get(uid) ?? []).run();
  for (const [uid, list] of byPod) if (!desired.has(uid)) syncOrphan(plan, uid, list, memFor(uid));
  for (const uid of [...input.memory.keys()]) if (!desired.has(uid) && !byPod.has(uid)) input.memory.delete(uid);
  return plan.wakeAt === undefined ? { actions: plan.actions } : { actions: plan.actions, wakeAt: plan.wakeAt };
}

/** Stops one instance unless a stop is already running its grace period; records it. */
function kill(
  plan: Plan,
  mem: PodMemory,
  podUID: string,
  inst: ContainerStatus,
  reason: StopReason,
  graceSeconds: number,
  announce?: () => void,
): void {
  const name = instanceName(inst);
  const now = plan.now;
  mem.killing ??= [];
  const rec = mem.killing.find((k) => k.id === inst.id);
  if (rec) {
    const deadline = rec.since + rec.graceSeconds * 1000;
    const shorter = now + graceSeconds * 1000 < deadline - 1000;
    if (!shorter && now < deadline + KILL_SLACK_MS) {
      plan.wake(deadline + KILL_SLACK_MS);
      return;
    }
    // A shorter grace (the pod was deleted again with less), or the stop is overdue.
    const g = shorter ? graceSeconds : 0;
    plan.actions.push({ type: "stop", id: inst.id, podUID, container: name, graceSeconds: g, reason: rec.reason });
    rec.since = now;
    rec.graceSeconds = g;
    plan.wake(now + g * 1000 + KILL_SLACK_MS);
    return;
  }
  announce?.();
  plan.actions.push({ type: "stop", id: inst.id, podUID, container: name, graceSeconds, reason });
  mem.killing.push({ container: name, id: inst.id, since: now, graceSeconds, reason });
  plan.wake(now + graceSeconds * 1000 + KILL_SLACK_MS);
}

/** Keeps the stop records whose instance is still running or is the newest of its container. */
function pruneKilling(mem: PodMemory, byName: Map<string, ContainerStatus[]>): void {
  if (!mem.killing) return;
  mem.killing = mem.killing.filter((k) => {
    const list = byName.get(k.container) ?? [];
    const inst = list.find((c) => c.id === k.id);
    return inst !== undefined && (isActive(inst) || list[0] === inst);
  });
  if (mem.killing.length === 0) delete mem.killing;
}

/** Containers of a pod that is not desired here anymore: stop, remove, and the sandbox. */
function syncOrphan(plan: Plan, uid: string, list: ContainerStatus[], mem: PodMemory): void {
  let all = true;
  for (const inst of list) {
    if (!isActive(inst)) {
      plan.actions.push({ type: "remove", id: inst.id });
      continue;
    }
    if (mem.killing?.some((k) => k.id === inst.id)) {
      kill(plan, mem, uid, inst, "Orphan", ORPHAN_GRACE_SECONDS); // in flight: wait, or stop again when overdue
      all = false;
      continue;
    }
    kill(plan, mem, uid, inst, "Orphan", ORPHAN_GRACE_SECONDS);
    plan.actions.push({ type: "remove", id: inst.id });
  }
  if (all) plan.actions.push({ type: "removeSandbox", podUID: uid });
}

class PodSync {
  readonly uid: string;
  readonly now: number;
  readonly byName: Map<string, ContainerStatus[]>;
  readonly killedBy: Map<string, KillRecord>;
  readonly grace: number;
  readonly plan: Plan;
  readonly input: SyncInput;
  readonly pod: Obj;
  readonly mem: PodMemory;
  readonly insts: ContainerStatus[];

  constructor(plan: Plan, input: SyncInput, pod: Obj, mem: PodMemory, insts: ContainerStatus[]) {
    this.plan = plan;
    this.input = input;
    this.pod = pod;
    this.mem = mem;
    this.insts = insts;
    this.uid = pod.metadata.uid;
    this.now = input.now;
    this.byName = instancesByName(insts);
    this.killedBy = new Map((mem.killing ?? []).map((k) => [k.id, k]));
    this.grace = podGraceSeconds(pod);
  }

  run(): void {
    this.mem.startTime ??= this.now;
    if (this.pod.metadata.deletionTimestamp) this.syncDeleted();
    else this.syncLive();
    pruneKilling(this.mem, this.byName);
  }

  private kill(inst: ContainerStatus, reason: StopReason, graceSeconds: number, message?: string): void {
    kill(this.plan, this.mem, this.uid, inst, reason, graceSeconds, () =>
      this.plan.event(this.pod, "Normal", "Killing", message ?? `Stopping container ${instanceName(inst)}`),
    );
  }

  private syncDeleted(): void {
    const grace = deletionGraceSeconds(this.pod, this.now);
    let running = false;
    for (const inst of this.insts) {
      if (!isActive(inst)) continue;
      running = true;
      this.kill(inst, "Deleted", grace);
    }
    if (running) return;
    for (const inst of this.insts) this.plan.actions.push({ type: "remove", id: inst.id });
    this.plan.actions.push({ type: "removeSandbox", podUID: this.uid });
    this.plan.actions.push({ type: "finishDeletion", pod: this.pod });
  }

  private syncLive(): void {
    const spec = this.pod.spec ?? {};
    const inits = objects(spec.initContainers).filter((c) => typeof c.name === "string");
    const apps = objects(spec.containers).filter((c) => typeof c.name === "string");
    const known = new Set([...inits, ...apps].map((c) => c.name as string));

    // Containers the spec does not name, duplicates, and old exited instances.
    for (const [name, list] of this.byName) {
      if (!known.has(name)) {
        for (const inst of list) {
          if (isActive(inst)) this.kill(inst, "Killing", this.grace);
          else this.plan.actions.push({ type: "remove", id: inst.id });
        }
        continue;
      }
      const active = list.filter(isActive);
      for (const extra of active.slice(1)) this.kill(extra, "Killing", this.grace);
      let keptExited = false;
      for (const inst of list) {
        if (isActive(inst)) continue;
        if (!keptExited) keptExited = true;
        else this.plan.actions.push({ type: "remove", id: inst.id });
      }
    }

    const phase = this.pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") {
      for (const inst of this.insts) if (isActive(inst)) this.kill(inst, "Killing", this.grace);
      return;
    }

    const policy = podRestartPolicy(this.pod);
    const latest = (c: Obj): ContainerStatus | undefined => this.byName.get(c.name)?.[0];
    const anyAppStarted = apps.some((c) => (this.byName.get(c.name)?.length ?? 0) > 0);
    // Regular containers all exited for good: sidecars are stopped (the pod is completing).
    const appsDone =
      apps.length > 0 &&
      apps.every((c) => {
        const l = latest(c);
        return l !== undefined && !isActive(l) && !wantsRestart(policy, l, this.killedBy.get(l.id));
      });
    const stopSidecars = (): void => {
      for (const c of inits)
        if (isSidecar(c)) for (const inst of this.byName.get(c.name) ?? []) if (isActive(inst)) this.kill(inst, "Killing", this.grace);
    };

    // Init containers, one at a time.
    let initialized = true;
    for (const c of inits) {
      if (isSidecar(c)) {
        if (appsDone && policy !== "Always") continue;
        const cur = this.ensure(c, true, "Always");
        if (anyAppStarted || (cur && hasStarted(c, cur, this.mem))) continue;
        initialized = false;
        break;
      }
      if (anyAppStarted || this.mem.initDone.includes(c.name)) continue;
      const l = latest(c);
      if (l && !isActive(l) && exitCodeOf(l) === 0) {
        this.mem.initDone.push(c.name);
        continue;
      }
      const initPolicy = containerRestartPolicy(this.pod, c, true);
      if (l && !isActive(l) && !wantsRestart(initPolicy, l, this.killedBy.get(l.id))) {
        // restartPolicy Never: the failed init container fails the pod.
        stopSidecars();
        return;
      }
      this.ensure(c, true, initPolicy);
      initialized = false;
      break;
    }
    if (!initialized) return;

    for (const c of apps) this.ensure(c, false, policy);
    if (appsDone && policy !== "Always") stopSidecars();
  }

  /** Keeps one container going per its policy; returns its active instance, if any. */
  private ensure(c: Obj, init: boolean, policy: RestartPolicy): ContainerStatus | undefined {
    const name: string = c.name;
    const list = this.byName.get(name) ?? [];
    const cur = list.find(isActive);
    if (cur) {
      const hash = cur.labels?.[LABEL_SPEC_HASH];
      if (hash && hash !== containerSpecHash(c)) {
        this.kill(cur, "SpecChanged", this.grace, `Container ${name} definition changed, will be restarted`);
        return cur;
      }
      if (cur.state === "running" && (!init || isSidecar(c)) && !this.killedBy.has(cur.id)) this.probes(c, cur);
      return cur;
    }
    const latest = list[0];
    const err = currentImageError(this.input.imageErrors, this.uid, name, latest);
    if (latest) {
      const rec = this.killedBy.get(latest.id);
      if (!wantsRestart(policy, latest, rec)) return undefined;
      const attempt = instanceAttempt(latest) + 1;
      if (rec?.reason === "SpecChanged") {
        // Replaced right away; a start request since the exit that left no container is retried after a pause.
        const entry = this.mem.backoff[name];
        const finished = toMs(latest.finishedAt) ?? toMs(latest.startedAt) ?? 0;
        if (!err && entry?.lastStartedAt !== undefined && entry.lastStartedAt >= finished) {
          const at = entry.lastStartedAt + Math.max(entry.delayMs, BACKOFF_INITIAL_MS);
          if (this.now < at) {
            entry.until = at;
            this.plan.wake(at);
            return undefined;
          }
        }
        this.start(c, init, attempt, "replace", err);
        return undefined;
      }
      if (err) {
        this.start(c, init, attempt, "crash", err);
        return undefined;
      }
      const entry = this.mem.backoff[name];
      const { at, reset } = restartAt(entry, latest);
      if (this.now < at && entry) {
        entry.until = at;
        this.plan.wake(at);
        if (entry.notified !== latest.id) {
          entry.notified = latest.id;
          this.plan.event(this.pod, "Warning", "BackOff", `Back-off restarting failed container ${name} in pod ${formatPod(this.pod)}`);
        }
        return undefined;
      }
      this.start(c, init, attempt, reset ? "reset" : "crash", undefined);
      return undefined;
    }
    // Never started, or a start request left no container behind (it failed): retry after a pause.
    const entry = this.mem.backoff[name];
    if (!err && entry?.lastStartedAt !== undefined) {
      const at = entry.lastStartedAt + Math.max(entry.delayMs, BACKOFF_INITIAL_MS);
      if (this.now < at) {
        entry.until = at;
        this.plan.wake(at);
        return undefined;
      }
    }
    this.start(c, init, 0, "first", err);
    return undefined;
  }

  /** Pulls (unless a pull error is backing off) and starts; records the start in memory. */
  private start(
    c: Obj,
    init: boolean,
    attempt: number,
    mode: "first" | "crash" | "reset" | "replace",
    err: { reason: string; message: string; at: number } | undefined,
  ): void {
    const name: string = c.name;
    const image = String(c.image ?? "");
    const mem = this.mem;
    if (err) {
      mem.pulls ??= {};
      let p = mem.pulls[name];
      if (!p || p.at !== err.at) {
        const delayMs =
          err.reason === "ErrImagePull" ? (p ? Math.min(p.delayMs * 2, BACKOFF_MAX_MS) : BACKOFF_INITIAL_MS) : START_ERROR_RETRY_MS;
        p = mem.pulls[name] = { at: err.at, delayMs };
        this.imageErrorEvents(image, err);
      }
      const retry = p.at + p.delayMs;
      if (this.now < retry) {
        this.plan.wake(retry);
        return;
      }
    } else if (mem.pulls?.[name]) {
      delete mem.pulls[name];
      if (Object.keys(mem.pulls).length === 0) delete mem.pulls;
    }
    const policy: string = typeof c.imagePullPolicy === "string" && c.imagePullPolicy ? c.imagePullPolicy : defaultImagePullPolicy(image);
    if (policy !== "Never") this.plan.event(this.pod, "Normal", "Pulling", `Pulling image "${image}"`);
    this.plan.actions.push({ type: "ensureImage", podUID: this.uid, container: name, image, policy });
    this.plan.actions.push({ type: "start", pod: this.pod, container: name, init, attempt });

    const prev = mem.backoff[name];
    let delayMs: number;
    if (err)
      delayMs = prev?.delayMs ?? 0; // a pull retry: the pull back-off applies, not the crash back-off
    else if (mode === "reset") delayMs = BACKOFF_INITIAL_MS;
    else if (mode === "replace") delayMs = prev?.delayMs ?? 0;
    else if (mode === "crash") delayMs = prev?.delayMs ? Math.min(prev.delayMs * 2, BACKOFF_MAX_MS) : BACKOFF_INITIAL_MS;
    else delayMs = prev ? (prev.delayMs ? Math.min(prev.delayMs * 2, BACKOFF_MAX_MS) : BACKOFF_INITIAL_MS) : 0;
    mem.backoff[name] = { until: this.now, delayMs, lastStartedAt: this.now };
    mem.probes[name] = {};
  }

  private imageErrorEvents(image: string, err: { reason: string; message: string }): void {
    const p = this.pod;
    switch (err.reason) {
      case "ErrImagePull":
        this.plan.event(p, "Warning", "Failed", `Failed to pull image "${image}": ${err.message}`);
        this.plan.event(p, "Warning", "Failed", "Error: ErrImagePull");
        this.plan.event(p, "Normal", "BackOff", `Back-off pulling image "${image}"`);
        break;
      case "ErrImageNeverPull":
        this.plan.event(p, "Warning", "ErrImageNeverPull", err.message);
        this.plan.event(p, "Warning", "Failed", "Error: ErrImageNeverPull");
        break;
      case "InvalidImageName":
        this.plan.event(p, "Warning", "InspectFailed", err.message);
        this.plan.event(p, "Warning", "Failed", "Error: InvalidImageName");
        break;
      default:
        this.plan.event(p, "Warning", "Failed", `Error: ${err.message}`);
    }
  }

  /** Startup probe first; liveness and readiness once started. Failures kill the container. */
  private probes(c: Obj, cur: ContainerStatus): void {
    const name: string = c.name;
    const startedAt = toMs(cur.startedAt) ?? this.mem.backoff[name]?.lastStartedAt ?? this.mem.startTime ?? this.now;
    const fresh = freshProbes(this.mem, name, toMs(cur.startedAt));
    this.mem.probes[name] = fresh;
    const schedule = (probe: Obj, kind: ProbeKind): void => {
      const due = nextProbe(probe, fresh[kind], startedAt, this.now);
      if (due === undefined) return;
      if (due <= this.now) this.plan.actions.push({ type: "probe", podUID: this.uid, container: name, kind, id: cur.id });
      else this.plan.wake(due);
    };
    const unhealthy = (probe: Obj, kind: "Liveness" | "Startup", state: ProbeState): void => {
      const grace = num(probe.terminationGracePeriodSeconds) ?? this.grace;
      this.plan.event(this.pod, "Warning", "Unhealthy", `${kind} probe failed: ${state.message ?? ""}`.trimEnd());
      this.kill(cur, "Unhealthy", Math.max(0, grace), `Container ${name} failed ${kind.toLowerCase()} probe, will be restarted`);
    };
    if (probeHandler(c.startupProbe) && !fresh.startup?.started) {
      if (fresh.startup?.result === "failure") unhealthy(c.startupProbe, "Startup", fresh.startup);
      else schedule(c.startupProbe, "startup");
      return;
    }
    if (probeHandler(c.livenessProbe)) {
      if (fresh.liveness?.result === "failure") {
        unhealthy(c.livenessProbe, "Liveness", fresh.liveness);
        return;
      }
      schedule(c.livenessProbe, "liveness");
    }
    if (probeHandler(c.readinessProbe)) schedule(c.readinessProbe, "readiness");
  }
}
