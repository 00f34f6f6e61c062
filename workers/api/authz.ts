// Authorization: pure RBAC evaluation (rbac.authorization.k8s.io/v1) in the manner of
// kube-apiserver's RBAC authorizer, plus the Node authorizer / NodeRestriction
// admission rules for node identities, and the mapping of an HTTP request to request
// attributes (kube's RequestInfoFactory). Nothing here does I/O: the caller hands in an
// RBAC snapshot (auth.ts reads and caches it) and, for nodes, facts it looked up.

import { ApiError } from "../shared/errors.ts";

// ------------------------------------------------------------------ types

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** What a request asks to do (kube's authorizer.Attributes). */
export interface RequestAttributes {
  verb: string;
  /** Resource requests: group ("" for core), version, plural, subresource, namespace, name. */
  resourceRequest: boolean;
  apiGroup?: string;
  apiVersion?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** Non-resource requests: the URL path. */
  nonResourcePath?: string;
}

export interface Attributes extends RequestAttributes {
  user: UserInfo;
}

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface Subject {
  kind: string;
  name: string;
  namespace?: string;
  apiGroup?: string;
}

export interface RoleRef {
  apiGroup?: string;
  kind: string;
  name: string;
}

export interface Binding {
  name: string;
  /** Set for RoleBindings. */
  namespace?: string;
  roleRef: RoleRef;
  subjects: Subject[];
}

/** Every Role, ClusterRole, RoleBinding and ClusterRoleBinding, indexed for evaluation. */
export interface RbacSnapshot {
  /** Roles by "namespace/name". */
  roles: Map<string, PolicyRule[]>;
  clusterRoles: Map<string, PolicyRule[]>;
  /** RoleBindings by namespace. */
  roleBindings: Map<string, Binding[]>;
  clusterRoleBindings: Binding[];
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

/**
 * What the node rules need to know beyond the request, looked up by the caller. A field
 * left undefined means "not looked up" (e.g. a SubjectAccessReview has no body).
 */
export interface NodeFacts {
  /** For pod requests with a name: spec.nodeName of that pod ("" unbound), null if there is no such pod. */
  podNodeName?: string | null;
  /** For creates: metadata.name of the object in the body ("" if it has none). */
  objectName?: string;
  /** For secrets / configmaps / serviceaccounts: whether a pod bound to the node references the object. */
  referencedByNodePod?: boolean;
}

export const MASTERS = "system:masters";
export const AUTHENTICATED = "system:authenticated";
export const NODES_GROUP = "system:nodes";
export const NODE_PREFIX = "system:node:";
export const BOOTSTRAPPERS = "system:bootstrappers";
export const BOOTSTRAP_PREFIX = "system:bootstrap:";
export const SA_PREFIX = "system:serviceaccount:";
export const NODE_LEASE_NAMESPACE = "kube-node-lease";
const RBAC_GROUP = "rbac.authorization.k8s.io";

// ------------------------------------------------------------------ snapshot

type Obj = Record<string, any>;

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** Normalises stored rules (untrusted shapes are tolerated: bad entries are dropped). */
export function rulesOf(obj: Obj): PolicyRule[] {
  if (!Array.isArray(obj?.rules)) return [];
  return obj.rules
    .filter((r: unknown) => typeof r === "object" && r !== null)
    .map((r: Obj) => ({
      verbs: strings(r.verbs),
      apiGroups: strings(r.apiGroups),
      resources: strings(r.resources),
      resourceNames: strings(r.resourceNames),
      nonResourceURLs: strings(r.nonResourceURLs),
    }));
}

function bindingOf(obj: Obj): Binding | undefined {
  const ref = obj?.roleRef;
  if (typeof ref?.kind !== "string" || typeof ref?.name !== "string") return undefined;
  const subjects = Array.isArray(obj.subjects)
    ? obj.subjects.filter((s: Obj) => typeof s?.kind === "string" && typeof s?.name === "string")
    : [];
  return { name: obj.metadata?.name ?? "", namespace: obj.metadata?.namespace, roleRef: ref, subjects };
}

/** Builds a snapshot from the stored objects of the four RBAC kinds. */
export function buildSnapshot(objs: {
  roles?: Obj[];
  clusterRoles?: Obj[];
  roleBindings?: Obj[];
  clusterRoleBindings?: Obj[];
}): RbacSnapshot {
  const snap: RbacSnapshot = { roles: new Map(), clusterRoles: new Map(), roleBindings: new Map(), clusterRoleBindings: [] };
  for (const o of objs.roles ?? []) snap.roles.set(`${o.metadata?.namespace}/${o.metadata?.name}`, rulesOf(o));
  for (const o of objs.clusterRoles ?? []) snap.clusterRoles.set(o.metadata?.name, rulesOf(o));
  for (const o of objs.roleBindings ?? []) {
    const b = bindingOf(o);
    if (!b?.namespace) continue;
    if (!snap.roleBindings.has(b.namespace)) snap.roleBindings.set(b.namespace, []);
    snap.roleBindings.get(b.namespace)!.push(b);
  }
  for (const o of objs.clusterRoleBindings ?? []) {
    const b = bindingOf(o);
    if (b) snap.clusterRoleBindings.push(b);
  }
  return snap;
}

export const EMPTY_SNAPSHOT: RbacSnapshot = buildSnapshot({});

// ------------------------------------------------------------------ rule matching

function has(list: string[] | undefined, v: string): boolean {
  return !!list && (list.includes("*") || list.includes(v));
}

function resourceMatches(rule: PolicyRule, resource: string, subresource: string | undefined): boolean {
  const combined = subresource ? `${resource}/${subresource}` : resource;
  for (const r of rule.resources ?? []) {
    if (r === "*" || r === combined) return true;
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === "*" || u === path) return true;
    if (u.endsWith("*") && path.startsWith(u.slice(0, -1))) return true;
  }
  return false;
}

/** Whether one rule allows the request (kube's RuleAllows). */
export function ruleAllows(a: RequestAttributes, rule: PolicyRule): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (!a.resourceRequest) return nonResourceURLMatches(rule, a.nonResourcePath ?? "");
  if (!has(rule.apiGroups, a.apiGroup ?? "")) return false;
  if (!resourceMatches(rule, a.resource ?? "", a.subresource)) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (!!a.name && names.includes(a.name));
}

