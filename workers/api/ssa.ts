// Server-side apply and managedFields, after kube-apiserver's field manager
// (k8s.io/apimachinery/pkg/util/managedfields) and sigs.k8s.io/structured-merge-diff:
//
//   applyServerSide     PATCH application/apply-patch+yaml: merge the applied configuration
//                       into the live object, prune what the manager stopped applying, detect
//                       conflicts with other managers, record ownership ("Apply" entries).
//   updateManagedFields every other write: the fields that changed become the writer's
//                       ("Update" entries) and leave every other manager's set.
//
// Field sets are paths in kube's FieldsV1 encoding: `f:<field>`, list items by key
// `k:{"name":"web"}` (map lists) or by value `v:"x"` (set lists); atomic lists and maps are
// leaves. Internally a set is a Set of paths, each path its elements joined by NUL.
//
// Types come from openapi-data.json (x-kubernetes-list-type / x-kubernetes-list-map-keys,
// $ref, additionalProperties) plus the few places where kube's own tags differ from that
// data (multi-key lists, atomic structs and maps): see the tables below. Fields without a
// schema are "deduced" as structured-merge-diff does: maps merge per key, lists are atomic.
//
// Pure code: no I/O, inputs are never mutated (except updateManagedFields' `next`, which
// is its output), results share no structure with inputs.

import { ApiError, badRequest, internal, invalid } from "../shared/errors.ts";
import { deepEqual } from "../shared/patch.ts";
import { RESOURCES } from "../shared/resources.ts";
import data from "./openapi-data.json" with { type: "json" };

export type ManagedFieldsEntry = {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  fieldsType: "FieldsV1";
  fieldsV1: Record<string, unknown>;
  subresource?: string;
};

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

