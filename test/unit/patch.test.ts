import { describe, expect, it } from "vitest";
import { ApiError } from "../../workers/shared/errors.ts";
import {
  applyJsonPatch,
  applyMergePatch,
  applyPatch,
  applyStrategicMergePatch,
  type PatchType,
  patchTypeOf,
} from "../../workers/shared/patch.ts";

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to throw");
}

function expectApiError(fn: () => unknown, code: number, reason: string): ApiError {
  const e = caught(fn);
  expect(e).toBeInstanceOf(ApiError);
  const err = e as ApiError;
  expect({ code: err.code, reason: err.reason }).toEqual({ code, reason });
  return err;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

const names = (list: unknown): unknown[] => (list as Array<{ name: unknown }>).map((c) => c.name);

describe("patchTypeOf", () => {
  it.each([
    ["application/json-patch+json", "json"],
    ["application/merge-patch+json", "merge"],
    ["application/strategic-merge-patch+json", "strategic"],
    ["application/strategic-merge-patch+json; charset=utf-8", "strategic"],
    ["application/merge-patch+json;charset=UTF-8", "merge"],
    ["Application/JSON-Patch+JSON", "json"],
    ["application/json", undefined],
    ["application/apply-patch+yaml", undefined],
    ["", undefined],
    [undefined, undefined],
  ])("maps %j to %j", (contentType, expected) => {
    expect(patchTypeOf(contentType)).toBe(expected);
  });
});

describe("applyMergePatch (RFC 7386)", () => {
  // RFC 7386 Appendix A.
  it.each([
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [
      ["a", "b"],
      ["c", "d"],
      ["c", "d"],
    ],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])("patches %j with %j to %j", (target, patch, expected) => {
    expect(applyMergePatch(target, patch)).toEqual(expected);
  });

  it("applies the RFC 7386 section 3 example", () => {
    const target = {
      title: "Goodbye!",
      author: { givenName: "John", familyName: "Doe" },
      tags: ["example", "sample"],
      content: "This will be unchanged",
    };
    const patch = { title: "Hello!", phoneNumber: "+01-123-456-7890", author: { familyName: null }, tags: ["example"] };
    expect(applyMergePatch(target, patch)).toEqual({
      title: "Hello!",
      author: { givenName: "John" },
      tags: ["example"],
      content: "This will be unchanged",
      phoneNumber: "+01-123-456-7890",
    });
  });

  it("replaces lists wholesale, even merge-keyed ones", () => {
    const pod = {
      spec: {
        containers: [
          { name: "a", image: "a:1" },
          { name: "b", image: "b:1" },
        ],
      },
    };
    expect(applyMergePatch(pod, { spec: { containers: [{ name: "a", image: "a:2" }] } })).toEqual({
      spec: { containers: [{ name: "a", image: "a:2" }] },
    });
  });

  it("treats __proto__ as an ordinary key", () => {
    const patch = JSON.parse('{"__proto__": {"polluted": true}}') as unknown;
    const result = applyMergePatch({}, patch) as Record<string, unknown>;
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(result)).toEqual(["__proto__"]);
  });
});

