// Authentication: bearer token → UserInfo, or null (401). The sources, tried by shape:
//
//   admin token (env.ADMIN_TOKEN)       admin, groups system:masters + system:authenticated
//   kfu_<id>.<secret>  user token       Secret kube-system/user-token-<id> (kubeflare.dev/user-token)
//   kfn_<node>.<secret> node credential Secret kube-system/node-credential-<node> → system:node:<node>
//   <id>.<secret>      join token       Secret kube-system/bootstrap-token-<id> → system:bootstrap:<id>
//   JWT (HS256)        ServiceAccount   signed with Secret kube-system/kubeflare-sa-signing-key
//
// Secrets hold a SHA-256 of the token's secret part, never the secret; digests are
// compared in constant time. Tokens are never logged. The Secret (and ServiceAccount,
// and bound object) lookups are cached per isolate for at most CACHE_TTL_MS, so a
// revoked token stops working within that bound; writes through this isolate clear the
// cache at once (see auth.ts). Also here: TokenRequest (serviceaccounts/{name}/token).

import type { Store } from "../../durable-objects/store/types.ts";
import { ApiError, badRequest, conflict, invalid, notFound } from "../shared/errors.ts";
import { lookupResource, objectKey } from "../shared/resources.ts";
import type { UserInfo } from "./authz.ts";
import { AUTHENTICATED, BOOTSTRAPPERS, MASTERS, NODES_GROUP } from "./authz.ts";
import { decodeKV, type Obj } from "./codec.ts";
import { type Ctx, create } from "./registry.ts";
import { rfc3339 } from "./strategy.ts";

export const SYSTEM_NAMESPACE = "kube-system";
export const CACHE_TTL_MS = 5000;

export const USER_TOKEN_TYPE = "kubeflare.dev/user-token";
export const NODE_CREDENTIAL_TYPE = "kubeflare.dev/node-credential";
export const BOOTSTRAP_TOKEN_TYPE = "bootstrap.kubernetes.io/token";
export const SIGNING_KEY_TYPE = "kubeflare.dev/signing-key";
export const SIGNING_KEY_SECRET = "kubeflare-sa-signing-key";

export const USER_TOKEN_RE = /^kfu_([a-z0-9]{6,12})\.([a-z0-9]{32})$/;
export const NODE_TOKEN_RE = /^kfn_([a-z0-9.-]{1,253})\.([a-z0-9]{32})$/;
export const JOIN_TOKEN_RE = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The issuer and the audience of ServiceAccount tokens (kube's defaults). */
export const SA_ISSUER = "https://kubernetes.default.svc.cluster.local";
export const API_AUDIENCES = [SA_ISSUER];

const encoder = new TextEncoder();
const SECRETS = lookupResource("", "v1", "secrets")!;
const SERVICE_ACCOUNTS = lookupResource("", "v1", "serviceaccounts")!;
const PODS = lookupResource("", "v1", "pods")!;

// ------------------------------------------------------------------ crypto helpers

export async function sha256Hex(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(s)));
  let out = "";
  for (const b of d) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Digests of the server-side secrets (b in safeEqual), which repeat on every request. */
const knownDigests = new Map<string, Promise<ArrayBuffer>>();

function knownDigest(b: string): Promise<ArrayBuffer> {
  let d = knownDigests.get(b);
  if (!d) {
    if (knownDigests.size >= 256) knownDigests.clear();
    knownDigests.set(b, (d = crypto.subtle.digest("SHA-256", encoder.encode(b))));
  }
  return d;
}

/**
 * Constant-time string equality: compares SHA-256 digests, so neither timing nor length
 * leaks. a is what the client sent; b is the server's secret (its digest is cached).
 */
export async function safeEqual(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([crypto.subtle.digest("SHA-256", encoder.encode(a)), knownDigest(b)]);
  const subtle = crypto.subtle as SubtleCrypto & { timingSafeEqual?: (a: ArrayBuffer, b: ArrayBuffer) => boolean };
  if (typeof subtle.timingSafeEqual === "function") return subtle.timingSafeEqual(x, y);
  const p = new Uint8Array(x);
  const q = new Uint8Array(y);
  let d = 0;
  for (let i = 0; i < p.length; i++) d |= p[i] ^ q[i];
  return d === 0;
}

const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";

