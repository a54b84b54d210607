/**
 * A stand-in for `helm template`, which is not installed on the project's machines: Go's text/template and
 * the Sprig functions the chart uses, evaluated as Helm evaluates them (missing map keys render empty, a
 * field of a missing value fails, `and`/`or` short-circuit, integer literals are Go ints), so that tests can
 * render charts/fedgate and read the manifests. Anything outside that subset (an unknown function, a
 * keyword such as `block`) fails loudly rather than rendering something Helm would not.
 */
import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { basename, join, posix } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";

type Dict = Record<string, unknown>;

interface FieldOperand {
  kind: "field";
  chain: string[];
}
interface VariableOperand {
  kind: "var";
  name: string;
  chain: string[];
}
interface LiteralOperand {
  kind: "lit";
  value: unknown;
}
interface IdentOperand {
  kind: "ident";
  name: string;
}
interface ParenOperand {
  kind: "paren";
  pipe: Pipeline;
  chain: string[];
}
type Operand = FieldOperand | VariableOperand | LiteralOperand | IdentOperand | ParenOperand;
interface Pipeline {
  decl?: { names: string[]; assign: boolean };
  cmds: Operand[][];
}
type TemplateNode =
  | { kind: "text"; text: string }
  | { kind: "action"; pipe: Pipeline }
  | { kind: "if" | "with"; pipe: Pipeline; then: TemplateNode[]; else: TemplateNode[] }
  | { kind: "range"; pipe: Pipeline; body: TemplateNode[]; else: TemplateNode[] }
  | { kind: "template"; name: string; pipe?: Pipeline };

const isDict = (v: unknown): v is Dict => typeof v === "object" && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------- scanning

type Item = { kind: "text"; text: string } | { kind: "action"; body: string; where: string };

/** Splits a template into text and actions, applying the `{{-` and `-}}` trim markers. */
function scan(src: string, file: string): Item[] {
  const items: Item[] = [];
  let i = 0;
  let trimNext = false;
  const where = (at: number): string => `${file}:${String(src.slice(0, at).split("\n").length)}`;
  for (;;) {
    const open = src.indexOf("{{", i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^\s+/, "");
    if (open < 0) {
      items.push({ kind: "text", text });
      return items;
    }
    let start = open + 2;
    if (src[start] === "-" && /\s/.test(src[start + 1] ?? "")) {
      text = text.replace(/\s+$/, "");
      start += 1;
    }
    items.push({ kind: "text", text });
    const close = actionEnd(src, start, where(open));
    const trimRight = src[close - 1] === "-" && /\s/.test(src[close - 2] ?? "");
    const body = src.slice(start, trimRight ? close - 1 : close);
    if (!body.trim().startsWith("/*")) items.push({ kind: "action", body, where: where(open) });
    trimNext = trimRight;
    i = close + 2;
  }
}

/** The index of the `}}` closing the action whose body starts at `from`; quoted strings and comments may hold braces. */
function actionEnd(src: string, from: number, where: string): number {
  let i = from;
  while (/\s/.test(src[i] ?? "")) i++;
  if (src.startsWith("/*", i)) {
    const end = src.indexOf("*/", i);
    if (end < 0) throw new Error(`${where}: unclosed comment`);
    i = end + 2;
  }
  for (; i < src.length; i++) {
    const c = src[i];
    if (c === "}" && src[i + 1] === "}") return i;
    if (c === '"' || c === "`" || c === "'") {
      for (i++; i < src.length && src[i] !== c; i++) if (c !== "`" && src[i] === "\\") i++;
    }
  }
  throw new Error(`${where}: unclosed action`);
}

// ---------------------------------------------------------------------------------------------- tokens

type Token =
  | { t: "(" | ")" | "|" | "," | ":=" | "="; spaced: boolean }
  | { t: "lit"; value: unknown; spaced: boolean }
  | { t: "field"; chain: string[]; spaced: boolean }
  | { t: "var"; name: string; chain: string[]; spaced: boolean }
  | { t: "ident"; name: string; spaced: boolean };