function appliesTo(user: UserInfo, s: Subject, bindingNamespace: string): boolean {
  switch (s.kind) {
    case "User":
      return user.username === s.name;
    case "Group":
      return user.groups.includes(s.name);
    case "ServiceAccount": {
      const ns = s.namespace || bindingNamespace;
      return ns !== "" && user.username === `${SA_PREFIX}${ns}:${s.name}`;
    }
    default:
      return false;
  }
}

function roleRules(snap: RbacSnapshot, ref: RoleRef, namespace: string | undefined): PolicyRule[] | undefined {
  if (ref.apiGroup !== undefined && ref.apiGroup !== "" && ref.apiGroup !== RBAC_GROUP) return undefined;
  if (ref.kind === "ClusterRole") return snap.clusterRoles.get(ref.name);
  if (ref.kind === "Role" && namespace) return snap.roles.get(`${namespace}/${ref.name}`);
  return undefined;
}

interface Grant {
  rules: PolicyRule[];
  why: string;
}

/** The rules that apply to user in namespace (cluster-wide ones always), with where they come from. */
function grantsFor(user: UserInfo, namespace: string | undefined, snap: RbacSnapshot): Grant[] {
  const out: Grant[] = [];
  for (const b of snap.clusterRoleBindings) {
    if (b.roleRef.kind !== "ClusterRole") continue;
    const s = b.subjects.find((x) => appliesTo(user, x, ""));
    if (!s) continue;
    const rules = roleRules(snap, b.roleRef, undefined);
    if (rules) out.push({ rules, why: `ClusterRoleBinding "${b.name}" of ClusterRole "${b.roleRef.name}" to ${s.kind} "${s.name}"` });
  }
  if (namespace) {
    for (const b of snap.roleBindings.get(namespace) ?? []) {
      const s = b.subjects.find((x) => appliesTo(user, x, namespace));
      if (!s) continue;
      const rules = roleRules(snap, b.roleRef, namespace);
      if (rules)
        out.push({ rules, why: `RoleBinding "${b.name}/${namespace}" of ${b.roleRef.kind} "${b.roleRef.name}" to ${s.kind} "${s.name}"` });
    }
  }
  return out;
}