describe("applyJsonPatch (RFC 6902)", () => {
  // RFC 6902 Appendix A (A.13, duplicate members, cannot be expressed as a JS value).
  it.each([
    ["A.1 adds an object member", { foo: "bar" }, [{ op: "add", path: "/baz", value: "qux" }], { foo: "bar", baz: "qux" }],
    ["A.2 adds an array element", { foo: ["bar", "baz"] }, [{ op: "add", path: "/foo/1", value: "qux" }], { foo: ["bar", "qux", "baz"] }],
    ["A.3 removes an object member", { baz: "qux", foo: "bar" }, [{ op: "remove", path: "/baz" }], { foo: "bar" }],
    ["A.4 removes an array element", { foo: ["bar", "qux", "baz"] }, [{ op: "remove", path: "/foo/1" }], { foo: ["bar", "baz"] }],
    ["A.5 replaces a value", { baz: "qux", foo: "bar" }, [{ op: "replace", path: "/baz", value: "boo" }], { baz: "boo", foo: "bar" }],
    [
      "A.6 moves a value",
      { foo: { bar: "baz", waldo: "fred" }, qux: { corge: "grault" } },
      [{ op: "move", from: "/foo/waldo", path: "/qux/thud" }],
      { foo: { bar: "baz" }, qux: { corge: "grault", thud: "fred" } },
    ],
    [
      "A.7 moves an array element",
      { foo: ["all", "grass", "cows", "eat"] },
      [{ op: "move", from: "/foo/1", path: "/foo/3" }],
      { foo: ["all", "cows", "eat", "grass"] },
    ],
    [
      "A.8 passes a test",
      { baz: "qux", foo: ["a", 2, "c"] },
      [
        { op: "test", path: "/baz", value: "qux" },
        { op: "test", path: "/foo/1", value: 2 },
      ],
      { baz: "qux", foo: ["a", 2, "c"] },
    ],
    [
      "A.10 adds a nested member object",
      { foo: "bar" },
      [{ op: "add", path: "/child", value: { grandchild: {} } }],
      { foo: "bar", child: { grandchild: {} } },
    ],
    [
      "A.11 ignores unrecognized members",
      { foo: "bar" },
      [{ op: "add", path: "/baz", value: "qux", xyz: 123 }],
      { foo: "bar", baz: "qux" },
    ],
    ["A.14 unescapes ~01 to ~1", { "/": 9, "~1": 10 }, [{ op: "test", path: "/~01", value: 10 }], { "/": 9, "~1": 10 }],
    [
      "A.16 adds an array value",
      { foo: ["bar"] },
      [{ op: "add", path: "/foo/-", value: ["abc", "def"] }],
      { foo: ["bar", ["abc", "def"]] },
    ],
  ])("%s", (_name, target, patch, expected) => {
    expect(applyJsonPatch(target, patch)).toEqual(expected);
  });

  it.each([
    ["appends with -", { a: [1] }, [{ op: "add", path: "/a/-", value: 2 }], { a: [1, 2] }],
    ["adds at the end index", { a: [1] }, [{ op: "add", path: "/a/1", value: 2 }], { a: [1, 2] }],
    ["add replaces an existing member", { a: 1 }, [{ op: "add", path: "/a", value: 2 }], { a: 2 }],
    ["add with an empty path replaces the document", { a: 1 }, [{ op: "add", path: "", value: { b: 2 } }], { b: 2 }],
    ["replace with an empty path replaces the document", { a: 1 }, [{ op: "replace", path: "", value: [1] }], [1]],
    [
      "escapes / as ~1",
      { metadata: { labels: { "app.kubernetes.io/name": "x" } } },
      [{ op: "replace", path: "/metadata/labels/app.kubernetes.io~1name", value: "y" }],
      { metadata: { labels: { "app.kubernetes.io/name": "y" } } },
    ],
    ["escapes ~ as ~0", { "a~b": 1 }, [{ op: "remove", path: "/a~0b" }], {}],
    ["copies a value", { a: { b: [1] } }, [{ op: "copy", from: "/a", path: "/c" }], { a: { b: [1] }, c: { b: [1] } }],
    ["moves a value onto itself", { a: 1 }, [{ op: "move", from: "/a", path: "/a" }], { a: 1 }],
    ["adds a null value", { a: 1 }, [{ op: "add", path: "/b", value: null }], { a: 1, b: null }],
    [
      "tests objects regardless of key order",
      { a: { x: 1, y: [1, { z: 2 }] } },
      [{ op: "test", path: "/a", value: { y: [1, { z: 2 }], x: 1 } }],
      { a: { x: 1, y: [1, { z: 2 }] } },
    ],
    [
      "applies operations in sequence",
      { a: [] },
      [
        { op: "add", path: "/a/-", value: 1 },
        { op: "add", path: "/a/0", value: 0 },
        { op: "test", path: "/a", value: [0, 1] },
      ],
      { a: [0, 1] },
    ],
    [
      "adds a finalizer to a pod",
      { metadata: { name: "p" } },
      [{ op: "add", path: "/metadata/finalizers", value: ["x/y"] }],
      { metadata: { name: "p", finalizers: ["x/y"] } },
    ],
  ])("%s", (_name, target, patch, expected) => {
    expect(applyJsonPatch(target, patch)).toEqual(expected);
  });

  it.each([
    ["A.9 failed test", { baz: "qux", foo: ["a", 2, "c"] }, [{ op: "test", path: "/baz", value: "bar" }]],
    ["A.12 add to a nonexistent target", { foo: "bar" }, [{ op: "add", path: "/baz/bat", value: "qux" }]],
    ["A.15 test comparing a string with a number", { "/": 9, "~1": 10 }, [{ op: "test", path: "/~01", value: "10" }]],
    ["test of a missing path", { a: 1 }, [{ op: "test", path: "/b", value: 1 }]],
    ["remove of a missing member", { a: 1 }, [{ op: "remove", path: "/b" }]],
    ["remove of an index out of range", { a: [1] }, [{ op: "remove", path: "/a/1" }]],
    ["remove of the whole document", { a: 1 }, [{ op: "remove", path: "" }]],
    ["replace of a missing member", { a: 1 }, [{ op: "replace", path: "/b", value: 2 }]],
    ["replace with -", { a: [1] }, [{ op: "replace", path: "/a/-", value: 2 }]],
    ["add beyond the end of an array", { a: [1] }, [{ op: "add", path: "/a/2", value: 2 }]],
    ["an index with a leading zero", { a: [1, 2] }, [{ op: "replace", path: "/a/01", value: 3 }]],
    ["a negative index", { a: [1, 2] }, [{ op: "replace", path: "/a/-1", value: 3 }]],
    ["a path through a scalar", { a: 1 }, [{ op: "add", path: "/a/b", value: 2 }]],
    ["move from a missing path", { a: 1 }, [{ op: "move", from: "/b", path: "/c" }]],
    ["move into its own child", { a: { b: 1 } }, [{ op: "move", from: "/a", path: "/a/b/c" }]],
    ["copy from a missing path", { a: 1 }, [{ op: "copy", from: "/b", path: "/c" }]],
    ["an unknown op", { a: 1 }, [{ op: "frobnicate", path: "/a" }]],
    ["a missing op", { a: 1 }, [{ path: "/a", value: 1 }]],
    ["a missing path", { a: 1 }, [{ op: "add", value: 1 }]],
    ["a missing value", { a: 1 }, [{ op: "add", path: "/b" }]],
    ["a missing from", { a: 1 }, [{ op: "move", path: "/b" }]],
    ["a pointer without a leading slash", { a: 1 }, [{ op: "replace", path: "a", value: 2 }]],
    ["a bad ~ escape", { a: 1 }, [{ op: "remove", path: "/a~2" }]],
  ])("rejects %s with 422 Invalid", (_name, target, patch) => {
    const err = expectApiError(() => applyJsonPatch(target, patch), 422, "Invalid");
    expect(err.message).toBe("the server rejected our request due to an error in our request");
    expect(err.details.causes?.[0]?.message).toBeTruthy();
  });

  it.each([
    ["an object", { op: "add", path: "/a", value: 1 }],
    ["a string", "[]"],
    ["null", null],
    ["an array with a non-object operation", [{ op: "add", path: "/a", value: 1 }, "remove /a"]],
  ])("rejects a patch that is %s with 400 BadRequest", (_name, patch) => {
    expectApiError(() => applyJsonPatch({}, patch), 400, "BadRequest");
  });

  it("rejects more than 10000 operations with 413", () => {
    const patch = Array.from({ length: 10001 }, () => ({ op: "test", path: "", value: {} }));
    expectApiError(() => applyJsonPatch({}, patch), 413, "RequestEntityTooLarge");
  });

  it("is all-or-nothing and leaves the target untouched when an operation fails", () => {
    const target = { a: 1 };
    expectApiError(
      () =>
        applyJsonPatch(target, [
          { op: "add", path: "/b", value: 2 },
          { op: "test", path: "/a", value: 2 },
        ]),
      422,
      "Invalid",
    );
    expect(target).toEqual({ a: 1 });
  });

  it("does not alias values from the patch into the result", () => {
    const value = { nested: [1] };
    const result = applyJsonPatch({}, [{ op: "add", path: "/v", value }]) as { v: { nested: number[] } };
    result.v.nested.push(2);
    expect(value).toEqual({ nested: [1] });
  });
});

