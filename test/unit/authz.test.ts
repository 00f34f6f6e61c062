// The pure authorizer (workers/api/authz.ts) as tables: subject × verb × resource ×
// namespace → allowed or not, over the built-in roles (rbac-bootstrap.ts) plus custom
// Roles with resourceNames, wildcards, non-resource URLs, ServiceAccount subjects; the
// node rules; request attribute mapping; escalation coverage; kube's 403 messages.

import { describe, expect, it } from "vitest";
import {
  type Attributes,
  authorize,
  buildSnapshot,
  forbidden,
  type NodeFacts,
  podReferences,
  type RbacSnapshot,
  requestAttributes,
  ruleString,
  rulesFor,
  type UserInfo,
  uncovered,
} from "../../workers/api/authz.ts";
import { builtinObjects } from "../../workers/api/rbac-bootstrap.ts";

const RBAC = "rbac.authorization.k8s.io";
const AUTH = "system:authenticated";

const role = (ns: string, name: string, rules: object[]) => ({ metadata: { namespace: ns, name }, rules });
const clusterRole = (name: string, rules: object[]) => ({ metadata: { name }, rules });
const rb = (ns: string, name: string, kind: string, roleName: string, subjects: object[]) => ({
  metadata: { namespace: ns, name },
  roleRef: { apiGroup: RBAC, kind, name: roleName },
  subjects,
});
const crb = (name: string, roleName: string, subjects: object[]) => ({
  metadata: { name },
  roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: roleName },
  subjects,
});
const userS = (name: string) => ({ kind: "User", apiGroup: RBAC, name });
const groupS = (name: string) => ({ kind: "Group", apiGroup: RBAC, name });
const saS = (name: string, namespace?: string) => ({ kind: "ServiceAccount", name, ...(namespace ? { namespace } : {}) });

function snapshot(): RbacSnapshot {
  const b = builtinObjects();
  return buildSnapshot({
    clusterRoles: [
      ...b.clusterRoles,
      clusterRole("metrics-reader", [{ verbs: ["get"], nonResourceURLs: ["/metrics", "/logs/*"] }]),
      clusterRole("scaler", [{ verbs: ["update", "patch"], apiGroups: ["apps"], resources: ["*/scale"] }]),
    ],
    clusterRoleBindings: [
      ...b.clusterRoleBindings,
      crb("frank-metrics", "metrics-reader", [userS("frank")]),
      crb("ops-view", "view", [groupS("ops")]),
      crb("ci-scaler", "scaler", [saS("ci", "ci")]),
      crb("dangling", "does-not-exist", [userS("ghost")]),
    ],
    roles: [
      role("team", "cm-reader", [
        { verbs: ["get", "update"], apiGroups: [""], resources: ["configmaps"], resourceNames: ["app-config"] },
        { verbs: ["list"], apiGroups: [""], resources: ["configmaps"] },
      ]),
      role("lab", "wild", [{ verbs: ["get"], apiGroups: ["*"], resources: ["*"] }]),
      role("lab", "everything", [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }]),
    ],
    roleBindings: [
      rb("team", "alice-admin", "ClusterRole", "admin", [userS("alice")]),
      rb("team", "bob-edit", "ClusterRole", "edit", [userS("bob")]),
      rb("team", "viewers", "ClusterRole", "view", [groupS("viewers")]),
      rb("team", "dave-cm", "Role", "cm-reader", [userS("dave")]),
      rb("lab", "eve-wild", "Role", "wild", [userS("eve")]),
      rb("lab", "zed-all", "Role", "everything", [userS("zed")]),
      rb("team", "root", "ClusterRole", "cluster-admin", [userS("nsroot")]),
      rb("team", "deployer", "ClusterRole", "edit", [saS("deployer")]),
      rb("team", "other-ns-sa", "ClusterRole", "view", [saS("reader", "elsewhere")]),
      rb("team", "missing-role", "Role", "nope", [userS("ghost")]),
      // A binding in lab naming a Role of team does not reach across namespaces.
      rb("lab", "cross", "Role", "cm-reader", [userS("dave")]),
    ],
  });
}

const SNAP = snapshot();