const chainOf = (text: string): string[] => text.split(".").slice(1);

function tokenize(body: string, where: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let spaced = true;
  while (i < body.length) {
    const rest = body.slice(i);
    const space = /^\s+/.exec(rest);
    if (space) {
      i += space[0].length;
      spaced = true;
      continue;
    }
    let m: RegExpExecArray | null;
    if ((m = /^(:=|[()|,=])/.exec(rest))) {
      tokens.push({ t: m[1] as ":=", spaced });
    } else if ((m = /^"(?:[^"\\]|\\.)*"/.exec(rest))) {
      tokens.push({ t: "lit", value: JSON.parse(m[0]) as string, spaced });
    } else if ((m = /^`[^`]*`/.exec(rest))) {
      tokens.push({ t: "lit", value: m[0].slice(1, -1), spaced });
    } else if ((m = /^-?\d+(\.\d+)?([eE][-+]?\d+)?/.exec(rest))) {
      const isInt = m[1] === undefined && m[2] === undefined;
      tokens.push({ t: "lit", value: isInt ? BigInt(m[0]) : Number(m[0]), spaced });
    } else if ((m = /^\$\w*((?:\.\w+)*)/.exec(rest))) {
      const name = m[0].slice(0, m[0].length - (m[1] ?? "").length);
      tokens.push({ t: "var", name, chain: chainOf(m[1] ?? ""), spaced });
    } else if ((m = /^(?:\.[A-Za-z_]\w*)+/.exec(rest)) || (m = /^\./.exec(rest))) {
      tokens.push({ t: "field", chain: m[0] === "." ? [] : chainOf(m[0]), spaced });
    } else if ((m = /^[A-Za-z_]\w*/.exec(rest))) {
      const literals: Dict = { true: true, false: false, nil: null };
      tokens.push(
        Object.hasOwn(literals, m[0])
          ? { t: "lit", value: literals[m[0]], spaced }
          : { t: "ident", name: m[0], spaced },
      );
    } else {
      throw new Error(`${where}: cannot read ${JSON.stringify(rest.slice(0, 20))}`);
    }
    i += m[0].length;
    spaced = false;
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------- parsing

class Parser {
  private pos = 0;
  readonly defines = new Map<string, TemplateNode[]>();

  constructor(
    private readonly items: Item[],
    private readonly funcs: ReadonlySet<string>,
  ) {}

  /** The whole file; `define` blocks go to `defines`. */
  parseFile(): TemplateNode[] {
    const { nodes, stop } = this.parseList();
    if (stop) throw new Error(`${stop.where}: unexpected {{${stop.word}}}`);
    return nodes;
  }

  private parseList(): {
    nodes: TemplateNode[];
    stop?: { word: "end" | "else"; tokens: Token[]; where: string };
  } {
    const nodes: TemplateNode[] = [];
    while (this.pos < this.items.length) {
      const item = this.items[this.pos++];
      if (item === undefined) break;
      if (item.kind === "text") {
        if (item.text !== "") nodes.push({ kind: "text", text: item.text });
        continue;
      }
      const tokens = tokenize(item.body, item.where);
      const first = tokens[0];
      const word = first?.t === "ident" ? first.name : "";
      if (word === "end" || word === "else")
        return { nodes, stop: { word, tokens: tokens.slice(1), where: item.where } };
      if (word === "if" || word === "with" || word === "range") {
        nodes.push(this.parseControl(word, tokens.slice(1), item.where));
      } else if (word === "define") {
        const name = tokens[1];
        if (name?.t !== "lit" || typeof name.value !== "string")
          throw new Error(`${item.where}: define needs a name`);
        const { nodes: body, stop } = this.parseList();
        if (stop?.word !== "end") throw new Error(`${item.where}: define ${name.value} has no end`);
        this.defines.set(name.value, body);
      } else if (word === "template") {
        const name = tokens[1];
        if (name?.t !== "lit" || typeof name.value !== "string")
          throw new Error(`${item.where}: template needs a name`);
        const rest = tokens.slice(2);
        nodes.push(
          rest.length === 0
            ? { kind: "template", name: name.value }
            : { kind: "template", name: name.value, pipe: this.parsePipeline(rest, item.where) },
        );
      } else if (["block", "break", "continue"].includes(word)) {
        throw new Error(`${item.where}: {{${word}}} is not supported by this renderer`);
      } else {
        nodes.push({ kind: "action", pipe: this.parsePipeline(tokens, item.where) });
      }
    }
    return { nodes };
  }

  /** if/with/range up to its end; `else if` and `else with` nest and share the end. */
  private parseControl(word: "if" | "with" | "range", tokens: Token[], where: string): TemplateNode {
    const pipe = this.parsePipeline(tokens, where);
    const { nodes: body, stop } = this.parseList();
    if (stop === undefined) throw new Error(`${where}: {{${word}}} has no end`);
    let otherwise: TemplateNode[] = [];
    if (stop.word === "else") {
      const chained = stop.tokens[0];
      if (chained?.t === "ident" && (chained.name === "if" || chained.name === "with")) {
        otherwise = [this.parseControl(chained.name, stop.tokens.slice(1), stop.where)];
      } else {
        const tail = this.parseList();
        if (tail.stop?.word !== "end") throw new Error(`${where}: {{else}} has no end`);
        otherwise = tail.nodes;
      }
    }
    return word === "range"
      ? { kind: "range", pipe, body, else: otherwise }
      : { kind: word, pipe, then: body, else: otherwise };
  }

  private parsePipeline(tokens: Token[], where: string): Pipeline {
    const reader = { tokens, pos: 0 };
    const pipe = this.readPipeline(reader, where);
    if (reader.pos < tokens.length) throw new Error(`${where}: unexpected ${tokens[reader.pos]?.t ?? ""}`);
    return pipe;
  }

  private readPipeline(r: { tokens: Token[]; pos: number }, where: string): Pipeline {
    const pipe: Pipeline = { cmds: [] };
    // Declarations: `$x :=`, `$x =`, `$k, $v :=`.
    const names: string[] = [];
    let look = r.pos;
    for (;;) {
      const t = r.tokens[look];
      if (t?.t !== "var" || t.chain.length > 0) break;
      names.push(t.name);
      const next = r.tokens[look + 1];
      if (next?.t === ",") {
        look += 2;
        continue;
      }
      if (next?.t === ":=" || next?.t === "=") {
        pipe.decl = { names, assign: next.t === "=" };
        r.pos = look + 2;
      }
      break;
    }
    let cmd: Operand[] = [];
    while (r.pos < r.tokens.length) {
      const t = r.tokens[r.pos];
      if (t === undefined || t.t === ")") break;
      r.pos++;
      if (t.t === "|") {
        if (cmd.length === 0) throw new Error(`${where}: empty command in pipeline`);
        pipe.cmds.push(cmd);
        cmd = [];
        continue;
      }
      if (t.t === "(") {
        const inner = this.readPipeline(r, where);
        if (r.tokens[r.pos]?.t !== ")") throw new Error(`${where}: unclosed (`);
        r.pos++;
        const after = r.tokens[r.pos];
        let chain: string[] = [];
        if (after?.t === "field" && !after.spaced && after.chain.length > 0) {
          chain = after.chain;
          r.pos++;
        }
        cmd.push({ kind: "paren", pipe: inner, chain });
      } else if (t.t === "lit") cmd.push({ kind: "lit", value: t.value });
      else if (t.t === "field") cmd.push({ kind: "field", chain: t.chain });
      else if (t.t === "var") cmd.push({ kind: "var", name: t.name, chain: t.chain });
      else if (t.t === "ident") {
        if (!this.funcs.has(t.name)) throw new Error(`${where}: function "${t.name}" not defined`);
        cmd.push({ kind: "ident", name: t.name });
      } else throw new Error(`${where}: unexpected ${t.t}`);
    }
    if (cmd.length > 0) pipe.cmds.push(cmd);
    if (pipe.cmds.length === 0) throw new Error(`${where}: missing value`);
    return pipe;
  }
}

// ---------------------------------------------------------------------------------------------- values

/** Go's truth: false, 0, nil and empty strings, lists and maps are false. */
function truth(v: unknown): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (typeof v === "bigint") return v !== 0n;
  if (typeof v === "string" || Array.isArray(v)) return v.length > 0;
  if (isDict(v)) return Object.keys(v).length > 0;
  return true;
}

/** Go's %v for float64, as Helm prints numbers from values files: 1e+06, not 1000000. */
function formatFloat(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? "+Inf" : n < 0 ? "-Inf" : "NaN";
  const [mantissa = "", exponent = "0"] = n.toExponential().split("e");
  const exp = Number(exponent);
  if (exp >= -4 && exp < 6) return String(n);
  return `${mantissa}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
}

/** fmt's %v. */
function show(v: unknown): string {
  if (v === null || v === undefined) return "<no value>";
  if (typeof v === "string") return v;
  if (typeof v === "number") return formatFloat(v);
  if (typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(show).join(" ")}]`;
  if (isDict(v))
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${show(v[k])}`)
      .join(" ")}]`;
  return typeof v === "function" ? "<func>" : "<value>";
}

/** Sprig's strval / toString: nil is the empty string. */
const strval = (v: unknown): string => (v === null || v === undefined ? "" : show(v));

const toInt = (v: unknown): bigint => {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") return BigInt(Math.trunc(v));
  if (typeof v === "boolean") return v ? 1n : 0n;
  if (typeof v === "string" && /^[-+]?\d+$/.test(v.trim())) return BigInt(v.trim());
  return 0n;
};

function kindOf(v: unknown): string {
  if (v === null || v === undefined) return "invalid";
  if (typeof v === "bigint") return "int";
  if (typeof v === "number") return "float64";
  if (Array.isArray(v)) return "slice";
  if (isDict(v)) return "map";
  return typeof v;
}

/** text/template's comparisons: only values of the same basic kind compare. */
function compare(a: unknown, b: unknown): number {
  const ka = kindOf(a);
  if (ka !== kindOf(b) || !["int", "float64", "string", "boolean"].includes(ka))
    throw new Error(`incompatible types for comparison: ${kindOf(a)} and ${kindOf(b)}`);
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

function printf(format: string, args: unknown[]): string {
  let n = 0;
  return format.replace(/%([-+# 0]*\d*(?:\.\d+)?)([%a-zA-Z])/g, (_all, _flags: string, verb: string) => {
    if (verb === "%") return "%";
    const arg = args[n++];
    switch (verb) {
      case "s":
      case "v":
        return show(arg);
      case "d":
        return String(toInt(arg));
      case "q":
        return JSON.stringify(strval(arg));
      default:
        throw new Error(`printf: verb %${verb} is not supported by this renderer`);
    }
  });
}

/** mergo.Merge as Sprig's merge uses it: keys the destination lacks are filled in, maps merge deeply. */
function mergeInto(dst: Dict, src: Dict): Dict {
  for (const [key, value] of Object.entries(src)) {
    const have = dst[key];
    if (isDict(have) && isDict(value)) mergeInto(have, value);
    else if (have === undefined || have === null) dst[key] = structuredClone(value);
  }
  return dst;
}

const nindentOf = (n: unknown, s: unknown): string =>
  strval(s)
    .split("\n")
    .map((line) => " ".repeat(Number(toInt(n))) + line)
    .join("\n");

type Func = (...args: unknown[]) => unknown;

const sprig: Record<string, Func> = {
  // text/template built-ins
  not: (v) => !truth(v),
  eq: (a, ...bs) => bs.some((b) => compare(a, b) === 0),
  ne: (a, b) => compare(a, b) !== 0,
  lt: (a, b) => compare(a, b) < 0,
  le: (a, b) => compare(a, b) <= 0,
  gt: (a, b) => compare(a, b) > 0,
  ge: (a, b) => compare(a, b) >= 0,
  len: (v) =>
    BigInt(Array.isArray(v) || typeof v === "string" ? v.length : isDict(v) ? Object.keys(v).length : 0),
  index: (coll, ...keys) =>
    keys.reduce((v, k) => {
      if (Array.isArray(v)) {
        const at = Number(toInt(k));
        if (at < 0 || at >= v.length) throw new Error(`index out of range: ${String(at)}`);
        return v[at];
      }
      if (isDict(v)) return v[strval(k)];
      throw new Error(`can't index item of type ${kindOf(v)}`);
    }, coll),
  print: (...args) =>
    args
      .map((a, i) => (i > 0 && typeof a !== "string" && typeof args[i - 1] !== "string" ? " " : "") + show(a))
      .join(""),
  printf: (format, ...args) => printf(strval(format), args),
  // Sprig
  default: (dflt, ...given) => (given.length > 0 && truth(given[0]) ? given[0] : dflt),
  empty: (v) => !truth(v),
  coalesce: (...vs) => vs.find(truth) ?? null,
  ternary: (a, b, cond) => (truth(cond) ? a : b),
  required: (message, v) => {
    if (v === null || v === undefined || v === "") throw new Error(strval(message));
    return v;
  },
  fail: (message) => {
    throw new Error(`execution error: ${strval(message)}`);
  },
  toString: strval,
  int: toInt,
  add: (...vs) => vs.reduce<bigint>((sum, v) => sum + toInt(v), 0n),
  sub: (a, b) => toInt(a) - toInt(b),
  int64: toInt,
  quote: (...vs) =>
    vs
      .filter((v) => v !== null && v !== undefined)
      .map((v) => JSON.stringify(strval(v)))
      .join(" "),
  squote: (...vs) =>
    vs
      .filter((v) => v !== null && v !== undefined)
      .map((v) => `'${strval(v)}'`)
      .join(" "),
  upper: (s) => strval(s).toUpperCase(),
  lower: (s) => strval(s).toLowerCase(),
  trim: (s) => strval(s).trim(),
  trimSuffix: (suffix, s) => {
    const str = strval(s);
    const end = strval(suffix);
    return end !== "" && str.endsWith(end) ? str.slice(0, -end.length) : str;
  },
  trimPrefix: (prefix, s) => {
    const str = strval(s);
    return str.startsWith(strval(prefix)) ? str.slice(strval(prefix).length) : str;
  },
  trunc: (n, s) => {
    const c = Number(toInt(n));
    const str = strval(s);
    if (c < 0 && str.length + c > 0) return str.slice(str.length + c);
    return c >= 0 && str.length > c ? str.slice(0, c) : str;
  },
  contains: (substr, s) => strval(s).includes(strval(substr)),
  hasPrefix: (prefix, s) => strval(s).startsWith(strval(prefix)),
  hasSuffix: (suffix, s) => strval(s).endsWith(strval(suffix)),
  replace: (from, to, s) => strval(s).split(strval(from)).join(strval(to)),
  join: (sep, list) => (Array.isArray(list) ? list.map(strval).join(strval(sep)) : strval(list)),
  indent: nindentOf,
  nindent: (n, s) => `\n${nindentOf(n, s)}`,
  b64enc: (s) => Buffer.from(strval(s)).toString("base64"),
  b64dec: (s) => Buffer.from(strval(s), "base64").toString(),
  sha256sum: (s) => createHash("sha256").update(strval(s)).digest("hex"),
  randAlphaNum: (n) => {
    const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    return [...randomBytes(Number(toInt(n)))].map((b) => chars[b % chars.length]).join("");
  },
  list: (...vs) => vs,
  append: (list, v) => [...(Array.isArray(list) ? (list as unknown[]) : []), v],
  base: (p) => posix.basename(strval(p)) || ".",
  dir: (p) => posix.dirname(strval(p)),
  has: (needle, list) => Array.isArray(list) && list.some((v) => v === needle),
  dict: (...kv) => {
    const out: Dict = {};
    for (let i = 0; i < kv.length; i += 2) out[strval(kv[i])] = kv[i + 1] ?? null;
    return out;
  },
  get: (d, key) => (isDict(d) && Object.hasOwn(d, strval(key)) ? d[strval(key)] : ""),
  set: (d, key, value) => {
    if (!isDict(d)) throw new Error("set: not a map");
    d[strval(key)] = value;
    return d;
  },
  unset: (d, key) => {
    if (!isDict(d)) throw new Error("unset: not a map");
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- Sprig's unset is a delete by key
    delete d[strval(key)];
    return d;
  },
  hasKey: (d, key) => isDict(d) && Object.hasOwn(d, strval(key)),
  keys: (...ds) => ds.flatMap((d) => (isDict(d) ? Object.keys(d) : [])),
  sortAlpha: (list) => (Array.isArray(list) ? list.map(strval).sort() : [strval(list)]),
  dig: (...args) => {
    const d = args.at(-1);
    const dflt = args.at(-2);
    let v: unknown = d;
    for (const key of args.slice(0, -2)) {
      if (!isDict(v) || !Object.hasOwn(v, strval(key))) return dflt;
      v = v[strval(key)];
    }
    return v;
  },
  merge: (dst, ...srcs) => {
    if (!isDict(dst)) throw new Error("merge: destination is not a map");
    for (const src of srcs) if (isDict(src)) mergeInto(dst, src);
    return dst;
  },
  deepCopy: (v) => structuredClone(v),
  kindOf,
  kindIs: (kind, v) => kindOf(v) === strval(kind),
  toYaml: (v) => toYaml(v),
  toJson: (v) => JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? Number(x) : x)),
  fromYaml: (s) => (parse(strval(s)) as unknown) ?? {},
  // Helm renders without a cluster in `helm template`: lookup finds nothing.
  lookup: () => ({}),
};

