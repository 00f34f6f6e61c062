import { describe, expect, it } from "vitest";
import { ApiError } from "../../workers/shared/errors.ts";
import {
  checkFieldSelector,
  exactField,
  fieldValue,
  fromLabelSelectorObject,
  type LabelSelector,
  labelSelectorToString,
  matchFields,
  matchLabels,
  parseFieldSelector,
  parseLabelSelector,
} from "../../workers/shared/selectors.ts";

/** Runs fn and returns the ApiError it throws (fails the test if it throws nothing else). */
function apiErrorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error("expected an ApiError, nothing was thrown");
}

describe("parseLabelSelector", () => {
  it.each([
    ["", []],
    ["a=b", [{ key: "a", op: "=", values: ["b"] }]],
    ["a==b", [{ key: "a", op: "=", values: ["b"] }]],
    ["a!=b", [{ key: "a", op: "!=", values: ["b"] }]],
    ["a=", [{ key: "a", op: "=", values: [""] }]],
    ["a in (x,y)", [{ key: "a", op: "in", values: ["x", "y"] }]],
    ["a notin (x)", [{ key: "a", op: "notin", values: ["x"] }]],
    ["a", [{ key: "a", op: "exists", values: [] }]],
    ["!a", [{ key: "a", op: "!", values: [] }]],
    ["example.com/app-name_1.x=v", [{ key: "example.com/app-name_1.x", op: "=", values: ["v"] }]],
  ])("parses %j", (input, expected) => {
    expect(parseLabelSelector(input)).toEqual(expected);
  });

  it("treats null and undefined as the empty selector", () => {
    expect(parseLabelSelector(null)).toEqual([]);
    expect(parseLabelSelector(undefined)).toEqual([]);
  });

  it.each([["  a = b ,  c  "], ["a=b,c"], ["\ta\t=\tb\n,\r\nc"], ["c, a==b"]])(
    "tolerates whitespace and orders requirements by key: %j",
    (input) => {
      expect(parseLabelSelector(input)).toEqual([
        { key: "a", op: "=", values: ["b"] },
        { key: "c", op: "exists", values: [] },
      ]);
    },
  );

  it.each([
    ["a in ( y , x , y )", ["x", "y"]],
    ["a in(x)", ["x"]],
    ["a in (x,,y)", ["", "x", "y"]],
    ["a in (,x)", ["", "x"]],
    ["a in (x,)", ["", "x"]],
    ["a in (,)", [""]],
    ["a in (in,notin)", ["in", "notin"]],
  ])("reads the value set of %j sorted and deduplicated", (input, values) => {
    expect(parseLabelSelector(input)).toEqual([{ key: "a", op: "in", values }]);
  });

  it("accepts the keywords in and notin as keys and exact values", () => {
    expect(parseLabelSelector("in=notin,notin in (in)")).toEqual([
      { key: "in", op: "=", values: ["notin"] },
      { key: "notin", op: "in", values: ["in"] },
    ]);
  });

  it("parses a multi-requirement selector", () => {
    expect(parseLabelSelector("env in (prod, staging),tier!=frontend,!canary,app,x==1")).toEqual([
      { key: "app", op: "exists", values: [] },
      { key: "canary", op: "!", values: [] },
      { key: "env", op: "in", values: ["prod", "staging"] },
      { key: "tier", op: "!=", values: ["frontend"] },
      { key: "x", op: "=", values: ["1"] },
    ]);
  });

  it.each([
    ["a in ()", "unable to parse requirement: values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"],
    [
      "a notin ( )",
      "unable to parse requirement: values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
    ],
    ["a in x", "unable to parse requirement: found 'x' expected: '('"],
    ["a in (x", "unable to parse requirement: found '', expected: ',' or ')'"],
    ["a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"],
    ["a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"],
    ["a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !="],
    ["a>1", "unable to parse requirement: found '>', expected: in, notin, =, ==, !="],
    ["a=(", "unable to parse requirement: found '(', expected: identifier"],
    ["!", "unable to parse requirement: found '', expected: identifier"],
    ["a=b c", "found 'c', expected: ',' or 'end of string'"],
    ["!a=b", "found '=', expected: ',' or 'end of string'"],
    ["a=b,", "found '', expected: identifier after ','"],
    ["a,,b", "found ',', expected: identifier after ','"],
    [",a", "found ',', expected: !, identifier, or 'end of string'"],
    ["=b", "found '=', expected: !, identifier, or 'end of string'"],
  ])("rejects %j with 400 BadRequest", (input, message) => {
    const e = apiErrorOf(() => parseLabelSelector(input));
    expect(e.code).toBe(400);
    expect(e.reason).toBe("BadRequest");
    expect(e.message).toBe(message);
  });

  it.each([
    ["a:b=c"],
    ["-a=b"],
    ["a-=b"],
    ["a/b/c=d"],
    ["/a=b"],
    ["Example.com/a=b"],
    ["a/=b"],
    ["@=b"],
    [`${"k".repeat(64)}=v`],
    [`${"p".repeat(254)}/k=v`],
  ])("rejects the invalid key in %j", (input) => {
    const e = apiErrorOf(() => parseLabelSelector(input));
    expect(e.code).toBe(400);
    expect(e.message).toMatch(/^unable to parse requirement: <nil>: Invalid value: ".*": /);
  });

  it("explains an invalid key in the upstream wording", () => {
    expect(apiErrorOf(() => parseLabelSelector("a_=b")).message).toBe(
      `unable to parse requirement: <nil>: Invalid value: "a_": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
    );
  });

  it.each([["a=-b"], ["a=b-"], ["a!=b/c"], ["a in (x,y_)"], ["a notin (.x)"], [`a=${"v".repeat(64)}`]])(
    "rejects the invalid value in %j",
    (input) => {
      const e = apiErrorOf(() => parseLabelSelector(input));
      expect(e.code).toBe(400);
      expect(e.message).toMatch(/^unable to parse requirement: values\[\d\]\[a\]: Invalid value: ".*": /);
    },
  );

  it("explains an invalid value in the upstream wording", () => {
    expect(apiErrorOf(() => parseLabelSelector("a=b_")).message).toBe(
      `unable to parse requirement: values[0][a]: Invalid value: "b_": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
    );
  });

  it("accepts keys and values at the length limits", () => {
    const key = `${"p".repeat(253)}/${"k".repeat(63)}`;
    expect(parseLabelSelector(`${key}=${"v".repeat(63)}`)).toEqual([{ key, op: "=", values: ["v".repeat(63)] }]);
  });
});

