// The one flag parser (of the CLI, and of the agent's and controller's configs): each
// command declares a typed flag table, and gets its values typed from it, its `--help`
// generated from it, and numbers checked with plain messages. It prints nothing: the CLI's
// side (src/cli/flags.ts) reports help and usage errors. (node:util parseArgs had no
// numbers, read `--timeout -5` as an unknown flag and left every subcommand to word its own
// errors.)

export type FlagSpec =
  | { type: "string"; help: string; value?: string; default?: string; short?: string; choices?: readonly string[]; check?: (v: string) => string | null }
  | { type: "int"; help: string; value?: string; default?: number; min?: number; max?: number }
  | { type: "boolean"; help: string; short?: string }
  | { type: "list"; help: string; value?: string; short?: string };

export type FlagTable = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S extends { type: "boolean" }
  ? boolean
  : S extends { type: "list" }
    ? string[]
    : S extends { type: "int"; default: number }
      ? number
      : S extends { type: "int" }
        ? number | undefined
        : S extends { default: string }
          ? string
          : string | undefined;

export type FlagValues<T extends FlagTable> = { [K in keyof T]: ValueOf<T[K]> };

export interface CommandSpec<T extends FlagTable> {
  /** As typed, e.g. "mncni lab up". */
  name: string;
  /** What follows the name in the usage line, e.g. "<node> [<name>]". */
  args?: string;
  summary: string;
  flags: T;
  /** Names of the positional arguments it needs at least / takes at most. */
  positionals?: { min?: number; max?: number; names?: string[] };
  /** Arguments after `--` are passed through untouched (`lab exec`). */
  passthrough?: boolean;
  /** Extra paragraphs at the end of --help. */
  notes?: string;
}

export interface Parsed<T extends FlagTable> {
  flags: FlagValues<T>;
  positionals: string[];
  /** After `--` (passthrough commands only); undefined when there was no `--`. */
  rest?: string[];
}

/** A wrong command line: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super(message);
  }
}

export const HELP = Symbol("help");

function parseValue(cmd: string, flag: string, spec: FlagSpec, text: string): string | number {
  if (spec.type === "int") {
    if (!/^-?\d+$/.test(text.trim())) throw new UsageError(cmd, `cannot use --${flag} "${text}": must be a whole number`);
    const n = Number(text);
    const { min, max } = spec;
    if ((min !== undefined && n < min) || (max !== undefined && n > max)) {
      const range = max === undefined ? `at least ${min}` : min === undefined ? `at most ${max}` : `${min}..${max}`;
      throw new UsageError(cmd, `cannot use --${flag} "${text}": must be ${range}`);
    }
    return n;
  }
  if (spec.type === "string") {
    if (spec.choices && !spec.choices.includes(text)) throw new UsageError(cmd, `cannot use --${flag} "${text}": must be ${orList(spec.choices)}`);
    const why = spec.check?.(text);
    if (why) throw new UsageError(cmd, `cannot use --${flag} "${text}": ${why}`);
  }
  return text;
}

const orList = (xs: readonly string[]) => (xs.length < 2 ? xs.join("") : `${xs.slice(0, -1).join(", ")} or ${xs[xs.length - 1]}`);

/** Parses argv against the table; HELP when --help/-h was given (nothing else is checked then). */
export function parseFlags<T extends FlagTable>(spec: CommandSpec<T>, argv: string[]): Parsed<T> | typeof HELP {
  const cmd = spec.name;
  const dd = spec.passthrough ? argv.indexOf("--") : -1;
  const own = dd < 0 ? argv : argv.slice(0, dd);
  if (own.includes("--help") || own.includes("-h")) return HELP;
  const values: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(spec.flags)) values[k] = s.type === "boolean" ? false : s.type === "list" ? [] : "default" in s ? s.default : undefined;
  const shorts = new Map<string, string>(Object.entries(spec.flags).flatMap(([k, s]) => ("short" in s && s.short ? [[`-${s.short}`, k] as const] : [])));
  const positionals: string[] = [];
  for (let i = 0; i < own.length; i++) {
    const a = own[i]!;
    if (a === "--") {
      positionals.push(...own.slice(i + 1));
      break;
    }
    const isFlag = a.startsWith("--") || shorts.has(a);
    if (!isFlag) {
      if (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a)) throw new UsageError(cmd, `unknown flag "${a}"`);
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const key = shorts.get(a) ?? (eq > 0 ? a.slice(2, eq) : a.slice(2));
    const s = spec.flags[key];
    if (!s) throw new UsageError(cmd, `unknown flag "${eq > 0 ? a.slice(0, eq) : a}"`);
    if (s.type === "boolean") {
      if (eq > 0) throw new UsageError(cmd, `cannot use --${key} with a value: it is a switch`);
      values[key] = true;
      continue;
    }
    let text: string | undefined;
    if (eq > 0) text = a.slice(eq + 1);
    else {
      text = own[i + 1];
      // A negative number is a value (`--timeout -5`); another flag is not.
      if (text === undefined || (text.startsWith("-") && !/^-\d/.test(text))) throw new UsageError(cmd, `--${key} needs a value${s.value ? ` (${s.value})` : ""}`);
      i++;
    }
    const v = parseValue(cmd, key, s, text);
    if (s.type === "list") (values[key] as string[]).push(String(v));
    else values[key] = v;
  }
  const { min = 0, max = Infinity, names = [] } = spec.positionals ?? { max: 0 };
  if (positionals.length < min) throw new UsageError(cmd, `missing ${names[positionals.length] ?? "argument"}`);
  if (positionals.length > max) {
    const extra = positionals[max]!;
    throw new UsageError(cmd, max === 0 ? `unexpected argument "${extra}"` : `unexpected argument "${extra}" (after ${names.slice(0, max).join(" ")})`);
  }
  return { flags: values as FlagValues<T>, positionals, ...(dd >= 0 ? { rest: argv.slice(dd + 1) } : {}) };
}

function flagLine(name: string, s: FlagSpec): [string, string] {
  const short = "short" in s && s.short ? `-${s.short}, ` : "";
  const value = s.type === "boolean" ? "" : ` ${"value" in s && s.value ? s.value : s.type === "int" ? "N" : "VALUE"}`;
  const notes: string[] = [];
  if (s.type === "string" && s.choices) notes.push(orList(s.choices));
  if (s.type === "int" && (s.min !== undefined || s.max !== undefined)) notes.push(s.max === undefined ? `>= ${s.min}` : `${s.min ?? ""}..${s.max}`);
  if ("default" in s && s.default !== undefined) notes.push(`default ${s.default}`);
  if (s.type === "list") notes.push("repeatable");
  return [`  ${short}--${name}${value}`, `${s.help}${notes.length ? ` (${notes.join("; ")})` : ""}`];
}

/** `--help` of a command, generated from its table. */
export function helpText<T extends FlagTable>(spec: CommandSpec<T>): string {
  const rows = [...Object.entries(spec.flags).map(([k, s]) => flagLine(k, s)), ["  -h, --help", "this help"] as [string, string]];
  const w = Math.max(...rows.map(([l]) => l.length)) + 2;
  return [
    `Usage: ${spec.name}${spec.args ? ` ${spec.args}` : ""}${Object.keys(spec.flags).length ? " [flags]" : ""}`,
    "",
    spec.summary,
    "",
    ...rows.map(([l, r]) => `${l.padEnd(w)}${r}`),
    ...(spec.notes ? ["", spec.notes] : []),
  ].join("\n");
}
