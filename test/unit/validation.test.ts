import { describe, expect, it } from "vitest";
import type { FieldError } from "../../workers/shared/errors.ts";
import { ApiError } from "../../workers/shared/errors.ts";
import { RESOURCES, type ResourceInfo } from "../../workers/shared/resources.ts";
import {
  assertValid,
  isDNS1123Label,
  isDNS1123Subdomain,
  parseQuantity,
  validateAnnotations,
  validateCreate,
  validateLabels,
  validateUpdate,
} from "../../workers/shared/validation.ts";

type Obj = Record<string, any>;

function info(kind: string): ResourceInfo {
  const i = RESOURCES.find((r) => r.kind === kind);
  if (!i) throw new Error(`no resource ${kind}`);
  return i;
}

/** A deep copy of base with `change` applied. */
function edit(base: Obj, change: (o: Obj) => void): Obj {
  const o = structuredClone(base);
  change(o);
  return o;
}

function has(errs: FieldError[], field: string, type: string): boolean {
  return errs.some((e) => e.field === field && e.type === type);
}

function expectError(errs: FieldError[], field: string, type: string): void {
  expect(has(errs, field, type), `expected ${type} at ${field}, got ${JSON.stringify(errs, null, 1)}`).toBe(true);
}

const podSpec = (): Obj => ({
  restartPolicy: "Always",
  dnsPolicy: "ClusterFirst",
  containers: [
    {
      name: "web",
      image: "nginx:1.27",
      ports: [{ name: "http", containerPort: 80, protocol: "TCP" }],
      env: [{ name: "MY_ENV.name-1", value: "x" }],
      volumeMounts: [{ name: "data", mountPath: "/data" }],
      resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { cpu: "1", memory: "128Mi" } },
    },
  ],
  initContainers: [{ name: "init", image: "busybox" }],
  volumes: [{ name: "data", emptyDir: {} }],
});

const POD: Obj = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "default", labels: { app: "web" } },
  spec: podSpec(),
};

const DEPLOYMENT: Obj = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "default" },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: "web" } },
    strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } },
    template: { metadata: { labels: { app: "web", tier: "front" } }, spec: podSpec() },
  },
};

const REPLICASET: Obj = {
  apiVersion: "apps/v1",
  kind: "ReplicaSet",
  metadata: { name: "web-abc", namespace: "default" },
  spec: {
    replicas: 1,
    selector: { matchExpressions: [{ key: "app", operator: "In", values: ["web"] }] },
    template: { metadata: { labels: { app: "web" } }, spec: podSpec() },
  },
};

const SERVICE: Obj = {
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "web", namespace: "default" },
  spec: {
    type: "ClusterIP",
    clusterIP: "10.96.0.10",
    selector: { app: "web" },
    ports: [
      { name: "http", port: 80, targetPort: 8080, protocol: "TCP" },
      { name: "https", port: 443, targetPort: "https", protocol: "TCP" },
    ],
  },
};

const CONFIGMAP: Obj = {
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "cfg", namespace: "default" },
  data: { "app.properties": "a=b", KEY_1: "v" },
  binaryData: { blob: "AAEC" },
};

const SECRET: Obj = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "s", namespace: "default" },
  type: "Opaque",
  data: { password: "aHVudGVyMg==" },
};

describe("name formats", () => {
  it.each([
    ["example.com", true],
    ["a", true],
    ["my-name.a1", true],
    ["0abc", true],
    ["Example.com", false],
    ["-abc", false],
    ["abc-", false],
    ["a..b", false],
    ["a_b", false],
    ["", false],
    ["a".repeat(253), true],
    ["a".repeat(254), false],
  ])("isDNS1123Subdomain(%j) is %s", (s, ok) => {
    expect(isDNS1123Subdomain(s)).toBe(ok);
  });

  it.each([
    ["my-name", true],
    ["123-abc", true],
    ["a.b", false],
    ["UPPER", false],
    ["a".repeat(63), true],
    ["a".repeat(64), false],
  ])("isDNS1123Label(%j) is %s", (s, ok) => {
    expect(isDNS1123Label(s)).toBe(ok);
  });
});

describe("parseQuantity", () => {
  it.each([
    ["1", 1],
    ["0", 0],
    ["100m", 0.1],
    ["1.5", 1.5],
    [".5", 0.5],
    ["+2", 2],
    ["-1", -1],
    ["1k", 1000],
    ["2M", 2e6],
    ["3G", 3e9],
    ["1T", 1e12],
    ["1P", 1e15],
    ["1E", 1e18],
    ["1Ki", 1024],
    ["128Mi", 128 * 2 ** 20],
    ["1.5Gi", 1.5 * 2 ** 30],
    ["1Ti", 2 ** 40],
    ["1Pi", 2 ** 50],
    ["1Ei", 2 ** 60],
    ["5n", 5e-9],
    ["5u", 5e-6],
    ["1e3", 1000],
    ["1E3", 1000],
    ["12e-3", 0.012],
    ["1e+2", 100],
  ])("parses %j as %d", (s, n) => {
    expect(parseQuantity(s)).toBe(n);
  });

  it.each(["", "abc", "1x", "1KiB", "1.2.3", "Mi", "1 Mi", "1e", "1mi", " 1"])("rejects %j with NaN", (s) => {
    expect(parseQuantity(s)).toBeNaN();
  });

  it("parses equal quantities written differently to the same number", () => {
    expect(parseQuantity("1100m")).toBe(parseQuantity("1.1"));
    expect(parseQuantity("0.1")).toBe(parseQuantity("100m"));
    expect(parseQuantity("1Gi")).toBe(parseQuantity("1024Mi"));
  });
});

describe("validateLabels", () => {
  it("accepts qualified keys and valid values", () => {
    expect(validateLabels({ app: "web", "example.com/tier": "front", "a.b_c-d": "", k: "A.b-c_1" }, "metadata.labels")).toEqual([]);
  });

  it("accepts absent labels", () => {
    expect(validateLabels(undefined, "metadata.labels")).toEqual([]);
  });

  it.each([
    ["key with a bad character", { "a b": "x" }],
    ["key starting with a dash", { "-a": "x" }],
    ["name part longer than 63", { ["a".repeat(64)]: "x" }],
    ["empty prefix", { "/a": "x" }],
    ["uppercase prefix", { "Example.com/a": "x" }],
    ["two slashes", { "a/b/c": "x" }],
    ["empty key", { "": "x" }],
    ["value with a bad character", { a: "x y" }],
    ["value longer than 63", { a: "v".repeat(64) }],
    ["value ending in a dash", { a: "v-" }],
    ["non-string value", { a: 1 }],
  ])("rejects a %s as FieldValueInvalid at the field", (_, labels) => {
    const errs = validateLabels(labels, "metadata.labels");
    expect(errs.length).toBeGreaterThan(0);
    for (const e of errs) expect(e).toMatchObject({ field: "metadata.labels", type: "FieldValueInvalid" });
  });

  it("rejects labels that are not a map", () => {
    expectError(validateLabels(["a"], "metadata.labels"), "metadata.labels", "FieldValueInvalid");
  });

  it("words the message like kube-apiserver", () => {
    const [e] = validateLabels({ a: "x y" }, "metadata.labels");
    expect(e.message).toMatch(/^Invalid value: "x y": a valid label must be an empty string or consist of alphanumeric characters/);
  });
});

