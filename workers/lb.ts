// The edge load balancer's data path (CLOUD_PROVIDER=edge): public traffic to a Service
// of type LoadBalancer, at /lb/<namespace>/<service>/... on the Worker (and, with
// EDGE_LB_DOMAIN, at the host <service>.<namespace>.<EDGE_LB_DOMAIN>), goes to one of
// its ready endpoints through the endpoint's node tunnel. No Kubernetes authentication:
// a LoadBalancer Service is public by definition. The service controller
// (durable-objects/controllers/cloud/) only publishes where this is served.
//
// Called from workers/index.ts before the API app; returns undefined for requests that
// are not load-balancer traffic (which it also uses to learn the control plane's public
// origin for the controllers, when PUBLIC_HOSTNAME is not set).

import { RemoteStore } from "../durable-objects/store/remote.ts";
import { NODE_UNAVAILABLE_HEADER, openNodeStream } from "../durable-objects/tunnel/client.ts";
import { decodeKV } from "./api/codec.ts";
import type { Env } from "./env.ts";
import { lookupResource, objectKey } from "./shared/resources.ts";
import type { StreamHeader } from "./shared/tunnel.ts";

type Obj = Record<string, any>;

const SERVICES = lookupResource("", "v1", "services")!;
const ENDPOINTS = lookupResource("", "v1", "endpoints")!;
/** How long an isolate reuses a Service and its Endpoints (ms). */
const CACHE_MS = 1000;

/** RFC 9110 §7.6.1 connection-specific fields, plus what must not reach the backend. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "x-kubeflare-stream",
]);
/** The WebSocket handshake's own fields: the agent's client makes its own handshake. */
const WS_HANDSHAKE = new Set(["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"]);

export interface LBTarget {
  namespace: string;
  service: string;
  /** The path for the backend, the prefix stripped ("/" at least), query included. */
  path: string;
  /** The stripped prefix ("" in host mode). */
  prefix: string;
}

/**
 * Whether a URL is load-balancer traffic, and for which Service: /lb/<ns>/<svc>/rest
 * (a bare /lb/<ns>/<svc> is redirected by the caller), or host <svc>.<ns>.<lbDomain>.
 * "redirect" when only the trailing slash is missing.
 */
export function matchLB(url: URL, lbDomain: string | undefined): LBTarget | "redirect" | undefined {
  const domain = lbDomain
    ?.trim()
    .replace(/^\.+|\.+$/g, "")
    .toLowerCase();
  const host = url.hostname.toLowerCase();
  if (domain && host.endsWith(`.${domain}`)) {
    const labels = host.slice(0, -domain.length - 1).split(".");
    if (labels.length === 2 && labels.every((l) => l !== "")) {
      return { service: labels[0], namespace: labels[1], path: url.pathname + url.search, prefix: "" };
    }
  }
  const m = /^\/lb\/([^/]+)\/([^/]+)(\/.*)?$/.exec(url.pathname);
  if (!m) return undefined;
  if (m[3] === undefined) return "redirect";
  const namespace = decodeURIComponent(m[1]);
  const service = decodeURIComponent(m[2]);
  return { namespace, service, path: m[3] + url.search, prefix: `/lb/${m[1]}/${m[2]}` };
}

export interface Backend {
  ip: string;
  port: number;
  nodeName: string;
}

/**
 * The ready endpoints of a Service's first port: addresses (not notReadyAddresses) that
 * name their node, with the Endpoints port of the same name as the Service's first
 * port (the only port when the service port has no name).
 */
export function backendsOf(svc: Obj, endpoints: Obj | undefined): Backend[] {
  const sp = Array.isArray(svc.spec?.ports) ? svc.spec.ports[0] : undefined;
  if (!sp || !Array.isArray(endpoints?.subsets)) return [];
  const out: Backend[] = [];
  for (const subset of endpoints.subsets) {
    const ports: Obj[] = Array.isArray(subset?.ports) ? subset.ports : [];
    const port = sp.name ? ports.find((p) => p?.name === sp.name) : ports.length === 1 ? ports[0] : ports.find((p) => !p?.name);
    if (typeof port?.port !== "number" || (port.protocol && port.protocol !== "TCP")) continue;
    for (const a of Array.isArray(subset.addresses) ? subset.addresses : []) {
      if (typeof a?.ip === "string" && typeof a.nodeName === "string" && a.nodeName !== "") {
        out.push({ ip: a.ip, port: port.port, nodeName: a.nodeName });
      }
    }
  }
  return out;
}