// ---------------------------------------------------------------------------------------
// Strategic merge patch

function pod(containers: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "default", labels: { app: "web", tier: "front" } },
    spec: { containers, ...extra },
  };
}

function deployment(containers: unknown[]): Record<string, unknown> {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web" },
    spec: {
      replicas: 2,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers } },
    },
  };
}

const smp = (target: unknown, patch: unknown, kind = "Pod"): any => applyStrategicMergePatch(target, patch, kind);

describe("applyStrategicMergePatch: maps", () => {
  it("merges maps recursively", () => {
    const result = smp(pod([{ name: "app", image: "app:1" }]), { metadata: { labels: { version: "v2" } } });
    expect(result.metadata.labels).toEqual({ app: "web", tier: "front", version: "v2" });
    expect(result.spec.containers).toEqual([{ name: "app", image: "app:1" }]);
  });

  it("deletes a label with null", () => {
    const result = smp(pod([]), { metadata: { labels: { tier: null, missing: null } } });
    expect(result.metadata.labels).toEqual({ app: "web" });
  });

  it("drops nulls inside a value that is new to the object", () => {
    const result = smp(pod([]), { metadata: { annotations: { a: "1", b: null } } });
    expect(result.metadata.annotations).toEqual({ a: "1" });
  });

  it("replaces a map with $patch: replace", () => {
    const target = pod([], { nodeSelector: { disk: "ssd", zone: "a" } });
    const result = smp(target, { spec: { nodeSelector: { $patch: "replace", zone: "b" } } });
    expect(result.spec.nodeSelector).toEqual({ zone: "b" });
  });

  it("empties a map with $patch: delete, as kube-apiserver does", () => {
    const result = smp(pod([]), { metadata: { labels: { $patch: "delete" } } });
    expect(result.metadata.labels).toEqual({});
  });

  it("accepts $patch: merge on a map as the default behaviour", () => {
    const result = smp(pod([]), { metadata: { labels: { $patch: "merge", v: "2" } } });
    expect(result.metadata.labels).toEqual({ app: "web", tier: "front", v: "2" });
  });

  it("keeps only the listed keys with $retainKeys", () => {
    const result = smp(
      deployment([{ name: "app", image: "app:1" }]),
      { spec: { strategy: { $retainKeys: ["type"], type: "Recreate" } } },
      "Deployment",
    );
    expect(result.spec.strategy).toEqual({ type: "Recreate" });
    expect(result.spec.replicas).toBe(2);
  });

  it("rejects a $retainKeys list that misses a patched key", () => {
    expectApiError(
      () => smp(deployment([]), { spec: { strategy: { $retainKeys: ["rollingUpdate"], type: "Recreate" } } }, "Deployment"),
      400,
      "BadRequest",
    );
  });

  it("changes a volume's source with $retainKeys inside a merge-keyed list element", () => {
    const target = pod([], {
      volumes: [
        { name: "data", emptyDir: {} },
        { name: "config", configMap: { name: "cm" } },
      ],
    });
    const result = smp(target, {
      spec: { volumes: [{ name: "data", $retainKeys: ["name", "hostPath"], hostPath: { path: "/data" } }] },
    });
    expect(result.spec.volumes).toEqual([
      { name: "data", hostPath: { path: "/data" } },
      { name: "config", configMap: { name: "cm" } },
    ]);
  });
});