type JsonObject = { [key: string]: unknown };
type Schema = { [key: string]: unknown };

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Sets an own property, "__proto__" included. */
function setProp(o: JsonObject, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
  else o[key] = value;
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// ---------------------------------------------------------------------------------------
// Schema

type ListType = "atomic" | "set" | "map";

type TypeNode =
  | { t: "scalar" }
  | { t: "untyped" }
  | { t: "struct"; name: string; props: Record<string, Schema>; atomic: boolean }
  | { t: "map"; elem: Schema | undefined; atomic: boolean }
  | { t: "list"; list: ListType; keys: string[]; defaults: JsonObject; elem: Schema | undefined };

type ListNode = Extract<TypeNode, { t: "list" }>;

const SCALAR: TypeNode = { t: "scalar" };
const UNTYPED: TypeNode = { t: "untyped" };

const DEFINITIONS = (data as unknown as { definitions: Record<string, Schema> }).definitions;
const CORE = "io.k8s.api.core.v1";

/** Map lists whose kube list-map-keys (and key defaults) differ from the patch merge key. */
const LIST_KEYS: Readonly<Record<string, { keys: string[]; defaults?: JsonObject }>> = {
  [`${CORE}.Container.ports`]: { keys: ["containerPort", "protocol"], defaults: { protocol: "TCP" } },
  [`${CORE}.EphemeralContainer.ports`]: { keys: ["containerPort", "protocol"], defaults: { protocol: "TCP" } },
  [`${CORE}.ServiceSpec.ports`]: { keys: ["port", "protocol"], defaults: { protocol: "TCP" } },
  [`${CORE}.PodSpec.topologySpreadConstraints`]: { keys: ["topologyKey", "whenUnsatisfiable"] },
};

/** Structs kube tags `+structType=atomic` (owned and replaced as a whole). */
const ATOMIC_STRUCTS: ReadonlySet<string> = new Set([
  "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
  "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
  ...[
    "ConfigMapEnvSource",
    "ConfigMapKeySelector",
    "LocalObjectReference",
    "NodeSelector",
    "NodeSelectorTerm",
    "ObjectFieldSelector",
    "ObjectReference",
    "ResourceFieldSelector",
    "SecretEnvSource",
    "SecretKeySelector",
    "TypedLocalObjectReference",
  ].map((n) => `${CORE}.${n}`),
  "io.k8s.api.rbac.v1.RoleRef",
]);

/** Maps kube tags `+mapType=atomic`. */
const ATOMIC_MAPS: ReadonlySet<string> = new Set([`${CORE}.ServiceSpec.selector`, `${CORE}.PodSpec.nodeSelector`]);

const defCache = new Map<string, TypeNode>();

function defType(name: string): TypeNode {
  let node = defCache.get(name);
  if (!node) {
    const def = DEFINITIONS[name];
    if (!def) node = UNTYPED;
    else if (isObject(def.properties)) {
      node = { t: "struct", name, props: def.properties as Record<string, Schema>, atomic: ATOMIC_STRUCTS.has(name) };
    } else node = typeOf(def, name);
    defCache.set(name, node);
  }
  return node;
}

/** The type of a schema; `owner` ("<definition>.<property>") selects the override tables. */
function typeOf(s: Schema | undefined, owner = ""): TypeNode {
  if (!s) return UNTYPED;
  if (typeof s.$ref === "string") return defType(s.$ref.slice(s.$ref.lastIndexOf("/") + 1));
  if (s.type === "array") {
    const o = LIST_KEYS[owner];
    const declared = s["x-kubernetes-list-map-keys"];
    const keys = o?.keys ?? (Array.isArray(declared) ? declared.map(String) : []);
    const lt = s["x-kubernetes-list-type"];
    const list: ListType = lt === "map" && keys.length > 0 ? "map" : lt === "set" ? "set" : "atomic";
    return { t: "list", list, keys, defaults: o?.defaults ?? {}, elem: isObject(s.items) ? s.items : undefined };
  }
  if (isObject(s.properties)) return { t: "struct", name: owner, props: s.properties as Record<string, Schema>, atomic: false };
  if (isObject(s.additionalProperties)) return { t: "map", elem: s.additionalProperties, atomic: ATOMIC_MAPS.has(owner) };
  if (s.type === "string" || s.type === "integer" || s.type === "number" || s.type === "boolean") return SCALAR;
  return UNTYPED;
}

function childType(node: TypeNode, key: string): TypeNode {
  if (node.t === "struct") return Object.hasOwn(node.props, key) ? typeOf(node.props[key], `${node.name}.${key}`) : UNTYPED;
  if (node.t === "map") return typeOf(node.elem);
  return UNTYPED;
}

function isDeclared(node: TypeNode, key: string): boolean {
  return node.t === "struct" && Object.hasOwn(node.props, key);
}

let kindIndex: Map<string, string> | undefined;

function rootType(gvk: GroupVersionKind): TypeNode {
  if (!kindIndex) {
    kindIndex = new Map();
    for (const name of Object.keys(DEFINITIONS).sort()) {
      const list = DEFINITIONS[name]["x-kubernetes-group-version-kind"];
      if (!Array.isArray(list) || list.length !== 1) continue;
      const g = list[0] as GroupVersionKind;
      const key = `${g.group}/${g.version}/${g.kind}`;
      if (!kindIndex.has(key)) kindIndex.set(key, name);
    }
  }
  const name = kindIndex.get(`${gvk.group}/${gvk.version}/${gvk.kind}`);
  return name ? defType(name) : UNTYPED;
}

function gvkOf(obj: JsonObject): GroupVersionKind {
  const apiVersion = typeof obj.apiVersion === "string" ? obj.apiVersion : "";
  const slash = apiVersion.indexOf("/");
  return {
    group: slash < 0 ? "" : apiVersion.slice(0, slash),
    version: slash < 0 ? apiVersion : apiVersion.slice(slash + 1),
    kind: typeof obj.kind === "string" ? obj.kind : "",
  };
}

function gvkString(g: GroupVersionKind): string {
  return `${g.group}/${g.version}, Kind=${g.kind}`;
}

type Shape = "leaf" | "map" | "list";

/** How a value is walked: field by field, item by item, or as one leaf. */
function shape(node: TypeNode, v: unknown): Shape {
  if (isObject(v)) {
    if (node.t === "untyped") return "map";
    return (node.t === "struct" || node.t === "map") && !node.atomic ? "map" : "leaf";
  }
  if (Array.isArray(v)) return node.t === "list" && node.list !== "atomic" ? "list" : "leaf";
  return "leaf";
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || (Array.isArray(v) ? v.length === 0 : isObject(v) && Object.keys(v).length === 0);
}

// ---------------------------------------------------------------------------------------
// Paths

const SEP = "\u0000";

function join(path: string, pe: string): string {
  return path ? `${path}${SEP}${pe}` : pe;
}

/** A list item's path element; throws a plain Error (smd's wording) if it has none. */
function itemPE(node: ListNode, item: unknown): string {
  if (node.list === "map") {
    if (item === null) throw new Error("associative list with keys may not have a null element");
    if (!isObject(item)) throw new Error("associative list with keys may not have non-map elements");
    const key: JsonObject = {};
    for (const k of [...node.keys].sort()) {
      if (Object.hasOwn(item, k)) key[k] = item[k];
      else if (node.defaults[k] !== undefined) key[k] = node.defaults[k];
    }
    if (Object.keys(key).length === 0) {
      throw new Error(
        `associative list with keys has an element that omits all key fields ${JSON.stringify(node.keys)} (and doesn't have default values for any key fields)`,
      );
    }
    return `k:${JSON.stringify(key)}`;
  }
  if (isObject(item)) throw new Error("associative list without keys has an element that's a map type");
  if (Array.isArray(item)) throw new Error("not supported: associative list with lists as elements");
  return `v:${JSON.stringify(item)}`;
}

/** Path elements of a list's items, with smd-style error context. */
function itemPEs(node: ListNode, list: unknown[], path: string): string[] {
  return list.map((item, i) => {
    try {
      return itemPE(node, item);
    } catch (e) {
      throw new Error(`${pathString(path)}: element ${i}: ${(e as Error).message}`);
    }
  });
}

function goValue(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : isObject(v) || Array.isArray(v) ? JSON.stringify(v) : String(v);
}

/** A path as structured-merge-diff prints it: `.spec.containers[name="web"].image`. */
function pathString(path: string): string {
  if (!path) return "";
  return path
    .split(SEP)
    .map((pe) => {
      const body = pe.slice(2);
      try {
        if (pe.startsWith("f:")) return `.${body}`;
        if (pe.startsWith("k:")) {
          const key = JSON.parse(body) as JsonObject;
          return `[${Object.entries(key)
            .map(([k, v]) => `${k}=${goValue(v)}`)
            .join(",")}]`;
        }
        if (pe.startsWith("v:")) return `[=${goValue(JSON.parse(body))}]`;
        if (pe.startsWith("i:")) return `[${body}]`;
      } catch {
        // fall through
      }
      return `{{${pe}}}`;
    })
    .join("");
}

const PE_RANK: Record<string, number> = { f: 0, k: 1, v: 2, i: 3 };

function valueRank(v: unknown): number {
  if (typeof v === "number") return 0;
  if (typeof v === "string") return 1;
  if (typeof v === "boolean") return 2;
  if (Array.isArray(v)) return 3;
  if (isObject(v)) return 4;
  return 5;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareValues(a: unknown, b: unknown): number {
  const ra = valueRank(a);
  const rb = valueRank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "string" && typeof b === "string") return compareStrings(a, b);
  if (typeof a === "boolean" && typeof b === "boolean") return Number(a) - Number(b);
  return compareStrings(JSON.stringify(a) ?? "", JSON.stringify(b) ?? "");
}

/** structured-merge-diff's PathElement order: fields, then keys, then values, then indexes. */
function comparePE(a: string, b: string): number {
  const ra = PE_RANK[a[0]] ?? 4;
  const rb = PE_RANK[b[0]] ?? 4;
  if (ra !== rb) return ra - rb;
  const x = a.slice(2);
  const y = b.slice(2);
  try {
    if (a[0] === "k") {
      const ka = Object.entries(JSON.parse(x) as JsonObject).sort(([p], [q]) => compareStrings(p, q));
      const kb = Object.entries(JSON.parse(y) as JsonObject).sort(([p], [q]) => compareStrings(p, q));
      for (let i = 0; i < Math.max(ka.length, kb.length); i++) {
        if (i >= ka.length) return -1;
        if (i >= kb.length) return 1;
        const c = compareStrings(ka[i][0], kb[i][0]) || compareValues(ka[i][1], kb[i][1]);
        if (c) return c;
      }
      return 0;
    }
    if (a[0] === "v") return compareValues(JSON.parse(x), JSON.parse(y));
    if (a[0] === "i") return Number(x) - Number(y);
  } catch {
    // malformed element: plain string order
  }
  return compareStrings(x, y);
}

// ---------------------------------------------------------------------------------------
// Field sets

type FieldSet = Set<string>;

interface Tree {
  member: boolean;
  children: Map<string, Tree>;
}

function treeOf(set: FieldSet): Tree {
  const root: Tree = { member: false, children: new Map() };
  for (const path of set) {
    let node = root;
    for (const pe of path.split(SEP)) {
      let next = node.children.get(pe);
      if (!next) node.children.set(pe, (next = { member: false, children: new Map() }));
      node = next;
    }
    node.member = true;
  }
  return root;
}

function sortedChildren(t: Tree): Array<[string, Tree]> {
  return [...t.children].sort(([a], [b]) => comparePE(a, b));
}

/** FieldsV1: `.` marks a node that is a member and also has children; leaves are {}. */
function encodeFields(set: FieldSet): Record<string, unknown> {
  const emit = (t: Tree): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    if (t.member && t.children.size > 0) out["."] = {};
    for (const [pe, child] of sortedChildren(t)) setProp(out, pe, emit(child));
    return out;
  };
  return emit(treeOf(set));
}

