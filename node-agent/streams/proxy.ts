// nodes/proxy: the agent's own small HTTP surface, served over the tunnel (the agent
// listens on no port). /healthz, /pods (a PodList, as kubelet's /pods), /stats/tunnel
// (the multiplexer's streams with their buffered bytes, and the process's memory).

import type { StreamHandler } from "./types.ts";

const enc = new TextEncoder();

export const proxyHandler: StreamHandler = async (stream, deps) => {
  const h = stream.header as { method?: string; path?: string };
  // The request body (if any) is not needed: drain it so the control plane is not held up.
  void (async () => {
    try {
      for await (const _ of stream);
    } catch {}
  })();
  const send = async (code: number, type: string, body: string) => {
    stream.reply({ code, headers: [["content-type", type]] });
    await stream.write(enc.encode(body));
    stream.end();
  };
  if (h.method !== "GET" && h.method !== "HEAD") return send(405, "text/plain", "method not allowed\n");
  switch ((h.path ?? "/").replace(/\/+$/, "") || "/") {
    case "/healthz":
      return send(200, "text/plain", "ok");
    case "/pods":
      return send(200, "application/json", JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: {}, items: deps.pods() }));
    case "/stats/tunnel":
      return send(200, "application/json", JSON.stringify(deps.stats()));
    default:
      return send(404, "text/plain", `404 page not found: ${h.path}\n`);
  }
};
