// The API server: a hono app speaking the Kubernetes REST API. Middleware: errors →
// Status (one place), authentication. Routes: discovery, then one generic resource
// handler that parses the path and dispatches on verb and subresource.

import { type Context, Hono } from "hono";
import { RemoteStore } from "../../durable-objects/store/remote.ts";
import { type Env, intVar } from "../env.ts";
import { ApiError, badRequest, internal, methodNotAllowed, notFound, unsupportedMediaType } from "../shared/errors.ts";
import { patchTypeOf } from "../shared/patch.ts";
import { lookupResource, type ResourceInfo } from "../shared/resources.ts";
import { authMiddleware } from "./auth.ts";
import { readBody } from "./body.ts";
import { ensureBootstrap } from "./bootstrap.ts";
import { CONNECT_SUBRESOURCES, handleConnect } from "./connect.ts";
import {
  aggregatedDiscovery,
  apiGroupDoc,
  apiGroupList,
  apiResourceList,
  apiVersions,
  SERVER_VERSION,
  wantsAggregated,
} from "./discovery.ts";
import { mountOpenAPI } from "./openapi.ts";
import {
  apply,
  type Ctx,
  create,
  getJSON,
  listJSON,
  parseDeleteOptions,
  patch,
  remove,
  removeCollection,
  type Target,
  update,
} from "./registry.ts";
import { registerAuthRoutes } from "./reviews.ts";
import { defaultManager } from "./ssa.ts";
import { bind, getScale, updateScale } from "./subresources.ts";
import { type IncludeObjectPolicy, includeObjectError, includeObjectPolicy, toTable, wantsTable } from "./tables.ts";
import { watchResponse } from "./watch.ts";

type App = { Bindings: Env };