const users: Record<string, UserInfo> = {
  admin: { username: "admin", groups: ["system:masters", AUTH] },
  alice: { username: "alice", groups: [AUTH] },
  bob: { username: "bob", groups: [AUTH] },
  carol: { username: "carol", groups: ["viewers", AUTH] },
  dave: { username: "dave", groups: [AUTH] },
  eve: { username: "eve", groups: [AUTH] },
  zed: { username: "zed", groups: [AUTH] },
  frank: { username: "frank", groups: [AUTH] },
  opsy: { username: "opsy", groups: ["ops", AUTH] },
  nsroot: { username: "nsroot", groups: [AUTH] },
  ghost: { username: "ghost", groups: [AUTH] },
  nobody: { username: "nobody", groups: [AUTH] },
  unauth: { username: "system:anonymous", groups: ["system:unauthenticated"] },
  deployer: { username: "system:serviceaccount:team:deployer", groups: ["system:serviceaccounts", "system:serviceaccounts:team", AUTH] },
  deployerElsewhere: {
    username: "system:serviceaccount:lab:deployer",
    groups: ["system:serviceaccounts", "system:serviceaccounts:lab", AUTH],
  },
  reader: { username: "system:serviceaccount:elsewhere:reader", groups: ["system:serviceaccounts", AUTH] },
  ci: { username: "system:serviceaccount:ci:ci", groups: ["system:serviceaccounts", AUTH] },
  n1: { username: "system:node:n1", groups: ["system:nodes", AUTH] },
  fakeNode: { username: "system:node:n1", groups: [AUTH] },
  joiner: { username: "system:bootstrap:abcdef", groups: ["system:bootstrappers", AUTH] },
};

/** "verb group/resource[/sub] ns/name"; group "" for core; ns "-" for cluster scope. */
function attrs(who: string, spec: string): Attributes {
  const [verb, gr, ...rest] = spec.split(" ");
  const where = rest.join("") || "-";
  const [group, resource, subresource] = gr.split("/");
  const [ns, name] = where.split("/");
  return {
    user: users[who],
    verb,
    resourceRequest: true,
    apiGroup: group,
    apiVersion: "v1",
    resource,
    subresource: subresource || undefined,
    namespace: ns === "-" ? undefined : ns,
    name: name || undefined,
  };
}

function url(who: string, verb: string, path: string): Attributes {
  return { user: users[who], verb, resourceRequest: false, nonResourcePath: path };
}

type Row = [who: string, request: string, allowed: boolean];