/** Every rule that applies to user in namespace (for SelfSubjectRulesReview and escalation checks). */
export function rulesFor(user: UserInfo, namespace: string | undefined, snap: RbacSnapshot): PolicyRule[] {
  return grantsFor(user, namespace, snap).flatMap((g) => g.rules);
}

/** RBAC alone: allowed if any rule bound to the user allows the request. */
export function rbacAuthorize(a: Attributes, snap: RbacSnapshot): Decision {
  // Non-resource URLs are cluster-wide: only ClusterRoleBindings apply to them.
  const ns = a.resourceRequest ? a.namespace : undefined;
  for (const g of grantsFor(a.user, ns, snap)) {
    if (g.rules.some((r) => ruleAllows(a, r))) return { allowed: true, reason: `RBAC: allowed by ${g.why}` };
  }
  return { allowed: false, reason: "" };
}

// ------------------------------------------------------------------ identities

export function isMaster(user: UserInfo): boolean {
  return user.groups.includes(MASTERS);
}

/** The node's name if user is a node identity (system:node:<name> in group system:nodes). */
export function nodeNameOf(user: UserInfo): string | undefined {
  if (!user.username.startsWith(NODE_PREFIX) || !user.groups.includes(NODES_GROUP)) return undefined;
  const name = user.username.slice(NODE_PREFIX.length);
  return name === "" ? undefined : name;
}

/** Whether user authenticated with a join (bootstrap) token. */
export function isBootstrapIdentity(user: UserInfo): boolean {
  return user.username.startsWith(BOOTSTRAP_PREFIX) || user.groups.includes(BOOTSTRAPPERS);
}

// ------------------------------------------------------------------ node rules

const POD_REFERENCED = new Set(["secrets", "configmaps", "serviceaccounts"]);
const WRITE_VERBS = new Set(["create", "update", "patch"]);

/**
 * The Node authorizer and NodeRestriction admission, simplified: what a node identity
 * may do to objects that belong to some node. null: no objection (RBAC decides alone).
 */
export function nodeRestriction(a: Attributes, node: string, facts: NodeFacts = {}): Decision | null {
  if (!a.resourceRequest) return null;
  const deny = (reason: string): Decision => ({ allowed: false, reason });
  const group = a.apiGroup ?? "";
  const target = a.verb === "create" ? (a.name ?? facts.objectName) : a.name;

  if (group === "" && a.resource === "nodes" && WRITE_VERBS.has(a.verb)) {
    if (target === undefined) return null; // a review without a body: the name is unknown
    if (target !== node) return deny(`node "${node}" is not allowed to modify node "${target}"`);
    return null;
  }
  if (group === "coordination.k8s.io" && a.resource === "leases") {
    if (a.namespace !== NODE_LEASE_NAMESPACE) return deny(`can only access leases in the ${NODE_LEASE_NAMESPACE} namespace`);
    if (target === undefined && a.verb === "create") return null;
    if (target !== node) return deny("can only access node lease with the same name as the requesting node");
    return null;
  }
  if (group === "" && a.resource === "pods" && a.name) {
    const own = (what: string): Decision | null => {
      if (facts.podNodeName === null) return null; // no such pod: the request fails with 404 anyway
      if (facts.podNodeName === undefined || facts.podNodeName !== node) {
        return deny(`node "${node}" can only ${what} with spec.nodeName set to itself`);
      }
      return null;
    };
    if (a.subresource === "status" && (a.verb === "update" || a.verb === "patch")) return own("update pod status for pods");
    if (!a.subresource && a.verb === "delete") return own("delete pods");
    return null;
  }
  if (group === "" && POD_REFERENCED.has(a.resource ?? "") && !a.subresource) {
    if (a.verb !== "get" || !a.name) return deny(`can only get individual resources of this type`);
    if (facts.referencedByNodePod !== true) return deny(`no relationship found between node '${node}' and this object`);
    return null;
  }
  return null;
}

