// CLOUD_PROVIDER=edge: the cloud is Cloudflare's edge itself. A node's "instance" is its
// agent as the control plane knows it: the node credential it joined with (Secret
// kube-system/node-credential-<node>) and its tunnel (NodeTunnelDO.info(): connected,
// last seen, public address, colo, country). Load balancers are served by this Worker
// (workers/lb.ts) at /lb/<namespace>/<service>/ on the control plane's public host, and
// at <service>.<namespace>.<EDGE_LB_DOMAIN> when that variable is set; they hold no
// state of their own, so ensure/update/delete only compute the status.

import type { TunnelInfo } from "../../tunnel/tunnel-do.ts";
import type { Obj } from "../types.ts";
import {
  type CloudProvider,
  type InstanceMetadata,
  type LoadBalancerIngress,
  LoadBalancerPendingError,
  type LoadBalancerResult,
  type NodeAddress,
} from "./provider.ts";

/** Where the edge load balancer of a service is served, on the public host. */
export const ANNOTATION_LB_PATH = "kubeflare.dev/load-balancer-path";
/** The full URL of that path (scheme, public host and port as the Worker is reached). */
export const ANNOTATION_LB_URL = "kubeflare.dev/load-balancer-url";
/** Annotation of the node credential Secret with the time it was (re)issued (nodes-join.ts). */
const ISSUED_AT = "kubeflare.dev/issued-at";

export function lbPath(namespace: string, name: string): string {
  return `/lb/${namespace}/${name}/`;
}

function time(v: unknown): number {
  if (typeof v !== "string" || v === "") return Number.NaN;
  return Date.parse(v);
}

/**
 * Whether a node's machine still exists, from what the control plane knows of it:
 * its node credential must exist (deleting the credential retires the node), and its
 * agent must have been on its tunnel within ttlMs: connected now, or last seen (or
 * connected) no longer than ttlMs ago. A node whose agent never opened a tunnel gets
 * ttlMs from the credential's issue time (joining counts as being seen), so an agent
 * that polls instead of holding a tunnel keeps its node only while it rejoins.
 */
export function edgeInstanceExists(credential: Obj | undefined, tunnel: TunnelInfo | undefined, now: Date, ttlMs: number): boolean {
  if (!credential) return false;
  if (tunnel?.connected) return true;
  const seen = [
    time(tunnel?.lastSeen),
    time(tunnel?.connectedAt),
    time(credential.metadata?.annotations?.[ISSUED_AT]),
    time(credential.metadata?.creationTimestamp),
  ].filter((t) => !Number.isNaN(t));
  if (seen.length === 0) return false;
  return now.getTime() - Math.max(...seen) <= ttlMs;
}

/** IPv4 or IPv6 literal (the address the edge saw, CF-Connecting-IP). */
export function isIP(s: string): boolean {
  if (/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(s)) return s.split(".").every((p) => Number(p) <= 255);
  return s.includes(":") && /^[0-9a-fA-F:.]+$/.test(s);
}

/** providerID edge://<node>; the agent's public address as ExternalIP; zone = colo, region = country. */
export function edgeInstanceMetadata(nodeName: string, tunnel: TunnelInfo | undefined): InstanceMetadata {
  const nodeAddresses: NodeAddress[] = [];
  if (tunnel?.remoteAddress && isIP(tunnel.remoteAddress)) nodeAddresses.push({ type: "ExternalIP", address: tunnel.remoteAddress });
  const md: InstanceMetadata = { providerID: `edge://${nodeName}`, nodeAddresses };
  if (tunnel?.colo) md.zone = tunnel.colo;
  if (tunnel?.country) md.region = tunnel.country;
  return md;
}

/**
 * The edge load balancer of a service: ingress hostnames (the service's own host under
 * lbDomain first, then the control plane's public host) and the annotations saying where
 * it is served. Throws LoadBalancerPendingError when there is no host to give yet.
 */
export function edgeLoadBalancer(service: Obj, publicOrigin: string | undefined, lbDomain: string | undefined): LoadBalancerResult {
  const ns = service.metadata?.namespace ?? "default";
  const name = service.metadata?.name;
  const ingress: LoadBalancerIngress[] = [];
  const domain = lbDomain?.trim().replace(/^\.+|\.+$/g, "");
  if (domain) ingress.push({ hostname: `${name}.${ns}.${domain}` });
  const path = lbPath(ns, name);
  const annotations: Record<string, string> = { [ANNOTATION_LB_PATH]: path };
  if (publicOrigin) {
    const url = new URL(publicOrigin);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    ingress.push(isIP(host) ? { ip: host } : { hostname: host });
    annotations[ANNOTATION_LB_URL] = `${url.origin}${path}`;
  }
  if (ingress.length === 0) {
    throw new LoadBalancerPendingError(
      "the control plane's public host is not known yet: set PUBLIC_HOSTNAME (or EDGE_LB_DOMAIN), or make any request to the API",
    );
  }
  return { status: { ingress }, annotations };
}

export interface EdgeDeps {
  /** The node credential Secret of a node, or undefined when there is none. */
  credential(node: string): Promise<Obj | undefined>;
  /** The node's tunnel (NodeTunnelDO.info()); throws when the tunnel cannot be asked. */
  tunnel(node: string): Promise<TunnelInfo>;
  /** The control plane's public origin (scheme://host[:port]), if known. */
  publicOrigin(): string | undefined;
  lbDomain?: string;
  /** How long an instance lives without being seen on its tunnel. */
  instanceTtlMs: number;
  now(): Date;
}

export function edgeProvider(d: EdgeDeps): CloudProvider {
  const tunnelOf = async (node: Obj): Promise<TunnelInfo> => d.tunnel(node.metadata.name);
  const isLB = (svc: Obj) => svc.spec?.type === "LoadBalancer";
  return {
    name: "edge",
    instances: {
      async instanceExists(node) {
        const [cred, tunnel] = await Promise.all([d.credential(node.metadata.name), tunnelOf(node)]);
        return edgeInstanceExists(cred, tunnel, d.now(), d.instanceTtlMs);
      },
      async instanceMetadata(node) {
        return edgeInstanceMetadata(node.metadata.name, await tunnelOf(node));
      },
    },
    loadBalancer: {
      async getLoadBalancer(service) {
        if (!isLB(service)) return undefined;
        try {
          return edgeLoadBalancer(service, d.publicOrigin(), d.lbDomain);
        } catch (e) {
          if (e instanceof LoadBalancerPendingError) return undefined;
          throw e;
        }
      },
      async ensureLoadBalancer(service) {
        return edgeLoadBalancer(service, d.publicOrigin(), d.lbDomain);
      },
      // The data path reads the Endpoints on each request: nothing to update or delete.
      async updateLoadBalancer() {},
      async ensureLoadBalancerDeleted() {},
    },
  };
}
