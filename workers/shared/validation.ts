// Per-kind validation, after kube-apiserver's pkg/apis/*/validation: the important rules,
// not every one. Pure: no Node or Workers APIs, so it runs in workerd and in Node tests.
//
// Field errors carry kube's cause reasons ("FieldValueRequired", ...) and messages in the
// shape of field.Error.ErrorBody() ("Required value", `Invalid value: "x": <detail>`, ...).
// Input is untrusted JSON, so every function tolerates values of the wrong type.

import { type FieldError, invalid } from "./errors.ts";
import type { ResourceInfo } from "./resources.ts";

type Obj = Record<string, any>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------
// Field error constructors (field.Required, field.Invalid, ... in k8s.io/apimachinery).

/** Renders a bad value the way field.Error does: strings quoted, numbers bare, others as JSON. */
function fmtValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (v === undefined || v === null) return "null";
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

export function requiredError(field: string, detail = ""): FieldError {
  return { field, type: "FieldValueRequired", message: detail ? `Required value: ${detail}` : "Required value" };
}

export function invalidError(field: string, value: unknown, detail: string): FieldError {
  return { field, type: "FieldValueInvalid", message: `Invalid value: ${fmtValue(value)}: ${detail}` };
}

/** An Invalid error that does not echo the value (secret contents). */
function invalidOmitValue(field: string, detail: string): FieldError {
  return { field, type: "FieldValueInvalid", message: `Invalid value: ${detail}` };
}

export function forbiddenError(field: string, detail: string): FieldError {
  return { field, type: "FieldValueForbidden", message: `Forbidden: ${detail}` };
}

export function notSupportedError(field: string, value: unknown, supported: readonly string[]): FieldError {
  const list = supported.map((s) => JSON.stringify(s)).join(", ");
  return { field, type: "FieldValueNotSupported", message: `Unsupported value: ${fmtValue(value)}: supported values: ${list}` };
}

export function duplicateError(field: string, value: unknown): FieldError {
  return { field, type: "FieldValueDuplicate", message: `Duplicate value: ${fmtValue(value)}` };
}

export function tooLongError(field: string, maxBytes: number): FieldError {
  return { field, type: "FieldValueTooLong", message: `Too long: may not be more than ${maxBytes} bytes` };
}

export function notFoundError(field: string, value: unknown): FieldError {
  return { field, type: "FieldValueNotFound", message: `Not found: ${fmtValue(value)}` };
}

const IMMUTABLE = "field is immutable";
const IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set";

// ---------------------------------------------------------------------------------------
// Name formats (k8s.io/apimachinery/pkg/util/validation).

function regexError(msg: string, fmt: string, ...examples: string[]): string {
  let s = msg + " (e.g. ";
  examples.forEach((e, i) => {
    if (i > 0) s += " or ";
    s += `'${e}', `;
  });
  return s + `regex used for validation is '${fmt}')`;
}

const maxLenError = (n: number): string => `must be no more than ${n} characters`;

const DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT = `(${QUALIFIED_NAME_FMT})?`;
const ENV_VAR_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+";

const DNS1123_LABEL_RE = new RegExp(`^${DNS1123_LABEL_FMT}$`);
const DNS1123_SUBDOMAIN_RE = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`);
const DNS1035_LABEL_RE = new RegExp(`^${DNS1035_LABEL_FMT}$`);
const QUALIFIED_NAME_RE = new RegExp(`^${QUALIFIED_NAME_FMT}$`);
const LABEL_VALUE_RE = new RegExp(`^${LABEL_VALUE_FMT}$`);
const ENV_VAR_RE = new RegExp(`^${ENV_VAR_FMT}$`);
const CONFIG_KEY_RE = new RegExp(`^${CONFIG_KEY_FMT}$`);

const DNS1123_LABEL_MSG = regexError(
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
  DNS1123_LABEL_FMT,
  "my-name",
  "123-abc",
);
const DNS1123_SUBDOMAIN_MSG = regexError(
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
  DNS1123_SUBDOMAIN_FMT,
  "example.com",
);
const DNS1035_LABEL_MSG = regexError(
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
  DNS1035_LABEL_FMT,
  "my-name",
  "abc-123",
);
const QUALIFIED_NAME_MSG = regexError(
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
  QUALIFIED_NAME_FMT,
  "MyName",
  "my.name",
  "123-abc",
);
const LABEL_VALUE_MSG = regexError(
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
  LABEL_VALUE_FMT,
  "MyValue",
  "my_value",
  "12345",
);
const ENV_VAR_MSG = regexError(
  "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
  ENV_VAR_FMT,
  "my.env-name",
  "MY_ENV.NAME",
  "MyEnvName1",
);
const CONFIG_KEY_MSG = regexError(
  "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
  CONFIG_KEY_FMT,
  "key.name",
  "KEY_NAME",
  "key-name",
);

export function isDNS1123Subdomain(s: string): boolean {
  return typeof s === "string" && s.length <= 253 && DNS1123_SUBDOMAIN_RE.test(s);
}

export function isDNS1123Label(s: string): boolean {
  return typeof s === "string" && s.length <= 63 && DNS1123_LABEL_RE.test(s);
}

export function isDNS1035Label(s: string): boolean {
  return typeof s === "string" && s.length <= 63 && DNS1035_LABEL_RE.test(s);
}

function dns1123SubdomainErrors(s: string): string[] {
  const errs: string[] = [];
  if (s.length > 253) errs.push(maxLenError(253));
  if (!DNS1123_SUBDOMAIN_RE.test(s)) errs.push(DNS1123_SUBDOMAIN_MSG);
  return errs;
}

function dns1123LabelErrors(s: string): string[] {
  const errs: string[] = [];
  if (s.length > 63) errs.push(maxLenError(63));
  if (!DNS1123_LABEL_RE.test(s)) errs.push(DNS1123_LABEL_MSG);
  return errs;
}

function dns1035LabelErrors(s: string): string[] {
  const errs: string[] = [];
  if (s.length > 63) errs.push(maxLenError(63));
  if (!DNS1035_LABEL_RE.test(s)) errs.push(DNS1035_LABEL_MSG);
  return errs;
}

/** validation.IsQualifiedName: optional DNS-subdomain prefix and "/", then a name part <= 63. */
export function qualifiedNameErrors(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split("/");
  let name: string;
  if (parts.length === 1) {
    name = parts[0];
  } else if (parts.length === 2) {
    const prefix = parts[0];
    name = parts[1];
    if (prefix.length === 0) errs.push("prefix part must be non-empty");
    else for (const m of dns1123SubdomainErrors(prefix)) errs.push(`prefix part ${m}`);
  } else {
    return [`a qualified name ${QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  }
  if (name.length === 0) errs.push("name part must be non-empty");
  else if (name.length > 63) errs.push(`name part ${maxLenError(63)}`);
  if (!QUALIFIED_NAME_RE.test(name)) errs.push(`name part ${QUALIFIED_NAME_MSG}`);
  return errs;
}

export function isQualifiedName(s: string): boolean {
  return typeof s === "string" && qualifiedNameErrors(s).length === 0;
}

/** validation.IsValidLabelValue: empty, or a qualified-name-shaped string of <= 63 chars. */
export function labelValueErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLenError(63));
  if (!LABEL_VALUE_RE.test(v)) errs.push(LABEL_VALUE_MSG);
  return errs;
}

function configKeyErrors(k: string): string[] {
  const errs: string[] = [];
  if (k.length > 253) errs.push(maxLenError(253));
  if (!CONFIG_KEY_RE.test(k)) errs.push(CONFIG_KEY_MSG);
  if (k === ".") errs.push("must not be '.'");
  else if (k === "..") errs.push("must not be '..'");
  else if (k.startsWith("..")) errs.push("must not start with '..'");
  return errs;
}

