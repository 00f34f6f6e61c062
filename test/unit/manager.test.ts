// The controller manager's host logic over the in-memory store, with a moved clock.

import { describe, expect, it } from "vitest";
import { ControllerManager } from "../../durable-objects/controllers/manager.ts";
import { MemoryStore } from "../../durable-objects/store/memory.ts";
import { create } from "../../workers/api/registry.ts";
import { lookupResource } from "../../workers/shared/resources.ts";

const R = (g: string, r: string) => lookupResource(g, "v1", r)!;

describe("ControllerManager", () => {
  it("gives nodes a full grace period after the manager starts before marking them Unknown", async () => {
    let now = new Date("2026-11-26T12:00:00Z");
    const clock = () => now;
    const store = new MemoryStore(() => now.getTime());
    const ctx = { store, now: clock };
    const stale = "2026-11-26T11:00:00.000000Z"; // an hour old: the control plane was down
    await create(ctx, { info: R("", "namespaces") }, { metadata: { name: "kube-node-lease" } }, { dryRun: false });
    await create(
      ctx,
      { info: R("", "nodes") },
      { metadata: { name: "n1" }, status: { conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: "2026-11-26T11:00:00Z" }] } },
      { dryRun: false },
    );
    await create(
      ctx,
      { info: R("coordination.k8s.io", "leases"), namespace: "kube-node-lease" },
      { metadata: { name: "n1" }, spec: { holderIdentity: "n1", renewTime: stale } },
      { dryRun: false },
    );
    const m = new ControllerManager(store, clock, { node: { gracePeriodMs: 40_000 } });
    const ready = async () =>
      JSON.parse((await store.get("/registry/core/nodes/n1"))!.value).status.conditions.find((c: any) => c.type === "Ready").status;
    await m.sync();
    await m.runReady();
    expect(await ready()).toBe("True");
    now = new Date(now.getTime() + 41_000);
    await m.sync(true);
    for (let i = 0; i < 3; i++) {
      await m.runReady();
      await m.sync();
    }
    expect(await ready()).toBe("Unknown");
  });
});