/** Helm's toYaml: keys sorted, no trailing newline. */
function toYaml(v: unknown): string {
  return stringify(v ?? null, { sortMapEntries: true, indentSeq: false, lineWidth: 0 }).replace(/\n$/, "");
}

// ---------------------------------------------------------------------------------------------- execution

type Vars = [string, unknown][];

class Executor {
  constructor(private readonly templates: ReadonlyMap<string, TemplateNode[]>) {}

  execute(name: string, data: unknown): string {
    const nodes = this.templates.get(name);
    if (nodes === undefined) throw new Error(`no template "${name}"`);
    try {
      return this.run(nodes, data, [["$", data]]);
    } catch (error) {
      if (error instanceof Error && !error.message.startsWith("template: "))
        error.message = `template: ${name}: ${error.message}`;
      throw error;
    }
  }

  private run(nodes: TemplateNode[], dot: unknown, vars: Vars): string {
    let out = "";
    for (const node of nodes) {
      switch (node.kind) {
        case "text":
          out += node.text;
          break;
        case "action": {
          const value = this.pipeline(node.pipe, dot, vars);
          if (node.pipe.decl === undefined) out += show(value);
          break;
        }
        case "if":
        case "with": {
          const mark = vars.length;
          const value = this.pipeline(node.pipe, dot, vars);
          if (truth(value)) out += this.run(node.then, node.kind === "with" ? value : dot, vars);
          else out += this.run(node.else, dot, vars);
          vars.length = mark;
          break;
        }
        case "range": {
          const mark = vars.length;
          const value = this.pipeline({ cmds: node.pipe.cmds }, dot, vars);
          const entries: [unknown, unknown][] = Array.isArray(value)
            ? value.map((v, i) => [BigInt(i), v])
            : isDict(value)
              ? Object.keys(value)
                  .sort()
                  .map((k) => [k, value[k]])
              : value === null || value === undefined
                ? []
                : typeof value === "bigint"
                  ? Array.from({ length: Number(value) }, (_v, i) => [BigInt(i), BigInt(i)])
                  : (() => {
                      throw new Error(`range can't iterate over ${show(value)}`);
                    })();
          const names = node.pipe.decl?.names ?? [];
          for (const [key, element] of entries) {
            const scope: Vars = [...vars];
            if (names.length === 1) scope.push([names[0] ?? "", element]);
            if (names.length === 2) scope.push([names[0] ?? "", key], [names[1] ?? "", element]);
            out += this.run(node.body, element, scope);
          }
          if (entries.length === 0) out += this.run(node.else, dot, vars);
          vars.length = mark;
          break;
        }
        case "template":
          out += this.execute(node.name, node.pipe ? this.pipeline(node.pipe, dot, vars) : null);
          break;
      }
    }
    return out;
  }

