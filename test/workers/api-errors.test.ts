// Every error is a Kubernetes Status with the right code and reason, and no client
// input causes a 500 or a partial write.

import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RemoteStore } from "../../durable-objects/store/remote.ts";
import { api, freshNamespace, newConfigMap, newDeployment, newPod } from "./helpers.ts";

function expectStatus(r: { status: number; body: any }, code: number, reason: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(code);
  expect(r.body).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason });
  expect(typeof r.body.message).toBe("string");
}

describe("error responses", () => {
  it("401 without a token, with a wrong token, or with a malformed header", async () => {
    expectStatus(await api("GET", "/api/v1/namespaces", undefined, { token: null }), 401, "Unauthorized");
    expectStatus(await api("GET", "/api/v1/namespaces", undefined, { token: "wrong" }), 401, "Unauthorized");
    expectStatus(
      await api("GET", "/api/v1/namespaces", undefined, { token: null, headers: { authorization: "Basic abc" } }),
      401,
      "Unauthorized",
    );
    expect((await api("GET", "/healthz", undefined, { token: null })).status).toBe(200);
  });

  it("400 for unparsable bodies, wrong kinds, and bad query parameters", async () => {
    const ns = await freshNamespace();
    expectStatus(await api("POST", `/api/v1/namespaces/${ns}/configmaps`, undefined, { raw: "{not json" }), 400, "BadRequest");
    expectStatus(await api("POST", `/api/v1/namespaces/${ns}/configmaps`, [1, 2]), 400, "BadRequest");
    expectStatus(await api("POST", `/api/v1/namespaces/${ns}/configmaps`, "a string"), 400, "BadRequest");
    expectStatus(await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { kind: "Pod", metadata: { name: "x" } }), 400, "BadRequest");
    expectStatus(
      await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { apiVersion: "apps/v1", metadata: { name: "x" } }),
      400,
      "BadRequest",
    );
    expectStatus(
      await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "x", namespace: "other" } }),
      400,
      "BadRequest",
    );
    expectStatus(await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: "x" }), 400, "BadRequest");
    expectStatus(await api("GET", `/api/v1/namespaces/${ns}/configmaps?labelSelector=${encodeURIComponent("a in (")}`), 400, "BadRequest");
    expectStatus(await api("GET", `/api/v1/namespaces/${ns}/pods?fieldSelector=spec.bogus%3D1`), 400, "BadRequest");
    expectStatus(await api("GET", `/api/v1/namespaces/${ns}/configmaps?limit=-1`), 400, "BadRequest");
    expectStatus(await api("GET", `/api/v1/namespaces/${ns}/configmaps?continue=garbage`), 400, "BadRequest");
    expectStatus(await api("GET", `/api/v1/namespaces/${ns}/configmaps?resourceVersion=abc`), 400, "BadRequest");
    expectStatus(await api("GET", `/api/v1/namespaces/${ns}/configmaps?watch=true&timeoutSeconds=x`), 400, "BadRequest");
    expectStatus(await api("POST", `/api/v1/namespaces/${ns}/configmaps?dryRun=Some`, newConfigMap("d")), 400, "BadRequest");
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x"));
    expectStatus(
      await api("PATCH", `/api/v1/namespaces/${ns}/configmaps/x`, { op: "add" }, { contentType: "application/json-patch+json" }),
      400,
      "BadRequest",
    );
    expectStatus(await api("PUT", `/api/v1/namespaces/${ns}/configmaps/x`, newConfigMap("y")), 400, "BadRequest");
  });

  it("404 for unknown paths, resources and objects", async () => {
    expectStatus(await api("GET", "/api/v1/widgets"), 404, "NotFound");
    expectStatus(await api("GET", "/apis/nope.example.com/v1/things"), 404, "NotFound");
    expectStatus(await api("GET", "/nothing/here"), 404, "NotFound");
    expectStatus(await api("GET", "/api/v1/namespaces/default/configmaps/a/b/c"), 404, "NotFound");
    expectStatus(await api("GET", "/api/v1/namespaces/default/configmaps/a/status"), 404, "NotFound");
    const missing = await api("GET", "/api/v1/namespaces/default/configmaps/does-not-exist");
    expectStatus(missing, 404, "NotFound");
    expect(missing.body.message).toBe('configmaps "does-not-exist" not found');
    expect(missing.body.details).toMatchObject({ name: "does-not-exist", kind: "configmaps" });
    const dep = await api("GET", "/apis/apps/v1/namespaces/default/deployments/none");
    expect(dep.body.message).toBe('deployments.apps "none" not found');
  });

  it("405 for verbs a path does not take", async () => {
    expectStatus(await api("PUT", "/api/v1/namespaces/default/configmaps", newConfigMap("x")), 405, "MethodNotAllowed");
    expectStatus(await api("POST", "/api/v1/namespaces/default/configmaps/x", newConfigMap("x")), 405, "MethodNotAllowed");
    expectStatus(await api("DELETE", "/api/v1/namespaces/default/pods/x/status"), 405, "MethodNotAllowed");
    expectStatus(await api("GET", "/api/v1/namespaces/default/pods/x/binding"), 405, "MethodNotAllowed");
  });

  it("409 AlreadyExists for a duplicate create", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("dup"));
    const r = await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("dup"));
    expectStatus(r, 409, "AlreadyExists");
    expect(r.body.message).toBe('configmaps "dup" already exists');
  });

  it("413 for bodies over 1.5 MiB, before anything is stored", async () => {
    const ns = await freshNamespace();
    const big = newConfigMap("big", { blob: "x".repeat(1.6 * 1024 * 1024) });
    expectStatus(await api("POST", `/api/v1/namespaces/${ns}/configmaps`, big), 413, "RequestEntityTooLarge");
    expect((await api("GET", `/api/v1/namespaces/${ns}/configmaps/big`)).status).toBe(404);
  });

  it("415 for unsupported content types", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x"));
    expectStatus(
      await api("PATCH", `/api/v1/namespaces/${ns}/configmaps/x`, { data: {} }, { contentType: "application/json" }),
      415,
      "UnsupportedMediaType",
    );
    expectStatus(
      await api("POST", `/api/v1/namespaces/${ns}/configmaps`, undefined, { raw: "x", contentType: "text/plain" }),
      415,
      "UnsupportedMediaType",
    );
  });

  it("422 Invalid with field causes for bad names, labels and required fields", async () => {
    const ns = await freshNamespace();
    const badName = await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("Bad_Name"));
    expectStatus(badName, 422, "Invalid");
    expect(badName.body.details.causes).toEqual([expect.objectContaining({ field: "metadata.name", reason: "FieldValueInvalid" })]);
    const badLabel = await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("ok", {}, { "bad key!": "v" }));
    expectStatus(badLabel, 422, "Invalid");
    expect(badLabel.body.details.causes[0].field).toMatch(/^metadata\.labels/);
    const pod = newPod("p") as any;
    pod.spec.containers = [{ name: "" }];
    const noImage = await api("POST", `/api/v1/namespaces/${ns}/pods`, pod);
    expectStatus(noImage, 422, "Invalid");
    const fields = noImage.body.details.causes.map((c: any) => c.field);
    expect(fields).toEqual(expect.arrayContaining(["spec.containers[0].name", "spec.containers[0].image"]));
    const noName = await api("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: {} });
    expectStatus(noName, 422, "Invalid");
  });

  it("422 for changes to immutable fields, and the object is unchanged", async () => {
    const ns = await freshNamespace();
    const pod = (await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("p"))).body;
    pod.spec.restartPolicy = "Never";
    const r = await api("PUT", `/api/v1/namespaces/${ns}/pods/p`, pod);
    expectStatus(r, 422, "Invalid");
    expect((await api("GET", `/api/v1/namespaces/${ns}/pods/p`)).body.spec.restartPolicy).toBe("Always");
    await api("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, newDeployment("d"));
    const sel = await api(
      "PATCH",
      `/apis/apps/v1/namespaces/${ns}/deployments/d`,
      { spec: { selector: { matchLabels: { app: "other" } }, template: { metadata: { labels: { app: "other" } } } } },
      { contentType: "application/merge-patch+json" },
    );
    expectStatus(sel, 422, "Invalid");
    expect(sel.body.details.causes.map((c: any) => c.field)).toContain("spec.selector");
  });

  it("410 Expired for a continue token below the compacted revision", async () => {
    const ns = await freshNamespace();
    for (let i = 0; i < 3; i++) await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap(`c${i}`));
    const p1 = await api("GET", `/api/v1/namespaces/${ns}/configmaps?limit=1`);
    // Later writes, then compaction up to just below the newest revision.
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("later"));
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("later2"));
    await RemoteStore.forCluster(env.STORE, "default").compact({ minAgeMs: 0, minRevisions: 1 });
    const r = await api("GET", `/api/v1/namespaces/${ns}/configmaps?limit=1&continue=${p1.body.metadata.continue}`);
    expectStatus(r, 410, "Expired");
    const exact = await api(
      "GET",
      `/api/v1/namespaces/${ns}/configmaps?resourceVersion=${p1.body.metadata.resourceVersion}&resourceVersionMatch=Exact`,
    );
    expectStatus(exact, 410, "Expired");
  });
});

