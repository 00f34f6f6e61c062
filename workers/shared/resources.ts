// The table of served resources. Routing, discovery, storage keys, and the per-kind
// strategies (defaulting, validation, status handling) are all driven from here, so a
// new resource is one entry.

export interface ResourceInfo {
  group: string; // "" for core
  version: string;
  resource: string; // plural
  kind: string;
  listKind: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Subresources served: "status", "scale", "binding". */
  subresources: string[];
  /** Has a spec whose changes bump metadata.generation. */
  hasSpec: boolean;
  /** Field selector keys accepted besides metadata.name / metadata.namespace. */
  fieldSelectors: string[];
  /**
   * Verbs served when not the full set: the create-only, never-stored resources
   * (SubjectAccessReview and friends, NodeCredential) served by their own routes.
   */
  verbs?: string[];
}

const ALL = ["all"];
const RBAC = "rbac.authorization.k8s.io";
const CREATE_ONLY = ["create"];

function r(
  group: string,
  version: string,
  resource: string,
  kind: string,
  opts: Partial<Omit<ResourceInfo, "group" | "version" | "resource" | "kind">> = {},
): ResourceInfo {
  return {
    group,
    version,
    resource,
    kind,
    listKind: `${kind}List`,
    singular: kind.toLowerCase(),
    namespaced: true,
    shortNames: [],
    categories: [],
    subresources: [],
    hasSpec: true,
    fieldSelectors: [],
    ...opts,
  };
}

export const RESOURCES: ResourceInfo[] = [
  r("", "v1", "namespaces", "Namespace", {
    namespaced: false,
    shortNames: ["ns"],
    subresources: ["status", "finalize"],
    fieldSelectors: ["status.phase"],
  }),
  r("", "v1", "pods", "Pod", {
    shortNames: ["po"],
    categories: ALL,
    subresources: ["status", "binding", "log", "exec", "attach", "portforward"],
    fieldSelectors: [
      "spec.nodeName",
      "spec.restartPolicy",
      "spec.schedulerName",
      "spec.serviceAccountName",
      "status.phase",
      "status.podIP",
      "status.nominatedNodeName",
    ],
  }),
  r("", "v1", "nodes", "Node", {
    namespaced: false,
    shortNames: ["no"],
    subresources: ["status", "proxy", "tunnel"],
    fieldSelectors: ["spec.unschedulable"],
  }),
  r("", "v1", "services", "Service", {
    shortNames: ["svc"],
    categories: ALL,
    subresources: ["status"],
  }),
  r("", "v1", "endpoints", "Endpoints", { shortNames: ["ep"], hasSpec: false, singular: "endpoints" }),
  r("", "v1", "configmaps", "ConfigMap", { shortNames: ["cm"], hasSpec: false }),
  r("", "v1", "secrets", "Secret", { hasSpec: false, fieldSelectors: ["type"] }),
  r("", "v1", "events", "Event", {
    shortNames: ["ev"],
    hasSpec: false,
    fieldSelectors: [
      "involvedObject.kind",
      "involvedObject.namespace",
      "involvedObject.name",
      "involvedObject.uid",
      "involvedObject.apiVersion",
      "involvedObject.resourceVersion",
      "involvedObject.fieldPath",
      "reason",
      "reportingComponent",
      "source",
      "type",
    ],
  }),
  r("", "v1", "serviceaccounts", "ServiceAccount", { shortNames: ["sa"], hasSpec: false, subresources: ["token"] }),
  r("apps", "v1", "deployments", "Deployment", {
    shortNames: ["deploy"],
    categories: ALL,
    subresources: ["status", "scale"],
  }),
  r("apps", "v1", "replicasets", "ReplicaSet", {
    shortNames: ["rs"],
    categories: ALL,
    subresources: ["status", "scale"],
  }),
  r("coordination.k8s.io", "v1", "leases", "Lease", {}),
  r(RBAC, "v1", "roles", "Role", { hasSpec: false }),
  r(RBAC, "v1", "rolebindings", "RoleBinding", { hasSpec: false }),
  r(RBAC, "v1", "clusterroles", "ClusterRole", { namespaced: false, hasSpec: false }),
  r(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", { namespaced: false, hasSpec: false }),
  // Create-only and never stored: answered by workers/api/reviews.ts and nodes-join.ts.
  r("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", { namespaced: false, verbs: CREATE_ONLY }),
  r("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", { namespaced: false, verbs: CREATE_ONLY }),
  r("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", { namespaced: false, verbs: CREATE_ONLY }),
  r("authorization.k8s.io", "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview", { verbs: CREATE_ONLY }),
  r("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", { namespaced: false, verbs: CREATE_ONLY }),
  r("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", { namespaced: false, verbs: CREATE_ONLY }),
  r("kubeflare.dev", "v1", "nodecredentials", "NodeCredential", { namespaced: false, verbs: CREATE_ONLY }),
];

const byPath = new Map<string, ResourceInfo>();
for (const info of RESOURCES) byPath.set(`${info.group}/${info.version}/${info.resource}`, info);

/** Finds a served resource by group ("" for core), version and plural name. */
export function lookupResource(group: string, version: string, resource: string): ResourceInfo | undefined {
  return byPath.get(`${group}/${version}/${resource}`);
}

export function apiVersionOf(info: ResourceInfo): string {
  return info.group ? `${info.group}/${info.version}` : info.version;
}

export function groupVersions(): { group: string; versions: string[] }[] {
  const m = new Map<string, Set<string>>();
  for (const info of RESOURCES) {
    if (!m.has(info.group)) m.set(info.group, new Set());
    m.get(info.group)!.add(info.version);
  }
  return [...m].map(([group, v]) => ({ group, versions: [...v] }));
}

/** Store key prefix for a resource, optionally narrowed to a namespace. Always ends in "/". */
export function keyPrefix(info: ResourceInfo, namespace?: string): string {
  const base = `/registry/${info.group || "core"}/${info.resource}/`;
  return info.namespaced && namespace ? `${base}${namespace}/` : base;
}

/** Store key of one object. */
export function objectKey(info: ResourceInfo, namespace: string | undefined, name: string): string {
  return info.namespaced ? `${keyPrefix(info)}${namespace}/${name}` : `${keyPrefix(info)}${name}`;
}