/** IANA_SVC_NAME: what named container ports and string targetPorts must be. */
function portNameErrors(p: string): string[] {
  const errs: string[] = [];
  if (p.length > 15) errs.push(maxLenError(15));
  if (!/^[-a-z0-9]+$/.test(p)) errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (!/[a-z]/.test(p)) errs.push("must contain at least one letter (a-z)");
  if (p.includes("--")) errs.push("must not contain consecutive hyphens");
  if (p.length > 0 && (p[0] === "-" || p[p.length - 1] === "-")) errs.push("must not begin or end with a hyphen");
  return errs;
}

function isIPv4(s: string): boolean {
  const parts = s.split(".");
  if (parts.length !== 4) return false;
  return parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

function isIPv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s)) return false;
  const halves = s.split("::");
  if (halves.length > 2) return false;
  const groups = (h: string): string[] | null => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return false;
  const all = [...head, ...tail];
  let count = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i];
    if (i === all.length - 1 && g.includes(".")) {
      if (!isIPv4(g)) return false;
      count += 2;
    } else if (/^[0-9A-Fa-f]{1,4}$/.test(g)) {
      count += 1;
    } else {
      return false;
    }
  }
  return halves.length === 2 ? count < 8 : count === 8;
}

function isIP(s: unknown): boolean {
  return typeof s === "string" && (isIPv4(s) || isIPv6(s));
}

const IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

// ---------------------------------------------------------------------------------------
// Quantities.

const DECIMAL_SUFFIX: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIX: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };

/**
 * Parses a resource.Quantity ("100m", "1.5Gi", "2e3", "128974848") to a number of base
 * units. Returns NaN when the string is not a quantity.
 */
export function parseQuantity(s: string): number {
  if (typeof s !== "string") return NaN;
  const m = /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$/.exec(s);
  if (!m) return NaN;
  const [, num, suffix] = m;
  if (suffix in BINARY_SUFFIX) return Number(num) * 2 ** (10 * BINARY_SUFFIX[suffix]);
  let exp: number;
  if (suffix in DECIMAL_SUFFIX) exp = DECIMAL_SUFFIX[suffix];
  else if (/^[eE][+-]?[0-9]+$/.test(suffix)) exp = Number(suffix.slice(1));
  else return NaN;
  // Let Number() do the decimal scaling so equal quantities ("0.1", "100m") parse to the
  // same double.
  return Number(`${num}e${exp}`);
}

/** A quantity as JSON gives it: a string, or a bare number. */
function quantityValue(v: unknown): number {
  if (typeof v === "number") return Number.isFinite(v) ? v : NaN;
  if (typeof v === "string") return parseQuantity(v);
  return NaN;
}

const QUANTITY_MSG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

// ---------------------------------------------------------------------------------------
// Small helpers.

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const isSet = (v: unknown): boolean => v !== undefined && v !== null;
const str = (v: unknown): string => (typeof v === "string" ? v : "");

function list(v: unknown, field: string, errs: FieldError[]): any[] {
  if (!isSet(v)) return [];
  if (!Array.isArray(v)) {
    errs.push(invalidError(field, v, "must be a list"));
    return [];
  }
  return v;
}

function map(v: unknown, field: string, errs: FieldError[]): Obj | undefined {
  if (!isSet(v)) return undefined;
  if (!isObj(v)) {
    errs.push(invalidError(field, v, "must be an object"));
    return undefined;
  }
  return v;
}

function nonNegative(v: unknown, field: string, errs: FieldError[]): void {
  if (!isSet(v)) return;
  if (!isInt(v)) errs.push(invalidError(field, v, "must be an integer"));
  else if (v < 0) errs.push(invalidError(field, v, "must be greater than or equal to 0"));
}

function positive(v: unknown, field: string, errs: FieldError[]): void {
  if (!isSet(v)) return;
  if (!isInt(v)) errs.push(invalidError(field, v, "must be an integer"));
  else if (v <= 0) errs.push(invalidError(field, v, "must be greater than 0"));
}

function portInRange(v: unknown, field: string, errs: FieldError[]): void {
  if (!isInt(v) || v < 1 || v > 65535) errs.push(invalidError(field, v, "must be between 1 and 65535, inclusive"));
}

/** Optional enum field: absent is fine (it is defaulted), "" is Required, others must be listed. */
function oneOf(v: unknown, field: string, supported: readonly string[], errs: FieldError[]): void {
  if (!isSet(v)) return;
  if (v === "") errs.push(requiredError(field));
  else if (typeof v !== "string" || !supported.includes(v)) errs.push(notSupportedError(field, v, supported));
}

function utf8Len(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function base64DecodedLen(s: string): number {
  const pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
  return (s.length / 4) * 3 - pad;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard padded base64 of the UTF-8 bytes of s (what stringData becomes in data). */
function base64Utf8(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.codePointAt(i)!;
    if (c > 0xffff) i++;
    if (c < 0x80) bytes.push(c);
    else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=";
    out += i + 2 < bytes.length ? B64[n & 63] : "=";
  }
  return out;
}

function isEmptyish(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (isObj(v)) return Object.keys(v).every((k) => v[k] === undefined);
  return false;
}

/**
 * apiequality.Semantic.DeepEqual for JSON: like deep equality, except that absent, null,
 * empty lists and empty objects are all equal (Go cannot tell them apart after decoding).
 */
function semanticEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (isEmptyish(a) && isEmptyish(b)) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => semanticEqual(x, b[i]));
  }
  if (isObj(a) && isObj(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) if (!semanticEqual(a[k], b[k])) return false;
    return true;
  }
  return false;
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

// ---------------------------------------------------------------------------------------
// Labels, annotations, selectors.

export function validateLabels(labels: unknown, field: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!isSet(labels)) return errs;
  if (!isObj(labels)) return [invalidError(field, labels, "must be a map of string keys to string values")];
  for (const [k, v] of Object.entries(labels)) {
    for (const m of qualifiedNameErrors(k)) errs.push(invalidError(field, k, m));
    if (typeof v !== "string") errs.push(invalidError(field, v, "must be a string"));
    else for (const m of labelValueErrors(v)) errs.push(invalidError(field, v, m));
  }
  return errs;
}

const TOTAL_ANNOTATION_SIZE = 256 * 1024;

export function validateAnnotations(ann: unknown, field: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!isSet(ann)) return errs;
  if (!isObj(ann)) return [invalidError(field, ann, "must be a map of string keys to string values")];
  let total = 0;
  for (const [k, v] of Object.entries(ann)) {
    for (const m of qualifiedNameErrors(k.toLowerCase())) errs.push(invalidError(field, k, m));
    if (typeof v !== "string") errs.push(invalidError(field, v, "must be a string"));
    total += utf8Len(k) + (typeof v === "string" ? utf8Len(v) : 0);
  }
  if (total > TOTAL_ANNOTATION_SIZE) errs.push(tooLongError(field, TOTAL_ANNOTATION_SIZE));
  return errs;
}