function decodeFields(fields: unknown, path = "", out: FieldSet = new Set()): FieldSet {
  if (!isObject(fields)) return out;
  for (const [k, v] of Object.entries(fields)) {
    if (k === ".") {
      if (path) out.add(path);
      continue;
    }
    const p = join(path, k);
    if (isObject(v) && Object.keys(v).length > 0) decodeFields(v, p, out);
    else out.add(p);
  }
  return out;
}

/** Paths in structured-merge-diff's iteration order (a node's members, then its children). */
function sortedPaths(set: FieldSet): string[] {
  const out: string[] = [];
  const walk = (t: Tree, path: string): void => {
    const kids = sortedChildren(t);
    for (const [pe, child] of kids) if (child.member) out.push(join(path, pe));
    for (const [pe, child] of kids) if (child.children.size > 0) walk(child, join(path, pe));
  };
  walk(treeOf(set), "");
  return out;
}

function filterSet(set: FieldSet, keep: (p: string) => boolean): FieldSet {
  return new Set([...set].filter(keep));
}

function setsEqual(a: FieldSet, b: FieldSet): boolean {
  return a.size === b.size && [...a].every((p) => b.has(p));
}

/**
 * structured-merge-diff's ToFieldSet: leaves, list items, entries of maps that are not
 * declared struct fields, and empty or null values. `strict` rejects duplicate list items
 * (an applied configuration may not have any).
 */