/** The Secrets, ConfigMaps and ServiceAccount a pod uses (what the Node authorizer's graph links). */
export function podReferences(pod: Obj): { secrets: Set<string>; configmaps: Set<string>; serviceaccounts: Set<string> } {
  const secrets = new Set<string>();
  const configmaps = new Set<string>();
  const add = (set: Set<string>, v: unknown) => {
    if (typeof v === "string" && v !== "") set.add(v);
  };
  const spec = pod?.spec ?? {};
  const serviceaccounts = new Set<string>([spec.serviceAccountName || spec.serviceAccount || "default"]);
  for (const s of Array.isArray(spec.imagePullSecrets) ? spec.imagePullSecrets : []) add(secrets, s?.name);
  for (const v of Array.isArray(spec.volumes) ? spec.volumes : []) {
    if (typeof v !== "object" || v === null) continue;
    add(secrets, v.secret?.secretName);
    add(configmaps, v.configMap?.name);
    add(secrets, v.azureFile?.secretName);
    add(secrets, v.csi?.nodePublishSecretRef?.name);
    for (const src of Object.values(v) as Obj[]) add(secrets, src?.secretRef?.name); // cephfs, rbd, iscsi, flexVolume, ...
    for (const p of Array.isArray(v.projected?.sources) ? v.projected.sources : []) {
      add(secrets, p?.secret?.name);
      add(configmaps, p?.configMap?.name);
    }
  }
  for (const list of [spec.containers, spec.initContainers, spec.ephemeralContainers]) {
    for (const c of Array.isArray(list) ? list : []) {
      for (const e of Array.isArray(c?.envFrom) ? c.envFrom : []) {
        add(secrets, e?.secretRef?.name);
        add(configmaps, e?.configMapRef?.name);
      }
      for (const e of Array.isArray(c?.env) ? c.env : []) {
        add(secrets, e?.valueFrom?.secretKeyRef?.name);
        add(configmaps, e?.valueFrom?.configMapKeyRef?.name);
      }
    }
  }
  return { secrets, configmaps, serviceaccounts };
}

// ------------------------------------------------------------------ the authorizer

/**
 * The whole decision for a request: join-token identities may only ask for node
 * credentials; system:masters may do anything; everyone else needs an RBAC rule, and
 * node identities also pass the node rules.
 */
export function authorize(a: Attributes, snap: RbacSnapshot, facts?: NodeFacts): Decision {
  if (isBootstrapIdentity(a.user)) {
    const ok =
      a.resourceRequest && a.verb === "create" && a.apiGroup === "kubeflare.dev" && a.resource === "nodecredentials" && !a.subresource;
    return ok
      ? { allowed: true, reason: "join tokens may request node credentials" }
      : { allowed: false, reason: "join tokens may only be used to request node credentials" };
  }
  if (isMaster(a.user)) return { allowed: true, reason: `allowed by group "${MASTERS}"` };
  const rbac = rbacAuthorize(a, snap);
  if (!rbac.allowed) return rbac;
  const node = nodeNameOf(a.user);
  if (node !== undefined) {
    const restricted = nodeRestriction(a, node, facts);
    if (restricted) return restricted;
  }
  return rbac;
}

// ------------------------------------------------------------------ Forbidden

