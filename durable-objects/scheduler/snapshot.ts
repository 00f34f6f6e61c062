// The scheduler's view of the cluster: one NodeInfo per node with what is already bound
// to it (kube-scheduler's internal/cache NodeInfo + Snapshot). Built once per scheduling
// round from all nodes and all pods; plan() then "assumes" each placement into it so the
// next pod sees the earlier ones, exactly like kube-scheduler's assume cache.
//
// Pure module: no runtime APIs, safe in workerd and Node.

import { parseQuantity } from "../../workers/shared/validation.ts";
import type { Obj } from "../controllers/types.ts";

export const ZONE_LABEL = "topology.kubernetes.io/zone";
const BETA_ZONE_LABEL = "failure-domain.beta.kubernetes.io/zone";

/** schedutil.DefaultMilliCPURequest: what scoring assumes for a container without a cpu request. */
export const DEFAULT_MILLI_CPU_REQUEST = 100;
/** schedutil.DefaultMemoryRequest: what scoring assumes for a container without a memory request. */
export const DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024;

export const TAINT_NOT_READY = "node.kubernetes.io/not-ready";
export const TAINT_UNREACHABLE = "node.kubernetes.io/unreachable";
export const TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable";

export interface Resources {
  milliCPU: number;
  memory: number;
  pods: number;
}

/** A taint that filters (effect NoSchedule or NoExecute), with its precomputed reason. */
export interface NodeTaint {
  key: string;
  value: string;
  effect: string;
  /** "node(s) had untolerated taint {key: value}" */
  message: string;
}

/** A container hostPort, sanitized as kube does (protocol TCP, hostIP 0.0.0.0 by default). */
export interface HostPort {
  protocol: string;
  ip: string;
  port: number;
  /** "proto/ip/port", the usedHostPorts key */
  key: string;
  /** "proto/0.0.0.0/port" */
  wildcardKey: string;
  /** "proto/port", the usedProtoPorts key */
  protoPortKey: string;
}

export interface NodeInfo {
  node: Obj;
  name: string;
  /** status.allocatable (status.capacity when allocatable is missing). */
  allocatable: Resources;
  /** Sum of podRequests() of the pods on the node; pods = number of pods. */
  requested: Resources;
  /** Like requested, but containers without cpu/memory requests count the defaults (scoring only). */
  nonZeroRequested: Resources;
  pods: Obj[];
  /** "proto/ip/port" of every hostPort in use. */
  usedHostPorts: Set<string>;
  /** "proto/port" of every hostPort in use, whatever the IP (for hostIP 0.0.0.0 checks). */
  usedProtoPorts: Set<string>;
  zone?: string;
  labels: Record<string, string>;
  /** The Ready condition is True. */
  ready: boolean;
  unschedulable: boolean;
  /** Taints with effect NoSchedule or NoExecute, in node order. */
  taints: NodeTaint[];
  /** A not-ready or unreachable NoSchedule taint is present (the node lifecycle controller's). */
  notReadyTainted: boolean;
  /** Number of pods on this node per spreadKey(). */
  spreadCounts: Map<string, number>;
  /** hash32(name), for seeded tie-breaking. */
  nameHash: number;
}

export interface Snapshot {
  /** Nodes interleaved across zones (kube's nodeTree order), by name within a zone. */
  nodes: NodeInfo[];
  byName: Map<string, NodeInfo>;
  /** zone -> spreadKey -> number of pods in that zone. */
  zoneSpreadCounts: Map<string, Map<string, number>>;
}

/** What placing a pod needs to know about it, computed once per pod. */
export interface PodInfo {
  pod: Obj;
  requests: Resources;
  nonZeroRequests: Resources;
  spreadKey: string;
  hostPorts: HostPort[];
}

// ---------------------------------------------------------------------------------------
// Quantities

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function arr(v: unknown): any[] {
  return Array.isArray(v) ? v : [];
}

function quantity(v: unknown): number {
  const x = typeof v === "number" ? v : typeof v === "string" ? parseQuantity(v) : Number.NaN;
  return Number.isFinite(x) && x > 0 ? x : 0;
}

/** Rounds up like resource.Quantity.Value()/MilliValue(), forgiving float noise (0.1*1000). */
function roundUp(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - r) <= 1e-9 * Math.max(1, Math.abs(x)) ? r : Math.ceil(x);
}

const milli = (v: unknown): number => roundUp(quantity(v) * 1000);
const units = (v: unknown): number => roundUp(quantity(v));

// ---------------------------------------------------------------------------------------
// Pods

/** [milliCPU, memory] requested by one container; with nonZero, missing requests count the defaults. */
function containerRequests(c: unknown, nonZero: boolean): [number, number] {
  const req = isObj(c) && isObj(c.resources) && isObj(c.resources.requests) ? c.resources.requests : {};
  const hasCpu = Object.hasOwn(req, "cpu");
  const hasMem = Object.hasOwn(req, "memory");
  return [nonZero && !hasCpu ? DEFAULT_MILLI_CPU_REQUEST : milli(req.cpu), nonZero && !hasMem ? DEFAULT_MEMORY_REQUEST : units(req.memory)];
}

