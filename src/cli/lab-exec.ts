// `mncni lab exec <target> [-- command...]`: a command inside one of the lab's namespaces
// (the target's namespace: src/lab/places.ts labNamespace).
import { labNamespace } from "../lab/places.ts";
import { netnsExecArgv } from "../lab/sh.ts";
import { requireState } from "../lab/state.ts";
import { UsageError, type CommandSpec, type FlagTable } from "./flags.ts";
import { NAME, parse } from "./lab-common.ts";

const EXEC = {
  name: "mncni lab exec",
  args: "<target> [-- command...]",
  summary: "Runs a command (default: sh) inside a namespace of the lab: a node (node1), a pod (node1/pod2), ext, rtr or sw.",
  flags: { name: NAME },
  positionals: { min: 1, max: Infinity, names: ["target (node1, node1/pod1, ext, rtr or sw)"] },
  passthrough: true,
} satisfies CommandSpec<FlagTable>;

export async function cmdExec(argv: string[]): Promise<number> {
  const p0 = parse(EXEC, argv);
  if (typeof p0 === "number") return p0;
  const [target, ...extra] = p0.positionals;
  if (extra.length) throw new UsageError(EXEC.name, `the command goes after "--": mncni lab exec ${target} -- ${extra.join(" ")}`);
  const netns = labNamespace(requireState(p0.flags.name), target!);
  const command = p0.rest?.length ? p0.rest : ["sh"];
  const p = Bun.spawn(netnsExecArgv(netns, command), { stdio: ["inherit", "inherit", "inherit"] });
  return await p.exited;
}
