import { describe, expect, it } from "vitest";
import { applyServerSide, defaultManager, fieldSet, type ManagedFieldsEntry, updateManagedFields } from "../../workers/api/ssa.ts";
import { applyDefaults } from "../../workers/shared/defaults.ts";
import { ApiError } from "../../workers/shared/errors.ts";
import { lookupResource } from "../../workers/shared/resources.ts";

type Obj = Record<string, any>;

const T0 = new Date("2024-05-01T10:00:00.123Z");
const T1 = new Date("2024-05-01T11:00:00Z");
const T2 = new Date("2024-05-01T12:00:00Z");
const DEPLOYMENT = { group: "apps", version: "v1", kind: "Deployment" };
const POD = { group: "", version: "v1", kind: "Pod" };

function caught(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error("expected the call to throw");
}

interface DeploymentConfig {
  replicas?: number;
  labels?: Record<string, string>;
  containers?: Obj[];
}

/** A Deployment apply configuration, as `kubectl apply --server-side` would send it. */
function deployment({ replicas, labels, containers = [{ name: "web", image: "nginx:1.25" }] }: DeploymentConfig = {}): Obj {
  const spec: Obj = {
    selector: { matchLabels: { app: "web" } },
    template: { metadata: { labels: { app: "web" } }, spec: { containers } },
  };
  if (replicas !== undefined) spec.replicas = replicas;
  const metadata: Obj = { name: "web", namespace: "default" };
  if (labels) metadata.labels = labels;
  return { apiVersion: "apps/v1", kind: "Deployment", metadata, spec };
}

/** What the registry stores: system metadata and defaults on top of the apply result. */
function stored(obj: Obj, rv = "1"): Obj {
  const out = structuredClone(obj);
  out.metadata.uid ??= "4b3c2d1e-0000-4000-8000-000000000001";
  out.metadata.creationTimestamp ??= "2024-05-01T09:00:00Z";
  out.metadata.resourceVersion = rv;
  const info = lookupResource(out.apiVersion.includes("/") ? out.apiVersion.split("/")[0] : "", "v1", `${out.kind.toLowerCase()}s`);
  if (info) applyDefaults(info, out);
  return out;
}

function apply(live: Obj | undefined, config: Obj, manager: string, now = T1, force = false, subresource?: string): Obj {
  return applyServerSide(live, config, { manager, force, now, subresource });
}

function entry(obj: Obj, manager: string, operation = "Apply"): ManagedFieldsEntry | undefined {
  return (obj.metadata.managedFields as ManagedFieldsEntry[] | undefined)?.find((e) => e.manager === manager && e.operation === operation);
}

function managers(obj: Obj): string[] {
  return ((obj.metadata.managedFields ?? []) as ManagedFieldsEntry[]).map((e) => `${e.manager}/${e.operation}`);
}

/** Whether `fieldsV1` owns the path (FieldsV1 keys, outermost first). */
function owns(fieldsV1: Record<string, unknown> | undefined, ...path: string[]): boolean {
  let cur: unknown = fieldsV1;
  for (const k of path) {
    if (typeof cur !== "object" || cur === null || !Object.hasOwn(cur, k)) return false;
    cur = (cur as Obj)[k];
  }
  return true;
}

const REPLICAS = ["f:spec", "f:replicas"];
const WEB = 'k:{"name":"web"}';