function validateLabelSelector(sel: Obj, field: string, errs: FieldError[]): void {
  errs.push(...validateLabels(sel.matchLabels, `${field}.matchLabels`));
  list(sel.matchExpressions, `${field}.matchExpressions`, errs).forEach((req, i) => {
    const p = `${field}.matchExpressions[${i}]`;
    if (!isObj(req)) {
      errs.push(invalidError(p, req, "must be an object"));
      return;
    }
    const values = list(req.values, `${p}.values`, errs);
    switch (req.operator) {
      case "In":
      case "NotIn":
        if (values.length === 0) errs.push(requiredError(`${p}.values`, "must be specified when `operator` is 'In' or 'NotIn'"));
        break;
      case "Exists":
      case "DoesNotExist":
        if (values.length > 0)
          errs.push(forbiddenError(`${p}.values`, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
        break;
      default:
        errs.push(invalidError(`${p}.operator`, req.operator, "not a valid selector operator"));
    }
    const key = str(req.key);
    for (const m of qualifiedNameErrors(key)) errs.push(invalidError(`${p}.key`, key, m));
    values.forEach((v, j) => {
      if (typeof v !== "string") errs.push(invalidError(`${p}.values[${j}]`, v, "must be a string"));
      else for (const m of labelValueErrors(v)) errs.push(invalidError(`${p}.values[${j}]`, v, m));
    });
  });
}

/** metav1.LabelSelector matching (selector assumed valid). */
function selectorMatches(sel: Obj, labels: Obj): boolean {
  if (isObj(sel.matchLabels)) {
    for (const [k, v] of Object.entries(sel.matchLabels)) if (labels[k] !== v) return false;
  }
  for (const req of Array.isArray(sel.matchExpressions) ? sel.matchExpressions : []) {
    if (!isObj(req)) continue;
    const has = Object.hasOwn(labels, req.key);
    const values: unknown[] = Array.isArray(req.values) ? req.values : [];
    switch (req.operator) {
      case "In":
        if (!has || !values.includes(labels[req.key])) return false;
        break;
      case "NotIn":
        if (has && values.includes(labels[req.key])) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// ObjectMeta.

type NameCheck = (s: string) => string[];

/** RBAC object names are path segments (kube's ValidateRBACName), so "system:node" is valid. */
function pathSegmentNameErrors(s: string): string[] {
  if (s === "." || s === "..") return [`may not be '${s}'`];
  for (const c of ["/", "%"]) if (s.includes(c)) return [`may not contain '${c}'`];
  return [];
}

function nameCheckFor(info: ResourceInfo): NameCheck {
  if (info.group === "rbac.authorization.k8s.io") return pathSegmentNameErrors;
  if (info.group === "" && info.kind === "Namespace") return dns1123LabelErrors;
  if (info.group === "" && info.kind === "Service") return dns1035LabelErrors;
  return dns1123SubdomainErrors;
}

function validateObjectMeta(info: ResourceInfo, obj: Obj, errs: FieldError[]): void {
  const meta = obj.metadata;
  if (!isObj(meta)) {
    if (isSet(meta)) errs.push(invalidError("metadata", meta, "must be an object"));
    errs.push(requiredError("metadata.name", "name or generateName is required"));
    if (info.namespaced) errs.push(requiredError("metadata.namespace"));
    return;
  }
  if (typeof meta.name !== "string" || meta.name === "") {
    if (isSet(meta.name) && typeof meta.name !== "string") errs.push(invalidError("metadata.name", meta.name, "must be a string"));
    else errs.push(requiredError("metadata.name", "name or generateName is required"));
  } else {
    for (const m of nameCheckFor(info)(meta.name)) errs.push(invalidError("metadata.name", meta.name, m));
  }
  const ns = meta.namespace;
  if (info.namespaced) {
    if (!isSet(ns) || ns === "") errs.push(requiredError("metadata.namespace"));
    else if (typeof ns !== "string") errs.push(invalidError("metadata.namespace", ns, "must be a string"));
    else for (const m of dns1123LabelErrors(ns)) errs.push(invalidError("metadata.namespace", ns, m));
  } else if (isSet(ns) && ns !== "") {
    errs.push(forbiddenError("metadata.namespace", "not allowed on this type"));
  }
  errs.push(...validateLabels(meta.labels, "metadata.labels"));
  errs.push(...validateAnnotations(meta.annotations, "metadata.annotations"));
  list(meta.finalizers, "metadata.finalizers", errs).forEach((f, i) => {
    const p = `metadata.finalizers[${i}]`;
    if (typeof f !== "string") errs.push(invalidError(p, f, "must be a string"));
    else for (const m of qualifiedNameErrors(f)) errs.push(invalidError(p, f, m));
  });
}

function validateObjectMetaUpdate(obj: Obj, old: Obj, errs: FieldError[]): void {
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  const oldMeta = isObj(old.metadata) ? old.metadata : {};
  for (const k of ["name", "namespace"]) {
    if ((meta[k] ?? "") !== (oldMeta[k] ?? "")) errs.push(invalidError(`metadata.${k}`, meta[k] ?? "", IMMUTABLE));
  }
  for (const k of ["uid", "creationTimestamp"]) {
    if (isSet(meta[k]) && isSet(oldMeta[k]) && meta[k] !== oldMeta[k]) errs.push(invalidError(`metadata.${k}`, meta[k], IMMUTABLE));
  }
}

// ---------------------------------------------------------------------------------------
// Pods.

const PROTOCOLS = ["SCTP", "TCP", "UDP"];
const RESTART_POLICIES = ["Always", "OnFailure", "Never"];
const DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
const PULL_POLICIES = ["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"];
const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
const TOLERATION_OPERATORS = ["Equal", "Exists"];

function validateResources(res: unknown, field: string, errs: FieldError[]): void {
  const r = map(res, field, errs);
  if (!r) return;
  const parsed: Record<"limits" | "requests", Map<string, number>> = { limits: new Map(), requests: new Map() };
  for (const kind of ["limits", "requests"] as const) {
    const m = map(r[kind], `${field}.${kind}`, errs);
    if (!m) continue;
    for (const [name, v] of Object.entries(m)) {
      const p = `${field}.${kind}[${name}]`;
      for (const msg of qualifiedNameErrors(name)) errs.push(invalidError(p, name, msg));
      const q = quantityValue(v);
      if (Number.isNaN(q)) errs.push(invalidError(p, v, QUANTITY_MSG));
      else if (q < 0) errs.push(invalidError(p, v, "must be greater than or equal to 0"));
      else parsed[kind].set(name, q);
    }
  }
  for (const [name, req] of parsed.requests) {
    const lim = parsed.limits.get(name);
    if (lim !== undefined && req > lim) {
      errs.push(
        invalidError(
          `${field}.requests[${name}]`,
          r.requests[name],
          `must be less than or equal to ${name} limit of ${String(r.limits[name])}`,
        ),
      );
    }
  }
}

function validateContainerPorts(ports: unknown, field: string, errs: FieldError[]): void {
  const names = new Set<string>();
  list(ports, field, errs).forEach((port, i) => {
    const p = `${field}[${i}]`;
    if (!isObj(port)) {
      errs.push(invalidError(p, port, "must be an object"));
      return;
    }
    if (isSet(port.name) && port.name !== "") {
      const n = str(port.name);
      for (const m of portNameErrors(n)) errs.push(invalidError(`${p}.name`, port.name, m));
      if (names.has(n)) errs.push(duplicateError(`${p}.name`, n));
      names.add(n);
    }
    if (!isSet(port.containerPort) || port.containerPort === 0) errs.push(requiredError(`${p}.containerPort`));
    else portInRange(port.containerPort, `${p}.containerPort`, errs);
    if (isSet(port.hostPort) && port.hostPort !== 0) portInRange(port.hostPort, `${p}.hostPort`, errs);
    oneOf(port.protocol, `${p}.protocol`, PROTOCOLS, errs);
  });
}

function validateEnv(env: unknown, field: string, errs: FieldError[]): void {
  list(env, field, errs).forEach((e, i) => {
    const p = `${field}[${i}]`;
    if (!isObj(e)) {
      errs.push(invalidError(p, e, "must be an object"));
      return;
    }
    if (!isSet(e.name) || e.name === "") errs.push(requiredError(`${p}.name`));
    else if (typeof e.name !== "string" || !ENV_VAR_RE.test(e.name)) errs.push(invalidError(`${p}.name`, e.name, ENV_VAR_MSG));
    if (isSet(e.value) && typeof e.value !== "string") errs.push(invalidError(`${p}.value`, e.value, "must be a string"));
    if (isSet(e.valueFrom) && typeof e.value === "string" && e.value !== "") {
      errs.push(invalidError(`${p}.valueFrom`, "", "may not be specified when `value` is not empty"));
    }
  });
}

function validateVolumeMounts(mounts: unknown, field: string, volumes: Set<string>, errs: FieldError[]): void {
  const paths = new Set<string>();
  list(mounts, field, errs).forEach((m, i) => {
    const p = `${field}[${i}]`;
    if (!isObj(m)) {
      errs.push(invalidError(p, m, "must be an object"));
      return;
    }
    if (!isSet(m.name) || m.name === "") errs.push(requiredError(`${p}.name`));
    else if (!volumes.has(m.name)) errs.push(notFoundError(`${p}.name`, m.name));
    if (!isSet(m.mountPath) || m.mountPath === "") errs.push(requiredError(`${p}.mountPath`));
    else if (typeof m.mountPath !== "string") errs.push(invalidError(`${p}.mountPath`, m.mountPath, "must be a string"));
    else {
      if (paths.has(m.mountPath)) errs.push(invalidError(`${p}.mountPath`, m.mountPath, "must be unique"));
      paths.add(m.mountPath);
    }
  });
}

function validateContainers(containers: any[], field: string, volumes: Set<string>, names: Set<string>, errs: FieldError[]): void {
  containers.forEach((c, i) => {
    const p = `${field}[${i}]`;
    if (!isObj(c)) {
      errs.push(invalidError(p, c, "must be an object"));
      return;
    }
    if (!isSet(c.name) || c.name === "") errs.push(requiredError(`${p}.name`));
    else if (typeof c.name !== "string") errs.push(invalidError(`${p}.name`, c.name, "must be a string"));
    else {
      for (const m of dns1123LabelErrors(c.name)) errs.push(invalidError(`${p}.name`, c.name, m));
      if (names.has(c.name)) errs.push(duplicateError(`${p}.name`, c.name));
      names.add(c.name);
    }
    if (!isSet(c.image) || c.image === "") errs.push(requiredError(`${p}.image`));
    else if (typeof c.image !== "string") errs.push(invalidError(`${p}.image`, c.image, "must be a string"));
    else if (c.image.trim() !== c.image) errs.push(invalidError(`${p}.image`, c.image, "must not have leading or trailing whitespace"));
    oneOf(c.imagePullPolicy, `${p}.imagePullPolicy`, PULL_POLICIES, errs);
    oneOf(c.terminationMessagePolicy, `${p}.terminationMessagePolicy`, TERMINATION_MESSAGE_POLICIES, errs);
    validateContainerPorts(c.ports, `${p}.ports`, errs);
    validateEnv(c.env, `${p}.env`, errs);
    validateVolumeMounts(c.volumeMounts, `${p}.volumeMounts`, volumes, errs);
    validateResources(c.resources, `${p}.resources`, errs);
  });
}

function validateVolumes(volumes: unknown, field: string, errs: FieldError[]): Set<string> {
  const names = new Set<string>();
  list(volumes, field, errs).forEach((v, i) => {
    const p = `${field}[${i}]`;
    if (!isObj(v)) {
      errs.push(invalidError(p, v, "must be an object"));
      return;
    }
    if (!isSet(v.name) || v.name === "") errs.push(requiredError(`${p}.name`));
    else if (typeof v.name !== "string") errs.push(invalidError(`${p}.name`, v.name, "must be a string"));
    else {
      for (const m of dns1123LabelErrors(v.name)) errs.push(invalidError(`${p}.name`, v.name, m));
      if (names.has(v.name)) errs.push(duplicateError(`${p}.name`, v.name));
      names.add(v.name);
    }
    const sources = Object.keys(v).filter((k) => k !== "name" && isSet(v[k]));
    if (sources.length === 0) errs.push(requiredError(p, "must specify a volume type"));
    for (const extra of sources.slice(1)) errs.push(forbiddenError(`${p}.${extra}`, "may not specify more than 1 volume type"));
    for (const [src, nameKey] of [
      ["configMap", "name"],
      ["secret", "secretName"],
    ]) {
      const s = v[src];
      if (isObj(s) && (!isSet(s[nameKey]) || s[nameKey] === "")) errs.push(requiredError(`${p}.${src}.${nameKey}`));
    }
    for (const src of ["configMap", "secret", "projected", "downwardAPI"]) {
      const s = v[src];
      if (isObj(s) && isSet(s.defaultMode) && (!isInt(s.defaultMode) || s.defaultMode < 0 || s.defaultMode > 0o777)) {
        errs.push(invalidError(`${p}.${src}.defaultMode`, s.defaultMode, "must be a number between 0 and 0777 (octal), both inclusive"));
      }
    }
  });
  return names;
}

function validateTolerations(tols: unknown, field: string, errs: FieldError[]): void {
  list(tols, field, errs).forEach((t, i) => {
    const p = `${field}[${i}]`;
    if (!isObj(t)) {
      errs.push(invalidError(p, t, "must be an object"));
      return;
    }
    const key = str(t.key);
    if (key !== "") for (const m of qualifiedNameErrors(key)) errs.push(invalidError(`${p}.key`, key, m));
    const op = isSet(t.operator) && t.operator !== "" ? t.operator : "Equal";
    if (key === "" && op !== "Exists") {
      errs.push(
        invalidError(`${p}.operator`, op, 'operator must be Exists when `key` is empty, which means "match all values and all keys"'),
      );
    }
    if (!TOLERATION_OPERATORS.includes(op)) errs.push(notSupportedError(`${p}.operator`, op, TOLERATION_OPERATORS));
    else if (op === "Exists" && str(t.value) !== "")
      errs.push(invalidError(`${p}.operator`, t.value, "value must be empty when `operator` is 'Exists'"));
    else if (op === "Equal" && typeof t.value === "string") {
      for (const m of labelValueErrors(t.value)) errs.push(invalidError(`${p}.value`, t.value, m));
    }
    if (isSet(t.effect) && t.effect !== "" && !TAINT_EFFECTS.includes(t.effect)) {
      errs.push(notSupportedError(`${p}.effect`, t.effect, TAINT_EFFECTS));
    }
    if (isSet(t.tolerationSeconds) && t.effect !== "NoExecute") {
      errs.push(invalidError(`${p}.effect`, t.effect ?? "", "effect must be 'NoExecute' when `tolerationSeconds` is set"));
    }
  });
}

/** Validates a PodSpec found at `field` ("spec" for pods, "spec.template.spec" for templates). */
function validatePodSpec(spec: unknown, field: string, errs: FieldError[]): void {
  const s = isObj(spec) ? spec : {};
  if (isSet(spec) && !isObj(spec)) errs.push(invalidError(field, spec, "must be an object"));
  const volumes = validateVolumes(s.volumes, `${field}.volumes`, errs);
  const names = new Set<string>();
  const containers = list(s.containers, `${field}.containers`, errs);
  if (containers.length === 0) errs.push(requiredError(`${field}.containers`));
  validateContainers(containers, `${field}.containers`, volumes, names, errs);
  validateContainers(list(s.initContainers, `${field}.initContainers`, errs), `${field}.initContainers`, volumes, names, errs);
  oneOf(s.restartPolicy, `${field}.restartPolicy`, RESTART_POLICIES, errs);
  oneOf(s.dnsPolicy, `${field}.dnsPolicy`, DNS_POLICIES, errs);
  if (
    isSet(s.activeDeadlineSeconds) &&
    (!isInt(s.activeDeadlineSeconds) || s.activeDeadlineSeconds < 1 || s.activeDeadlineSeconds > 2147483647)
  ) {
    errs.push(invalidError(`${field}.activeDeadlineSeconds`, s.activeDeadlineSeconds, "must be between 1 and 2147483647, inclusive"));
  }
  if (isSet(s.terminationGracePeriodSeconds) && !isInt(s.terminationGracePeriodSeconds)) {
    errs.push(invalidError(`${field}.terminationGracePeriodSeconds`, s.terminationGracePeriodSeconds, "must be an integer"));
  }
  for (const k of ["nodeName", "serviceAccountName"]) {
    const v = s[k];
    if (!isSet(v) || v === "") continue;
    if (typeof v !== "string") errs.push(invalidError(`${field}.${k}`, v, "must be a string"));
    else for (const m of dns1123SubdomainErrors(v)) errs.push(invalidError(`${field}.${k}`, v, m));
  }
  for (const k of ["hostname", "subdomain"]) {
    const v = s[k];
    if (!isSet(v) || v === "") continue;
    if (typeof v !== "string") errs.push(invalidError(`${field}.${k}`, v, "must be a string"));
    else for (const m of dns1123LabelErrors(v)) errs.push(invalidError(`${field}.${k}`, v, m));
  }
  errs.push(...validateLabels(s.nodeSelector, `${field}.nodeSelector`));
  validateTolerations(s.tolerations, `${field}.tolerations`, errs);
}

const POD_UPDATE_MSG =
  "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

function validatePodUpdate(obj: Obj, old: Obj, errs: FieldError[]): void {
  const spec = obj.spec;
  const oldSpec = old.spec;
  if (!isObj(spec) || !isObj(oldSpec)) return;
  const newAds = spec.activeDeadlineSeconds;
  const oldAds = oldSpec.activeDeadlineSeconds;
  if (isSet(oldAds)) {
    if (!isSet(newAds)) errs.push(invalidError("spec.activeDeadlineSeconds", null, "must not update from a positive integer to nil value"));
    else if (isInt(newAds) && isInt(oldAds) && newAds > oldAds) {
      errs.push(invalidError("spec.activeDeadlineSeconds", newAds, "must be less than or equal to previous value"));
    }
  }
  // Copy the mutable fields from the old spec; anything still different is forbidden.
  const munged = clone(spec);
  for (const k of ["containers", "initContainers"]) {
    const a = munged[k];
    const b = oldSpec[k];
    if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
      a.forEach((c, i) => {
        if (isObj(c) && isObj(b[i])) c.image = b[i].image;
      });
    }
  }
  munged.activeDeadlineSeconds = oldSpec.activeDeadlineSeconds;
  munged.tolerations = oldSpec.tolerations;
  // Binding sets nodeName once; after that it is fixed.
  if (!isSet(oldSpec.nodeName) || oldSpec.nodeName === "") munged.nodeName = oldSpec.nodeName;
  const oldGrace = oldSpec.terminationGracePeriodSeconds;
  if (isInt(oldGrace) && oldGrace < 0 && munged.terminationGracePeriodSeconds === 1) munged.terminationGracePeriodSeconds = oldGrace;
  if (!semanticEqual(oldSpec, munged)) errs.push(forbiddenError("spec", POD_UPDATE_MSG));
}

// ---------------------------------------------------------------------------------------
// Deployments and ReplicaSets.

const PERCENT_MSG = regexError("a valid percent string must be a numeric string followed by an ending '%'", "[0-9]+%", "1%", "93%");

function validateIntOrPercent(v: unknown, field: string, errs: FieldError[]): void {
  if (!isSet(v)) return;
  if (typeof v === "string") {
    if (!/^[0-9]+%$/.test(v)) errs.push(invalidError(field, v, PERCENT_MSG));
  } else nonNegative(v, field, errs);
}

function intOrPercentValue(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^[0-9]+%$/.test(v)) return Number(v.slice(0, -1));
  return undefined;
}

function validateReplicaSetLike(obj: Obj, isDeployment: boolean, errs: FieldError[]): void {
  if (isSet(obj.spec) && !isObj(obj.spec)) errs.push(invalidError("spec", obj.spec, "must be an object"));
  const spec = isObj(obj.spec) ? obj.spec : {};
  nonNegative(spec.replicas, "spec.replicas", errs);
  nonNegative(spec.minReadySeconds, "spec.minReadySeconds", errs);

  let selectorOk = false;
  const sel = spec.selector;
  if (!isSet(sel)) errs.push(requiredError("spec.selector"));
  else if (!isObj(sel)) errs.push(invalidError("spec.selector", sel, "must be an object"));
  else {
    const before = errs.length;
    validateLabelSelector(sel, "spec.selector", errs);
    const n =
      (isObj(sel.matchLabels) ? Object.keys(sel.matchLabels).length : 0) +
      (Array.isArray(sel.matchExpressions) ? sel.matchExpressions.length : 0);
    if (n === 0) errs.push(invalidError("spec.selector", sel, "empty selector is invalid for deployment"));
    selectorOk = n > 0 && errs.length === before;
  }

  const tpl = spec.template;
  if (!isSet(tpl)) errs.push(requiredError("spec.template"));
  else if (!isObj(tpl)) errs.push(invalidError("spec.template", tpl, "must be an object"));
  else {
    const tmeta = isObj(tpl.metadata) ? tpl.metadata : {};
    errs.push(...validateLabels(tmeta.labels, "spec.template.metadata.labels"));
    errs.push(...validateAnnotations(tmeta.annotations, "spec.template.metadata.annotations"));
    if (selectorOk && !selectorMatches(sel, isObj(tmeta.labels) ? tmeta.labels : {})) {
      errs.push(invalidError("spec.template.metadata.labels", tmeta.labels ?? {}, "`selector` does not match template `labels`"));
    }
    validatePodSpec(tpl.spec, "spec.template.spec", errs);
    const tspec = isObj(tpl.spec) ? tpl.spec : {};
    if (isSet(tspec.restartPolicy) && tspec.restartPolicy !== "Always" && tspec.restartPolicy !== "") {
      errs.push(notSupportedError("spec.template.spec.restartPolicy", tspec.restartPolicy, ["Always"]));
    }
    if (isSet(tspec.activeDeadlineSeconds)) {
      errs.push(forbiddenError("spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicaSet is not Supported"));
    }
  }

  if (!isDeployment) return;
  nonNegative(spec.revisionHistoryLimit, "spec.revisionHistoryLimit", errs);
  if (isSet(spec.progressDeadlineSeconds)) {
    nonNegative(spec.progressDeadlineSeconds, "spec.progressDeadlineSeconds", errs);
    if (isInt(spec.progressDeadlineSeconds) && spec.progressDeadlineSeconds <= (isInt(spec.minReadySeconds) ? spec.minReadySeconds : 0)) {
      errs.push(invalidError("spec.progressDeadlineSeconds", spec.progressDeadlineSeconds, "must be greater than minReadySeconds"));
    }
  }
  const strategy = map(spec.strategy, "spec.strategy", errs);
  if (!strategy || !isSet(strategy.type)) return;
  const ru = strategy.rollingUpdate;
  if (strategy.type === "Recreate") {
    if (isSet(ru)) errs.push(forbiddenError("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"));
  } else if (strategy.type === "RollingUpdate") {
    if (!isSet(ru)) errs.push(requiredError("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"));
    else if (!isObj(ru)) errs.push(invalidError("spec.strategy.rollingUpdate", ru, "must be an object"));
    else {
      const p = "spec.strategy.rollingUpdate";
      validateIntOrPercent(ru.maxUnavailable, `${p}.maxUnavailable`, errs);
      validateIntOrPercent(ru.maxSurge, `${p}.maxSurge`, errs);
      const mu = intOrPercentValue(ru.maxUnavailable);
      if (mu === 0 && intOrPercentValue(ru.maxSurge) === 0) {
        errs.push(invalidError(`${p}.maxUnavailable`, ru.maxUnavailable, "may not be 0 when `maxSurge` is 0"));
      }
      if (typeof ru.maxUnavailable === "string" && mu !== undefined && mu > 100) {
        errs.push(invalidError(`${p}.maxUnavailable`, ru.maxUnavailable, "must not be greater than 100%"));
      }
    }
  } else {
    errs.push(notSupportedError("spec.strategy.type", strategy.type, ["Recreate", "RollingUpdate"]));
  }
}

function validateSelectorUpdate(obj: Obj, old: Obj, errs: FieldError[]): void {
  const sel = obj.spec?.selector;
  const oldSel = old.spec?.selector;
  if (!semanticEqual(sel, oldSel)) errs.push(invalidError("spec.selector", sel ?? null, IMMUTABLE));
}

// ---------------------------------------------------------------------------------------
// Services and Endpoints.

const SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

function validateService(obj: Obj, errs: FieldError[]): void {
  if (isSet(obj.spec) && !isObj(obj.spec)) errs.push(invalidError("spec", obj.spec, "must be an object"));
  const spec = isObj(obj.spec) ? obj.spec : {};
  const type = isSet(spec.type) ? spec.type : "ClusterIP";
  oneOf(spec.type, "spec.type", SERVICE_TYPES, errs);
  const clusterIP = str(spec.clusterIP);
  const headless = clusterIP === "None";

  if (type === "ExternalName") {
    if (isSet(spec.clusterIP) && spec.clusterIP !== "") {
      errs.push(forbiddenError("spec.clusterIP", "may not be set for ExternalName services"));
    } else if (Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0) {
      errs.push(forbiddenError("spec.clusterIPs", "may not be set for ExternalName services"));
    }
    const en = spec.externalName;
    if (!isSet(en) || en === "") errs.push(requiredError("spec.externalName"));
    else if (typeof en !== "string") errs.push(invalidError("spec.externalName", en, "must be a string"));
    else
      for (const m of dns1123SubdomainErrors(en.endsWith(".") ? en.slice(0, -1) : en)) errs.push(invalidError("spec.externalName", en, m));
  } else {
    if (isSet(spec.clusterIP) && spec.clusterIP !== "" && !headless && !isIP(spec.clusterIP)) {
      errs.push(invalidError("spec.clusterIP", spec.clusterIP, IP_MSG));
    }
    if (headless && (type === "NodePort" || type === "LoadBalancer")) {
      errs.push(invalidError("spec.clusterIP", "None", `may not be set to 'None' for ${type} services`));
    }
    const ips = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [];
    if (ips.length > 0 && clusterIP !== "" && ips[0] !== clusterIP) {
      errs.push(invalidError("spec.clusterIPs[0]", ips[0], "must be equal to `clusterIP`"));
    }
  }

  const ports = list(spec.ports, "spec.ports", errs);
  if (ports.length === 0 && type !== "ExternalName" && !headless) errs.push(requiredError("spec.ports"));
  const names = new Set<string>();
  const keys = new Set<string>();
  const nodePorts = new Set<string>();
  ports.forEach((port, i) => {
    const p = `spec.ports[${i}]`;
    if (!isObj(port)) {
      errs.push(invalidError(p, port, "must be an object"));
      return;
    }
    if (!isSet(port.name) || port.name === "") {
      if (ports.length > 1) errs.push(requiredError(`${p}.name`));
    } else if (typeof port.name !== "string") {
      errs.push(invalidError(`${p}.name`, port.name, "must be a string"));
    } else {
      for (const m of dns1123LabelErrors(port.name)) errs.push(invalidError(`${p}.name`, port.name, m));
      if (names.has(port.name)) errs.push(duplicateError(`${p}.name`, port.name));
      names.add(port.name);
    }
    if (!isSet(port.port)) errs.push(requiredError(`${p}.port`));
    else portInRange(port.port, `${p}.port`, errs);
    oneOf(port.protocol, `${p}.protocol`, PROTOCOLS, errs);
    const proto = isSet(port.protocol) && port.protocol !== "" ? port.protocol : "TCP";
    const key = `${String(port.port)}/${proto}`;
    if (keys.has(key)) errs.push(duplicateError(p, key));
    keys.add(key);
    const tp = port.targetPort;
    if (typeof tp === "string") {
      if (tp !== "") for (const m of portNameErrors(tp)) errs.push(invalidError(`${p}.targetPort`, tp, m));
    } else if (isSet(tp) && tp !== 0) portInRange(tp, `${p}.targetPort`, errs);
    const np = port.nodePort;
    if (isSet(np) && np !== 0) {
      if (type === "ClusterIP") errs.push(forbiddenError(`${p}.nodePort`, "may not be used when `type` is 'ClusterIP'"));
      else if (type === "ExternalName") errs.push(forbiddenError(`${p}.nodePort`, "may not be used when `type` is 'ExternalName'"));
      // Whether it lies in SERVICE_NODE_PORT_RANGE and is free is the allocator's to say
      // (workers/api/services.ts), as in kube.
      else if (!isInt(np) || np < 1 || np > 65535) portInRange(np, `${p}.nodePort`, errs);
      else {
        const nk = `${np}/${proto}`;
        if (nodePorts.has(nk)) errs.push(duplicateError(`${p}.nodePort`, np));
        nodePorts.add(nk);
      }
    }
  });

  oneOf(spec.sessionAffinity, "spec.sessionAffinity", ["ClientIP", "None"], errs);
  oneOf(spec.externalTrafficPolicy, "spec.externalTrafficPolicy", ["Cluster", "Local"], errs);
  oneOf(spec.internalTrafficPolicy, "spec.internalTrafficPolicy", ["Cluster", "Local"], errs);
  oneOf(spec.ipFamilyPolicy, "spec.ipFamilyPolicy", ["PreferDualStack", "RequireDualStack", "SingleStack"], errs);
  const families = new Set<string>();
  list(spec.ipFamilies, "spec.ipFamilies", errs).forEach((f, i) => {
    if (f !== "IPv4" && f !== "IPv6") errs.push(notSupportedError(`spec.ipFamilies[${i}]`, f, ["IPv4", "IPv6"]));
    else if (families.has(f)) errs.push(duplicateError(`spec.ipFamilies[${i}]`, f));
    families.add(f);
  });
  errs.push(...validateLabels(spec.selector, "spec.selector"));
}

function validateServiceUpdate(obj: Obj, old: Obj, errs: FieldError[]): void {
  const spec = isObj(obj.spec) ? obj.spec : {};
  const oldSpec = isObj(old.spec) ? old.spec : {};
  if (spec.type === "ExternalName" || oldSpec.type === "ExternalName") return;
  const ip = str(spec.clusterIP);
  const oldIP = str(oldSpec.clusterIP);
  // An update that omits clusterIP keeps the allocated one (kube's patchAllocatedValues).
  if (oldIP !== "" && ip !== "" && ip !== oldIP) errs.push(invalidError("spec.clusterIP", ip, IMMUTABLE));
}

function validateEndpoints(obj: Obj, errs: FieldError[]): void {
  list(obj.subsets, "subsets", errs).forEach((subset, i) => {
    const p = `subsets[${i}]`;
    if (!isObj(subset)) {
      errs.push(invalidError(p, subset, "must be an object"));
      return;
    }
    const addrs = list(subset.addresses, `${p}.addresses`, errs);
    const notReady = list(subset.notReadyAddresses, `${p}.notReadyAddresses`, errs);
    if (addrs.length === 0 && notReady.length === 0) errs.push(requiredError(p, "must specify `addresses` or `notReadyAddresses`"));
    for (const [key, arr] of [
      ["addresses", addrs],
      ["notReadyAddresses", notReady],
    ] as const) {
      arr.forEach((a, j) => {
        const ap = `${p}.${key}[${j}]`;
        if (!isObj(a)) errs.push(invalidError(ap, a, "must be an object"));
        else if (!isSet(a.ip) || a.ip === "") errs.push(requiredError(`${ap}.ip`));
        else if (!isIP(a.ip)) errs.push(invalidError(`${ap}.ip`, a.ip, IP_MSG));
      });
    }
    const ports = list(subset.ports, `${p}.ports`, errs);
    ports.forEach((port, j) => {
      const pp = `${p}.ports[${j}]`;
      if (!isObj(port)) {
        errs.push(invalidError(pp, port, "must be an object"));
        return;
      }
      if (!isSet(port.name) || port.name === "") {
        if (ports.length > 1) errs.push(requiredError(`${pp}.name`));
      } else if (typeof port.name !== "string") errs.push(invalidError(`${pp}.name`, port.name, "must be a string"));
      else for (const m of dns1123LabelErrors(port.name)) errs.push(invalidError(`${pp}.name`, port.name, m));
      portInRange(port.port, `${pp}.port`, errs);
      oneOf(port.protocol, `${pp}.protocol`, PROTOCOLS, errs);
    });
  });
}

// ---------------------------------------------------------------------------------------
// ConfigMaps and Secrets.

const MAX_DATA_SIZE = 1024 * 1024;

function validateConfigKeys(m: Obj, field: string, errs: FieldError[]): void {
  for (const k of Object.keys(m)) for (const msg of configKeyErrors(k)) errs.push(invalidError(`${field}[${k}]`, k, msg));
}

function validateConfigMap(obj: Obj, errs: FieldError[]): void {
  const data = map(obj.data, "data", errs) ?? {};
  const binary = map(obj.binaryData, "binaryData", errs) ?? {};
  let size = 0;
  validateConfigKeys(data, "data", errs);
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== "string") errs.push(invalidError(`data[${k}]`, v, "must be a string"));
    else size += utf8Len(v);
  }
  validateConfigKeys(binary, "binaryData", errs);
  for (const [k, v] of Object.entries(binary)) {
    if (typeof v !== "string" || !BASE64_RE.test(v)) errs.push(invalidOmitValue(`binaryData[${k}]`, "must be a base64-encoded string"));
    else size += base64DecodedLen(v);
    if (Object.hasOwn(data, k)) errs.push(invalidError("binaryData", k, "duplicate of key present in data"));
  }
  if (size > MAX_DATA_SIZE) errs.push(tooLongError("data", MAX_DATA_SIZE));
}

function validateSecret(obj: Obj, errs: FieldError[]): void {
  const data = map(obj.data, "data", errs) ?? {};
  const stringData = map(obj.stringData, "stringData", errs) ?? {};
  let size = 0;
  validateConfigKeys(data, "data", errs);
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== "string" || !BASE64_RE.test(v)) errs.push(invalidOmitValue(`data[${k}]`, "must be a base64-encoded string"));
    else if (!Object.hasOwn(stringData, k)) size += base64DecodedLen(v);
  }
  validateConfigKeys(stringData, "stringData", errs);
  for (const [k, v] of Object.entries(stringData)) {
    if (typeof v !== "string") errs.push(invalidOmitValue(`stringData[${k}]`, "must be a string"));
    else size += utf8Len(v);
  }
  if (size > MAX_DATA_SIZE) errs.push(tooLongError("data", MAX_DATA_SIZE));

  const has = (k: string): boolean => Object.hasOwn(data, k) || Object.hasOwn(stringData, k);
  const need = (k: string): void => {
    if (!has(k)) errs.push(requiredError(`data[${k}]`));
  };
  if (isSet(obj.type) && typeof obj.type !== "string") errs.push(invalidError("type", obj.type, "must be a string"));
  switch (obj.type) {
    case "kubernetes.io/service-account-token": {
      const ann = isObj(obj.metadata?.annotations) ? obj.metadata.annotations : {};
      const key = "kubernetes.io/service-account.name";
      if (!isSet(ann[key]) || ann[key] === "") errs.push(requiredError(`metadata.annotations[${key}]`));
      break;
    }
    case "kubernetes.io/dockercfg":
      need(".dockercfg");
      break;
    case "kubernetes.io/dockerconfigjson":
      need(".dockerconfigjson");
      break;
    case "kubernetes.io/basic-auth":
      if (!has("username") && !has("password")) {
        errs.push(requiredError("data[username]"), requiredError("data[password]"));
      }
      break;
    case "kubernetes.io/ssh-auth":
      need("ssh-privatekey");
      break;
    case "kubernetes.io/tls":
      need("tls.crt");
      need("tls.key");
      break;
  }
}

