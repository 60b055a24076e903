// Where every command's output goes out. Nothing read from data reaches the terminal as a
// control character (src/base/text.ts: a pod name or message cannot clear the screen, move
// the cursor, rewrite a line, or change colours):
// - a result is rendered from a copy whose every string is escaped first (sayRendered), so
//   the only escape sequences left in the text are the renderer's own colours, which pass;
// - any other text (say, sayError) has every control character escaped, colours included;
// - JSON is JSON (JSON.stringify escapes control characters itself).
// No command prints with console.log directly.
import { escapeControls } from "../base/text.ts";
import { json, useColour } from "./text/render.ts";

/** A copy of a result with every string (and key) escaped as one line: data, not terminal commands. */
function escapedData<T>(v: T): T {
  if (typeof v === "string") return escapeControls(v) as T;
  if (Array.isArray(v)) return v.map(escapedData) as T;
  if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [escapeControls(k), escapedData(x)])) as T;
  }
  return v;
}

/** A typed result as text: rendered from its escaped copy, the renderer's colours kept on a terminal. */
export const sayRendered = <T>(result: T, render: (r: T) => string): void =>
  console.log(escapeControls(render(escapedData(result)), { lines: true, colour: useColour() }));

/** Text on stdout: a message, or a line from a file (every control character escaped). */
export const say = (text: string): void => console.log(escapeControls(text, { lines: true }));

/** Text on stderr (never coloured). */
export const sayError = (text: string): void => console.error(escapeControls(text, { lines: true }));

/** A typed result as --json prints it (indented, bigints as strings, bytes as hex). */
export const sayJson = (v: unknown): void => console.log(json(v));

/** One JSON object per line (the streams of trace --json and flows --json). */
export const sayJsonLine = (v: unknown): void => console.log(JSON.stringify(v));