function collect(v: unknown, node: TypeNode, path: string, out: FieldSet, strict: boolean): void {
  const s = shape(node, v);
  if (s === "leaf") {
    if (path) out.add(path);
  } else if (s === "map") {
    for (const [k, x] of Object.entries(v as JsonObject)) {
      const p = join(path, `f:${k}`);
      collect(x, childType(node, k), p, out, strict);
      if (x === null || (isObject(x) && Object.keys(x).length === 0) || !isDeclared(node, k)) out.add(p);
    }
  } else {
    const ln = node as ListNode;
    const elem = typeOf(ln.elem);
    const list = v as unknown[];
    const pes = itemPEs(ln, list, path);
    const count = new Map<string, number>();
    for (const pe of pes) count.set(pe, (count.get(pe) ?? 0) + 1);
    pes.forEach((pe, i) => {
      const p = join(path, pe);
      if ((count.get(pe) ?? 0) > 1) {
        if (strict) throw new Error(`${pathString(path)}: duplicate entries for key ${pathString(pe)}`);
        out.add(p); // duplicates are owned as a whole
        return;
      }
      collect(list[i], elem, p, out, strict);
      out.add(p);
    });
  }
}

// Paths kube never records (its stripMeta manager), whatever the operation.
const STRIPPED: ReadonlySet<string> = new Set([
  "f:apiVersion",
  "f:kind",
  "f:metadata",
  ...["name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation", "managedFields", "resourceVersion"].map(
    (f) => `f:metadata${SEP}f:${f}`,
  ),
]);

function hasStatusSubresource(gvk: GroupVersionKind): boolean {
  return RESOURCES.some((r) => r.group === gvk.group && r.kind === gvk.kind && r.subresources.includes("status"));
}

/**
 * Which paths a write through (sub)resource may own, like kube's reset fields: the main
 * resource of a kind with a status subresource never owns status, /status owns only it.
 */
function scope(gvk: GroupVersionKind, subresource: string | undefined): (p: string) => boolean {
  const statusOnly = subresource === "status";
  const dropStatus = !subresource && hasStatusSubresource(gvk);
  return (p) => {
    if (STRIPPED.has(p)) return false;
    const inStatus = p === "f:status" || p.startsWith(`f:status${SEP}`);
    return statusOnly ? inStatus : dropStatus ? !inStatus : true;
  };
}

function objectSet(obj: JsonObject, gvk: GroupVersionKind, strict: boolean): FieldSet {
  const out: FieldSet = new Set();
  collect(obj, rootType(gvk), "", out, strict);
  return out;
}

/** The field set of an object in kube's FieldsV1 encoding, for the object's kind. */
export function fieldSet(obj: Record<string, any>, gvk: GroupVersionKind): Record<string, unknown> {
  return encodeFields(filterSet(objectSet(withoutManaged(obj), gvk, false), (p) => !STRIPPED.has(p)));
}

// ---------------------------------------------------------------------------------------
// Compare

interface Comparison {
  added: FieldSet;
  removed: FieldSet;
  modified: FieldSet;
}

/**
 * structured-merge-diff's Compare: leaves that appear, disappear or change, and the maps,
 * lists and items that appear or disappear. Struct-typed fields (spec, template, ...) are
 * not recorded as appearing, as kube's Go objects always have them.
 */
function compare(l: unknown, r: unknown, node: TypeNode, path: string, c: Comparison, isField: boolean): void {
  const sl = l === undefined ? undefined : shape(node, l);
  const sr = r === undefined ? undefined : shape(node, r);
  let s: Shape = sl === undefined ? sr! : sr === undefined ? sl : sl === sr ? sl : "leaf";
  if (s !== "leaf" && isEmpty(l) && isEmpty(r)) s = "leaf";
  if (s === "leaf") {
    if (!path) return;
    if (l === undefined) c.added.add(path);
    else if (r === undefined) c.removed.add(path);
    else if (!deepEqual(l, r)) c.modified.add(path);
    return;
  }
  if (s === "map") {
    const lo = (isObject(l) ? l : {}) as JsonObject;
    const ro = (isObject(r) ? r : {}) as JsonObject;
    const keys = [...Object.keys(lo), ...Object.keys(ro).filter((k) => !Object.hasOwn(lo, k))];
    for (const k of keys) {
      compare(
        Object.hasOwn(lo, k) ? lo[k] : undefined,
        Object.hasOwn(ro, k) ? ro[k] : undefined,
        childType(node, k),
        join(path, `f:${k}`),
        c,
        true,
      );
    }
  } else {
    const ln = node as ListNode;
    const elem = typeOf(ln.elem);
    const index = (v: unknown): Map<string, unknown> => {
      const m = new Map<string, unknown>();
      if (!Array.isArray(v)) return m;
      itemPEs(ln, v, path).forEach((pe, i) => {
        if (!m.has(pe)) m.set(pe, v[i]);
      });
      return m;
    };
    const li = index(l);
    const ri = index(r);
    for (const pe of new Set([...li.keys(), ...ri.keys()])) compare(li.get(pe), ri.get(pe), elem, join(path, pe), c, false);
  }
  if (!path) return;
  if (l === undefined && !(isField && node.t === "struct")) c.added.add(path);
  else if (r === undefined) c.removed.add(path);
}