describe("hostile input", () => {
  const shapes: unknown[] = [
    null,
    0,
    true,
    "s",
    [],
    {},
    { metadata: null },
    { metadata: [] },
    { metadata: { name: 5 } },
    { metadata: { name: "x", labels: "nope" } },
    { metadata: { name: "x", labels: { a: 5 } } },
    { metadata: { name: "x", annotations: [] } },
    { metadata: { name: "x", finalizers: "f" } },
    { metadata: { name: "x", ownerReferences: {} } },
    { metadata: { name: "x" }, spec: null },
    { metadata: { name: "x" }, spec: "s" },
    { metadata: { name: "x" }, spec: { containers: "c" } },
    { metadata: { name: "x" }, spec: { containers: [null, 1, "a"] } },
    { metadata: { name: "x" }, spec: { containers: [{ name: "a", image: "i", ports: "p", env: {}, resources: { limits: { cpu: {} } } }] } },
    { metadata: { name: "x" }, spec: { selector: "s", template: 5, replicas: "3", strategy: { type: 1 } } },
    {
      metadata: { name: "x" },
      spec: { selector: { matchExpressions: [{ key: 1, operator: "Bad" }] }, template: { metadata: { labels: [] } } },
    },
    { metadata: { name: "x" }, spec: { ports: [{ port: "80" }, null], type: {} } },
    { metadata: { name: "x" }, data: [], binaryData: 3, stringData: 5 },
    { metadata: { name: "x" }, data: { "bad key": {} } },
    { metadata: { name: "x" }, subsets: [{ addresses: "a" }] },
    { metadata: { name: "x" }, spec: { taints: [null], unschedulable: "yes" } },
    { metadata: { name: "x", namespace: 7 }, spec: { leaseDurationSeconds: "x" } },
    { metadata: { name: "x".repeat(300) } },
    { metadata: { name: "x", labels: { ["a".repeat(400)]: "b" } } },
    { metadata: { name: "x" }, status: "weird", involvedObject: 3 },
  ];
  const collections = [
    "/api/v1/namespaces",
    "/api/v1/namespaces/NS/pods",
    "/api/v1/nodes",
    "/api/v1/namespaces/NS/services",
    "/api/v1/namespaces/NS/endpoints",
    "/api/v1/namespaces/NS/configmaps",
    "/api/v1/namespaces/NS/secrets",
    "/api/v1/namespaces/NS/events",
    "/api/v1/namespaces/NS/serviceaccounts",
    "/apis/apps/v1/namespaces/NS/deployments",
    "/apis/apps/v1/namespaces/NS/replicasets",
    "/apis/coordination.k8s.io/v1/namespaces/NS/leases",
  ];

  it("never answers 500 to malformed objects on create, update or patch, and writes nothing on error", async () => {
    const ns = await freshNamespace();
    const store = RemoteStore.forCluster(env.STORE, "default");
    for (const coll of collections) {
      const path = coll.replace("NS", ns);
      for (const body of shapes) {
        const before = await store.currentRevision();
        const r = await api("POST", path, body);
        expect(r.status, `POST ${path} ${JSON.stringify(body).slice(0, 200)} → ${JSON.stringify(r.body).slice(0, 300)}`).toBeLessThan(500);
        if (r.status >= 400) {
          expect(r.body.kind).toBe("Status");
          expect(await store.currentRevision()).toBe(before);
        } else {
          await api("DELETE", `${path}/${r.body.metadata.name}?gracePeriodSeconds=0`);
        }
      }
    }
    // Updates and patches against an existing object.
    await api("POST", `/api/v1/namespaces/${ns}/pods`, newPod("target"));
    const podPath = `/api/v1/namespaces/${ns}/pods/target`;
    for (const body of shapes) {
      const before = await store.currentRevision();
      for (const [method, ct] of [
        ["PUT", "application/json"],
        ["PATCH", "application/merge-patch+json"],
        ["PATCH", "application/strategic-merge-patch+json"],
        ["PATCH", "application/json-patch+json"],
      ]) {
        for (const sub of ["", "/status"]) {
          const r = await api(method, podPath + sub, body, { contentType: ct });
          expect(r.status, `${method} ${ct} ${sub} ${JSON.stringify(body)} → ${JSON.stringify(r.body).slice(0, 300)}`).toBeLessThan(500);
          if (r.status >= 400) expect(r.body.kind).toBe("Status");
        }
      }
      void before;
    }
    const pod = await api("GET", podPath);
    expect(pod.status).toBe(200);
    expect(pod.body.spec.containers[0].image).toBe("busybox:1.36");
  });

  it("never answers 500 to malformed JSON patches", async () => {
    const ns = await freshNamespace();
    await api("POST", `/api/v1/namespaces/${ns}/configmaps`, newConfigMap("x"));
    const patches: unknown[] = [
      [{ op: "remove", path: "/metadata" }],
      [{ op: "replace", path: "/metadata/name", value: "y" }],
      [{ op: "add", path: "/kind", value: "Pod" }],
      [{ op: "test", path: "/data/k", value: "nope" }],
      [{ op: "move", from: "/data", path: "/data/x" }],
      [{ op: "add", path: "", value: null }],
      [{ op: "add", path: "", value: [] }],
      [{ op: "copy", from: "/nope", path: "/a" }],
      [{ op: "add", path: "/metadata/uid", value: 5 }],
      [{ op: "replace", path: "/metadata/resourceVersion", value: "abc" }],
    ];
    for (const p of patches) {
      const r = await api("PATCH", `/api/v1/namespaces/${ns}/configmaps/x`, p, { contentType: "application/json-patch+json" });
      expect(r.status, `${JSON.stringify(p)} → ${JSON.stringify(r.body)}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    const cm = await api("GET", `/api/v1/namespaces/${ns}/configmaps/x`);
    expect(cm.body.data).toEqual({ k: "v" });
    expect(cm.body.metadata.name).toBe("x");
  });
});