function json(body: unknown, status = 200): Response {
  return new Response(typeof body === "string" ? body : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function statusResponse(e: ApiError): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (e.code === 401) headers["www-authenticate"] = 'Bearer realm="kubeflare"';
  if (e.details.retryAfterSeconds) headers["retry-after"] = String(e.details.retryAfterSeconds);
  return new Response(JSON.stringify(e.toStatus()), { status: e.code, headers });
}

const APPLY_PATCH = "application/apply-patch+yaml";

/** The field manager of a write: the fieldManager parameter, else from the User-Agent. */
function managerOf(c: Context<App>, query: URLSearchParams): string {
  const fm = query.get("fieldManager");
  if (fm !== null && (fm.length === 0 || fm.length > 128)) throw badRequest("fieldManager must be 1-128 characters");
  return defaultManager(c.req.header("user-agent"), fm);
}

function dryRunOf(query: URLSearchParams): boolean {
  const vals = query.getAll("dryRun");
  for (const v of vals) if (v !== "All") throw badRequest(`Invalid dryRun value "${v}": only "All" is supported`);
  return vals.length > 0;
}

const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

interface Parsed extends Target {
  sub?: string;
  watchPath: boolean;
  /** nodes/<name>/proxy/<proxyPath> */
  proxyPath: string;
}

/** Splits the path after /api/v1/ or /apis/<g>/<v>/ into resource, namespace, name, subresource. */
function parsePath(group: string, version: string, rest: string): Parsed {
  let segs = rest.split("/");
  if (segs.length && segs[segs.length - 1] === "") segs.pop();
  let watchPath = false;
  if (segs[0] === "watch") {
    watchPath = true;
    segs = segs.slice(1);
  }
  let namespace: string | undefined;
  if (segs[0] === "namespaces" && segs.length >= 3 && !(segs.length === 3 && NAMESPACE_SUBRESOURCES.has(segs[2]))) {
    namespace = segs[1];
    segs = segs.slice(2);
  }
  const [resource, name, sub, ...extra] = segs;
  const info = resource ? lookupResource(group, version, resource) : undefined;
  const nf = () => new ApiError(404, "NotFound", "the server could not find the requested resource");
  const proxy = sub === "proxy";
  if (!info || (extra.length > 0 && !proxy) || segs.slice(0, 3).some((s) => s === "")) throw nf();
  if (info.namespaced !== (namespace !== undefined) && !(info.namespaced && namespace === undefined && name === undefined)) throw nf();
  if (sub !== undefined && !info.subresources.includes(sub)) throw nf();
  if (watchPath && sub !== undefined) throw nf();
  return { info, namespace, name, sub, watchPath, proxyPath: proxy ? extra.join("/") : "" };
}

/** kubectl's server-side printing: Accept asks for a meta.k8s.io Table. */
function tableRequest(
  c: Context<App>,
  query: URLSearchParams,
): { includeObject: IncludeObjectPolicy; apiVersion: "meta.k8s.io/v1" | "meta.k8s.io/v1beta1" } | null {
  const want = wantsTable(c.req.header("accept"));
  if (!want) return null;
  const err = includeObjectError(query);
  if (err) throw badRequest(err);
  return { includeObject: includeObjectPolicy(query), apiVersion: want.version === "v1" ? "meta.k8s.io/v1" : "meta.k8s.io/v1beta1" };
}

function returnsObjectOnDelete(info: ResourceInfo): boolean {
  return info.resource === "pods" || info.resource === "namespaces" || info.resource === "services";
}

async function handleResource(c: Context<App>, group: string, version: string, rest: string): Promise<Response> {
  const p = parsePath(group, version, rest);
  const query = new URL(c.req.url).searchParams;
  const env = c.env;
  const ctx: Ctx = {
    store: RemoteStore.forCluster(env.STORE, env.CLUSTER_NAME || "default"),
    now: () => new Date(),
    services: { cidr: env.SERVICE_CIDR, nodePorts: env.SERVICE_NODE_PORT_RANGE },
  };
  await ensureBootstrap(ctx);
  const method = c.req.method;
  const t: Target = { info: p.info, namespace: p.namespace, name: p.name };
  if (p.sub && CONNECT_SUBRESOURCES.has(p.sub))
    return handleConnect(env, ctx, c.req.raw, t, p.sub, p.proxyPath, (pr) => c.executionCtx.waitUntil(pr));

  if (p.name === undefined) {
    switch (method) {
      case "GET":
        if (p.watchPath || query.get("watch") === "true" || query.get("watch") === "1") {
          const table = tableRequest(c, query);
          return watchResponse(ctx, t, query, {
            bookmarkIntervalMs: intVar(env.WATCH_BOOKMARK_SECONDS, 60) * 1000,
            defaultTimeoutSeconds: 1800 + Math.floor(Math.random() * 1800),
            render: table
              ? (objectJSON, first) =>
                  JSON.stringify(toTable(p.info.resource, [JSON.parse(objectJSON)], new Date(), { ...table, noHeaders: !first }))
              : undefined,
          });
        }
        {
          const list = await listJSON(ctx, t, query);
          const table = tableRequest(c, query);
          if (!table) return json(list);
          const parsed = JSON.parse(list);
          return json(toTable(p.info.resource, parsed.items, new Date(), { ...table, listMeta: parsed.metadata }));
        }
      case "POST": {
        if (p.info.namespaced && !p.namespace) throw methodNotAllowed();
        const obj = await create(ctx, t, await readBody(c), { dryRun: dryRunOf(query), fieldManager: managerOf(c, query) });
        return json(obj, 201);
      }
      case "DELETE": {
        const opts = parseDeleteOptions(await readBody(c, { optional: true }), query);
        return json(await removeCollection(ctx, t, query, opts, dryRunOf(query)));
      }
      default:
        throw methodNotAllowed();
    }
  }

  const dryRun = dryRunOf(query);
  const fieldManager = managerOf(c, query);
  const force = query.get("force");
  const isApply = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase() === APPLY_PATCH;
  if (force !== null && !(method === "PATCH" && isApply)) {
    throw new ApiError(422, "Invalid", "force: Forbidden: may not be specified for non-apply patch", {
      causes: [{ reason: "FieldValueForbidden", message: "Forbidden: may not be specified for non-apply patch", field: "force" }],
    });
  }
  if (p.sub === "binding") {
    if (method !== "POST") throw methodNotAllowed();
    return json(await bind(ctx, t, await readBody(c), { dryRun, fieldManager }), 201);
  }
  if (p.sub === "scale") {
    switch (method) {
      case "GET":
        return json(await getScale(ctx, t));
      case "PUT":
        return json(await updateScale(ctx, t, { put: await readBody(c) }, { dryRun, fieldManager }));
      case "PATCH": {
        const type = patchTypeOf(c.req.header("content-type"));
        if (!type) throw unsupportedMediaType(c.req.header("content-type") ?? "");
        return json(await updateScale(ctx, t, { patchType: type, patch: await readBody(c, { patch: true }) }, { dryRun, fieldManager }));
      }
      default:
        throw methodNotAllowed();
    }
  }
  if (p.sub === "finalize") {
    if (method !== "PUT") throw methodNotAllowed();
    // Namespace finalize: only spec.finalizers may change.
    const body = (await readBody(c)) as Record<string, any>;
    const res = await patch(ctx, t, "merge", { spec: { finalizers: body?.spec?.finalizers ?? [] } }, { dryRun });
    return json(res);
  }
  const sub = p.sub; // undefined or "status"
  switch (method) {
    case "GET": {
      const obj = await getJSON(ctx, t, query);
      const table = tableRequest(c, query);
      return json(table ? toTable(p.info.resource, [JSON.parse(obj)], new Date(), table) : obj);
    }
    case "PUT": {
      const { obj, created } = await update(ctx, t, await readBody(c), { dryRun, subresource: sub, fieldManager });
      return json(obj, created ? 201 : 200);
    }
    case "PATCH": {
      if (isApply) {
        const { obj, created } = await apply(ctx, t, await readBody(c, { apply: true }), {
          dryRun,
          subresource: sub,
          fieldManager: query.get("fieldManager") ?? undefined,
          force: force === "true" || force === "1",
        });
        return json(obj, created ? 201 : 200);
      }
      const type = patchTypeOf(c.req.header("content-type"));
      if (!type) throw unsupportedMediaType(c.req.header("content-type") ?? "");
      return json(await patch(ctx, t, type, await readBody(c, { patch: true }), { dryRun, subresource: sub, fieldManager }));
    }
    case "DELETE": {
      if (sub) throw methodNotAllowed();
      const opts = parseDeleteOptions(await readBody(c, { optional: true }), query);
      const { obj, gone } = await remove(ctx, t, opts, dryRun);
      if (gone && !returnsObjectOnDelete(p.info)) {
        return json({
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Success",
          details: { name: t.name, group: p.info.group, kind: p.info.resource, uid: obj.metadata.uid },
        });
      }
      // kube-apiserver answers 200 for a graceful or finalizer-held deletion too.
      return json(obj, 200);
    }
    default:
      throw methodNotAllowed();
  }
}

export function createApp(): Hono<App> {
  const app = new Hono<App>();

  app.onError((err) => {
    if (err instanceof ApiError) return statusResponse(err);
    console.error("unhandled error", err);
    return statusResponse(internal(err instanceof Error ? err.message : String(err)));
  });
  app.notFound(() => statusResponse(new ApiError(404, "NotFound", "the server could not find the requested resource")));

  // Public endpoints, as system:public-info-viewer allows in Kubernetes.
  app.get("/version", () => json(SERVER_VERSION));
  for (const p of ["/healthz", "/livez", "/readyz"]) app.get(p, () => new Response("ok", { headers: { "content-type": "text/plain" } }));

  // Authentication and authorization (auth.ts): 401 / 403 Status before any route below.
  app.use("*", authMiddleware);
  mountOpenAPI(app); // /openapi/v2 (JSON or protobuf, as kubectl asks) and /openapi/v3

  app.get("/api", (c) => {
    const agg = wantsAggregated(c.req.header("accept"));
    return agg ? new Response(JSON.stringify(aggregatedDiscovery(true, agg)), { headers: { "content-type": agg } }) : json(apiVersions());
  });
  app.get("/api/v1", () => json(apiResourceList("", "v1")));
  app.get("/apis", (c) => {
    const agg = wantsAggregated(c.req.header("accept"));
    return agg ? new Response(JSON.stringify(aggregatedDiscovery(false, agg)), { headers: { "content-type": agg } }) : json(apiGroupList());
  });
  app.get("/apis/:group", (c) => {
    const doc = apiGroupDoc(c.req.param("group"));
    if (!doc) throw notFound({ group: "", resource: "groups", name: c.req.param("group") });
    return json(doc);
  });
  app.get("/apis/:group/:version", (c) => {
    const doc = apiResourceList(c.req.param("group"), c.req.param("version"));
    if (!doc) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    return json(doc);
  });
  registerAuthRoutes(app); // TokenRequest, access/subject reviews, NodeCredential
  app.all("/api/v1/*", (c) => handleResource(c, "", "v1", c.req.path.slice("/api/v1/".length)));
  app.all("/apis/:group/:version/*", (c) => {
    const { group, version } = c.req.param();
    return handleResource(c, group, version, c.req.path.slice(`/apis/${group}/${version}/`.length));
  });
  return app;
}
