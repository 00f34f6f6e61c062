// Label and field selectors, as kube-apiserver understands them.
//
// Label selectors follow k8s.io/apimachinery/pkg/labels (the string syntax with =, ==,
// !=, in, notin, exists and !) and metav1.LabelSelector objects (matchLabels +
// matchExpressions). Field selectors follow k8s.io/apimachinery/pkg/fields (=, ==, !=
// with backslash escaping in values). Error messages copy the upstream wording so
// clients see the same 400 BadRequest text they would get from a real cluster.
//
// Pure module: no runtime APIs, safe in workerd and Node.

import { badRequest } from "./errors.ts";
import { labelValueErrors, qualifiedNameErrors } from "./validation.ts";

// ---------------------------------------------------------------------------------------
// Label selectors

export interface LabelRequirement {
  key: string;
  op: "=" | "!=" | "in" | "notin" | "exists" | "!";
  values: string[];
}

/** AND of requirements; an empty selector matches everything. */
export type LabelSelector = LabelRequirement[];

type LabelOp = LabelRequirement["op"];

// Key and value checks are validation.ts's (k8s.io/apimachinery/pkg/util/validation).

/** Go's %q, near enough for the ASCII we print. */
function quote(v: unknown): string {
  return JSON.stringify(String(v));
}

/** Go's %#v of a []string. */
function goStrings(vals: string[]): string {
  return `[]string{${vals.map(quote).join(", ")}}`;
}

/** field.Invalid(path, value, detail).Error() */
function invalidMsg(path: string, value: string, detail: string): string {
  return `${path}: Invalid value: ${value}: ${detail}`;
}

/** errors.Aggregate.Error(): one message alone, several in brackets (deduplicated). */
function aggregate(msgs: string[]): string {
  const uniq = [...new Set(msgs)];
  return uniq.length === 1 ? uniq[0] : `[${uniq.join(", ")}]`;
}

function keyError(key: string, path: string): string | undefined {
  const errs = qualifiedNameErrors(key);
  return errs.length ? invalidMsg(path, quote(key), errs.join("; ")) : undefined;
}

/**
 * labels.NewRequirement: validates key, operator arity and values. Returns the error
 * message (upstream wording), or undefined when valid.
 */
function requirementError(key: string, op: LabelOp, vals: string[]): string | undefined {
  const errs: string[] = [];
  const ke = keyError(key, "key");
  if (ke) errs.push(ke);
  switch (op) {
    case "in":
    case "notin":
      if (vals.length === 0) {
        errs.push(invalidMsg("values", goStrings(vals), "for 'in', 'notin' operators, values set can't be empty"));
      }
      break;
    case "=":
    case "!=":
      if (vals.length !== 1) {
        errs.push(invalidMsg("values", goStrings(vals), "exact-match compatibility requires one single value"));
      }
      break;
    case "exists":
    case "!":
      if (vals.length !== 0) {
        errs.push(invalidMsg("values", goStrings(vals), "values set must be empty for exists and does not exist"));
      }
      break;
  }
  vals.forEach((v, i) => {
    const ve = typeof v === "string" ? labelValueErrors(v) : ["must be a string"];
    if (ve.length) errs.push(invalidMsg(`values[${i}][${key}]`, quote(v), ve.join("; ")));
  });
  return errs.length ? aggregate(errs) : undefined;
}