/** The data a Secret ends up with once stringData is folded in (as kube's conversion does). */
function effectiveSecretData(obj: Obj): Obj {
  const out: Obj = isObj(obj.data) ? { ...obj.data } : {};
  if (isObj(obj.stringData)) {
    for (const [k, v] of Object.entries(obj.stringData)) if (typeof v === "string") out[k] = base64Utf8(v);
  }
  return out;
}

function validateImmutableData(obj: Obj, old: Obj, keys: string[], errs: FieldError[], effective?: (o: Obj) => Obj): void {
  if (old.immutable !== true) return;
  if (obj.immutable !== true) errs.push(forbiddenError("immutable", IMMUTABLE_WHEN_SET));
  for (const k of keys) {
    const a = effective && k === "data" ? effective(obj) : obj[k];
    const b = effective && k === "data" ? effective(old) : old[k];
    if (!semanticEqual(a, b)) errs.push(forbiddenError(k, IMMUTABLE_WHEN_SET));
  }
}

// ---------------------------------------------------------------------------------------
// Namespaces, Nodes, Leases, Events.

const STANDARD_FINALIZERS = ["kubernetes", "orphan", "foregroundDeletion"];

function validateNamespace(obj: Obj, errs: FieldError[]): void {
  const spec = map(obj.spec, "spec", errs) ?? {};
  list(spec.finalizers, "spec.finalizers", errs).forEach((f, i) => {
    const p = `spec.finalizers[${i}]`;
    if (typeof f !== "string") errs.push(invalidError(p, f, "must be a string"));
    else {
      for (const m of qualifiedNameErrors(f)) errs.push(invalidError(p, f, m));
      if (!f.includes("/") && !STANDARD_FINALIZERS.includes(f)) {
        errs.push(invalidError(p, f, "name is neither a standard finalizer name nor is it fully qualified"));
      }
    }
  });
}

