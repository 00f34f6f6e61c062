// Generates workers/api/openapi-data.json: the OpenAPI definitions of every served kind
// (and everything they reference), named and shaped as kube-apiserver publishes them
// (io.k8s.api.core.v1.Pod, io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta, ...).
//
//   npm run gen:openapi        (node scripts/gen-openapi.ts)
//
// Sources:
//  - the kubernetes-types package (TypeScript declarations generated from the Kubernetes
//    OpenAPI, with the descriptions as doc comments): types, descriptions, `required`
//    (non-optional fields) and the group/version/kind of top-level kinds (their
//    `apiVersion` / `kind` string literal types);
//  - workers/shared/patch.ts: the strategic merge patch field table (patchStrategy /
//    patchMergeKey per kind and dotted path) the server itself uses, which becomes
//    x-kubernetes-patch-strategy / x-kubernetes-patch-merge-key on the fields, plus
//    x-kubernetes-list-type (map with x-kubernetes-list-map-keys when merged by key, set
//    for merged primitive lists, atomic otherwise) on every list;
//  - workers/shared/resources.ts: which kinds are served.
//
// The output is compact, key-sorted JSON so that regenerating is a no-op diff. Paths and
// the per-group-version documents are built at runtime by workers/api/openapi.ts.

import { readFileSync, writeFileSync } from "node:fs";
import * as nodeModule from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { RESOURCES, type ResourceInfo } from "../workers/shared/resources.ts";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const TYPES_DIR = join(ROOT, "node_modules", "kubernetes-types");
export const PATCH_SOURCE = join(ROOT, "workers", "shared", "patch.ts");
export const OUTPUT = join(ROOT, "workers", "api", "openapi-data.json");

export type Schema = { [key: string]: unknown };

export interface OpenAPIData {
  /** Where the definitions come from, e.g. "kubernetes-types 1.30.0". */
  source: string;
  definitions: Record<string, Schema>;
}

export interface GenerateResult {
  data: OpenAPIData;
  /** Patch table entries (kind + path) that name a field the schema does not have. */
  unresolved: string[];
  /** Served kinds kubernetes-types does not declare (published without a schema). */
  missing: string[];
}

export interface GenerateOptions {
  typesDir?: string;
  patchSource?: string;
  resources?: readonly ResourceInfo[];
}

// ---------------------------------------------------------------------------------------
// Names

const INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const INT_OR_STRING_DESCRIPTION =
  "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.";

/** String formats of the well-known string aliases. */
const ALIAS_FORMATS: Readonly<Record<string, string>> = {
  "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "date-time",
  "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": "date-time",
};

/** kubernetes-types module ("core/v1", "meta/v1", "runtime", ...) -> OpenAPI package prefix. */
export function packageOf(module: string): string {
  switch (module) {
    case "meta/v1":
      return "io.k8s.apimachinery.pkg.apis.meta.v1";
    case "runtime":
      return "io.k8s.apimachinery.pkg.runtime";
    case "api/resource":
      return "io.k8s.apimachinery.pkg.api.resource";
    case "version":
      return "io.k8s.apimachinery.pkg.version";
  }
  if (module.startsWith("apiextensions/")) return `io.k8s.apiextensions-apiserver.pkg.apis.${module.replace("/", ".")}`;
  return `io.k8s.api.${module.replace("/", ".")}`;
}

/** Package of a kind kubernetes-types does not have: kube's CRD naming (reversed group). */
function opaquePackage(group: string, version: string): string {
  if (!group || group.endsWith(".k8s.io")) return packageOf(moduleOf(group, version));
  return `${group.split(".").reverse().join(".")}.${version}`;
}

