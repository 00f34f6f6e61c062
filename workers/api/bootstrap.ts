// The namespaces every cluster has from the start (default, kube-system, kube-public,
// kube-node-lease) and the built-in RBAC objects (rbac-bootstrap.ts). Ensured once per
// Worker isolate before its first request; a failed attempt is retried on the next request.

import { ApiError } from "../shared/errors.ts";
import { lookupResource } from "../shared/resources.ts";
import { ensureBuiltinRBAC } from "./rbac-bootstrap.ts";
import { type Ctx, create } from "./registry.ts";

export const SYSTEM_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

let done: Promise<void> | null = null;

async function bootstrap(ctx: Ctx): Promise<void> {
  const info = lookupResource("", "v1", "namespaces")!;
  const existing = await ctx.store.list("/registry/core/namespaces/");
  const have = new Set(existing.items.map((kv) => kv.key.slice("/registry/core/namespaces/".length)));
  for (const name of SYSTEM_NAMESPACES) {
    if (have.has(name)) continue;
    try {
      await create(ctx, { info }, { metadata: { name } }, { dryRun: false });
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === "AlreadyExists")) throw e;
    }
  }
  await ensureBuiltinRBAC(ctx);
}

export function ensureBootstrap(ctx: Ctx): Promise<void> {
  if (!done) {
    done = bootstrap(ctx).catch((e) => {
      done = null;
      throw e;
    });
  }
  return done;
}
