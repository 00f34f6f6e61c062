// kubeflare CLI: user tokens and join tokens, managed through the API with the admin
// kubeconfig (./kubeconfig from `npm start`, or --kubeconfig FILE). It trusts the
// kubeconfig's certificate-authority(-data), so the local self-signed TLS works.
//
//   npm run cli -- user create NAME [--group G]... [--ttl 24h] [--kubeconfig-out FILE]
//   npm run cli -- user list
//   npm run cli -- user revoke NAME|ID
//   npm run cli -- join-token create [--ttl 24h] [--description TEXT]
//   npm run cli -- join-token list
//   npm run cli -- join-token revoke ID
//
// Tokens are made here and printed once (on stdout, alone, so scripts can capture
// them); the cluster stores only a SHA-256 of their secret part, in Secrets in
// kube-system (formats: workers/api/authn.ts). Messages go to stderr. Exit codes: 0 ok,
// 1 failure (no kubeconfig, server unreachable, API error), 2 bad arguments.

import { createHash, randomInt } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parse as parseYAML, stringify as stringifyYAML } from "yaml";
import { ApiClient, ApiStatusError } from "../node-agent/client.ts";

type Obj = Record<string, any>;

const USAGE = `usage: node scripts/cli.ts [--kubeconfig FILE] COMMAND

commands:
  user create NAME [--group G]... [--ttl DURATION] [--kubeconfig-out FILE]
        make a token for user NAME (printed once) and a kubeconfig context
        NAME@<cluster> using it (default file: ./kubeconfig-NAME); no expiry unless --ttl
  user list                      list user tokens (id, user, groups, expiry; never secrets)
  user revoke NAME|ID            delete the token with that id, or every token of that user
  join-token create [--ttl DURATION] [--description TEXT]
        make a join token for node agents (default TTL 24h; 0 = no expiry)
  join-token list                list join tokens (id, expiry, description)
  join-token revoke ID           delete a join token

options:
  --kubeconfig FILE   admin kubeconfig (default ./kubeconfig, written by npm start)
  -h, --help          this text

DURATION: e.g. 30m, 24h, 7d, 1h30m; 0 means no expiry.`;

const SYSTEM_NAMESPACE = "kube-system";
const USER_TOKEN_TYPE = "kubeflare.dev/user-token";
const JOIN_TOKEN_TYPE = "bootstrap.kubernetes.io/token";
const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";

class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

const usageError = (msg: string) => new CliError(`${msg}\n\n${USAGE}`, 2);

function randomAlnum(n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

const sha256Hex = (s: string) => createHash("sha256").update(s).digest("hex");

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** Go-style durations (30m, 24h, 1h30m, 90s) plus days (7d). 0: no expiry. Returns ms. */
export function parseDuration(s: string): number {
  if (s === "0") return 0;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * units[m[2]];
    pos = re.lastIndex;
  }
  if (s === "" || pos !== s.length || total <= 0) throw usageError(`--ttl: not a duration: "${s}" (e.g. 30m, 24h, 7d)`);
  return total;
}

// ------------------------------------------------------------------ kubeconfig and HTTP

interface Target {
  file: string;
  server: string;
  token?: string;
  ca?: string;
  insecure: boolean;
  clusterName: string;
  cluster: Obj;
}

function named(list: unknown, name: string): Obj | undefined {
  return Array.isArray(list) ? list.find((x) => x?.name === name) : undefined;
}