/** The kinds of the subresources with their own kind. */
export const SUBRESOURCE_KINDS: Readonly<Record<string, { group: string; version: string; kind: string }>> = {
  scale: { group: "autoscaling", version: "v1", kind: "Scale" },
  binding: { group: "", version: "v1", kind: "Binding" },
  token: { group: "authentication.k8s.io", version: "v1", kind: "TokenRequest" },
  eviction: { group: "policy", version: "v1", kind: "Eviction" },
};

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/** The verbs a resource serves (the full set unless the table narrows it). */
export function servedVerbs(info: ResourceInfo): string[] {
  return (info as ResourceInfo & { verbs?: string[] }).verbs ?? ALL_VERBS;
}

/** API group ("" for core) and version -> kubernetes-types module ("core/v1", "coordination/v1"). */
export function moduleOf(group: string, version: string): string {
  if (group === "") return `core/${version}`;
  if (group === "internal.apiserver.k8s.io") return `apiserverinternal/${version}`;
  return `${group.split(".")[0]}/${version}`;
}

// ---------------------------------------------------------------------------------------
// A parser for the (very regular) kubernetes-types declaration files

type Tok = { t: "doc" | "id" | "str" | "p"; v: string; line: number };

function lex(src: string, file: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let line = 1;
  const fail = (msg: string): never => {
    throw new Error(`${file}:${line}: ${msg}`);
  };
  while (i < src.length) {
    const c = src[i];
    if (c === "\n") {
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (src.startsWith("/*", i)) {
      const end = src.indexOf("*/", i + 2);
      if (end < 0) fail("unterminated comment");
      const body = src.slice(i + 2, end);
      if (body.startsWith("*") && body !== "*") out.push({ t: "doc", v: body.slice(1), line });
      for (const ch of src.slice(i, end)) if (ch === "\n") line++;
      i = end + 2;
    } else if (src.startsWith("//", i)) {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let s = "";
      while (j < src.length && src[j] !== c) {
        if (src[j] === "\n") fail("unterminated string");
        if (src[j] === "\\") {
          s += src[j + 1];
          j += 2;
        } else {
          s += src[j++];
        }
      }
      out.push({ t: "str", v: s, line });
      i = j + 1;
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[\w$]/.test(src[j])) j++;
      out.push({ t: "id", v: src.slice(i, j), line });
      i = j;
    } else if ("{}<>[]():;?|,=.".includes(c)) {
      out.push({ t: "p", v: c, line });
      i++;
    } else {
      fail(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  return out;
}

/** The text of a doc comment body (between the opening "/**" and the closing delimiter). */
export function docText(body: string): string {
  const lines = body.split("\n").map((l, i) => {
    let s = l.trimStart();
    if (i > 0 || s.startsWith("*")) {
      if (s.startsWith("*")) s = s.slice(1);
      if (s.startsWith(" ")) s = s.slice(1);
    }
    return s.trimEnd();
  });
  while (lines.length && lines[0] === "") lines.shift();
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines.join("\n").replace(/\*\\\//g, "*/");
}

type TypeExpr =
  | { k: "prim"; name: "string" | "number" | "boolean" }
  | { k: "lit"; value: string }
  | { k: "array"; of: TypeExpr }
  | { k: "map"; of: TypeExpr }
  | { k: "ref"; name: string }
  | { k: "union"; of: TypeExpr[] };

interface Field {
  name: string;
  doc?: string;
  optional: boolean;
  type: TypeExpr;
}

type Decl = { kind: "interface"; doc?: string; fields: Field[] } | { kind: "alias"; doc?: string; type: TypeExpr };

interface ParsedModule {
  imports: Map<string, string>; // local name -> module
  decls: Map<string, Decl>;
}

function parseModule(src: string, file: string, module: string): ParsedModule {
  const toks = lex(src, file);
  let p = 0;
  const peek = (o = 0): Tok | undefined => toks[p + o];
  const fail = (msg: string): never => {
    const t = peek();
    throw new Error(`${file}:${t?.line ?? "EOF"}: ${msg} (at ${t ? JSON.stringify(t.v) : "end of file"})`);
  };
  const next = (): Tok => toks[p++] ?? fail("unexpected end of file");
  const expect = (v: string): void => {
    const t = next();
    if (t.v !== v || t.t === "str" || t.t === "doc") {
      p--;
      fail(`expected ${JSON.stringify(v)}`);
    }
  };
  const ident = (): string => {
    const t = next();
    if (t.t !== "id") {
      p--;
      fail("expected an identifier");
    }
    return t.v;
  };
  const isP = (v: string, o = 0): boolean => peek(o)?.t === "p" && peek(o)?.v === v;

  function parsePrimary(): TypeExpr {
    const t = next();
    let ty: TypeExpr;
    if (t.t === "str") {
      ty = { k: "lit", value: t.v };
    } else if (t.t === "id") {
      if (t.v === "string" || t.v === "number" || t.v === "boolean") ty = { k: "prim", name: t.v };
      else if (t.v === "Array") {
        expect("<");
        const of = parseType();
        expect(">");
        ty = { k: "array", of };
      } else ty = { k: "ref", name: t.v };
    } else if (t.t === "p" && t.v === "{") {
      expect("[");
      ident();
      expect(":");
      if (ident() !== "string") fail("only string index signatures are supported");
      expect("]");
      expect(":");
      const of = parseType();
      if (isP(";")) next();
      expect("}");
      ty = { k: "map", of };
    } else if (t.t === "p" && t.v === "(") {
      ty = parseType();
      expect(")");
    } else {
      p--;
      return fail("expected a type");
    }
    while (isP("[") && isP("]", 1)) {
      p += 2;
      ty = { k: "array", of: ty };
    }
    return ty;
  }

  function parseType(): TypeExpr {
    if (isP("|")) next();
    const alts = [parsePrimary()];
    while (isP("|")) {
      next();
      alts.push(parsePrimary());
    }
    return alts.length === 1 ? alts[0] : { k: "union", of: alts };
  }

  const imports = new Map<string, string>();
  const decls = new Map<string, Decl>();
  let doc: string | undefined;
  while (p < toks.length) {
    const t = next();
    if (t.t === "doc") {
      doc = docText(t.v);
      continue;
    }
    if (t.t === "id" && t.v === "import") {
      expect("{");
      const names: string[] = [];
      while (!isP("}")) {
        const name = ident();
        let local = name;
        if (peek()?.v === "as") {
          next();
          local = ident();
        }
        names.push(local);
        if (isP(",")) next();
      }
      expect("}");
      if (ident() !== "from") fail('expected "from"');
      const from = next();
      if (from.t !== "str") fail("expected a module name");
      if (isP(";")) next();
      const target = join(dirname(module), from.v).replace(/\\/g, "/");
      for (const n of names) imports.set(n, target);
      doc = undefined;
      continue;
    }
    if (t.t === "id" && t.v === "export") {
      let kw = ident();
      if (kw === "declare") kw = ident();
      const name = ident();
      if (kw === "interface") {
        if (!isP("{")) fail("interfaces with extends or type parameters are not supported");
        expect("{");
        const fields: Field[] = [];
        let fieldDoc: string | undefined;
        while (!isP("}")) {
          const ft = peek();
          if (ft?.t === "doc") {
            next();
            fieldDoc = docText(ft.v);
            continue;
          }
          if (ft?.t === "id" && ft.v === "readonly" && !isP(":", 1) && !isP("?", 1)) next();
          const nt = next();
          if (nt.t !== "id" && nt.t !== "str") {
            p--;
            fail("expected a field name");
          }
          let optional = false;
          if (isP("?")) {
            next();
            optional = true;
          }
          expect(":");
          const type = parseType();
          if (isP(";") || isP(",")) next();
          fields.push({ name: nt.v, doc: fieldDoc, optional, type });
          fieldDoc = undefined;
        }
        expect("}");
        decls.set(name, { kind: "interface", doc, fields });
      } else if (kw === "type") {
        expect("=");
        const type = parseType();
        if (isP(";")) next();
        decls.set(name, { kind: "alias", doc, type });
      } else {
        fail(`unsupported export ${JSON.stringify(kw)}`);
      }
      doc = undefined;
      continue;
    }
    p--;
    fail("unexpected token");
  }
  return { imports, decls };
}

// ---------------------------------------------------------------------------------------
// Declarations -> OpenAPI v2 definitions

class Converter {
  readonly definitions: Record<string, Schema> = {};
  private readonly modules = new Map<string, ParsedModule>();
  private readonly queue: Array<{ module: string; name: string }> = [];
  /** Definitions whose `kind` / `apiVersion` fields are string literals: their GVK. */
  readonly gvks = new Map<string, { group: string; kind: string; version: string }>();

  private readonly typesDir: string;

  constructor(typesDir: string) {
    this.typesDir = typesDir;
  }

  /** Whether kubernetes-types declares `name` in `module` (which may not exist). */
  has(module: string, name: string): boolean {
    try {
      return this.module(module).decls.has(name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw e;
    }
  }

  module(module: string): ParsedModule {
    let m = this.modules.get(module);
    if (!m) {
      const file = join(this.typesDir, `${module}.d.ts`);
      m = parseModule(readFileSync(file, "utf8"), relative(this.typesDir, file), module);
      this.modules.set(module, m);
    }
    return m;
  }

  /** Definition name of `name` as seen from `module`, queued for conversion. */
  ref(module: string, name: string): string {
    const m = this.module(module);
    let home = module;
    if (!m.decls.has(name)) {
      const imported = m.imports.get(name);
      if (!imported) throw new Error(`${module}: unknown type ${name}`);
      home = imported;
      if (!this.module(home).decls.has(name)) throw new Error(`${home}: ${name} is not declared`);
    }
    const defName = `${packageOf(home)}.${name}`;
    if (!(defName in this.definitions)) {
      this.definitions[defName] = {}; // placeholder, filled by run()
      this.queue.push({ module: home, name });
    }
    return defName;
  }

  run(): void {
    for (let item = this.queue.shift(); item; item = this.queue.shift()) {
      const defName = `${packageOf(item.module)}.${item.name}`;
      this.definitions[defName] = this.convertDecl(item.module, item.name, defName);
    }
  }

  private convertDecl(module: string, name: string, defName: string): Schema {
    const decl = this.module(module).decls.get(name)!;
    const out: Schema = {};
    if (decl.doc) out.description = decl.doc;
    if (decl.kind === "alias") {
      Object.assign(out, this.schemaOf(module, decl.type));
      if (ALIAS_FORMATS[defName]) out.format = ALIAS_FORMATS[defName];
      return out;
    }
    out.type = "object";
    if (decl.fields.length === 0) return out;
    const properties: Record<string, Schema> = {};
    const required: string[] = [];
    for (const f of decl.fields) {
      const s = this.schemaOf(module, f.type);
      properties[f.name] = f.doc ? { ...s, description: f.doc } : s;
      if (!f.optional) required.push(f.name);
    }
    out.properties = properties;
    if (required.length) out.required = required;
    const apiVersion = decl.fields.find((f) => f.name === "apiVersion")?.type;
    const kind = decl.fields.find((f) => f.name === "kind")?.type;
    if (apiVersion?.k === "lit" && kind?.k === "lit") {
      const slash = apiVersion.value.indexOf("/");
      this.gvks.set(defName, {
        group: slash < 0 ? "" : apiVersion.value.slice(0, slash),
        kind: kind.value,
        version: apiVersion.value.slice(slash + 1),
      });
    }
    return out;
  }

  private schemaOf(module: string, t: TypeExpr): Schema {
    switch (t.k) {
      case "prim":
        // The declarations do not say int32 / int64 / double; every number in the served
        // kinds is an integer.
        return { type: t.name === "number" ? "integer" : t.name };
      case "lit":
        return { type: "string" };
      case "array":
        return { type: "array", items: this.schemaOf(module, t.of) };
      case "map":
        return { type: "object", additionalProperties: this.schemaOf(module, t.of) };
      case "ref":
        return { $ref: `#/definitions/${this.ref(module, t.name)}` };
      case "union": {
        const prims = new Set(t.of.map((x) => (x.k === "prim" ? x.name : x.k === "lit" ? "string" : "?")));
        if (prims.size === 2 && prims.has("number") && prims.has("string")) {
          this.definitions[INT_OR_STRING] = { description: INT_OR_STRING_DESCRIPTION, format: "int-or-string", type: "string" };
          return { $ref: `#/definitions/${INT_OR_STRING}` };
        }
        if (prims.size === 1 && prims.has("string")) return { type: "string" };
        throw new Error(`${module}: unsupported union type`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Strategic merge patch metadata from workers/shared/patch.ts

export interface FieldPatchMeta {
  strategy: string;
  mergeKey?: string;
}

export interface PatchTables {
  /** kind -> dotted path ("[]" marks a list element) -> metadata, ObjectMeta rules included. */
  schemas: Map<string, Map<string, FieldPatchMeta>>;
  /** What every other kind gets (ObjectMeta's rules). */
  defaultSchema: Map<string, FieldPatchMeta>;
}

/** Node's type stripper without its one-time "experimental" warning. */
function stripTypes(source: string): string {
  const strip = (nodeModule as { stripTypeScriptTypes?: (code: string) => string }).stripTypeScriptTypes;
  if (!strip) throw new Error("gen-openapi needs Node >= 22.13 (module.stripTypeScriptTypes)");
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (String(warning).includes("stripTypeScriptTypes")) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return strip(source);
  } finally {
    process.emitWarning = emit;
  }
}

/**
 * The patch field table of workers/shared/patch.ts, which does not export it: the module's
 * source, types stripped and imports stubbed (the tables are plain data built at load
 * time), is evaluated and its module-scope `SCHEMAS` / `DEFAULT_SCHEMA` are returned.
 */
export function loadPatchTables(source: string): PatchTables {
  let code = stripTypes(source);
  code = code.replace(/^\s*import\s+(type\s+)?\{([^}]*)\}\s+from\s+["'][^"']+["'];?/gm, (_m, _t, names: string) => {
    const locals = names
      .split(",")
      .map(
        (n) =>
          n
            .trim()
            .split(/\s+as\s+/)
            .pop()!,
      )
      .filter((n) => n && !n.startsWith("type "));
    return locals.length ? `const ${locals.map((n) => `${n} = undefined`).join(", ")};` : "";
  });
  code = code.replace(/^export\s+(?=(async\s+)?function|const|let|class)/gm, "");
  if (/^\s*(import|export)\b/m.test(code)) throw new Error("patch.ts: unsupported import/export syntax");
  const evaluate = new Function(
    `"use strict";\n${code}\n;return { schemas: typeof SCHEMAS === "undefined" ? undefined : SCHEMAS, defaultSchema: typeof DEFAULT_SCHEMA === "undefined" ? undefined : DEFAULT_SCHEMA };`,
  ) as () => { schemas?: ReadonlyMap<string, ReadonlyMap<string, FieldPatchMeta>>; defaultSchema?: ReadonlyMap<string, FieldPatchMeta> };
  const { schemas, defaultSchema } = evaluate();
  if (!(schemas instanceof Map) || !(defaultSchema instanceof Map)) {
    throw new Error("patch.ts no longer defines SCHEMAS / DEFAULT_SCHEMA maps; update scripts/gen-openapi.ts");
  }
  const copy = (m: ReadonlyMap<string, FieldPatchMeta>) =>
    new Map(
      [...m].map(([path, meta]) => [
        path,
        { strategy: String(meta.strategy), ...(meta.mergeKey ? { mergeKey: String(meta.mergeKey) } : {}) },
      ]),
    );
  return { schemas: new Map([...schemas].map(([kind, m]) => [kind, copy(m)])), defaultSchema: copy(defaultSchema) };
}

function refName(s: Schema | undefined): string | undefined {
  const ref = s?.$ref;
  return typeof ref === "string" ? ref.replace(/^#\/definitions\//, "") : undefined;
}

/** The definition and property a dotted patch path ends at, starting from a kind's definition. */
function resolveField(definitions: Record<string, Schema>, root: string, path: string): { def: string; prop: string } | undefined {
  const segs = path.split(".");
  let cur = root;
  for (let i = 0; i < segs.length; i++) {
    const list = segs[i].endsWith("[]");
    const name = list ? segs[i].slice(0, -2) : segs[i];
    const props = definitions[cur]?.properties as Record<string, Schema> | undefined;
    const prop = props && Object.hasOwn(props, name) ? props[name] : undefined;
    if (!prop) return undefined;
    if (i === segs.length - 1) return list ? undefined : { def: cur, prop: name };
    let nextSchema: Schema | undefined = prop;
    if (list) nextSchema = prop.type === "array" ? (prop.items as Schema) : undefined;
    else if (prop.type === "array") return undefined;
    const nextDef = refName(nextSchema);
    if (!nextDef) return undefined;
    cur = nextDef;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// The generator

function kubernetesTypesVersion(typesDir: string): string {
  try {
    return String(JSON.parse(readFileSync(join(typesDir, "package.json"), "utf8")).version);
  } catch {
    return "unknown";
  }
}

/** Builds the definitions (pure apart from reading the sources). */
export function generate(opts: GenerateOptions = {}): GenerateResult {
  const typesDir = opts.typesDir ?? TYPES_DIR;
  const resources = opts.resources ?? RESOURCES;
  const conv = new Converter(typesDir);

  // Roots: the served kinds and their lists, plus what the endpoints take and return.
  const served = new Map<string, string>(); // kind definition -> kind (for the patch table)
  const missing: string[] = [];
  const opaque: Array<{ name: string; group: string; version: string; kind: string; items?: string }> = [];
  const root = (group: string, version: string, kind: string, items?: string): string => {
    const module = moduleOf(group, version);
    if (conv.has(module, kind)) return conv.ref(module, kind);
    // Not in kubernetes-types (a kubeflare-only kind, or a kind newer than the package):
    // published without a schema so that clients accept any content.
    missing.push(`${group ? `${group}/` : ""}${version} ${kind}`);
    const name = `${opaquePackage(group, version)}.${kind}`;
    opaque.push({ name, group, version, kind, items });
    return name;
  };
  for (const info of resources) {
    const kindDef = root(info.group, info.version, info.kind);
    served.set(kindDef, info.kind);
    if (servedVerbs(info).includes("list")) root(info.group, info.version, info.listKind, kindDef);
    for (const sub of info.subresources) {
      const k = SUBRESOURCE_KINDS[sub];
      if (k) served.set(root(k.group, k.version, k.kind), k.kind);
    }
  }
  for (const k of [SUBRESOURCE_KINDS.scale, SUBRESOURCE_KINDS.binding]) served.set(root(k.group, k.version, k.kind), k.kind);
  const status = conv.ref("meta/v1", "Status");
  const deleteOptions = conv.ref("meta/v1", "DeleteOptions");
  const watchEvent = conv.ref("meta/v1", "WatchEvent");
  conv.ref("meta/v1", "Patch"); // the PATCH request body
  const listMeta = conv.ref("meta/v1", "ListMeta");
  conv.run();
  for (const o of opaque) {
    conv.definitions[o.name] = o.items
      ? {
          description: `${o.kind} is a list of ${o.kind.replace(/List$/, "")} objects.`,
          properties: {
            apiVersion: { type: "string" },
            items: { items: { $ref: `#/definitions/${o.items}` }, type: "array" },
            kind: { type: "string" },
            metadata: { $ref: `#/definitions/${listMeta}` },
          },
          required: ["items"],
          type: "object",
        }
      : {
          description: `${o.kind} (${o.group ? `${o.group}/` : ""}${o.version}) is served by this server; its schema is not published, so any content is accepted.`,
          type: "object",
        };
    conv.gvks.set(o.name, { group: o.group, kind: o.kind, version: o.version });
  }

  const defs = conv.definitions;
  for (const [name, gvk] of conv.gvks) defs[name]["x-kubernetes-group-version-kind"] = [gvk];
  defs[status]["x-kubernetes-group-version-kind"] = [{ group: "", kind: "Status", version: "v1" }];
  const gvs = new Set(resources.map((r) => `${r.group}\u0000${r.version}`));
  for (const [name, kind] of [
    [deleteOptions, "DeleteOptions"],
    [watchEvent, "WatchEvent"],
  ]) {
    defs[name]["x-kubernetes-group-version-kind"] = [...gvs].sort().map((gv) => {
      const [group, version] = gv.split("\u0000");
      return { group, kind, version };
    });
  }

  // Strategic merge patch metadata.
  const tables = loadPatchTables(readFileSync(opts.patchSource ?? PATCH_SOURCE, "utf8"));
  const unresolved: string[] = [];
  const applied = new Map<string, { meta: FieldPatchMeta; from: string }>();
  for (const [defName, kind] of [...served].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    if (!defs[defName].properties) continue; // published without a schema
    const table = tables.schemas.get(kind) ?? tables.defaultSchema;
    for (const [path, meta] of [...table].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const at = resolveField(defs, defName, path);
      if (!at) {
        unresolved.push(`${kind} ${path}`);
        continue;
      }
      const key = `${at.def}\u0000${at.prop}`;
      const prev = applied.get(key);
      if (prev) {
        if (prev.meta.strategy !== meta.strategy || prev.meta.mergeKey !== meta.mergeKey) {
          throw new Error(`patch.ts: ${kind} ${path} conflicts with ${prev.from} (both are ${at.def}.${at.prop})`);
        }
        continue;
      }
      applied.set(key, { meta, from: `${kind} ${path}` });
      const prop = (defs[at.def].properties as Record<string, Schema>)[at.prop];
      prop["x-kubernetes-patch-strategy"] = meta.strategy;
      if (meta.mergeKey) prop["x-kubernetes-patch-merge-key"] = meta.mergeKey;
    }
  }

  // List types: map (keyed like the merge), set (merged primitives) or atomic.
  for (const def of Object.values(defs)) {
    const props = def.properties as Record<string, Schema> | undefined;
    for (const prop of Object.values(props ?? {})) {
      if (prop.type !== "array") continue;
      const strategies = String(prop["x-kubernetes-patch-strategy"] ?? "").split(",");
      const mergeKey = prop["x-kubernetes-patch-merge-key"];
      if (strategies.includes("merge") && typeof mergeKey === "string") {
        prop["x-kubernetes-list-type"] = "map";
        prop["x-kubernetes-list-map-keys"] = [mergeKey];
      } else if (strategies.includes("merge")) {
        prop["x-kubernetes-list-type"] = "set";
      } else {
        prop["x-kubernetes-list-type"] = "atomic";
      }
    }
  }

  return {
    data: { source: `kubernetes-types ${kubernetesTypesVersion(typesDir)}`, definitions: defs },
    unresolved: [...new Set(unresolved)].sort(),
    missing: [...new Set(missing)].sort(),
  };
}

/** Compact JSON with object keys sorted at every level. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) out[k] = v[k];
      return out;
    }
    return v;
  });
}

/** The file content of workers/api/openapi-data.json. */
export function render(data: OpenAPIData): string {
  return `${stableStringify(data)}\n`;
}

function main(): void {
  const { data, unresolved, missing } = generate();
  const text = render(data);
  writeFileSync(OUTPUT, text);
  console.log(`wrote ${relative(ROOT, OUTPUT)}: ${Object.keys(data.definitions).length} definitions, ${text.length} bytes`);
  if (missing.length) console.log(`kinds not in ${data.source} (published without a schema): ${missing.join(", ")}`);
  if (unresolved.length) {
    console.log(`patch table entries without a field in ${data.source} (skipped): ${unresolved.join(", ")}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