function compareObjects(l: JsonObject, r: JsonObject, root: TypeNode, keep: (p: string) => boolean): Comparison {
  const c: Comparison = { added: new Set(), removed: new Set(), modified: new Set() };
  compare(l, r, root, "", c, false);
  return { added: filterSet(c.added, keep), removed: filterSet(c.removed, keep), modified: filterSet(c.modified, keep) };
}

// ---------------------------------------------------------------------------------------
// Merge (structured-merge-diff's Merge with the "keep RHS" rule)

/** A copy of an applied value without null map entries (null means "unset"). */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) setProp(out, k, withoutNulls(x));
  return out;
}

/** Merges applied value `r` into live value `l`; undefined means the field goes. */
function merge(l: unknown, r: unknown, node: TypeNode, path: string): unknown {
  if (r === undefined) return structuredClone(l);
  if (r === null) return undefined;
  if (l === undefined || l === null) return withoutNulls(r);
  const s = shape(node, r);
  if (s === "leaf" || shape(node, l) !== s || (isEmpty(l) && isEmpty(r))) return withoutNulls(r);
  if (s === "map") {
    const lo = l as JsonObject;
    const ro = r as JsonObject;
    const out: JsonObject = {};
    for (const k of [...Object.keys(lo), ...Object.keys(ro).filter((k) => !Object.hasOwn(lo, k))]) {
      const v = merge(
        Object.hasOwn(lo, k) ? lo[k] : undefined,
        Object.hasOwn(ro, k) ? ro[k] : undefined,
        childType(node, k),
        join(path, `f:${k}`),
      );
      if (v !== undefined) setProp(out, k, v);
    }
    return out;
  }
  return mergeList(l as unknown[], r as unknown[], node as ListNode, path);
}

/**
 * structured-merge-diff's list merge: applied items in the applied order, live-only items
 * kept where they were, shared items in the applied order.
 */
function mergeList(l: unknown[], r: unknown[], node: ListNode, path: string): unknown[] {
  const elem = typeOf(node.elem);
  const rPEs = itemPEs(node, r, path);
  const lPEs = itemPEs(node, l, path);
  const observedR = new Map<string, unknown>();
  for (const [i, pe] of rPEs.entries()) observedR.set(pe, r[i]);
  const observedL = new Map<string, unknown>();
  for (const [i, pe] of lPEs.entries()) observedL.set(pe, observedL.has(pe) ? null : l[i]); // duplicates are not merged
  const shared = rPEs.filter((pe) => observedL.has(pe));
  let si = 0;
  let nextShared: string | undefined = shared[si++];
  const mergedR = new Set<string>();
  const out: unknown[] = [];
  const push = (pe: string, lv: unknown, rv: unknown): void => {
    const v = merge(lv, rv, elem, join(path, pe));
    if (v !== undefined) out.push(v);
  };
  let lI = 0;
  let rI = 0;
  while (lI < lPEs.length || rI < rPEs.length) {
    if (lI < lPEs.length && rI < rPEs.length) {
      const pe = lPEs[lI];
      if (pe === rPEs[rI]) {
        mergedR.add(pe);
        push(pe, observedL.get(pe), observedR.get(pe));
        lI++;
        rI++;
        nextShared = shared[si++];
        continue;
      }
      if (observedR.has(pe) && nextShared !== undefined && nextShared !== pe) {
        lI++; // a shared item, but not the next one in the applied order
        continue;
      }
    }
    if (lI < lPEs.length) {
      const pe = lPEs[lI];
      if (!observedR.has(pe)) {
        push(pe, l[lI], undefined);
        lI++;
        continue;
      }
      if (mergedR.has(pe)) lI++;
    }
    if (rI < rPEs.length) {
      const pe = rPEs[rI];
      mergedR.add(pe);
      push(pe, observedL.get(pe), observedR.get(pe));
      rI++;
      if (nextShared === pe) nextShared = shared[si++];
    }
  }
  return out;
}

/**
 * Removes the value at `path` (a field, a keyed item or a set value) from `root`, then the
 * maps and lists that removal left empty. Nothing goes that `owned` claims, nor a struct
 * field with an owned field below it (smd's EnsureNamedFieldsAreMembers).
 */