const RESOURCE_CASES: Row[] = [
  // system:masters: always
  ["admin", "delete /nodes - /x", true],
  ["admin", "create unknown.example/widgets team", true],
  // nobody: nothing but what system:authenticated gets
  ["nobody", "list /pods team", false],
  ["nobody", "get /namespaces team/team", false],
  ["nobody", "create authorization.k8s.io/selfsubjectaccessreviews", true],
  ["nobody", "create authorization.k8s.io/selfsubjectrulesreviews", true],
  ["nobody", "create authentication.k8s.io/selfsubjectreviews", true],
  ["nobody", "create authorization.k8s.io/subjectaccessreviews", false],
  ["unauth", "create authorization.k8s.io/selfsubjectaccessreviews", false],
  // admin (namespaced through a RoleBinding)
  ["alice", "list /pods team", true],
  ["alice", "create /pods team", true],
  ["alice", "deletecollection apps/deployments team", true],
  ["alice", "update apps/deployments/scale team/web", true],
  ["alice", "get /secrets team/s", true],
  ["alice", "create rbac.authorization.k8s.io/rolebindings team", true],
  ["alice", "create authorization.k8s.io/localsubjectaccessreviews team", true],
  ["alice", "create /serviceaccounts/token team/default", true],
  ["alice", "list /pods other", false],
  ["alice", "list /pods", false],
  ["alice", "get /nodes - /n1", false],
  ["alice", "create rbac.authorization.k8s.io/clusterroles", false],
  ["alice", "update coordination.k8s.io/leases team/l", false],
  ["alice", "update /pods/status team/p", false],
  ["alice", "update /endpoints team/e", false],
  ["alice", "get /namespaces team/team", true],
  ["alice", "delete /namespaces team/team", false],
  // edit
  ["bob", "update apps/deployments team/web", true],
  ["bob", "patch /configmaps team/c", true],
  ["bob", "get /secrets team/s", true],
  ["bob", "create rbac.authorization.k8s.io/roles team", false],
  ["bob", "list rbac.authorization.k8s.io/rolebindings team", false],
  ["bob", "create authorization.k8s.io/localsubjectaccessreviews team", false],
  // view (through a group)
  ["carol", "list /pods team", true],
  ["carol", "watch apps/replicasets team", true],
  ["carol", "get /pods/status team/p", true],
  ["carol", "get apps/deployments/scale team/web", true],
  ["carol", "list /secrets team", false],
  ["carol", "get /secrets team/s", false],
  ["carol", "create /configmaps team", false],
  ["carol", "update apps/deployments/scale team/web", false],
  ["carol", "list /pods lab", false],
  // a Role with resourceNames
  ["dave", "get /configmaps team/app-config", true],
  ["dave", "update /configmaps team/app-config", true],
  ["dave", "get /configmaps team/other", false],
  ["dave", "get /configmaps team", false],
  ["dave", "list /configmaps team", true],
  ["dave", "delete /configmaps team/app-config", false],
  ["dave", "get /configmaps lab/app-config", false],
  ["dave", "get /secrets team/app-config", false],
  // wildcards: groups and resources (subresources included), verbs
  ["eve", "get /pods lab/p", true],
  ["eve", "get /pods/status lab/p", true],
  ["eve", "get apps/deployments lab/d", true],
  ["eve", "get unknown.example/widgets lab/w", true],
  ["eve", "list /pods lab", false],
  ["eve", "get /pods team/p", false],
  ["zed", "escalate rbac.authorization.k8s.io/roles lab/r", true],
  ["zed", "deletecollection /secrets lab", true],
  ["zed", "get /nodes - /n", false],
  // */scale
  ["ci", "update apps/deployments/scale team/web", true],
  ["ci", "patch apps/replicasets/scale lab/r", true],
  ["ci", "update apps/deployments team/web", false],
  ["ci", "update apps/deployments/status team/web", false],
  // cluster-wide view through a ClusterRoleBinding
  ["opsy", "list /pods", true],
  ["opsy", "list /pods anywhere", true],
  ["opsy", "list /nodes", false],
  // cluster-admin bound in a namespace: everything there, nothing cluster-scoped
  ["nsroot", "delete /secrets team/s", true],
  ["nsroot", "create rbac.authorization.k8s.io/roles team", true],
  ["nsroot", "list /secrets other", false],
  ["nsroot", "list /nodes", false],
  // ServiceAccount subjects: with the binding's namespace when none is given, or their own
  ["deployer", "create apps/deployments team", true],
  ["deployer", "create apps/deployments lab", false],
  ["deployerElsewhere", "create apps/deployments team", false],
  ["reader", "list /pods team", true],
  ["reader", "list /pods elsewhere", false],
  // bindings to roles that do not exist grant nothing
  ["ghost", "get /pods team/p", false],
  // join tokens: node credentials only
  ["joiner", "create kubeflare.dev/nodecredentials", true],
  ["joiner", "create authorization.k8s.io/selfsubjectaccessreviews", false],
  ["joiner", "list /pods", false],
  ["joiner", "get kubeflare.dev/nodecredentials - /x", false],
];

const URL_CASES: [who: string, verb: string, path: string, allowed: boolean][] = [
  ["nobody", "get", "/api", true],
  ["nobody", "get", "/api/v1", true],
  ["nobody", "get", "/apis/apps/v1", true],
  ["nobody", "get", "/openapi/v3", true],
  ["nobody", "get", "/version", true],
  ["nobody", "get", "/healthz", true],
  ["nobody", "post", "/api", false],
  ["nobody", "get", "/metrics", false],
  ["nobody", "get", "/apisx", false],
  ["unauth", "get", "/healthz", true],
  ["unauth", "get", "/api", false],
  ["frank", "get", "/metrics", true],
  ["frank", "get", "/metrics/x", false],
  ["frank", "get", "/logs/kube", true],
  ["frank", "get", "/logs/", true],
  ["frank", "get", "/logs", false],
  ["frank", "put", "/logs/kube", false],
  ["admin", "delete", "/anything", true],
  ["alice", "get", "/metrics", false],
  // Role rules never apply to URLs, even with wildcards.
  ["zed", "get", "/metrics", false],
];

describe("RBAC: resource requests", () => {
  it.each(RESOURCE_CASES)("%s: %s → %s", (who, spec, allowed) => {
    const d = authorize(attrs(who, spec), SNAP);
    expect(d.allowed, d.reason).toBe(allowed);
  });
});

describe("RBAC: non-resource URLs", () => {
  it.each(URL_CASES)("%s: %s %s → %s", (who, verb, path, allowed) => {
    expect(authorize(url(who, verb, path), SNAP).allowed).toBe(allowed);
  });
});