function loadKubeconfig(file: string): Target {
  if (!existsSync(file)) {
    throw new CliError(
      `kubeconfig ${file} not found: start the control plane with "npm start" (it writes ./kubeconfig), or pass --kubeconfig FILE`,
    );
  }
  let kc: Obj;
  try {
    kc = parseYAML(readFileSync(file, "utf8")) ?? {};
  } catch (e) {
    throw new CliError(`kubeconfig ${file} is not valid YAML: ${(e as Error).message}`);
  }
  const ctxName = kc["current-context"];
  const ctx = named(kc.contexts, ctxName)?.context;
  if (!ctx) throw new CliError(`kubeconfig ${file}: current context "${ctxName ?? ""}" not found`);
  const cluster = named(kc.clusters, ctx.cluster)?.cluster;
  if (!cluster?.server) throw new CliError(`kubeconfig ${file}: cluster "${ctx.cluster}" has no server`);
  const user = named(kc.users, ctx.user)?.user ?? {};
  let ca: string | undefined;
  if (cluster["certificate-authority-data"]) ca = Buffer.from(cluster["certificate-authority-data"], "base64").toString("utf8");
  else if (cluster["certificate-authority"]) ca = readFileSync(resolve(dirname(file), cluster["certificate-authority"]), "utf8");
  let token: string | undefined = user.token;
  if (!token && user.tokenFile) token = readFileSync(resolve(dirname(file), user.tokenFile), "utf8").trim();
  return {
    file,
    server: String(cluster.server).replace(/\/$/, ""),
    token,
    ca,
    insecure: cluster["insecure-skip-tls-verify"] === true,
    clusterName: ctx.cluster,
    cluster,
  };
}

interface Reply {
  status: number;
  body: Obj;
}

const clients = new Map<Target, ApiClient>();

/** One API call; an HTTP error is a reply too (its Status in body), only an unreachable server throws. */
async function request(t: Target, method: string, path: string, body?: unknown): Promise<Reply> {
  let client = clients.get(t);
  if (!client) {
    client = new ApiClient({ server: t.server, token: t.token, ca: t.ca, insecureSkipTLSVerify: t.insecure, userAgent: "kubeflare-cli" });
    clients.set(t, client);
  }
  try {
    return { status: 200, body: await client.request(method, path, body) };
  } catch (e) {
    if (e instanceof ApiStatusError) return { status: e.code, body: e.status ?? { message: e.message } };
    const err = e as NodeJS.ErrnoException;
    throw new CliError(`cannot reach the API server at ${t.server} (from ${t.file}): ${err.code ?? err.message}`);
  }
}

/** The CliError for a failed API call: the Status message. */
function apiError(t: Target, r: Reply): CliError {
  if (r.status === 401) return new CliError(`the API server rejected the credentials in ${t.file} (401 Unauthorized)`);
  const msg = r.body?.message || `HTTP ${r.status}`;
  return new CliError(`${msg} (${r.status}${r.body?.reason ? ` ${r.body.reason}` : ""})`);
}

/** A request that must succeed. */
async function call(t: Target, method: string, path: string, body?: unknown): Promise<Obj> {
  const r = await request(t, method, path, body);
  if (r.status >= 200 && r.status < 300) return r.body;
  throw apiError(t, r);
}

const secretsPath = `/api/v1/namespaces/${SYSTEM_NAMESPACE}/secrets`;

async function secretsOfType(t: Target, type: string): Promise<Obj[]> {
  const list = await call(t, "GET", `${secretsPath}?fieldSelector=${encodeURIComponent(`type=${type}`)}`);
  return (list.items ?? []) as Obj[];
}

function data(secret: Obj, key: string): string {
  const v = secret.data?.[key];
  return typeof v === "string" ? Buffer.from(v, "base64").toString("utf8") : "";
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] + 3))).join("")).join("\n");
}

function expiryText(expiration: string, now: number): string {
  if (!expiration) return "<never>";
  return Date.parse(expiration) <= now ? `${expiration} (expired)` : expiration;
}

// ------------------------------------------------------------------ kubeconfig output

function mergeKubeconfig(file: string, t: Target, user: string, token: string): { context: string; current: boolean } {
  let kc: Obj = { apiVersion: "v1", kind: "Config", clusters: [], users: [], contexts: [] };
  const exists = existsSync(file);
  if (exists) {
    try {
      kc = parseYAML(readFileSync(file, "utf8")) ?? {};
    } catch (e) {
      throw new CliError(`--kubeconfig-out ${file} exists and is not valid YAML: ${(e as Error).message}`);
    }
  }
  const context = `${user}@${t.clusterName}`;
  const upsert = (key: string, entry: Obj) => {
    const list: Obj[] = Array.isArray(kc[key]) ? kc[key] : [];
    const i = list.findIndex((x) => x?.name === entry.name);
    if (i >= 0) list[i] = entry;
    else list.push(entry);
    kc[key] = list;
  };
  const cluster: Obj = { server: t.server };
  if (t.ca) cluster["certificate-authority-data"] = Buffer.from(t.ca).toString("base64");
  else if (t.insecure) cluster["insecure-skip-tls-verify"] = true;
  upsert("clusters", { name: t.clusterName, cluster });
  upsert("users", { name: context, user: { token } });
  upsert("contexts", { name: context, context: { cluster: t.clusterName, user: context, namespace: "default" } });
  kc.apiVersion ??= "v1";
  kc.kind ??= "Config";
  const current = !exists || !kc["current-context"];
  if (current) kc["current-context"] = context;
  writeFileSync(file, stringifyYAML(kc), { mode: 0o600 });
  return { context, current };
}