describe("matchLabels", () => {
  const labels = { app: "web", tier: "frontend", empty: "" };
  it.each([
    ["", true],
    ["app=web", true],
    ["app=db", false],
    ["missing=web", false],
    ["empty=", true],
    ["missing=", false],
    ["app==web", true],
    ["app==db", false],
    ["app!=db", true],
    ["app!=web", false],
    ["missing!=web", true],
    ["app in (web,db)", true],
    ["app in (db,cache)", false],
    ["missing in (web)", false],
    ["empty in (,x)", true],
    ["app notin (db,cache)", true],
    ["app notin (web,db)", false],
    ["missing notin (web)", true],
    ["app", true],
    ["missing", false],
    ["empty", true],
    ["!missing", true],
    ["!app", false],
    ["!empty", false],
    ["app=web,tier=frontend", true],
    ["app=web,tier=backend", false],
    ["app in (web),!canary,tier notin (backend)", true],
  ])("%j on app=web,tier=frontend,empty= -> %s", (sel, expected) => {
    expect(matchLabels(parseLabelSelector(sel), labels)).toBe(expected);
  });

  it.each([
    ["", true],
    ["app", false],
    ["!app", true],
    ["app=web", false],
    ["app!=web", true],
    ["app in (web)", false],
    ["app notin (web)", true],
  ])("%j on an object without labels -> %s", (sel, expected) => {
    expect(matchLabels(parseLabelSelector(sel), undefined)).toBe(expected);
    expect(matchLabels(parseLabelSelector(sel), {})).toBe(expected);
  });

  it("does not see inherited properties as labels", () => {
    expect(matchLabels(parseLabelSelector("toString"), {})).toBe(false);
    expect(matchLabels(parseLabelSelector("!constructor"), {})).toBe(true);
  });
});

describe("labelSelectorToString", () => {
  it.each([
    ["", ""],
    ["a=b", "a=b"],
    ["a==b", "a=b"],
    ["a!=b", "a!=b"],
    ["a=", "a="],
    ["a in (y, x)", "a in (x,y)"],
    ["a notin (x)", "a notin (x)"],
    ["a in (,x)", "a in (,x)"],
    ["a in (,)", "a in (,)"],
    ["a", "a"],
    ["!a", "!a"],
    [" z , !y,x in (b,a),w!=v,u=t ", "u=t,w!=v,x in (a,b),!y,z"],
  ])("renders %j as %j", (input, expected) => {
    expect(labelSelectorToString(parseLabelSelector(input))).toBe(expected);
  });

  it.each([["a=b,c!=d,e in (f,g),h notin (i),j,!k,l="], ["example.com/x in (,a,b),!example.com/y"], ["a in (,)"]])(
    "round-trips %j through parse and render",
    (input) => {
      const sel = parseLabelSelector(input);
      const text = labelSelectorToString(sel);
      expect(parseLabelSelector(text)).toEqual(sel);
      expect(labelSelectorToString(parseLabelSelector(text))).toBe(text);
    },
  );

  it("renders a selector built from an object", () => {
    const sel = fromLabelSelectorObject({
      matchLabels: { app: "web" },
      matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod", "dev"] }],
    });
    expect(labelSelectorToString(sel!)).toBe("app=web,env notin (dev,prod)");
  });
});

