import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { generate, loadPatchTables, OUTPUT, PATCH_SOURCE, render } from "../../scripts/gen-openapi.ts";
import {
  encodeV2Protobuf,
  handleOpenAPIV2,
  handleOpenAPIV3,
  handleOpenAPIV3Index,
  mountOpenAPI,
  openapiV2,
  openapiV3,
  openapiV3Index,
  servedGroupVersions,
} from "../../workers/api/openapi.ts";
import data from "../../workers/api/openapi-data.json";
import { applyStrategicMergePatch } from "../../workers/shared/patch.ts";
import { apiVersionOf, RESOURCES } from "../../workers/shared/resources.ts";

type Schema = { [key: string]: any };

const defs = (data as unknown as { definitions: Record<string, Schema> }).definitions;
const CORE = "io.k8s.api.core.v1";
const META = "io.k8s.apimachinery.pkg.apis.meta.v1";

function gvkDefinition(group: string, version: string, kind: string): string | undefined {
  return Object.keys(defs).find((name) =>
    (defs[name]["x-kubernetes-group-version-kind"] ?? []).some((g: any) => g.group === group && g.version === version && g.kind === kind),
  );
}

function refsIn(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) refsIn(x, out);
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (k === "$ref" && typeof x === "string") out.push(x);
      else refsIn(x, out);
    }
  }
  return out;
}

const verbsOf = (r: (typeof RESOURCES)[number]): string[] =>
  (r as { verbs?: string[] }).verbs ?? ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function gvOf(apiVersion: string): string {
  return apiVersion.includes("/") ? `apis/${apiVersion}` : `api/${apiVersion}`;
}

