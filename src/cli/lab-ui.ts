// `mncni lab ui`: the web page of a lab (every node read directly); docs/ui.md.
import { LabSource } from "../ui/lab-source.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, parse } from "./lab-common.ts";
import { UI_FLAGS, serveUi } from "./ui-serve.ts";

const UI = {
  name: "mncni lab ui",
  summary: "Serve a web page of the lab: its nodes and pods, live policy verdicts with filters, explain on a click (with the traced probe), policies. On 127.0.0.1 unless --address (then with a token); stops on Ctrl-C.",
  flags: { name: NAME, ...UI_FLAGS },
  positionals: { max: 0 },
} satisfies CommandSpec<FlagTable>;

export async function cmdUi(argv: string[]): Promise<number> {
  const p = parse(UI, argv);
  if (typeof p === "number") return p;
  return serveUi(UI.name, new LabSource(p.flags.name), p.flags);
}
