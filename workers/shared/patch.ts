// The three patch types kube-apiserver accepts on PATCH:
//
//   application/json-patch+json            RFC 6902 JSON Patch
//   application/merge-patch+json           RFC 7386 JSON Merge Patch
//   application/strategic-merge-patch+json Kubernetes strategic merge patch
//
// Pure functions over plain JSON values: no Node or Workers APIs, inputs are never
// mutated and results never share structure with the inputs.
//
// Status codes follow kube-apiserver (k8s.io/apiserver/pkg/endpoints/handlers/patch.go):
// a JSON Patch that does not decode (not an array of objects) is 400 BadRequest, one that
// decodes but cannot be applied (unknown op, bad pointer, missing path, failed `test`) is
// 422 Invalid "the server rejected our request due to an error in our request"; more than
// 10000 operations is 413. Malformed strategic merge patches are 400, except lists of
// lists, which are 422.
//
// Strategic merge patch follows k8s.io/apimachinery/pkg/util/strategicpatch (mergeMap /
// mergeSlice / mergePatchIntoOriginal), including its list ordering rules: items named in
// the patch keep the patch's order and are interleaved with the server-only items by the
// live order, so an item new to the list lands before the server-only items that follow
// it (adding one container to [a, b] gives [new, a, b], as kube-apiserver does). Field
// metadata (patchMergeKey / patchStrategy struct tags) comes from the table below.

import { ApiError, badRequest } from "./errors.ts";

export type PatchType = "json" | "merge" | "strategic";

type JsonObject = { [key: string]: unknown };

// ---------------------------------------------------------------------------------------
// Content types

const PATCH_CONTENT_TYPES: ReadonlyMap<string, PatchType> = new Map<string, PatchType>([
  ["application/json-patch+json", "json"],
  ["application/merge-patch+json", "merge"],
  ["application/strategic-merge-patch+json", "strategic"],
]);

/** Maps a Content-Type header to a patch type, or undefined if unsupported. Accepts
 * application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (ignore parameters such as ;charset=utf-8). */
export function patchTypeOf(contentType: string | undefined): PatchType | undefined {
  if (contentType === undefined) return undefined;
  const mediaType = contentType.split(";", 1)[0].trim().toLowerCase();
  return PATCH_CONTENT_TYPES.get(mediaType);
}

export function applyPatch(type: PatchType, target: unknown, patch: unknown, kind: string): unknown {
  switch (type) {
    case "json":
      return applyJsonPatch(target, patch);
    case "merge":
      // RFC 7386 lets a non-object patch replace the whole document, but a patched API
      // object must stay an object, so kube-apiserver rejects that as a bad request.
      if (!isObject(patch)) throw badRequest("merge patch must be a JSON object");
      return applyMergePatch(target, patch);
    case "strategic":
      return applyStrategicMergePatch(target, patch, kind);
    default:
      throw badRequest(`unsupported patch type ${JSON.stringify(type)}`);
  }
}

// ---------------------------------------------------------------------------------------
// JSON helpers

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function hasOwn(o: object, key: string): boolean {
  return Object.hasOwn(o, key);
}

/** Sets an own data property, including "__proto__" (which plain assignment would
 * treat as a prototype change). */
function setProp(o: JsonObject, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    o[key] = value;
  }
}

function deepClone<T>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => deepClone(x)) as T;
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) setProp(out, k, deepClone(x));
    return out as T;
  }
  return v;
}

/** JSON type of a value, for "same type" checks ("null", "array", "object", "string", ...). */
function jsonKind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/** Equality of JSON values (objects by own keys, arrays by position). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}

// ---------------------------------------------------------------------------------------
// RFC 7386 JSON Merge Patch

/** RFC 7386 JSON merge patch. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return deepClone(patch);
  const result: JsonObject = isObject(target) ? deepClone(target) : {};
  mergePatchInto(result, patch);
  return result;
}

/** Applies an object merge patch to `result`, which the caller owns. */
function mergePatchInto(result: JsonObject, patch: JsonObject): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else if (isObject(value)) {
      const current = hasOwn(result, key) ? result[key] : undefined;
      const child: JsonObject = isObject(current) ? current : {};
      mergePatchInto(child, value);
      setProp(result, key, child);
    } else {
      setProp(result, key, deepClone(value));
    }
  }
}

// ---------------------------------------------------------------------------------------
// RFC 6902 JSON Patch

/** kube-apiserver's limit on the number of operations in one JSON patch. */
const MAX_JSON_PATCH_OPERATIONS = 10000;