/** kube's forbiddenMessage: `User "alice" cannot list resource "pods" in API group "" in the namespace "default"`. */
export function forbiddenMessage(a: Attributes): string {
  const user = a.user.username;
  if (!a.resourceRequest) return `User ${JSON.stringify(user)} cannot ${a.verb} path ${JSON.stringify(a.nonResourcePath ?? "")}`;
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : (a.resource ?? "");
  const head = `User ${JSON.stringify(user)} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.apiGroup ?? "")}`;
  return a.namespace ? `${head} in the namespace ${JSON.stringify(a.namespace)}` : `${head} at the cluster scope`;
}

/** The 403 Status kube-apiserver sends for a denied request (reason appended after a colon). */
export function forbidden(a: Attributes, reason = ""): ApiError {
  const msg = reason ? `${forbiddenMessage(a)}: ${reason}` : forbiddenMessage(a);
  return forbiddenFor(a, msg);
}

/** A 403 about the request's resource (`pods "x" is forbidden: <msg>`). */
export function forbiddenFor(a: RequestAttributes, msg: string): ApiError {
  if (!a.resourceRequest || !a.resource) return new ApiError(403, "Forbidden", `forbidden: ${msg}`);
  const qualified = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource;
  const head = a.name ? `${qualified} ${JSON.stringify(a.name)}` : qualified;
  return new ApiError(403, "Forbidden", `${head} is forbidden: ${msg}`, {
    name: a.name || undefined,
    group: a.apiGroup || undefined,
    kind: a.resource,
  });
}

// ------------------------------------------------------------------ escalation

interface AtomicRule {
  verb: string;
  group?: string;
  resource?: string;
  name?: string;
  url?: string;
}

function breakdown(rule: PolicyRule): AtomicRule[] {
  const out: AtomicRule[] = [];
  for (const verb of rule.verbs) {
    for (const url of rule.nonResourceURLs ?? []) out.push({ verb, url });
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        const names = rule.resourceNames ?? [];
        if (names.length === 0) out.push({ verb, group, resource });
        else for (const name of names) out.push({ verb, group, resource, name });
      }
    }
  }
  return out;
}

function ruleCovers(owner: PolicyRule, r: AtomicRule): boolean {
  if (!has(owner.verbs, r.verb)) return false;
  if (r.url !== undefined) {
    return (owner.nonResourceURLs ?? []).some((u) => u === "*" || u === r.url || (u.endsWith("*") && r.url!.startsWith(u.slice(0, -1))));
  }
  if (!has(owner.apiGroups, r.group!)) return false;
  const res = owner.resources ?? [];
  const slash = r.resource!.indexOf("/");
  if (!(res.includes("*") || res.includes(r.resource!) || (slash > 0 && res.includes(`*/${r.resource!.slice(slash + 1)}`)))) return false;
  const names = owner.resourceNames ?? [];
  return names.length === 0 || (r.name !== undefined && names.includes(r.name));
}

/**
 * The parts of `wanted` that `owned` does not cover (kube's rbac validation Covers),
 * each as a one-verb, one-group, one-resource rule. Empty: no escalation.
 */
export function uncovered(owned: PolicyRule[], wanted: PolicyRule[]): PolicyRule[] {
  const out: PolicyRule[] = [];
  for (const rule of wanted) {
    for (const a of breakdown(rule)) {
      if (owned.some((o) => ruleCovers(o, a))) continue;
      out.push(
        a.url !== undefined
          ? { verbs: [a.verb], nonResourceURLs: [a.url] }
          : {
              verbs: [a.verb],
              apiGroups: [a.group!],
              resources: [a.resource!],
              ...(a.name !== undefined ? { resourceNames: [a.name] } : {}),
            },
      );
    }
  }
  return out;
}

