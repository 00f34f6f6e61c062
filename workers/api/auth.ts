// The API server's authentication and authorization filter, and the I/O the pure
// authorizer (authz.ts) needs: the RBAC snapshot (every Role, ClusterRole and binding,
// one store list, cached per isolate for SNAPSHOT_TTL_MS, like kube's informer-fed
// authorizer it is eventually consistent), and for node identities the facts the node
// rules look at (the pod a request names, the pods bound to the node, a create's name).
//
// Per request: authenticate (authn.ts) → 401 if nobody; impersonation headers (need
// the impersonate verb); request attributes (authz.ts requestAttributes) → authorize →
// 403 Status with kube's message; RBAC writes by non-masters pass kube's escalation
// check (no granting what you do not hold, unless you have `escalate` / `bind`); then
// the handler runs. A write through
// this isolate to Secrets, ServiceAccounts, pods or RBAC objects drops the matching
// caches at once, so revocations are seen here immediately and elsewhere within the TTLs.

import type { Context, Next } from "hono";
import { parse as parseYAML } from "yaml";
import { RemoteStore } from "../../durable-objects/store/remote.ts";
import type { Env } from "../env.ts";
import { badRequest, methodNotAllowed, unauthorized, unsupportedMediaType } from "../shared/errors.ts";
import { applyPatch, patchTypeOf } from "../shared/patch.ts";
import { lookupResource, objectKey } from "../shared/resources.ts";
import { authenticate, invalidateAuthnCache } from "./authn.ts";
import {
  type Attributes,
  AUTHENTICATED,
  authorize,
  buildSnapshot,
  type Decision,
  EMPTY_SNAPSHOT,
  forbidden,
  forbiddenFor,
  isBootstrapIdentity,
  isMaster,
  type NodeFacts,
  nodeNameOf,
  podReferences,
  type RbacSnapshot,
  rbacAuthorize,
  requestAttributes,
  ruleString,
  rulesFor,
  rulesOf,
  type UserInfo,
  uncovered,
} from "./authz.ts";
import { MAX_BODY_BYTES } from "./body.ts";
import { ensureBootstrap } from "./bootstrap.ts";
import type { Obj } from "./codec.ts";
import type { Ctx } from "./registry.ts";

type App = { Bindings: Env };

export const SNAPSHOT_TTL_MS = 2000;
const RBAC = "rbac.authorization.k8s.io";
const RBAC_PREFIX = `/registry/${RBAC}/`;
const PODS = lookupResource("", "v1", "pods")!;

export function ctxOf(env: Env): Ctx {
  return {
    store: RemoteStore.forCluster(env.STORE, env.CLUSTER_NAME || "default"),
    now: () => new Date(),
    services: { cidr: env.SERVICE_CIDR, nodePorts: env.SERVICE_NODE_PORT_RANGE },
  };
}

const users = new WeakMap<Request, UserInfo>();

/** The authenticated user of a request (set by authMiddleware). */
export function userOf(req: Request): UserInfo | undefined {
  return users.get(req);
}

// ------------------------------------------------------------------ RBAC snapshot

let snapshot: { at: number; value: Promise<RbacSnapshot> } | undefined;

export function invalidateRBACSnapshot(): void {
  snapshot = undefined;
}

async function readSnapshot(ctx: Ctx): Promise<RbacSnapshot> {
  const res = await ctx.store.list(RBAC_PREFIX);
  const by: Record<string, Obj[]> = { roles: [], rolebindings: [], clusterroles: [], clusterrolebindings: [] };
  for (const kv of res.items) {
    const resource = kv.key.slice(RBAC_PREFIX.length).split("/")[0];
    try {
      by[resource]?.push(JSON.parse(kv.value));
    } catch {
      // an unreadable object grants nothing
    }
  }
  return buildSnapshot({
    roles: by.roles,
    roleBindings: by.rolebindings,
    clusterRoles: by.clusterroles,
    clusterRoleBindings: by.clusterrolebindings,
  });
}

