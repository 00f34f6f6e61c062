// The never-stored, create-only API objects about identity and access, and the routes
// of every authentication endpoint (registered before the generic resource routes):
//
//   authorization.k8s.io/v1   SelfSubjectAccessReview, SubjectAccessReview,
//                             LocalSubjectAccessReview, SelfSubjectRulesReview
//                             (kubectl auth can-i [--list])
//   authentication.k8s.io/v1  SelfSubjectReview (kubectl auth whoami), TokenReview,
//                             TokenRequest (serviceaccounts/{name}/token, kubectl create token)
//   kubeflare.dev/v1          NodeCredential (nodes-join.ts)
//
// The authentication filter (auth.ts) has already authenticated and authorized the call.

import type { Context, Hono } from "hono";
import type { Env } from "../env.ts";
import { type ApiError, badRequest, internal, invalid, methodNotAllowed } from "../shared/errors.ts";
import { ctxOf, decide, loadSnapshot, userOf } from "./auth.ts";
import { API_AUDIENCES, authenticateToken, createServiceAccountToken } from "./authn.ts";
import { type Attributes, isBootstrapIdentity, type RequestAttributes, rulesFor, type UserInfo } from "./authz.ts";
import { readBody } from "./body.ts";
import { ensureBootstrap } from "./bootstrap.ts";
import type { Obj } from "./codec.ts";
import { issueNodeCredential } from "./nodes-join.ts";
import type { Ctx } from "./registry.ts";
import { rfc3339 } from "./strategy.ts";

type App = { Bindings: Env };

const AUTHZ = "authorization.k8s.io";
const AUTHN = "authentication.k8s.io";

function json(body: unknown, status = 201): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** The request body as an object (JSON, YAML or protobuf); undefined when empty and optional. */
async function readObject(c: Context<App>, optional = false): Promise<Obj | undefined> {
  const v = await readBody(c, { optional });
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw badRequest("the request body must be an object");
  return v as Obj;
}