/** n random characters of [a-z0-9] (rejection sampling: no modulo bias). */
export function randomAlnum(n: number): string {
  let out = "";
  while (out.length < n) {
    for (const b of crypto.getRandomValues(new Uint8Array(n * 2))) {
      if (b < 252 && out.length < n) out += ALNUM[b % 36];
    }
  }
  return out;
}

function b64urlEncode(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function b64urlDecode(s: string): Uint8Array {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A Secret data value (base64) as UTF-8 text; "" if absent or malformed. */
export function secretString(obj: Obj | null | undefined, key: string): string {
  const v = obj?.data?.[key];
  if (typeof v !== "string") return "";
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(v), (c) => c.charCodeAt(0)));
  } catch {
    return "";
  }
}

export function b64(s: string): string {
  let bin = "";
  for (const b of encoder.encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

// ------------------------------------------------------------------ cache

/** Promise cache with a TTL and a size bound; failed loads are not kept. Shares in-flight loads. */
export class TtlCache<V> {
  private readonly entries = new Map<string, { at: number; value: Promise<V> }>();
  private readonly ttlMs: number;
  private readonly max: number;

  constructor(ttlMs: number, max: number) {
    this.ttlMs = ttlMs;
    this.max = max;
  }

  get(key: string, load: () => Promise<V>, now = Date.now()): Promise<V> {
    const e = this.entries.get(key);
    if (e && now - e.at < this.ttlMs && now >= e.at) return e.value;
    const entry = { at: now, value: load() };
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
    entry.value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return entry.value;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}

const objects = new TtlCache<Obj | null>(CACHE_TTL_MS, 2048);

/** Forgets every cached lookup (after a write through this isolate to secrets, service accounts, pods). */
export function invalidateAuthnCache(): void {
  objects.clear();
}

function cachedGet(store: Store, key: string): Promise<Obj | null> {
  return objects.get(key, async () => {
    const kv = await store.get(key);
    return kv ? decodeKV(kv) : null;
  });
}

export function systemSecretKey(name: string): string {
  return objectKey(SECRETS, SYSTEM_NAMESPACE, name);
}

function systemSecret(store: Store, name: string): Promise<Obj | null> {
  return cachedGet(store, systemSecretKey(name));
}

// ------------------------------------------------------------------ authenticate

export interface AuthnDeps {
  store: Store;
  adminToken?: string;
  /** ms since the epoch (tests). */
  now?: number;
}

export interface Authenticated {
  user: UserInfo;
  /** The audiences the token is valid for. */
  audiences: string[];
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

function withAuthenticated(groups: string[]): string[] {
  return groups.includes(AUTHENTICATED) ? groups : [...groups, AUTHENTICATED];
}

function expired(expiration: string, now: number): boolean {
  if (!expiration) return false;
  const t = Date.parse(expiration);
  return !Number.isFinite(t) || t <= now;
}

/** Whether a Secret is live and of the type: not marked for deletion. */
function live(obj: Obj | null, type: string): obj is Obj {
  return !!obj && obj.type === type && !obj.metadata?.deletionTimestamp;
}

async function hashMatches(obj: Obj, secret: string): Promise<boolean> {
  const stored = secretString(obj, "token-secret-sha256");
  if (!/^[0-9a-f]{64}$/.test(stored)) return false;
  return safeEqual(await sha256Hex(secret), stored);
}

async function userToken(store: Store, id: string, secret: string, now: number): Promise<UserInfo | null> {
  const obj = await systemSecret(store, `user-token-${id}`);
  if (!live(obj, USER_TOKEN_TYPE) || !(await hashMatches(obj, secret))) return null;
  if (expired(secretString(obj, "expiration"), now)) return null;
  const username = secretString(obj, "user");
  if (!username) return null;
  const groups = secretString(obj, "groups")
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "");
  return { username, groups: withAuthenticated(groups), extra: { "authentication.kubernetes.io/credential-id": [`kfu-${id}`] } };
}

async function nodeCredential(store: Store, node: string, secret: string): Promise<UserInfo | null> {
  const obj = await systemSecret(store, `node-credential-${node}`);
  if (!live(obj, NODE_CREDENTIAL_TYPE) || secretString(obj, "node") !== node || !(await hashMatches(obj, secret))) return null;
  return { username: `system:node:${node}`, groups: [NODES_GROUP, AUTHENTICATED] };
}

async function joinToken(store: Store, id: string, secret: string, now: number): Promise<UserInfo | null> {
  const obj = await systemSecret(store, `bootstrap-token-${id}`);
  if (!live(obj, BOOTSTRAP_TOKEN_TYPE) || secretString(obj, "token-id") !== id) return null;
  if (secretString(obj, "usage-bootstrap-authentication") !== "true") return null;
  if (expired(secretString(obj, "expiration"), now)) return null;
  const plain = secretString(obj, "token-secret"); // kubeadm-style secrets keep the secret itself
  const ok = plain ? await safeEqual(secret, plain) : await hashMatches(obj, secret);
  if (!ok) return null;
  const extra = secretString(obj, "auth-extra-groups")
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g.startsWith(`${BOOTSTRAPPERS}:`));
  return { username: `system:bootstrap:${id}`, groups: [BOOTSTRAPPERS, ...extra, AUTHENTICATED] };
}

/**
 * Authenticates a bearer token. null: not a valid credential. The admin token is
 * compared first, in constant time, whatever the token looks like.
 */
export async function authenticateToken(token: string, deps: AuthnDeps): Promise<Authenticated | null> {
  const now = deps.now ?? Date.now();
  if (deps.adminToken && (await safeEqual(token, deps.adminToken))) {
    return { user: { username: "admin", groups: [MASTERS, AUTHENTICATED] }, audiences: API_AUDIENCES };
  }
  let m: RegExpExecArray | null;
  let user: UserInfo | null = null;
  if ((m = USER_TOKEN_RE.exec(token))) user = await userToken(deps.store, m[1], m[2], now);
  else if ((m = NODE_TOKEN_RE.exec(token))) user = await nodeCredential(deps.store, m[1], m[2]);
  else if ((m = JOIN_TOKEN_RE.exec(token))) user = await joinToken(deps.store, m[1], m[2], now);
  else if (JWT_RE.test(token)) return serviceAccountToken(deps.store, token, now);
  return user ? { user, audiences: API_AUDIENCES } : null;
}

/** The user of an Authorization header, or null. Tokens for other audiences than the API's do not count. */
export async function authenticate(header: string | undefined | null, deps: AuthnDeps): Promise<UserInfo | null> {
  const token = bearerToken(header);
  if (!token) return null;
  const r = await authenticateToken(token, deps);
  if (!r?.audiences.some((a) => API_AUDIENCES.includes(a))) return null;
  return r.user;
}

// ------------------------------------------------------------------ ServiceAccount tokens (JWT, HS256)

const keys = new Map<string, Promise<CryptoKey>>();

function importKey(raw: string): Promise<CryptoKey> {
  let k = keys.get(raw);
  if (!k) {
    const bytes = Uint8Array.from(atob(raw), (c) => c.charCodeAt(0));
    k = crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    if (keys.size > 8) keys.clear();
    keys.set(raw, k);
  }
  return k;
}

interface SigningKey {
  key: CryptoKey;
  kid: string;
}

async function keyFrom(obj: Obj | null): Promise<SigningKey | null> {
  const raw = obj?.type === SIGNING_KEY_TYPE ? obj.data?.key : undefined;
  if (typeof raw !== "string" || raw.length < 40) return null;
  return { key: await importKey(raw), kid: (await sha256Hex(raw)).slice(0, 16) };
}

/** The cluster's ServiceAccount token signing key; created on first use when `createIfMissing`. */
export async function signingKey(ctx: Ctx, createIfMissing: boolean): Promise<SigningKey | null> {
  const existing = await keyFrom(await systemSecret(ctx.store, SIGNING_KEY_SECRET));
  if (existing || !createIfMissing) return existing;
  let bin = "";
  for (const b of crypto.getRandomValues(new Uint8Array(32))) bin += String.fromCharCode(b);
  const secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: SIGNING_KEY_SECRET, namespace: SYSTEM_NAMESPACE, labels: { "app.kubernetes.io/managed-by": "kubeflare" } },
    type: SIGNING_KEY_TYPE,
    data: { key: btoa(bin) },
  };
  try {
    await create(ctx, { info: SECRETS, namespace: SYSTEM_NAMESPACE }, secret, { dryRun: false });
  } catch (e) {
    if (!(e instanceof ApiError && e.reason === "AlreadyExists")) throw e;
  }
  objects.delete(systemSecretKey(SIGNING_KEY_SECRET));
  const key = await keyFrom(await systemSecret(ctx.store, SIGNING_KEY_SECRET));
  if (!key) throw new ApiError(500, "InternalError", "Internal error occurred: the service account signing key is malformed");
  return key;
}