function validateNode(obj: Obj, errs: FieldError[]): void {
  const spec = map(obj.spec, "spec", errs) ?? {};
  const seen = new Set<string>();
  list(spec.taints, "spec.taints", errs).forEach((t, i) => {
    const p = `spec.taints[${i}]`;
    if (!isObj(t)) {
      errs.push(invalidError(p, t, "must be an object"));
      return;
    }
    const key = str(t.key);
    for (const m of qualifiedNameErrors(key)) errs.push(invalidError(`${p}.key`, key, m));
    if (isSet(t.value)) {
      if (typeof t.value !== "string") errs.push(invalidError(`${p}.value`, t.value, "must be a string"));
      else {
        const msgs = labelValueErrors(t.value);
        if (msgs.length) errs.push(invalidError(`${p}.value`, t.value, msgs.join(";")));
      }
    }
    if (!isSet(t.effect) || t.effect === "") errs.push(requiredError(`${p}.effect`));
    else if (!TAINT_EFFECTS.includes(t.effect)) errs.push(notSupportedError(`${p}.effect`, t.effect, TAINT_EFFECTS));
    const uk = `${key}\u0000${String(t.effect)}`;
    if (seen.has(uk)) {
      errs.push({
        field: p,
        type: "FieldValueDuplicate",
        message: `Duplicate value: ${fmtValue(t)}: taints must be unique by key and effect pair`,
      });
    }
    seen.add(uk);
  });
}