describe("fromLabelSelectorObject", () => {
  it("returns null (match nothing) for a null or undefined selector", () => {
    expect(fromLabelSelectorObject(null)).toBeNull();
    expect(fromLabelSelectorObject(undefined)).toBeNull();
  });

  it("returns [] (match everything) for an empty selector", () => {
    expect(fromLabelSelectorObject({})).toEqual([]);
    expect(fromLabelSelectorObject({ matchLabels: {}, matchExpressions: [] })).toEqual([]);
    expect(matchLabels(fromLabelSelectorObject({})!, { any: "thing" })).toBe(true);
  });

  it.each([
    [{ matchLabels: { app: "web" } }, [{ key: "app", op: "=", values: ["web"] }]],
    [{ matchExpressions: [{ key: "a", operator: "In", values: ["y", "x"] }] }, [{ key: "a", op: "in", values: ["x", "y"] }]],
    [{ matchExpressions: [{ key: "a", operator: "NotIn", values: ["x"] }] }, [{ key: "a", op: "notin", values: ["x"] }]],
    [{ matchExpressions: [{ key: "a", operator: "Exists" }] }, [{ key: "a", op: "exists", values: [] }]],
    [{ matchExpressions: [{ key: "a", operator: "DoesNotExist", values: [] }] }, [{ key: "a", op: "!", values: [] }]],
  ])("converts %j", (obj, expected) => {
    expect(fromLabelSelectorObject(obj)).toEqual(expected);
  });

  it("ANDs matchLabels and matchExpressions, ordered by key", () => {
    const sel = fromLabelSelectorObject({
      matchLabels: { tier: "web", app: "shop" },
      matchExpressions: [{ key: "env", operator: "In", values: ["prod"] }],
    })!;
    expect(sel.map((r) => r.key)).toEqual(["app", "env", "tier"]);
    expect(matchLabels(sel, { app: "shop", tier: "web", env: "prod" })).toBe(true);
    expect(matchLabels(sel, { app: "shop", tier: "web", env: "dev" })).toBe(false);
    expect(matchLabels(sel, { app: "shop", env: "prod" })).toBe(false);
  });

  it.each([
    [{ key: "a", operator: "In", values: ["x"] }, { a: "x" }, true],
    [{ key: "a", operator: "In", values: ["x"] }, { a: "y" }, false],
    [{ key: "a", operator: "In", values: ["x"] }, {}, false],
    [{ key: "a", operator: "NotIn", values: ["x"] }, { a: "y" }, true],
    [{ key: "a", operator: "NotIn", values: ["x"] }, { a: "x" }, false],
    [{ key: "a", operator: "NotIn", values: ["x"] }, {}, true],
    [{ key: "a", operator: "Exists" }, { a: "" }, true],
    [{ key: "a", operator: "Exists" }, {}, false],
    [{ key: "a", operator: "DoesNotExist" }, {}, true],
    [{ key: "a", operator: "DoesNotExist" }, { a: "x" }, false],
  ])("matches %j against %j -> %s", (expr, labels, expected) => {
    expect(matchLabels(fromLabelSelectorObject({ matchExpressions: [expr] })!, labels)).toBe(expected);
  });

  it.each([["Equals"], ["in"], [""], ["Gt"], ["constructor"]])("rejects the operator %j", (operator) => {
    const e = apiErrorOf(() => fromLabelSelectorObject({ matchExpressions: [{ key: "a", operator, values: ["x"] }] }));
    expect(e.code).toBe(400);
    expect(e.message).toBe(`"${operator}" is not a valid label selector operator`);
  });

  it.each([
    [
      { matchExpressions: [{ key: "a", operator: "In", values: [] }] },
      "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
    ],
    [
      { matchExpressions: [{ key: "a", operator: "NotIn" }] },
      "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
    ],
    [
      { matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] },
      `values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist`,
    ],
    [{ matchExpressions: [{ key: "a b", operator: "Exists" }] }, `key: Invalid value: "a b": name part must consist`],
    [{ matchLabels: { "a/b/c": "x" } }, `key: Invalid value: "a/b/c": a qualified name must consist`],
    [{ matchLabels: { a: "x y" } }, `values[0][a]: Invalid value: "x y": a valid label must be`],
  ])("rejects the invalid requirement %j", (obj, message) => {
    const e = apiErrorOf(() => fromLabelSelectorObject(obj));
    expect(e.code).toBe(400);
    expect(e.message.startsWith(message)).toBe(true);
  });
});

