// The connect subresources: what kube-apiserver would ask the kubelet for, asked of the
// node's agent through its tunnel instead (durable-objects/tunnel). Here: the checks
// kube-apiserver makes before it dials (the pod exists, is bound, the container is
// valid, the options parse), then one stream to the pod's node.
//
//   GET  pods/log                 HTTP stream (follow, tailLines, sinceSeconds, ...)
//   GET  pods/exec, pods/attach   WebSocket: v5.channel.k8s.io / v4.channel.k8s.io
//   GET  pods/portforward         WebSocket: SPDY/3.1+portforward.k8s.io (kubectl's
//                                 SPDY-over-WebSocket tunnel), v4.channel.k8s.io
//   *    nodes/proxy/<path>       HTTP to the agent itself (healthz, pods, stats)
//   GET  nodes/tunnel             the agent's own WebSocket (only that node may open it)
//
// Authorization ran before (auth.ts): WebSocket GETs of exec/attach/portforward need
// `create`, as in kube 1.31+.

import { connectAgent, openNodeStream } from "../../durable-objects/tunnel/client.ts";
import type { Env } from "../env.ts";
import { ApiError, badRequest, type FieldError, invalid, methodNotAllowed } from "../shared/errors.ts";
import { userOf } from "./auth.ts";
import { systemSecretKey } from "./authn.ts";
import { nodeNameOf } from "./authz.ts";
import type { Obj } from "./codec.ts";
import { NODE_CREDENTIAL_PREFIX } from "./nodes-join.ts";
import { type Ctx, getJSON, type Target } from "./registry.ts";

export const CONNECT_SUBRESOURCES = new Set(["log", "exec", "attach", "portforward", "proxy", "tunnel"]);

/** WebSocket subprotocols served, most preferred first (the client's order decides among them). */
export const EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
export const PORTFORWARD_PROTOCOLS = ["SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io", "portforward.k8s.io"];

function isUpgrade(req: Request): boolean {
  return req.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** The pod (or, for nodes/*, the node) the request names; 404 Status if there is none. */
async function readTarget(ctx: Ctx, t: Target): Promise<Obj> {
  return JSON.parse(await getJSON(ctx, t, new URLSearchParams()));
}

function bool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null || v === "" || v === "false" || v === "0") return false;
  if (v === "true" || v === "1") return true;
  throw badRequest(`${name}: invalid boolean value ${JSON.stringify(v)}`);
}

function int(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  if (!/^-?\d+$/.test(v)) throw badRequest(`${name}: invalid integer value ${JSON.stringify(v)}`);
  return Number(v);
}