async function signJWT(key: SigningKey, claims: Obj): Promise<string> {
  const head = b64urlEncode(encoder.encode(JSON.stringify({ alg: "HS256", kid: key.kid, typ: "JWT" })));
  const body = b64urlEncode(encoder.encode(JSON.stringify(claims)));
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key.key, encoder.encode(`${head}.${body}`)));
  return `${head}.${body}.${b64urlEncode(sig)}`;
}

function parseJSONPart(s: string): Obj | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(b64urlDecode(s)));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

const LEEWAY_S = 60;

async function serviceAccountToken(store: Store, token: string, now: number): Promise<Authenticated | null> {
  const [h, b, s] = token.split(".");
  const header = parseJSONPart(h);
  if (header?.alg !== "HS256") return null;
  const key = await keyFrom(await systemSecret(store, SIGNING_KEY_SECRET));
  if (!key) return null;
  let sig: Uint8Array;
  try {
    sig = b64urlDecode(s);
  } catch {
    return null;
  }
  if (!(await crypto.subtle.verify("HMAC", key.key, sig, encoder.encode(`${h}.${b}`)))) return null;
  const c = parseJSONPart(b);
  if (!c || c.iss !== SA_ISSUER) return null;
  const nowS = Math.floor(now / 1000);
  if (typeof c.exp !== "number" || c.exp <= nowS) return null;
  if (typeof c.nbf === "number" && c.nbf > nowS + LEEWAY_S) return null;
  const k = c["kubernetes.io"];
  const ns = k?.namespace;
  const name = k?.serviceaccount?.name;
  const uid = k?.serviceaccount?.uid;
  if (typeof ns !== "string" || typeof name !== "string" || typeof uid !== "string") return null;
  if (c.sub !== `system:serviceaccount:${ns}:${name}`) return null;
  const sa = await cachedGet(store, objectKey(SERVICE_ACCOUNTS, ns, name));
  if (!sa || sa.metadata?.uid !== uid || sa.metadata?.deletionTimestamp) return null;
  const extra: Record<string, string[]> = {};
  if (typeof c.jti === "string") extra["authentication.kubernetes.io/credential-id"] = [`JTI=${c.jti}`];
  for (const [kind, info] of [
    ["pod", PODS],
    ["secret", SECRETS],
  ] as const) {
    const ref = k[kind];
    if (ref === undefined) continue;
    if (typeof ref?.name !== "string" || typeof ref?.uid !== "string") return null;
    const obj = await cachedGet(store, objectKey(info, ns, ref.name));
    if (!obj || obj.metadata?.uid !== ref.uid) return null;
    const del = obj.metadata?.deletionTimestamp;
    if (del && Date.parse(del) <= now) return null;
    extra[`authentication.kubernetes.io/${kind}-name`] = [ref.name];
    extra[`authentication.kubernetes.io/${kind}-uid`] = [ref.uid];
  }
  const aud = Array.isArray(c.aud) ? c.aud.filter((x: unknown) => typeof x === "string") : typeof c.aud === "string" ? [c.aud] : [];
  return {
    user: {
      username: c.sub,
      uid,
      groups: ["system:serviceaccounts", `system:serviceaccounts:${ns}`, AUTHENTICATED],
      extra,
    },
    audiences: aud,
  };
}

