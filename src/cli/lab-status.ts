// `mncni lab status [NODE]`: what a lab is made of, checked against the kernel
// (src/lab/status.ts); with a node, `mncni status` as on that node.
import { sayJson, sayRendered } from "./output.ts";
import { labNodeView } from "../lab/places.ts";
import { netnsExecArgv } from "../lab/sh.ts";
import { requireState, type LabState } from "../lab/state.ts";
import { labStatus } from "../lab/status.ts";
import { formatLabStatus } from "./text/lab-status.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { JSON_OUT, NAME, parse } from "./lab-common.ts";

const STATUS = {
  name: "mncni lab status",
  args: "[node]",
  summary: "Nodes, pods, the external host and directories of a lab, checked against the kernel. With a node: `mncni status` as on that node (agent readiness and reasons, peers, conflist, calls, problems; exit 1 when not ready or problems are found).",
  flags: { name: NAME, json: JSON_OUT },
  positionals: { min: 0, max: 1, names: ["node"] },
} satisfies CommandSpec<FlagTable>;

/**
 * `mncni status` in the node's namespace, with the node's directories and its name: run as a
 * child process because the agent's health address is on the node's loopback, which only a
 * process in that namespace reaches (a fetch cannot switch namespaces).
 */
function nodeStatusCommand(s: LabState, node: string, json: boolean): number {
  const v = labNodeView(s, node);
  const nodeNs = s.nodes.find((n) => n.name === node)!.ns;
  const argv = netnsExecArgv(nodeNs, [...s.options.selfCmd, "status", "--cni-conf-dir", v.confDir, "--cache-dir", v.cacheDir, "--log-file", v.logFile, ...(json ? ["--json"] : [])]);
  const p = Bun.spawnSync(argv, { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, NODE_NAME: node } });
  return p.exitCode ?? 1;
}

export async function cmdStatus(argv: string[]): Promise<number> {
  const p0 = parse(STATUS, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const node = p0.positionals[0];
  if (node !== undefined) return nodeStatusCommand(requireState(v.name), node, v.json);
  const st = await labStatus(requireState(v.name));
  if (v.json) sayJson(st);
  else sayRendered(st, formatLabStatus);
  return 0;
}