const INVALID_MESSAGE = "the server rejected our request due to an error in our request";

/** A JSON patch that decoded but cannot be applied: 422 Invalid, as kube-apiserver returns. */
function patchNotApplicable(detail: string): ApiError {
  return new ApiError(422, "Invalid", INVALID_MESSAGE, { causes: [{ message: detail }] });
}

/** RFC 6902 JSON patch (add, remove, replace, move, copy, test; JSON pointer with ~0 ~1 escapes, "-" for append). patch must be an array. */
export function applyJsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) {
    throw badRequest(`json patch must be a JSON array of operations, got ${jsonKind(patch)}`);
  }
  patch.forEach((op, i) => {
    if (!isObject(op)) throw badRequest(`json patch operation ${i} must be a JSON object, got ${jsonKind(op)}`);
  });
  if (patch.length > MAX_JSON_PATCH_OPERATIONS) {
    throw new ApiError(
      413,
      "RequestEntityTooLarge",
      `The allowed maximum operations in a JSON patch is ${MAX_JSON_PATCH_OPERATIONS}, got ${patch.length}`,
    );
  }
  let doc = deepClone(target);
  for (const op of patch as JsonObject[]) doc = applyOperation(doc, op);
  return doc;
}

function applyOperation(doc: unknown, op: JsonObject): unknown {
  const name = op.op;
  switch (name) {
    case "add":
      return addValue(doc, pointerOf(op, "path"), deepClone(opValue(op)), "add");
    case "remove":
      return removeValue(doc, pointerOf(op, "path"), "remove");
    case "replace": {
      const path = pointerOf(op, "path");
      const value = deepClone(opValue(op));
      if (path.tokens.length === 0) return value;
      const { parent, token } = locateParent(doc, path, "replace");
      if (Array.isArray(parent)) {
        parent[existingIndex(parent, token, path, "replace")] = value;
      } else {
        if (!hasOwn(parent, token)) throw missing("replace", path);
        setProp(parent, token, value);
      }
      return doc;
    }
    case "move": {
      const from = pointerOf(op, "from");
      const path = pointerOf(op, "path");
      const value = getValue(doc, from, "move");
      if (from.raw === path.raw) return doc;
      if (isProperPrefix(from.tokens, path.tokens)) {
        throw patchNotApplicable(`move operation does not apply: "from" ${describe(from.raw)} is a prefix of "path" ${describe(path.raw)}`);
      }
      return addValue(removeValue(doc, from, "move"), path, value, "move");
    }
    case "copy": {
      const from = pointerOf(op, "from");
      const path = pointerOf(op, "path");
      return addValue(doc, path, deepClone(getValue(doc, from, "copy")), "copy");
    }
    case "test": {
      const path = pointerOf(op, "path");
      const expected = opValue(op);
      const actual = getValue(doc, path, "test");
      if (!deepEqual(actual, expected)) {
        throw patchNotApplicable(`testing value ${path.raw} failed: expected ${describe(expected)}, found ${describe(actual)}`);
      }
      return doc;
    }
    default:
      throw patchNotApplicable(`unexpected json patch operation ${describe(name)}`);
  }
}

interface Pointer {
  raw: string;
  tokens: string[];
}

function pointerOf(op: JsonObject, field: "path" | "from"): Pointer {
  const raw = hasOwn(op, field) ? op[field] : undefined;
  if (typeof raw !== "string") {
    throw patchNotApplicable(`${describe(op.op)} operation is missing a string "${field}"`);
  }
  if (raw === "") return { raw, tokens: [] };
  if (!raw.startsWith("/")) throw patchNotApplicable(`invalid JSON pointer ${describe(raw)}: must be empty or start with "/"`);
  const tokens = raw
    .slice(1)
    .split("/")
    .map((t) => {
      if (/~(?![01])/.test(t)) throw patchNotApplicable(`invalid JSON pointer ${describe(raw)}: bad "~" escape`);
      return t.replace(/~1/g, "/").replace(/~0/g, "~");
    });
  return { raw, tokens };
}

function opValue(op: JsonObject): unknown {
  if (!hasOwn(op, "value")) throw patchNotApplicable(`${describe(op.op)} operation is missing "value"`);
  return op.value;
}

function missing(opName: string, path: Pointer): ApiError {
  return patchNotApplicable(`${opName} operation does not apply: doc is missing path ${describe(path.raw)}`);
}

function isProperPrefix(prefix: string[], tokens: string[]): boolean {
  return prefix.length < tokens.length && prefix.every((t, i) => tokens[i] === t);
}

