// A small Kubernetes API client for the agent: JSON over HTTP(S) with keep-alive, an
// optional CA for the control plane's certificate, and line-streamed watches. Only
// outbound connections, ever.

import http from "node:http";
import https from "node:https";

export type Obj = Record<string, any>;

export class ApiStatusError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly status: Obj | undefined;
  constructor(code: number, reason: string, message: string, status?: Obj) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.status = status;
  }
}

export interface ClientOptions {
  server: string;
  token?: string;
  /** PEM of the CA that signed the server's certificate. */
  ca?: string;
  insecureSkipTLSVerify?: boolean;
  /** Per-request timeout for non-watch calls. */
  timeoutMs?: number;
  /** Default "kubeflare-agent". */
  userAgent?: string;
}

export interface WatchHandle {
  /** Resolves when the stream ends (server timeout, error, or close()). */
  done: Promise<void>;
  close(): void;
}

export class ApiClient {
  private readonly base: URL;
  private readonly token?: string;
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;
  private readonly timeoutMs: number;
  private readonly userAgent: string;

  constructor(opts: ClientOptions) {
    this.userAgent = opts.userAgent ?? "kubeflare-agent";
    this.base = new URL(opts.server);
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    if (this.base.protocol === "https:") {
      this.mod = https;
      this.agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: opts.ca, rejectUnauthorized: !opts.insecureSkipTLSVerify });
    } else {
      this.mod = http;
      this.agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    }
  }

  private headers(body?: string, contentType = "application/json"): Record<string, string> {
    const h: Record<string, string> = { accept: "application/json", "user-agent": this.userAgent };
    if (this.token) h.authorization = `Bearer ${this.token}`;
    if (body !== undefined) {
      h["content-type"] = contentType;
      h["content-length"] = String(Buffer.byteLength(body));
    }
    return h;
  }

  /** One request; resolves with the parsed JSON body, rejects with ApiStatusError for HTTP errors. */
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<Obj> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = this.mod.request(
        new URL(path, this.base),
        { method, agent: this.agent, headers: this.headers(payload, contentType), timeout: this.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: Obj = {};
            try {
              parsed = text ? JSON.parse(text) : {};
            } catch {
              parsed = { message: text };
            }
            const code = res.statusCode ?? 0;
            if (code >= 200 && code < 300) resolve(parsed);
            else reject(new ApiStatusError(code, parsed.reason ?? "Unknown", parsed.message ?? `HTTP ${code}`, parsed));
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`request timed out after ${this.timeoutMs} ms: ${method} ${path}`)));
      req.on("error", reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  get(path: string): Promise<Obj> {
    return this.request("GET", path);
  }

  /**
   * Streams a watch: onEvent gets each decoded event. An HTTP error before the stream
   * starts rejects `done` with ApiStatusError.
   */
  watch(path: string, onEvent: (ev: { type: string; object: Obj }) => void): WatchHandle {
    let req: http.ClientRequest | undefined;
    let closed = false;
    const done = new Promise<void>((resolve, reject) => {
      req = this.mod.request(new URL(path, this.base), { method: "GET", agent: this.agent, headers: this.headers() }, (res) => {
        const code = res.statusCode ?? 0;
        if (code < 200 || code >= 300) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            let parsed: Obj = {};
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
            } catch {}
            reject(new ApiStatusError(code, parsed.reason ?? "Unknown", parsed.message ?? `HTTP ${code}`, parsed));
          });
          return;
        }
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (!line.trim()) continue;
            try {
              onEvent(JSON.parse(line));
            } catch (e) {
              console.warn(`watch: bad event line: ${String(e)}`);
            }
          }
        });
        res.on("end", () => resolve());
        res.on("error", (e) => (closed ? resolve() : reject(e)));
        res.on("close", () => resolve());
      });
      req.on("error", (e) => (closed ? resolve() : reject(e)));
      req.end();
    });
    return {
      done,
      close() {
        closed = true;
        req?.destroy();
      },
    };
  }

  close(): void {
    this.agent.destroy();
  }
}

export function isStatus(e: unknown, code: number): boolean {
  return e instanceof ApiStatusError && e.code === code;
}
