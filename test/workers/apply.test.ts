// Server-side apply through the API: managedFields, conflicts between managers, force.

import { describe, expect, it } from "vitest";
import { api, freshNamespace, newDeployment } from "./helpers.ts";

const APPLY = { contentType: "application/apply-patch+yaml" };

describe("server-side apply", () => {
  it("creates with managedFields, conflicts with another manager, and lets force take over", async () => {
    const ns = await freshNamespace();
    const path = `/apis/apps/v1/namespaces/${ns}/deployments/web`;
    const created = await api("PATCH", `${path}?fieldManager=alice`, newDeployment("web", 2), APPLY);
    expect(created.status).toBe(201);
    expect(created.body.metadata.managedFields).toEqual([
      expect.objectContaining({ manager: "alice", operation: "Apply", apiVersion: "apps/v1", fieldsType: "FieldsV1" }),
    ]);
    const bob = newDeployment("web", 5);
    const conflict = await api("PATCH", `${path}?fieldManager=bob`, bob, APPLY);
    expect(conflict.status).toBe(409);
    expect(conflict.body.reason).toBe("Conflict");
    expect(conflict.body.message).toContain('conflict with "alice"');
    expect(conflict.body.details.causes).toEqual(
      expect.arrayContaining([expect.objectContaining({ reason: "FieldManagerConflict", field: ".spec.replicas" })]),
    );
    expect((await api("GET", path)).body.spec.replicas).toBe(2);
    const forced = await api("PATCH", `${path}?fieldManager=bob&force=true`, bob, APPLY);
    expect(forced.status).toBe(200);
    expect(forced.body.spec.replicas).toBe(5);
    expect(forced.body.metadata.managedFields.map((m: any) => m.manager).sort()).toEqual(["alice", "bob"]);
  });

  it("records Update managers for ordinary writes and requires a fieldManager for apply", async () => {
    const ns = await freshNamespace();
    const c = await api("POST", `/api/v1/namespaces/${ns}/configmaps?fieldManager=kubectl-create`, {
      metadata: { name: "c" },
      data: { a: "1" },
    });
    expect(c.body.metadata.managedFields).toEqual([expect.objectContaining({ manager: "kubectl-create", operation: "Update" })]);
    const noManager = await api(
      "PATCH",
      `/api/v1/namespaces/${ns}/configmaps/c`,
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" } },
      APPLY,
    );
    expect(noManager.status).toBe(422);
    const forceOnMerge = await api(
      "PATCH",
      `/api/v1/namespaces/${ns}/configmaps/c?force=true`,
      { data: {} },
      { contentType: "application/merge-patch+json" },
    );
    expect(forceOnMerge.status).toBe(422);
  });
});