/** Parses an array index token (RFC 6901: "0" or digits without a leading zero). */
function arrayIndex(token: string, path: Pointer, opName: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) {
    throw patchNotApplicable(`${opName} operation does not apply: invalid array index ${describe(token)} in ${describe(path.raw)}`);
  }
  return Number(token);
}

function existingIndex(arr: unknown[], token: string, path: Pointer, opName: string): number {
  const i = arrayIndex(token, path, opName);
  if (i >= arr.length) {
    throw patchNotApplicable(`${opName} operation does not apply: index ${i} out of bounds in ${describe(path.raw)}`);
  }
  return i;
}

/** The value at tokens[0..n), which must exist. */
function walk(doc: unknown, tokens: string[], path: Pointer, opName: string): unknown {
  let cur = doc;
  for (const token of tokens) {
    if (Array.isArray(cur)) {
      cur = cur[existingIndex(cur, token, path, opName)];
    } else if (isObject(cur)) {
      if (!hasOwn(cur, token)) throw missing(opName, path);
      cur = cur[token];
    } else {
      throw missing(opName, path);
    }
  }
  return cur;
}

function getValue(doc: unknown, path: Pointer, opName: string): unknown {
  return walk(doc, path.tokens, path, opName);
}

function locateParent(doc: unknown, path: Pointer, opName: string): { parent: unknown[] | JsonObject; token: string } {
  const parent = walk(doc, path.tokens.slice(0, -1), path, opName);
  if (!Array.isArray(parent) && !isObject(parent)) throw missing(opName, path);
  return { parent, token: path.tokens[path.tokens.length - 1] };
}

function addValue(doc: unknown, path: Pointer, value: unknown, opName: string): unknown {
  if (path.tokens.length === 0) return value;
  const { parent, token } = locateParent(doc, path, opName);
  if (Array.isArray(parent)) {
    const i = token === "-" ? parent.length : arrayIndex(token, path, opName);
    if (i > parent.length) {
      throw patchNotApplicable(`${opName} operation does not apply: index ${i} out of bounds in ${describe(path.raw)}`);
    }
    parent.splice(i, 0, value);
  } else {
    setProp(parent, token, value);
  }
  return doc;
}

function removeValue(doc: unknown, path: Pointer, opName: string): unknown {
  if (path.tokens.length === 0) {
    throw patchNotApplicable(`${opName} operation does not apply: cannot remove the whole document`);
  }
  const { parent, token } = locateParent(doc, path, opName);
  if (Array.isArray(parent)) {
    parent.splice(existingIndex(parent, token, path, opName), 1);
  } else {
    if (!hasOwn(parent, token)) throw missing(opName, path);
    delete parent[token];
  }
  return doc;
}

// ---------------------------------------------------------------------------------------
// Strategic merge patch: field metadata
//
// kind -> dotted path ("[]" marks a list element) -> the field's patchStrategy and
// patchMergeKey struct tags, from k8s.io/api core/v1, apps/v1, batch/v1 types.go and
// k8s.io/apimachinery meta/v1 ObjectMeta. Fields not listed have no tags: maps merge,
// lists replace. Lists that are atomic in SMP although they look keyed, for reference:
// PodSpec tolerations/readinessGates, Container envFrom/resizePolicy/restartPolicyRules/
// resources.claims, PodStatus containerStatuses/initContainerStatuses/
// ephemeralContainerStatuses, NodeSpec taints, NodeStatus images/volumesAttached,
// Endpoints subsets, ServiceAccount imagePullSecrets, NamespaceSpec finalizers.

type PatchStrategy = "merge" | "retainKeys" | "merge,retainKeys" | "replace";

interface FieldPatchMeta {
  readonly strategy: PatchStrategy;
  readonly mergeKey?: string;
}

type FieldTable = Readonly<Record<string, FieldPatchMeta>>;

function mergeBy(mergeKey: string): FieldPatchMeta {
  return { strategy: "merge", mergeKey };
}

const MERGE_PRIMITIVES: FieldPatchMeta = { strategy: "merge" };

/** Re-roots a table under a path prefix. */
function under(prefix: string, table: FieldTable): FieldTable {
  const out: Record<string, FieldPatchMeta> = {};
  for (const [path, meta] of Object.entries(table)) out[`${prefix}.${path}`] = meta;
  return out;
}

const OBJECT_META: FieldTable = {
  finalizers: MERGE_PRIMITIVES,
  ownerReferences: mergeBy("uid"),
};

const CONTAINER: FieldTable = {
  ports: mergeBy("containerPort"),
  env: mergeBy("name"),
  volumeMounts: mergeBy("mountPath"),
  volumeDevices: mergeBy("devicePath"),
};