describe("applyStrategicMergePatch: lists with a merge key", () => {
  it("patches one container's image by name and keeps the others", () => {
    const target = pod([
      { name: "app", image: "app:1", args: ["--v=1"] },
      { name: "sidecar", image: "sidecar:1" },
    ]);
    const result = smp(target, { spec: { containers: [{ name: "app", image: "app:2" }] } });
    expect(result.spec.containers).toEqual([
      { name: "app", image: "app:2", args: ["--v=1"] },
      { name: "sidecar", image: "sidecar:1" },
    ]);
  });

  it("adds an env var by name and updates another in place", () => {
    const target = pod([
      {
        name: "app",
        image: "app:1",
        env: [
          { name: "A", value: "1" },
          { name: "B", value: "2" },
        ],
      },
    ]);
    const result = smp(target, {
      spec: {
        containers: [
          {
            name: "app",
            env: [
              { name: "B", value: "two" },
              { name: "C", value: "3" },
            ],
          },
        ],
      },
    });
    expect(result.spec.containers[0].env).toEqual([
      { name: "A", value: "1" },
      { name: "B", value: "two" },
      { name: "C", value: "3" },
    ]);
  });

  it("places items new to the list before the server-only items, like kube-apiserver", () => {
    // strategicpatch orders patch items by the patch and interleaves the server-only ones
    // by their live position: [new] merged into [a, b] gives [new, a, b].
    const target = pod([{ name: "a" }, { name: "b" }, { name: "c" }]);
    expect(names(smp(target, { spec: { containers: [{ name: "new" }] } }).spec.containers)).toEqual(["new", "a", "b", "c"]);
    expect(names(smp(target, { spec: { containers: [{ name: "b" }, { name: "new" }] } }).spec.containers)).toEqual(["a", "b", "new", "c"]);
  });

  it("deletes a container with $patch: delete", () => {
    const target = pod([
      { name: "app", image: "app:1" },
      { name: "sidecar", image: "sidecar:1" },
    ]);
    const result = smp(target, { spec: { containers: [{ name: "sidecar", $patch: "delete" }] } });
    expect(result.spec.containers).toEqual([{ name: "app", image: "app:1" }]);
  });

  it("deletes an env var nested in a container with $patch: delete", () => {
    const target = pod([
      {
        name: "app",
        env: [
          { name: "A", value: "1" },
          { name: "B", value: "2" },
        ],
      },
    ]);
    const result = smp(target, { spec: { containers: [{ name: "app", env: [{ name: "A", $patch: "delete" }] }] } });
    expect(result.spec.containers[0].env).toEqual([{ name: "B", value: "2" }]);
  });

  it("replaces the whole list with a {$patch: replace} element", () => {
    const target = pod([{ name: "a", image: "a:1" }, { name: "b" }]);
    const result = smp(target, { spec: { containers: [{ $patch: "replace" }, { name: "c", image: "c:1" }] } });
    expect(result.spec.containers).toEqual([{ name: "c", image: "c:1" }]);
  });

  it("reorders the merged list with $setElementOrder/containers", () => {
    const target = pod([
      { name: "a", image: "a:1" },
      { name: "b", image: "b:1" },
      { name: "c", image: "c:1" },
    ]);
    const result = smp(target, {
      spec: {
        "$setElementOrder/containers": [{ name: "c" }, { name: "a" }, { name: "b" }],
        containers: [{ name: "a", image: "a:2" }],
      },
    });
    expect(result.spec.containers).toEqual([
      { name: "c", image: "c:1" },
      { name: "a", image: "a:2" },
      { name: "b", image: "b:1" },
    ]);
    expect(Object.keys(result.spec)).toEqual(["containers"]);
  });

  it("keeps server-only items in place around the $setElementOrder items", () => {
    // Vector from strategicpatch's "set elements order in a list with server-only items 2".
    const target = pod([{ name: "1", x: "a" }, { name: "2", v: 2 }, { name: "9" }, { name: "3", v: 3 }, { name: "4", v: 4 }]);
    const result = smp(target, {
      spec: { "$setElementOrder/containers": [{ name: "2" }, { name: "1" }, { name: "4" }, { name: "3" }] },
    });
    expect(names(result.spec.containers)).toEqual(["2", "1", "9", "4", "3"]);
  });

  it("adds a new item where $setElementOrder puts it", () => {
    const target = pod([{ name: "a" }, { name: "b" }]);
    const result = smp(target, {
      spec: {
        "$setElementOrder/containers": [{ name: "a" }, { name: "new" }, { name: "b" }],
        containers: [{ name: "new", image: "n:1" }],
      },
    });
    expect(result.spec.containers).toEqual([{ name: "a" }, { name: "new", image: "n:1" }, { name: "b" }]);
  });

  it("rejects a patch list whose order contradicts $setElementOrder", () => {
    const target = pod([{ name: "1" }, { name: "3" }, { name: "2" }]);
    expectApiError(
      () =>
        smp(target, {
          spec: {
            "$setElementOrder/containers": [{ name: "1" }, { name: "2" }, { name: "3" }],
            containers: [
              { name: "3", v: 3 },
              { name: "1", v: 1 },
            ],
          },
        }),
      400,
      "BadRequest",
    );
  });

  it("merges deployment spec.template.spec.containers by name", () => {
    const target = deployment([
      { name: "app", image: "app:1", ports: [{ containerPort: 80 }] },
      { name: "proxy", image: "proxy:1" },
    ]);
    const result = smp(
      target,
      {
        spec: {
          template: {
            metadata: { labels: { rev: "2" } },
            spec: { containers: [{ name: "app", image: "app:2", ports: [{ containerPort: 443, name: "https" }] }] },
          },
        },
      },
      "Deployment",
    );
    expect(result.spec.template.spec.containers).toEqual([
      { name: "app", image: "app:2", ports: [{ containerPort: 443, name: "https" }, { containerPort: 80 }] },
      { name: "proxy", image: "proxy:1" },
    ]);
    expect(result.spec.template.metadata.labels).toEqual({ app: "web", rev: "2" });
  });

  it("merges ReplicaSet template containers by name", () => {
    const target = { kind: "ReplicaSet", spec: { template: { spec: { containers: [{ name: "a", image: "1" }, { name: "b" }] } } } };
    const result = smp(target, { spec: { template: { spec: { containers: [{ name: "b", image: "2" }] } } } }, "ReplicaSet");
    expect(result.spec.template.spec.containers).toEqual([
      { name: "a", image: "1" },
      { name: "b", image: "2" },
    ]);
  });

  it("merges service ports by port", () => {
    const target = {
      kind: "Service",
      spec: {
        selector: { app: "web" },
        ports: [
          { name: "http", port: 80, targetPort: 8080 },
          { name: "https", port: 443, targetPort: 8443 },
        ],
      },
    };
    const result = smp(target, { spec: { ports: [{ port: 80, targetPort: 9090 }] } }, "Service");
    expect(result.spec.ports).toEqual([
      { name: "http", port: 80, targetPort: 9090 },
      { name: "https", port: 443, targetPort: 8443 },
    ]);
  });

  it.each([
    ["Pod", "status.conditions", "type"],
    ["Node", "status.conditions", "type"],
    ["Node", "status.addresses", "type"],
    ["Deployment", "status.conditions", "type"],
    ["ReplicaSet", "status.conditions", "type"],
    ["Namespace", "status.conditions", "type"],
    ["Pod", "status.podIPs", "ip"],
    ["Pod", "spec.imagePullSecrets", "name"],
    ["Pod", "spec.hostAliases", "ip"],
    ["ServiceAccount", "secrets", "name"],
    ["Secret", "metadata.ownerReferences", "uid"],
    ["Widget", "metadata.ownerReferences", "uid"],
  ])("merges %s %s by %s", (kind, path, key) => {
    const build = (list: unknown[]): Record<string, unknown> => {
      const parts = path.split(".");
      let value: unknown = list;
      for (const p of parts.reverse()) value = { [p]: value };
      return value as Record<string, unknown>;
    };
    const at = (obj: any): unknown => path.split(".").reduce((o, p) => o[p], obj);
    const target = build([
      { [key]: "x", status: "old" },
      { [key]: "y", status: "keep" },
    ]);
    const result = smp(target, build([{ [key]: "x", status: "new" }]), kind);
    expect(at(result)).toEqual([
      { [key]: "x", status: "new" },
      { [key]: "y", status: "keep" },
    ]);
  });

  it("rejects a merge-keyed list element without the merge key", () => {
    expectApiError(() => smp(pod([{ name: "a" }]), { spec: { containers: [{ image: "x" }] } }), 400, "BadRequest");
  });

  it("rejects a $patch: delete element without the merge key", () => {
    expectApiError(() => smp(pod([{ name: "a" }]), { spec: { containers: [{ $patch: "delete" }] } }), 400, "BadRequest");
  });
});