function validateLease(obj: Obj, errs: FieldError[]): void {
  const spec = map(obj.spec, "spec", errs) ?? {};
  if (isSet(spec.holderIdentity) && typeof spec.holderIdentity !== "string") {
    errs.push(invalidError("spec.holderIdentity", spec.holderIdentity, "must be a string"));
  }
  positive(spec.leaseDurationSeconds, "spec.leaseDurationSeconds", errs);
  nonNegative(spec.leaseTransitions, "spec.leaseTransitions", errs);
}

function validateEvent(obj: Obj, errs: FieldError[]): void {
  const io = obj.involvedObject;
  if (!isObj(io) || (str(io.name) === "" && str(io.kind) === "")) {
    errs.push(requiredError("involvedObject"));
    return;
  }
  const ns = str(obj.metadata?.namespace);
  if (str(io.namespace) !== "" && io.namespace !== ns) {
    errs.push(invalidError("involvedObject.namespace", io.namespace, "does not match event.namespace"));
  }
}

// ---------------------------------------------------------------------------------------
// RBAC (rbac.authorization.k8s.io/v1): rules of Roles and ClusterRoles, roleRef and
// subjects of bindings (kube's ValidatePolicyRule / ValidateRoleBinding, in short).

function stringList(v: unknown, field: string, errs: FieldError[]): string[] {
  const l = list(v, field, errs);
  l.forEach((x, i) => {
    if (typeof x !== "string") errs.push(invalidError(`${field}[${i}]`, x, "must be a string"));
  });
  return l.filter((x): x is string => typeof x === "string");
}