const POD_SPEC: FieldTable = {
  volumes: { strategy: "merge,retainKeys", mergeKey: "name" },
  initContainers: mergeBy("name"),
  containers: mergeBy("name"),
  ephemeralContainers: mergeBy("name"),
  ...under("initContainers[]", CONTAINER),
  ...under("containers[]", CONTAINER),
  ...under("ephemeralContainers[]", CONTAINER),
  imagePullSecrets: mergeBy("name"),
  hostAliases: mergeBy("ip"),
  topologySpreadConstraints: mergeBy("topologyKey"),
  schedulingGates: mergeBy("name"),
  resourceClaims: { strategy: "merge,retainKeys", mergeKey: "name" },
  evictionResponders: mergeBy("name"),
};

const POD_STATUS: FieldTable = {
  conditions: mergeBy("type"),
  hostIPs: mergeBy("ip"),
  podIPs: mergeBy("ip"),
  resourceClaimStatuses: { strategy: "merge,retainKeys", mergeKey: "name" },
  nodeAllocatableResourceClaimStatuses: mergeBy("resourceClaimName"),
  "nodeAllocatableResourceClaimStatuses[].mapping": mergeBy("name"),
  "nodeAllocatableResourceClaimStatuses[].overhead": mergeBy("name"),
};

const POD_TEMPLATE_SPEC: FieldTable = {
  ...under("metadata", OBJECT_META),
  ...under("spec", POD_SPEC),
};

const STATUS_CONDITIONS: FieldTable = { "status.conditions": mergeBy("type") };

const KIND_TABLES: Readonly<Record<string, FieldTable>> = {
  Pod: { ...under("spec", POD_SPEC), ...under("status", POD_STATUS) },
  Node: {
    "spec.podCIDRs": MERGE_PRIMITIVES,
    "status.conditions": mergeBy("type"),
    "status.addresses": mergeBy("type"),
  },
  Service: { "spec.ports": mergeBy("port"), ...STATUS_CONDITIONS },
  Endpoints: {},
  ConfigMap: {},
  Secret: {},
  Event: {},
  ServiceAccount: { secrets: mergeBy("name") },
  Namespace: { ...STATUS_CONDITIONS },
  Lease: {},
  Deployment: {
    "spec.strategy": { strategy: "retainKeys" },
    ...under("spec.template", POD_TEMPLATE_SPEC),
    ...STATUS_CONDITIONS,
  },
  ReplicaSet: { ...under("spec.template", POD_TEMPLATE_SPEC), ...STATUS_CONDITIONS },
  // Other PodTemplateSpec holders, so the pod rules apply wherever a pod template appears.
  StatefulSet: { ...under("spec.template", POD_TEMPLATE_SPEC), ...STATUS_CONDITIONS },
  DaemonSet: { ...under("spec.template", POD_TEMPLATE_SPEC), ...STATUS_CONDITIONS },
  ReplicationController: { ...under("spec.template", POD_TEMPLATE_SPEC), ...STATUS_CONDITIONS },
  PodTemplate: { ...under("template", POD_TEMPLATE_SPEC) },
  Job: { ...under("spec.template", POD_TEMPLATE_SPEC), ...STATUS_CONDITIONS },
  CronJob: {
    ...under("spec.jobTemplate.metadata", OBJECT_META),
    ...under("spec.jobTemplate.spec.template", POD_TEMPLATE_SPEC),
  },
};

type Schema = ReadonlyMap<string, FieldPatchMeta>;

function buildSchema(table: FieldTable): Schema {
  return new Map(Object.entries({ ...under("metadata", OBJECT_META), ...table }));
}

const SCHEMAS: ReadonlyMap<string, Schema> = new Map(Object.entries(KIND_TABLES).map(([kind, table]) => [kind, buildSchema(table)]));

/** Unknown kinds still get ObjectMeta's rules. */
const DEFAULT_SCHEMA: Schema = buildSchema({});

function schemaFor(kind: string): Schema {
  return SCHEMAS.get(kind) ?? DEFAULT_SCHEMA;
}

/** The strategy besides retainKeys ("merge", "replace" or "" for none). `$retainKeys`
 * itself is honoured wherever it appears, as kube-apiserver does. */
function baseStrategy(meta: FieldPatchMeta | undefined): string {
  if (!meta) return "";
  return meta.strategy
    .split(",")
    .filter((s) => s !== "retainKeys")
    .join(",");
}

function childPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