describe("generated definitions", () => {
  it("regenerating from kubernetes-types reproduces openapi-data.json exactly", () => {
    const { data: fresh } = generate();
    expect(render(fresh)).toBe(readFileSync(OUTPUT, "utf8"));
    // Compact and key-sorted: one line, no indentation.
    expect(readFileSync(OUTPUT, "utf8").split("\n").length).toBe(2);
  });

  it("has every served kind and list kind with its group-version-kind", () => {
    for (const r of RESOURCES) {
      expect(gvkDefinition(r.group, r.version, r.kind), `${apiVersionOf(r)} ${r.kind}`).toBeDefined();
      if (verbsOf(r).includes("list")) {
        expect(gvkDefinition(r.group, r.version, r.listKind), `${apiVersionOf(r)} ${r.listKind}`).toBeDefined();
      }
    }
    expect(gvkDefinition("", "v1", "Pod")).toBe(`${CORE}.Pod`);
    expect(gvkDefinition("apps", "v1", "Deployment")).toBe("io.k8s.api.apps.v1.Deployment");
    expect(gvkDefinition("coordination.k8s.io", "v1", "Lease")).toBe("io.k8s.api.coordination.v1.Lease");
    expect(gvkDefinition("autoscaling", "v1", "Scale")).toBe("io.k8s.api.autoscaling.v1.Scale");
    expect(gvkDefinition("", "v1", "Binding")).toBe(`${CORE}.Binding`);
    expect(gvkDefinition("", "v1", "Status")).toBe(`${META}.Status`);
    expect(gvkDefinition("apps", "v1", "DeleteOptions")).toBe(`${META}.DeleteOptions`);
    expect(gvkDefinition("", "v1", "WatchEvent")).toBe(`${META}.WatchEvent`);
  });

  it("keeps descriptions and required fields", () => {
    const container = defs[`${CORE}.Container`];
    expect(container.type).toBe("object");
    expect(container.required).toEqual(["name"]);
    expect(container.description).toMatch(/single application container/);
    expect(container.properties.image).toMatchObject({ type: "string", description: expect.stringMatching(/Container image name/) });
    expect(defs[`${CORE}.PodSpec`].required).toContain("containers");
    expect(defs[`${CORE}.PodList`].required).toEqual(["items"]);
    expect(container.properties.resources.$ref).toBe(`#/definitions/${CORE}.ResourceRequirements`);
    expect(defs[`${CORE}.Pod`].properties.metadata.$ref).toBe(`#/definitions/${META}.ObjectMeta`);
    expect(defs[`${CORE}.ContainerPort`].properties.containerPort).toMatchObject({ type: "integer" });
    expect(defs[`${CORE}.ConfigMap`].properties.data).toMatchObject({ type: "object", additionalProperties: { type: "string" } });
    expect(defs[`${CORE}.Container`].properties.args).toMatchObject({ type: "array", items: { type: "string" } });
  });

  it("has the kube shapes of IntOrString, Quantity, Time and MicroTime", () => {
    expect(defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]).toMatchObject({ type: "string", format: "int-or-string" });
    expect(defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]).toMatchObject({ type: "string" });
    expect(defs["io.k8s.apimachinery.pkg.api.resource.Quantity"].format).toBeUndefined();
    expect(defs[`${META}.Time`]).toMatchObject({ type: "string", format: "date-time" });
    expect(defs[`${META}.MicroTime`]).toMatchObject({ type: "string", format: "date-time" });
    expect(defs[`${CORE}.ServicePort`].properties.targetPort.$ref).toBe("#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString");
    expect(defs[`${CORE}.ResourceRequirements`].properties.limits.additionalProperties.$ref).toBe(
      "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity",
    );
    expect(defs[`${META}.ObjectMeta`].properties.creationTimestamp.$ref).toBe(`#/definitions/${META}.Time`);
  });

  it("carries the strategic merge patch keys of patch.ts on list fields", () => {
    const key = (def: string, prop: string) => {
      const p = defs[def].properties[prop];
      return [
        p["x-kubernetes-patch-strategy"],
        p["x-kubernetes-patch-merge-key"],
        p["x-kubernetes-list-type"],
        p["x-kubernetes-list-map-keys"],
      ];
    };
    expect(key(`${CORE}.PodSpec`, "containers")).toEqual(["merge", "name", "map", ["name"]]);
    expect(key(`${CORE}.PodSpec`, "initContainers")).toEqual(["merge", "name", "map", ["name"]]);
    expect(key(`${CORE}.PodSpec`, "volumes")).toEqual(["merge,retainKeys", "name", "map", ["name"]]);
    expect(key(`${CORE}.Container`, "env")).toEqual(["merge", "name", "map", ["name"]]);
    expect(key(`${CORE}.Container`, "ports")).toEqual(["merge", "containerPort", "map", ["containerPort"]]);
    expect(key(`${CORE}.Container`, "volumeMounts")).toEqual(["merge", "mountPath", "map", ["mountPath"]]);
    expect(key(`${CORE}.EphemeralContainer`, "env")).toEqual(["merge", "name", "map", ["name"]]);
    expect(key(`${META}.ObjectMeta`, "ownerReferences")).toEqual(["merge", "uid", "map", ["uid"]]);
    expect(key(`${META}.ObjectMeta`, "finalizers")).toEqual(["merge", undefined, "set", undefined]);
    expect(key(`${CORE}.ServiceSpec`, "ports")).toEqual(["merge", "port", "map", ["port"]]);
    expect(key(`${CORE}.PodStatus`, "conditions")).toEqual(["merge", "type", "map", ["type"]]);
    expect(key(`${CORE}.PodSpec`, "tolerations")).toEqual([undefined, undefined, "atomic", undefined]);
    expect(key(`${CORE}.Container`, "envFrom")).toEqual([undefined, undefined, "atomic", undefined]);
    expect(defs["io.k8s.api.apps.v1.DeploymentSpec"].properties.strategy["x-kubernetes-patch-strategy"]).toBe("retainKeys");
  });

  it("reads the same table the server merges with", () => {
    const tables = loadPatchTables(readFileSync(PATCH_SOURCE, "utf8"));
    expect(tables.schemas.get("Pod")?.get("spec.containers[].env")).toEqual({ strategy: "merge", mergeKey: "name" });
    expect(tables.defaultSchema.get("metadata.ownerReferences")).toEqual({ strategy: "merge", mergeKey: "uid" });
    // And the server's strategic merge patch agrees: containers merge by name.
    const live = { spec: { containers: [{ name: "a", image: "a:1" }] } };
    const merged = applyStrategicMergePatch(live, { spec: { containers: [{ name: "b", image: "b:1" }] } }, "Pod") as any;
    expect(merged.spec.containers.map((c: any) => c.name)).toEqual(["b", "a"]);
  });
});

