// The pure core of Service ClusterIP and NodePort allocation, after kube-apiserver's
// ipallocator, portallocator and service REST storage (pkg/registry/core/service):
// ranges, the static/dynamic split of a range, picking a free slot, which IPs and ports
// a Service holds, what an update keeps, claims and releases. The store side (records,
// transactions, self-repair) is workers/api/services.ts.
//
// Only IPv4 service CIDRs are supported (one family, SingleStack).

import type { FieldError } from "./errors.ts";

type Obj = Record<string, any>;

export const DEFAULT_SERVICE_CIDR = "10.96.0.0/12";
export const DEFAULT_NODE_PORT_RANGE = "30000-32767";

/** A range of numbered slots: slot i is value `first + i`. */
export interface SlotRange {
  first: number;
  size: number;
  /**
   * Slots below this offset are left to static (user-chosen) values while dynamic
   * allocation has room above it, as kube's ServiceIPStaticSubrange /
   * ServiceNodePortStaticSubrange do.
   */
  offset: number;
}

export interface IPRange extends SlotRange {
  /** The CIDR as configured, for messages ("10.96.0.0/12"). */
  cidr: string;
}

export interface PortRange extends SlotRange {
  /** "30000-32767", for messages. */
  text: string;
}

export interface ServiceNetwork {
  ips: IPRange;
  ports: PortRange;
}

export function parseIPv4(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** kube's calculateRangeOffset: min(max(lo, size/step), hi), 0 for ranges smaller than lo. */
function rangeOffset(size: number, lo: number, hi: number, step: number): number {
  if (size < lo) return 0;
  return Math.min(Math.max(lo, Math.floor(size / step)), hi);
}

/**
 * Parses an IPv4 service CIDR. The network and broadcast addresses are never handed out
 * (as kube's bitmap allocator), so slot 0 is the first usable address. Throws on
 * anything else than an IPv4 CIDR with a prefix of /8 to /30.
 */
export function parseServiceCIDR(s: string): IPRange {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(s.trim());
  const base = m ? parseIPv4(m[1]) : undefined;
  const bits = m ? Number(m[2]) : NaN;
  if (base === undefined || !(bits >= 8 && bits <= 30)) throw new Error(`SERVICE_CIDR "${s}" is not an IPv4 CIDR between /8 and /30`);
  const total = 2 ** (32 - bits);
  const network = base - (base % total);
  return { cidr: `${formatIPv4(network)}/${bits}`, first: network + 1, size: total - 2, offset: rangeOffset(total, 16, 256, 16) };
}

/** Parses a node port range "min-max" (or a single port). Throws when malformed. */
export function parsePortRange(s: string): PortRange {
  const m = /^\s*([0-9]{1,5})(?:\s*-\s*([0-9]{1,5}))?\s*$/.exec(s);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2] ?? m[1]) : NaN;
  if (!(lo >= 1 && hi <= 65535 && lo <= hi)) throw new Error(`SERVICE_NODE_PORT_RANGE "${s}" is not a port range "min-max"`);
  const size = hi - lo + 1;
  return { text: `${lo}-${hi}`, first: lo, size, offset: rangeOffset(size, 16, 128, 32) };
}

const networks = new Map<string, ServiceNetwork>();

/** The configured ranges (env strings, defaults when unset), parsed once per pair. Throws when malformed. */
export function serviceNetwork(cidr?: string, ports?: string): ServiceNetwork {
  const c = cidr || DEFAULT_SERVICE_CIDR;
  const p = ports || DEFAULT_NODE_PORT_RANGE;
  const k = `${c} ${p}`;
  let net = networks.get(k);
  if (!net) {
    net = { ips: parseServiceCIDR(c), ports: parsePortRange(p) };
    networks.set(k, net);
  }
  return net;
}

/** The slot of an IP in the range, or undefined when it is outside (or not IPv4). */
export function ipSlot(r: IPRange, ip: string): number | undefined {
  const n = parseIPv4(ip);
  if (n === undefined) return undefined;
  const i = n - r.first;
  return i >= 0 && i < r.size ? i : undefined;
}

