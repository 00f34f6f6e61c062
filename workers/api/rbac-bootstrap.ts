// The built-in ClusterRoles and ClusterRoleBindings (kube's bootstrap policy, cut down
// to the resources served here), created at bootstrap and reconciled: an object that
// still carries `rbac.authorization.kubernetes.io/autoupdate: "true"` is put back to
// the built-in rules/subjects; setting it to "false" keeps local changes.

import { ApiError } from "../shared/errors.ts";
import { deepEqual } from "../shared/patch.ts";
import { lookupResource } from "../shared/resources.ts";
import type { PolicyRule, Subject } from "./authz.ts";
import { decodeKV, type Obj } from "./codec.ts";
import { type Ctx, create, guaranteedUpdate } from "./registry.ts";

const RBAC = "rbac.authorization.k8s.io";
const READ = ["get", "list", "watch"];
const WRITE = ["create", "delete", "deletecollection", "patch", "update"];
const ALL_VERBS = [...READ, ...WRITE];

const rule = (verbs: string[], apiGroups: string[], resources: string[]): PolicyRule => ({ verbs, apiGroups, resources });
const urls = (verbs: string[], nonResourceURLs: string[]): PolicyRule => ({ verbs, nonResourceURLs });

const VIEW: PolicyRule[] = [
  rule(
    READ,
    [""],
    [
      "configmaps",
      "endpoints",
      "events",
      "pods",
      "pods/log",
      "pods/status",
      "serviceaccounts",
      "services",
      "services/status",
      "namespaces",
      "namespaces/status",
    ],
  ),
  rule(
    READ,
    ["apps"],
    ["deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status"],
  ),
];

// As kube's edit role: no write to endpoints (CVE-2021-25740), secrets readable.
const EDIT: PolicyRule[] = [
  ...VIEW,
  rule(WRITE, [""], ["configmaps", "events", "pods", "secrets", "serviceaccounts", "services"]),
  rule(READ, [""], ["secrets"]),
  rule(["create", "get"], [""], ["pods/attach", "pods/exec", "pods/portforward"]),
  rule(["create"], [""], ["serviceaccounts/token"]),
  rule(WRITE, ["apps"], ["deployments", "deployments/scale", "replicasets", "replicasets/scale"]),
];

const ADMIN: PolicyRule[] = [
  ...EDIT,
  rule(ALL_VERBS, [RBAC], ["rolebindings", "roles"]),
  rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
];

/** What node agents need; the node rules in authz.ts narrow it to the node's own objects. */
const NODE: PolicyRule[] = [
  rule(READ, [""], ["pods", "nodes", "services", "endpoints"]),
  rule(["get"], [""], ["configmaps", "secrets", "serviceaccounts"]),
  rule(["create", "get", "update", "patch"], [""], ["nodes"]),
  rule(["create"], [""], ["nodes/tunnel"]),
  rule(["get", "update", "patch"], [""], ["nodes/status"]),
  rule(["update", "patch"], [""], ["pods/status"]),
  rule(["delete"], [""], ["pods"]),
  rule(["create", "get", "update", "patch"], ["coordination.k8s.io"], ["leases"]),
  rule(["create", "patch", "update"], [""], ["events"]),
];

const PUBLIC_INFO = ["/healthz", "/livez", "/readyz", "/version", "/version/"];

export const BUILTIN_CLUSTER_ROLES: { name: string; rules: PolicyRule[] }[] = [
  { name: "cluster-admin", rules: [rule(["*"], ["*"], ["*"]), urls(["*"], ["*"])] },
  { name: "admin", rules: ADMIN },
  { name: "edit", rules: EDIT },
  { name: "view", rules: VIEW },
  { name: "system:node", rules: NODE },
  {
    name: "system:basic-user",
    rules: [
      rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
      rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
    ],
  },
  {
    name: "system:discovery",
    rules: [urls(["get"], ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", ...PUBLIC_INFO])],
  },
  { name: "system:public-info-viewer", rules: [urls(["get"], PUBLIC_INFO)] },
  {
    name: "system:auth-delegator",
    rules: [
      rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
      rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
    ],
  },
];

const group = (name: string): Subject => ({ kind: "Group", apiGroup: RBAC, name });

export const BUILTIN_CLUSTER_ROLE_BINDINGS: { name: string; role: string; subjects: Subject[] }[] = [
  { name: "cluster-admin", role: "cluster-admin", subjects: [group("system:masters")] },
  { name: "system:basic-user", role: "system:basic-user", subjects: [group("system:authenticated")] },
  { name: "system:discovery", role: "system:discovery", subjects: [group("system:authenticated")] },
  {
    name: "system:public-info-viewer",
    role: "system:public-info-viewer",
    subjects: [group("system:authenticated"), group("system:unauthenticated")],
  },
  { name: "system:node", role: "system:node", subjects: [group("system:nodes")] },
];

const META = {
  labels: { "kubernetes.io/bootstrapping": "rbac-defaults" },
  annotations: { "rbac.authorization.kubernetes.io/autoupdate": "true" },
};

/** The built-in objects as stored objects (ClusterRoles, then ClusterRoleBindings). */
export function builtinObjects(): { clusterRoles: Obj[]; clusterRoleBindings: Obj[] } {
  return {
    clusterRoles: BUILTIN_CLUSTER_ROLES.map((r) => ({
      apiVersion: `${RBAC}/v1`,
      kind: "ClusterRole",
      metadata: { name: r.name, ...structuredClone(META) },
      rules: structuredClone(r.rules),
    })),
    clusterRoleBindings: BUILTIN_CLUSTER_ROLE_BINDINGS.map((b) => ({
      apiVersion: `${RBAC}/v1`,
      kind: "ClusterRoleBinding",
      metadata: { name: b.name, ...structuredClone(META) },
      roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: b.role },
      subjects: structuredClone(b.subjects),
    })),
  };
}

/** Creates missing built-ins and puts auto-updated ones back to their built-in content. */
export async function ensureBuiltinRBAC(ctx: Ctx): Promise<void> {
  const objs = builtinObjects();
  const kinds = [
    { info: lookupResource(RBAC, "v1", "clusterroles")!, items: objs.clusterRoles, field: "rules" },
    { info: lookupResource(RBAC, "v1", "clusterrolebindings")!, items: objs.clusterRoleBindings, field: "subjects" },
  ];
  for (const { info, items, field } of kinds) {
    const prefix = `/registry/${RBAC}/${info.resource}/`;
    const res = await ctx.store.list(prefix);
    const have = new Map(res.items.map((kv) => [kv.key.slice(prefix.length), decodeKV(kv)]));
    for (const want of items) {
      const cur = have.get(want.metadata.name);
      try {
        if (!cur) {
          await create(ctx, { info }, want, { dryRun: false });
          continue;
        }
        if (cur.metadata?.annotations?.["rbac.authorization.kubernetes.io/autoupdate"] !== "true") continue;
        if (deepEqual(cur[field], want[field]) && (field !== "subjects" || deepEqual(cur.roleRef, want.roleRef))) continue;
        await guaranteedUpdate(
          ctx,
          { info, name: want.metadata.name },
          (o) => {
            o[field] = want[field];
            return o;
          },
          { dryRun: false },
        );
      } catch (e) {
        // Another isolate got there first, or a binding's roleRef was changed by hand (immutable): leave it.
        if (!(e instanceof ApiError && (e.reason === "AlreadyExists" || e.reason === "Conflict" || e.reason === "Invalid"))) throw e;
      }
    }
  }
}
