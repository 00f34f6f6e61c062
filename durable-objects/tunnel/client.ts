// The Worker's side of the node tunnels: reach a node's NodeTunnelDO and open a stream
// to its agent. The DO answers the request itself: a streamed HTTP response (logs,
// proxied HTTP), a 101 WebSocket bridged to the stream (exec, attach, port-forward,
// proxied WebSockets), or a Kubernetes Status when the node is not connected or the
// agent refused.

import type { Env } from "../../workers/env.ts";
import type { StreamHeader } from "../../workers/shared/tunnel.ts";

/** Header that carries the StreamHeader (JSON) from the Worker to the NodeTunnelDO. */
export const STREAM_HEADER = "x-kubeflare-stream";
/** Response header with the stream id of a streamed body (so the Worker can cancel it). */
export const STREAM_ID_HEADER = "x-kubeflare-stream-id";
/** Header the Worker sets on an agent's tunnel upgrade: the revision of its node credential. */
export const CREDENTIAL_HEADER = "x-kubeflare-credential-revision";
/** Set on the 503 of a node whose agent is not connected (another endpoint may do). */
export const NODE_UNAVAILABLE_HEADER = "x-kubeflare-node-unavailable";
/** Header the Worker sets on an agent's tunnel upgrade: the authenticated node name. */
export const AGENT_HEADER = "x-kubeflare-agent";

/** Hands the agent's authenticated WebSocket upgrade to its node's tunnel. */
export function connectAgent(env: Env, node: string, request: Request, credentialRevision: number): Promise<Response> {
  const headers = new Headers(request.headers);
  headers.delete(STREAM_HEADER);
  headers.set(AGENT_HEADER, node);
  headers.set(CREDENTIAL_HEADER, String(credentialRevision));
  return tunnelFor(env, node).fetch(new Request(request.url, { method: "GET", headers }));
}

export function tunnelFor(env: Env, node: string) {
  return env.TUNNELS.get(env.TUNNELS.idFromName(node));
}

/**
 * Opens a stream of `header.kind` to `node`'s agent for this request. A WebSocket
 * upgrade request is bridged message by message (the DO picks the subprotocol from
 * `protocols`, first the client offered that is in the list); any other request's body
 * goes to the agent and the agent's answer comes back as the response.
 */
export async function openNodeStream(
  env: Env,
  node: string,
  header: StreamHeader,
  request: Request,
  protocols?: string[],
  waitUntil?: (p: Promise<unknown>) => void,
): Promise<Response> {
  const headers = new Headers(request.headers);
  headers.delete(AGENT_HEADER); // only the tunnel route may set it
  headers.delete(CREDENTIAL_HEADER);
  headers.set(STREAM_HEADER, JSON.stringify({ header, protocols: protocols ?? [] }));
  const stub = tunnelFor(env, node);
  const res = await stub.fetch(new Request(request.url, { method: request.method, headers, body: request.body }));
  const id = Number(res.headers.get(STREAM_ID_HEADER));
  if (!res.body || !waitUntil || !id) return res;
  // The runtime does not tell the object when the client of a streamed body goes away;
  // the Worker sees it (its copy fails) and tells the object to drop the stream.
  const { readable, writable } = new IdentityTransformStream();
  waitUntil(
    res.body.pipeTo(writable).catch(async () => {
      await stub.cancel(id).catch(() => {});
    }),
  );
  const out = new Headers(res.headers);
  out.delete(STREAM_ID_HEADER);
  return new Response(readable, { status: res.status, statusText: res.statusText, headers: out });
}