describe("applyServerSide", () => {
  it("creating through apply merges the configuration and records one Apply entry owning exactly the applied fields", () => {
    const config = deployment({ replicas: 2, labels: { app: "web" } });
    const out = apply(undefined, config, "deployer", T0);
    const { managedFields, ...metadata } = out.metadata;
    expect({ ...out, metadata }).toEqual(config);
    expect(managedFields).toEqual([
      {
        manager: "deployer",
        operation: "Apply",
        apiVersion: "apps/v1",
        time: "2024-05-01T10:00:00Z",
        fieldsType: "FieldsV1",
        fieldsV1: {
          "f:metadata": { "f:labels": { "f:app": {} } },
          "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
              "f:metadata": { "f:labels": { "f:app": {} } },
              "f:spec": { "f:containers": { [WEB]: { ".": {}, "f:image": {}, "f:name": {} } } },
            },
          },
        },
      },
    ]);
    expect(Object.keys(managedFields[0])).toEqual(["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]);
  });

  it("does not mutate its inputs", () => {
    const live = stored(apply(undefined, deployment({ replicas: 1 }), "deployer", T0));
    const config = deployment({ replicas: 3 });
    const [liveCopy, configCopy] = [structuredClone(live), structuredClone(config)];
    apply(live, config, "deployer");
    expect([live, config]).toEqual([liveCopy, configCopy]);
  });

  it("re-applying with a changed image updates the image and the entry's time, keeping system fields and defaults", () => {
    const live = stored(apply(undefined, deployment(), "deployer", T0));
    const out = apply(live, deployment({ containers: [{ name: "web", image: "nginx:1.26" }] }), "deployer", T1);
    const container = out.spec.template.spec.containers[0];
    expect(container.image).toBe("nginx:1.26");
    expect(container.imagePullPolicy).toBe(live.spec.template.spec.containers[0].imagePullPolicy); // defaulted, unowned: kept
    expect(out.metadata.uid).toBe(live.metadata.uid);
    expect(out.spec.replicas).toBe(1); // the default nobody applied stays
    expect(entry(out, "deployer")).toMatchObject({ time: "2024-05-01T11:00:00Z", fieldsV1: entry(live, "deployer")!.fieldsV1 });
  });

  it("re-applying the same configuration is a no-op: same object, same managedFields time", () => {
    const live = stored(apply(undefined, deployment({ replicas: 2 }), "deployer", T0));
    const out = apply(live, deployment({ replicas: 2 }), "deployer", T2);
    expect(out).toEqual(live);
  });

  it.each([
    { case: "nobody else owns it", other: undefined, kept: false },
    { case: "another applier also applied it", other: "Apply", kept: true },
    { case: "an Update manager changed it", other: "Update", kept: true },
  ])("a label dropped from a later apply is removed unless another manager owns it ($case)", ({ other, kept }) => {
    let live = stored(apply(undefined, deployment({ labels: { app: "web", tier: "frontend" } }), "deployer", T0));
    if (other === "Apply") {
      const labels = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", labels: { tier: "frontend" } } };
      live = stored(apply(live, labels, "labeler", T1));
    } else if (other === "Update") {
      const next = structuredClone(live);
      next.metadata.labels.tier = "web-frontend";
      updateManagedFields(live, next, { manager: "kubectl-label", now: T1 });
      live = stored(next);
    }
    const out = apply(live, deployment({ labels: { app: "web" } }), "deployer", T2);
    expect(Object.hasOwn(out.metadata.labels, "tier")).toBe(kept);
    expect(out.metadata.labels.app).toBe("web");
    expect(owns(entry(out, "deployer")?.fieldsV1, "f:metadata", "f:labels", "f:tier")).toBe(false);
  });

  it("dropping the last label, a container and replicas removes them (and the emptied labels map)", () => {
    const live = stored(
      apply(
        undefined,
        deployment({
          replicas: 3,
          labels: { app: "web" },
          containers: [
            { name: "web", image: "nginx" },
            { name: "sidecar", image: "envoy" },
          ],
        }),
        "deployer",
        T0,
      ),
    );
    const out = apply(live, deployment({ containers: [{ name: "web", image: "nginx" }] }), "deployer", T1);
    expect(out.metadata.labels).toBeUndefined();
    expect(out.spec.template.spec.containers.map((c: Obj) => c.name)).toEqual(["web"]);
    expect(out.spec.replicas).toBeUndefined(); // the registry defaults it again
  });

  it("a struct field the manager still fills below is not pruned when it stops being a leaf", () => {
    const live = stored(apply(undefined, deployment({ containers: [{ name: "web", image: "x", resources: {} }] }), "deployer", T0));
    const out = apply(live, deployment({ containers: [{ name: "web", image: "x", resources: { limits: { cpu: "1" } } }] }), "deployer", T1);
    expect(out.spec.template.spec.containers[0].resources).toEqual({ limits: { cpu: "1" } });
  });

  it("an explicit null unsets the field and the manager owns it", () => {
    const live = stored(apply(undefined, deployment({ replicas: 3 }), "deployer", T0));
    const out = apply(
      live,
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" }, spec: { revisionHistoryLimit: null } },
      "tuner",
    );
    expect(Object.hasOwn(out.spec, "revisionHistoryLimit")).toBe(false);
    expect(entry(out, "tuner")?.fieldsV1).toEqual({ "f:spec": { "f:revisionHistoryLimit": {} } });
  });

  it("an object created by kubectl create conflicts with a later server-side apply of a different value", () => {
    const created = stored(deployment({ replicas: 1 }));
    updateManagedFields(undefined, created, { manager: "kubectl-create", now: T0 });
    expect(managers(created)).toEqual(["kubectl-create/Update"]);
    const err = caught(() => apply(created, deployment({ replicas: 3 }), "kubectl"));
    expect(err.message).toBe('Apply failed with 1 conflict: conflict with "kubectl-create" using apps/v1: .spec.replicas');
    const forced = apply(created, deployment({ replicas: 3 }), "kubectl", T1, true);
    expect(managers(forced)).toEqual(["kubectl/Apply", "kubectl-create/Update"]);
    expect(owns(entry(forced, "kubectl-create", "Update")?.fieldsV1, ...REPLICAS)).toBe(false);
    expect(owns(entry(forced, "kubectl-create", "Update")?.fieldsV1, "f:spec", "f:strategy", "f:type")).toBe(true); // defaults it wrote
  });

  it("a second manager applying a different replicas gets 409 Conflict with kube's message and causes", () => {
    const live = stored(apply(undefined, deployment({ replicas: 2 }), "deployer", T0));
    const err = caught(() =>
      apply(live, { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" }, spec: { replicas: 5 } }, "autoscaler"),
    );
    expect(err.code).toBe(409);
    expect(err.reason).toBe("Conflict");
    expect(err.message).toBe('Apply failed with 1 conflict: conflict with "deployer": .spec.replicas');
    expect(err.details.causes).toEqual([{ reason: "FieldManagerConflict", message: 'conflict with "deployer"', field: ".spec.replicas" }]);
    expect(err.toStatus()).toMatchObject({ code: 409, reason: "Conflict", details: { causes: err.details.causes } });
  });

  it("a second manager applying the same value shares ownership without a conflict", () => {
    const live = stored(apply(undefined, deployment({ replicas: 2 }), "deployer", T0));
    const out = apply(live, { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" }, spec: { replicas: 2 } }, "autoscaler");
    expect(owns(entry(out, "deployer")?.fieldsV1, ...REPLICAS)).toBe(true);
    expect(entry(out, "autoscaler")?.fieldsV1).toEqual({ "f:spec": { "f:replicas": {} } });
  });

  it("force=true takes ownership: the value changes and the previous manager loses the field", () => {
    const live = stored(apply(undefined, deployment({ replicas: 2 }), "deployer", T0));
    const out = apply(
      live,
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" }, spec: { replicas: 5 } },
      "autoscaler",
      T1,
      true,
    );
    expect(out.spec.replicas).toBe(5);
    expect(owns(entry(out, "deployer")?.fieldsV1, ...REPLICAS)).toBe(false);
    expect(owns(entry(out, "deployer")?.fieldsV1, "f:spec", "f:selector")).toBe(true);
    expect(owns(entry(out, "autoscaler")?.fieldsV1, ...REPLICAS)).toBe(true);
    // Having lost it, the first manager may drop replicas without removing it.
    const again = apply(stored(out), deployment(), "deployer", T2);
    expect(again.spec.replicas).toBe(5);
  });

  it("two managers owning different containers of one Deployment both survive each other's applies", () => {
    const live = stored(apply(undefined, deployment({ containers: [{ name: "web", image: "nginx:1" }] }), "team-web", T0));
    const both = stored(apply(live, deployment({ containers: [{ name: "proxy", image: "envoy:1" }] }), "team-proxy", T1));
    expect(both.spec.template.spec.containers.map((c: Obj) => c.name)).toEqual(["web", "proxy"]);
    const webOnly = apply(both, deployment({ containers: [{ name: "web", image: "nginx:2" }] }), "team-web", T2);
    expect(webOnly.spec.template.spec.containers.map((c: Obj) => [c.name, c.image])).toEqual([
      ["web", "nginx:2"],
      ["proxy", "envoy:1"],
    ]);
    const proxyOnly = apply(stored(webOnly), deployment({ containers: [{ name: "proxy", image: "envoy:2" }] }), "team-proxy", T2);
    expect(proxyOnly.spec.template.spec.containers.map((c: Obj) => [c.name, c.image])).toEqual([
      ["web", "nginx:2"],
      ["proxy", "envoy:2"],
    ]);
    const containers = (name: string) =>
      Object.keys((entry(proxyOnly, name)!.fieldsV1 as Obj)["f:spec"]["f:template"]["f:spec"]["f:containers"]);
    expect([containers("team-web"), containers("team-proxy")]).toEqual([[WEB], ['k:{"name":"proxy"}']]);
  });

  it("an Update of replicas by kubectl-edit and then an Apply of another value conflicts, naming the updater and its apiVersion", () => {
    const live = stored(apply(undefined, deployment({ replicas: 2 }), "kubectl", T0));
    const edited = structuredClone(live);
    edited.spec.replicas = 4;
    updateManagedFields(live, edited, { manager: "kubectl-edit", now: T1 });
    expect(managers(edited)).toEqual(["kubectl/Apply", "kubectl-edit/Update"]);
    expect(owns(entry(edited, "kubectl")?.fieldsV1, ...REPLICAS)).toBe(false);
    const err = caught(() => apply(stored(edited, "2"), deployment({ replicas: 2 }), "kubectl", T2));
    expect([err.code, err.message]).toEqual([
      409,
      'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas',
    ]);
    expect(err.details.causes).toEqual([
      { reason: "FieldManagerConflict", message: 'conflict with "kubectl-edit" using apps/v1', field: ".spec.replicas" },
    ]);
  });

  it("several conflicts are grouped by manager, one path per line", () => {
    const live = stored(apply(undefined, deployment({ replicas: 2, labels: { team: "a" } }), "deployer", T0));
    const config = deployment({ replicas: 3, labels: { team: "b" }, containers: [{ name: "web", image: "nginx:2" }] });
    const err = caught(() => apply(live, config, "other"));
    expect(err.message).toBe(
      [
        'Apply failed with 3 conflicts: conflicts with "deployer":',
        "- .metadata.labels.team",
        "- .spec.replicas",
        '- .spec.template.spec.containers[name="web"].image',
      ].join("\n"),
    );
    expect(err.details.causes?.map((c) => c.field)).toEqual([
      ".metadata.labels.team",
      ".spec.replicas",
      '.spec.template.spec.containers[name="web"].image',
    ]);
  });

  it("container ports are keyed by containerPort and the defaulted protocol, so re-applying after defaulting matches", () => {
    const config = deployment({ containers: [{ name: "web", image: "nginx", ports: [{ containerPort: 80 }] }] });
    const live = stored(apply(undefined, config, "deployer", T0));
    expect(live.spec.template.spec.containers[0].ports).toEqual([{ containerPort: 80, protocol: "TCP" }]);
    const out = apply(live, config, "deployer", T1);
    expect(out.spec.template.spec.containers[0].ports).toEqual([{ containerPort: 80, protocol: "TCP" }]);
    const ports = (entry(out, "deployer")!.fieldsV1 as Obj)["f:spec"]["f:template"]["f:spec"]["f:containers"][WEB]["f:ports"];
    expect(ports).toEqual({ 'k:{"containerPort":80,"protocol":"TCP"}': { ".": {}, "f:containerPort": {} } });
  });

  it("items new to a keyed list go where the configuration puts them relative to shared items", () => {
    const live = stored(
      apply(
        undefined,
        deployment({
          containers: [
            { name: "a", image: "x" },
            { name: "b", image: "x" },
          ],
        }),
        "deployer",
        T0,
      ),
    );
    const out = apply(
      live,
      deployment({
        containers: [
          { name: "a", image: "x" },
          { name: "n", image: "x" },
          { name: "b", image: "x" },
        ],
      }),
      "deployer",
    );
    expect(out.spec.template.spec.containers.map((c: Obj) => c.name)).toEqual(["a", "n", "b"]);
  });

  it.each([
    { case: "main resource: status is ignored", subresource: undefined, owned: ["f:metadata", "f:spec"] },
    { case: "status subresource: only status is owned", subresource: "status", owned: ["f:status"] },
  ])("apply scopes ownership by subresource ($case)", ({ subresource, owned }) => {
    const live = stored({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "default" },
      spec: { containers: [{ name: "c", image: "x" }] },
      status: { phase: "Running" },
    });
    const config = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", labels: { a: "b" } },
      spec: { nodeName: "n1" },
      status: { phase: "Pending" },
    };
    const out = apply(live, config, "agent", T1, false, subresource);
    const e = entry(out, "agent")!;
    expect(Object.keys(e.fieldsV1)).toEqual(owned);
    expect(e.subresource).toBe(subresource);
    expect(out.status.phase).toBe("Pending"); // the merge is whole: the registry's prepareUpdate keeps what the endpoint may change
  });

  it.each([
    {
      case: "no fieldManager",
      manager: "",
      config: deployment(),
      code: 422,
      message: 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    },
    {
      case: "managedFields in the configuration",
      manager: "m",
      config: { ...deployment(), metadata: { name: "web", managedFields: [] } },
      code: 400,
      message: "metadata.managedFields must be nil",
    },
    {
      case: "no kind",
      manager: "m",
      config: { apiVersion: "apps/v1", metadata: { name: "web" } },
      code: 400,
      message: "invalid object type: apps/v1, Kind=",
    },
    {
      case: "a container without its key",
      manager: "m",
      config: deployment({ containers: [{ image: "nginx" }] }),
      code: 400,
      message:
        'failed to create typed patch object (apps/v1, Kind=Deployment): .spec.template.spec.containers: element 0: associative list with keys has an element that omits all key fields ["name"] (and doesn\'t have default values for any key fields)',
    },
    {
      case: "duplicate containers",
      manager: "m",
      config: deployment({ containers: [{ name: "a" }, { name: "a" }] }),
      code: 400,
      message:
        'failed to create typed patch object (apps/v1, Kind=Deployment): .spec.template.spec.containers: duplicate entries for key [name="a"]',
    },
  ])("rejects a bad request: $case", ({ manager, config, code, message }) => {
    const err = caught(() => apply(undefined, config, manager));
    expect([err.code, err.message]).toEqual([code, message]);
  });

  it("rejects a configuration of another kind than the live object", () => {
    const live = stored(apply(undefined, deployment(), "deployer", T0));
    const err = caught(() => apply(live, { ...deployment(), kind: "ReplicaSet" }, "deployer"));
    expect([err.code, err.message]).toEqual([400, "invalid object type: apps/v1, Kind=ReplicaSet"]);
  });

  it("orders managedFields as kube does: Apply entries first, then by time, then manager", () => {
    let obj = stored(apply(undefined, deployment({ replicas: 1 }), "z-applier", T0));
    const next = structuredClone(obj);
    next.metadata.annotations = { note: "x" };
    updateManagedFields(obj, next, { manager: "a-updater", now: T0 });
    obj = stored(next);
    obj = stored(apply(obj, { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", labels: { x: "y" } } }, "b-applier", T2));
    obj = stored(apply(obj, { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", labels: { y: "z" } } }, "a-applier", T2));
    expect(managers(obj)).toEqual(["z-applier/Apply", "a-applier/Apply", "b-applier/Apply", "a-updater/Update"]);
  });
});

describe("fieldSet", () => {
  const pod = (spec: Obj, metadata: Obj = {}): Obj => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "p",
      namespace: "default",
      uid: "u",
      resourceVersion: "7",
      generation: 1,
      creationTimestamp: "2024-01-01T00:00:00Z",
      ...metadata,
    },
    spec,
  });

  it.each([
    {
      case: "map lists by key (containers by name, env by name, ports by containerPort+protocol)",
      obj: pod({ containers: [{ name: "web", env: [{ name: "A", value: "1" }], ports: [{ containerPort: 80, protocol: "UDP" }] }] }),
      want: {
        "f:spec": {
          "f:containers": {
            [WEB]: {
              ".": {},
              "f:env": { 'k:{"name":"A"}': { ".": {}, "f:name": {}, "f:value": {} } },
              "f:name": {},
              "f:ports": { 'k:{"containerPort":80,"protocol":"UDP"}': { ".": {}, "f:containerPort": {}, "f:protocol": {} } },
            },
          },
        },
      },
    },
    {
      case: "set lists by value",
      obj: pod({}, { finalizers: ["b.example/x", "a.example/y"] }),
      want: { "f:metadata": { "f:finalizers": { 'v:"a.example/y"': {}, 'v:"b.example/x"': {} } }, "f:spec": {} },
    },
    {
      case: "atomic lists and atomic maps as leaves",
      obj: pod({
        containers: [{ name: "web", args: ["-v", "2"] }],
        tolerations: [{ key: "k", operator: "Exists" }],
        nodeSelector: { zone: "a" },
      }),
      want: {
        "f:spec": {
          "f:containers": { [WEB]: { ".": {}, "f:args": {}, "f:name": {} } },
          "f:nodeSelector": {},
          "f:tolerations": {},
        },
      },
    },
    {
      case: "granular maps per key, empty maps as leaves, ownerReferences (atomic items) by uid",
      obj: pod(
        { securityContext: {} },
        { labels: { app: "x" }, annotations: {}, ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "rs", uid: "r1" }] },
      ),
      want: {
        "f:metadata": { "f:annotations": {}, "f:labels": { "f:app": {} }, "f:ownerReferences": { 'k:{"uid":"r1"}': {} } },
        "f:spec": { "f:securityContext": {} },
      },
    },
  ])("$case", ({ obj, want }) => {
    const got = fieldSet(obj, POD);
    // `f:spec: {}` above stands for "spec has no fields": an empty struct is a leaf.
    expect(got).toEqual(want);
  });

  it("ignores apiVersion, kind and system metadata, and keeps kube's key order ('.' first, then sorted)", () => {
    const got = fieldSet(
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "d", managedFields: [{ manager: "x" }], resourceVersion: "1" },
        spec: { selector: { matchLabels: { a: "b" } }, replicas: 1 },
      },
      DEPLOYMENT,
    );
    expect(got).toEqual({ "f:spec": { "f:replicas": {}, "f:selector": {} } });
    const containers = fieldSet(pod({ containers: [{ name: "b", image: "x" }, { name: "a" }] }), POD) as Obj;
    expect(Object.keys(containers["f:spec"]["f:containers"])).toEqual(['k:{"name":"a"}', 'k:{"name":"b"}']);
    expect(Object.keys(containers["f:spec"]["f:containers"]['k:{"name":"b"}'])).toEqual([".", "f:image", "f:name"]);
  });

  it("deduces kinds without a schema: maps per key, lists atomic", () => {
    const got = fieldSet(
      { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" }, spec: { size: 1, tags: ["a"], nested: { x: 1 } } },
      { group: "example.com", version: "v1", kind: "Widget" },
    );
    expect(got).toEqual({ "f:spec": { ".": {}, "f:nested": { ".": {}, "f:x": {} }, "f:size": {}, "f:tags": {} } });
  });
});

describe("updateManagedFields", () => {
  const configMap = (data: Record<string, string>, extra: Obj = {}): Obj => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "cm", namespace: "default", uid: "u", creationTimestamp: "2024-05-01T09:00:00Z", ...extra },
    data,
  });

  it("on create, the manager owns every field it wrote, with '.' on maps it added", () => {
    const next = configMap({ a: "1" }, { labels: { app: "x" } });
    updateManagedFields(undefined, next, { manager: "kubectl-create", now: T0 });
    expect(next.metadata.managedFields).toEqual([
      {
        manager: "kubectl-create",
        operation: "Update",
        apiVersion: "v1",
        time: "2024-05-01T10:00:00Z",
        fieldsType: "FieldsV1",
        fieldsV1: { "f:data": { ".": {}, "f:a": {} }, "f:metadata": { "f:labels": { ".": {}, "f:app": {} } } },
      },
    ]);
  });

  it("changed fields move to the writer and leave the other managers' sets; removed fields leave every set", () => {
    const old = configMap({ a: "1", b: "2" });
    updateManagedFields(undefined, old, { manager: "creator", now: T0 });
    const next = structuredClone(old);
    next.data.a = "changed";
    delete next.data.b;
    next.data.c = "3";
    updateManagedFields(old, next, { manager: "editor", now: T1 });
    expect(next.metadata.managedFields.map((e: ManagedFieldsEntry) => [e.manager, e.time, e.fieldsV1])).toEqual([
      ["creator", "2024-05-01T10:00:00Z", { "f:data": {} }], // still owns the map it added
      ["editor", "2024-05-01T11:00:00Z", { "f:data": { "f:a": {}, "f:c": {} } }],
    ]);
  });

  it("a write that changes nothing leaves managedFields as they were", () => {
    const old = configMap({ a: "1" });
    updateManagedFields(undefined, old, { manager: "creator", now: T0 });
    const next = structuredClone(old);
    next.metadata.resourceVersion = "9"; // system fields do not count
    updateManagedFields(old, next, { manager: "someone", now: T2 });
    expect(next.metadata.managedFields).toEqual(old.metadata.managedFields);
  });

  it.each([
    { case: "a status write records only status, with its subresource", subresource: "status", want: { "f:status": { "f:phase": {} } } },
    { case: "a main-resource write never owns status", subresource: undefined, want: { "f:spec": { "f:nodeName": {} } } },
  ])("$case", ({ subresource, want }) => {
    const old: Obj = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p" },
      spec: { containers: [{ name: "c", image: "x" }] },
      status: {},
    };
    const next = structuredClone(old);
    next.status.phase = "Running";
    next.spec.nodeName = "n1";
    updateManagedFields(old, next, { manager: "agent", now: T1, subresource });
    expect(next.metadata.managedFields).toEqual([
      {
        manager: "agent",
        operation: "Update",
        apiVersion: "v1",
        time: "2024-05-01T11:00:00Z",
        fieldsType: "FieldsV1",
        fieldsV1: want,
        ...(subresource ? { subresource } : {}),
      },
    ]);
  });

  it.each([
    { case: "[{}] resets them", provided: [{}], want: [] },
    {
      case: "valid entries sent by the client are used",
      provided: [{ manager: "mine", operation: "Apply", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:data": { "f:a": {} } } }],
      want: ["mine/Apply"],
    },
    { case: "an empty list keeps the live ones", provided: [], want: ["creator/Update"] },
    { case: "invalid entries keep the live ones", provided: [{ manager: "x", operation: "Bogus" }], want: ["creator/Update"] },
  ])("managedFields in the written object: $case", ({ provided, want }) => {
    const old = configMap({ a: "1" });
    updateManagedFields(undefined, old, { manager: "creator", now: T0 });
    const next = structuredClone(old);
    next.metadata.managedFields = provided;
    updateManagedFields(old, next, { manager: "writer", now: T1 });
    expect(managers(next)).toEqual(want);
  });

  it("keeps at most ten Update entries, merging the oldest into ancient-changes", () => {
    let obj = configMap({});
    for (let i = 0; i < 12; i++) {
      const next = structuredClone(obj);
      next.data[`k${i}`] = "v";
      updateManagedFields(obj, next, { manager: `writer-${String(i).padStart(2, "0")}`, now: new Date(T0.getTime() + i * 1000) });
      obj = next;
    }
    const list = obj.metadata.managedFields as ManagedFieldsEntry[];
    expect(list).toHaveLength(10);
    expect(list[0]).toMatchObject({
      manager: "ancient-changes",
      time: "2024-05-01T10:00:02Z",
      fieldsV1: { "f:data": { "f:k0": {}, "f:k1": {}, "f:k2": {} } },
    });
    expect(list[9].manager).toBe("writer-11");
  });
});

describe("defaultManager", () => {
  it.each([
    {
      ua: "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
      fieldManager: "kubectl-client-side-apply",
      want: "kubectl-client-side-apply",
    },
    { ua: "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350", fieldManager: "kubectl-edit", want: "kubectl-edit" },
    { ua: "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350", fieldManager: undefined, want: "kubectl" },
    {
      ua: "kube-controller-manager/v1.30.0 (linux/amd64) kubernetes/abc/system:serviceaccount:kube-system:deployment-controller",
      fieldManager: null,
      want: "kube-controller-manager",
    },
    { ua: "curl\u0007/8.5.0", fieldManager: "", want: "curl" },
    { ua: undefined, fieldManager: undefined, want: "" },
    { ua: "x".repeat(200), fieldManager: undefined, want: "x".repeat(128) },
  ])("User-Agent $ua with fieldManager $fieldManager -> $want", ({ ua, fieldManager, want }) => {
    expect(defaultManager(ua, fieldManager)).toBe(want);
  });
});