/** Sorted, deduplicated copy (sets.String.List()). */
function sortedSet(vals: string[]): string[] {
  return [...new Set(vals)].sort(compareStrings);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortByKey(reqs: LabelRequirement[]): LabelRequirement[] {
  // Array.prototype.sort is stable, like sort.Sort(ByKey) is in practice for our sizes.
  return reqs.sort((a, b) => compareStrings(a.key, b.key));
}

// --- lexer (labels.Lexer) ---------------------------------------------------------------

type Tok = "ident" | "in" | "notin" | "=" | "==" | "!=" | "!" | "(" | ")" | "," | ">" | "<" | "eos";

interface Token {
  tok: Tok;
  lit: string;
}

const WHITESPACE = new Set([" ", "\t", "\r", "\n"]);
const SPECIAL = new Set(["=", "!", "(", ")", ",", ">", "<"]);
const SYMBOLS = new Set<string>(["!", "!=", "(", ")", ",", "=", "==", ">", "<"]);

function lex(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  for (;;) {
    while (i < s.length && WHITESPACE.has(s[i])) i++;
    if (i >= s.length) {
      out.push({ tok: "eos", lit: "" });
      return out;
    }
    if (SPECIAL.has(s[i])) {
      // Longest match; every symbol is one or two characters and its first character
      // alone is also a symbol.
      let lit = s[i++];
      if (i < s.length && SYMBOLS.has(lit + s[i])) lit += s[i++];
      out.push({ tok: lit as Tok, lit });
      continue;
    }
    const start = i;
    while (i < s.length && !SPECIAL.has(s[i]) && !WHITESPACE.has(s[i])) i++;
    const lit = s.slice(start, i);
    out.push({ tok: lit === "in" || lit === "notin" ? lit : "ident", lit });
  }
}

// --- parser (labels.Parser) -------------------------------------------------------------

class ParseError extends Error {}

class LabelParser {
  private readonly items: Token[];
  private pos = 0;

  constructor(s: string) {
    this.items = lex(s);
  }

  /** In the Values context the keywords in/notin are plain identifiers. */
  private lookahead(values: boolean): Token {
    const t = this.items[this.pos];
    return values && (t.tok === "in" || t.tok === "notin") ? { tok: "ident", lit: t.lit } : t;
  }

  private consume(values: boolean): Token {
    const t = this.lookahead(values);
    this.pos++;
    return t;
  }

  parse(): LabelSelector {
    const reqs: LabelRequirement[] = [];
    for (;;) {
      const { tok, lit } = this.lookahead(true);
      switch (tok) {
        case "ident":
        case "!": {
          let r: LabelRequirement;
          try {
            r = this.parseRequirement();
          } catch (e) {
            if (e instanceof ParseError) throw new ParseError(`unable to parse requirement: ${e.message}`);
            throw e;
          }
          reqs.push(r);
          const t = this.consume(true);
          if (t.tok === "eos") return reqs;
          if (t.tok === ",") {
            const t2 = this.lookahead(true);
            if (t2.tok !== "ident" && t2.tok !== "!") {
              throw new ParseError(`found '${t2.lit}', expected: identifier after ','`);
            }
            continue;
          }
          throw new ParseError(`found '${t.lit}', expected: ',' or 'end of string'`);
        }
        case "eos":
          return reqs;
        default:
          throw new ParseError(`found '${lit}', expected: !, identifier, or 'end of string'`);
      }
    }
  }

  private parseRequirement(): LabelRequirement {
    const [key, inferred] = this.parseKeyAndInferOperator();
    if (inferred) return this.newRequirement(key, inferred, []);
    const op = this.parseOperator();
    const values = op === "in" || op === "notin" ? this.parseValues() : this.parseExactValue();
    return this.newRequirement(key, op, values);
  }

  private newRequirement(key: string, op: LabelOp, values: string[]): LabelRequirement {
    const vals = op === "in" || op === "notin" ? sortedSet(values) : values;
    const err = requirementError(key, op, vals);
    if (err) throw new ParseError(err);
    return { key, op, values: vals };
  }

  /** Returns the key, and the operator when it is unary (exists / !). */
  private parseKeyAndInferOperator(): [string, LabelOp | undefined] {
    let op: LabelOp | undefined;
    let t = this.consume(true);
    if (t.tok === "!") {
      op = "!";
      t = this.consume(true);
    }
    if (t.tok !== "ident") throw new ParseError(`found '${t.lit}', expected: identifier`);
    // The parser validates the key with a nil field path, hence upstream's "<nil>".
    const ke = keyError(t.lit, "<nil>");
    if (ke) throw new ParseError(ke);
    const next = this.lookahead(true).tok;
    if ((next === "eos" || next === ",") && op === undefined) op = "exists";
    return [t.lit, op];
  }

  private parseOperator(): LabelOp {
    const t = this.consume(false);
    switch (t.tok) {
      case "in":
        return "in";
      case "notin":
        return "notin";
      case "=":
      case "==":
        return "=";
      case "!=":
        return "!=";
      default:
        // Upstream also accepts the numeric comparisons > and < (gt, lt); they are not
        // part of this server's LabelRequirement model.
        throw new ParseError(`found '${t.lit}', expected: in, notin, =, ==, !=`);
    }
  }

  private parseValues(): string[] {
    const open = this.consume(true);
    if (open.tok !== "(") throw new ParseError(`found '${open.lit}' expected: '('`);
    const t = this.lookahead(true);
    switch (t.tok) {
      case "ident":
      case ",": {
        const vals = this.parseIdentifiersList();
        const close = this.consume(true);
        if (close.tok !== ")") throw new ParseError(`found '${close.lit}', expected: ')'`);
        return vals;
      }
      case ")":
        // Upstream reads "()" as the single empty value; this server rejects it as an
        // empty set. "(,)" still selects the empty value.
        throw new ParseError(invalidMsg("values", goStrings([]), "for 'in', 'notin' operators, values set can't be empty"));
      default:
        throw new ParseError(`found '${t.lit}', expected: ',', ')' or identifier`);
    }
  }

  /** A possibly empty list of comma-separated, possibly empty values. */
  private parseIdentifiersList(): string[] {
    const vals: string[] = [];
    for (;;) {
      const t = this.consume(true);
      switch (t.tok) {
        case "ident": {
          vals.push(t.lit);
          const t2 = this.lookahead(true);
          if (t2.tok === ",") continue;
          if (t2.tok === ")") return vals;
          throw new ParseError(`found '${t2.lit}', expected: ',' or ')'`);
        }
        case ",": {
          if (vals.length === 0) vals.push(""); // "(,"
          const t2 = this.lookahead(true);
          if (t2.tok === ")") {
            vals.push(""); // ",)"
            return vals;
          }
          if (t2.tok === ",") {
            this.consume(true);
            vals.push(""); // ",,"
          }
          continue;
        }
        default:
          throw new ParseError(`found '${t.lit}', expected: ',', or identifier`);
      }
    }
  }

  private parseExactValue(): string[] {
    const t = this.lookahead(true);
    if (t.tok === "eos" || t.tok === ",") return [""];
    this.consume(true);
    if (t.tok === "ident") return [t.lit];
    throw new ParseError(`found '${t.lit}', expected: identifier`);
  }
}

/**
 * Parses the label selector string syntax (k8s.io/apimachinery/pkg/labels): `a=b`, `a==b`,
 * `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated; whitespace tolerant;
 * keys validated as qualified names, values as label values. Requirements come back
 * sorted by key (stable), values of in/notin sorted and deduplicated. Throws badRequest
 * on syntax errors.
 */
export function parseLabelSelector(s: string | undefined | null): LabelSelector {
  if (s === undefined || s === null || s === "") return [];
  try {
    return sortByKey(new LabelParser(s).parse());
  } catch (e) {
    if (e instanceof ParseError) throw badRequest(e.message);
    throw e;
  }
}

function hasLabel(labels: Record<string, string>, key: string): boolean {
  return Object.hasOwn(labels, key);
}

/** labels.Requirement.Matches, ANDed. */
export function matchLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const ls = labels ?? {};
  for (const r of sel) {
    const has = hasLabel(ls, r.key);
    switch (r.op) {
      case "=":
      case "in":
        if (!has || !r.values.includes(ls[r.key])) return false;
        break;
      case "!=":
      case "notin":
        if (has && r.values.includes(ls[r.key])) return false;
        break;
      case "exists":
        if (!has) return false;
        break;
      case "!":
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

const EXPRESSION_OPS: Record<string, LabelOp> = {
  In: "in",
  NotIn: "notin",
  Exists: "exists",
  DoesNotExist: "!",
};

/**
 * Converts a metav1.LabelSelector object (matchLabels + matchExpressions with
 * In/NotIn/Exists/DoesNotExist) to requirements (metav1.LabelSelectorAsSelector). A
 * null/undefined selector object matches nothing (returns null); an empty object {}
 * matches everything ([]). Throws badRequest on an invalid operator, key or value.
 */
export function fromLabelSelectorObject(
  sel:
    | {
        matchLabels?: Record<string, string>;
        matchExpressions?: { key: string; operator: string; values?: string[] }[];
      }
    | null
    | undefined,
): LabelSelector | null {
  if (sel === null || sel === undefined) return null;
  const reqs: LabelRequirement[] = [];
  const add = (key: string, op: LabelOp, values: string[]): void => {
    const vals = op === "in" || op === "notin" ? sortedSet(values) : values;
    const err = requirementError(key, op, vals);
    if (err) throw badRequest(err);
    reqs.push({ key, op, values: vals });
  };
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) add(k, "=", [v]);
  for (const expr of sel.matchExpressions ?? []) {
    const op = Object.hasOwn(EXPRESSION_OPS, expr.operator) ? EXPRESSION_OPS[expr.operator] : undefined;
    if (!op) throw badRequest(`${quote(expr.operator)} is not a valid label selector operator`);
    add(expr.key ?? "", op, [...(expr.values ?? [])]);
  }
  return sortByKey(reqs);
}

/**
 * The string form (labels.Selector.String()): `a=b,c!=d,e in (x,y),f notin (z),g,!h`,
 * values of in/notin sorted. parseLabelSelector(labelSelectorToString(s)) gives s back for
 * any parsed selector. The empty selector is "".
 */
export function labelSelectorToString(sel: LabelSelector): string {
  return sel
    .map((r) => {
      switch (r.op) {
        case "exists":
          return r.key;
        case "!":
          return `!${r.key}`;
        case "=":
          return `${r.key}=${r.values[0] ?? ""}`;
        case "!=":
          return `${r.key}!=${r.values[0] ?? ""}`;
        case "in":
        case "notin": {
          const vals = [...r.values].sort(compareStrings);
          // A lone empty value is written "(,)": upstream would write "()", which
          // parseLabelSelector rejects as an empty set.
          const list = vals.length === 1 && vals[0] === "" ? "," : vals.join(",");
          return `${r.key} ${r.op} (${list})`;
        }
        default:
          return "";
      }
    })
    .join(",");
}

// ---------------------------------------------------------------------------------------
// Field selectors

export interface FieldRequirement {
  field: string;
  op: "=" | "!=";
  value: string;
}

export type FieldSelector = FieldRequirement[];

/** fields.splitTerms: split on commas not preceded by a backslash. */
function splitTerms(s: string): string[] {
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inSlash) inSlash = false;
    else if (c === "\\") inSlash = true;
    else if (c === ",") {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

/** fields.splitTerm: the first operator wins, "!=" and "==" before "=". */
function splitTerm(term: string): { lhs: string; op: "=" | "!="; rhs: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    const rest = term.slice(i);
    if (rest.startsWith("!=")) return { lhs: term.slice(0, i), op: "!=", rhs: term.slice(i + 2) };
    if (rest.startsWith("==")) return { lhs: term.slice(0, i), op: "=", rhs: term.slice(i + 2) };
    if (rest.startsWith("=")) return { lhs: term.slice(0, i), op: "=", rhs: term.slice(i + 1) };
  }
  return undefined;
}

/** fields.UnescapeValue: `\\`, `\,` and `\=` are the only escapes; bare `,` `=` are errors. */
function unescapeValue(s: string): string {
  if (!/[\\,=]/.test(s)) return s;
  let out = "";
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c === "\\" || c === "," || c === "=") out += c;
      else throw badRequest(`invalid field selector: invalid escape sequence: \\${c}`);
      inSlash = false;
      continue;
    }
    if (c === "\\") inSlash = true;
    else if (c === "," || c === "=") throw badRequest(`invalid field selector: unescaped character in value: ${c}`);
    else out += c;
  }
  if (inSlash) throw badRequest("invalid field selector: invalid escape sequence: \\");
  return out;
}

