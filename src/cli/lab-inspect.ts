// `mncni lab check | status | list | exec`: looking at labs (they take no lock).
import { say, sayError, sayJson } from "./output.ts";
import { check, formatReport } from "../lab/check.ts";
import { listLabs, type LabEntry } from "../lab/inventory.ts";
import { netnsExecArgv } from "../lab/sh.ts";
import { requireState } from "../lab/state.ts";
import { formatStatus, labStatus } from "../lab/status.ts";
import { LAB_ROOT, ns } from "../lab/topology.ts";
import { UsageError, type CommandSpec, type FlagTable } from "./flags.ts";
import { JSON_OUT, NAME, TIMEOUT, parse } from "./lab-common.ts";

const CHECK = {
  name: "mncni lab check",
  summary: "TCP from every pod and node to every pod (no NAT expected) and from every pod to the external host (seen as its node). Exit 1 on any failure.",
  flags: { name: NAME, json: JSON_OUT, timeout: TIMEOUT },
  notes: "The matrix is printed for up to 24 targets; larger labs get the summary and the failures only.",
} satisfies CommandSpec<FlagTable>;

export async function cmdCheck(argv: string[]): Promise<number> {
  const p0 = parse(CHECK, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const s = requireState(v.name);
  if (s.complete === false) sayError(`warning: lab "${v.name}" is incomplete (its \`up\` was interrupted or is still running)`);
  if (s.options.policyPorts) {
    const { formatPolicyReport, policyCheck } = await import("../lab/policy-check.ts");
    const rep = await policyCheck(s, { timeoutMs: Math.min(v.timeout, 1500) });
    if (v.json) sayJson(rep);
    else say(formatPolicyReport(rep));
    return rep.ok ? 0 : 1;
  }
  const rep = await check(s, { timeoutMs: v.timeout });
  if (v.json) sayJson(rep);
  else say(formatReport(rep));
  return rep.ok ? 0 : 1;
}

const STATUS = {
  name: "mncni lab status",
  summary: "Nodes, pods, the external host and directories of a lab, checked against the kernel.",
  flags: { name: NAME, json: JSON_OUT },
} satisfies CommandSpec<FlagTable>;

export async function cmdStatus(argv: string[]): Promise<number> {
  const p0 = parse(STATUS, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const st = await labStatus(requireState(v.name));
  if (v.json) sayJson(st);
  else say(formatStatus(st));
  return 0;
}

const LIST = {
  name: "mncni lab list",
  summary: `The labs on this machine: under ${LAB_ROOT} ($MNCNI_LAB_ROOT), under the default root, and labs found only by their namespaces.`,
  flags: { json: JSON_OUT },
} satisfies CommandSpec<FlagTable>;

function formatList(labs: LabEntry[]): string {
  if (labs.length === 0) return "no lab exists on this machine";
  const rows = labs.map((l) => [
    l.name,
    l.root ?? "? (namespaces only)",
    l.nodes === undefined ? "-" : String(l.nodes),
    l.pods === undefined ? "-" : String(l.pods),
    l.mode ?? "-",
    l.wiring ?? "-",
    l.error ? `unreadable: ${l.error}` : l.root === null ? "no state" : l.complete ? "complete" : "incomplete",
  ]);
  const header = ["NAME", "ROOT", "NODES", "PODS", "MODE", "WIRING", "STATE"];
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd();
  const other = labs.filter((l) => l.root !== null && !l.current);
  return [
    fmt(header),
    ...rows.map(fmt),
    ...(other.length ? ["", `labs under another root are reached with MNCNI_LAB_ROOT=<root> (this command uses ${LAB_ROOT})`] : []),
    ...(labs.some((l) => l.root === null) ? ["labs with no state: their namespaces exist but no state file was found (another MNCNI_LAB_ROOT?)"] : []),
  ].join("\n");
}

export async function cmdList(argv: string[]): Promise<number> {
  const p0 = parse(LIST, argv);
  if (typeof p0 === "number") return p0;
  const labs = listLabs();
  if (p0.flags.json) sayJson(labs);
  else say(formatList(labs));
  return 0;
}

/** node1, node1/pod2, node1-pod2, ext, rtr, sw, or a namespace name of the lab. */
function resolveTarget(lab: string, target: string): string {
  const s = requireState(lab);
  const fixed: Record<string, string> = { ext: ns.external(lab), rtr: ns.router(lab), sw: ns.switch(lab) };
  if (fixed[target]) return fixed[target]!;
  if (s.namespaces.includes(target)) return target;
  const candidate = `${lab}-${target.replace("/", "-")}`;
  if (s.namespaces.includes(candidate)) return candidate;
  throw new Error(`cannot find "${target}" in lab "${lab}": not a node, pod (node/pod), ext, rtr or sw`);
}

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
  const netns = resolveTarget(p0.flags.name, target!);
  const command = p0.rest?.length ? p0.rest : ["sh"];
  const p = Bun.spawn(netnsExecArgv(netns, command), { stdio: ["inherit", "inherit", "inherit"] });
  return await p.exited;
}