function removePath(root: JsonObject, rootNode: TypeNode, path: string, owned: (p: string) => boolean, owners: FieldSet[]): void {
  const ownedBelow = (p: string) => owners.some((s) => [...s].some((q) => q.startsWith(`${p}${SEP}`)));
  const stack: Array<{ parent: JsonObject | unknown[]; at: string | number; path: string; named: boolean }> = [];
  let cur: unknown = root;
  let node = rootNode;
  let p = "";
  for (const pe of path.split(SEP)) {
    p = join(p, pe);
    if (pe.startsWith("f:")) {
      const name = pe.slice(2);
      if (!isObject(cur) || !Object.hasOwn(cur, name)) return;
      stack.push({ parent: cur, at: name, path: p, named: isDeclared(node, name) });
      node = childType(node, name);
      cur = cur[name];
    } else {
      if (!Array.isArray(cur) || node.t !== "list" || node.list === "atomic") return;
      const ln = node;
      const i = cur.findIndex((item) => {
        try {
          return itemPE(ln, item) === pe;
        } catch {
          return false;
        }
      });
      if (i < 0) return;
      stack.push({ parent: cur, at: i, path: p, named: false });
      node = typeOf(ln.elem);
      cur = cur[i];
    }
  }
  const target = stack[stack.length - 1];
  if (!target || owned(target.path) || (target.named && ownedBelow(target.path))) return;
  for (let d = stack.length - 1; d >= 0; d--) {
    const { parent, at } = stack[d];
    if (Array.isArray(parent)) parent.splice(at as number, 1);
    else delete parent[at as string];
    if (d === 0 || !isEmpty(parent) || owned(stack[d - 1].path)) break;
  }
}

// ---------------------------------------------------------------------------------------
// managedFields

interface Managed {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time?: string;
  subresource?: string;
  set: FieldSet;
}

/** kube's manager identifier: appliers are one entry whatever the apiVersion. */
function idOf(m: { manager: string; operation: string; apiVersion: string; subresource?: string }): string {
  return JSON.stringify([m.manager, m.operation, m.operation === "Update" ? m.apiVersion : "", m.subresource ?? ""]);
}

/** Decodes metadata.managedFields; invalid entries make a strict decode fail and are skipped otherwise. */
function decodeManaged(v: unknown, strict: boolean): Managed[] | undefined {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return strict ? undefined : [];
  const out = new Map<string, Managed>();
  for (const e of v) {
    const ok =
      isObject(e) &&
      typeof e.manager === "string" &&
      (e.operation === "Apply" || e.operation === "Update") &&
      typeof e.apiVersion === "string" &&
      e.apiVersion !== "" &&
      e.fieldsType === "FieldsV1" &&
      (e.fieldsV1 === undefined || isObject(e.fieldsV1));
    if (!ok) {
      if (strict) return undefined;
      continue;
    }
    const m: Managed = {
      manager: e.manager as string,
      operation: e.operation as "Apply" | "Update",
      apiVersion: e.apiVersion as string,
      time: typeof e.time === "string" ? e.time : undefined,
      subresource: typeof e.subresource === "string" && e.subresource !== "" ? e.subresource : undefined,
      set: decodeFields(e.fieldsV1),
    };
    const prev = out.get(idOf(m));
    if (prev) for (const p of m.set) prev.set.add(p);
    else out.set(idOf(m), m);
  }
  return [...out.values()];
}

function seconds(time: string | undefined): number {
  const t = time ? Date.parse(time) : Number.NaN;
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
}

/** kube's order: Apply before Update, then by time, manager, apiVersion, subresource. */
function compareEntries(a: Managed, b: Managed): number {
  return (
    compareStrings(a.operation, b.operation) ||
    seconds(a.time) - seconds(b.time) ||
    compareStrings(a.manager, b.manager) ||
    compareStrings(a.apiVersion, b.apiVersion) ||
    compareStrings(a.subresource ?? "", b.subresource ?? "")
  );
}

const MAX_UPDATE_MANAGERS = 10;
const ANCIENT_CHANGES = "ancient-changes";

/** kube's capManagers: the oldest Update entries beyond ten merge into "ancient-changes". */
function capUpdaters(list: Managed[]): Managed[] {
  const updaters = list.filter((m) => m.operation === "Update");
  if (updaters.length <= MAX_UPDATE_MANAGERS) return list;
  const isBucket = (m: Managed) => m.manager === ANCIENT_CHANGES && !m.subresource;
  let bucket = updaters.find(isBucket);
  const rest = updaters.filter((m) => !isBucket(m)).sort((a, b) => seconds(a.time) - seconds(b.time) || compareStrings(idOf(a), idOf(b)));
  const merged = new Set<Managed>();
  let count = updaters.length;
  for (const m of rest) {
    if (count <= MAX_UPDATE_MANAGERS) break;
    if (!bucket) {
      bucket = { manager: ANCIENT_CHANGES, operation: "Update", apiVersion: m.apiVersion, time: m.time, set: new Set(m.set) };
    } else {
      for (const p of m.set) bucket.set.add(p);
      bucket.time = m.time;
      count--;
    }
    merged.add(m);
  }
  const out = list.filter((m) => !merged.has(m) && !(bucket && isBucket(m)));
  if (bucket) out.push(bucket);
  return out;
}