describe("validateAnnotations", () => {
  it("accepts qualified keys with any string values", () => {
    expect(
      validateAnnotations(
        { "kubectl.kubernetes.io/last-applied-configuration": '{"a": 1}', Note: "anything goes here!" },
        "metadata.annotations",
      ),
    ).toEqual([]);
  });

  it("rejects a key that is not a qualified name", () => {
    expectError(validateAnnotations({ "bad key": "x" }, "metadata.annotations"), "metadata.annotations", "FieldValueInvalid");
  });

  it("rejects non-string values", () => {
    expectError(validateAnnotations({ a: { b: 1 } }, "metadata.annotations"), "metadata.annotations", "FieldValueInvalid");
  });

  it("rejects a total size above 256KiB as FieldValueTooLong", () => {
    const errs = validateAnnotations({ a: "x".repeat(256 * 1024) }, "metadata.annotations");
    expect(errs).toEqual([
      { field: "metadata.annotations", type: "FieldValueTooLong", message: "Too long: may not be more than 262144 bytes" },
    ]);
  });

  it("accepts a total size of exactly 256KiB", () => {
    expect(validateAnnotations({ a: "x".repeat(256 * 1024 - 1) }, "metadata.annotations")).toEqual([]);
  });
});

describe("metadata", () => {
  it("accepts valid objects of every kind", () => {
    const objects: [string, Obj][] = [
      ["Pod", POD],
      ["Deployment", DEPLOYMENT],
      ["ReplicaSet", REPLICASET],
      ["Service", SERVICE],
      ["ConfigMap", CONFIGMAP],
      ["Secret", SECRET],
      ["Namespace", { metadata: { name: "team-a" }, spec: { finalizers: ["kubernetes"] } }],
      ["Node", { metadata: { name: "node-1.example.com" }, spec: { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] } }],
      [
        "Lease",
        { metadata: { name: "kube-scheduler", namespace: "kube-system" }, spec: { holderIdentity: "a", leaseDurationSeconds: 15 } },
      ],
      [
        "Event",
        {
          metadata: { name: "web.17a", namespace: "default" },
          involvedObject: { kind: "Pod", name: "web", namespace: "default" },
          reason: "Scheduled",
        },
      ],
      [
        "Endpoints",
        {
          metadata: { name: "web", namespace: "default" },
          subsets: [{ addresses: [{ ip: "10.0.0.1" }, { ip: "fd00::1" }], ports: [{ port: 80, protocol: "TCP" }] }],
        },
      ],
      ["ServiceAccount", { metadata: { name: "default", namespace: "default" } }],
    ];
    for (const [kind, obj] of objects) expect(validateCreate(info(kind), obj), kind).toEqual([]);
  });

  it("requires metadata.name with kube's message", () => {
    const errs = validateCreate(info("ConfigMap"), { metadata: { namespace: "default" } });
    expect(errs).toEqual([
      { field: "metadata.name", type: "FieldValueRequired", message: "Required value: name or generateName is required" },
    ]);
  });

  it("requires metadata.name even when generateName is set (the caller fills name first)", () => {
    expectError(
      validateCreate(info("ConfigMap"), { metadata: { generateName: "cfg-", namespace: "default" } }),
      "metadata.name",
      "FieldValueRequired",
    );
  });

  it("requires metadata when it is missing", () => {
    expectError(validateCreate(info("ConfigMap"), {}), "metadata.name", "FieldValueRequired");
  });

  it.each([
    ["ConfigMap", "Bad_Name", false],
    ["ConfigMap", "a.b.c", true],
    ["Pod", "web.v1", true],
    ["Pod", "-web", false],
    ["Node", "node-1.example.com", true],
    ["Node", "Node1", false],
    ["Namespace", "team-a", true],
    ["Namespace", "team.a", false],
    ["Service", "web", true],
    ["Service", "web.v1", false],
    ["Service", "1web", false],
    ["Deployment", "a".repeat(254), false],
  ])("checks the name format of a %s named %j (valid: %s)", (kind, name, ok) => {
    const i = info(kind);
    const obj: Obj = { metadata: { name, ...(i.namespaced ? { namespace: "default" } : {}) } };
    const errs = validateCreate(i, obj);
    expect(has(errs, "metadata.name", "FieldValueInvalid")).toBe(!ok);
  });

  it("words an invalid name like kube-apiserver", () => {
    const errs = validateCreate(info("ConfigMap"), { metadata: { name: "Bad", namespace: "default" } });
    expect(errs[0].message).toBe(
      `Invalid value: "Bad": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
    );
  });

  it("requires a namespace for namespaced kinds", () => {
    expectError(validateCreate(info("ConfigMap"), { metadata: { name: "a" } }), "metadata.namespace", "FieldValueRequired");
  });

  it("rejects an invalid namespace value", () => {
    expectError(
      validateCreate(info("ConfigMap"), { metadata: { name: "a", namespace: "Bad_NS" } }),
      "metadata.namespace",
      "FieldValueInvalid",
    );
  });

  it("forbids a namespace on cluster-scoped kinds", () => {
    expectError(
      validateCreate(info("Node"), { metadata: { name: "n", namespace: "default" } }),
      "metadata.namespace",
      "FieldValueForbidden",
    );
  });

  it("validates metadata labels and annotations", () => {
    const errs = validateCreate(info("ConfigMap"), {
      metadata: { name: "a", namespace: "d", labels: { "a b": "c" }, annotations: { "x y": "z" } },
    });
    expectError(errs, "metadata.labels", "FieldValueInvalid");
    expectError(errs, "metadata.annotations", "FieldValueInvalid");
  });

  it("validates finalizer names", () => {
    const errs = validateCreate(info("ConfigMap"), { metadata: { name: "a", namespace: "d", finalizers: ["example.com/ok", "bad name"] } });
    expectError(errs, "metadata.finalizers[1]", "FieldValueInvalid");
    expect(has(errs, "metadata.finalizers[0]", "FieldValueInvalid")).toBe(false);
  });

  describe("on update", () => {
    const old = { metadata: { name: "a", namespace: "d", uid: "u1", creationTimestamp: "2024-01-01T00:00:00Z" }, data: {} };

    it("accepts an unchanged object", () => {
      expect(validateUpdate(info("ConfigMap"), structuredClone(old), old)).toEqual([]);
    });

    it.each([
      ["metadata.name", (o: Obj) => (o.metadata.name = "b")],
      ["metadata.namespace", (o: Obj) => (o.metadata.namespace = "e")],
      ["metadata.uid", (o: Obj) => (o.metadata.uid = "u2")],
      ["metadata.creationTimestamp", (o: Obj) => (o.metadata.creationTimestamp = "2025-01-01T00:00:00Z")],
    ])("rejects a change to %s as immutable", (field, change) => {
      const errs = validateUpdate(info("ConfigMap"), edit(old, change), old);
      expectError(errs, field, "FieldValueInvalid");
      expect(errs.find((e) => e.field === field)!.message).toMatch(/: field is immutable$/);
    });

    it("ignores uid and creationTimestamp missing from the new object", () => {
      const errs = validateUpdate(
        info("ConfigMap"),
        edit(old, (o) => {
          delete o.metadata.uid;
          delete o.metadata.creationTimestamp;
        }),
        old,
      );
      expect(errs).toEqual([]);
    });
  });
});

describe("assertValid", () => {
  it("does nothing when there are no errors", () => {
    expect(() => assertValid(info("Pod"), [], "web")).not.toThrow();
  });

  it("throws a 422 Invalid naming the kind, group and every cause", () => {
    const errs = validateCreate(
      info("Deployment"),
      edit(DEPLOYMENT, (d) => (d.spec.replicas = -1)),
    );
    let caught: unknown;
    try {
      assertValid(info("Deployment"), errs, "web");
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ApiError);
    const status = (caught as ApiError).toStatus();
    expect(status).toMatchObject({ code: 422, reason: "Invalid", details: { name: "web", group: "apps", kind: "Deployment" } });
    expect(status.message).toBe('Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0');
    expect(status.details!.causes).toEqual([
      { reason: "FieldValueInvalid", message: "Invalid value: -1: must be greater than or equal to 0", field: "spec.replicas" },
    ]);
  });
});

describe("Pod", () => {
  const pod = info("Pod");
  const check = (change: (p: Obj) => void): FieldError[] => validateCreate(pod, edit(POD, change));

  it("accepts a valid pod", () => {
    expect(validateCreate(pod, POD)).toEqual([]);
  });

  it.each<[string, (p: Obj) => void, string, string]>([
    ["missing containers", (p) => delete p.spec.containers, "spec.containers", "FieldValueRequired"],
    ["empty containers", (p) => (p.spec.containers = []), "spec.containers", "FieldValueRequired"],
    ["missing spec", (p) => delete p.spec, "spec.containers", "FieldValueRequired"],
    ["missing container name", (p) => delete p.spec.containers[0].name, "spec.containers[0].name", "FieldValueRequired"],
    ["container name not a DNS label", (p) => (p.spec.containers[0].name = "Web_1"), "spec.containers[0].name", "FieldValueInvalid"],
    [
      "duplicate container names",
      (p) => p.spec.containers.push({ name: "web", image: "x" }),
      "spec.containers[1].name",
      "FieldValueDuplicate",
    ],
    [
      "init container named like a container",
      (p) => (p.spec.initContainers[0].name = "web"),
      "spec.initContainers[0].name",
      "FieldValueDuplicate",
    ],
    ["missing image", (p) => delete p.spec.containers[0].image, "spec.containers[0].image", "FieldValueRequired"],
    ["empty image", (p) => (p.spec.containers[0].image = ""), "spec.containers[0].image", "FieldValueRequired"],
    ["init container without image", (p) => delete p.spec.initContainers[0].image, "spec.initContainers[0].image", "FieldValueRequired"],
    ["image with whitespace", (p) => (p.spec.containers[0].image = " nginx"), "spec.containers[0].image", "FieldValueInvalid"],
    [
      "containerPort 0",
      (p) => (p.spec.containers[0].ports[0].containerPort = 0),
      "spec.containers[0].ports[0].containerPort",
      "FieldValueRequired",
    ],
    [
      "containerPort 65536",
      (p) => (p.spec.containers[0].ports[0].containerPort = 65536),
      "spec.containers[0].ports[0].containerPort",
      "FieldValueInvalid",
    ],
    [
      "containerPort negative",
      (p) => (p.spec.containers[0].ports[0].containerPort = -1),
      "spec.containers[0].ports[0].containerPort",
      "FieldValueInvalid",
    ],
    [
      "hostPort 70000",
      (p) => (p.spec.containers[0].ports[0].hostPort = 70000),
      "spec.containers[0].ports[0].hostPort",
      "FieldValueInvalid",
    ],
    [
      "protocol HTTP",
      (p) => (p.spec.containers[0].ports[0].protocol = "HTTP"),
      "spec.containers[0].ports[0].protocol",
      "FieldValueNotSupported",
    ],
    ["protocol empty", (p) => (p.spec.containers[0].ports[0].protocol = ""), "spec.containers[0].ports[0].protocol", "FieldValueRequired"],
    [
      "port name too long",
      (p) => (p.spec.containers[0].ports[0].name = "abcdefghijklmnop"),
      "spec.containers[0].ports[0].name",
      "FieldValueInvalid",
    ],
    [
      "duplicate port names",
      (p) => p.spec.containers[0].ports.push({ name: "http", containerPort: 81 }),
      "spec.containers[0].ports[1].name",
      "FieldValueDuplicate",
    ],
    [
      "env name starting with a digit",
      (p) => (p.spec.containers[0].env[0].name = "1ABC"),
      "spec.containers[0].env[0].name",
      "FieldValueInvalid",
    ],
    ["env name with a space", (p) => (p.spec.containers[0].env[0].name = "A B"), "spec.containers[0].env[0].name", "FieldValueInvalid"],
    ["env without name", (p) => (p.spec.containers[0].env[0].name = ""), "spec.containers[0].env[0].name", "FieldValueRequired"],
    ["restartPolicy Sometimes", (p) => (p.spec.restartPolicy = "Sometimes"), "spec.restartPolicy", "FieldValueNotSupported"],
    ["restartPolicy empty", (p) => (p.spec.restartPolicy = ""), "spec.restartPolicy", "FieldValueRequired"],
    ["dnsPolicy bogus", (p) => (p.spec.dnsPolicy = "Bogus"), "spec.dnsPolicy", "FieldValueNotSupported"],
    [
      "imagePullPolicy bogus",
      (p) => (p.spec.containers[0].imagePullPolicy = "Sometimes"),
      "spec.containers[0].imagePullPolicy",
      "FieldValueNotSupported",
    ],
    ["volume without name", (p) => (p.spec.volumes[0].name = ""), "spec.volumes[0].name", "FieldValueRequired"],
    ["volume name not a DNS label", (p) => (p.spec.volumes[0].name = "Data"), "spec.volumes[0].name", "FieldValueInvalid"],
    ["duplicate volume names", (p) => p.spec.volumes.push({ name: "data", emptyDir: {} }), "spec.volumes[1].name", "FieldValueDuplicate"],
    ["volume without a source", (p) => p.spec.volumes.push({ name: "x" }), "spec.volumes[1]", "FieldValueRequired"],
    ["volume with two sources", (p) => (p.spec.volumes[0].hostPath = { path: "/x" }), "spec.volumes[0].hostPath", "FieldValueForbidden"],
    [
      "configMap volume without a name",
      (p) => p.spec.volumes.push({ name: "c", configMap: {} }),
      "spec.volumes[1].configMap.name",
      "FieldValueRequired",
    ],
    [
      "secret volume without secretName",
      (p) => p.spec.volumes.push({ name: "s", secret: {} }),
      "spec.volumes[1].secret.secretName",
      "FieldValueRequired",
    ],
    [
      "defaultMode above 0777",
      (p) => p.spec.volumes.push({ name: "c", configMap: { name: "c", defaultMode: 512 } }),
      "spec.volumes[1].configMap.defaultMode",
      "FieldValueInvalid",
    ],
    [
      "mount of an unknown volume",
      (p) => (p.spec.containers[0].volumeMounts[0].name = "nope"),
      "spec.containers[0].volumeMounts[0].name",
      "FieldValueNotFound",
    ],
    [
      "mount without mountPath",
      (p) => delete p.spec.containers[0].volumeMounts[0].mountPath,
      "spec.containers[0].volumeMounts[0].mountPath",
      "FieldValueRequired",
    ],
    [
      "duplicate mountPath",
      (p) => p.spec.containers[0].volumeMounts.push({ name: "data", mountPath: "/data" }),
      "spec.containers[0].volumeMounts[1].mountPath",
      "FieldValueInvalid",
    ],
    [
      "cpu request above limit",
      (p) => (p.spec.containers[0].resources.requests.cpu = "2"),
      "spec.containers[0].resources.requests[cpu]",
      "FieldValueInvalid",
    ],
    [
      "memory request above limit",
      (p) => (p.spec.containers[0].resources.requests.memory = "1Gi"),
      "spec.containers[0].resources.requests[memory]",
      "FieldValueInvalid",
    ],
    [
      "unparsable limit",
      (p) => (p.spec.containers[0].resources.limits.cpu = "lots"),
      "spec.containers[0].resources.limits[cpu]",
      "FieldValueInvalid",
    ],
    [
      "unparsable request",
      (p) => (p.spec.containers[0].resources.requests.memory = "1 GB"),
      "spec.containers[0].resources.requests[memory]",
      "FieldValueInvalid",
    ],
    [
      "negative request",
      (p) => (p.spec.containers[0].resources.requests.cpu = "-1"),
      "spec.containers[0].resources.requests[cpu]",
      "FieldValueInvalid",
    ],
    ["activeDeadlineSeconds 0", (p) => (p.spec.activeDeadlineSeconds = 0), "spec.activeDeadlineSeconds", "FieldValueInvalid"],
    ["nodeName not a subdomain", (p) => (p.spec.nodeName = "Node_1"), "spec.nodeName", "FieldValueInvalid"],
    [
      "toleration effect bogus",
      (p) => (p.spec.tolerations = [{ key: "k", operator: "Exists", effect: "Bogus" }]),
      "spec.tolerations[0].effect",
      "FieldValueNotSupported",
    ],
    [
      "toleration operator bogus",
      (p) => (p.spec.tolerations = [{ key: "k", operator: "Maybe" }]),
      "spec.tolerations[0].operator",
      "FieldValueNotSupported",
    ],
    [
      "toleration Exists with a value",
      (p) => (p.spec.tolerations = [{ key: "k", operator: "Exists", value: "v" }]),
      "spec.tolerations[0].operator",
      "FieldValueInvalid",
    ],
    ["nodeSelector with a bad value", (p) => (p.spec.nodeSelector = { a: "b c" }), "spec.nodeSelector", "FieldValueInvalid"],
    ["containers that are not a list", (p) => (p.spec.containers = { name: "x" }), "spec.containers", "FieldValueInvalid"],
  ])("rejects %s", (_, change, field, type) => {
    expectError(check(change), field, type);
  });

  it("accepts requests equal to limits written in other units", () => {
    expect(
      check(
        (p) => (p.spec.containers[0].resources = { requests: { cpu: "1000m", memory: "1Gi" }, limits: { cpu: "1", memory: "1024Mi" } }),
      ),
    ).toEqual([]);
  });

  it("accepts numeric quantities", () => {
    expect(check((p) => (p.spec.containers[0].resources = { requests: { cpu: 0.5 }, limits: { cpu: 1 } }))).toEqual([]);
  });

  it("accepts a request without a limit and a limit without a request", () => {
    expect(check((p) => (p.spec.containers[0].resources = { requests: { cpu: "4" }, limits: { memory: "1Gi" } }))).toEqual([]);
  });

  it("words request-above-limit like kube-apiserver", () => {
    const errs = check((p) => (p.spec.containers[0].resources.requests.cpu = "2"));
    expect(errs.find((e) => e.field === "spec.containers[0].resources.requests[cpu]")!.message).toBe(
      'Invalid value: "2": must be less than or equal to cpu limit of 1',
    );
  });

  it("lists the supported values for restartPolicy", () => {
    const errs = check((p) => (p.spec.restartPolicy = "Sometimes"));
    expect(errs[0].message).toBe('Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"');
  });

  it("accepts the default tolerations", () => {
    expect(
      check(
        (p) =>
          (p.spec.tolerations = [
            { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
            { operator: "Exists" },
          ]),
      ),
    ).toEqual([]);
  });

  describe("on update", () => {
    const upd = (change: (p: Obj) => void, old: Obj = POD): FieldError[] => validateUpdate(pod, edit(old, change), old);

    it("accepts an unchanged pod", () => {
      expect(upd(() => {})).toEqual([]);
    });

    it.each<[string, (p: Obj) => void]>([
      ["container image", (p) => (p.spec.containers[0].image = "nginx:1.28")],
      ["init container image", (p) => (p.spec.initContainers[0].image = "busybox:1.36")],
      ["activeDeadlineSeconds (newly set)", (p) => (p.spec.activeDeadlineSeconds = 30)],
      ["tolerations", (p) => (p.spec.tolerations = [{ key: "k", operator: "Exists" }])],
      ["labels", (p) => (p.metadata.labels.extra = "yes")],
      ["status", (p) => (p.status = { phase: "Running" })],
      ["nodeName when unset (binding)", (p) => (p.spec.nodeName = "node-1")],
    ])("allows changing %s", (_, change) => {
      expect(upd(change)).toEqual([]);
    });

    it.each<[string, (p: Obj) => void]>([
      ["container name", (p) => (p.spec.containers[0].name = "web2")],
      ["container env", (p) => (p.spec.containers[0].env[0].value = "y")],
      ["container ports", (p) => (p.spec.containers[0].ports[0].containerPort = 81)],
      ["restartPolicy", (p) => (p.spec.restartPolicy = "Never")],
      ["volumes", (p) => p.spec.volumes.push({ name: "more", emptyDir: {} })],
      ["added container", (p) => p.spec.containers.push({ name: "side", image: "x" })],
      ["serviceAccountName", (p) => (p.spec.serviceAccountName = "other")],
    ])("forbids changing %s at spec", (_, change) => {
      const errs = upd(change);
      expectError(errs, "spec", "FieldValueForbidden");
      expect(errs.find((e) => e.field === "spec")!.message).toMatch(
        /^Forbidden: pod updates may not change fields other than `spec.containers\[\*\].image`/,
      );
    });

    it("forbids changing nodeName once set", () => {
      const bound = edit(POD, (p) => (p.spec.nodeName = "node-1"));
      expectError(
        upd((p) => (p.spec.nodeName = "node-2"), bound),
        "spec",
        "FieldValueForbidden",
      );
      expectError(
        upd((p) => delete p.spec.nodeName, bound),
        "spec",
        "FieldValueForbidden",
      );
      expect(upd((p) => (p.spec.containers[0].image = "x"), bound)).toEqual([]);
    });

    it("forbids raising or removing activeDeadlineSeconds", () => {
      const old = edit(POD, (p) => (p.spec.activeDeadlineSeconds = 60));
      expectError(
        upd((p) => (p.spec.activeDeadlineSeconds = 120), old),
        "spec.activeDeadlineSeconds",
        "FieldValueInvalid",
      );
      expectError(
        upd((p) => delete p.spec.activeDeadlineSeconds, old),
        "spec.activeDeadlineSeconds",
        "FieldValueInvalid",
      );
      expect(upd((p) => (p.spec.activeDeadlineSeconds = 30), old)).toEqual([]);
    });

    it("treats absent, null and empty lists alike", () => {
      const old = edit(POD, (p) => (p.spec.containers[0].args = []));
      expect(upd((p) => delete p.spec.containers[0].args, old)).toEqual([]);
    });

    it("still validates the new spec", () => {
      expectError(
        upd((p) => (p.spec.containers[0].image = "")),
        "spec.containers[0].image",
        "FieldValueRequired",
      );
    });
  });
});

describe.each([
  ["Deployment", DEPLOYMENT],
  ["ReplicaSet", REPLICASET],
])("%s", (kind, base) => {
  const i = info(kind);
  const check = (change: (o: Obj) => void): FieldError[] => validateCreate(i, edit(base, change));

  it("accepts a valid object", () => {
    expect(validateCreate(i, base)).toEqual([]);
  });

  it.each<[string, (o: Obj) => void, string, string]>([
    ["missing selector", (o) => delete o.spec.selector, "spec.selector", "FieldValueRequired"],
    ["empty selector", (o) => (o.spec.selector = {}), "spec.selector", "FieldValueInvalid"],
    ["empty matchLabels", (o) => (o.spec.selector = { matchLabels: {} }), "spec.selector", "FieldValueInvalid"],
    [
      "selector with a bad label value",
      (o) => (o.spec.selector = { matchLabels: { app: "a b" } }),
      "spec.selector.matchLabels",
      "FieldValueInvalid",
    ],
    [
      "selector with a bad operator",
      (o) => (o.spec.selector = { matchExpressions: [{ key: "app", operator: "Like", values: ["web"] }] }),
      "spec.selector.matchExpressions[0].operator",
      "FieldValueInvalid",
    ],
    [
      "In without values",
      (o) => (o.spec.selector = { matchExpressions: [{ key: "app", operator: "In", values: [] }] }),
      "spec.selector.matchExpressions[0].values",
      "FieldValueRequired",
    ],
    [
      "Exists with values",
      (o) => (o.spec.selector = { matchExpressions: [{ key: "app", operator: "Exists", values: ["x"] }] }),
      "spec.selector.matchExpressions[0].values",
      "FieldValueForbidden",
    ],
    [
      "selector not matching template labels",
      (o) => (o.spec.template.metadata.labels = { app: "other" }),
      "spec.template.metadata.labels",
      "FieldValueInvalid",
    ],
    ["template without labels", (o) => delete o.spec.template.metadata, "spec.template.metadata.labels", "FieldValueInvalid"],
    ["missing template", (o) => delete o.spec.template, "spec.template", "FieldValueRequired"],
    ["negative replicas", (o) => (o.spec.replicas = -1), "spec.replicas", "FieldValueInvalid"],
    ["fractional replicas", (o) => (o.spec.replicas = 1.5), "spec.replicas", "FieldValueInvalid"],
    ["template without containers", (o) => (o.spec.template.spec.containers = []), "spec.template.spec.containers", "FieldValueRequired"],
    [
      "template container without image",
      (o) => delete o.spec.template.spec.containers[0].image,
      "spec.template.spec.containers[0].image",
      "FieldValueRequired",
    ],
    [
      "template restartPolicy Never",
      (o) => (o.spec.template.spec.restartPolicy = "Never"),
      "spec.template.spec.restartPolicy",
      "FieldValueNotSupported",
    ],
    [
      "template activeDeadlineSeconds",
      (o) => (o.spec.template.spec.activeDeadlineSeconds = 10),
      "spec.template.spec.activeDeadlineSeconds",
      "FieldValueForbidden",
    ],
    [
      "bad template label",
      (o) => (o.spec.template.metadata.labels["bad key!"] = "x"),
      "spec.template.metadata.labels",
      "FieldValueInvalid",
    ],
  ])("rejects %s", (_, change, field, type) => {
    expectError(check(change), field, type);
  });

  it("words the selector mismatch like kube-apiserver", () => {
    const errs = check((o) => (o.spec.template.metadata.labels = { app: "other" }));
    expect(errs.find((e) => e.field === "spec.template.metadata.labels")!.message).toMatch(
      /: `selector` does not match template `labels`$/,
    );
  });

  it.each<[string, Obj, Obj, boolean]>([
    ["matchLabels subset", { matchLabels: { app: "web" } }, { app: "web", x: "y" }, true],
    ["In", { matchExpressions: [{ key: "app", operator: "In", values: ["a", "web"] }] }, { app: "web" }, true],
    ["NotIn", { matchExpressions: [{ key: "app", operator: "NotIn", values: ["web"] }] }, { app: "web" }, false],
    ["Exists", { matchExpressions: [{ key: "app", operator: "Exists" }] }, { app: "x" }, true],
    ["DoesNotExist", { matchExpressions: [{ key: "app", operator: "DoesNotExist" }] }, { app: "x" }, false],
    ["In on a missing key", { matchExpressions: [{ key: "tier", operator: "In", values: ["a"] }] }, { app: "x" }, false],
  ])("matches template labels against a %s selector", (_, selector, labels, ok) => {
    const errs = check((o) => {
      o.spec.selector = selector;
      o.spec.template.metadata.labels = labels;
    });
    expect(has(errs, "spec.template.metadata.labels", "FieldValueInvalid")).toBe(!ok);
  });

  it("allows replicas 0", () => {
    expect(check((o) => (o.spec.replicas = 0))).toEqual([]);
  });

  it("rejects a change of selector on update", () => {
    const errs = validateUpdate(
      i,
      edit(base, (o) => {
        o.spec.selector = { matchLabels: { app: "web", tier: "front" } };
        o.spec.template.metadata.labels = { app: "web", tier: "front" };
      }),
      base,
    );
    expectError(errs, "spec.selector", "FieldValueInvalid");
    expect(errs.find((e) => e.field === "spec.selector")!.message).toMatch(/: field is immutable$/);
  });

  it("allows other spec changes on update", () => {
    expect(
      validateUpdate(
        i,
        edit(base, (o) => {
          o.spec.replicas = 5;
          o.spec.template.spec.containers[0].image = "nginx:2";
        }),
        base,
      ),
    ).toEqual([]);
  });
});

describe("Deployment strategy", () => {
  const i = info("Deployment");
  const check = (change: (o: Obj) => void): FieldError[] => validateCreate(i, edit(DEPLOYMENT, change));
  const ru = "spec.strategy.rollingUpdate";

  it.each<[string, (o: Obj) => void, string, string]>([
    ["an unknown type", (o) => (o.spec.strategy = { type: "BlueGreen" }), "spec.strategy.type", "FieldValueNotSupported"],
    ["rollingUpdate with Recreate", (o) => (o.spec.strategy.type = "Recreate"), `${ru}`, "FieldValueForbidden"],
    ["RollingUpdate without rollingUpdate", (o) => delete o.spec.strategy.rollingUpdate, `${ru}`, "FieldValueRequired"],
    [
      "maxSurge and maxUnavailable both 0",
      (o) => (o.spec.strategy.rollingUpdate = { maxSurge: 0, maxUnavailable: 0 }),
      `${ru}.maxUnavailable`,
      "FieldValueInvalid",
    ],
    [
      "maxSurge and maxUnavailable both 0%",
      (o) => (o.spec.strategy.rollingUpdate = { maxSurge: "0%", maxUnavailable: "0%" }),
      `${ru}.maxUnavailable`,
      "FieldValueInvalid",
    ],
    [
      "maxSurge 0 and maxUnavailable 0%",
      (o) => (o.spec.strategy.rollingUpdate = { maxSurge: 0, maxUnavailable: "0%" }),
      `${ru}.maxUnavailable`,
      "FieldValueInvalid",
    ],
    ["a malformed percent", (o) => (o.spec.strategy.rollingUpdate.maxSurge = "25"), `${ru}.maxSurge`, "FieldValueInvalid"],
    ["a negative int", (o) => (o.spec.strategy.rollingUpdate.maxUnavailable = -1), `${ru}.maxUnavailable`, "FieldValueInvalid"],
    [
      "maxUnavailable above 100%",
      (o) => (o.spec.strategy.rollingUpdate.maxUnavailable = "150%"),
      `${ru}.maxUnavailable`,
      "FieldValueInvalid",
    ],
    ["negative revisionHistoryLimit", (o) => (o.spec.revisionHistoryLimit = -1), "spec.revisionHistoryLimit", "FieldValueInvalid"],
    [
      "progressDeadlineSeconds not above minReadySeconds",
      (o) => Object.assign(o.spec, { minReadySeconds: 10, progressDeadlineSeconds: 10 }),
      "spec.progressDeadlineSeconds",
      "FieldValueInvalid",
    ],
  ])("rejects %s", (_, change, field, type) => {
    expectError(check(change), field, type);
  });

  it.each<[string, (o: Obj) => void]>([
    ["Recreate without rollingUpdate", (o) => (o.spec.strategy = { type: "Recreate" })],
    ["maxSurge 0 with maxUnavailable 1", (o) => (o.spec.strategy.rollingUpdate = { maxSurge: 0, maxUnavailable: 1 })],
    ["maxSurge 100% with maxUnavailable 0", (o) => (o.spec.strategy.rollingUpdate = { maxSurge: "100%", maxUnavailable: 0 })],
  ])("accepts %s", (_, change) => {
    expect(check(change)).toEqual([]);
  });
});

describe("Service", () => {
  const i = info("Service");
  const check = (change: (o: Obj) => void): FieldError[] => validateCreate(i, edit(SERVICE, change));

  it("accepts a valid service", () => {
    expect(validateCreate(i, SERVICE)).toEqual([]);
  });

  it.each<[string, (o: Obj) => void, string, string]>([
    ["no ports", (o) => (o.spec.ports = []), "spec.ports", "FieldValueRequired"],
    ["port 0", (o) => (o.spec.ports[0].port = 0), "spec.ports[0].port", "FieldValueInvalid"],
    ["port 65536", (o) => (o.spec.ports[0].port = 65536), "spec.ports[0].port", "FieldValueInvalid"],
    ["missing port", (o) => delete o.spec.ports[0].port, "spec.ports[0].port", "FieldValueRequired"],
    ["unnamed port among several", (o) => delete o.spec.ports[1].name, "spec.ports[1].name", "FieldValueRequired"],
    ["duplicate port names", (o) => (o.spec.ports[1].name = "http"), "spec.ports[1].name", "FieldValueDuplicate"],
    ["port name not a DNS label", (o) => (o.spec.ports[0].name = "HTTP"), "spec.ports[0].name", "FieldValueInvalid"],
    ["duplicate port and protocol", (o) => (o.spec.ports[1].port = 80), "spec.ports[1]", "FieldValueDuplicate"],
    ["protocol ICMP", (o) => (o.spec.ports[0].protocol = "ICMP"), "spec.ports[0].protocol", "FieldValueNotSupported"],
    ["targetPort out of range", (o) => (o.spec.ports[0].targetPort = 70000), "spec.ports[0].targetPort", "FieldValueInvalid"],
    ["targetPort bad name", (o) => (o.spec.ports[0].targetPort = "Bad_Name"), "spec.ports[0].targetPort", "FieldValueInvalid"],
    ["type bogus", (o) => (o.spec.type = "Bogus"), "spec.type", "FieldValueNotSupported"],
    ["nodePort on ClusterIP", (o) => (o.spec.ports[0].nodePort = 30080), "spec.ports[0].nodePort", "FieldValueForbidden"],
    // Whether a nodePort lies in SERVICE_NODE_PORT_RANGE is the allocator's check (services.test.ts).
    [
      "nodePort not a port number",
      (o) => Object.assign(o.spec, { type: "NodePort" }) && (o.spec.ports[0].nodePort = 70000),
      "spec.ports[0].nodePort",
      "FieldValueInvalid",
    ],
    [
      "nodePort not an integer",
      (o) => Object.assign(o.spec, { type: "NodePort" }) && (o.spec.ports[0].nodePort = 30000.5),
      "spec.ports[0].nodePort",
      "FieldValueInvalid",
    ],
    [
      "clusterIP on ExternalName",
      (o) => Object.assign(o.spec, { type: "ExternalName", externalName: "db.example.com", ports: [] }),
      "spec.clusterIP",
      "FieldValueForbidden",
    ],
    [
      "duplicate nodePort",
      (o) => {
        o.spec.type = "NodePort";
        o.spec.ports[0].nodePort = 30080;
        o.spec.ports[1].nodePort = 30080;
      },
      "spec.ports[1].nodePort",
      "FieldValueDuplicate",
    ],
    ["clusterIP not an IP", (o) => (o.spec.clusterIP = "10.0.0.300"), "spec.clusterIP", "FieldValueInvalid"],
    ["headless NodePort", (o) => Object.assign(o.spec, { type: "NodePort", clusterIP: "None" }), "spec.clusterIP", "FieldValueInvalid"],
    ["ExternalName without externalName", (o) => (o.spec = { type: "ExternalName" }), "spec.externalName", "FieldValueRequired"],
    ["sessionAffinity bogus", (o) => (o.spec.sessionAffinity = "Sticky"), "spec.sessionAffinity", "FieldValueNotSupported"],
    ["selector with a bad value", (o) => (o.spec.selector = { app: "a b" }), "spec.selector", "FieldValueInvalid"],
    ["ipFamilies bogus", (o) => (o.spec.ipFamilies = ["IPv5"]), "spec.ipFamilies[0]", "FieldValueNotSupported"],
  ])("rejects %s", (_, change, field, type) => {
    expectError(check(change), field, type);
  });

  it.each<[string, (o: Obj) => void]>([
    ["a single unnamed port", (o) => (o.spec.ports = [{ port: 80 }])],
    [
      "the same port on TCP and UDP",
      (o) =>
        (o.spec.ports = [
          { name: "dns", port: 53, protocol: "UDP" },
          { name: "dns-tcp", port: 53, protocol: "TCP" },
        ]),
    ],
    ["a headless service without ports", (o) => Object.assign(o.spec, { clusterIP: "None", ports: [] })],
    ["an ExternalName service without ports", (o) => (o.spec = { type: "ExternalName", externalName: "db.example.com." })],
    ["a NodePort in range", (o) => Object.assign(o.spec, { type: "NodePort" }) && (o.spec.ports[0].nodePort = 30000)],
    ["an IPv6 clusterIP", (o) => (o.spec.clusterIP = "fd00:10:96::a")],
    ["no clusterIP yet", (o) => delete o.spec.clusterIP],
  ])("accepts %s", (_, change) => {
    expect(check(change)).toEqual([]);
  });

  it("rejects a change of clusterIP on update", () => {
    const errs = validateUpdate(
      i,
      edit(SERVICE, (o) => (o.spec.clusterIP = "10.96.0.11")),
      SERVICE,
    );
    expectError(errs, "spec.clusterIP", "FieldValueInvalid");
  });

  it("rejects changing clusterIP to None on update", () => {
    expectError(
      validateUpdate(
        i,
        edit(SERVICE, (o) => (o.spec.clusterIP = "None")),
        SERVICE,
      ),
      "spec.clusterIP",
      "FieldValueInvalid",
    );
  });

  it("allows an update that omits clusterIP or sets it for the first time", () => {
    expect(
      validateUpdate(
        i,
        edit(SERVICE, (o) => delete o.spec.clusterIP),
        SERVICE,
      ),
    ).toEqual([]);
    const unallocated = edit(SERVICE, (o) => delete o.spec.clusterIP);
    expect(validateUpdate(i, SERVICE, unallocated)).toEqual([]);
  });

  it("allows other spec changes on update", () => {
    expect(
      validateUpdate(
        i,
        edit(SERVICE, (o) => (o.spec.ports[0].port = 8080)),
        SERVICE,
      ),
    ).toEqual([]);
  });
});

describe("ConfigMap", () => {
  const i = info("ConfigMap");
  const check = (change: (o: Obj) => void): FieldError[] => validateCreate(i, edit(CONFIGMAP, change));

  it.each<[string, (o: Obj) => void, string, string]>([
    ["a key with a slash", (o) => (o.data["a/b"] = "x"), "data[a/b]", "FieldValueInvalid"],
    ["a key with a space", (o) => (o.data["a b"] = "x"), "data[a b]", "FieldValueInvalid"],
    ["the key '.'", (o) => (o.data["."] = "x"), "data[.]", "FieldValueInvalid"],
    ["a key starting with '..'", (o) => (o.data["..a"] = "x"), "data[..a]", "FieldValueInvalid"],
    ["a key longer than 253", (o) => (o.data["k".repeat(254)] = "x"), `data[${"k".repeat(254)}]`, "FieldValueInvalid"],
    ["a non-string value", (o) => (o.data.n = 1), "data[n]", "FieldValueInvalid"],
    ["a bad binaryData key", (o) => (o.binaryData["a:b"] = "AA=="), "binaryData[a:b]", "FieldValueInvalid"],
    ["binaryData that is not base64", (o) => (o.binaryData.blob = "not base64!"), "binaryData[blob]", "FieldValueInvalid"],
    ["a key in both data and binaryData", (o) => (o.binaryData.KEY_1 = "AA=="), "binaryData", "FieldValueInvalid"],
    ["more than 1MiB of data", (o) => (o.data.big = "x".repeat(1024 * 1024 + 1)), "data", "FieldValueTooLong"],
  ])("rejects %s", (_, change, field, type) => {
    expectError(check(change), field, type);
  });

  describe("with immutable: true", () => {
    const old = edit(CONFIGMAP, (o) => (o.immutable = true));

    it("accepts an update that leaves data alone", () => {
      expect(
        validateUpdate(
          i,
          edit(old, (o) => (o.metadata.labels = { a: "b" })),
          old,
        ),
      ).toEqual([]);
    });

    it.each<[string, (o: Obj) => void, string]>([
      ["a data change", (o) => (o.data.KEY_1 = "changed"), "data"],
      ["a binaryData change", (o) => (o.binaryData.blob = "AAED"), "binaryData"],
      ["unsetting immutable", (o) => (o.immutable = false), "immutable"],
    ])("rejects %s", (_, change, field) => {
      expectError(validateUpdate(i, edit(old, change), old), field, "FieldValueForbidden");
    });
  });

  it("allows data changes when not immutable", () => {
    expect(
      validateUpdate(
        i,
        edit(CONFIGMAP, (o) => (o.data.KEY_1 = "changed")),
        CONFIGMAP,
      ),
    ).toEqual([]);
  });
});

describe("Secret", () => {
  const i = info("Secret");
  const check = (change: (o: Obj) => void): FieldError[] => validateCreate(i, edit(SECRET, change));

  it.each([
    ["", true],
    ["YQ==", true],
    ["YWI=", true],
    ["YWJj", true],
    ["aHVudGVyMg==", true],
    ["YQ", false],
    ["YQ=", false],
    ["hunter2", false],
    ["YW Jj", false],
    ["YW-j", false],
  ])("checks that data value %j is base64 (valid: %s)", (v, ok) => {
    const errs = check((o) => (o.data.password = v));
    expect(has(errs, "data[password]", "FieldValueInvalid")).toBe(!ok);
  });

  it("does not echo secret values in messages", () => {
    const errs = check((o) => (o.data.password = "hunter2"));
    expect(errs[0].message).not.toContain("hunter2");
  });

  it.each<[string, (o: Obj) => void, string, string]>([
    ["a bad data key", (o) => (o.data["a/b"] = "YQ=="), "data[a/b]", "FieldValueInvalid"],
    ["a bad stringData key", (o) => (o.stringData = { "a b": "x" }), "stringData[a b]", "FieldValueInvalid"],
    ["a non-string stringData value", (o) => (o.stringData = { a: 1 }), "stringData[a]", "FieldValueInvalid"],
    [
      "a tls secret without tls.key",
      (o) => Object.assign(o, { type: "kubernetes.io/tls", data: { "tls.crt": "YQ==" } }),
      "data[tls.key]",
      "FieldValueRequired",
    ],
    [
      "a dockerconfigjson secret without its key",
      (o) => (o.type = "kubernetes.io/dockerconfigjson"),
      "data[.dockerconfigjson]",
      "FieldValueRequired",
    ],
    [
      "a service account token without the annotation",
      (o) => (o.type = "kubernetes.io/service-account-token"),
      "metadata.annotations[kubernetes.io/service-account.name]",
      "FieldValueRequired",
    ],
    ["more than 1MiB of data", (o) => (o.stringData = { big: "x".repeat(1024 * 1024 + 1) }), "data", "FieldValueTooLong"],
  ])("rejects %s", (_, change, field, type) => {
    expectError(check(change), field, type);
  });

  it("accepts a tls secret whose keys come from stringData", () => {
    expect(check((o) => Object.assign(o, { type: "kubernetes.io/tls", data: {}, stringData: { "tls.crt": "c", "tls.key": "k" } }))).toEqual(
      [],
    );
  });

  it("rejects a change of type on update", () => {
    const errs = validateUpdate(
      i,
      edit(SECRET, (o) => (o.type = "kubernetes.io/basic-auth")),
      SECRET,
    );
    expectError(errs, "type", "FieldValueInvalid");
  });

  describe("with immutable: true", () => {
    const old = edit(SECRET, (o) => (o.immutable = true));

    it("rejects a data change", () => {
      expectError(
        validateUpdate(
          i,
          edit(old, (o) => (o.data.password = "YQ==")),
          old,
        ),
        "data",
        "FieldValueForbidden",
      );
    });

    it("rejects a change made through stringData", () => {
      expectError(
        validateUpdate(
          i,
          edit(old, (o) => (o.stringData = { password: "other" })),
          old,
        ),
        "data",
        "FieldValueForbidden",
      );
    });

    it("accepts stringData that restates the same value", () => {
      expect(
        validateUpdate(
          i,
          edit(old, (o) => (o.stringData = { password: "hunter2" })),
          old,
        ),
      ).toEqual([]);
    });

    it("rejects unsetting immutable", () => {
      expectError(
        validateUpdate(
          i,
          edit(old, (o) => delete o.immutable),
          old,
        ),
        "immutable",
        "FieldValueForbidden",
      );
    });
  });
});

describe("Namespace", () => {
  const i = info("Namespace");

  it("rejects a name that is a subdomain but not a label", () => {
    expectError(validateCreate(i, { metadata: { name: "a.b" } }), "metadata.name", "FieldValueInvalid");
  });

  it("rejects a finalizer that is neither standard nor qualified", () => {
    expectError(
      validateCreate(i, { metadata: { name: "a" }, spec: { finalizers: ["custom"] } }),
      "spec.finalizers[0]",
      "FieldValueInvalid",
    );
  });

  it("accepts a domain-qualified finalizer", () => {
    expect(validateCreate(i, { metadata: { name: "a" }, spec: { finalizers: ["example.com/cleanup"] } })).toEqual([]);
  });

  it("rejects a rename on update", () => {
    const old = { metadata: { name: "a" } };
    expectError(validateUpdate(i, { metadata: { name: "b" } }, old), "metadata.name", "FieldValueInvalid");
  });
});

describe("Node", () => {
  const i = info("Node");
  const node = (taints: unknown[]): Obj => ({ metadata: { name: "node-1" }, spec: { taints } });

  it.each<[string, Obj, string, string]>([
    ["a bad effect", { key: "k", effect: "NoWay" }, "spec.taints[0].effect", "FieldValueNotSupported"],
    ["a missing effect", { key: "k" }, "spec.taints[0].effect", "FieldValueRequired"],
    ["a key that is not a qualified name", { key: "bad key", effect: "NoSchedule" }, "spec.taints[0].key", "FieldValueInvalid"],
    ["an empty key", { key: "", effect: "NoSchedule" }, "spec.taints[0].key", "FieldValueInvalid"],
    ["a bad value", { key: "k", value: "a b", effect: "NoSchedule" }, "spec.taints[0].value", "FieldValueInvalid"],
  ])("rejects a taint with %s", (_, taint, field, type) => {
    expectError(validateCreate(i, node([taint])), field, type);
  });

  it("rejects duplicate taints by key and effect", () => {
    const errs = validateCreate(
      i,
      node([
        { key: "k", effect: "NoSchedule" },
        { key: "k", value: "v", effect: "NoSchedule" },
      ]),
    );
    expectError(errs, "spec.taints[1]", "FieldValueDuplicate");
  });

  it("accepts the same key with different effects", () => {
    expect(
      validateCreate(
        i,
        node([
          { key: "node.kubernetes.io/not-ready", effect: "NoSchedule" },
          { key: "node.kubernetes.io/not-ready", effect: "NoExecute" },
        ]),
      ),
    ).toEqual([]);
  });

  it("lists the taint effects kube-apiserver lists", () => {
    const [e] = validateCreate(i, node([{ key: "k", effect: "NoWay" }]));
    expect(e.message).toBe('Unsupported value: "NoWay": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"');
  });
});

describe("Lease", () => {
  const i = info("Lease");
  const lease = (spec: Obj): Obj => ({ metadata: { name: "l", namespace: "kube-system" }, spec });

  it.each([
    ["no holder", {}],
    ["a holder and positive duration", { holderIdentity: "node-1_abc", leaseDurationSeconds: 40, leaseTransitions: 3 }],
  ])("accepts a lease with %s", (_, spec) => {
    expect(validateCreate(i, lease(spec))).toEqual([]);
  });

  it.each([0, -5])("rejects leaseDurationSeconds %d", (n) => {
    expectError(validateCreate(i, lease({ leaseDurationSeconds: n })), "spec.leaseDurationSeconds", "FieldValueInvalid");
  });

  it("rejects negative leaseTransitions", () => {
    expectError(validateCreate(i, lease({ leaseTransitions: -1 })), "spec.leaseTransitions", "FieldValueInvalid");
  });
});

describe("Event", () => {
  const i = info("Event");
  const meta = { name: "e1", namespace: "default" };

  it("requires involvedObject", () => {
    expectError(validateCreate(i, { metadata: meta }), "involvedObject", "FieldValueRequired");
    expectError(validateCreate(i, { metadata: meta, involvedObject: {} }), "involvedObject", "FieldValueRequired");
  });

  it("accepts an involvedObject with only a kind", () => {
    expect(validateCreate(i, { metadata: meta, involvedObject: { kind: "Node" } })).toEqual([]);
  });

  it("rejects an involvedObject in another namespace", () => {
    expectError(
      validateCreate(i, { metadata: meta, involvedObject: { kind: "Pod", name: "p", namespace: "other" } }),
      "involvedObject.namespace",
      "FieldValueInvalid",
    );
  });
});

describe("Endpoints", () => {
  const i = info("Endpoints");
  const ep = (subsets: unknown[]): Obj => ({ metadata: { name: "web", namespace: "default" }, subsets });

  it("accepts endpoints without subsets", () => {
    expect(validateCreate(i, ep([]))).toEqual([]);
  });

  it.each<[string, unknown[], string, string]>([
    [
      "an address without ip",
      [{ addresses: [{ hostname: "x" }], ports: [{ port: 80 }] }],
      "subsets[0].addresses[0].ip",
      "FieldValueRequired",
    ],
    [
      "an address that is not an IP",
      [{ addresses: [{ ip: "web" }], ports: [{ port: 80 }] }],
      "subsets[0].addresses[0].ip",
      "FieldValueInvalid",
    ],
    [
      "a not-ready address without ip",
      [{ notReadyAddresses: [{}], ports: [{ port: 80 }] }],
      "subsets[0].notReadyAddresses[0].ip",
      "FieldValueRequired",
    ],
    ["port 0", [{ addresses: [{ ip: "10.0.0.1" }], ports: [{ port: 0 }] }], "subsets[0].ports[0].port", "FieldValueInvalid"],
    ["port 65536", [{ addresses: [{ ip: "10.0.0.1" }], ports: [{ port: 65536 }] }], "subsets[0].ports[0].port", "FieldValueInvalid"],
    [
      "a bad protocol",
      [{ addresses: [{ ip: "10.0.0.1" }], ports: [{ port: 80, protocol: "TPC" }] }],
      "subsets[0].ports[0].protocol",
      "FieldValueNotSupported",
    ],
    ["a subset with no addresses", [{ ports: [{ port: 80 }] }], "subsets[0]", "FieldValueRequired"],
    [
      "unnamed ports among several",
      [{ addresses: [{ ip: "10.0.0.1" }], ports: [{ port: 80 }, { port: 81 }] }],
      "subsets[0].ports[0].name",
      "FieldValueRequired",
    ],
  ])("rejects %s", (_, subsets, field, type) => {
    expectError(validateCreate(i, ep(subsets)), field, type);
  });
});
