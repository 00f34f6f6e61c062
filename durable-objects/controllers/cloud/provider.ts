// The cloud provider of the cloud controller manager, in the spirit of
// k8s.io/cloud-provider's InstancesV2 and LoadBalancer interfaces: what the cloud knows
// of a node's machine, and load balancers for Services of type LoadBalancer. The
// controllers (service.ts, node.ts) are pure; the manager calls the provider (the only
// I/O) and hands the answers to them.
//
// Errors: a provider method that cannot tell (the cloud did not answer) throws; the
// controllers then change nothing (a node is never deleted on an error) and retry with
// backoff. "Not found" is an answer, not an error.

import type { Obj } from "../types.ts";

/** Labels the node controller sets from InstanceMetadata (as kube's cloud node controller). */
export const LABEL_ZONE = "topology.kubernetes.io/zone";
export const LABEL_REGION = "topology.kubernetes.io/region";

export interface NodeAddress {
  type: "Hostname" | "ExternalIP" | "InternalIP" | "ExternalDNS" | "InternalDNS";
  address: string;
}

/** What the cloud says about a node's machine (cloudprovider.InstanceMetadata). */
export interface InstanceMetadata {
  /** `<provider>://<id>`; written to spec.providerID once, never changed. */
  providerID: string;
  /** Addresses of the types the cloud knows; these types are the cloud's in status.addresses. */
  nodeAddresses: NodeAddress[];
  instanceType?: string;
  zone?: string;
  region?: string;
}

export interface Instances {
  /** False only when the cloud positively knows the machine is gone (the node is then deleted). */
  instanceExists(node: Obj): Promise<boolean>;
  /** The machine exists but is shut down (the node gets the shutdown taint). Optional. */
  instanceShutdown?(node: Obj): Promise<boolean>;
  /** Metadata for initialising the node; undefined when the cloud has none to give. */
  instanceMetadata(node: Obj): Promise<InstanceMetadata | undefined>;
}

/** One entry of status.loadBalancer.ingress. */
export interface LoadBalancerIngress {
  ip?: string;
  hostname?: string;
}

export interface LoadBalancerStatus {
  ingress: LoadBalancerIngress[];
}

/** What a provider wants on the Service besides its status (e.g. where the LB is served). */
export interface LoadBalancerResult {
  status: LoadBalancerStatus;
  /** Annotations the provider owns on the Service; removed again when the LB is deleted. */
  annotations?: Record<string, string>;
}

export interface LoadBalancer {
  /** The load balancer's current status, or undefined when it does not exist. */
  getLoadBalancer(service: Obj): Promise<LoadBalancerResult | undefined>;
  /** Creates or updates the load balancer for the service and its nodes. Idempotent. */
  ensureLoadBalancer(service: Obj, nodes: Obj[]): Promise<LoadBalancerResult>;
  /** The set of nodes changed; the load balancer exists already. */
  updateLoadBalancer(service: Obj, nodes: Obj[]): Promise<void>;
  /** Deletes the load balancer; succeeds when it does not exist. */
  ensureLoadBalancerDeleted(service: Obj): Promise<void>;
}

export interface CloudProvider {
  /** The scheme of providerIDs ("edge" → "edge://<node>"). */
  readonly name: string;
  readonly instances: Instances;
  /** Undefined: this cloud has no load balancers (LoadBalancer services stay pending). */
  readonly loadBalancer?: LoadBalancer;
}

/** The provider names CLOUD_PROVIDER accepts. */
export const PROVIDERS = ["edge", "none"] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/**
 * Parses CLOUD_PROVIDER (unset or empty means "edge"). Throws for any other value, so
 * a typo stops the controller manager at startup instead of silently running without
 * load balancers.
 */
export function providerName(v: string | undefined): ProviderName {
  const name = (v ?? "").trim() || "edge";
  if ((PROVIDERS as readonly string[]).includes(name)) return name as ProviderName;
  throw new Error(`CLOUD_PROVIDER ${JSON.stringify(v)} is not a known cloud provider: use one of ${PROVIDERS.join(", ")}`);
}

/** Thrown by ensureLoadBalancer when the load balancer cannot be made yet (retried with backoff). */
export class LoadBalancerPendingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LoadBalancerPendingError";
  }
}

/** The components writing the cloud controllers' events. */
export const CLOUD_COMPONENTS = {
  service: "service-controller",
  node: "cloud-node-controller",
  nodeLifecycle: "cloud-node-lifecycle-controller",
} as const;
