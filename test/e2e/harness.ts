// Shared helpers for the end-to-end tests: start a control plane on a fresh state dir,
// restart it on the same state dir and port, and talk to it with plain fetch.

import * as fs from "node:fs";
import * as os from "node:os";
import { type ControlPlane, startControlPlane } from "../../scripts/control-plane.ts";

export type Json = Record<string, any>;

export function tempStateDir(): string {
  return fs.mkdtempSync(os.tmpdir() + "/kf-");
}

export function removeStateDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface StartOptions {
  stateDir: string;
  /** 0 (default) picks a free loopback port. */
  port?: number;
  vars?: Record<string, string>;
  /** Serve HTTPS with the self-signed certificate kept in the state dir. */
  tls?: boolean;
}

export async function start(opts: StartOptions): Promise<ControlPlane> {
  return startControlPlane({
    stateDir: opts.stateDir,
    host: "127.0.0.1",
    port: opts.port ?? 0,
    vars: opts.vars,
    cronIntervalMs: 0,
    tls: opts.tls,
  });
}

export function portOf(cp: ControlPlane): number {
  return Number(new URL(cp.url).port);
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: Json;
  text: string;
}

/** One HTTP request to the API with the admin token (or the given authorization). */
export async function api(
  cp: { url: string; token: string },
  method: string,
  path: string,
  body?: unknown,
  opts: { contentType?: string; authorization?: string | null } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { accept: "application/json" };
  const auth = opts.authorization === undefined ? `Bearer ${cp.token}` : opts.authorization;
  if (auth !== null) headers.authorization = auth;
  if (body !== undefined) headers["content-type"] = opts.contentType ?? "application/json";
  const res = await fetch(cp.url + path, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Json = {};
  try {
    parsed = text ? (JSON.parse(text) as Json) : {};
  } catch {
    parsed = { unparsed: text };
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Like api() but fails unless the status is one of `expected`. */
export async function must(
  cp: { url: string; token: string },
  method: string,
  path: string,
  body?: unknown,
  expected: number[] = [200, 201],
  contentType?: string,
): Promise<Json> {
  const r = await api(cp, method, path, body, { contentType });
  if (!expected.includes(r.status)) throw new Error(`${method} ${path}: expected ${expected.join("/")}, got ${r.status}: ${r.text}`);
  return r.body;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls cond until it is truthy or the timeout passes (then throws with what). */
export async function waitFor<T>(what: string, cond: () => T | Promise<T>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function rv(obj: Json): number {
  return Number(obj.metadata.resourceVersion);
}