/** A rule in kube's compact form: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`. */
export function ruleString(r: PolicyRule): string {
  const q = (l: string[] | undefined) => `[${(l ?? []).map((x) => JSON.stringify(x)).join(" ")}]`;
  const parts: string[] = [];
  if (r.apiGroups?.length) parts.push(`APIGroups:${q(r.apiGroups)}`);
  if (r.resources?.length) parts.push(`Resources:${q(r.resources)}`);
  if (r.resourceNames?.length) parts.push(`ResourceNames:${q(r.resourceNames)}`);
  if (r.nonResourceURLs?.length) parts.push(`NonResourceURLs:${q(r.nonResourceURLs)}`);
  parts.push(`Verbs:${q(r.verbs)}`);
  return `{${parts.join(", ")}}`;
}

// ------------------------------------------------------------------ request attributes

const SPECIAL_VERBS = new Set(["proxy", "watch"]);
const CONNECT_CREATE = new Set(["pods/exec", "pods/attach", "pods/portforward", "nodes/tunnel"]);
const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);
const NAME_SEGMENT_RE = /^[^/%]+$/;

function verbOfMethod(method: string): string {
  switch (method.toUpperCase()) {
    case "POST":
      return "create";
    case "GET":
    case "HEAD":
      return "get";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return "delete";
    default:
      return "";
  }
}

/** `metadata.name=x` (or `==`) in a field selector, as kube uses for list/watch of one object. */
function exactName(fieldSelector: string | null): string | undefined {
  if (!fieldSelector) return undefined;
  for (const term of fieldSelector.split(",")) {
    const m = /^\s*metadata\.name\s*==?\s*(.*?)\s*$/.exec(term);
    if (m && m[1] !== "" && !m[1].startsWith("=")) return m[1];
  }
  return undefined;
}

/** Maps an HTTP request to request attributes, as kube's RequestInfoFactory does. */
export function requestAttributes(method: string, path: string, query: URLSearchParams = new URLSearchParams()): RequestAttributes {
  const nonResource: RequestAttributes = { resourceRequest: false, verb: method.toLowerCase(), nonResourcePath: path };
  let parts = path.split("/").filter((s, i, a) => !(s === "" && (i === 0 || i === a.length - 1)));
  if (parts.length < 3 || (parts[0] !== "api" && parts[0] !== "apis")) return nonResource;
  const prefix = parts[0];
  parts = parts.slice(1);
  let apiGroup = "";
  if (prefix === "apis") {
    if (parts.length < 3) return nonResource;
    apiGroup = parts[0];
    parts = parts.slice(1);
  }
  const apiVersion = parts[0];
  parts = parts.slice(1);
  let verb: string;
  let viaMethod = false;
  if (SPECIAL_VERBS.has(parts[0])) {
    verb = parts[0];
    parts = parts.slice(1);
  } else {
    verb = verbOfMethod(method);
    viaMethod = true;
  }
  let namespace: string | undefined;
  if (parts[0] === "namespaces") {
    if (parts.length > 1) {
      namespace = parts[1];
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2])) parts = parts.slice(2);
    }
  }
  const a: RequestAttributes = { resourceRequest: true, verb, apiGroup, apiVersion, namespace, resource: parts[0] };
  if (parts.length >= 2) a.name = parts[1];
  if (parts.length >= 3) a.subresource = parts[2];
  if (!a.name && viaMethod && verb === "get") {
    const w = query.get("watch");
    a.verb = w === "true" || w === "1" ? "watch" : "list";
  }
  if (!a.name && (a.verb === "list" || a.verb === "watch")) {
    const n = exactName(query.get("fieldSelector"));
    if (n && NAME_SEGMENT_RE.test(n)) a.name = n;
  }
  if (!a.name && viaMethod && a.verb === "delete") a.verb = "deletecollection";
  // A WebSocket GET of a connect subresource is a create (kube 1.31+ requires create on
  // pods/exec, pods/attach and pods/portforward however the client asks).
  if (viaMethod && a.verb === "get" && a.subresource && CONNECT_CREATE.has(`${a.resource}/${a.subresource}`)) a.verb = "create";
  return a;
}