describe("RBAC: reasons", () => {
  it("names the binding and role that allowed", () => {
    expect(authorize(attrs("carol", "list /pods team"), SNAP).reason).toBe(
      'RBAC: allowed by RoleBinding "viewers/team" of ClusterRole "view" to Group "viewers"',
    );
    expect(authorize(attrs("opsy", "list /pods"), SNAP).reason).toBe(
      'RBAC: allowed by ClusterRoleBinding "ops-view" of ClusterRole "view" to Group "ops"',
    );
  });
});

// ------------------------------------------------------------------ node rules

type NodeRow = [request: string, facts: NodeFacts, allowed: boolean];

const NODE_CASES: NodeRow[] = [
  // reads
  ["get /pods team/p", {}, true],
  ["list /pods", {}, true],
  ["watch /pods", {}, true],
  ["list /nodes", {}, true],
  ["get /nodes - /n2", {}, true],
  ["list /services", {}, true],
  ["watch /endpoints team", {}, true],
  ["list apps/deployments team", {}, false],
  // its Node object and status
  ["create /nodes", { objectName: "n1" }, true],
  ["create /nodes", { objectName: "n2" }, false],
  ["create /nodes", { objectName: "" }, false],
  ["update /nodes - /n1", {}, true],
  ["patch /nodes/status - /n1", {}, true],
  ["patch /nodes/status - /n2", {}, false],
  ["update /nodes - /n2", {}, false],
  ["delete /nodes - /n1", {}, false],
  // its Lease
  ["create coordination.k8s.io/leases kube-node-lease", { objectName: "n1" }, true],
  ["create coordination.k8s.io/leases kube-node-lease", { objectName: "n2" }, false],
  ["get coordination.k8s.io/leases kube-node-lease/n1", {}, true],
  ["update coordination.k8s.io/leases kube-node-lease/n1", {}, true],
  ["patch coordination.k8s.io/leases kube-node-lease/n2", {}, false],
  ["list coordination.k8s.io/leases kube-node-lease", {}, false],
  ["get coordination.k8s.io/leases default/n1", {}, false],
  ["delete coordination.k8s.io/leases kube-node-lease/n1", {}, false],
  // pods: status and delete only when bound to itself
  ["patch /pods/status team/p", { podNodeName: "n1" }, true],
  ["update /pods/status team/p", { podNodeName: "n1" }, true],
  ["patch /pods/status team/p", { podNodeName: "n2" }, false],
  ["patch /pods/status team/p", { podNodeName: "" }, false],
  ["patch /pods/status team/p", { podNodeName: null }, true], // absent: 404 follows
  ["delete /pods team/p", { podNodeName: "n1" }, true],
  ["delete /pods team/p", { podNodeName: "n2" }, false],
  ["deletecollection /pods team", {}, false],
  ["update /pods team/p", { podNodeName: "n1" }, false],
  ["create /pods team", {}, false],
  ["create /pods/binding team/p", {}, false],
  // secrets, config maps, service accounts: get, when a pod on the node uses them
  ["get /secrets team/s", { referencedByNodePod: true }, true],
  ["get /secrets team/s", { referencedByNodePod: false }, false],
  ["get /secrets team/s", {}, false],
  ["get /configmaps team/c", { referencedByNodePod: true }, true],
  ["get /serviceaccounts team/default", { referencedByNodePod: true }, true],
  ["list /secrets team", { referencedByNodePod: true }, false],
  ["watch /configmaps team", {}, false],
  ["update /secrets team/s", { referencedByNodePod: true }, false],
  // events
  ["create /events team", {}, true],
  ["patch /events team/e", {}, true],
  ["delete /events team/e", {}, false],
];

describe("node rules (system:node:n1)", () => {
  it.each(NODE_CASES)("%s %j → %s", (spec, facts, allowed) => {
    const d = authorize(attrs("n1", spec), SNAP, facts);
    expect(d.allowed, d.reason).toBe(allowed);
  });

  it("without group system:nodes the name alone grants nothing", () => {
    expect(authorize(attrs("fakeNode", "list /pods"), SNAP).allowed).toBe(false);
  });

  it("reviews without a body do not know a create's name", () => {
    expect(authorize(attrs("n1", "create /nodes"), SNAP, {}).allowed).toBe(true);
  });

  it("explains denials like kube's NodeRestriction", () => {
    expect(authorize(attrs("n1", "patch /pods/status team/p"), SNAP, { podNodeName: "n2" }).reason).toBe(
      'node "n1" can only update pod status for pods with spec.nodeName set to itself',
    );
    expect(authorize(attrs("n1", "create /nodes"), SNAP, { objectName: "n2" }).reason).toBe('node "n1" is not allowed to modify node "n2"');
  });
});