describe("applyStrategicMergePatch: primitive lists", () => {
  const withFinalizers = (finalizers: string[]): Record<string, unknown> => ({ kind: "ConfigMap", metadata: { name: "c", finalizers } });

  it("unions metadata.finalizers, placing new values like kube-apiserver", () => {
    const result = smp(withFinalizers(["a", "b"]), { metadata: { finalizers: ["c", "a"] } }, "ConfigMap");
    expect(result.metadata.finalizers).toEqual(["c", "a", "b"]);
  });

  it("preserves the patch order in a merged primitive list", () => {
    // Vector from strategicpatch: [1,2,3] patched with [3,1] gives [2,3,1].
    const result = smp(withFinalizers(["1", "2", "3"]), { metadata: { finalizers: ["3", "1"] } }, "ConfigMap");
    expect(result.metadata.finalizers).toEqual(["2", "3", "1"]);
  });

  it("unions finalizers for kinds with no table of their own", () => {
    const result = smp(withFinalizers(["a"]), { metadata: { finalizers: ["b"] } }, "Widget");
    expect(result.metadata.finalizers).toEqual(["b", "a"]);
  });

  it("removes values with $deleteFromPrimitiveList/finalizers", () => {
    const result = smp(
      withFinalizers(["a", "b", "c"]),
      { metadata: { "$deleteFromPrimitiveList/finalizers": ["b", "missing"] } },
      "ConfigMap",
    );
    expect(result.metadata).toEqual({ name: "c", finalizers: ["a", "c"] });
  });

  it("adds, deletes and orders finalizers in one patch, as kubectl generates them", () => {
    const result = smp(
      withFinalizers(["a", "b"]),
      {
        metadata: {
          "$setElementOrder/finalizers": ["a", "c"],
          "$deleteFromPrimitiveList/finalizers": ["b"],
          finalizers: ["c"],
        },
      },
      "ConfigMap",
    );
    expect(result.metadata.finalizers).toEqual(["a", "c"]);
  });

  it("does not create a list from $deleteFromPrimitiveList", () => {
    const result = smp({ metadata: { name: "c" } }, { metadata: { "$deleteFromPrimitiveList/finalizers": ["x"] } }, "ConfigMap");
    expect(result.metadata).toEqual({ name: "c" });
  });

  it("deletes from a primitive list without a merge strategy", () => {
    const result = smp(pod([{ name: "a", args: ["x", "y", "z"] }]), {
      spec: { containers: [{ name: "a", "$deleteFromPrimitiveList/args": ["y"] }] },
    });
    expect(result.spec.containers[0].args).toEqual(["x", "z"]);
  });

  it("merges node spec.podCIDRs as a set", () => {
    const result = smp({ spec: { podCIDRs: ["10.0.0.0/24"] } }, { spec: { podCIDRs: ["10.0.0.0/24", "fd00::/64"] } }, "Node");
    expect(result.spec.podCIDRs).toEqual(["10.0.0.0/24", "fd00::/64"]);
  });

  it("rejects malformed directive keys", () => {
    expectApiError(() => smp(withFinalizers(["a"]), { metadata: { $deleteFromPrimitiveListfinalizers: ["a"] } }), 400, "BadRequest");
    expectApiError(() => smp(withFinalizers(["a"]), { metadata: { "$deleteFromPrimitiveList/finalizers": "a" } }), 400, "BadRequest");
    expectApiError(() => smp(withFinalizers(["a"]), { metadata: { "$setElementOrder/finalizers": "a" } }), 400, "BadRequest");
  });
});