function validatePolicyRules(obj: Obj, namespaced: boolean, errs: FieldError[]): void {
  list(obj.rules, "rules", errs).forEach((rule, i) => {
    const p = `rules[${i}]`;
    if (!isObj(rule)) {
      errs.push(invalidError(p, rule, "must be an object"));
      return;
    }
    if (stringList(rule.verbs, `${p}.verbs`, errs).length === 0)
      errs.push(requiredError(`${p}.verbs`, "verbs must contain at least one value"));
    const groups = stringList(rule.apiGroups, `${p}.apiGroups`, errs);
    const resources = stringList(rule.resources, `${p}.resources`, errs);
    const names = stringList(rule.resourceNames, `${p}.resourceNames`, errs);
    const urls = stringList(rule.nonResourceURLs, `${p}.nonResourceURLs`, errs);
    if (urls.length > 0) {
      if (namespaced) errs.push(invalidError(`${p}.nonResourceURLs`, urls, "namespaced rules cannot apply to non-resource URLs"));
      if (groups.length || resources.length || names.length) {
        errs.push(invalidError(`${p}.nonResourceURLs`, urls, "rules cannot apply to both regular resources and non-resource URLs"));
      }
      return;
    }
    if (groups.length === 0) errs.push(requiredError(`${p}.apiGroups`, "resource rules must supply at least one api group"));
    if (resources.length === 0) errs.push(requiredError(`${p}.resources`, "resource rules must supply at least one resource"));
  });
}