// ---------------------------------------------------------------------------------------
// Strategic merge patch: algorithm

const PATCH_DIRECTIVE = "$patch";
const RETAIN_KEYS = "$retainKeys";
const SET_ELEMENT_ORDER = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList";

const BAD_PRIMITIVE_LIST = "invalid patch format of primitive list";
const BAD_RETAIN_KEYS = "invalid patch format of retainKeys";
const BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list";

function isDirectiveKey(key: string): boolean {
  return key === PATCH_DIRECTIVE || key === RETAIN_KEYS || key.startsWith(SET_ELEMENT_ORDER) || key.startsWith(DELETE_FROM_PRIMITIVE_LIST);
}

function badPatchType(directive: unknown): ApiError {
  return badRequest(`unknown patch type: ${describe(directive)} (expected "replace", "delete" or "merge")`);
}

function noMergeKey(item: unknown, mergeKey: string, path: string): ApiError {
  return badRequest(`map: ${describe(item)} does not contain declared merge key: ${mergeKey} (in ${path})`);
}

/** `$setElementOrder/field` -> "field". */
function directiveField(key: string, prefix: string, error: string): string {
  const slash = key.indexOf("/");
  if (slash < 0 || key.slice(0, slash) !== prefix) throw badRequest(error);
  return key.slice(slash + 1);
}

/** Kubernetes strategic merge patch for the object of the given kind (e.g. "Pod", "Deployment"). */
export function applyStrategicMergePatch(target: unknown, patch: unknown, kind: string): unknown {
  if (!isObject(patch)) throw badRequest(`strategic merge patch must be a JSON object, got ${jsonKind(patch)}`);
  let original: JsonObject;
  if (target === null || target === undefined) original = {};
  else if (isObject(target)) original = deepClone(target);
  else throw badRequest(`strategic merge patch target must be a JSON object, got ${jsonKind(target)}`);
  return mergeMap(original, patch, "", schemaFor(kind));
}

const DROP: unique symbol = Symbol("drop");

/**
 * A patch value that has nothing to merge into (the field is new, changes type, or is
 * replaced): a deep copy without null map entries and without directives. A map with
 * `$patch: delete` is dropped, and so is any `$patch` element of a list (as upstream's
 * removeDirectives does); a map with `$patch: replace` or `merge` keeps its content.
 */
function cleanPatchValue(v: unknown): unknown {
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (const el of v) {
      if (isObject(el) && hasOwn(el, PATCH_DIRECTIVE)) {
        const d = el[PATCH_DIRECTIVE];
        if (d !== "replace" && d !== "delete" && d !== "merge") throw badPatchType(d);
        continue;
      }
      out.push(cleanPatchValue(el));
    }
    return out;
  }
  if (isObject(v)) {
    if (hasOwn(v, PATCH_DIRECTIVE)) {
      const d = v[PATCH_DIRECTIVE];
      if (d === "delete") return DROP;
      if (d !== "replace" && d !== "merge") throw badPatchType(d);
    }
    return cleanMapEntries(v);
  }
  return v;
}

/** A copy of a patch map's fields, cleaned as above, without its directives. */
function cleanMapEntries(v: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === null || isDirectiveKey(k)) continue;
    const c = cleanPatchValue(x);
    if (c !== DROP) setProp(out, k, c);
  }
  return out;
}

function setOrDrop(o: JsonObject, key: string, value: unknown): void {
  if (value === DROP) delete o[key];
  else setProp(o, key, value);
}

/** Merges `patch` into `original`, which the caller owns and which may be changed in
 * place; returns the merged map (a new one for `$patch: replace` / `delete`). */
function mergeMap(original: JsonObject, patch: JsonObject, path: string, schema: Schema): JsonObject {
  if (hasOwn(patch, PATCH_DIRECTIVE)) {
    const directive = patch[PATCH_DIRECTIVE];
    if (directive === "replace") return cleanMapEntries(patch);
    if (directive === "delete") return {};
    if (directive !== "merge") throw badPatchType(directive);
    // `$patch: merge` is the default behaviour; upstream rejects it on maps, we accept it.
  }

  if (hasOwn(patch, RETAIN_KEYS)) applyRetainKeys(original, patch);

  const handled = new Set<string>([PATCH_DIRECTIVE, RETAIN_KEYS]);
  for (const key of Object.keys(patch)) {
    if (key.startsWith(SET_ELEMENT_ORDER)) applySetElementOrder(original, patch, key, path, schema, handled);
  }

  // Deletions from primitive lists run after the additions in the same map, so a value
  // that is both added and deleted ends up deleted (upstream's order here is map order).
  const deletions: Array<[string, unknown]> = [];
  for (const [key, value] of Object.entries(patch)) {
    if (handled.has(key)) continue;
    if (key.startsWith(DELETE_FROM_PRIMITIVE_LIST)) {
      deletions.push([directiveField(key, DELETE_FROM_PRIMITIVE_LIST, BAD_PRIMITIVE_LIST), value]);
      continue;
    }
    mergeField(original, key, value, path, schema);
  }
  for (const [field, value] of deletions) deleteFromPrimitiveList(original, field, value, path, schema);
  return original;
}