describe("applyStrategicMergePatch: lists without a merge key replace", () => {
  it.each([
    [
      "container args",
      pod([{ name: "a", args: ["--x", "--y"] }]),
      { spec: { containers: [{ name: "a", args: ["--z"] }] } },
      (r: any) => r.spec.containers[0].args,
      ["--z"],
    ],
    [
      "container envFrom",
      pod([{ name: "a", envFrom: [{ configMapRef: { name: "x" } }] }]),
      { spec: { containers: [{ name: "a", envFrom: [{ secretRef: { name: "s" } }] }] } },
      (r: any) => r.spec.containers[0].envFrom,
      [{ secretRef: { name: "s" } }],
    ],
    [
      "pod tolerations",
      pod([], { tolerations: [{ key: "a", operator: "Exists" }] }),
      { spec: { tolerations: [{ key: "b", operator: "Exists" }] } },
      (r: any) => r.spec.tolerations,
      [{ key: "b", operator: "Exists" }],
    ],
    [
      "pod status containerStatuses",
      {
        status: {
          containerStatuses: [
            { name: "a", ready: true },
            { name: "b", ready: true },
          ],
        },
      },
      { status: { containerStatuses: [{ name: "a", ready: false }] } },
      (r: any) => r.status.containerStatuses,
      [{ name: "a", ready: false }],
    ],
  ])("replaces %s", (_name, target, patch, get, expected) => {
    expect(get(smp(target, patch, "Pod"))).toEqual(expected);
  });

  it("replaces node taints", () => {
    const result = smp(
      { spec: { taints: [{ key: "a", effect: "NoSchedule" }] } },
      { spec: { taints: [{ key: "b", effect: "NoExecute" }] } },
      "Node",
    );
    expect(result.spec.taints).toEqual([{ key: "b", effect: "NoExecute" }]);
  });

  it("replaces endpoints subsets", () => {
    const result = smp({ subsets: [{ addresses: [{ ip: "10.0.0.1" }] }] }, { subsets: [{ addresses: [{ ip: "10.0.0.2" }] }] }, "Endpoints");
    expect(result.subsets).toEqual([{ addresses: [{ ip: "10.0.0.2" }] }]);
  });

  it("falls back to merging maps and replacing lists for an unknown kind", () => {
    const target = { spec: { containers: [{ name: "a" }, { name: "b" }], settings: { x: 1 } } };
    const result = smp(target, { spec: { containers: [{ name: "a", image: "i" }], settings: { y: 2 } } }, "Widget");
    expect(result.spec).toEqual({ containers: [{ name: "a", image: "i" }], settings: { x: 1, y: 2 } });
  });

  it("replaces a value of a different type", () => {
    const result = smp({ spec: { a: { b: 1 }, c: [1] } }, { spec: { a: "s", c: { d: 1 } } }, "Widget");
    expect(result.spec).toEqual({ a: "s", c: { d: 1 } });
  });
});