const RBAC_GROUP = "rbac.authorization.k8s.io";

function validateRoleBinding(obj: Obj, namespaced: boolean, errs: FieldError[]): void {
  const ref = obj.roleRef;
  if (!isObj(ref)) errs.push(requiredError("roleRef"));
  else {
    if (ref.apiGroup !== RBAC_GROUP) errs.push(notSupportedError("roleRef.apiGroup", ref.apiGroup ?? "", [RBAC_GROUP]));
    const kinds = namespaced ? ["Role", "ClusterRole"] : ["ClusterRole"];
    if (!kinds.includes(str(ref.kind))) errs.push(notSupportedError("roleRef.kind", ref.kind ?? "", kinds));
    if (str(ref.name) === "") errs.push(requiredError("roleRef.name"));
    else for (const m of pathSegmentNameErrors(ref.name)) errs.push(invalidError("roleRef.name", ref.name, m));
  }
  list(obj.subjects, "subjects", errs).forEach((s, i) => {
    const p = `subjects[${i}]`;
    if (!isObj(s)) {
      errs.push(invalidError(p, s, "must be an object"));
      return;
    }
    if (str(s.name) === "") errs.push(requiredError(`${p}.name`));
    switch (s.kind) {
      case "ServiceAccount":
        if (str(s.apiGroup) !== "") errs.push(notSupportedError(`${p}.apiGroup`, s.apiGroup, [""]));
        if (str(s.name) !== "") for (const m of dns1123SubdomainErrors(s.name)) errs.push(invalidError(`${p}.name`, s.name, m));
        if (!namespaced && str(s.namespace) === "") errs.push(requiredError(`${p}.namespace`));
        break;
      case "User":
      case "Group":
        if (str(s.apiGroup) !== "" && s.apiGroup !== RBAC_GROUP) errs.push(notSupportedError(`${p}.apiGroup`, s.apiGroup, [RBAC_GROUP]));
        break;
      default:
        errs.push(notSupportedError(`${p}.kind`, s.kind ?? "", ["ServiceAccount", "User", "Group"]));
    }
  });
}

// ---------------------------------------------------------------------------------------
// Entry points.

function kindKey(info: ResourceInfo): string {
  return info.group ? `${info.kind}.${info.group}` : info.kind;
}

/** Validates a new object (after defaulting). Returns field errors, empty when valid. */
export function validateCreate(info: ResourceInfo, obj: Record<string, any>): FieldError[] {
  const errs: FieldError[] = [];
  if (!isObj(obj)) return [invalidError("", obj, "must be an object")];
  validateObjectMeta(info, obj, errs);
  switch (kindKey(info)) {
    case "Pod":
      validatePodSpec(obj.spec, "spec", errs);
      break;
    case "Deployment.apps":
      validateReplicaSetLike(obj, true, errs);
      break;
    case "ReplicaSet.apps":
      validateReplicaSetLike(obj, false, errs);
      break;
    case "Service":
      validateService(obj, errs);
      break;
    case "Endpoints":
      validateEndpoints(obj, errs);
      break;
    case "ConfigMap":
      validateConfigMap(obj, errs);
      break;
    case "Secret":
      validateSecret(obj, errs);
      break;
    case "Namespace":
      validateNamespace(obj, errs);
      break;
    case "Node":
      validateNode(obj, errs);
      break;
    case "Lease.coordination.k8s.io":
      validateLease(obj, errs);
      break;
    case "Event":
      validateEvent(obj, errs);
      break;
    case "Role.rbac.authorization.k8s.io":
    case "ClusterRole.rbac.authorization.k8s.io":
      validatePolicyRules(obj, info.namespaced, errs);
      break;
    case "RoleBinding.rbac.authorization.k8s.io":
    case "ClusterRoleBinding.rbac.authorization.k8s.io":
      validateRoleBinding(obj, info.namespaced, errs);
      break;
  }
  return errs;
}

/** Validates an update: everything validateCreate checks plus immutable fields against old. */
export function validateUpdate(info: ResourceInfo, obj: Record<string, any>, old: Record<string, any>): FieldError[] {
  const errs = validateCreate(info, obj);
  if (!isObj(obj) || !isObj(old)) return errs;
  validateObjectMetaUpdate(obj, old, errs);
  switch (kindKey(info)) {
    case "Pod":
      validatePodUpdate(obj, old, errs);
      break;
    case "Deployment.apps":
    case "ReplicaSet.apps":
      validateSelectorUpdate(obj, old, errs);
      break;
    case "Service":
      validateServiceUpdate(obj, old, errs);
      break;
    case "ConfigMap":
      validateImmutableData(obj, old, ["data", "binaryData"], errs);
      break;
    case "Secret": {
      const t = obj.type ?? "";
      const oldT = old.type ?? "";
      if (oldT !== "" && t !== oldT) errs.push(invalidError("type", t, IMMUTABLE));
      validateImmutableData(obj, old, ["data"], errs, effectiveSecretData);
      break;
    }
    case "RoleBinding.rbac.authorization.k8s.io":
    case "ClusterRoleBinding.rbac.authorization.k8s.io":
      if (!semanticEqual(obj.roleRef, old.roleRef)) errs.push(invalidError("roleRef", obj.roleRef, "cannot change roleRef"));
      break;
  }
  return errs;
}

/** Throws invalid(...) (422) if there are errors. */
export function assertValid(info: ResourceInfo, errs: FieldError[], name?: string): void {
  if (errs.length > 0) throw invalid(info.kind, info.group, name, errs);
}