const MIN_EXPIRATION_S = 600;
const MAX_EXPIRATION_S = 2 ** 32;
const DEFAULT_EXPIRATION_S = 3600;

function tokenRequestInvalid(name: string, field: string, value: unknown, msg: string): ApiError {
  return invalid("TokenRequest", "authentication.k8s.io", name, [
    { field, type: "FieldValueInvalid", message: `Invalid value: ${JSON.stringify(value)}: ${msg}` },
  ]);
}

/**
 * POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token: a TokenRequest
 * (authentication.k8s.io/v1) answered with a signed JWT for the ServiceAccount,
 * optionally bound to a Pod or Secret (then valid only while that object exists).
 */
export async function createServiceAccountToken(ctx: Ctx, namespace: string, name: string, body: unknown): Promise<Obj> {
  if (body !== undefined && (typeof body !== "object" || body === null || Array.isArray(body))) {
    throw badRequest("the request body must be a TokenRequest object");
  }
  const req = (body ?? {}) as Obj;
  if (req.kind !== undefined && req.kind !== "TokenRequest") throw badRequest(`the body kind "${String(req.kind)}" must be "TokenRequest"`);
  if (req.apiVersion !== undefined && req.apiVersion !== "authentication.k8s.io/v1") {
    throw badRequest(`the API version in the data (${String(req.apiVersion)}) must be authentication.k8s.io/v1`);
  }
  const spec: Obj = typeof req.spec === "object" && req.spec !== null ? req.spec : {};
  const exp = spec.expirationSeconds ?? DEFAULT_EXPIRATION_S;
  if (!Number.isInteger(exp)) throw tokenRequestInvalid(name, "spec.expirationSeconds", exp, "must be an integer");
  if (exp < MIN_EXPIRATION_S)
    throw tokenRequestInvalid(name, "spec.expirationSeconds", exp, "may not specify a duration less than 10 minutes");
  if (exp > MAX_EXPIRATION_S)
    throw tokenRequestInvalid(name, "spec.expirationSeconds", exp, "may not specify a duration larger than 2^32 seconds");
  let audiences: string[] = API_AUDIENCES;
  if (spec.audiences !== undefined && spec.audiences !== null) {
    if (!Array.isArray(spec.audiences) || spec.audiences.some((a: unknown) => typeof a !== "string" || a === "")) {
      throw tokenRequestInvalid(name, "spec.audiences", spec.audiences, "must be a list of non-empty strings");
    }
    if (spec.audiences.length) audiences = spec.audiences;
  }

  const saKV = await ctx.store.get(objectKey(SERVICE_ACCOUNTS, namespace, name));
  if (!saKV) throw notFound({ group: "", resource: "serviceaccounts", name });
  const sa = decodeKV(saKV);
  if (sa.metadata.deletionTimestamp) throw notFound({ group: "", resource: "serviceaccounts", name });

  const claimsK8s: Obj = { namespace, serviceaccount: { name, uid: sa.metadata.uid } };
  const ref = spec.boundObjectRef;
  if (ref !== undefined && ref !== null) {
    const kind = ref.kind;
    const info = kind === "Pod" ? PODS : kind === "Secret" ? SECRETS : undefined;
    if (!info) throw tokenRequestInvalid(name, "spec.boundObjectRef.kind", kind, 'supported kinds are "Pod" and "Secret"');
    if ((ref.apiVersion ?? "v1") !== "v1") throw tokenRequestInvalid(name, "spec.boundObjectRef.apiVersion", ref.apiVersion, "must be v1");
    if (typeof ref.name !== "string" || ref.name === "")
      throw tokenRequestInvalid(name, "spec.boundObjectRef.name", ref.name ?? "", "required");
    const kv = await ctx.store.get(objectKey(info, namespace, ref.name));
    if (!kv) throw notFound({ group: "", resource: info.resource, name: ref.name });
    const obj = decodeKV(kv);
    if (ref.uid && ref.uid !== obj.metadata.uid) {
      throw conflict(
        { group: "", resource: info.resource, name: ref.name },
        `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
      );
    }
    claimsK8s[kind === "Pod" ? "pod" : "secret"] = { name: ref.name, uid: obj.metadata.uid };
  }

  const key = (await signingKey(ctx, true))!;
  const now = ctx.now();
  const iat = Math.floor(now.getTime() / 1000);
  const claims = {
    aud: audiences,
    exp: iat + exp,
    iat,
    iss: SA_ISSUER,
    jti: crypto.randomUUID(),
    "kubernetes.io": claimsK8s,
    nbf: iat,
    sub: `system:serviceaccount:${namespace}:${name}`,
  };
  return {
    kind: "TokenRequest",
    apiVersion: "authentication.k8s.io/v1",
    metadata: { name, namespace, creationTimestamp: rfc3339(now) },
    spec: { audiences, expirationSeconds: exp, boundObjectRef: ref ?? null },
    status: { token: await signJWT(key, claims), expirationTimestamp: rfc3339(new Date((iat + exp) * 1000)) },
  };
}