function encodeManaged(list: Managed[]): ManagedFieldsEntry[] {
  return capUpdaters(list.filter((m) => m.set.size > 0))
    .sort(compareEntries)
    .map((m) => {
      const e: Record<string, unknown> = { manager: m.manager, operation: m.operation, apiVersion: m.apiVersion };
      if (m.time !== undefined) e.time = m.time;
      e.fieldsType = "FieldsV1";
      e.fieldsV1 = encodeFields(m.set);
      if (m.subresource) e.subresource = m.subresource;
      return e as ManagedFieldsEntry;
    });
}

function writeManaged(obj: JsonObject, list: Managed[]): void {
  if (!isObject(obj.metadata)) obj.metadata = {};
  const meta = obj.metadata as JsonObject;
  const entries = encodeManaged(list);
  if (entries.length > 0) meta.managedFields = entries;
  else delete meta.managedFields;
}

/** A deep copy without metadata.managedFields. */
function withoutManaged(obj: JsonObject | undefined): JsonObject {
  const copy = structuredClone(obj ?? {}) as JsonObject;
  if (isObject(copy.metadata)) delete copy.metadata.managedFields;
  return copy;
}

/** `managedFields: [{}]` in a write asks for the managed fields to be reset. */
function isReset(v: unknown): boolean {
  return Array.isArray(v) && v.length === 1 && isObject(v[0]) && Object.keys(v[0]).length === 0;
}

// ---------------------------------------------------------------------------------------
// Conflicts

function describeManager(m: Managed): string {
  let s = JSON.stringify(m.manager);
  if (m.subresource) s += ` with subresource ${JSON.stringify(m.subresource)}`;
  return m.operation === "Update" ? `${s} using ${m.apiVersion}` : s;
}

/** 409 in kube's words (k8s.io/apimachinery/pkg/util/managedfields/internal/conflict.go). */
function conflictError(conflicts: Array<{ manager: Managed; paths: string[] }>): ApiError {
  const causes = conflicts.flatMap(({ manager, paths }) =>
    paths.map((p) => ({ reason: "FieldManagerConflict", message: `conflict with ${describeManager(manager)}`, field: pathString(p) })),
  );
  let message: string;
  if (causes.length === 1) {
    message = `Apply failed with 1 conflict: ${causes[0].message}: ${causes[0].field}`;
  } else {
    const lines: string[] = [];
    for (const { manager, paths } of conflicts) {
      lines.push(`conflicts with ${describeManager(manager)}:`);
      for (const p of paths) lines.push(`- ${pathString(p)}`);
    }
    message = `Apply failed with ${causes.length} conflicts: ${lines.join("\n")}`;
  }
  return new ApiError(409, "Conflict", message, { causes });
}

// ---------------------------------------------------------------------------------------
// Apply

/**
 * Server-side apply: merges `applied` (the user's configuration, parsed from YAML/JSON)
 * into `live` (undefined when the object does not exist yet) for `manager`. Fields the
 * manager applied before but no longer lists are removed unless another manager owns
 * them; a field the configuration changes that another manager owns is a 409 Conflict
 * unless `force`, which moves its ownership to `manager`. Returns the merged object with
 * metadata.managedFields updated. Defaulting and validation are the caller's.
 */