/** resourcehelper.PodRequests for cpu and memory (sidecar-aware), plus spec.overhead. */
function aggregateRequests(pod: Obj, nonZero: boolean): Resources {
  const spec = isObj(pod?.spec) ? pod.spec : {};
  let cpu = 0;
  let mem = 0;
  for (const c of arr(spec.containers)) {
    const [c1, m1] = containerRequests(c, nonZero);
    cpu += c1;
    mem += m1;
  }
  // Init containers run one at a time, so the pod needs the largest of them; restartable
  // init containers (sidecars, restartPolicy Always) keep running, so they add to the
  // regular containers and to every init container started after them.
  let sideCpu = 0;
  let sideMem = 0;
  let initCpu = 0;
  let initMem = 0;
  for (const c of arr(spec.initContainers)) {
    const [c1, m1] = containerRequests(c, nonZero);
    if (isObj(c) && c.restartPolicy === "Always") {
      cpu += c1;
      mem += m1;
      sideCpu += c1;
      sideMem += m1;
      initCpu = Math.max(initCpu, sideCpu);
      initMem = Math.max(initMem, sideMem);
    } else {
      initCpu = Math.max(initCpu, c1 + sideCpu);
      initMem = Math.max(initMem, m1 + sideMem);
    }
  }
  cpu = Math.max(cpu, initCpu);
  mem = Math.max(mem, initMem);
  if (isObj(spec.overhead)) {
    cpu += milli(spec.overhead.cpu);
    mem += units(spec.overhead.memory);
  }
  return { milliCPU: cpu, memory: mem, pods: 1 };
}

/**
 * What a pod needs from a node: the sum of its containers' requests, or the largest init
 * container's when that is more (sidecars count with both), plus spec.overhead; pods: 1.
 * Missing requests count 0.
 */
export function podRequests(pod: Obj): Resources {
  return aggregateRequests(pod, false);
}

/** podRequests, but a container without a cpu (memory) request counts 100m (200Mi): scoring only. */
export function podNonZeroRequests(pod: Obj): Resources {
  return aggregateRequests(pod, true);
}

/**
 * The group a pod spreads with: its controller's uid (ownerReferences[].controller), or
 * for a pod without a controller its namespace and labels.
 */
export function spreadKey(pod: Obj): string {
  const md = isObj(pod?.metadata) ? pod.metadata : {};
  for (const ref of arr(md.ownerReferences)) {
    if (isObj(ref) && ref.controller === true && typeof ref.uid === "string" && ref.uid !== "") return `owner:${ref.uid}`;
  }
  const labels = isObj(md.labels) ? md.labels : {};
  const sorted = Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k]]);
  return `labels:${JSON.stringify([md.namespace ?? "", sorted])}`;
}

/** The container hostPorts of a pod (hostPort > 0), sanitized like kube's HostPortInfo. */
export function podHostPorts(pod: Obj): HostPort[] {
  const out: HostPort[] = [];
  const spec = isObj(pod?.spec) ? pod.spec : {};
  for (const c of arr(spec.containers)) {
    if (!isObj(c)) continue;
    for (const p of arr(c.ports)) {
      if (!isObj(p) || typeof p.hostPort !== "number" || p.hostPort <= 0) continue;
      const protocol = typeof p.protocol === "string" && p.protocol !== "" ? p.protocol : "TCP";
      const ip = typeof p.hostIP === "string" && p.hostIP !== "" ? p.hostIP : "0.0.0.0";
      const port = p.hostPort;
      out.push({
        protocol,
        ip,
        port,
        key: `${protocol}/${ip}/${port}`,
        wildcardKey: `${protocol}/0.0.0.0/${port}`,
        protoPortKey: `${protocol}/${port}`,
      });
    }
  }
  return out;
}

export function podInfo(pod: Obj): PodInfo {
  return {
    pod,
    requests: podRequests(pod),
    nonZeroRequests: podNonZeroRequests(pod),
    spreadKey: spreadKey(pod),
    hostPorts: podHostPorts(pod),
  };
}

// ---------------------------------------------------------------------------------------
// Nodes

