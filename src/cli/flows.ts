// `mncni flows`: the policy verdict log of this node (the agent writes it, JSON lines; see
// docs/policy.md), as a table or as the JSON lines, optionally following new ones.
// Reading: src/obs/flows.ts; a record as a row: cli/text/flows.ts (`mncni lab flows` too).
import { say, sayError, sayJsonLine, sayRendered } from "./output.ts";
import { existsSync } from "node:fs";
import { followFlows } from "../obs/flows.ts";
import { formatFlow } from "./text/flows.ts";
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

/** Prints the file, then (follow) what is appended to it, until interrupted. */
async function showFlows(file: string, o: { follow: boolean; json: boolean }): Promise<number> {
  if (!existsSync(file) && !o.follow) {
    sayError(`mncni flows: no verdict log at "${file}" yet (nothing was denied, or the agent writes elsewhere: --file)`);
    return 1;
  }
  followFlows(file, (lines) => {
    // A malformed line is shown as it is (escaped, as all text).
    for (const l of lines) "record" in l ? (o.json ? sayJsonLine(l.record) : sayRendered(l.record, formatFlow)) : say(l.malformed);
  }, o);
  if (o.follow) await new Promise(() => {}); // until interrupted
  return 0;
}

export async function flowsCommand(argv: string[]): Promise<number> {
  const p = parseOrExit(SPEC, argv);
  if (typeof p === "number") return p;
  return showFlows(p.flags.file, { follow: p.flags.follow, json: p.flags.json });
}
