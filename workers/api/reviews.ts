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
import { parse as parseYAML } from "yaml";
import type { Env } from "../env.ts";
import { type ApiError, badRequest, internal, invalid, methodNotAllowed, tooLarge, unsupportedMediaType } from "../shared/errors.ts";
import { ctxOf, decide, loadSnapshot, userOf } from "./auth.ts";
import { API_AUDIENCES, authenticateToken, createServiceAccountToken } from "./authn.ts";
import { type Attributes, isBootstrapIdentity, type RequestAttributes, rulesFor, type UserInfo } from "./authz.ts";
import { ensureBootstrap } from "./bootstrap.ts";
import type { Obj } from "./codec.ts";
import { issueNodeCredential } from "./nodes-join.ts";
import type { Ctx } from "./registry.ts";
import { rfc3339 } from "./strategy.ts";

type App = { Bindings: Env };

const MAX_BODY_BYTES = 1.5 * 1024 * 1024;
const AUTHZ = "authorization.k8s.io";
const AUTHN = "authentication.k8s.io";

function json(body: unknown, status = 201): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

// ------------------------------------------------------------------ protobuf requests
//
// client-go's typed clients (kubectl auth can-i / whoami, kubectl create token) send
// these objects as application/vnd.kubernetes.protobuf: the "k8s\0" magic, then a
// runtime.Unknown {1: TypeMeta {1: apiVersion, 2: kind}, 2: raw object}. Only the
// request fields read here are decoded (field numbers from k8s.io/api generated.proto);
// answers are JSON, which those clients accept.

const PROTOBUF = "application/vnd.kubernetes.protobuf";

type Field = [name: string, kind: "string" | "strings" | "int" | Schema];
interface Schema {
  [field: number]: Field;
}

const META: Schema = { 1: ["name", "string"], 2: ["generateName", "string"], 3: ["namespace", "string"] };
const RESOURCE_ATTRIBUTES: Schema = {
  1: ["namespace", "string"],
  2: ["verb", "string"],
  3: ["group", "string"],
  4: ["version", "string"],
  5: ["resource", "string"],
  6: ["subresource", "string"],
  7: ["name", "string"],
};
const NON_RESOURCE_ATTRIBUTES: Schema = { 1: ["path", "string"], 2: ["verb", "string"] };
const object = (spec: Schema): Schema => ({ 1: ["metadata", META], 2: ["spec", spec] });
const SSAR = object({ 1: ["resourceAttributes", RESOURCE_ATTRIBUTES], 2: ["nonResourceAttributes", NON_RESOURCE_ATTRIBUTES] });
const SAR = object({
  1: ["resourceAttributes", RESOURCE_ATTRIBUTES],
  2: ["nonResourceAttributes", NON_RESOURCE_ATTRIBUTES],
  3: ["user", "string"],
  4: ["groups", "strings"],
  6: ["uid", "string"],
});
const SSRR = object({ 1: ["namespace", "string"] });
const SELF_REVIEW = object({});
const TOKEN_REVIEW = object({ 1: ["token", "string"], 2: ["audiences", "strings"] });
const TOKEN_REQUEST = object({
  1: ["audiences", "strings"],
  3: ["boundObjectRef", { 1: ["kind", "string"], 2: ["apiVersion", "string"], 3: ["name", "string"], 4: ["uid", "string"] }],
  4: ["expirationSeconds", "int"],
});

function varint(buf: Uint8Array, pos: { i: number }): number {
  let n = 0;
  let mul = 1;
  for (let shift = 0; shift < 64; shift += 7) {
    if (pos.i >= buf.length) throw new Error("truncated varint");
    const b = buf[pos.i++];
    n += (b & 0x7f) * mul;
    mul *= 128;
    if (b < 0x80) return n;
  }
  throw new Error("varint too long");
}

/** Decodes the fields of `schema` from one protobuf message; others are skipped. */
export function decodeMessage(buf: Uint8Array, schema: Schema): Obj {
  const out: Obj = {};
  const pos = { i: 0 };
  const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  while (pos.i < buf.length) {
    const key = varint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let value: number | Uint8Array;
    if (wire === 0) value = varint(buf, pos);
    else if (wire === 2) {
      const len = varint(buf, pos);
      if (pos.i + len > buf.length) throw new Error("truncated field");
      value = buf.subarray(pos.i, pos.i + len);
      pos.i += len;
    } else if (wire === 1 || wire === 5) {
      pos.i += wire === 1 ? 8 : 4;
      continue;
    } else throw new Error(`unsupported wire type ${wire}`);
    const f = schema[field];
    if (!f) continue;
    const [name, kind] = f;
    if (kind === "int") {
      if (typeof value !== "number") throw new Error(`field ${name}: expected a varint`);
      out[name] = value;
    } else if (typeof value === "number") throw new Error(`field ${name}: expected bytes`);
    else if (kind === "string") out[name] = dec.decode(value);
    else if (kind === "strings") (out[name] ??= []).push(dec.decode(value));
    else out[name] = decodeMessage(value, kind);
  }
  return out;
}