/** 32-bit FNV-1a of a string. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function untoleratedTaintMessage(key: string, value: string): string {
  return `node(s) had untolerated taint {${key}: ${value}}`;
}

export function newNodeInfo(node: Obj): NodeInfo {
  const md = isObj(node?.metadata) ? node.metadata : {};
  const spec = isObj(node?.spec) ? node.spec : {};
  const status = isObj(node?.status) ? node.status : {};
  const name = typeof md.name === "string" ? md.name : "";
  const labels: Record<string, string> = isObj(md.labels) ? md.labels : {};
  const alloc = isObj(status.allocatable) ? status.allocatable : isObj(status.capacity) ? status.capacity : {};
  const taints: NodeTaint[] = [];
  let notReadyTainted = false;
  for (const t of arr(spec.taints)) {
    if (!isObj(t) || (t.effect !== "NoSchedule" && t.effect !== "NoExecute")) continue;
    const key = typeof t.key === "string" ? t.key : "";
    const value = typeof t.value === "string" ? t.value : "";
    taints.push({ key, value, effect: t.effect, message: untoleratedTaintMessage(key, value) });
    if ((key === TAINT_NOT_READY || key === TAINT_UNREACHABLE) && t.effect === "NoSchedule") notReadyTainted = true;
  }
  const zone = labels[ZONE_LABEL] || labels[BETA_ZONE_LABEL] || undefined;
  return {
    node,
    name,
    allocatable: { milliCPU: milli(alloc.cpu), memory: units(alloc.memory), pods: units(alloc.pods) },
    requested: { milliCPU: 0, memory: 0, pods: 0 },
    nonZeroRequested: { milliCPU: 0, memory: 0, pods: 0 },
    pods: [],
    usedHostPorts: new Set(),
    usedProtoPorts: new Set(),
    zone,
    labels,
    ready: arr(status.conditions).some((c) => isObj(c) && c.type === "Ready" && c.status === "True"),
    unschedulable: spec.unschedulable === true,
    taints,
    notReadyTainted,
    spreadCounts: new Map(),
    nameHash: hash32(name),
  };
}

/** Adds a pod to a node of the snapshot (requests, pod count, host ports, spread counts). */
export function addPod(snapshot: Snapshot, ni: NodeInfo, info: PodInfo): void {
  ni.requested.milliCPU += info.requests.milliCPU;
  ni.requested.memory += info.requests.memory;
  ni.requested.pods += 1;
  ni.nonZeroRequested.milliCPU += info.nonZeroRequests.milliCPU;
  ni.nonZeroRequested.memory += info.nonZeroRequests.memory;
  ni.nonZeroRequested.pods += 1;
  ni.pods.push(info.pod);
  for (const hp of info.hostPorts) {
    ni.usedHostPorts.add(hp.key);
    ni.usedProtoPorts.add(hp.protoPortKey);
  }
  ni.spreadCounts.set(info.spreadKey, (ni.spreadCounts.get(info.spreadKey) ?? 0) + 1);
  if (ni.zone !== undefined) {
    let counts = snapshot.zoneSpreadCounts.get(ni.zone);
    if (!counts) snapshot.zoneSpreadCounts.set(ni.zone, (counts = new Map()));
    counts.set(info.spreadKey, (counts.get(info.spreadKey) ?? 0) + 1);
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** kube's nodeTree order: zones sorted, names sorted within a zone, then round-robin across zones. */
function interleaveByZone(infos: NodeInfo[]): NodeInfo[] {
  const byZone = new Map<string, NodeInfo[]>();
  for (const ni of infos) {
    const z = ni.zone ?? "";
    let list = byZone.get(z);
    if (!list) byZone.set(z, (list = []));
    list.push(ni);
  }
  const zones = [...byZone.keys()].sort(compareStrings).map((z) => byZone.get(z)!.sort((a, b) => compareStrings(a.name, b.name)));
  if (zones.length === 1) return zones[0];
  const out: NodeInfo[] = [];
  for (let i = 0; out.length < infos.length; i++) {
    for (const list of zones) if (i < list.length) out.push(list[i]);
  }
  return out;
}

/**
 * Builds a snapshot from all nodes and all pods. Pods with spec.nodeName that are not
 * terminal (phase Succeeded/Failed) count against their node; pods bound to a node that
 * is not in the list are ignored.
 */
export function buildSnapshot(nodes: Obj[], pods: Obj[]): Snapshot {
  const byName = new Map<string, NodeInfo>();
  for (const node of nodes) {
    const ni = newNodeInfo(node);
    if (!byName.has(ni.name)) byName.set(ni.name, ni);
  }
  const snapshot: Snapshot = { nodes: interleaveByZone([...byName.values()]), byName, zoneSpreadCounts: new Map() };
  for (const pod of pods) {
    const nodeName = pod?.spec?.nodeName;
    if (typeof nodeName !== "string" || nodeName === "") continue;
    const phase = pod?.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") continue;
    const ni = byName.get(nodeName);
    if (ni) addPod(snapshot, ni, podInfo(pod));
  }
  return snapshot;
}

/** Adds pod to nodeName in the snapshot (requested, pods, host ports, spread counts). */
export function assume(snapshot: Snapshot, pod: Obj, nodeName: string): void {
  const ni = snapshot.byName.get(nodeName);
  if (!ni) throw new Error(`node "${nodeName}" is not in the scheduler snapshot`);
  addPod(snapshot, ni, podInfo(pod));
}
