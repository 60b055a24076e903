// Text for a person's terminal. What the insight commands print comes from data others
// wrote (a pod name from CNI_ARGS, an error message, a label, a file name): a control
// character in it would reach the terminal as a command (clear the screen, move the cursor,
// rewrite a line, reorder text with bidi controls). Every human output goes through
// escapeControls, which shows such characters as escapes (\x1b, \u{202e}) instead.
// JSON output needs nothing: JSON.stringify escapes control characters itself.

/** C0 and C1 controls, DEL, and the bidi controls that reorder what follows them. */
const CONTROL = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
/** The colour codes the renderers add themselves (src/cli/text/render.ts paint()), and nothing else. */
const OWN_SGR = /\x1b\[(?:0|1|2|31|32|33)m/;
const SCAN_SGR = new RegExp(`${OWN_SGR.source}|${CONTROL.source}`, "g");
const SCAN = new RegExp(CONTROL.source, "g");

const escaped = (c: string) => {
  const n = c.codePointAt(0)!;
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u{${n.toString(16)}}`;
};

export interface EscapeOptions {
  /** Line breaks and tabs pass (a whole rendered text); false: one line (a table cell, a field). */
  lines?: boolean;
  /** The renderers' own colour codes pass (colour is on); every other escape sequence is escaped. */
  colour?: boolean;
}

/** s with every control character escaped, except what the options let through. */
export function escapeControls(s: string, o: EscapeOptions = {}): string {
  return s.replace(o.colour ? SCAN_SGR : SCAN, (m) => {
    if (m.length > 1) return m; // one of the renderers' colour codes
    if (o.lines && (m === "\n" || m === "\t")) return m;
    return escaped(m);
  });
}
