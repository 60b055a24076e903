// The policy verdict log the agent writes (JSON lines, src/agent/policy/flows.ts; see
// docs/policy.md), read back as records: whole, or followed as it grows (and is rotated).
// `mncni flows` and `mncni lab flows` render them.
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import type { FlowRecord } from "../agent/policy/flows.ts";

export type { FlowRecord };

/** One line of the log: a record, or the text of a line that is not one (shown as it is). */
export type FlowLine = { record: FlowRecord } | { malformed: string };

function parseFlowLines(text: string): FlowLine[] {
  return text.split("\n").filter(Boolean).map((l) => {
    try {
      return { record: JSON.parse(l) as FlowRecord };
    } catch {
      return { malformed: l };
    }
  });
}

/**
 * Calls onLines with every complete line of `file` from its start, then (follow) with what is
 * appended, every 250 ms; returns a stop function. A file that shrank was rotated: read anew.
 */
export function followFlows(file: string, onLines: (lines: FlowLine[]) => void, o: { follow: boolean }): () => void {
  let pos = 0;
  let rest = "";
  const more = () => {
    if (!existsSync(file)) return;
    const size = statSync(file).size;
    if (size < pos) pos = 0; // rotated
    if (size === pos) return;
    const fd = openSync(file, "r");
    try {
      const buf = Buffer.alloc(size - pos);
      readSync(fd, buf, 0, buf.length, pos);
      pos = size;
      const text = rest + buf.toString("utf8");
      const cut = text.lastIndexOf("\n") + 1;
      rest = text.slice(cut);
      const lines = parseFlowLines(text.slice(0, cut));
      if (lines.length) onLines(lines);
    } finally {
      closeSync(fd);
    }
  };
  more();
  if (!o.follow) return () => {};
  const t = setInterval(more, 250);
  return () => clearInterval(t);
}

/** Every record of the file (none when it does not exist); a line cut by a crash is skipped. */
export function readFlows(file: string): FlowRecord[] {
  const out: FlowRecord[] = [];
  followFlows(file, (lines) => out.push(...lines.flatMap((l) => ("record" in l ? [l.record] : []))), { follow: false });
  return out;
}
