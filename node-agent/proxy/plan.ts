// The service proxy's pure core: from the cluster's Services and Endpoints and this
// node's name, the listeners the node should have and the backends of each. The
// ServiceProxy (service-proxy.ts) applies the result with sockets.
//
// - Every port of a service that has a cluster address (types ClusterIP, NodePort and
//   LoadBalancer; not headless, not ExternalName) gets a "cluster" listener on the node's
//   service proxy address; the port number is the ServiceProxy's choice (user-space mode,
//   see docs/architecture.md).
// - Every port of a NodePort or LoadBalancer service with a nodePort also gets a
//   "nodePort" listener on that port.
// - Backends are the ready addresses (subsets[].addresses, never notReadyAddresses) of
//   the Endpoints of the same name, with the port of the subset whose port has the
//   service port's name and protocol. targetPort is not looked at: the endpoints
//   controller already resolved it into the Endpoints' port numbers.
// - A backend is local (dialled directly) when its nodeName is this node or its IP is in
//   a routable CIDR; otherwise it is remote and is reached through the control plane's
//   tunnel to its node.
// - externalTrafficPolicy Local keeps only this node's backends on nodePort listeners,
//   internalTrafficPolicy Local only this node's backends on cluster listeners.

import { BlockList, isIP } from "node:net";

type Obj = Record<string, any>;

export type Protocol = "TCP" | "UDP";

export interface Backend {
  ip: string;
  port: number;
  /** Dialled directly (same node, or an IP in a routable CIDR); false: through the tunnel. */
  local: boolean;
  /** The node the endpoint runs on (the tunnel routes remote backends there). */
  nodeName?: string;
}

export interface ListenerSpec {
  /** Identity: a listener with the same key is kept and its backends updated in place. */
  key: string;
  kind: "cluster" | "nodePort";
  namespace: string;
  service: string;
  /** The service port's name ("" for the single unnamed port). */
  portName: string;
  protocol: Protocol;
  /** spec.ports[].port. */
  servicePort: number;
  /** nodePort listeners: the port to listen on. */
  nodePort?: number;
  backends: Backend[];
}

export interface PlanOptions {
  nodeName: string;
  /** Whether an endpoint IP can be dialled from this node although it runs elsewhere. */
  isRoutable?: (ip: string) => boolean;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function objects(v: unknown): Obj[] {
  return Array.isArray(v) ? v.filter((x): x is Obj => !!x && typeof x === "object" && !Array.isArray(x)) : [];
}

function validPort(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v > 0 && v < 65536;
}

/** Whether a service gets cluster listeners and service env vars: not headless, not ExternalName. */
export function hasClusterAddress(svc: Obj): boolean {
  const spec = svc?.spec ?? {};
  return str(spec.type) !== "ExternalName" && spec.clusterIP !== "None";
}

/** The protocol of a service or endpoint port (TCP when unset); undefined for ones we do not proxy (SCTP). */
export function protocolOf(p: Obj): Protocol | undefined {
  const proto = str(p.protocol) || "TCP";
  return proto === "TCP" || proto === "UDP" ? proto : undefined;
}

/** A matcher for a list of CIDRs (IPv4 and IPv6); throws on a malformed one. */
export function cidrMatcher(cidrs: string[]): (ip: string) => boolean {
  if (cidrs.length === 0) return () => false;
  const list = new BlockList();
  for (const c of cidrs) {
    const m = /^([^/]+)\/(\d{1,3})$/.exec(c.trim());
    const family = m ? isIP(m[1]) : 0;
    const bits = m ? Number(m[2]) : -1;
    if (!m || family === 0 || bits > (family === 4 ? 32 : 128)) throw new Error(`not a CIDR: "${c}"`);
    list.addSubnet(m[1], bits, family === 4 ? "ipv4" : "ipv6");
  }
  return (ip: string) => {
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 4 ? "ipv4" : "ipv6");
  };
}

/** The ready backends of one service port, in the Endpoints' order, without duplicates. */
export function backendsFor(sp: Obj, endpoints: Obj | undefined, o: PlanOptions): Backend[] {
  const name = str(sp.name);
  const protocol = protocolOf(sp);
  const out: Backend[] = [];
  const seen = new Set<string>();
  for (const subset of objects(endpoints?.subsets)) {
    const port = objects(subset.ports).find((p) => str(p.name) === name && protocolOf(p) === protocol);
    if (!port || !validPort(port.port)) continue;
    for (const a of objects(subset.addresses)) {
      const ip = str(a.ip);
      if (isIP(ip) === 0) continue;
      const id = `${ip}/${port.port}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const nodeName = str(a.nodeName);
      const b: Backend = { ip, port: port.port, local: nodeName === o.nodeName || (o.isRoutable?.(ip) ?? false) };
      if (nodeName) b.nodeName = nodeName;
      out.push(b);
    }
  }
  return out;
}

const nsName = (o: Obj): string => `${str(o?.metadata?.namespace) || "default"}/${str(o?.metadata?.name)}`;

/**
 * The listeners this node should have, cluster listeners first, each group sorted by
 * namespace, name and port. When two services claim the same nodePort and protocol (the
 * API server should not let them), the first in that order keeps it.
 */
export function desiredListeners(services: Obj[], endpoints: Obj[], o: PlanOptions): ListenerSpec[] {
  const eps = new Map<string, Obj>();
  for (const e of endpoints) if (e?.metadata?.name) eps.set(nsName(e), e);
  const sorted = services
    .filter((s) => s?.metadata?.name && s.spec)
    .sort((a, b) => (nsName(a) < nsName(b) ? -1 : nsName(a) > nsName(b) ? 1 : 0));
  const cluster: ListenerSpec[] = [];
  const nodePorts: ListenerSpec[] = [];
  const takenNodePorts = new Set<string>();
  for (const svc of sorted) {
    if (!hasClusterAddress(svc)) continue;
    const namespace = str(svc.metadata.namespace) || "default";
    const service = str(svc.metadata.name);
    const type = str(svc.spec.type) || "ClusterIP";
    const ep = eps.get(`${namespace}/${service}`);
    const onlyLocal = (bs: Backend[], policy: unknown) => (policy === "Local" ? bs.filter((b) => b.nodeName === o.nodeName) : bs);
    for (const sp of objects(svc.spec.ports)) {
      const protocol = protocolOf(sp);
      if (!protocol || !validPort(sp.port)) continue;
      const portName = str(sp.name);
      const backends = backendsFor(sp, ep, o);
      const base = { namespace, service, portName, protocol, servicePort: sp.port };
      cluster.push({
        key: `cluster/${namespace}/${service}/${portName}/${protocol}`,
        kind: "cluster",
        ...base,
        backends: onlyLocal(backends, svc.spec.internalTrafficPolicy),
      });
      if ((type === "NodePort" || type === "LoadBalancer") && validPort(sp.nodePort)) {
        const key = `nodePort/${protocol}/${sp.nodePort}`;
        if (takenNodePorts.has(key)) continue;
        takenNodePorts.add(key);
        nodePorts.push({
          key,
          kind: "nodePort",
          ...base,
          nodePort: sp.nodePort,
          backends: onlyLocal(backends, svc.spec.externalTrafficPolicy),
        });
      }
    }
  }
  return [...cluster, ...nodePorts];
}
