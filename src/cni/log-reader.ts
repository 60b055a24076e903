// Reading the invocation log back (the writer is invocation-log.ts): whole, or followed as it
// grows (across the writer's rotation to <file>.1).
import { closeSync, openSync, readSync, statSync } from "node:fs";
import type { InvocationRecord } from "./invocation-log.ts";

function parseLines(text: string): InvocationRecord[] {
  const out: InvocationRecord[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as InvocationRecord);
    } catch {
      // a line cut by a full disk or a crash: skip it, the next ones are whole
    }
  }
  return out;
}

function readText(file: string, from = 0): { text: string; size: number } {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { text: "", size: 0 };
    throw new Error(`cannot read invocation log "${file}": ${(e as Error).message}`);
  }
  try {
    const size = statSync(file).size;
    const buf = Buffer.alloc(Math.max(0, size - from));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, from + got);
      if (n <= 0) break;
      got += n;
    }
    // Keep a partial last line for the next read.
    const text = buf.toString("utf8", 0, got);
    const cut = text.lastIndexOf("\n") + 1;
    return { text: text.slice(0, cut), size: from + Buffer.byteLength(text.slice(0, cut)) };
  } finally {
    closeSync(fd);
  }
}

/** Every record, the rotated copy's first. */
export function readInvocations(file: string): InvocationRecord[] {
  return [...parseLines(readText(file + ".1").text), ...parseLines(readText(file).text)];
}

/** Calls onRecords with what is appended from now on (or from the start); returns a stop function. */
export function followInvocations(file: string, onRecords: (r: InvocationRecord[]) => void, o: { fromStart?: boolean; intervalMs?: number } = {}): () => void {
  let offset = o.fromStart ? 0 : readText(file).size;
  const poll = () => {
    let size = 0;
    try {
      size = statSync(file).size;
    } catch {
      size = 0;
    }
    if (size < offset) offset = 0; // rotated: the new file starts over
    if (size === offset) return;
    const r = readText(file, offset);
    offset = r.size;
    const recs = parseLines(r.text);
    if (recs.length) onRecords(recs);
  };
  const t = setInterval(poll, o.intervalMs ?? 200);
  return () => clearInterval(t);
}