/** Every RBAC object, at most SNAPSHOT_TTL_MS old (one store list per isolate per period). */
export function loadSnapshot(ctx: Ctx): Promise<RbacSnapshot> {
  const now = Date.now();
  if (snapshot && now - snapshot.at < SNAPSHOT_TTL_MS && now >= snapshot.at) return snapshot.value;
  const entry = { at: now, value: readSnapshot(ctx) };
  snapshot = entry;
  entry.value.catch(() => {
    if (snapshot === entry) snapshot = undefined;
  });
  return entry.value;
}

// ------------------------------------------------------------------ node facts

/** Looks up what the node rules need for this request (only what applies to it). */
export async function nodeFacts(ctx: Ctx, a: Attributes, node: string, objectName?: () => Promise<string>): Promise<NodeFacts> {
  const facts: NodeFacts = {};
  if (!a.resourceRequest) return facts;
  const group = a.apiGroup ?? "";
  const r = a.resource;
  const creates = (group === "" && r === "nodes") || (group === "coordination.k8s.io" && r === "leases");
  if (a.verb === "create" && !a.name && objectName && creates) facts.objectName = await objectName();
  if (group !== "") return facts;
  const podWrite = a.subresource === "status" ? a.verb === "update" || a.verb === "patch" : !a.subresource && a.verb === "delete";
  if (r === "pods" && a.name && a.namespace && podWrite) {
    const kv = await ctx.store.get(objectKey(PODS, a.namespace, a.name));
    facts.podNodeName = kv ? (JSON.parse(kv.value).spec?.nodeName ?? "") : null;
  }
  if ((r === "secrets" || r === "configmaps" || r === "serviceaccounts") && a.verb === "get" && a.name && a.namespace && !a.subresource) {
    const res = await ctx.store.list(`/registry/core/pods/${a.namespace}/`);
    facts.referencedByNodePod = res.items.some((kv) => {
      const pod = JSON.parse(kv.value);
      return pod.spec?.nodeName === node && podReferences(pod)[r].has(a.name!);
    });
  }
  return facts;
}

/**
 * The decision for a request (or a SubjectAccessReview). objectName reads the name in a
 * create's body; without it (reviews) the node rules cannot check a create's name.
 */
export async function decide(ctx: Ctx, a: Attributes, objectName?: () => Promise<string>): Promise<Decision> {
  if (isBootstrapIdentity(a.user) || isMaster(a.user)) return authorize(a, EMPTY_SNAPSHOT);
  await ensureBootstrap(ctx); // the built-in roles exist before the first decision
  const snap = await loadSnapshot(ctx);
  const node = nodeNameOf(a.user);
  let facts: NodeFacts | undefined;
  if (node !== undefined && rbacAuthorize(a, snap).allowed) facts = await nodeFacts(ctx, a, node, objectName);
  return authorize(a, snap, facts);
}

// ------------------------------------------------------------------ request bodies