describe("podReferences", () => {
  it("collects secrets, config maps and the service account a pod uses", () => {
    const refs = podReferences({
      spec: {
        serviceAccountName: "robot",
        imagePullSecrets: [{ name: "pull" }],
        volumes: [
          { name: "a", secret: { secretName: "vol-secret" } },
          { name: "b", configMap: { name: "vol-cm" } },
          { name: "c", projected: { sources: [{ secret: { name: "proj-secret" } }, { configMap: { name: "proj-cm" } }] } },
          { name: "d", csi: { driver: "x", nodePublishSecretRef: { name: "csi-secret" } } },
          { name: "e", rbd: { secretRef: { name: "rbd-secret" } } },
        ],
        initContainers: [{ name: "i", envFrom: [{ secretRef: { name: "init-env" } }] }],
        containers: [
          {
            name: "c",
            envFrom: [{ configMapRef: { name: "env-cm" } }],
            env: [
              { name: "A", valueFrom: { secretKeyRef: { name: "key-secret", key: "k" } } },
              { name: "B", valueFrom: { configMapKeyRef: { name: "key-cm", key: "k" } } },
            ],
          },
        ],
      },
    });
    expect([...refs.secrets].sort()).toEqual(["csi-secret", "init-env", "key-secret", "proj-secret", "pull", "rbd-secret", "vol-secret"]);
    expect([...refs.configmaps].sort()).toEqual(["env-cm", "key-cm", "proj-cm", "vol-cm"]);
    expect([...refs.serviceaccounts]).toEqual(["robot"]);
    expect([...podReferences({ spec: { containers: [] } }).serviceaccounts]).toEqual(["default"]);
  });
});

// ------------------------------------------------------------------ request attributes

describe("requestAttributes (kube's RequestInfoFactory)", () => {
  const q = (s = "") => new URLSearchParams(s);
  it.each([
    ["GET", "/api/v1/namespaces/ns/pods", "", { verb: "list", apiGroup: "", resource: "pods", namespace: "ns", name: undefined }],
    ["GET", "/api/v1/namespaces/ns/pods", "watch=true", { verb: "watch", resource: "pods", namespace: "ns" }],
    ["GET", "/api/v1/watch/namespaces/ns/pods", "", { verb: "watch", resource: "pods", namespace: "ns" }],
    ["GET", "/api/v1/pods", "fieldSelector=metadata.name%3Dweb", { verb: "list", resource: "pods", name: "web", namespace: undefined }],
    ["GET", "/api/v1/namespaces/ns/pods/web", "", { verb: "get", resource: "pods", name: "web" }],
    ["HEAD", "/api/v1/namespaces/ns/pods/web", "", { verb: "get", resource: "pods", name: "web" }],
    ["POST", "/api/v1/namespaces/ns/pods", "", { verb: "create", resource: "pods", name: undefined }],
    ["PUT", "/api/v1/namespaces/ns/pods/web/status", "", { verb: "update", resource: "pods", subresource: "status", name: "web" }],
    [
      "PATCH",
      "/apis/apps/v1/namespaces/ns/deployments/web/scale",
      "",
      { verb: "patch", apiGroup: "apps", resource: "deployments", subresource: "scale" },
    ],
    ["DELETE", "/api/v1/namespaces/ns/pods/web", "", { verb: "delete", name: "web" }],
    ["DELETE", "/api/v1/namespaces/ns/pods", "", { verb: "deletecollection", name: undefined }],
    ["GET", "/api/v1/namespaces", "", { verb: "list", resource: "namespaces", namespace: undefined }],
    ["GET", "/api/v1/namespaces/ns", "", { verb: "get", resource: "namespaces", name: "ns", namespace: "ns" }],
    ["PUT", "/api/v1/namespaces/ns/finalize", "", { verb: "update", resource: "namespaces", name: "ns", subresource: "finalize" }],
    ["GET", "/api/v1/nodes/n1", "", { verb: "get", resource: "nodes", name: "n1", namespace: undefined }],
    [
      "POST",
      "/api/v1/namespaces/ns/serviceaccounts/sa/token",
      "",
      { verb: "create", resource: "serviceaccounts", subresource: "token", name: "sa" },
    ],
    [
      "POST",
      "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      "",
      { verb: "create", apiGroup: "authorization.k8s.io", resource: "selfsubjectaccessreviews" },
    ],
  ] as const)("%s %s?%s", (method, path, query, want) => {
    const got: Record<string, unknown> = { ...requestAttributes(method, path, q(query)) };
    for (const [k, v] of Object.entries({ resourceRequest: true, ...want })) expect(got[k], k).toBe(v);
  });

  it.each([
    ["GET", "/api"],
    ["GET", "/api/v1"],
    ["GET", "/apis"],
    ["GET", "/apis/apps"],
    ["GET", "/apis/apps/v1"],
    ["GET", "/version"],
    ["POST", "/openapi/v2"],
  ])("%s %s is a non-resource request", (method, path) => {
    expect(requestAttributes(method, path)).toEqual({ resourceRequest: false, verb: method.toLowerCase(), nonResourcePath: path });
  });
});