/** The container a request means: the named one (any kind), or the only one. */
export function pickContainer(pod: Obj, requested: string | null): string {
  const name = pod.metadata?.name ?? "";
  const regular: string[] = (pod.spec?.containers ?? []).map((c: Obj) => c.name);
  const all = [
    ...regular,
    ...(pod.spec?.initContainers ?? []).map((c: Obj) => c.name),
    ...(pod.spec?.ephemeralContainers ?? []).map((c: Obj) => c.name),
  ];
  if (requested) {
    if (!all.includes(requested)) throw badRequest(`container ${requested} is not valid for pod ${name}`);
    return requested;
  }
  if (regular.length === 1) return regular[0];
  const defaulted = pod.metadata?.annotations?.["kubectl.kubernetes.io/default-container"];
  if (typeof defaulted === "string" && regular.includes(defaulted)) return defaulted;
  throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${regular.join(" ")}]`);
}

function boundNode(pod: Obj): string {
  const node = pod.spec?.nodeName;
  if (!node) throw badRequest(`pod ${pod.metadata?.name} does not have a host assigned`);
  return node;
}

/** PodLogOptions from the query, validated as kube does. */
export function logOptions(q: URLSearchParams, podName: string): Obj {
  const opts: Obj = {
    follow: bool(q, "follow"),
    previous: bool(q, "previous"),
    timestamps: bool(q, "timestamps"),
    tailLines: int(q, "tailLines"),
    limitBytes: int(q, "limitBytes"),
    sinceSeconds: int(q, "sinceSeconds"),
  };
  const errs: FieldError[] = [];
  const sinceTime = q.get("sinceTime");
  if (sinceTime) {
    const t = Date.parse(sinceTime);
    if (Number.isNaN(t) || !/^\d{4}-\d\d-\d\dT/.test(sinceTime))
      throw badRequest(`sinceTime: invalid RFC3339 time ${JSON.stringify(sinceTime)}`);
    opts.sinceTime = new Date(t).toISOString();
  }
  if (opts.tailLines !== undefined && opts.tailLines < 0)
    errs.push({
      field: "tailLines",
      type: "FieldValueInvalid",
      message: `Invalid value: ${opts.tailLines}: must be greater than or equal to 0`,
    });
  if (opts.limitBytes !== undefined && opts.limitBytes < 1)
    errs.push({ field: "limitBytes", type: "FieldValueInvalid", message: `Invalid value: ${opts.limitBytes}: must be greater than 0` });
  if (opts.sinceSeconds !== undefined && opts.sinceSeconds < 1)
    errs.push({ field: "sinceSeconds", type: "FieldValueInvalid", message: `Invalid value: ${opts.sinceSeconds}: must be greater than 0` });
  if (opts.sinceSeconds !== undefined && opts.sinceTime !== undefined) {
    errs.push({ field: "", type: "FieldValueForbidden", message: "at most one of `sinceTime` or `sinceSeconds` may be specified" });
  }
  if (errs.length) throw invalid("PodLogOptions", "", podName, errs);
  for (const k of Object.keys(opts)) if (opts[k] === undefined) delete opts[k];
  return opts;
}

function podRef(pod: Obj): Obj {
  return { namespace: pod.metadata.namespace, pod: pod.metadata.name, uid: pod.metadata.uid };
}

export async function handleConnect(
  env: Env,
  ctx: Ctx,
  req: Request,
  t: Target,
  sub: string,
  proxyPath: string,
  waitUntil?: (p: Promise<unknown>) => void,
): Promise<Response> {
  const q = new URL(req.url).searchParams;
  const method = req.method;
  if (t.info.resource === "nodes") {
    if (sub === "tunnel") {
      if (method !== "GET") throw methodNotAllowed();
      const user = userOf(req);
      if (!user || nodeNameOf(user) !== t.name) {
        throw new ApiError(403, "Forbidden", `only node ${JSON.stringify(t.name)} may open its tunnel`, { name: t.name, kind: "nodes" });
      }
      if (!isUpgrade(req)) throw badRequest("Upgrade request required");
      // The credential as it is now: the tunnel drops the connection once it changes
      // (revoked, or rotated by a new join) — the connection outlives the request's check.
      const cred = await ctx.store.get(systemSecretKey(`${NODE_CREDENTIAL_PREFIX}${t.name}`));
      return connectAgent(env, t.name!, req, cred?.modRevision ?? 0);
    }
    // nodes/proxy: the agent's own endpoints. The node must exist.
    await readTarget(ctx, t);
    const headers: [string, string][] = [];
    req.headers.forEach((v, k) => {
      if (k !== "authorization" && k !== "cookie") headers.push([k, v]);
    });
    return openNodeStream(
      env,
      t.name!,
      { kind: "proxy", method, path: `/${proxyPath}`, query: q.toString(), headers },
      req,
      undefined,
      waitUntil,
    );
  }

  // pods/*
  const pod = await readTarget(ctx, t);
  if (sub === "log") {
    if (method !== "GET") throw methodNotAllowed();
    const opts = logOptions(q, t.name!);
    const container = pickContainer(pod, q.get("container"));
    const node = boundNode(pod);
    return openNodeStream(env, node, { kind: "log", ...podRef(pod), container, ...opts }, req, undefined, waitUntil);
  }
  if (method !== "GET" && method !== "POST") throw methodNotAllowed();
  // kubectl retries a refused WebSocket with SPDY, which a Worker cannot serve: the
  // request's own errors come first, so the retry reports them too.
  const node = boundNode(pod);
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") {
    throw badRequest(
      `cannot ${sub === "portforward" ? "port-forward to" : `${sub} into`} a container in a completed pod; current phase is ${phase}`,
    );
  }
  if (sub === "portforward") {
    const ports: number[] = [];
    for (const p of q.getAll("ports").flatMap((v) => v.split(","))) {
      const n = Number(p.trim());
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw badRequest(`invalid port ${JSON.stringify(p)}`);
      ports.push(n);
    }
    if (!isUpgrade(req)) throw badRequest("Upgrade request required");
    return openNodeStream(
      env,
      node,
      { kind: "portforward", ...podRef(pod), podIP: pod.status?.podIP ?? "", ports },
      req,
      PORTFORWARD_PROTOCOLS,
    );
  }
  // exec / attach
  const streams = { stdin: bool(q, "stdin"), stdout: bool(q, "stdout"), stderr: bool(q, "stderr"), tty: bool(q, "tty") };
  if (!streams.stdin && !streams.stdout && !streams.stderr) throw badRequest("you must specify at least 1 of stdin, stdout, stderr");
  if (streams.tty && streams.stderr) streams.stderr = false; // a terminal has one output stream
  const container = pickContainer(pod, q.get("container"));
  const header: Obj = { kind: sub, ...podRef(pod), container, ...streams };
  if (sub === "exec") {
    const command = q.getAll("command");
    if (command.length === 0) throw badRequest("you must specify at least one command for the container");
    header.command = command;
  }
  if (!isUpgrade(req)) throw badRequest("Upgrade request required");
  return openNodeStream(env, node, header as { kind: string }, req, EXEC_PROTOCOLS);
}