/** The request body parsed as JSON or YAML; undefined if absent, too large or unparseable. */
async function peekBody(c: Context<App>): Promise<unknown> {
  if (Number(c.req.header("content-length") ?? "0") > MAX_BODY_BYTES) return undefined;
  const buf = await c.req.arrayBuffer(); // cached by hono: the handler reads the same bytes
  if (buf.byteLength === 0 || buf.byteLength > MAX_BODY_BYTES) return undefined;
  const text = new TextDecoder().decode(buf);
  const ct = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  try {
    return ct.includes("yaml") ? parseYAML(text, { maxAliasCount: 100 }) : JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function bodyName(c: Context<App>): Promise<string> {
  const name = ((await peekBody(c)) as Obj | undefined)?.metadata?.name;
  return typeof name === "string" ? name : "";
}

// ------------------------------------------------------------------ RBAC escalation

/**
 * What an RBAC write would store: the body, or for a patch the current object patched.
 * undefined when the handler will reject the request anyway (bad JSON, no such object).
 */
async function resultingObject(ctx: Ctx, c: Context<App>, a: Attributes): Promise<Obj | undefined> {
  // Fail closed: a body this check cannot read must not reach a handler that could.
  const ct = (c.req.header("content-type") ?? "application/json").split(";")[0].trim().toLowerCase();
  if (!(ct === "" || ct === "*/*" || ct.includes("json") || ct.includes("yaml"))) throw unsupportedMediaType(ct);
  const body = await peekBody(c);
  if (typeof body !== "object" || body === null) return undefined;
  if (a.verb !== "patch") return body as Obj;
  const info = lookupResource(a.apiGroup ?? "", a.apiVersion ?? "", a.resource ?? "");
  const type = patchTypeOf(c.req.header("content-type"));
  if (!info || !type || !a.name) return undefined;
  const kv = await ctx.store.get(objectKey(info, a.namespace, a.name));
  if (!kv) return undefined;
  try {
    return applyPatch(type, JSON.parse(kv.value), body, info.kind) as Obj;
  } catch {
    return undefined; // the handler reports the bad patch
  }
}

function goQuoted(l: string[]): string {
  return `[${l.map((x) => JSON.stringify(x)).join(" ")}]`;
}

/** kube's RBAC escalation check for a create/update/patch of a Role, ClusterRole or binding. */
async function checkEscalation(ctx: Ctx, c: Context<App>, a: Attributes): Promise<void> {
  const obj = await resultingObject(ctx, c, a);
  if (!obj) return;
  const snap = await loadSnapshot(ctx);
  const namespace = a.resource === "roles" || a.resource === "rolebindings" ? a.namespace : undefined;
  const target = { ...a, name: a.name ?? (typeof obj.metadata?.name === "string" ? obj.metadata.name : undefined) };
  const user = a.user;
  const refuse = (msg: string) => forbiddenFor(target, msg);
  let wanted: ReturnType<typeof rulesOf>;
  if (a.resource === "roles" || a.resource === "clusterroles") {
    if (authorize({ ...target, verb: "escalate", subresource: undefined }, snap).allowed) return;
    wanted = rulesOf(obj);
  } else {
    const ref = obj.roleRef;
    if (typeof ref?.name !== "string" || (ref.kind !== "Role" && ref.kind !== "ClusterRole")) return; // validation answers
    const bind: Attributes = {
      user,
      verb: "bind",
      resourceRequest: true,
      apiGroup: RBAC,
      apiVersion: "v1",
      resource: ref.kind === "Role" ? "roles" : "clusterroles",
      name: ref.name,
      namespace,
    };
    if (authorize(bind, snap).allowed) return;
    const rules = ref.kind === "ClusterRole" ? snap.clusterRoles.get(ref.name) : snap.roles.get(`${namespace}/${ref.name}`);
    if (!rules)
      throw refuse(`user ${JSON.stringify(user.username)} cannot bind ${ref.kind} ${JSON.stringify(ref.name)}: it does not exist`);
    wanted = rules;
  }
  const missing = uncovered(rulesFor(user, namespace, snap), wanted);
  if (missing.length) {
    throw refuse(
      `user ${JSON.stringify(user.username)} (groups=${goQuoted(user.groups)}) is attempting to grant RBAC permissions not currently held:\n${missing.map(ruleString).join("\n")}`,
    );
  }
}

// ------------------------------------------------------------------ impersonation

const IMPERSONATE_EXTRA = "impersonate-extra-";

/**
 * Impersonate-User / -Group / -Uid / -Extra-<key> headers (kubectl --as, --as-group):
 * the caller needs the `impersonate` verb on users (serviceaccounts for a
 * system:serviceaccount:<ns>:<name>), groups, uids and userextras/<key>, then the
 * request runs as that user, as kube-apiserver's impersonation filter does.
 */
async function impersonate(ctx: Ctx, c: Context<App>, user: UserInfo): Promise<UserInfo> {
  const h = c.req.raw.headers;
  const name = h.get("impersonate-user");
  const groups = (h.get("impersonate-group") ?? "")
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "");
  const uid = h.get("impersonate-uid");
  const extra: Record<string, string[]> = {};
  for (const [k, v] of h) {
    if (!k.startsWith(IMPERSONATE_EXTRA)) continue;
    let key: string;
    try {
      key = decodeURIComponent(k.slice(IMPERSONATE_EXTRA.length)).toLowerCase();
    } catch {
      throw badRequest(`malformed impersonation header ${k}`);
    }
    extra[key] = v.split(",").map((x) => x.trim());
  }
  if (name === null) {
    if (groups.length || uid !== null || Object.keys(extra).length)
      throw badRequest("impersonating groups, uid or extra requires impersonating a user");
    return user;
  }
  const checks: Attributes[] = [];
  const ask = (resource: string, what: string, more: Partial<Attributes> = {}) =>
    checks.push({ user, verb: "impersonate", resourceRequest: true, apiGroup: "", apiVersion: "v1", resource, name: what, ...more });
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(name);
  if (sa) ask("serviceaccounts", sa[2], { namespace: sa[1] });
  else ask("users", name);
  for (const g of groups) ask("groups", g);
  if (uid !== null) ask("uids", uid, { apiGroup: "authentication.k8s.io" });
  for (const [k, vs] of Object.entries(extra))
    for (const v of vs) ask("userextras", v, { apiGroup: "authentication.k8s.io", subresource: k });
  for (const a of checks) {
    const d = await decide(ctx, a);
    if (!d.allowed) throw forbidden(a, d.reason);
  }
  const impersonated = [...groups];
  if (sa && groups.length === 0) impersonated.push("system:serviceaccounts", `system:serviceaccounts:${sa[1]}`);
  if (name !== "system:anonymous" && !impersonated.includes(AUTHENTICATED)) impersonated.push(AUTHENTICATED);
  return { username: name, uid: uid ?? undefined, groups: impersonated, extra: Object.keys(extra).length ? extra : undefined };
}

// ------------------------------------------------------------------ the filter

const READ_VERBS = new Set(["get", "list", "watch"]);

/** Drops the caches a write may have made stale. */
function invalidateAfter(a: Attributes): void {
  if (!a.resourceRequest || READ_VERBS.has(a.verb)) return;
  const group = a.apiGroup ?? "";
  if (group === RBAC) invalidateRBACSnapshot();
  if (group !== "") return;
  const deletion = a.verb === "delete" || a.verb === "deletecollection";
  if (
    a.resource === "secrets" ||
    (a.resource === "serviceaccounts" && a.verb !== "create") ||
    (deletion && (a.resource === "pods" || a.resource === "namespaces"))
  ) {
    invalidateAuthnCache();
  }
}

/** hono middleware: authentication, authorization, RBAC escalation checks. */
export async function authMiddleware(c: Context<App>, next: Next): Promise<void> {
  const ctx = ctxOf(c.env);
  const authenticated = await authenticate(c.req.header("authorization"), { store: ctx.store, adminToken: c.env.ADMIN_TOKEN });
  if (!authenticated) throw unauthorized();
  const user = await impersonate(ctx, c, authenticated);
  users.set(c.req.raw, user);
  const a: Attributes = { ...requestAttributes(c.req.method, c.req.path, new URL(c.req.url).searchParams), user };
  const decision = await decide(ctx, a, () => bodyName(c));
  if (!decision.allowed) throw forbidden(a, decision.reason);
  if (a.resourceRequest && a.resource) {
    const info = lookupResource(a.apiGroup ?? "", a.apiVersion ?? "", a.resource);
    if (info?.verbs && (a.subresource || a.name || !info.verbs.includes(a.verb))) throw methodNotAllowed();
    if (a.apiGroup === RBAC && !a.subresource && (a.verb === "create" || a.verb === "update" || a.verb === "patch") && !isMaster(user)) {
      await checkEscalation(ctx, c, a);
    }
  }
  try {
    await next();
  } finally {
    invalidateAfter(a);
  }
}