export function applyServerSide(
  live: Record<string, any> | undefined,
  applied: Record<string, any>,
  opts: { manager: string; force: boolean; now: Date; subresource?: string },
): Record<string, any> {
  const { manager, force, subresource } = opts;
  if (!manager) {
    throw invalid("PatchOptions", "meta.k8s.io", "", [
      { field: "fieldManager", type: "FieldValueRequired", message: "Required value: is required for apply patch" },
    ]);
  }
  if (manager.length > 128) {
    throw invalid("PatchOptions", "meta.k8s.io", "", [
      { field: "fieldManager", type: "FieldValueTooLong", message: "Too long: may not be more than 128 bytes" },
    ]);
  }
  if (!isObject(applied)) throw badRequest("error decoding YAML: the apply configuration must be an object");
  const gvk = gvkOf(applied);
  if (!gvk.version || !gvk.kind || (live && (live.apiVersion !== applied.apiVersion || live.kind !== applied.kind))) {
    throw badRequest(`invalid object type: ${gvkString(gvk)}`);
  }
  if (isObject(applied.metadata) && applied.metadata.managedFields !== undefined && applied.metadata.managedFields !== null) {
    throw badRequest("metadata.managedFields must be nil");
  }

  const root = rootType(gvk);
  const keep = scope(gvk, subresource);
  const config = withoutManaged(applied);
  let configSet: FieldSet;
  try {
    configSet = filterSet(objectSet(config, gvk, true), keep);
  } catch (e) {
    throw badRequest(`failed to create typed patch object (${gvkString(gvk)}): ${(e as Error).message}`);
  }

  const liveObj = withoutManaged(live);
  const managed = decodeManaged(live?.metadata?.managedFields, false)!;
  const applierId = idOf({ manager, operation: "Apply", apiVersion: gvk.version, subresource });
  const previous = managed.find((m) => idOf(m) === applierId);
  const others = managed.filter((m) => m !== previous);

  let merged: JsonObject;
  let cmp: Comparison;
  try {
    merged = merge(liveObj, config, root, "") as JsonObject;
    // Prune: what the manager applied last time and no longer does, unless someone owns it.
    if (previous) {
      const owners = [configSet, ...others.map((m) => m.set)];
      const owned = (p: string) => owners.some((s) => s.has(p));
      for (const p of sortedPaths(previous.set)) removePath(merged, root, p, owned, owners);
    }
    cmp = compareObjects(liveObj, merged, root, keep);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw internal(`failed to merge the apply configuration (${gvkString(gvk)}): ${(e as Error).message}`);
  }

  const changed = new Set([...cmp.modified, ...cmp.added]);
  const conflicts: Array<{ manager: Managed; paths: string[] }> = [];
  for (const m of others) {
    const paths = sortedPaths(filterSet(m.set, (p) => changed.has(p)));
    if (paths.length > 0) conflicts.push({ manager: m, paths });
  }
  if (conflicts.length > 0 && !force) {
    conflicts.sort((a, b) => compareStrings(idOf(a.manager), idOf(b.manager)));
    throw conflictError(conflicts);
  }

  const result: Managed[] = others.map((m) => ({ ...m, set: filterSet(m.set, (p) => !changed.has(p) && !cmp.removed.has(p)) }));
  const objectChanged = !deepEqual(liveObj, merged);
  const setChanged = !previous || !setsEqual(previous.set, configSet);
  result.push({
    manager,
    operation: "Apply",
    apiVersion: String(applied.apiVersion),
    time: objectChanged || setChanged || !previous?.time ? rfc3339(opts.now) : previous.time,
    subresource,
    set: configSet,
  });
  writeManaged(merged, result);
  return merged;
}

// ---------------------------------------------------------------------------------------
// Update

/**
 * For every non-apply write (create, update, patch, and their subresources): records in
 * `next.metadata.managedFields` that `manager` (operation Update) now owns the fields that
 * differ between `old` (undefined on create) and `next`, and takes them (and any removed
 * fields) out of every other manager's set. managedFields the write itself carries are
 * honoured when valid and non-empty (not on subresources), and `[{}]` resets them, as in
 * kube. Never throws: on a malformed object the live managedFields are kept.
 */
export function updateManagedFields(
  old: Record<string, any> | undefined,
  next: Record<string, any>,
  opts: { manager: string; now: Date; subresource?: string },
): void {
  if (!isObject(next.metadata)) next.metadata = {};
  const provided = next.metadata.managedFields;
  try {
    const gvk = gvkOf(next);
    let managed: Managed[];
    if (isReset(provided)) managed = [];
    else {
      const own = opts.subresource ? undefined : decodeManaged(provided, true);
      managed = own && own.length > 0 ? own : decodeManaged(old?.metadata?.managedFields, false)!;
    }
    const cmp = compareObjects(withoutManaged(old), withoutManaged(next), rootType(gvk), scope(gvk, opts.subresource));
    const changed = new Set([...cmp.modified, ...cmp.added]);
    const result = managed.map((m) => ({ ...m, set: filterSet(m.set, (p) => !changed.has(p) && !cmp.removed.has(p)) }));
    if (changed.size > 0) {
      const apiVersion = typeof next.apiVersion === "string" ? next.apiVersion : "";
      const id = idOf({ manager: opts.manager, operation: "Update", apiVersion, subresource: opts.subresource });
      const mine = result.find((m) => idOf(m) === id);
      if (mine) {
        for (const p of changed) mine.set.add(p);
        mine.time = rfc3339(opts.now);
      } else {
        result.push({
          manager: opts.manager,
          operation: "Update",
          apiVersion,
          time: rfc3339(opts.now),
          subresource: opts.subresource,
          set: changed,
        });
      }
    }
    writeManaged(next, result);
  } catch {
    const kept = old?.metadata?.managedFields;
    if (kept === undefined) delete next.metadata.managedFields;
    else next.metadata.managedFields = structuredClone(kept);
  }
}

/**
 * The manager of a write, as kube names it: the request's fieldManager, else the User-Agent
 * up to its first "/" (kubectl sends fieldManager=kubectl-client-side-apply, kubectl-edit,
 * kubectl-create, ...; other clients are named by their binary, e.g. "kube-controller-manager").
 */
export function defaultManager(userAgent: string | undefined, fieldManager?: string | null): string {
  if (fieldManager) return fieldManager;
  let out = "";
  for (const ch of (userAgent ?? "").split("/")[0]) {
    if (!/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch)) continue;
    if (out.length >= 128) break;
    out += ch;
  }
  return out;
}