  private pipeline(pipe: Pipeline, dot: unknown, vars: Vars): unknown {
    let value: unknown;
    let piped = false;
    for (const cmd of pipe.cmds) {
      value = this.command(cmd, dot, vars, piped ? [value] : []);
      piped = true;
    }
    if (pipe.decl) {
      for (const name of pipe.decl.names) {
        if (pipe.decl.assign) {
          const slot = vars.findLast(([n]) => n === name);
          if (slot === undefined) throw new Error(`undefined variable: ${name}`);
          slot[1] = value;
        } else vars.push([name, value]);
      }
    }
    return value;
  }

  private command(cmd: Operand[], dot: unknown, vars: Vars, piped: unknown[]): unknown {
    const [head, ...rest] = cmd;
    if (head?.kind === "ident") return this.call(head.name, rest, dot, vars, piped);
    if (rest.length > 0 || piped.length > 0 || head === undefined)
      throw new Error("can't give argument to non-function");
    return this.operand(head, dot, vars);
  }

  private call(name: string, operands: Operand[], dot: unknown, vars: Vars, piped: unknown[]): unknown {
    const arg = (o: Operand): unknown => this.operand(o, dot, vars);
    if (name === "and" || name === "or") {
      const all = [...operands.map((o) => () => arg(o)), ...piped.map((p) => () => p)];
      let value: unknown;
      for (const next of all) {
        value = next();
        if (truth(value) !== (name === "and")) return value;
      }
      return value;
    }
    const args = [...operands.map(arg), ...piped];
    if (name === "include") return this.execute(strval(args[0]), args[1] ?? null);
    const fn = sprig[name];
    if (fn === undefined) throw new Error(`function "${name}" not defined`);
    return fn(...args);
  }

