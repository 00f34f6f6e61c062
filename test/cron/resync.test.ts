// With every commit notification dropped (no store subscribers in this project), the
// cron resync alone still gets the work done: a missed notification delays, never loses.

import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index.ts";
import { eventually } from "../controllers/cluster.ts";
import { api, freshNamespace, newDeployment } from "../workers/helpers.ts";

describe("cron resync", () => {
  it("heals a dropped notification: the ReplicaSet appears only after the cron runs", async () => {
    const ns = await freshNamespace("cron");
    expect((await api("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, newDeployment("web", 2))).status).toBe(201);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets`)).body.items).toHaveLength(0);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "* * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    const rs = await eventually("a ReplicaSet", async () => {
      const items = (await api("GET", `/apis/apps/v1/namespaces/${ns}/replicasets`)).body.items;
      return items.length === 1 && items[0];
    });
    expect(rs.spec.replicas).toBe(2);
  });
});