/**
 * Parses `a=b,c!=d,e==f` (values may contain escaped `\,` `\=` `\\`). Empty terms are
 * skipped; no whitespace trimming (as upstream). Throws badRequest on syntax errors.
 */
export function parseFieldSelector(s: string | undefined | null): FieldSelector {
  if (s === undefined || s === null || s === "") return [];
  const out: FieldSelector = [];
  for (const part of splitTerms(s)) {
    if (part === "") continue;
    const t = splitTerm(part);
    if (!t) throw badRequest(`invalid selector: '${s}'; can't understand '${part}'`);
    out.push({ field: t.lhs, op: t.op, value: unescapeValue(t.rhs) });
  }
  return out;
}

const ALWAYS_ALLOWED = ["metadata.name", "metadata.namespace"];

/**
 * Throws badRequest(`"<field>" is not a known field selector: only "metadata.name",
 * "metadata.namespace", ...`) if a field is neither metadata.name, metadata.namespace nor
 * in `allowed` (ResourceInfo.fieldSelectors).
 */
export function checkFieldSelector(sel: FieldSelector, allowed: string[]): void {
  const known = [...new Set([...ALWAYS_ALLOWED, ...allowed])];
  for (const r of sel) {
    if (!known.includes(r.field)) {
      throw badRequest(`${quote(r.field)} is not a known field selector: only ${known.map(quote).join(", ")}`);
    }
  }
}

