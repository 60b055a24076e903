// Where every command's output goes out: text through the one escape of control characters
// (src/base/text.ts: a pod name or message cannot drive the operator's terminal), JSON as
// JSON (which escapes them itself). No command prints with console.log directly.
import { humanText, json } from "./text/render.ts";
import { escapeControls } from "../base/text.ts";

/** Human text on stdout. */
export const say = (text: string): void => console.log(humanText(text));

/** Human text on stderr (never coloured). */
export const sayError = (text: string): void => console.error(escapeControls(text, { lines: true }));

/** A typed result as --json prints it (indented, bigints as strings, bytes as hex). */
export const sayJson = (v: unknown): void => console.log(json(v));

/** One JSON object per line (the streams of trace --json and flows --json). */
export const sayJsonLine = (v: unknown): void => console.log(JSON.stringify(v));