describe("applyStrategicMergePatch: malformed patches", () => {
  it.each([
    ["an array", [{ a: 1 }]],
    ["a string", "x"],
    ["null", null],
  ])("rejects a patch that is %s with 400", (_name, patch) => {
    expectApiError(() => smp(pod([]), patch), 400, "BadRequest");
  });

  it("rejects an unknown $patch directive", () => {
    expectApiError(() => smp(pod([]), { metadata: { labels: { $patch: "explode" } } }), 400, "BadRequest");
    expectApiError(() => smp(pod([{ name: "a" }]), { spec: { containers: [{ name: "a", $patch: "explode" }] } }), 400, "BadRequest");
  });

  it("rejects mixed element types in a merged list", () => {
    expectApiError(() => smp({ metadata: { finalizers: ["a"] } }, { metadata: { finalizers: [1] } }, "Pod"), 400, "BadRequest");
  });

  it("rejects lists of lists with 422", () => {
    expectApiError(() => smp({ metadata: { finalizers: [["a"]] } }, { metadata: { finalizers: [["b"]] } }, "Pod"), 422, "Invalid");
  });

  it("rejects a $retainKeys that is not a list", () => {
    expectApiError(() => smp(deployment([]), { spec: { strategy: { $retainKeys: "type" } } }, "Deployment"), 400, "BadRequest");
  });
});