function mergeField(original: JsonObject, key: string, patchValue: unknown, path: string, schema: Schema): void {
  if (patchValue === null) {
    delete original[key];
    return;
  }
  const current = hasOwn(original, key) ? original[key] : undefined;
  if (current === undefined || jsonKind(current) !== jsonKind(patchValue)) {
    setOrDrop(original, key, cleanPatchValue(patchValue));
    return;
  }
  const fieldPath = childPath(path, key);
  const meta = schema.get(fieldPath);
  if (isObject(current) && isObject(patchValue)) {
    if (baseStrategy(meta) === "replace") setOrDrop(original, key, cleanPatchValue(patchValue));
    else setProp(original, key, mergeMap(current, patchValue, fieldPath, schema));
  } else if (Array.isArray(current) && Array.isArray(patchValue)) {
    if (baseStrategy(meta) === "merge") {
      setProp(original, key, mergeList(current, patchValue, fieldPath, meta?.mergeKey ?? "", false, schema));
    } else {
      setProp(original, key, cleanPatchValue(patchValue));
    }
  } else {
    setProp(original, key, patchValue);
  }
}

function applyRetainKeys(original: JsonObject, patch: JsonObject): void {
  const list = patch[RETAIN_KEYS];
  if (!Array.isArray(list)) throw badRequest(BAD_RETAIN_KEYS);
  const retain = new Set<unknown>(list);
  for (const [key, value] of Object.entries(patch)) {
    if (value === null || key === PATCH_DIRECTIVE || key === RETAIN_KEYS) continue;
    if (key.startsWith(SET_ELEMENT_ORDER) || key.startsWith(DELETE_FROM_PRIMITIVE_LIST)) continue;
    if (!retain.has(key)) throw badRequest(`${BAD_RETAIN_KEYS}: ${describe(key)} is not in $retainKeys`);
  }
  for (const key of Object.keys(original)) {
    if (!retain.has(key)) delete original[key];
  }
}

function deleteFromPrimitiveList(original: JsonObject, field: string, toDelete: unknown, path: string, schema: Schema): void {
  if (toDelete === null) {
    // Upstream treats a null deletion list like a null field.
    delete original[field];
    return;
  }
  if (!Array.isArray(toDelete)) throw badRequest(BAD_PRIMITIVE_LIST);
  const current = hasOwn(original, field) ? original[field] : undefined;
  if (!Array.isArray(current)) return;
  setProp(original, field, mergeList(current, toDelete, childPath(path, field), "", true, schema));
}

/** The JSON type shared by every element, undefined for no elements. Lists of lists are
 * 422, mixed element types 400. */
function elementKind(path: string, ...lists: unknown[][]): string | undefined {
  let kind: string | undefined;
  for (const list of lists) {
    for (const el of list) {
      const k = jsonKind(el);
      if (k === "array") throw new ApiError(422, "Invalid", `${INVALID_MESSAGE}: lists of lists are not supported (in ${path})`);
      if (kind === undefined) kind = k;
      else if (kind !== k) throw badRequest(`list element types are not identical in ${path}`);
    }
  }
  return kind;
}

function sameMergeKey(a: JsonObject, b: JsonObject, mergeKey: string): boolean {
  return hasOwn(a, mergeKey) && hasOwn(b, mergeKey) && a[mergeKey] === b[mergeKey];
}