describe("OpenAPI v3", () => {
  it("lists every served group-version in the index, with a hash", () => {
    const expected = [...new Set(RESOURCES.map((r) => gvOf(apiVersionOf(r))))].sort();
    expect(servedGroupVersions()).toEqual(expected);
    const index = openapiV3Index() as { paths: Record<string, { serverRelativeURL: string }> };
    expect(Object.keys(index.paths).sort()).toEqual(expected);
    expect(expected).toEqual(expect.arrayContaining(["api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1"]));
    for (const gv of expected) expect(index.paths[gv].serverRelativeURL).toMatch(new RegExp(`^/openapi/v3/${gv}\\?hash=[0-9A-F]{16}$`));
  });

  it("serves a document per group-version whose $refs all resolve", () => {
    for (const gv of servedGroupVersions()) {
      const doc = openapiV3(gv) as any;
      expect(doc.openapi).toBe("3.0.0");
      const schemas = doc.components.schemas;
      const refs = refsIn(doc);
      expect(refs.length).toBeGreaterThan(0);
      for (const ref of refs) {
        expect(ref.startsWith("#/components/schemas/"), ref).toBe(true);
        expect(schemas[ref.slice("#/components/schemas/".length)], `${gv}: ${ref}`).toBeDefined();
      }
    }
    for (const gv of ["api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1"]) {
      const schemas = (openapiV3(gv) as any).components.schemas;
      for (const meta of ["ObjectMeta", "ListMeta", "Status", "DeleteOptions", "Patch", "Time"])
        expect(schemas[`${META}.${meta}`], meta).toBeDefined();
    }
    expect(openapiV3("apis/nope/v1")).toBeUndefined();
  });

  it("describes each served kind's operations the way kubectl looks them up", () => {
    for (const r of RESOURCES) {
      const doc = openapiV3(gvOf(apiVersionOf(r))) as any;
      const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
      const collection = r.namespaced ? `${base}/namespaces/{namespace}/${r.resource}` : `${base}/${r.resource}`;
      const gvk = { group: r.group, kind: r.kind, version: r.version };
      const verbs = verbsOf(r);
      if (verbs.includes("list")) {
        expect(doc.paths[collection].get["x-kubernetes-group-version-kind"]).toEqual(gvk);
        expect(doc.paths[collection].get["x-kubernetes-action"]).toBe("list");
      }
      if (verbs.includes("create")) expect(doc.paths[collection].post["x-kubernetes-group-version-kind"]).toEqual(gvk);
      const item = doc.paths[`${collection}/{name}`];
      if (verbs.includes("patch")) {
        for (const m of ["get", "put", "patch", "delete"]) expect(item[m]["x-kubernetes-group-version-kind"]).toEqual(gvk);
        // Client-side apply only computes a strategic merge patch if PATCH accepts it.
        expect(Object.keys(item.patch.requestBody.content)).toContain("application/strategic-merge-patch+json");
      } else {
        expect(item).toBeUndefined();
      }
      // explain and the patcher find the schema by the list-valued GVK extension.
      const schemaName = Object.keys(doc.components.schemas).find((n) =>
        (doc.components.schemas[n]["x-kubernetes-group-version-kind"] ?? []).some((g: any) => g.kind === r.kind && g.group === r.group),
      );
      expect(schemaName, r.kind).toBeDefined();
    }
    // No fieldValidation parameter: the server does not validate fields, so kubectl must.
    for (const gv of servedGroupVersions()) expect(JSON.stringify(openapiV3(gv))).not.toContain("fieldValidation");
  });

  it("wraps refs with siblings in allOf and keeps the patch extensions", () => {
    const doc = openapiV3("api/v1") as any;
    const s = doc.components.schemas;
    expect(s[`${CORE}.Pod`].properties.spec).toMatchObject({ allOf: [{ $ref: `#/components/schemas/${CORE}.PodSpec` }] });
    expect(s[`${CORE}.PodSpec`].properties.containers).toMatchObject({
      type: "array",
      items: { $ref: `#/components/schemas/${CORE}.Container` },
      "x-kubernetes-patch-merge-key": "name",
      "x-kubernetes-patch-strategy": "merge",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
    });
    expect(s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]).toMatchObject({
      format: "int-or-string",
      oneOf: [{ type: "integer" }, { type: "string" }],
    });
    expect(s["io.k8s.apimachinery.pkg.api.resource.Quantity"].oneOf).toEqual([{ type: "string" }, { type: "number" }]);
    const apps = openapiV3("apis/apps/v1") as any;
    expect(apps.components.schemas["io.k8s.api.apps.v1.DeploymentSpec"].properties.strategy).toMatchObject({
      allOf: [{ $ref: "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy" }],
      "x-kubernetes-patch-strategy": "retainKeys",
    });
    expect(apps.paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"].put["x-kubernetes-group-version-kind"]).toEqual({
      group: "autoscaling",
      kind: "Scale",
      version: "v1",
    });
  });
});

