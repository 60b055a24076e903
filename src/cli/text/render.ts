// Terminal output of the insight commands: aligned tables, and colour only on a TTY when
// NO_COLOR is not set (https://no-color.org), so piped output stays plain text. Control
// characters in data never reach the terminal: cli/output.ts renders results from escaped
// copies (src/base/text.ts), and cells and fields are kept to one line here as well.
import { escapeControls } from "../../base/text.ts";

export const useColour = () => process.stdout.isTTY === true && !process.env.NO_COLOR;

/** One value on one line (a pod name, a message): a line break in it is escaped too. */
export const oneLine = (s: string) => escapeControls(s, { colour: useColour() });

const paint = (code: number) => (s: string) => (useColour() ? `\x1b[${code}m${s}\x1b[0m` : s);
export const red = paint(31);
export const green = paint(32);
export const yellow = paint(33);
export const dim = paint(2);
export const bold = paint(1);

// Escape sequences take no columns: pad by the visible length.
const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "").length;

/** Columns padded to their widest cell, two spaces apart. */
export function table(header: string[], rows: string[][]): string {
  rows = rows.map((r) => r.map(oneLine));
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ""))));
  const fmt = (r: string[]) => r.map((c, i) => c + " ".repeat(Math.max(0, w[i]! - visible(c)))).join("  ").trimEnd();
  return [bold(fmt(header)), ...rows.map(fmt)].join("\n");
}

/** "key: value" lines with the keys aligned. */
export function fields(rows: [string, string][], indent = "  "): string {
  const w = Math.max(0, ...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, v]) => `${indent}${`${k}:`.padEnd(w + 1)}${oneLine(v)}`).join("\n");
}

export const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x instanceof Uint8Array ? Buffer.from(x).toString("hex") : x), 2);