  private operand(o: Operand, dot: unknown, vars: Vars): unknown {
    switch (o.kind) {
      case "lit":
        return o.value;
      case "ident":
        return this.call(o.name, [], dot, vars, []);
      case "field":
        return fieldChain(dot, o.chain);
      case "var": {
        const slot = vars.findLast(([n]) => n === o.name);
        if (slot === undefined) throw new Error(`undefined variable: ${o.name}`);
        return fieldChain(slot[1], o.chain);
      }
      case "paren":
        return fieldChain(this.pipeline(o.pipe, dot, vars), o.chain);
    }
  }
}

/** `.a.b` on maps: a missing key is nil (Helm's missingkey=zero), a field of nil fails as in Go. */
function fieldChain(value: unknown, chain: string[]): unknown {
  let v = value;
  for (const name of chain) {
    if (v === null || v === undefined) throw new Error(`nil pointer evaluating interface {}.${name}`);
    if (!isDict(v)) throw new Error(`can't evaluate field ${name} in type ${kindOf(v)}`);
    v = Object.hasOwn(v, name) ? v[name] : null;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------- the chart

/** Helm's coalescing of user values over the chart's: maps merge, anything else replaces, null deletes. */
export function coalesceValues(defaults: Dict, overrides: Dict): Dict {
  const out = structuredClone(defaults);
  for (const [key, value] of Object.entries(overrides)) {
    const have = out[key];
    if (value === null) {
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- Helm deletes a key set to null
      delete out[key];
    } else if (isDict(have) && isDict(value)) out[key] = coalesceValues(have, value);
    else out[key] = structuredClone(value);
  }
  return out;
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** User values (as `-f`), coalesced over the chart's values.yaml. */
  values?: Dict;
}

export interface RenderedChart {
  /** The values the templates saw. */
  values: Dict;
  /** Rendered text by template path (fedgate/templates/...), partials and NOTES.txt left out. */
  files: Map<string, string>;
  /** Every non-empty YAML document of the rendered .yaml/.yml files. */
  manifests: Dict[];
  notes: string;
}

/** `helm template RELEASE CHART -n NAMESPACE -f VALUES`, without Helm. */
export async function helmTemplate(chartDir: string, options: RenderOptions = {}): Promise<RenderedChart> {
  const chart = parse(await readFile(join(chartDir, "Chart.yaml"), "utf8")) as Dict;
  const chartName = strval(chart["name"]);
  const defaults = (parse(await readFile(join(chartDir, "values.yaml"), "utf8")) ?? {}) as Dict;
  const values = coalesceValues(defaults, options.values ?? {});
  const basePath = `${chartName}/templates`;

  const templates = new Map<string, TemplateNode[]>();
  const names: string[] = [];
  const funcs = new Set([...Object.keys(sprig), "and", "or", "include"]);
  for (const file of (await readdir(join(chartDir, "templates"))).sort()) {
    const name = `${basePath}/${file}`;
    const parser = new Parser(scan(await readFile(join(chartDir, "templates", file), "utf8"), name), funcs);
    templates.set(name, parser.parseFile());
    for (const [define, body] of parser.defines) templates.set(define, body);
    names.push(name);
  }

  const executor = new Executor(templates);
  const context = (name: string): Dict => ({
    Values: values,
    Release: {
      Name: options.release ?? "fedgate",
      Namespace: options.namespace ?? "default",
      Service: "Helm",
      IsInstall: true,
      IsUpgrade: false,
      Revision: 1n,
    },
    Chart: { Name: chartName, Version: strval(chart["version"]), AppVersion: strval(chart["appVersion"]) },
    Template: { Name: name, BasePath: basePath },
    Capabilities: { KubeVersion: { Version: "v1.31.0", Major: "1", Minor: "31" } },
  });
  const render = (name: string): string => executor.execute(name, context(name)).replaceAll("<no value>", "");

  const files = new Map<string, string>();
  const manifests: Dict[] = [];
  let notes = "";
  for (const name of names) {
    const file = basename(name);
    if (file.startsWith("_")) continue;
    if (file === "NOTES.txt") {
      notes = render(name);
      continue;
    }
    const text = render(name);
    files.set(name, text);
    // Like Helm, only YAML files become manifests.
    if (!/\.ya?ml$/.test(file)) continue;
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) throw new Error(`${name}: ${doc.errors.map((e) => e.message).join("; ")}`);
      const object: unknown = doc.toJS();
      if (object === null || object === undefined) continue;
      if (!isDict(object)) throw new Error(`${name}: a document is not a mapping`);
      manifests.push(object);
    }
  }
  return { values, files, manifests, notes };
}