// ------------------------------------------------------------------ escalation, messages

describe("escalation coverage (uncovered)", () => {
  const own = [
    { verbs: ["get", "list"], apiGroups: [""], resources: ["pods", "pods/status"] },
    { verbs: ["*"], apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["web"] },
    { verbs: ["update"], apiGroups: ["apps"], resources: ["*/scale"] },
    { verbs: ["get"], nonResourceURLs: ["/logs/*"] },
  ];
  it.each([
    [[{ verbs: ["get"], apiGroups: [""], resources: ["pods"] }], 0],
    [[{ verbs: ["get", "list"], apiGroups: [""], resources: ["pods", "pods/status"] }], 0],
    [[{ verbs: ["get", "watch"], apiGroups: [""], resources: ["pods"] }], 1],
    [[{ verbs: ["*"], apiGroups: [""], resources: ["pods"] }], 1],
    [[{ verbs: ["get"], apiGroups: ["*"], resources: ["pods"] }], 1],
    [[{ verbs: ["delete"], apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["web"] }], 0],
    [[{ verbs: ["delete"], apiGroups: ["apps"], resources: ["deployments"] }], 1],
    [[{ verbs: ["delete"], apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["web", "db"] }], 1],
    [[{ verbs: ["update"], apiGroups: ["apps"], resources: ["deployments/scale", "replicasets/scale"] }], 0],
    [[{ verbs: ["update"], apiGroups: ["apps"], resources: ["*/scale"] }], 0],
    [[{ verbs: ["get"], nonResourceURLs: ["/logs/a", "/logs/*"] }], 0],
    [[{ verbs: ["get"], nonResourceURLs: ["/metrics"] }], 1],
  ])("%j → %i uncovered", (wanted, n) => {
    expect(uncovered(own, wanted)).toHaveLength(n);
  });

  it("a user's rules are the union of their bindings' roles", () => {
    const rules = rulesFor(users.dave, "team", SNAP);
    expect(uncovered(rules, [{ verbs: ["get"], apiGroups: [""], resources: ["configmaps"], resourceNames: ["app-config"] }])).toEqual([]);
    expect(uncovered(rules, [{ verbs: ["get"], apiGroups: [""], resources: ["configmaps"] }]).map(ruleString)).toEqual([
      '{APIGroups:[""], Resources:["configmaps"], Verbs:["get"]}',
    ]);
  });
});

describe("403 messages", () => {
  it.each([
    [
      attrs("alice", "list /pods default"),
      'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"',
    ],
    [
      attrs("alice", "get apps/deployments team/web"),
      'deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments" in API group "apps" in the namespace "team"',
    ],
    [
      attrs("alice", "patch /nodes/status - /n1"),
      'nodes "n1" is forbidden: User "alice" cannot patch resource "nodes/status" in API group "" at the cluster scope',
    ],
    [url("alice", "get", "/metrics"), 'forbidden: User "alice" cannot get path "/metrics"'],
  ])("%#", (a, message) => {
    const e = forbidden(a);
    expect(e.toStatus()).toMatchObject({ kind: "Status", status: "Failure", reason: "Forbidden", code: 403, message });
  });

  it("details name the resource", () => {
    expect(forbidden(attrs("alice", "get apps/deployments team/web")).toStatus().details).toEqual({
      name: "web",
      group: "apps",
      kind: "deployments",
    });
  });
});
