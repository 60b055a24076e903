// `mncni ipam show`: the IPAM's ranges, use and leaks on this node (src/obs/ipam-show.ts).
import { sayJson, sayRendered } from "./output.ts";
import { collectAttachments } from "../obs/attachments.ts";
import { ipamReport } from "../obs/ipam-show.ts";
import { formatIpamReport } from "./text/ipam.ts";
import { parseOrExit, type CommandSpec } from "./flags.ts";
import { NODE_FLAGS, viewFromFlags } from "./node-flags.ts";
import type { NodeView } from "../cni/node-view.ts";
import { dispatch, type Group } from "./subcommands.ts";

const SHOW = {
  name: "mncni ipam show",
  summary: "Per range: addresses used and free; reservations without a live attachment (leaks) and attachments without a reservation. Exit 1 when there are any.",
  flags: NODE_FLAGS,
} satisfies CommandSpec<typeof NODE_FLAGS>;

async function cmdShow(argv: string[]): Promise<number> {
  const p = parseOrExit(SHOW, argv);
  if (typeof p === "number") return p;
  return renderIpamReport(viewFromFlags(p.flags), p.flags.json);
}

/** The report of a node's IPAM, printed; exit 1 when it has leaks, unreserved attachments or problems. */
export function renderIpamReport(v: NodeView, json: boolean): number {
  const r = ipamReport(v, collectAttachments(v));
  if (json) sayJson(r);
  else sayRendered(r, formatIpamReport);
  return r.leaks.length || r.unreserved.length || r.problems.length ? 1 : 0;
}

const IPAM: Group = { name: "mncni ipam", bareIsHelp: true, verbs: { show: { summary: "ranges, use, leaks", run: cmdShow } } };

export const ipamCommand = (argv: string[]) => dispatch(IPAM, argv);