/** Merges a list whose field has patchStrategy merge (or a `$deleteFromPrimitiveList`). */
function mergeList(
  original: unknown[],
  patch: unknown[],
  path: string,
  mergeKey: string,
  isDeleteList: boolean,
  schema: Schema,
): unknown[] {
  if (original.length === 0 && patch.length === 0) return original;
  const kind = elementKind(path, original, patch);

  if (kind !== "object") {
    if (isDeleteList) return original.filter((v) => !patch.includes(v));
    const merged: unknown[] = [];
    for (const v of [...original, ...patch]) if (!merged.includes(v)) merged.push(v);
    const inPatch = merged.filter((v) => patch.includes(v));
    const serverOnly = merged.filter((v) => !patch.includes(v));
    return normalizeElementOrder(inPatch, serverOnly, patch, original, "", path);
  }

  if (isDeleteList) throw badRequest(`${BAD_PRIMITIVE_LIST}: ${path} is a list of maps`);
  if (!mergeKey) throw badRequest(`cannot merge lists without merge key for ${path}`);

  // Special elements first: `{$patch: delete, <key>: v}` removes, `{$patch: replace}`
  // makes the rest of the patch list the new list.
  let base = original as JsonObject[];
  const items: JsonObject[] = [];
  let replace = false;
  for (const el of patch as JsonObject[]) {
    if (!hasOwn(el, PATCH_DIRECTIVE)) {
      items.push(el);
      continue;
    }
    const directive = el[PATCH_DIRECTIVE];
    if (directive === "delete") {
      if (!hasOwn(el, mergeKey)) throw noMergeKey(el, mergeKey, path);
      base = base.filter((x) => !sameMergeKey(x, el, mergeKey));
    } else if (directive === "replace") {
      replace = true;
    } else if (directive !== "merge") {
      throw badPatchType(directive);
    }
  }
  if (replace) return cleanPatchValue(items) as unknown[];

  const merged: unknown[] = [...base];
  for (const el of items) {
    if (!hasOwn(el, mergeKey)) throw noMergeKey(el, mergeKey, path);
    const i = merged.findIndex((x) => sameMergeKey(x as JsonObject, el, mergeKey));
    if (i >= 0) {
      merged[i] = mergeMap(merged[i] as JsonObject, el, `${path}[]`, schema);
    } else {
      const added = cleanPatchValue(el);
      if (added !== DROP) merged.push(added);
    }
  }
  const [inPatch, serverOnly] = partitionMaps(merged, items, mergeKey, path);
  return normalizeElementOrder(inPatch, serverOnly, items, base, mergeKey, path);
}

/** Splits merged map items into those whose merge key appears in `by` and the rest. */
function partitionMaps(merged: unknown[], by: unknown[], mergeKey: string, path: string): [unknown[], unknown[]] {
  const keys: unknown[] = [];
  for (const el of by) {
    if (!isObject(el) || !hasOwn(el, mergeKey)) throw noMergeKey(el, mergeKey, path);
    keys.push(el[mergeKey]);
  }
  const inBy: unknown[] = [];
  const rest: unknown[] = [];
  for (const el of merged) {
    if (!isObject(el) || !hasOwn(el, mergeKey)) throw noMergeKey(el, mergeKey, path);
    (keys.includes(el[mergeKey]) ? inBy : rest).push(el);
  }
  return [inBy, rest];
}

/** What an item is identified by in ordering: its merge key value, or itself. */
function identity(item: unknown, mergeKey: string): unknown {
  if (!mergeKey) return item;
  return isObject(item) && hasOwn(item, mergeKey) ? item[mergeKey] : undefined;
}

function indexIn(list: unknown[], item: unknown, mergeKey: string): number {
  const id = identity(item, mergeKey);
  return list.findIndex((x) => identity(x, mergeKey) === id);
}

/** Stable sort of `items` by position in `order`; items not in `order` go last. */
function sortByOrder(items: unknown[], order: unknown[], mergeKey: string, path: string): unknown[] {
  if (mergeKey) {
    for (const el of [...items, ...order]) {
      if (!isObject(el) || !hasOwn(el, mergeKey)) throw noMergeKey(el, mergeKey, path);
    }
  }
  return items
    .map((item, i) => ({ item, i, at: indexIn(order, item, mergeKey) }))
    .sort((a, b) => (a.at < 0 ? Infinity : a.at) - (b.at < 0 ? Infinity : b.at) || a.i - b.i)
    .map((x) => x.item);
}

/**
 * Upstream's normalizeElementOrder: patch items in patch order, server-only items in live
 * order, then the two interleaved: a server-only item goes before the next patch item
 * only if the live list has both and it comes first there. Precedence is therefore
 * `$setElementOrder` / patch order > live order, and an item new to the list is placed
 * before the server-only items that follow it.
 */
