// `mncni flows`: the policy verdict log of this node (the agent writes it, JSON lines; see
// docs/policy.md), as a table or as the JSON lines, optionally following new ones.
// `mncni lab flows` uses flowsOutput() on a lab node's file.
import { say, sayError } from "./output.ts";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import type { FlowRecord } from "../agent/policy/flows.ts";
import { parseOrExit, type CommandSpec, type FlagTable } from "./flags.ts";

const SPEC = {
  name: "mncni flows",
  summary: "show the policy verdict log of this node (denied flows, and accepted ones when the agent logs them)",
  flags: {
    file: { type: "string", value: "FILE", default: "/var/log/mncni/flows.log", help: "the agent's --flow-log" },
    follow: { type: "boolean", short: "f", help: "keep printing new lines as they come" },
    json: { type: "boolean", help: "print the JSON lines as written" },
  },
  positionals: { max: 0 },
} satisfies CommandSpec<FlagTable>;

const end = (e: FlowRecord["src"]) => `${e.namespace ? `${e.namespace}/${e.pod}` : e.ip}${e.port !== undefined ? `:${e.port}` : ""}`;

/** One record as a table row (or the JSON line). */
export function formatFlow(r: FlowRecord, json: boolean): string {
  if (json) return JSON.stringify(r);
  if (r.suppressed) return `${r.time}  (${r.suppressed} more lines left out by the rate cap)`;
  const p = r.policy;
  const who = p ? `${p.kind}${p.tier ? ` ${p.tier}` : ""} ${p.namespace ? `${p.namespace}/` : ""}${p.name} ${p.rule} (${p.direction})` : "unknown policy";
  return `${r.time}  ${r.verdict.toUpperCase().padEnd(6)} ${r.protocol.padEnd(5)} ${end(r.src).padEnd(28)} -> ${end(r.dst).padEnd(28)} ${who}`;
}

/** Formats every complete line of `text`; malformed lines are shown as they are. */
function flowsOutput(text: string, json: boolean): string[] {
  return text.split("\n").filter(Boolean).map((l) => {
    try {
      return formatFlow(JSON.parse(l) as FlowRecord, json);
    } catch {
      return l;
    }
  });
}

/** Prints the file, then (follow) what is appended to it, until interrupted. */
async function showFlows(file: string, o: { follow: boolean; json: boolean }): Promise<number> {
  if (!existsSync(file) && !o.follow) {
    sayError(`mncni flows: no verdict log at "${file}" yet (nothing was denied, or the agent writes elsewhere: --file)`);
    return 1;
  }
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
      for (const l of flowsOutput(text.slice(0, cut), o.json)) say(l);
    } finally {
      closeSync(fd);
    }
  };
  more();
  if (!o.follow) return 0;
  for (;;) {
    await Bun.sleep(250);
    more();
  }
}

export async function flowsCommand(argv: string[]): Promise<number> {
  const p = parseOrExit(SPEC, argv);
  if (typeof p === "number") return p;
  return showFlows(p.flags.file, { follow: p.flags.follow, json: p.flags.json });
}