/** The headers the backend gets: hop-by-hop dropped, X-Forwarded-* added. */
export function forwardHeaders(request: Request, target: LBTarget, websocket: boolean): [string, string][] {
  const url = new URL(request.url);
  const connectionListed = new Set(
    (request.headers.get("connection") ?? "")
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: [string, string][] = [];
  for (const [k, v] of request.headers) {
    const key = k.toLowerCase();
    if (HOP_BY_HOP.has(key) || connectionListed.has(key) || key.startsWith("x-forwarded-")) continue;
    if (websocket && WS_HANDSHAKE.has(key)) continue;
    out.push([key, v]);
  }
  const client = request.headers.get("cf-connecting-ip");
  const prior = request.headers.get("x-forwarded-for");
  const xff = [prior, client].filter(Boolean).join(", ");
  if (xff) out.push(["x-forwarded-for", xff]);
  out.push(["x-forwarded-proto", url.protocol.replace(/:$/, "")]);
  out.push(["x-forwarded-host", url.host]);
  if (target.prefix) out.push(["x-forwarded-prefix", target.prefix]);
  return out;
}

function text(status: number, body: string): Response {
  return new Response(`${body}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

// ------------------------------------------------------------------ per isolate

const cache = new Map<string, { at: number; svc: Obj | undefined; ep: Obj | undefined }>();
const turns = new Map<string, number>();
const observed = new Set<string>();

async function lookup(env: Env, ns: string, name: string): Promise<{ svc: Obj | undefined; ep: Obj | undefined }> {
  const k = `${ns}/${name}`;
  const hit = cache.get(k);
  if (hit && Date.now() - hit.at < CACHE_MS) return hit;
  const store = RemoteStore.forCluster(env.STORE, env.CLUSTER_NAME || "default");
  const [s, e] = await Promise.all([store.get(objectKey(SERVICES, ns, name)), store.get(objectKey(ENDPOINTS, ns, name))]);
  const v = { at: Date.now(), svc: s ? decodeKV(s) : undefined, ep: e ? decodeKV(e) : undefined };
  if (cache.size > 1000) cache.clear();
  cache.set(k, v);
  return v;
}

/** Tells the controllers (once per isolate and origin) where the API is reached. */
function observeOrigin(url: URL, env: Env, ctx: ExecutionContext): void {
  if (env.PUBLIC_HOSTNAME || observed.has(url.origin)) return;
  observed.add(url.origin);
  const stub = env.CONTROLLERS.get(env.CONTROLLERS.idFromName(env.CLUSTER_NAME || "default"));
  ctx.waitUntil(
    stub.observeOrigin(url.origin).catch((e: unknown) => {
      observed.delete(url.origin);
      console.warn(`controller manager did not take the public origin: ${String(e)}`);
    }),
  );
}

/**
 * Serves load-balancer traffic; undefined for any other request (the API's). Answers
 * 404 (no such LoadBalancer Service, or load balancers are off), 503 (no ready
 * endpoint), or whatever the node tunnel answers (the backend's response, a 101
 * WebSocket bridge, or a Status when the node is not connected).
 */
export function serveLoadBalancer(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> | undefined {
  const url = new URL(request.url);
  const target = matchLB(url, env.EDGE_LB_DOMAIN);
  if (!target) {
    if ((env.CLOUD_PROVIDER || "edge") === "edge") observeOrigin(url, env, ctx);
    return undefined;
  }
  if (target === "redirect") {
    return Promise.resolve(new Response(null, { status: 308, headers: { location: `${url.pathname}/${url.search}` } }));
  }
  return forward(request, env, target, (p) => ctx.waitUntil(p));
}

async function forward(request: Request, env: Env, target: LBTarget, waitUntil: (p: Promise<unknown>) => void): Promise<Response> {
  const name = `${target.namespace}/${target.service}`;
  if ((env.CLOUD_PROVIDER || "edge") !== "edge") return text(404, `load balancers are off (CLOUD_PROVIDER=${env.CLOUD_PROVIDER})`);
  const { svc, ep } = await lookup(env, target.namespace, target.service);
  if (svc?.spec?.type !== "LoadBalancer" || (svc.spec?.loadBalancerClass ?? "") !== "") {
    return text(404, `no LoadBalancer Service ${name}`);
  }
  const backends = backendsOf(svc, ep);
  if (backends.length === 0) return text(503, `Service ${name} has no ready endpoints`);
  const turn = turns.get(name) ?? 0;
  turns.set(name, turn + 1);
  const websocket = (request.headers.get("upgrade") ?? "").toLowerCase() === "websocket";
  const headers = forwardHeaders(request, target, websocket);
  // A request without a body can go to the next endpoint when a node is not connected.
  const retryable = websocket || request.body === null;
  const tries = retryable ? backends.length : 1;
  let res: Response | undefined;
  for (let i = 0; i < tries; i++) {
    const b = backends[(turn + i) % backends.length];
    try {
      if (websocket) {
        const protocols = (request.headers.get("sec-websocket-protocol") ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        const header: StreamHeader = { kind: "websocket", ip: b.ip, port: b.port, path: target.path, headers, protocols };
        // No protocol list for the tunnel: the backend picks (the agent's reply carries it).
        res = await openNodeStream(env, b.nodeName, header, request);
      } else {
        const header: StreamHeader = { kind: "http", ip: b.ip, port: b.port, method: request.method, path: target.path, headers };
        // waitUntil: a client that goes away mid-body has its stream dropped on the node too.
        res = await openNodeStream(env, b.nodeName, header, request, undefined, waitUntil);
      }
    } catch (e) {
      res = text(502, `Service ${name}: node ${b.nodeName} did not answer: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    if (!res.headers.has(NODE_UNAVAILABLE_HEADER)) return res;
  }
  return res!;
}