describe("applyStrategicMergePatch: whole documents", () => {
  it("treats a missing target as an empty object", () => {
    expect(smp(undefined, { a: { b: 1 } })).toEqual({ a: { b: 1 } });
  });

  it("strips directives from values that are new to the object", () => {
    const target = { spec: {} };
    const result = smp(target, {
      spec: {
        containers: [
          {
            name: "a",
            "$setElementOrder/env": [{ name: "X" }],
            env: [
              { name: "X", value: "1" },
              { name: "Y", $patch: "delete" },
            ],
          },
          { name: "gone", $patch: "delete" },
        ],
        nodeSelector: { $patch: "replace", zone: "a" },
        affinity: { $patch: "delete" },
      },
    });
    expect(result.spec).toEqual({ containers: [{ name: "a", env: [{ name: "X", value: "1" }] }], nodeSelector: { zone: "a" } });
  });
});

describe("input immutability", () => {
  const target = deepFreeze({
    kind: "Deployment",
    metadata: { name: "web", labels: { app: "web" }, finalizers: ["a"] },
    spec: {
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1 } },
      template: {
        spec: {
          containers: [
            { name: "app", image: "app:1", env: [{ name: "A", value: "1" }] },
            { name: "sidecar", image: "sidecar:1" },
          ],
        },
      },
    },
  });
  const snapshot = JSON.stringify(target);

  const cases: Array<[PatchType, unknown]> = [
    [
      "json",
      [
        { op: "replace", path: "/spec/template/spec/containers/0/image", value: "app:2" },
        { op: "add", path: "/metadata/labels/b", value: { deep: [1] } },
        { op: "remove", path: "/spec/template/spec/containers/1" },
        { op: "move", from: "/metadata/finalizers", path: "/metadata/f" },
      ],
    ],
    ["merge", { metadata: { labels: { app: null, b: { deep: [1] } } }, spec: { template: { spec: { containers: [] } } } }],
    [
      "strategic",
      {
        metadata: { labels: { app: null, b: "x" }, "$deleteFromPrimitiveList/finalizers": ["a"] },
        spec: {
          strategy: { $retainKeys: ["type"], type: "Recreate" },
          template: {
            spec: {
              "$setElementOrder/containers": [{ name: "sidecar" }, { name: "app" }],
              containers: [
                {
                  name: "app",
                  image: "app:2",
                  env: [
                    { name: "B", value: { deep: [1] } },
                    { name: "A", $patch: "delete" },
                  ],
                },
              ],
            },
          },
        },
      },
    ],
  ];

  it.each(cases)("applyPatch(%s) leaves the target and the patch untouched", (type, patch) => {
    const frozenPatch = deepFreeze(patch);
    const patchSnapshot = JSON.stringify(frozenPatch);
    const result = applyPatch(type, target, frozenPatch, "Deployment") as any;
    expect(JSON.stringify(target)).toBe(snapshot);
    expect(JSON.stringify(frozenPatch)).toBe(patchSnapshot);
    expect(result).not.toBe(target);
    // The result is fully owned by the caller: mutating it touches neither input.
    expect(Object.isFrozen(result.metadata)).toBe(false);
    result.metadata.name = "changed";
    expect(target.metadata.name).toBe("web");
  });

  it("strategic patch result has the expected content", () => {
    const result = applyPatch("strategic", target, cases[2][1], "Deployment") as any;
    expect(result.metadata).toEqual({ name: "web", labels: { b: "x" }, finalizers: [] });
    expect(result.spec.strategy).toEqual({ type: "Recreate" });
    expect(result.spec.template.spec.containers).toEqual([
      { name: "sidecar", image: "sidecar:1" },
      { name: "app", image: "app:2", env: [{ name: "B", value: { deep: [1] } }] },
    ]);
  });
});

describe("applyPatch", () => {
  it("dispatches on the patch type", () => {
    const target = pod([
      { name: "a", image: "1" },
      { name: "b", image: "1" },
    ]);
    const containersPatch = { spec: { containers: [{ name: "a", image: "2" }] } };
    expect((applyPatch("strategic", target, containersPatch, "Pod") as any).spec.containers).toHaveLength(2);
    expect((applyPatch("merge", target, containersPatch, "Pod") as any).spec.containers).toHaveLength(1);
    expect((applyPatch("json", target, [{ op: "remove", path: "/spec/containers/0" }], "Pod") as any).spec.containers).toEqual([
      { name: "b", image: "1" },
    ]);
  });

  it.each([["merge"], ["strategic"]] as Array<[PatchType]>)("rejects a non-object %s patch with 400", (type) => {
    expectApiError(() => applyPatch(type, pod([]), ["x"], "Pod"), 400, "BadRequest");
  });
});