export function portSlot(r: PortRange, port: number): number | undefined {
  const i = port - r.first;
  return Number.isInteger(i) && i >= 0 && i < r.size ? i : undefined;
}

/**
 * A free slot for dynamic allocation, or undefined when every slot is used: a random
 * start in the upper (dynamic) band, scanning forward; then the lower (static) band.
 */
export function pickFree(r: SlotRange, isUsed: (slot: number) => boolean, rand: () => number): number | undefined {
  const bands: [number, number][] =
    r.offset > 0 && r.offset < r.size
      ? [
          [r.offset, r.size],
          [0, r.offset],
        ]
      : [[0, r.size]];
  for (const [lo, hi] of bands) {
    const n = hi - lo;
    const start = Math.floor(rand() * n);
    for (let k = 0; k < n; k++) {
      const slot = lo + ((start + k) % n);
      if (!isUsed(slot)) return slot;
    }
  }
  return undefined;
}

/** A random slot of the dynamic band, for an optimistic claim without reading what is used. */
export function randomSlot(r: SlotRange, rand: () => number): number {
  const lo = r.offset > 0 && r.offset < r.size ? r.offset : 0;
  return lo + Math.floor(rand() * (r.size - lo));
}

// ---------------------------------------------------------------------------------------
// What a Service holds.

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const typeOf = (svc: Obj): string => (isObj(svc.spec) && typeof svc.spec.type === "string" && svc.spec.type) || "ClusterIP";
const portsOf = (svc: Obj): Obj[] => (isObj(svc.spec) && Array.isArray(svc.spec.ports) ? svc.spec.ports.filter(isObj) : []);
const nodePortOf = (p: Obj): number => (Number.isInteger(p.nodePort) && p.nodePort > 0 ? p.nodePort : 0);

/** Types that have a cluster IP ("None" included): all but ExternalName. */
export function needsClusterIP(svc: Obj): boolean {
  return typeOf(svc) !== "ExternalName";
}

export function needsNodePorts(svc: Obj): boolean {
  const t = typeOf(svc);
  return t === "NodePort" || t === "LoadBalancer";
}

/** Whether ports without a nodePort get one (LoadBalancer may opt out). */
function allocatesNodePorts(svc: Obj): boolean {
  const t = typeOf(svc);
  return t === "NodePort" || (t === "LoadBalancer" && svc.spec?.allocateLoadBalancerNodePorts !== false);
}

/** The cluster IPs a Service holds (not "None"), in order. */
export function heldIPs(svc: Obj | undefined): string[] {
  if (!svc || !isObj(svc.spec) || !needsClusterIP(svc)) return [];
  const ips: unknown[] = Array.isArray(svc.spec.clusterIPs) && svc.spec.clusterIPs.length > 0 ? svc.spec.clusterIPs : [svc.spec.clusterIP];
  return [...new Set(ips.filter((ip): ip is string => typeof ip === "string" && ip !== "" && ip !== "None"))];
}

/** The node ports a Service holds (one number space for every protocol, as kube). */
export function heldNodePorts(svc: Obj | undefined): number[] {
  if (!svc) return [];
  return [
    ...new Set(
      portsOf(svc)
        .map(nodePortOf)
        .filter((n) => n > 0),
    ),
  ];
}

// ---------------------------------------------------------------------------------------
// Updates: what kube's service strategy does in PrepareForUpdate.