function checkKind(body: Obj, group: string, kind: string): void {
  if (body.kind !== undefined && body.kind !== kind) throw badRequest(`the body kind "${String(body.kind)}" does not match "${kind}"`);
  const apiVersion = `${group}/v1`;
  if (body.apiVersion !== undefined && body.apiVersion !== apiVersion) {
    throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersion})`);
  }
}

function requester(c: Context<App>): UserInfo {
  const u = userOf(c.req.raw);
  if (!u) throw internal("no authenticated user on the request");
  return u;
}

function reviewInvalid(kind: string, field: string, value: unknown, msg: string): ApiError {
  return invalid(kind, AUTHZ, "", [{ field, type: "FieldValueInvalid", message: `Invalid value: ${JSON.stringify(value)}: ${msg}` }]);
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** Request attributes from a review's spec (resourceAttributes xor nonResourceAttributes). */
function attributesOf(kind: string, spec: Obj): RequestAttributes {
  const ra = spec.resourceAttributes;
  const nra = spec.nonResourceAttributes;
  if ((ra == null) === (nra == null)) {
    throw reviewInvalid(
      kind,
      "spec.resourceAttributes",
      ra ?? null,
      "exactly one of nonResourceAttributes or resourceAttributes must be specified",
    );
  }
  if (ra != null) {
    return {
      resourceRequest: true,
      verb: str(ra.verb),
      apiGroup: str(ra.group),
      apiVersion: str(ra.version),
      resource: str(ra.resource),
      subresource: str(ra.subresource) || undefined,
      namespace: str(ra.namespace) || undefined,
      name: str(ra.name) || undefined,
    };
  }
  return { resourceRequest: false, verb: str(nra.verb), nonResourcePath: str(nra.path) };
}

async function accessReview(ctx: Ctx, kind: string, body: Obj, user: UserInfo, spec: Obj): Promise<Obj> {
  const a: Attributes = { ...attributesOf(kind, spec), user };
  const d = await decide(ctx, a);
  const status: Obj = { allowed: d.allowed };
  if (d.reason) status.reason = d.reason;
  return { kind, apiVersion: `${AUTHZ}/v1`, metadata: { ...(body.metadata ?? {}), creationTimestamp: null }, spec, status };
}

function specOf(body: Obj): Obj {
  return typeof body.spec === "object" && body.spec !== null && !Array.isArray(body.spec) ? body.spec : {};
}

/** POST selfsubjectaccessreviews: may the caller do this? */
export async function selfSubjectAccessReview(ctx: Ctx, user: UserInfo, body: Obj): Promise<Obj> {
  checkKind(body, AUTHZ, "SelfSubjectAccessReview");
  return accessReview(ctx, "SelfSubjectAccessReview", body, user, specOf(body));
}

/** POST subjectaccessreviews / namespaces/{ns}/localsubjectaccessreviews: may this user do this? */
export async function subjectAccessReview(ctx: Ctx, body: Obj, localNamespace?: string): Promise<Obj> {
  const kind = localNamespace === undefined ? "SubjectAccessReview" : "LocalSubjectAccessReview";
  checkKind(body, AUTHZ, kind);
  const spec = specOf(body);
  if (!str(spec.user) && !(Array.isArray(spec.groups) && spec.groups.length)) {
    throw reviewInvalid(kind, "spec.user", spec.user ?? "", "at least one of user or group must be specified");
  }
  if (localNamespace !== undefined) {
    if (spec.nonResourceAttributes != null)
      throw reviewInvalid(kind, "spec.nonResourceAttributes", spec.nonResourceAttributes, "disallowed on this kind of request");
    const ra = spec.resourceAttributes;
    if (ra == null) throw reviewInvalid(kind, "spec.resourceAttributes", null, "must be specified");
    if (str(ra.namespace) && ra.namespace !== localNamespace)
      throw badRequest("spec.resourceAttributes.namespace must match metadata.namespace");
    spec.resourceAttributes = { ...ra, namespace: localNamespace };
    body.metadata = { ...(body.metadata ?? {}), namespace: localNamespace };
  }
  const user: UserInfo = {
    username: str(spec.user),
    uid: str(spec.uid) || undefined,
    groups: Array.isArray(spec.groups) ? spec.groups.filter((g: unknown) => typeof g === "string") : [],
  };
  return accessReview(ctx, kind, body, user, spec);
}

/** POST selfsubjectrulesreviews: what may the caller do in spec.namespace? (kubectl auth can-i --list) */
export async function selfSubjectRulesReview(ctx: Ctx, user: UserInfo, body: Obj): Promise<Obj> {
  checkKind(body, AUTHZ, "SelfSubjectRulesReview");
  const spec = specOf(body);
  const namespace = str(spec.namespace) || undefined;
  const rules = isBootstrapIdentity(user) ? [] : rulesFor(user, namespace, await loadSnapshot(ctx));
  const resourceRules: Obj[] = [];
  const nonResourceRules: Obj[] = [];
  for (const r of rules) {
    if (r.nonResourceURLs?.length) nonResourceRules.push({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs });
    else {
      const rr: Obj = { verbs: r.verbs, apiGroups: r.apiGroups ?? [], resources: r.resources ?? [] };
      if (r.resourceNames?.length) rr.resourceNames = r.resourceNames;
      resourceRules.push(rr);
    }
  }
  return {
    kind: "SelfSubjectRulesReview",
    apiVersion: `${AUTHZ}/v1`,
    metadata: { creationTimestamp: null },
    spec,
    // Node identities are further narrowed to their own objects by the node rules.
    status: { resourceRules, nonResourceRules, incomplete: false },
  };
}

function userInfoJSON(u: UserInfo): Obj {
  const out: Obj = { username: u.username };
  if (u.uid) out.uid = u.uid;
  out.groups = u.groups;
  if (u.extra && Object.keys(u.extra).length) out.extra = u.extra;
  return out;
}

/** POST selfsubjectreviews: who am I? (kubectl auth whoami) */
export function selfSubjectReview(user: UserInfo, now: Date): Obj {
  return {
    kind: "SelfSubjectReview",
    apiVersion: `${AUTHN}/v1`,
    metadata: { creationTimestamp: rfc3339(now) },
    status: { userInfo: userInfoJSON(user) },
  };
}

/** POST tokenreviews: whose is this token? (for webhook token authentication elsewhere) */
export async function tokenReview(ctx: Ctx, adminToken: string | undefined, body: Obj): Promise<Obj> {
  checkKind(body, AUTHN, "TokenReview");
  const spec = specOf(body);
  if (typeof spec.token !== "string" || spec.token === "") {
    throw invalid("TokenReview", AUTHN, "", [{ field: "spec.token", type: "FieldValueRequired", message: "Required value" }]);
  }
  const wanted: string[] = Array.isArray(spec.audiences) ? spec.audiences.filter((x: unknown) => typeof x === "string") : [];
  const r = await authenticateToken(spec.token, { store: ctx.store, adminToken });
  const target = wanted.length ? wanted : API_AUDIENCES;
  const audiences = r ? r.audiences.filter((a) => target.includes(a)) : [];
  const status: Obj =
    r && audiences.length
      ? { authenticated: true, user: userInfoJSON(r.user), audiences }
      : { authenticated: false, user: {}, error: r ? "token audiences are invalid for the target audiences" : "invalid bearer token" };
  const { token: _token, ...echo } = spec; // never echo the token
  return { kind: "TokenReview", apiVersion: `${AUTHN}/v1`, metadata: { creationTimestamp: null }, spec: echo, status };
}

/** Registers the routes of this file's objects, TokenRequest and NodeCredential. */
export function registerAuthRoutes(app: Hono<App>): void {
  const post = (path: string, handle: (c: Context<App>, ctx: Ctx) => Promise<Response>) =>
    app.all(path, (c) => {
      if (c.req.method !== "POST") throw methodNotAllowed();
      return handle(c, ctxOf(c.env));
    });
  post("/api/v1/namespaces/:namespace/serviceaccounts/:name/token", async (c, ctx) => {
    const body = await readObject(c, true);
    await ensureBootstrap(ctx);
    return json(await createServiceAccountToken(ctx, c.req.param("namespace") ?? "", c.req.param("name") ?? "", body));
  });
  post(`/apis/${AUTHZ}/v1/selfsubjectaccessreviews`, async (c, ctx) =>
    json(await selfSubjectAccessReview(ctx, requester(c), (await readObject(c, false))!)),
  );
  post(`/apis/${AUTHZ}/v1/subjectaccessreviews`, async (c, ctx) => json(await subjectAccessReview(ctx, (await readObject(c, false))!)));
  post(`/apis/${AUTHZ}/v1/namespaces/:namespace/localsubjectaccessreviews`, async (c, ctx) =>
    json(await subjectAccessReview(ctx, (await readObject(c, false))!, c.req.param("namespace") ?? "")),
  );
  post(`/apis/${AUTHZ}/v1/selfsubjectrulesreviews`, async (c, ctx) =>
    json(await selfSubjectRulesReview(ctx, requester(c), (await readObject(c, false))!)),
  );
  post(`/apis/${AUTHN}/v1/selfsubjectreviews`, async (c) => {
    const body = (await readObject(c, true)) ?? {};
    checkKind(body, AUTHN, "SelfSubjectReview");
    return json(selfSubjectReview(requester(c), new Date()));
  });
  post(`/apis/${AUTHN}/v1/tokenreviews`, async (c, ctx) => json(await tokenReview(ctx, c.env.ADMIN_TOKEN, (await readObject(c, false))!)));
  post("/apis/kubeflare.dev/v1/nodecredentials", async (c, ctx) => {
    const body = await readObject(c);
    await ensureBootstrap(ctx);
    return json(await issueNodeCredential(ctx, requester(c), body));
  });
}