// ------------------------------------------------------------------ commands

const USER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;

async function userCreate(t: Target, name: string, groups: string[], ttl: string | undefined, out: string | undefined): Promise<void> {
  if (!USER_NAME_RE.test(name)) {
    throw usageError(`user name "${name}": use letters, digits and . _ @ + - (at most 128 characters, not starting with punctuation)`);
  }
  for (const g of groups) {
    if (!g || g.includes(",") || /\s/.test(g)) throw usageError(`--group "${g}": group names may not be empty or contain commas or spaces`);
  }
  const ttlMs = ttl === undefined ? 0 : parseDuration(ttl);
  const id = randomAlnum(8);
  const secret = randomAlnum(32);
  const stringData: Record<string, string> = { user: name, groups: groups.join(","), "token-secret-sha256": sha256Hex(secret) };
  if (ttlMs > 0) stringData.expiration = rfc3339(new Date(Date.now() + ttlMs));
  await call(t, "POST", secretsPath, {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: `user-token-${id}`, namespace: SYSTEM_NAMESPACE, labels: { "app.kubernetes.io/managed-by": "kubeflare-cli" } },
    type: USER_TOKEN_TYPE,
    stringData,
  });
  const token = `kfu_${id}.${secret}`;
  const file = resolve(out ?? `kubeconfig-${name}`);
  const { context, current } = mergeKubeconfig(file, t, name, token);
  console.log(token);
  console.error(`user "${name}": token id ${id}, ${stringData.expiration ? `expires ${stringData.expiration}` : "no expiry"}`);
  console.error(`groups: ${[...groups, "system:authenticated"].join(", ")}`);
  console.error(
    `kubeconfig: ${file}, context ${context}${current ? " (current)" : ` (use: kubectl --kubeconfig ${file} --context ${context} ...)`}`,
  );
  console.error("the token is shown only now; it has no permissions until a RoleBinding or ClusterRoleBinding names the user or a group");
}

async function userList(t: Target): Promise<void> {
  const now = Date.now();
  const rows = [["ID", "USER", "GROUPS", "EXPIRES", "CREATED"]];
  const items = await secretsOfType(t, USER_TOKEN_TYPE);
  for (const s of items.sort((a, b) => data(a, "user").localeCompare(data(b, "user")))) {
    const id = String(s.metadata?.name ?? "").replace(/^user-token-/, "");
    rows.push([
      id,
      data(s, "user"),
      data(s, "groups") || "<none>",
      expiryText(data(s, "expiration"), now),
      s.metadata?.creationTimestamp ?? "",
    ]);
  }
  if (rows.length === 1) console.error("no user tokens");
  else console.log(table(rows));
}

async function userRevoke(t: Target, arg: string): Promise<void> {
  const byId = await request(t, "GET", `${secretsPath}/user-token-${encodeURIComponent(arg)}`);
  if (byId.status !== 200 && byId.status !== 404) throw apiError(t, byId);
  const victims =
    byId.status === 200 && byId.body.type === USER_TOKEN_TYPE
      ? [byId.body]
      : (await secretsOfType(t, USER_TOKEN_TYPE)).filter((s) => data(s, "user") === arg);
  if (victims.length === 0) throw new CliError(`no user token with id or user "${arg}"`);
  for (const s of victims) {
    await call(t, "DELETE", `${secretsPath}/${s.metadata.name}`);
    console.log(`revoked token ${String(s.metadata.name).replace(/^user-token-/, "")} of user "${data(s, "user")}"`);
  }
}