describe("OpenAPI v2", () => {
  it("is a Swagger 2.0 document with resolvable refs and kube's operation extensions", () => {
    const doc = openapiV2() as any;
    expect(doc.swagger).toBe("2.0");
    for (const ref of refsIn(doc)) expect(doc.definitions[ref.slice("#/definitions/".length)], ref).toBeDefined();
    const pods = doc.paths["/api/v1/namespaces/{namespace}/pods/{name}"];
    expect(pods.patch).toMatchObject({
      "x-kubernetes-action": "patch",
      "x-kubernetes-group-version-kind": { group: "", kind: "Pod", version: "v1" },
    });
    expect(pods.patch.consumes).toContain("application/strategic-merge-patch+json");
    expect(doc.paths["/api/v1/namespaces/{namespace}/pods"].post["x-kubernetes-action"]).toBe("post");
    expect(doc.paths["/api/v1/namespaces/{namespace}/pods"].delete["x-kubernetes-action"]).toBe("deletecollection");
    expect(doc.paths["/api/v1/nodes/{name}"].put["x-kubernetes-action"]).toBe("put");
    expect(doc.paths["/api/v1/namespaces/{namespace}/pods/{name}/binding"].post["x-kubernetes-group-version-kind"].kind).toBe("Binding");
  });

  it("encodes as gnostic protobuf", () => {
    const doc = openapiV2() as any;
    const bytes = encodeV2Protobuf(doc);
    const top = decode(bytes);
    expect(text(top.get(1)![0])).toBe("2.0");
    const definitions = decode(top.get(9)![0] as Uint8Array)
      .get(1)!
      .map((d) => decode(d as Uint8Array));
    expect(definitions.length).toBe(Object.keys(doc.definitions).length);
    const podSpec = definitions.find((d) => text(d.get(1)![0]) === `${CORE}.PodSpec`)!;
    const schema = decode(podSpec.get(2)![0] as Uint8Array);
    const props = decode(schema.get(25)![0] as Uint8Array)
      .get(1)!
      .map((p) => decode(p as Uint8Array));
    const containers = decode(props.find((p) => text(p.get(1)![0]) === "containers")!.get(2)![0] as Uint8Array);
    const ext = Object.fromEntries(
      containers.get(31)!.map((e) => {
        const named = decode(e as Uint8Array);
        return [text(named.get(1)![0]), JSON.parse(text(decode(named.get(2)![0] as Uint8Array).get(2)![0]))];
      }),
    );
    expect(ext).toMatchObject({ "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge" });
    expect(text(decode(schema.get(22)![0] as Uint8Array).get(1)![0])).toBe("object");
    expect(schema.get(19)!.map(text)).toEqual(["containers"]);
  });
});

