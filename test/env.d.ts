// The Worker's bindings as seen by tests running inside workerd (cloudflare:test env).
import type { Env as WorkerEnv } from "../workers/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
  }
}