/** A Kubernetes protobuf request body as the JSON object it stands for. */
export function decodeKubeProtobuf(buf: Uint8Array, schema: Schema): Obj {
  if (buf.length < 4 || buf[0] !== 0x6b || buf[1] !== 0x38 || buf[2] !== 0x73 || buf[3] !== 0)
    throw new Error("missing the k8s protobuf prefix");
  const unknown = decodeMessage(buf.subarray(4), {
    1: ["typeMeta", { 1: ["apiVersion", "string"], 2: ["kind", "string"] }],
    4: ["contentType", "string"],
  });
  const raw = rawField(buf.subarray(4));
  const obj = decodeMessage(raw, schema);
  return { apiVersion: unknown.typeMeta?.apiVersion, kind: unknown.typeMeta?.kind, ...obj };
}

/** Field 2 (raw) of a runtime.Unknown, as bytes. */
function rawField(buf: Uint8Array): Uint8Array {
  const pos = { i: 0 };
  while (pos.i < buf.length) {
    const key = varint(buf, pos);
    const wire = key % 8;
    if (wire === 0) varint(buf, pos);
    else if (wire === 2) {
      const len = varint(buf, pos);
      if (Math.floor(key / 8) === 2) return buf.subarray(pos.i, pos.i + len);
      pos.i += len;
    } else pos.i += wire === 1 ? 8 : 4;
  }
  return new Uint8Array(0);
}

/** The request body as an object (JSON, YAML, or protobuf with a schema); undefined when empty and optional. */
async function readObject(c: Context<App>, optional = false, schema?: Schema): Promise<Obj | undefined> {
  const len = Number(c.req.header("content-length") ?? "0");
  if (len > MAX_BODY_BYTES) throw tooLarge(`the request body is too large: ${len} bytes, limit ${MAX_BODY_BYTES}`);
  const buf = await c.req.arrayBuffer();
  if (buf.byteLength > MAX_BODY_BYTES) throw tooLarge(`the request body is too large: ${buf.byteLength} bytes, limit ${MAX_BODY_BYTES}`);
  if (buf.byteLength === 0) {
    if (optional) return undefined;
    throw badRequest("the request body is empty");
  }
  const ct = (c.req.header("content-type") ?? "application/json").split(";")[0].trim().toLowerCase();
  if (ct === PROTOBUF && schema) {
    try {
      return decodeKubeProtobuf(new Uint8Array(buf), schema);
    } catch (e) {
      throw badRequest(`the request body is not a valid protobuf object: ${(e as Error).message}`);
    }
  }
  const text = new TextDecoder().decode(buf);
  let v: unknown;
  if (ct === "application/json" || ct === "" || ct === "*/*") {
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw badRequest(`the request body is not valid JSON: ${(e as Error).message}`);
    }
  } else if (ct === "application/yaml" || ct === "application/x-yaml" || ct === "text/yaml") {
    try {
      v = parseYAML(text, { maxAliasCount: 100 });
    } catch (e) {
      throw badRequest(`the request body is not valid YAML: ${(e as Error).message}`);
    }
  } else throw unsupportedMediaType(ct);
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
    const body = await readObject(c, true, TOKEN_REQUEST);
    await ensureBootstrap(ctx);
    return json(await createServiceAccountToken(ctx, c.req.param("namespace") ?? "", c.req.param("name") ?? "", body));
  });
  post(`/apis/${AUTHZ}/v1/selfsubjectaccessreviews`, async (c, ctx) =>
    json(await selfSubjectAccessReview(ctx, requester(c), (await readObject(c, false, SSAR))!)),
  );
  post(`/apis/${AUTHZ}/v1/subjectaccessreviews`, async (c, ctx) =>
    json(await subjectAccessReview(ctx, (await readObject(c, false, SAR))!)),
  );
  post(`/apis/${AUTHZ}/v1/namespaces/:namespace/localsubjectaccessreviews`, async (c, ctx) =>
    json(await subjectAccessReview(ctx, (await readObject(c, false, SAR))!, c.req.param("namespace") ?? "")),
  );
  post(`/apis/${AUTHZ}/v1/selfsubjectrulesreviews`, async (c, ctx) =>
    json(await selfSubjectRulesReview(ctx, requester(c), (await readObject(c, false, SSRR))!)),
  );
  post(`/apis/${AUTHN}/v1/selfsubjectreviews`, async (c) => {
    const body = (await readObject(c, true, SELF_REVIEW)) ?? {};
    checkKind(body, AUTHN, "SelfSubjectReview");
    return json(selfSubjectReview(requester(c), new Date()));
  });
  post(`/apis/${AUTHN}/v1/tokenreviews`, async (c, ctx) =>
    json(await tokenReview(ctx, c.env.ADMIN_TOKEN, (await readObject(c, false, TOKEN_REVIEW))!)),
  );
  post("/apis/kubeflare.dev/v1/nodecredentials", async (c, ctx) => {
    const body = await readObject(c);
    await ensureBootstrap(ctx);
    return json(await issueNodeCredential(ctx, requester(c), body));
  });
}