describe("HTTP", () => {
  const req = (path: string, headers: Record<string, string> = {}) => new Request(`https://kube.test${path}`, { headers });

  it("negotiates JSON or protobuf for /openapi/v2", async () => {
    const json = handleOpenAPIV2(req("/openapi/v2", { accept: "application/json" }));
    expect(json.status).toBe(200);
    expect(json.headers.get("content-type")).toBe("application/json");
    expect(((await json.json()) as any).swagger).toBe("2.0");
    const pb = handleOpenAPIV2(req("/openapi/v2", { accept: "application/com.github.proto-openapi.spec.v2@v1.0+protobuf" }));
    expect(pb.status).toBe(200);
    expect(pb.headers.get("content-type")).toBe("application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
    expect(new Uint8Array(await pb.arrayBuffer())).toEqual(encodeV2Protobuf(openapiV2() as any));
    expect(handleOpenAPIV2(req("/openapi/v2", { accept: "text/html" })).status).toBe(406);
  });

  it("serves the v3 index and documents with ETags, hashes and redirects", async () => {
    const index = handleOpenAPIV3Index(req("/openapi/v3", { accept: "application/json" }));
    expect(index.status).toBe(200);
    const body = (await index.json()) as any;
    const url: string = body.paths["apis/apps/v1"].serverRelativeURL;
    const doc = handleOpenAPIV3(req(url, { accept: "application/json" }));
    expect(doc.status).toBe(200);
    expect(doc.headers.get("cache-control")).toBe("public, immutable");
    expect(await doc.json()).toEqual(JSON.parse(JSON.stringify(openapiV3("apis/apps/v1"))));
    const etag = doc.headers.get("etag")!;
    expect(handleOpenAPIV3(req(url, { accept: "application/json", "if-none-match": etag })).status).toBe(304);
    const stale = handleOpenAPIV3(req("/openapi/v3/apis/apps/v1?hash=0123", { accept: "application/json" }));
    expect(stale.status).toBe(301);
    expect(stale.headers.get("location")).toBe(url);
    const plain = handleOpenAPIV3(req("/openapi/v3/api/v1"));
    expect(plain.status).toBe(200);
    expect(plain.headers.get("cache-control")).toBeNull();
    expect(handleOpenAPIV3(req("/openapi/v3/apis/nope/v1")).status).toBe(404);
  });

  it("mounts the routes on a hono app", async () => {
    const { Hono } = await import("hono");
    const app = new Hono();
    mountOpenAPI(app);
    expect((await app.request("/openapi/v2")).status).toBe(200);
    expect((await app.request("/openapi/v3")).status).toBe(200);
    expect((await app.request("/openapi/v3/apis/coordination.k8s.io/v1")).status).toBe(200);
  });
});

// A minimal protobuf reader: field number -> values (varints as numbers, length-delimited as bytes).
function decode(buf: Uint8Array): Map<number, Array<number | Uint8Array>> {
  const out = new Map<number, Array<number | Uint8Array>>();
  let i = 0;
  const varint = () => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++];
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    let v: number | Uint8Array;
    if (wire === 0) v = varint();
    else if (wire === 2) {
      const len = varint();
      v = buf.subarray(i, i + len);
      i += len;
    } else throw new Error(`unexpected wire type ${wire}`);
    if (!out.has(field)) out.set(field, []);
    out.get(field)!.push(v);
  }
  return out;
}

function text(v: number | Uint8Array): string {
  return new TextDecoder().decode(v as Uint8Array);
}