function sameJSON(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * Before defaulting and validation of an update (main endpoint): fills in what the
 * client left out but the server allocated (patchAllocatedValues: clusterIP(s), node
 * ports by port name) and wipes what the new type no longer uses and the client did not
 * change (dropTypeDependentFields), so a PUT of a manifest keeps its allocations and a
 * type change to ClusterIP or ExternalName releases them.
 */
export function prepareServiceUpdate(old: Obj, next: Obj): void {
  if (!isObj(next.spec) || !isObj(old.spec)) return;
  const spec = next.spec;
  const oldSpec = old.spec;
  if (needsClusterIP(old) && needsClusterIP(next)) {
    if (spec.clusterIP === undefined || spec.clusterIP === null || spec.clusterIP === "") {
      if (oldSpec.clusterIP !== undefined) spec.clusterIP = oldSpec.clusterIP;
    }
    const none =
      spec.clusterIPs === undefined || spec.clusterIPs === null || (Array.isArray(spec.clusterIPs) && spec.clusterIPs.length === 0);
    // A changed clusterIP without clusterIPs is mirrored by defaulting, and then meets
    // the immutability check.
    if (none && Array.isArray(oldSpec.clusterIPs) && oldSpec.clusterIPs.length > 0 && spec.clusterIP === oldSpec.clusterIP) {
      spec.clusterIPs = [...oldSpec.clusterIPs];
    }
  }
  if (needsNodePorts(old) && needsNodePorts(next)) {
    const newPorts = portsOf(next);
    const used = new Set(newPorts.map(nodePortOf).filter((n) => n > 0));
    const byName = new Map<string, number>();
    for (const p of portsOf(old)) byName.set(typeof p.name === "string" ? p.name : "", nodePortOf(p));
    for (const p of newPorts) {
      if (nodePortOf(p) !== 0) continue;
      const was = byName.get(typeof p.name === "string" ? p.name : "") ?? 0;
      if (was > 0 && !used.has(was)) {
        p.nodePort = was;
        used.add(was);
      }
    }
  }
  if (needsClusterIP(old) && !needsClusterIP(next)) {
    if (sameJSON(spec.clusterIP, oldSpec.clusterIP) && sameJSON(spec.clusterIPs, oldSpec.clusterIPs)) {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    }
    if (sameJSON(spec.ipFamilies, oldSpec.ipFamilies)) delete spec.ipFamilies;
    if (sameJSON(spec.ipFamilyPolicy, oldSpec.ipFamilyPolicy)) delete spec.ipFamilyPolicy;
    if (sameJSON(spec.internalTrafficPolicy, oldSpec.internalTrafficPolicy)) delete spec.internalTrafficPolicy;
  }
  if (needsNodePorts(old) && !needsNodePorts(next)) {
    const oldPorts = heldNodePorts(old);
    const newPorts = heldNodePorts(next);
    if (sameJSON(oldPorts.sort(), newPorts.sort())) for (const p of portsOf(next)) delete p.nodePort;
    if (sameJSON(spec.externalTrafficPolicy, oldSpec.externalTrafficPolicy)) delete spec.externalTrafficPolicy;
  }
  if (typeOf(next) !== "LoadBalancer") delete spec.allocateLoadBalancerNodePorts;
}

// ---------------------------------------------------------------------------------------
// Claims: what a write must allocate and may release.

/** The address kube gives the "kubernetes" Service; dynamic allocation never hands it out. */
export function isKubernetesService(svc: Obj): boolean {
  return svc.metadata?.namespace === "default" && svc.metadata?.name === "kubernetes";
}

export interface Claims {
  /** A cluster IP to allocate: a given one, or "dynamic". Undefined: none (kept, headless, ExternalName). */
  ip?: { ip: string } | "dynamic";
  /** Node ports to allocate that the old version did not hold, with the first port index asking for each. */
  explicitPorts: { port: number; index: number }[];
  /** Groups of port indexes that share one new dynamic node port (ports with the same `port`). */
  dynamicPorts: number[][];
  /** What the old version held and the new one does not. */
  releaseIPs: string[];
  releasePorts: number[];
}

const IP_NOT_IN_RANGE = (ip: string, r: IPRange) =>
  `failed to allocate IP ${ip}: provided IP is not in the valid range. The range of valid IPs is ${r.cidr}`;
export const IP_ALLOCATED = (ip: string) => `failed to allocate IP ${ip}: provided IP is already allocated`;
const PORT_NOT_IN_RANGE = (r: PortRange) => `provided port is not in the valid range. The range of valid ports is ${r.text}`;
export const PORT_ALLOCATED = "provided port is already allocated";

function fieldInvalid(field: string, value: unknown, detail: string): FieldError {
  return { field, type: "FieldValueInvalid", message: `Invalid value: ${JSON.stringify(value)}: ${detail}` };
}

/** The 422 cause for a cluster IP that cannot be had (kube reports it on spec.clusterIPs). */
export function clusterIPError(svc: Obj, detail: string): FieldError {
  const ips = Array.isArray(svc.spec?.clusterIPs) ? svc.spec.clusterIPs : [svc.spec?.clusterIP];
  return fieldInvalid("spec.clusterIPs", ips, detail);
}

export function nodePortError(index: number, port: number, detail: string): FieldError {
  return fieldInvalid(`spec.ports[${index}].nodePort`, port, detail);
}

/**
 * What writing `next` (a defaulted, valid Service) over `old` (undefined on create)
 * must claim and may release. Range errors are returned as field errors; whether a
 * claimed value is free is for the caller to find out.
 */
export function planClaims(net: ServiceNetwork, old: Obj | undefined, next: Obj): { claims: Claims; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const claims: Claims = { explicitPorts: [], dynamicPorts: [], releaseIPs: [], releasePorts: [] };
  const oldIPs = new Set(heldIPs(old));
  const oldPorts = new Set(heldNodePorts(old));

  if (needsClusterIP(next) && next.spec?.clusterIP !== "None") {
    const ip = typeof next.spec?.clusterIP === "string" ? next.spec.clusterIP : "";
    if (ip === "") {
      claims.ip = isKubernetesService(next) ? { ip: formatIPv4(net.ips.first) } : "dynamic";
    } else if (!oldIPs.has(ip)) {
      if (ipSlot(net.ips, ip) === undefined) errors.push(clusterIPError(next, IP_NOT_IN_RANGE(ip, net.ips)));
      else claims.ip = { ip };
    }
  }

  // kube's initNodePorts: ports with the same service port share a node port, and a
  // port that asks for none is given the one another port with that number asked for.
  const ports = portsOf(next);
  const shared = new Map<number, number | number[]>(); // service port → node port, or its dynamic group
  const claimed = new Set<number>();
  const explicit = (np: number, index: number) => {
    if (oldPorts.has(np) || claimed.has(np)) return;
    claimed.add(np);
    if (portSlot(net.ports, np) === undefined) errors.push(nodePortError(index, np, PORT_NOT_IN_RANGE(net.ports)));
    else claims.explicitPorts.push({ port: np, index });
  };
  ports.forEach((p, i) => {
    const np = nodePortOf(p);
    if (np === 0 && !allocatesNodePorts(next)) return;
    const have = shared.get(p.port);
    if (have === undefined) {
      const requested =
        np ||
        ports
          .filter((q) => q.port === p.port)
          .map(nodePortOf)
          .find((n) => n > 0) ||
        0;
      if (requested) {
        explicit(requested, i);
        p.nodePort = requested;
        shared.set(p.port, requested);
      } else {
        const group = [i];
        claims.dynamicPorts.push(group);
        shared.set(p.port, group);
      }
    } else if (np === 0) {
      if (typeof have === "number") p.nodePort = have;
      else have.push(i);
    } else if (np !== have) {
      explicit(np, i);
    }
  });

  const newIPs = new Set(heldIPs(next));
  claims.releaseIPs = [...oldIPs].filter((ip) => !newIPs.has(ip));
  const keptPorts = new Set([...heldNodePorts(next)]);
  claims.releasePorts = [...oldPorts].filter((n) => !keptPorts.has(n));
  return { claims, errors };
}

/** Writes the values found for the claims into the Service. */
export function assignClaims(next: Obj, claims: Claims, ip: string | undefined, dynamicPorts: number[]): void {
  if (ip !== undefined) {
    next.spec.clusterIP = ip;
    next.spec.clusterIPs = [ip];
  }
  const ports = portsOf(next);
  claims.dynamicPorts.forEach((group, g) => {
    for (const i of group) ports[i].nodePort = dynamicPorts[g];
  });
}
