// `mncni lab ipam <node>`: a lab node's IPAM ranges, use and leaks, as `mncni ipam show` on
// that node (the node's view: src/lab/places.ts; the work: src/obs/ipam-show.ts).
import { labNodeView } from "../lab/places.ts";
import { requireState } from "../lab/state.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { renderIpamReport } from "./ipam.ts";
import { JSON_OUT, NAME, parse } from "./lab-common.ts";

const IPAM = {
  name: "mncni lab ipam",
  args: "<node>",
  summary: "A lab node's IPAM ranges, addresses used and free, leaks and attachments without a reservation (as `mncni ipam show` on that node). Exit 1 when there are any.",
  flags: { name: NAME, json: JSON_OUT },
  positionals: { min: 1, max: 1, names: ["node"] },
} satisfies CommandSpec<FlagTable>;

export async function cmdIpam(argv: string[]): Promise<number> {
  const p = parse(IPAM, argv);
  if (typeof p === "number") return p;
  return renderIpamReport(labNodeView(requireState(p.flags.name), p.positionals[0]!), p.flags.json);
}
