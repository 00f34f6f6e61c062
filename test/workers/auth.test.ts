// Authentication and authorization against the real Worker in workerd: user tokens,
// RBAC (403 with kube's message until a RoleBinding allows), access reviews,
// ServiceAccount tokens (TokenRequest), join tokens → node credentials and the node
// rules, RBAC validation and escalation checks.

import { describe, expect, it } from "vitest";
import { api, freshNamespace, newPod } from "./helpers.ts";

const RBAC = "/apis/rbac.authorization.k8s.io/v1";
const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";

function rand(n: number): string {
  let s = "";
  for (const b of crypto.getRandomValues(new Uint8Array(n))) s += ALNUM[b % 36];
  return s;
}

async function sha256Hex(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function adminOK(method: string, path: string, body?: unknown): Promise<any> {
  const r = await api(method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A user token as `npm run cli -- user create` makes it: only the secret's SHA-256 is stored. */
async function userToken(user: string, opts: { groups?: string[]; expiration?: string } = {}): Promise<{ token: string; id: string }> {
  const id = rand(8);
  const secret = rand(32);
  const stringData: Record<string, string> = {
    user,
    groups: (opts.groups ?? []).join(","),
    "token-secret-sha256": await sha256Hex(secret),
  };
  if (opts.expiration) stringData.expiration = opts.expiration;
  await adminOK("POST", "/api/v1/namespaces/kube-system/secrets", {
    metadata: { name: `user-token-${id}` },
    type: "kubeflare.dev/user-token",
    stringData,
  });
  return { token: `kfu_${id}.${secret}`, id };
}

async function joinToken(expiration = new Date(Date.now() + 3600_000).toISOString()): Promise<string> {
  const id = rand(6);
  const secret = rand(16);
  await adminOK("POST", "/api/v1/namespaces/kube-system/secrets", {
    metadata: { name: `bootstrap-token-${id}` },
    type: "bootstrap.kubernetes.io/token",
    stringData: {
      "token-id": id,
      "token-secret-sha256": await sha256Hex(secret),
      expiration,
      "usage-bootstrap-authentication": "true",
      description: "test",
    },
  });
  return `${id}.${secret}`;
}

function roleBinding(name: string, role: string, subject: Record<string, string>, kind = "ClusterRole") {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind, name: role },
    subjects: [subject],
  };
}

function expectForbidden(r: { status: number; body: any }, message: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(403);
  expect(r.body).toMatchObject({ kind: "Status", status: "Failure", reason: "Forbidden", code: 403, message });
}

function ssar(attrs: Record<string, string>) {
  return { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview", spec: { resourceAttributes: attrs } };
}

function jwtClaims(token: string): any {
  const b = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(b + "===".slice((b.length + 3) % 4)));
}

describe("user tokens and RBAC", () => {
  it("authenticates, is forbidden by default with kube's message, and is allowed by a RoleBinding to view in one namespace only", async () => {
    const ns = await freshNamespace("authz");
    const other = await freshNamespace("authz");
    const user = `alice-${rand(5)}`;
    const { token } = await userToken(user, { groups: ["team-a"] });

    const who = await api(
      "POST",
      "/apis/authentication.k8s.io/v1/selfsubjectreviews",
      { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
      { token },
    );
    expect(who.status).toBe(201);
    expect(who.body.status.userInfo).toMatchObject({ username: user, groups: ["team-a", "system:authenticated"] });

    // Discovery and public info are open to every authenticated user.
    for (const p of ["/api", "/api/v1", "/apis", "/apis/apps/v1", "/version"])
      expect((await api("GET", p, undefined, { token })).status, p).toBe(200);

    expectForbidden(
      await api("GET", `/api/v1/namespaces/${ns}/pods`, undefined, { token }),
      `pods is forbidden: User "${user}" cannot list resource "pods" in API group "" in the namespace "${ns}"`,
    );
    expectForbidden(
      await api("GET", "/api/v1/nodes", undefined, { token }),
      `nodes is forbidden: User "${user}" cannot list resource "nodes" in API group "" at the cluster scope`,
    );
    expectForbidden(
      await api("GET", `/apis/apps/v1/namespaces/${ns}/deployments/web`, undefined, { token }),
      `deployments.apps "web" is forbidden: User "${user}" cannot get resource "deployments" in API group "apps" in the namespace "${ns}"`,
    );
    const denied = await api(
      "POST",
      "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      ssar({ namespace: ns, verb: "list", resource: "pods" }),
      { token },
    );
    expect(denied.status).toBe(201);
    expect(denied.body).toMatchObject({ kind: "SelfSubjectAccessReview", status: { allowed: false } });

    await adminOK(
      "POST",
      `${RBAC}/namespaces/${ns}/rolebindings`,
      roleBinding("alice-view", "view", { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: user }),
    );

    expect((await api("GET", `/api/v1/namespaces/${ns}/pods`, undefined, { token })).status).toBe(200);
    expect((await api("GET", `/apis/apps/v1/namespaces/${ns}/deployments`, undefined, { token })).status).toBe(200);
    expect((await api("GET", `/api/v1/namespaces/${ns}/pods?watch=true&timeoutSeconds=1`, undefined, { token })).status).toBe(200);
    expectForbidden(
      await api("GET", `/api/v1/namespaces/${other}/pods`, undefined, { token }),
      `pods is forbidden: User "${user}" cannot list resource "pods" in API group "" in the namespace "${other}"`,
    );
    expectForbidden(
      await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("p"), { token }),
      `pods is forbidden: User "${user}" cannot create resource "pods" in API group "" in the namespace "${ns}"`,
    );
    expectForbidden(
      await api("GET", `/api/v1/namespaces/${ns}/secrets`, undefined, { token }),
      `secrets is forbidden: User "${user}" cannot list resource "secrets" in API group "" in the namespace "${ns}"`,
    );

    const allowed = await api(
      "POST",
      "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      ssar({ namespace: ns, verb: "list", resource: "pods" }),
      { token },
    );
    expect(allowed.body.status).toMatchObject({ allowed: true });
    expect(allowed.body.status.reason).toContain('RoleBinding "alice-view');
    const elsewhere = await api(
      "POST",
      "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      ssar({ namespace: other, verb: "list", resource: "pods" }),
      { token },
    );
    expect(elsewhere.body.status.allowed).toBe(false);

    // kubectl auth can-i --list
    const rules = await api("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", { spec: { namespace: ns } }, { token });
    expect(rules.status).toBe(201);
    expect(rules.body.status.resourceRules).toContainEqual(
      expect.objectContaining({ apiGroups: ["apps"], verbs: ["get", "list", "watch"] }),
    );
    expect(rules.body.status.nonResourceRules).toContainEqual(
      expect.objectContaining({ nonResourceURLs: expect.arrayContaining(["/api", "/apis/*"]) }),
    );

    // The admin asks about alice (SubjectAccessReview), and checks her token (TokenReview).
    const sar = await adminOK("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
      spec: { user, groups: ["system:authenticated"], resourceAttributes: { namespace: ns, verb: "get", resource: "pods", name: "x" } },
    });
    expect(sar.status.allowed).toBe(true);
    const lsar = await adminOK("POST", `/apis/authorization.k8s.io/v1/namespaces/${other}/localsubjectaccessreviews`, {
      spec: { user, resourceAttributes: { verb: "get", resource: "pods" } },
    });
    expect(lsar.status.allowed).toBe(false);
    const tr = await adminOK("POST", "/apis/authentication.k8s.io/v1/tokenreviews", { spec: { token } });
    expect(tr.status).toMatchObject({ authenticated: true, user: { username: user } });
    expect(tr.spec.token).toBeUndefined();
    const bad = await adminOK("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
      spec: { token: "kfu_nobody00.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
    });
    expect(bad.status.authenticated).toBe(false);

    // Only the admin may ask about others.
    expectForbidden(
      await api(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        { spec: { user: "x", nonResourceAttributes: { path: "/", verb: "get" } } },
        { token },
      ),
      `subjectaccessreviews.authorization.k8s.io is forbidden: User "${user}" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope`,
    );
  });

  it("rejects wrong, expired and revoked tokens with 401", async () => {
    const { token, id } = await userToken(`bob-${rand(5)}`);
    const secretPart = token.split(".")[1];
    const wrong = `kfu_${id}.${secretPart.slice(0, -1)}${secretPart.endsWith("a") ? "b" : "a"}`;
    for (const t of [
      wrong,
      `kfu_${rand(8)}.${rand(32)}`,
      "kfu_short.x",
      `kfn_node.${rand(32)}`,
      `${rand(6)}.${rand(16)}`,
      "eyJhbGciOiJub25lIn0.e30.x",
    ]) {
      const r = await api("GET", "/api", undefined, { token: t });
      expect(r.status, t).toBe(401);
      expect(r.body).toMatchObject({ kind: "Status", reason: "Unauthorized", code: 401 });
    }
    const { token: old } = await userToken(`carol-${rand(5)}`, { expiration: new Date(Date.now() - 1000).toISOString() });
    expect((await api("GET", "/api", undefined, { token: old })).status).toBe(401);

    expect((await api("GET", "/api", undefined, { token })).status).toBe(200);
    await adminOK("DELETE", `/api/v1/namespaces/kube-system/secrets/user-token-${id}`);
    expect((await api("GET", "/api", undefined, { token })).status).toBe(401);
  });

  it("accepts client-go's protobuf bodies (kubectl auth can-i, create token)", async () => {
    const ns = await freshNamespace("pb");
    const user = `pat-${rand(5)}`;
    const { token } = await userToken(user);
    await adminOK("POST", `${RBAC}/namespaces/${ns}/rolebindings`, roleBinding("pat-view", "view", { kind: "User", name: user }));
    const enc = new TextEncoder();
    const varint = (n: number) => {
      const out: number[] = [];
      while (n >= 0x80) {
        out.push((n % 0x80) | 0x80);
        n = Math.floor(n / 0x80);
      }
      out.push(n);
      return out;
    };
    const msg = (...fields: [number, string | Uint8Array | number][]) =>
      new Uint8Array(
        fields.flatMap(([f, v]) => {
          if (typeof v === "number") return [...varint(f * 8), ...varint(v)];
          const bytes = typeof v === "string" ? enc.encode(v) : v;
          return [...varint(f * 8 + 2), ...varint(bytes.length), ...bytes];
        }),
      );
    const envelope = (apiVersion: string, kind: string, raw: Uint8Array) =>
      new Uint8Array([0x6b, 0x38, 0x73, 0, ...msg([1, msg([1, apiVersion], [2, kind])], [2, raw])]);
    const pb = "application/vnd.kubernetes.protobuf";
    const review = (verb: string, namespace: string) =>
      envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", msg([2, msg([1, msg([1, namespace], [2, verb], [5, "pods"])])]));
    const yes = await api("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", undefined, {
      token,
      raw: review("list", ns),
      contentType: pb,
    });
    expect(yes.status, JSON.stringify(yes.body)).toBe(201);
    expect(yes.body).toMatchObject({
      kind: "SelfSubjectAccessReview",
      spec: { resourceAttributes: { namespace: ns, verb: "list", resource: "pods" } },
      status: { allowed: true },
    });
    const no = await api("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", undefined, {
      token,
      raw: review("delete", ns),
      contentType: pb,
    });
    expect(no.body.status.allowed).toBe(false);

    await adminOK("POST", `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: "sa" } });
    const tr = envelope("authentication.k8s.io/v1", "TokenRequest", msg([2, msg([1, "aud-1"], [4, 900])]));
    const got = await api("POST", `/api/v1/namespaces/${ns}/serviceaccounts/sa/token`, undefined, { raw: tr, contentType: pb });
    expect(got.status, JSON.stringify(got.body)).toBe(201);
    expect(got.body.spec).toMatchObject({ audiences: ["aud-1"], expirationSeconds: 900 });
    // A token for another audience does not authenticate to the API.
    expect((await api("GET", "/api", undefined, { token: got.body.status.token })).status).toBe(401);
    const broken = await api("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", undefined, {
      token,
      raw: new Uint8Array([1, 2, 3]),
      contentType: pb,
    });
    expect(broken.status).toBe(400);
  });

  it("impersonation (kubectl --as) needs the impersonate verb and then acts as that user", async () => {
    const ns = await freshNamespace("imp");
    const user = `ivy-${rand(5)}`;
    await adminOK("POST", `${RBAC}/namespaces/${ns}/rolebindings`, roleBinding("ivy-view", "view", { kind: "User", name: user }));
    const as = (headers: Record<string, string>, token?: string) => ({ headers, ...(token ? { token } : {}) });
    const who = await api(
      "POST",
      "/apis/authentication.k8s.io/v1/selfsubjectreviews",
      {},
      as({ "impersonate-user": user, "impersonate-group": "g1" }),
    );
    expect(who.body.status.userInfo).toEqual({ username: user, groups: ["g1", "system:authenticated"] });
    expect((await api("GET", `/api/v1/namespaces/${ns}/pods`, undefined, as({ "impersonate-user": user }))).status).toBe(200);
    expectForbidden(
      await api("GET", `/api/v1/namespaces/${ns}/secrets`, undefined, as({ "impersonate-user": user })),
      `secrets is forbidden: User "${user}" cannot list resource "secrets" in API group "" in the namespace "${ns}"`,
    );
    const sa = await api(
      "POST",
      "/apis/authentication.k8s.io/v1/selfsubjectreviews",
      {},
      as({ "impersonate-user": `system:serviceaccount:${ns}:bot` }),
    );
    expect(sa.body.status.userInfo.groups).toEqual(["system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated"]);
    expect((await api("GET", "/api", undefined, as({ "impersonate-group": "g" }))).status).toBe(400);

    const { token } = await userToken(`mallory-${rand(5)}`);
    const denied = await api("GET", "/api", undefined, as({ "impersonate-user": "admin" }, token));
    expect(denied.status).toBe(403);
    expect(denied.body.message).toMatch(
      /^users "admin" is forbidden: User "mallory-[a-z0-9]+" cannot impersonate resource "users" in API group "" at the cluster scope$/,
    );
  });

  it("system:masters in a user token's groups is the admin", async () => {
    const { token } = await userToken(`root-${rand(5)}`, { groups: ["system:masters"] });
    expect((await api("GET", "/api/v1/nodes", undefined, { token })).status).toBe(200);
  });

  it("create-only resources are in discovery and answer 405 to other verbs", async () => {
    const authz = await adminOK("GET", "/apis/authorization.k8s.io/v1");
    expect(authz.resources).toContainEqual(
      expect.objectContaining({ name: "selfsubjectaccessreviews", verbs: ["create"], namespaced: false }),
    );
    expect(authz.resources).toContainEqual(
      expect.objectContaining({ name: "localsubjectaccessreviews", verbs: ["create"], namespaced: true }),
    );
    const authn = await adminOK("GET", "/apis/authentication.k8s.io/v1");
    expect(authn.resources.map((r: any) => r.name).sort()).toEqual(["selfsubjectreviews", "tokenreviews"]);
    const core = await adminOK("GET", "/api/v1");
    expect(core.resources).toContainEqual(
      expect.objectContaining({ name: "serviceaccounts/token", kind: "TokenRequest", verbs: ["create"] }),
    );
    const rbac = await adminOK("GET", RBAC);
    expect(rbac.resources.map((r: any) => r.name).sort()).toEqual(["clusterrolebindings", "clusterroles", "rolebindings", "roles"]);
    expect((await api("GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")).status).toBe(405);
    expect((await api("GET", "/apis/kubeflare.dev/v1/nodecredentials")).status).toBe(405);
    const ssarBad = await api("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", { spec: {} });
    expect(ssarBad.status).toBe(422);
  });

  it("creates the built-in cluster roles and bindings", async () => {
    const roles = await adminOK("GET", `${RBAC}/clusterroles`);
    const names = roles.items.map((r: any) => r.metadata.name);
    for (const n of [
      "cluster-admin",
      "admin",
      "edit",
      "view",
      "system:node",
      "system:basic-user",
      "system:discovery",
      "system:public-info-viewer",
    ]) {
      expect(names).toContain(n);
    }
    const crb = await adminOK("GET", `${RBAC}/clusterrolebindings/cluster-admin`);
    expect(crb.subjects).toEqual([{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "system:masters" }]);
  });
});

describe("RBAC objects", () => {
  it("validates rules and keeps roleRef immutable", async () => {
    const ns = await freshNamespace("rbac");
    const noVerbs = await api("POST", `${RBAC}/namespaces/${ns}/roles`, {
      metadata: { name: "r" },
      rules: [{ apiGroups: [""], resources: ["pods"] }],
    });
    expect(noVerbs.status).toBe(422);
    expect(noVerbs.body.message).toContain("rules[0].verbs");
    const urls = await api("POST", `${RBAC}/namespaces/${ns}/roles`, {
      metadata: { name: "r" },
      rules: [{ verbs: ["get"], nonResourceURLs: ["/x"] }],
    });
    expect(urls.status).toBe(422);
    const notArray = await api("POST", `${RBAC}/clusterroles`, { metadata: { name: `x-${rand(5)}` }, rules: "all" });
    expect(notArray.status).toBe(422);
    await adminOK("POST", `${RBAC}/namespaces/${ns}/rolebindings`, roleBinding("b", "view", { kind: "Group", name: "g" }));
    const changed = await api(
      "PATCH",
      `${RBAC}/namespaces/${ns}/rolebindings/b`,
      { roleRef: { name: "edit" } },
      { contentType: "application/merge-patch+json" },
    );
    expect(changed.status).toBe(422);
    expect(changed.body.message).toContain("cannot change roleRef");
    const badKind = await api("POST", `${RBAC}/clusterrolebindings`, {
      metadata: { name: `crb-${rand(5)}` },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "x" },
      subjects: [{ kind: "ServiceAccount", name: "sa" }],
    });
    expect(badKind.status).toBe(422);
    expect(badKind.body.message).toContain("roleRef.kind");
    expect(badKind.body.message).toContain("subjects[0].namespace");
    // Names with colons are fine for RBAC objects.
    const colon = await api("POST", `${RBAC}/clusterroles`, { metadata: { name: `team:${rand(5)}` }, rules: [] });
    expect(colon.status).toBe(201);
  });

  it("a namespace admin may grant what they hold, not more (escalation check)", async () => {
    const ns = await freshNamespace("esc");
    const user = `dana-${rand(5)}`;
    const { token } = await userToken(user);
    await adminOK("POST", `${RBAC}/namespaces/${ns}/rolebindings`, roleBinding("dana-admin", "admin", { kind: "User", name: user }));

    const ok = await api(
      "POST",
      `${RBAC}/namespaces/${ns}/rolebindings`,
      roleBinding("viewers", "view", { kind: "Group", name: "viewers" }),
      { token },
    );
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    const role = await api(
      "POST",
      `${RBAC}/namespaces/${ns}/roles`,
      { metadata: { name: "pod-reader" }, rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] },
      { token },
    );
    expect(role.status).toBe(201);

    const more = await api(
      "POST",
      `${RBAC}/namespaces/${ns}/roles`,
      { metadata: { name: "lease-writer" }, rules: [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["update"] }] },
      { token },
    );
    expect(more.status).toBe(403);
    expect(more.body.message).toContain(`roles.rbac.authorization.k8s.io "lease-writer" is forbidden: user "${user}"`);
    expect(more.body.message).toContain('{APIGroups:["coordination.k8s.io"], Resources:["leases"], Verbs:["update"]}');

    const patchUp = await api(
      "PATCH",
      `${RBAC}/namespaces/${ns}/roles/pod-reader`,
      { rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] },
      { token, contentType: "application/merge-patch+json" },
    );
    expect(patchUp.status).toBe(403);

    const bindAdmin = await api(
      "POST",
      `${RBAC}/namespaces/${ns}/rolebindings`,
      roleBinding("root", "cluster-admin", { kind: "User", name: user }),
      { token },
    );
    expect(bindAdmin.status).toBe(403);
    expect(bindAdmin.body.message).toContain("attempting to grant RBAC permissions not currently held");
    const crb = await api(
      "POST",
      `${RBAC}/clusterrolebindings`,
      {
        metadata: { name: "x" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
        subjects: [{ kind: "User", name: user }],
      },
      { token },
    );
    expect(crb.status).toBe(403);
  });
});

describe("ServiceAccount tokens", () => {
  it("TokenRequest returns a JWT that authenticates as the ServiceAccount until it is deleted", async () => {
    const ns = await freshNamespace("sa");
    const sa = await adminOK("POST", `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: "robot" } });
    const tr = await api("POST", `/api/v1/namespaces/${ns}/serviceaccounts/robot/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 1200 },
    });
    expect(tr.status).toBe(201);
    expect(tr.body).toMatchObject({ kind: "TokenRequest", apiVersion: "authentication.k8s.io/v1", spec: { expirationSeconds: 1200 } });
    const token: string = tr.body.status.token;
    const claims = jwtClaims(token);
    expect(claims).toMatchObject({
      sub: `system:serviceaccount:${ns}:robot`,
      "kubernetes.io": { namespace: ns, serviceaccount: { name: "robot", uid: sa.metadata.uid } },
    });
    expect(claims.exp - claims.iat).toBe(1200);
    expect(Date.parse(tr.body.status.expirationTimestamp)).toBe(claims.exp * 1000);
    // Default expiration: one hour; too short is invalid.
    const dflt = await adminOK("POST", `/api/v1/namespaces/${ns}/serviceaccounts/robot/token`, {});
    expect(jwtClaims(dflt.status.token).exp - jwtClaims(dflt.status.token).iat).toBe(3600);
    expect((await api("POST", `/api/v1/namespaces/${ns}/serviceaccounts/robot/token`, { spec: { expirationSeconds: 60 } })).status).toBe(
      422,
    );
    expect((await api("POST", `/api/v1/namespaces/${ns}/serviceaccounts/nobody/token`, {})).status).toBe(404);
    expect((await api("GET", `/api/v1/namespaces/${ns}/serviceaccounts/robot/token`)).status).toBe(405);

    const who = await api("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {}, { token });
    expect(who.body.status.userInfo).toMatchObject({
      username: `system:serviceaccount:${ns}:robot`,
      uid: sa.metadata.uid,
      groups: ["system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated"],
    });
    expectForbidden(
      await api("GET", `/api/v1/namespaces/${ns}/configmaps`, undefined, { token }),
      `configmaps is forbidden: User "system:serviceaccount:${ns}:robot" cannot list resource "configmaps" in API group "" in the namespace "${ns}"`,
    );
    // A ServiceAccount subject without a namespace means the binding's namespace.
    await adminOK(
      "POST",
      `${RBAC}/namespaces/${ns}/rolebindings`,
      roleBinding("robot-edit", "edit", { kind: "ServiceAccount", name: "robot" }),
    );
    expect((await api("GET", `/api/v1/namespaces/${ns}/configmaps`, undefined, { token })).status).toBe(200);

    // A token from a tampered payload fails.
    const [h, , s] = token.split(".");
    const forged = `${h}.${btoa(JSON.stringify({ ...claims, sub: "system:serviceaccount:kube-system:x" })).replace(/=+$/, "")}.${s}`;
    expect((await api("GET", "/api", undefined, { token: forged })).status).toBe(401);

    await adminOK("DELETE", `/api/v1/namespaces/${ns}/serviceaccounts/robot`);
    expect((await api("GET", "/api", undefined, { token })).status).toBe(401);
    // A new ServiceAccount of the same name has another uid: the old token stays dead.
    await adminOK("POST", `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: "robot" } });
    expect((await api("GET", "/api", undefined, { token })).status).toBe(401);
  });

  it("a token bound to a pod stops working when the pod is gone", async () => {
    const ns = await freshNamespace("sab");
    await adminOK("POST", `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: "default" } });
    const pod = await adminOK("POST", `/api/v1/namespaces/${ns}/pods`, newPod("p"));
    const tr = await adminOK("POST", `/api/v1/namespaces/${ns}/serviceaccounts/default/token`, {
      spec: { boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "p", uid: pod.metadata.uid } },
    });
    const token = tr.status.token;
    expect(jwtClaims(token)["kubernetes.io"].pod).toEqual({ name: "p", uid: pod.metadata.uid });
    const who = await api("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {}, { token });
    expect(who.body.status.userInfo.extra["authentication.kubernetes.io/pod-name"]).toEqual(["p"]);
    await adminOK("DELETE", `/api/v1/namespaces/${ns}/pods/p`);
    expect((await api("GET", "/api", undefined, { token })).status).toBe(401);
  });
});

describe("join tokens and node credentials", () => {
  async function credential(join: string, nodeName: string): Promise<string> {
    const r = await api("POST", "/apis/kubeflare.dev/v1/nodecredentials", { nodeName }, { token: join });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ apiVersion: "kubeflare.dev/v1", kind: "NodeCredential", nodeName });
    expect(r.body.token).toMatch(new RegExp(`^kfn_${nodeName.replace(/\./g, "\\.")}\\.[a-z0-9]{32}$`));
    return r.body.token;
  }

  it("a join token yields a node credential and nothing else", async () => {
    const join = await joinToken();
    for (const [m, p] of [
      ["GET", "/api"],
      ["GET", "/api/v1/namespaces"],
      ["GET", "/api/v1/pods"],
      ["POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews"],
    ]) {
      const r = await api(m, p, m === "POST" ? {} : undefined, { token: join });
      expect(r.status, p).toBe(403);
      expect(r.body.message).toContain("join tokens may only be used to request node credentials");
    }
    const bad = await api("POST", "/apis/kubeflare.dev/v1/nodecredentials", { nodeName: "Not_A_Name" }, { token: join });
    expect(bad.status).toBe(422);
    // The stored credential is a hash; the Secret does not contain the token.
    const node = `n-${rand(6)}.example`;
    const token = await credential(join, node);
    const stored = await adminOK("GET", `/api/v1/namespaces/kube-system/secrets/node-credential-${node}`);
    expect(stored.type).toBe("kubeflare.dev/node-credential");
    expect(JSON.stringify(stored)).not.toContain(token.split(".").pop());
    const who = await api("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {}, { token });
    expect(who.body.status.userInfo).toMatchObject({ username: `system:node:${node}`, groups: ["system:nodes", "system:authenticated"] });
  });

  it("expired, unknown and malformed join tokens get 401; asking again rotates the credential", async () => {
    const expired = await joinToken(new Date(Date.now() - 60_000).toISOString());
    for (const t of [expired, `${rand(6)}.${rand(16)}`, "abc.def", `${rand(6)}.${rand(15)}`]) {
      const r = await api("POST", "/apis/kubeflare.dev/v1/nodecredentials", { nodeName: "n1" }, { token: t });
      expect(r.status, t).toBe(401);
    }
    const join = await joinToken();
    const node = `rot-${rand(6)}`;
    const first = await credential(join, node);
    expect((await api("GET", "/api/v1/nodes", undefined, { token: first })).status).toBe(200);
    const second = await credential(join, node);
    expect(second).not.toBe(first);
    expect((await api("GET", "/api/v1/nodes", undefined, { token: first })).status).toBe(401);
    expect((await api("GET", "/api/v1/nodes", undefined, { token: second })).status).toBe(200);
    // A revoked join token (Secret deleted) no longer works.
    await adminOK("DELETE", `/api/v1/namespaces/kube-system/secrets/bootstrap-token-${join.split(".")[0]}`);
    expect((await api("POST", "/apis/kubeflare.dev/v1/nodecredentials", { nodeName: node }, { token: join })).status).toBe(401);
  });

  it("a node may write its own Node, Lease and pods' status, and nothing of other nodes", async () => {
    const ns = await freshNamespace("node");
    const me = `me-${rand(6)}`;
    const them = `them-${rand(6)}`;
    const token = await credential(await joinToken(), me);
    const as = { token };

    // Node objects
    expect((await api("POST", "/api/v1/nodes", { metadata: { name: me }, status: {} }, as)).status).toBe(201);
    expectForbidden(
      await api("POST", "/api/v1/nodes", { metadata: { name: them } }, as),
      `nodes is forbidden: User "system:node:${me}" cannot create resource "nodes" in API group "" at the cluster scope: node "${me}" is not allowed to modify node "${them}"`,
    );
    await adminOK("POST", "/api/v1/nodes", { metadata: { name: them } });
    const merge = { contentType: "application/merge-patch+json", token };
    expect(
      (await api("PATCH", `/api/v1/nodes/${me}/status`, { status: { conditions: [{ type: "Ready", status: "True" }] } }, merge)).status,
    ).toBe(200);
    expect((await api("PATCH", `/api/v1/nodes/${me}`, { metadata: { labels: { a: "b" } } }, merge)).status).toBe(200);
    expect((await api("PATCH", `/api/v1/nodes/${them}/status`, { status: {} }, merge)).status).toBe(403);
    expect((await api("PATCH", `/api/v1/nodes/${them}`, { metadata: { labels: { a: "b" } } }, merge)).status).toBe(403);
    expect((await api("DELETE", `/api/v1/nodes/${me}`, undefined, as)).status).toBe(403);
    expect((await api("GET", `/api/v1/nodes/${them}`, undefined, as)).status).toBe(200);

    // Leases: only its own, only in kube-node-lease.
    const lease = (name: string) => ({ metadata: { name }, spec: { holderIdentity: name, leaseDurationSeconds: 40 } });
    const leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
    expect((await api("POST", leases, lease(me), as)).status).toBe(201);
    expect((await api("PATCH", `${leases}/${me}`, { spec: { renewTime: "2026-01-01T00:00:00.000000Z" } }, merge)).status).toBe(200);
    expect((await api("GET", `${leases}/${me}`, undefined, as)).status).toBe(200);
    expect((await api("POST", leases, lease(them), as)).status).toBe(403);
    expect((await api("GET", `${leases}/${them}`, undefined, as)).status).toBe(403);
    expect((await api("GET", leases, undefined, as)).status).toBe(403);
    expect((await api("POST", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`, lease(me), as)).status).toBe(403);

    // Pods: read all; status and delete only for its own.
    await adminOK("POST", `/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "mine" }, stringData: { k: "v" } });
    await adminOK("POST", `/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "theirs" }, stringData: { k: "v" } });
    await adminOK("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "cfg" }, data: { k: "v" } });
    const podWith = (name: string, node: string, secret: string) => {
      const p: any = newPod(name, { nodeName: node });
      p.spec.volumes = [
        { name: "s", secret: { secretName: secret } },
        { name: "c", configMap: { name: node === me ? "cfg" : "other" } },
      ];
      return p;
    };
    await adminOK("POST", `/api/v1/namespaces/${ns}/pods`, podWith("own", me, "mine"));
    await adminOK("POST", `/api/v1/namespaces/${ns}/pods`, podWith("foreign", them, "theirs"));
    expect((await api("GET", `/api/v1/pods?fieldSelector=spec.nodeName%3D${me}`, undefined, as)).status).toBe(200);
    expect((await api("GET", `/api/v1/namespaces/${ns}/pods/foreign`, undefined, as)).status).toBe(200);
    expect((await api("PATCH", `/api/v1/namespaces/${ns}/pods/own/status`, { status: { phase: "Running" } }, merge)).status).toBe(200);
    expectForbidden(
      await api("PATCH", `/api/v1/namespaces/${ns}/pods/foreign/status`, { status: { phase: "Running" } }, merge),
      `pods "foreign" is forbidden: User "system:node:${me}" cannot patch resource "pods/status" in API group "" in the namespace "${ns}": node "${me}" can only update pod status for pods with spec.nodeName set to itself`,
    );
    expect((await api("PATCH", `/api/v1/namespaces/${ns}/pods/own`, { metadata: { labels: { x: "y" } } }, merge)).status).toBe(403);
    expect((await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("new", { nodeName: me }), as)).status).toBe(403);

    // Secrets and config maps: only those its pods use, one at a time.
    expect((await api("GET", `/api/v1/namespaces/${ns}/secrets/mine`, undefined, as)).status).toBe(200);
    expect((await api("GET", `/api/v1/namespaces/${ns}/configmaps/cfg`, undefined, as)).status).toBe(200);
    expect((await api("GET", `/api/v1/namespaces/${ns}/serviceaccounts/default`, undefined, as)).status).not.toBe(403);
    const theirs = await api("GET", `/api/v1/namespaces/${ns}/secrets/theirs`, undefined, as);
    expect(theirs.status).toBe(403);
    expect(theirs.body.message).toContain(`no relationship found between node '${me}' and this object`);
    expect((await api("GET", `/api/v1/namespaces/${ns}/secrets`, undefined, as)).status).toBe(403);

    // Events: create anywhere.
    const ev = {
      metadata: { name: `e-${rand(5)}` },
      involvedObject: { kind: "Pod", name: "own", namespace: ns },
      reason: "Started",
      message: "x",
    };
    expect((await api("POST", `/api/v1/namespaces/${ns}/events`, ev, as)).status).toBe(201);

    // Deleting: its own pods (to finish graceful deletion), not others'.
    expect((await api("DELETE", `/api/v1/namespaces/${ns}/pods/foreign`, undefined, as)).status).toBe(403);
    expect((await api("DELETE", `/api/v1/namespaces/${ns}/pods/own`, { gracePeriodSeconds: 0 }, as)).status).toBe(200);

    // Everything else is forbidden.
    expect((await api("GET", `/api/v1/namespaces/${ns}/configmaps`, undefined, as)).status).toBe(403);
    expect((await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "x" } }, as)).status).toBe(403);
    expect((await api("GET", `/apis/apps/v1/namespaces/${ns}/deployments`, undefined, as)).status).toBe(403);

    // Its SelfSubjectAccessReview says the same.
    const can = await api(
      "POST",
      "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      ssar({ namespace: ns, verb: "patch", resource: "pods", subresource: "status", name: "foreign" }),
      as,
    );
    expect(can.body.status.allowed).toBe(false);
  });
});