async function joinCreate(t: Target, ttl: string | undefined, description: string | undefined): Promise<void> {
  const ttlMs = parseDuration(ttl ?? "24h");
  const id = randomAlnum(6);
  const secret = randomAlnum(16);
  const stringData: Record<string, string> = {
    "token-id": id,
    "token-secret-sha256": sha256Hex(secret),
    "usage-bootstrap-authentication": "true",
    description: description ?? "kubeflare node join token",
  };
  if (ttlMs > 0) stringData.expiration = rfc3339(new Date(Date.now() + ttlMs));
  await call(t, "POST", secretsPath, {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: `bootstrap-token-${id}`, namespace: SYSTEM_NAMESPACE, labels: { "app.kubernetes.io/managed-by": "kubeflare-cli" } },
    type: JOIN_TOKEN_TYPE,
    stringData,
  });
  console.log(`${id}.${secret}`);
  console.error(`join token ${id}: ${stringData.expiration ? `expires ${stringData.expiration}` : "no expiry"}; shown only now`);
}

async function joinList(t: Target): Promise<void> {
  const now = Date.now();
  const rows = [["ID", "EXPIRES", "DESCRIPTION"]];
  for (const s of await secretsOfType(t, JOIN_TOKEN_TYPE)) {
    rows.push([
      data(s, "token-id") || String(s.metadata?.name ?? "").replace(/^bootstrap-token-/, ""),
      expiryText(data(s, "expiration"), now),
      data(s, "description"),
    ]);
  }
  if (rows.length === 1) console.error("no join tokens");
  else console.log(table(rows));
}

async function joinRevoke(t: Target, id: string): Promise<void> {
  if (!/^[a-z0-9]{6}$/.test(id)) throw usageError(`join token id "${id}": expected 6 characters [a-z0-9] (the part before the dot)`);
  const r = await request(t, "DELETE", `${secretsPath}/bootstrap-token-${id}`);
  if (r.status === 404) throw new CliError(`join token "${id}" not found`);
  if (r.status >= 300) throw apiError(t, r);
  console.log(`revoked join token ${id}`);
}

// ------------------------------------------------------------------ main

const ALLOWED: Record<string, string[]> = {
  "user create": ["group", "ttl", "kubeconfig-out"],
  "user list": [],
  "user revoke": [],
  "join-token create": ["ttl", "description"],
  "join-token list": [],
  "join-token revoke": [],
};
const ARITY: Record<string, number> = { "user create": 1, "user revoke": 1, "join-token revoke": 1 };

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      kubeconfig: { type: "string" },
      group: { type: "string", multiple: true },
      ttl: { type: "string" },
      "kubeconfig-out": { type: "string" },
      description: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}

export async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    throw usageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const [noun, verb, ...args] = positionals;
  if (!noun) throw usageError("no command given");
  const cmd = `${noun} ${verb ?? ""}`.trim();
  if (!(cmd in ALLOWED)) throw usageError(`unknown command "${positionals.join(" ")}"`);
  const want = ARITY[cmd] ?? 0;
  if (args.length !== want) throw usageError(want ? `${cmd} takes exactly ${want} argument` : `${cmd} takes no arguments`);
  for (const opt of ["group", "ttl", "kubeconfig-out", "description"] as const) {
    if (values[opt] !== undefined && !ALLOWED[cmd].includes(opt)) throw usageError(`--${opt} does not apply to "${cmd}"`);
  }
  if (values.ttl !== undefined) parseDuration(values.ttl); // bad arguments before any network call
  const t = loadKubeconfig(resolve(values.kubeconfig ?? "kubeconfig"));
  switch (cmd) {
    case "user create":
      return userCreate(t, args[0], values.group ?? [], values.ttl, values["kubeconfig-out"]);
    case "user list":
      return userList(t);
    case "user revoke":
      return userRevoke(t, args[0]);
    case "join-token create":
      return joinCreate(t, values.ttl, values.description);
    case "join-token list":
      return joinList(t);
    case "join-token revoke":
      return joinRevoke(t, args[0]);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    if (e instanceof CliError) {
      console.error(`error: ${e.message}`);
      process.exit(e.exitCode);
    }
    console.error(e);
    process.exit(1);
  });
}
