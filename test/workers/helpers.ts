// Helpers for API tests that run inside workerd against the real Worker (SELF) and its
// real SQLite-backed StoreDO.

import { SELF } from "cloudflare:test";

export const TOKEN = "test-admin-token";
export const BASE = "http://kube.test";

export interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

export interface CallOptions {
  contentType?: string;
  token?: string | null;
  raw?: string | Uint8Array;
  headers?: Record<string, string>;
}

/** One API call; the body is sent as JSON unless raw is given. */
export async function api(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? TOKEN}`;
  let payload: string | Uint8Array | undefined;
  if (opts.raw !== undefined) payload = opts.raw;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined) headers["content-type"] = opts.contentType ?? "application/json";
  const res = await SELF.fetch(BASE + path, { method, headers, body: payload });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

let seq = 0;
/** A fresh namespace per test, so tests sharing the cluster store do not interfere. */
export async function freshNamespace(prefix = "t"): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}-${(seq++).toString(36)}`;
  const r = await api("POST", "/api/v1/namespaces", { metadata: { name } });
  if (r.status !== 201) throw new Error(`namespace create failed: ${JSON.stringify(r.body)}`);
  return name;
}

export function newPod(name: string, opts: { labels?: Record<string, string>; image?: string; nodeName?: string } = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: {
      containers: [{ name: "app", image: opts.image ?? "busybox:1.36" }],
      ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
    },
  };
}

export function newConfigMap(name: string, data: Record<string, string> = { k: "v" }, labels?: Record<string, string>) {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, ...(labels ? { labels } : {}) }, data };
}

export function newDeployment(name: string, replicas = 1, image = "nginx:1.27") {
  const labels = { app: name };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: "web", image }] } },
    },
  };
}

/** Reads a watch response's NDJSON events until n arrive or the stream ends. */
export async function readEvents(res: Response, n: number, timeoutMs = 5000): Promise<any[]> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const out: any[] = [];
  let buf = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (out.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const r = await Promise.race([reader.read(), new Promise<"t">((res) => setTimeout(() => res("t"), left))]);
      if (r === "t" || r.done) break;
      buf += dec.decode(r.value, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line) out.push(JSON.parse(line));
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return out;
}

export function watch(path: string): Promise<Response> {
  return SELF.fetch(BASE + path, { headers: { authorization: `Bearer ${TOKEN}` } });
}
