// Server-side printing for kubectl: Accept: application/json;as=Table;v=v1;g=meta.k8s.io.

import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, BASE, freshNamespace, newPod, readEvents, TOKEN } from "./helpers.ts";

const KUBECTL_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

describe("Table output", () => {
  it("lists pods as a Table with kubectl's columns", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("web"));
    const r = await api("GET", `/api/v1/namespaces/${ns}/pods`, undefined, { headers: { accept: KUBECTL_ACCEPT } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ kind: "Table", apiVersion: "meta.k8s.io/v1" });
    expect(r.body.columnDefinitions.map((c: any) => c.name).slice(0, 5)).toEqual(["Name", "Ready", "Status", "Restarts", "Age"]);
    expect(r.body.rows).toHaveLength(1);
    expect(r.body.rows[0].cells.slice(0, 4)).toEqual(["web", "0/1", "Pending", "0"]);
    expect(r.body.rows[0].object).toMatchObject({ kind: "PartialObjectMetadata", metadata: { name: "web" } });
    expect(r.body.metadata.resourceVersion).toBeTruthy();
  });

  it("renders a single object and keeps plain JSON for plain Accept", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("web"));
    const t = await api("GET", `/api/v1/namespaces/${ns}/pods/web`, undefined, { headers: { accept: KUBECTL_ACCEPT } });
    expect(t.body.kind).toBe("Table");
    const plain = await api("GET", `/api/v1/namespaces/${ns}/pods/web`, undefined, { headers: { accept: "application/json" } });
    expect(plain.body.kind).toBe("Pod");
    const bad = await api("GET", `/api/v1/namespaces/${ns}/pods?includeObject=Bogus`, undefined, { headers: { accept: KUBECTL_ACCEPT } });
    expect(bad.status).toBe(400);
  });

  it("streams watch events as one-row Tables, with column definitions only first", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("a"));
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("b"));
    const res = await SELF.fetch(`${BASE}/api/v1/namespaces/${ns}/pods?watch=true`, {
      headers: { authorization: `Bearer ${TOKEN}`, accept: KUBECTL_ACCEPT },
    });
    const evs = await readEvents(res, 2);
    expect(evs.map((e) => e.object.kind)).toEqual(["Table", "Table"]);
    expect(evs[0].object.columnDefinitions.length).toBeGreaterThan(0);
    expect(evs[1].object.columnDefinitions).toBeNull();
    expect(evs.map((e) => e.object.rows[0].cells[0])).toEqual(["a", "b"]);
  });
});