function scalar(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  return "";
}

function path(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj;
  for (const seg of dotted.split(".")) {
    if (cur === null || typeof cur !== "object" || !Object.hasOwn(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/**
 * Reads the value of a field selector field from an object: dotted path into the object,
 * with these special cases: spec.unschedulable -> "true"/"false" (missing = "false");
 * source (events) -> source.component; status.podIP -> status.podIPs[0].ip when podIPs is
 * set (as upstream), else status.podIP. Missing or non-scalar values -> "". Numbers and
 * booleans are stringified.
 */
export function fieldValue(obj: Record<string, any>, field: string): string {
  switch (field) {
    case "spec.unschedulable":
      return path(obj, field) === true ? "true" : "false";
    case "source":
      return scalar(path(obj, "source.component"));
    case "status.podIP": {
      const ips = path(obj, "status.podIPs");
      if (Array.isArray(ips) && ips.length > 0) return scalar(path(ips[0], "ip"));
      return scalar(path(obj, field));
    }
    default:
      return scalar(path(obj, field));
  }
}

export function matchFields(sel: FieldSelector, obj: Record<string, any>): boolean {
  for (const r of sel) {
    const v = fieldValue(obj, r.field);
    if (r.op === "=" ? v !== r.value : v === r.value) return false;
  }
  return true;
}

/**
 * If the selector pins a single value for field with "=", returns it (used to narrow
 * store reads, e.g. metadata.name or metadata.namespace). With several "=" terms on the
 * same field the first is returned (the selector still has to be matched in full).
 */
export function exactField(sel: FieldSelector, field: string): string | undefined {
  for (const r of sel) if (r.field === field && r.op === "=") return r.value;
  return undefined;
}