describe("parseFieldSelector", () => {
  it.each([
    ["", []],
    ["metadata.name=web", [{ field: "metadata.name", op: "=", value: "web" }]],
    ["metadata.name==web", [{ field: "metadata.name", op: "=", value: "web" }]],
    ["status.phase!=Running", [{ field: "status.phase", op: "!=", value: "Running" }]],
    ["spec.nodeName=", [{ field: "spec.nodeName", op: "=", value: "" }]],
    ["spec.nodeName!=", [{ field: "spec.nodeName", op: "!=", value: "" }]],
    [
      "a=b,c!=d,e==f",
      [
        { field: "a", op: "=", value: "b" },
        { field: "c", op: "!=", value: "d" },
        { field: "e", op: "=", value: "f" },
      ],
    ],
    [
      "a=b,,c=d,",
      [
        { field: "a", op: "=", value: "b" },
        { field: "c", op: "=", value: "d" },
      ],
    ],
    ["a=b c", [{ field: "a", op: "=", value: "b c" }]],
  ])("parses %j", (input, expected) => {
    expect(parseFieldSelector(input)).toEqual(expected);
  });

  it("treats null and undefined as the empty selector", () => {
    expect(parseFieldSelector(null)).toEqual([]);
    expect(parseFieldSelector(undefined)).toEqual([]);
  });

  it.each([
    ["a=x\\,y", "x,y"],
    ["a=x\\=y", "x=y"],
    ["a=x\\\\y", "x\\y"],
    ["a=\\,\\=\\\\", ",=\\"],
    ["a!=x\\,y", "x,y"],
    ["a==x\\=", "x="],
  ])("unescapes the value of %j", (input, value) => {
    const [r] = parseFieldSelector(input);
    expect(r.value).toBe(value);
  });

  it("splits only on unescaped commas", () => {
    expect(parseFieldSelector("a=x\\,y,b=z")).toEqual([
      { field: "a", op: "=", value: "x,y" },
      { field: "b", op: "=", value: "z" },
    ]);
  });

  it.each([
    ["a", "invalid selector: 'a'; can't understand 'a'"],
    ["a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"],
    ["a=x\\y", "invalid field selector: invalid escape sequence: \\y"],
    ["a=x\\", "invalid field selector: invalid escape sequence: \\"],
    ["a=x=y", "invalid field selector: unescaped character in value: ="],
    ["a===b", "invalid field selector: unescaped character in value: ="],
  ])("rejects %j with 400 BadRequest", (input, message) => {
    const e = apiErrorOf(() => parseFieldSelector(input));
    expect(e.code).toBe(400);
    expect(e.reason).toBe("BadRequest");
    expect(e.message).toBe(message);
  });
});

describe("checkFieldSelector", () => {
  it.each([
    ["metadata.name=a", []],
    ["metadata.namespace=a", []],
    ["metadata.name=a,status.phase=Running,spec.nodeName=n", ["spec.nodeName", "status.phase"]],
  ])("allows %j with extra fields %j", (input, allowed) => {
    expect(() => checkFieldSelector(parseFieldSelector(input), allowed)).not.toThrow();
  });

  it("rejects an unknown field with the kube-apiserver message", () => {
    const e = apiErrorOf(() => checkFieldSelector(parseFieldSelector("metadata.name=a,spec.foo=b"), ["spec.nodeName", "status.phase"]));
    expect(e.code).toBe(400);
    expect(e.reason).toBe("BadRequest");
    expect(e.message).toBe(
      `"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"`,
    );
  });

  it("lists only the metadata fields for a resource without extra field selectors", () => {
    const e = apiErrorOf(() => checkFieldSelector(parseFieldSelector("status.phase=x"), []));
    expect(e.message).toBe(`"status.phase" is not a known field selector: only "metadata.name", "metadata.namespace"`);
  });

  it("does not list the metadata fields twice when the caller passes them", () => {
    const e = apiErrorOf(() => checkFieldSelector(parseFieldSelector("x=y"), ["metadata.name", "type"]));
    expect(e.message).toBe(`"x" is not a known field selector: only "metadata.name", "metadata.namespace", "type"`);
  });

  it("does not trim field names", () => {
    expect(() => checkFieldSelector(parseFieldSelector("metadata.name =a"), [])).toThrow(ApiError);
  });
});

