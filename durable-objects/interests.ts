// Which keys each store subscriber follows. The StoreDO notifies a subscriber only for
// commits that touch these prefixes, and the subscriber's cache reads only these
// prefixes' changes: a burst of ConfigMap writes wakes neither the scheduler nor the
// controller manager. A subscriber missing here is notified of every commit.

import { keyPrefix, lookupResource } from "../workers/shared/resources.ts";

const p = (group: string, resource: string) => keyPrefix(lookupResource(group, "v1", resource)!);

export const SCHEDULER_PREFIXES = [p("", "pods"), p("", "nodes")];

export const CONTROLLER_PREFIXES = [
  p("", "pods"),
  p("", "nodes"),
  p("", "namespaces"),
  p("", "services"),
  p("", "endpoints"),
  p("coordination.k8s.io", "leases"),
  p("apps", "deployments"),
  p("apps", "replicasets"),
];

/** By the subscriber's binding name (STORE_SUBSCRIBERS). */
export const SUBSCRIBER_INTERESTS: Record<string, string[]> = {
  SCHEDULER: SCHEDULER_PREFIXES,
  CONTROLLERS: CONTROLLER_PREFIXES,
};