function normalizeElementOrder(
  patchItems: unknown[],
  serverOnly: unknown[],
  patchOrder: unknown[],
  serverOrder: unknown[],
  mergeKey: string,
  path: string,
): unknown[] {
  const right = sortByOrder(patchItems, patchOrder, mergeKey, path);
  const left = sortByOrder(serverOnly, serverOrder, mergeKey, path);
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (j >= right.length) {
      out.push(left[i++]);
    } else if (i >= left.length) {
      out.push(right[j++]);
    } else {
      const li = indexIn(serverOrder, left[i], mergeKey);
      const ri = indexIn(serverOrder, right[j], mergeKey);
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++]);
      else out.push(right[j++]);
    }
  }
  return out;
}

/** `$setElementOrder/<field>`: merge the field's list (if patched) and order the result
 * by the directive, keeping server-only items where the live order puts them. */
function applySetElementOrder(
  original: JsonObject,
  patch: JsonObject,
  key: string,
  path: string,
  schema: Schema,
  handled: Set<string>,
): void {
  const field = directiveField(key, SET_ELEMENT_ORDER, BAD_SET_ELEMENT_ORDER);
  const order = patch[key];
  if (!Array.isArray(order)) throw badRequest(BAD_SET_ELEMENT_ORDER);
  handled.add(key);

  const fieldPath = childPath(path, field);
  const current = hasOwn(original, field) ? original[field] : undefined;
  const foundOriginal = current !== undefined && current !== null;
  if (foundOriginal && !Array.isArray(current)) throw badRequest(`${BAD_SET_ELEMENT_ORDER}: ${fieldPath} is not a list`);
  const foundPatch = hasOwn(patch, field);
  const patchList = foundPatch ? patch[field] : undefined;
  if (foundPatch && !Array.isArray(patchList)) throw badRequest(`${BAD_SET_ELEMENT_ORDER}: patch for ${fieldPath} is not a list`);
  const originalList = (foundOriginal ? current : []) as unknown[];
  const patchedList = (foundPatch ? patchList : []) as unknown[];

  const meta = schema.get(fieldPath);
  const mergeKey = meta?.mergeKey ?? "";
  validateAgainstSetOrder(patchedList, order, mergeKey, fieldPath);

  let merged: unknown[];
  if (foundOriginal && foundPatch) {
    merged =
      baseStrategy(meta) === "merge"
        ? mergeList(originalList, patchedList, fieldPath, mergeKey, false, schema)
        : (cleanPatchValue(patchedList) as unknown[]);
  } else if (foundOriginal) {
    merged = originalList;
  } else if (foundPatch) {
    merged = cleanPatchValue(patchedList) as unknown[];
  } else {
    return;
  }
  handled.add(field);

  const kind = elementKind(fieldPath, originalList, patchedList);
  if (merged.length === 0 || (kind === "object" && !mergeKey)) {
    // Nothing to order, or maps without a merge key to order them by.
    setProp(original, field, merged);
    return;
  }
  let inOrder: unknown[];
  let serverOnly: unknown[];
  if (mergeKey) {
    [inOrder, serverOnly] = partitionMaps(merged, order, mergeKey, fieldPath);
  } else {
    inOrder = merged.filter((v) => order.includes(v));
    serverOnly = merged.filter((v) => !order.includes(v));
  }
  setProp(original, field, normalizeElementOrder(inOrder, serverOnly, order, originalList, mergeKey, fieldPath));
}

/** The patch list's items (ignoring deletions and directives) must appear in
 * `$setElementOrder` in the same relative order. */
function validateAgainstSetOrder(patchList: unknown[], order: unknown[], mergeKey: string, path: string): void {
  if (patchList.length === 0 || order.length === 0) return;
  const items = mergeKey
    ? patchList.filter((el) => {
        if (!isObject(el)) throw badRequest(`${BAD_SET_ELEMENT_ORDER}: ${path} items must be maps`);
        return el[PATCH_DIRECTIVE] !== "delete";
      })
    : patchList;
  let p = 0;
  let s = 0;
  while (p < items.length && s < order.length) {
    const item = items[p];
    if (isObject(item) && hasOwn(item, PATCH_DIRECTIVE)) {
      p++;
      continue;
    }
    let equal: boolean;
    if (mergeKey) {
      const o = order[s];
      if (!isObject(item) || !hasOwn(item, mergeKey)) throw noMergeKey(item, mergeKey, path);
      if (!isObject(o) || !hasOwn(o, mergeKey)) throw noMergeKey(o, mergeKey, path);
      equal = item[mergeKey] === o[mergeKey];
    } else {
      equal = item === order[s];
    }
    if (equal) p++;
    s++;
  }
  if (p < items.length) {
    throw badRequest(
      `${BAD_SET_ELEMENT_ORDER}: the order in patch list ${describe(patchList)} doesn't match $setElementOrder list ${describe(order)}`,
    );
  }
}