describe("fieldValue", () => {
  const pod = {
    metadata: { name: "web", namespace: "default", generation: 3 },
    spec: { nodeName: "n1", hostNetwork: true },
    status: { phase: "Running" },
  };
  it.each([
    ["metadata.name", "web"],
    ["metadata.namespace", "default"],
    ["spec.nodeName", "n1"],
    ["status.phase", "Running"],
    ["metadata.generation", "3"],
    ["spec.hostNetwork", "true"],
    ["spec.missing", ""],
    ["nothing.at.all", ""],
    ["metadata", ""],
    ["status.phase.length", ""],
  ])("reads %j as %j", (field, expected) => {
    expect(fieldValue(pod, field)).toBe(expected);
  });

  it.each([
    [{ spec: { unschedulable: true } }, "true"],
    [{ spec: { unschedulable: false } }, "false"],
    [{ spec: {} }, "false"],
    [{}, "false"],
  ])("reads spec.unschedulable of %j as %j", (node, expected) => {
    expect(fieldValue(node, "spec.unschedulable")).toBe(expected);
  });

  it.each([
    [{ source: { component: "kubelet", host: "n1" } }, "kubelet"],
    [{ source: {} }, ""],
    [{}, ""],
  ])("reads an event's source of %j as %j", (event, expected) => {
    expect(fieldValue(event, "source")).toBe(expected);
  });

  it.each([
    [{ status: { podIP: "10.0.0.1", podIPs: [{ ip: "10.0.0.1" }, { ip: "fd00::1" }] } }, "10.0.0.1"],
    [{ status: { podIP: "10.0.0.1" } }, "10.0.0.1"],
    [{ status: {} }, ""],
  ])("reads status.podIP of %j as %j", (obj, expected) => {
    expect(fieldValue(obj, "status.podIP")).toBe(expected);
  });

  it("reads null as empty", () => {
    expect(fieldValue({ spec: { nodeName: null } }, "spec.nodeName")).toBe("");
  });
});

describe("matchFields", () => {
  const pod = { metadata: { name: "web", namespace: "default" }, spec: { nodeName: "n1" }, status: { phase: "Running" } };
  it.each([
    ["", true],
    ["metadata.name=web", true],
    ["metadata.name=db", false],
    ["metadata.name==web", true],
    ["metadata.name==db", false],
    ["metadata.name!=db", true],
    ["metadata.name!=web", false],
    ["spec.schedulerName=", true],
    ["spec.schedulerName!=", false],
    ["spec.nodeName!=", true],
    ["metadata.namespace=default,status.phase=Running", true],
    ["metadata.namespace=default,status.phase!=Running", false],
  ])("%j -> %s", (sel, expected) => {
    expect(matchFields(parseFieldSelector(sel), pod)).toBe(expected);
  });

  it("matches escaped values", () => {
    expect(matchFields(parseFieldSelector("reason=a\\,b\\=c"), { reason: "a,b=c" })).toBe(true);
  });

  it("matches spec.unschedulable on nodes", () => {
    expect(matchFields(parseFieldSelector("spec.unschedulable=false"), { spec: {} })).toBe(true);
    expect(matchFields(parseFieldSelector("spec.unschedulable=true"), { spec: { unschedulable: true } })).toBe(true);
    expect(matchFields(parseFieldSelector("spec.unschedulable!=true"), { spec: { unschedulable: true } })).toBe(false);
  });
});

describe("exactField", () => {
  it.each([
    ["metadata.name=web", "metadata.name", "web"],
    ["metadata.name==web", "metadata.name", "web"],
    ["metadata.name!=web", "metadata.name", undefined],
    ["metadata.namespace=ns,metadata.name=web", "metadata.namespace", "ns"],
    ["metadata.namespace=ns,metadata.name=web", "metadata.name", "web"],
    ["metadata.name!=a,metadata.name=b", "metadata.name", "b"],
    ["status.phase=Running", "metadata.name", undefined],
    ["metadata.name=", "metadata.name", ""],
    ["", "metadata.name", undefined],
  ])("in %j pins %j to %j", (sel, field, expected) => {
    expect(exactField(parseFieldSelector(sel), field)).toBe(expected);
  });
});

// Type-level check that the exported types line up with plain literals.
const _typed: LabelSelector = [{ key: "a", op: "exists", values: [] }];
void _typed;
