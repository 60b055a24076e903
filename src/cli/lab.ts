// `mncni lab ...`: flag tables and output of the lab subcommands; the work is in src/lab/.
import { isCompiled, selfCommand } from "../sys/self.ts";
import { existsSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { withNetns } from "../kernel/netns.ts";
import { check, formatReport } from "../lab/check.ts";
import { plainAddress, probe, serveEcho } from "../lab/echo.ts";
import { listLabs, strayNamespaces, type LabEntry } from "../lab/inventory.ts";
import { addNode, down, nextNodeName, removeNode, restartAgent, up, validateOptions, type UpOptions } from "../lab/lab.ts";
import { lockLab } from "../lab/lock.ts";
import { addPod, refreshNodeEcho, removePod } from "../lab/pods.ts";
import { plural, progress } from "../lab/progress.ts";
import { netnsExecArgv, run } from "../lab/sh.ts";
import { findNode, labExists, requireState, type Mode, type WiringKind } from "../lab/state.ts";
import { formatStatus, labStatus } from "../lab/status.ts";
import { CLUSTER_CIDR6, DEFAULT_LAB, ECHO_PORT, LAB_ROOT, labDir, ns } from "../lab/topology.ts";
import { parseOrExit, UsageError, type CommandSpec, type FlagTable } from "./flags.ts";
import { dispatch, type Group } from "./subcommands.ts";

const NAME = { type: "string", value: "NAME", default: DEFAULT_LAB, help: "the lab to act on ($MNCNI_LAB sets the default)" } as const;
const QUIET = { type: "boolean", short: "q", help: "no progress lines (the result line is still printed)" } as const;
const JSON_OUT = { type: "boolean", help: "machine-readable output" } as const;
const TIMEOUT = { type: "int", value: "MS", default: 2000, min: 1, max: 600_000, help: "connect timeout of each probe, in milliseconds" } as const;

/** Every lab command drives namespaces, netlink and nftables: without root it would give wrong answers. */
function requireRoot(cmd: string): void {
  const uid = process.getuid?.();
  if (uid !== 0) throw new Error(`cannot run "${cmd}" as uid ${uid}: lab commands need root (network namespaces, netlink, nftables); run it with sudo`);
}

/** Parses, prints --help or a usage error, then checks for root: the parsed flags, or the exit status. */
function parse<T extends FlagTable>(spec: CommandSpec<T>, argv: string[]) {
  const p = parseOrExit(spec, argv);
  if (typeof p !== "number") requireRoot(spec.name);
  return p;
}

/** Runs fn holding the lab's lock (changes to a lab are serialised; see src/lab/lock.ts). */
async function locked<R>(lab: string, create: boolean, fn: () => Promise<R>): Promise<R> {
  using _lock = lockLab(lab, { create });
  return await fn();
}

function resolveBinary(flag: string | undefined): string | undefined {
  if (flag) {
    if (!existsSync(flag)) throw new Error(`cannot use --binary "${flag}": no such file`);
    return resolve(flag);
  }
  if (isCompiled()) return process.execPath;
  return process.env.MNCNI_BIN && existsSync(process.env.MNCNI_BIN) ? resolve(process.env.MNCNI_BIN) : undefined;
}

function agentAvailable(binary: string | undefined): boolean {
  return !!binary && run([binary, "agent", "--help"], { allowFail: true }).code === 0;
}

const UP = {
  name: "mncni lab up",
  summary: "Builds a lab: an underlay switch, a router, an external host, nodes and pods (agent wiring needs a compiled mncni).",
  flags: {
    name: NAME,
    nodes: { type: "int", default: 3, min: 1, max: 200, help: "nodes" },
    "pods-per-node": { type: "int", default: 2, min: 0, max: 200, help: "pods on each node" },
    mode: { type: "string", default: "bridge", choices: ["bridge", "routed"], help: "the plugin's mode" },
    routing: { type: "string", default: "host-gw", choices: ["host-gw"], help: "how nodes reach each other's pods" },
    "cluster-cidr": { type: "string", value: "CIDR", default: "10.244.0.0/16", help: "IPv4 cluster CIDR, split into one pod CIDR per node" },
    "node-cidr-size": { type: "int", default: 24, min: 1, max: 32, help: "prefix length of each node's IPv4 pod CIDR" },
    ipv6: { type: "boolean", help: "dual-stack: IPv6 underlay, pods and checks beside IPv4" },
    "cluster-cidr6": { type: "string", value: "CIDR", help: `IPv6 cluster CIDR (implies --ipv6; default ${CLUSTER_CIDR6})` },
    wiring: { type: "string", default: "auto", choices: ["auto", "agent", "static"], help: "mncni agents, or the Go reference plugins with routes by the lab" },
    binary: { type: "string", value: "PATH", help: "the mncni executable the agents run (default: this one, or $MNCNI_BIN)" },
    quiet: QUIET,
  },
} satisfies CommandSpec<FlagTable>;

async function cmdUp(argv: string[]): Promise<number> {
  const p0 = parse(UP, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const binary = resolveBinary(v.binary);
  let wiring: WiringKind;
  if (v.wiring === "auto") wiring = agentAvailable(binary) ? "agent" : "static";
  else wiring = v.wiring as WiringKind;
  if (wiring === "agent" && !binary) throw new Error("cannot use agent wiring: run a compiled mncni or pass --binary PATH");
  const dualStack = v.ipv6 || v["cluster-cidr6"] !== undefined;
  const options: UpOptions = {
    name: v.name,
    nodes: v.nodes,
    podsPerNode: v["pods-per-node"],
    mode: v.mode as Mode,
    routing: "host-gw",
    clusterCidr: v["cluster-cidr"],
    nodeCidrSize: v["node-cidr-size"],
    ...(dualStack ? { clusterCidr6: v["cluster-cidr6"] ?? CLUSTER_CIDR6 } : {}),
    wiring,
    binary,
    selfCmd: selfCommand(),
  };
  validateOptions(options); // before anything exists, so a refusal leaves nothing
  const existed = labExists(v.name);
  const p = progress({ quiet: v.quiet });
  try {
    const s = await locked(v.name, true, async () => {
      if (v.wiring === "auto" && wiring === "static") p.step("no usable `mncni agent`: static wiring (Go reference plugins, routes by the lab)");
      return await up(options, p);
    });
    const pods = s.nodes.reduce((a, n) => a + n.pods.length, 0);
    p.done(`lab "${s.name}" up: ${plural(s.nodes.length, "node")}, ${plural(pods, "pod")} (${s.options.mode}, ${wiring} wiring${s.options.clusterCidr6 ? ", dual-stack" : ""})`);
    return 0;
  } catch (e) {
    // Say "left for inspection" only when this `up` left something (not when it refused to start).
    const left = !existed && (labExists(v.name) || strayNamespaces(v.name, []).length > 0);
    if (left) (e as Error).message += `\nthe lab is left as it is for inspection: remove it with \`mncni lab down --name ${v.name}\``;
    else if (!existed) rmSync(labDir(v.name), { recursive: true, force: true }); // only its lock file
    throw e;
  }
}

const DOWN = {
  name: "mncni lab down",
  summary: "Removes every namespace, process and file of the lab, also of a half-built one and what its state file missed (idempotent).",
  flags: { name: NAME, quiet: QUIET },
} satisfies CommandSpec<FlagTable>;

async function cmdDown(argv: string[]): Promise<number> {
  const p0 = parse(DOWN, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const p = progress({ quiet: v.quiet });
  const existed = await locked(v.name, true, () => down(v.name, p));
  p.done(existed ? `lab "${v.name}" removed` : `lab "${v.name}" not running: nothing to remove`);
  return 0;
}

const CHECK = {
  name: "mncni lab check",
  summary: "TCP from every pod and node to every pod (no NAT expected) and from every pod to the external host (seen as its node). Exit 1 on any failure.",
  flags: { name: NAME, json: JSON_OUT, timeout: TIMEOUT },
  notes: "The matrix is printed for up to 24 targets; larger labs get the summary and the failures only.",
} satisfies CommandSpec<FlagTable>;

async function cmdCheck(argv: string[]): Promise<number> {
  const p0 = parse(CHECK, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const s = requireState(v.name);
  if (s.complete === false) console.error(`warning: lab "${v.name}" is incomplete (its \`up\` was interrupted or is still running)`);
  const rep = await check(s, { timeoutMs: v.timeout });
  console.log(v.json ? JSON.stringify(rep, null, 2) : formatReport(rep));
  return rep.ok ? 0 : 1;
}

const STATUS = {
  name: "mncni lab status",
  summary: "Nodes, pods, the external host and directories of a lab, checked against the kernel.",
  flags: { name: NAME, json: JSON_OUT },
} satisfies CommandSpec<FlagTable>;

async function cmdStatus(argv: string[]): Promise<number> {
  const p0 = parse(STATUS, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const st = await labStatus(requireState(v.name));
  console.log(v.json ? JSON.stringify(st, null, 2) : formatStatus(st));
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

async function cmdList(argv: string[]): Promise<number> {
  const p0 = parse(LIST, argv);
  if (typeof p0 === "number") return p0;
  const labs = listLabs();
  console.log(p0.flags.json ? JSON.stringify(labs, null, 2) : formatList(labs));
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

async function cmdExec(argv: string[]): Promise<number> {
  const p0 = parse(EXEC, argv);
  if (typeof p0 === "number") return p0;
  const [target, ...extra] = p0.positionals;
  if (extra.length) throw new UsageError(EXEC.name, `the command goes after "--": mncni lab exec ${target} -- ${extra.join(" ")}`);
  const netns = resolveTarget(p0.flags.name, target!);
  const command = p0.rest?.length ? p0.rest : ["sh"];
  const p = Bun.spawn(netnsExecArgv(netns, command), { stdio: ["inherit", "inherit", "inherit"] });
  return await p.exited;
}

const NODE_ADD = {
  name: "mncni lab node add",
  args: "[<name>]",
  summary: "Adds a node (default name: the first free nodeN) and its pods; the other nodes converge.",
  flags: { name: NAME, pods: { type: "int", default: 0, min: 0, max: 200, help: "pods on the new node" }, quiet: QUIET },
  positionals: { max: 1, names: ["<name>"] },
} satisfies CommandSpec<FlagTable>;

const NODE_REMOVE = {
  name: "mncni lab node remove",
  args: "<node>",
  summary: "Deletes the node's pods through CNI, then the node; the other nodes converge.",
  flags: { name: NAME, quiet: QUIET },
  positionals: { min: 1, max: 1, names: ["<node>"] },
} satisfies CommandSpec<FlagTable>;

const NODE_RESTART = {
  name: "mncni lab node restart-agent",
  args: "<node>",
  summary: "Restarts the node's agent (agent wiring) and waits until it is ready.",
  flags: { name: NAME, quiet: QUIET },
  positionals: { min: 1, max: 1, names: ["<node>"] },
} satisfies CommandSpec<FlagTable>;

const POD_ADD = {
  name: "mncni lab pod add",
  args: "<node> [<name>]",
  summary: "Adds a pod on a node through CNI ADD (default name: the node's first free podN).",
  flags: { name: NAME },
  positionals: { min: 1, max: 2, names: ["<node>", "<name>"] },
} satisfies CommandSpec<FlagTable>;

const POD_REMOVE = {
  name: "mncni lab pod remove",
  args: "<node> <pod>",
  summary: "Removes a pod through CNI DEL, then its namespace and manifest.",
  flags: { name: NAME },
  positionals: { min: 2, max: 2, names: ["<node>", "<pod>"] },
} satisfies CommandSpec<FlagTable>;

function nodeOf(lab: string, name: string) {
  const s = requireState(lab);
  const node = findNode(s, name);
  if (!node) throw new Error(`cannot find node "${name}" in lab "${s.name}" (nodes: ${s.nodes.map((n) => n.name).join(", ") || "none"})`);
  return { s, node };
}

const NODE: Group = {
  name: "mncni lab node",
  verbs: {
    add: {
      args: "[<name>] [--pods N]",
      summary: "add a node",
      run: async (argv) => {
        const p0 = parse(NODE_ADD, argv);
        if (typeof p0 === "number") return p0;
        const v = p0.flags;
        const p = progress({ quiet: v.quiet });
        const node = await locked(v.name, false, async () => {
          const s = requireState(v.name);
          return await addNode(s, p0.positionals[0] ?? nextNodeName(s), v.pods, p);
        });
        p.done(`node ${node.name} added: ${[node.address, ...(node.address6 ? [node.address6] : [])].join(",")}, pods ${node.podCidrs.join(",")}, ${plural(node.pods.length, "pod")}`);
        return 0;
      },
    },
    remove: {
      args: "<node>",
      summary: "remove a node and its pods",
      run: async (argv) => {
        const p0 = parse(NODE_REMOVE, argv);
        if (typeof p0 === "number") return p0;
        const p = progress({ quiet: p0.flags.quiet });
        await locked(p0.flags.name, false, async () => {
          const { s, node } = nodeOf(p0.flags.name, p0.positionals[0]!);
          await removeNode(s, node, p);
        });
        p.done(`node ${p0.positionals[0]} removed`);
        return 0;
      },
    },
    "restart-agent": {
      args: "<node>",
      summary: "restart a node's agent",
      run: async (argv) => {
        const p0 = parse(NODE_RESTART, argv);
        if (typeof p0 === "number") return p0;
        const p = progress({ quiet: p0.flags.quiet });
        const pid = await locked(p0.flags.name, false, async () => {
          const { s, node } = nodeOf(p0.flags.name, p0.positionals[0]!);
          return await restartAgent(s, node);
        });
        p.done(`node ${p0.positionals[0]}: agent restarted (pid ${pid})`);
        return 0;
      },
    },
  },
};

const POD: Group = {
  name: "mncni lab pod",
  verbs: {
    add: {
      args: "<node> [<name>]",
      summary: "add a pod through CNI ADD",
      run: async (argv) => {
        const p0 = parse(POD_ADD, argv);
        if (typeof p0 === "number") return p0;
        const [nodeName, podName] = p0.positionals;
        const { node, pod } = await locked(p0.flags.name, false, async () => {
          const { s, node } = nodeOf(p0.flags.name, nodeName!);
          const pod = await addPod(s, node, podName);
          await refreshNodeEcho(s, node);
          return { node, pod };
        });
        console.log(`pod ${node.name}/${pod.name} added: ${pod.ips.join(",")} (namespace ${pod.ns})`);
        return 0;
      },
    },
    remove: {
      args: "<node> <pod>",
      summary: "remove a pod through CNI DEL",
      run: async (argv) => {
        const p0 = parse(POD_REMOVE, argv);
        if (typeof p0 === "number") return p0;
        const [nodeName, podName] = p0.positionals;
        await locked(p0.flags.name, false, async () => {
          const { s, node } = nodeOf(p0.flags.name, nodeName!);
          const pod = node.pods.find((x) => x.name === podName);
          if (!pod) throw new Error(`cannot find pod "${podName}" on node "${node.name}" (pods: ${node.pods.map((x) => x.name).join(", ") || "none"})`);
          await removePod(s, node, pod);
        });
        console.log(`pod ${nodeName}/${podName} removed`);
        return 0;
      },
    },
  },
};

/** Hidden: the echo servers of `lab check`, one listener in each --netns (pods, external host). */
const ECHO = {
  name: "mncni lab _echo",
  summary: "internal: echo servers of `lab check`",
  flags: {
    port: { type: "int", default: ECHO_PORT, min: 1, max: 65535, help: "port" },
    lab: { type: "string", help: "the lab (a marker for finding the process)" },
    ipv6: { type: "boolean", help: "listen on :: (both families)" },
    netns: { type: "list", value: "NAME", help: "namespace to listen in" },
  },
} satisfies CommandSpec<FlagTable>;

async function cmdEcho(argv: string[]): Promise<number> {
  const p0 = parseOrExit(ECHO, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  // "::" takes both families (v4 clients arrive as ::ffff:a.b.c.d); a v4-only lab keeps 0.0.0.0.
  const hostname = v.ipv6 ? "::" : "0.0.0.0";
  // The listening socket belongs to the namespace it was created in; Bun.listen creates it synchronously.
  const servers = v.netns.length ? v.netns.map((n) => withNetns(`/run/netns/${n}`, () => serveEcho({ port: v.port, hostname }))) : [serveEcho({ port: v.port, hostname })];
  await new Promise<void>((res) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => res());
  });
  for (const s of servers) s.stop();
  return 0;
}

/** Hidden: connects to each host:port and prints the source address each echo server saw. */
const PROBE = {
  name: "mncni lab _probe",
  args: "<host:port>...",
  summary: "internal: probes of `lab check`",
  flags: { json: JSON_OUT, timeout: TIMEOUT },
  positionals: { min: 1, max: Infinity, names: ["<host:port>"] },
} satisfies CommandSpec<FlagTable>;

async function cmdProbe(argv: string[]): Promise<number> {
  const p0 = parseOrExit(PROBE, argv);
  if (typeof p0 === "number") return p0;
  const results = await probe(p0.positionals, p0.flags.timeout);
  if (p0.flags.json) console.log(JSON.stringify(results));
  else for (const r of results) console.log(`${r.target}\t${r.ok ? `seen as ${plainAddress(r.seen)}` : `FAIL ${r.error}`}\t${r.ms} ms`);
  return results.every((r) => r.ok) ? 0 : 1;
}

/** Hidden: GET a URL from inside a namespace (the agent's /readyz); exit 0 on 2xx. */
const HTTP = {
  name: "mncni lab _http",
  args: "<url>",
  summary: "internal: GET a URL (the agent's /readyz)",
  flags: {},
  positionals: { min: 1, max: 1, names: ["<url>"] },
} satisfies CommandSpec<FlagTable>;

async function cmdHttp(argv: string[]): Promise<number> {
  const p0 = parseOrExit(HTTP, argv);
  if (typeof p0 === "number") return p0;
  try {
    const res = await fetch(p0.positionals[0]!, { signal: AbortSignal.timeout(2000) });
    console.log(`${res.status} ${(await res.text()).trim().slice(0, 200)}`);
    return res.ok ? 0 : 1;
  } catch (e) {
    console.log(`error ${(e as Error).message}`);
    return 1;
  }
}

/** Errors of a lab command (not usage errors: the dispatcher words those) end it with status 1. */
function reported(verb: string, fn: (argv: string[]) => Promise<number>): (argv: string[]) => Promise<number> {
  return async (argv) => {
    try {
      return await fn(argv);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      console.error(`\nmncni lab ${verb}: ${(e as Error).message}`);
      return 1;
    }
  };
}

const LAB: Group = {
  name: "mncni lab",
  intro: "A multi-node Kubernetes-shaped cluster in network namespaces (run as root).",
  bareIsHelp: true,
  verbs: {
    up: { summary: "build a lab (nodes, pods, external host)", run: reported("up", cmdUp) },
    check: { summary: "TCP from every pod/node to every pod and the external host", run: reported("check", cmdCheck) },
    status: { summary: "nodes, pods, external host, directories", run: reported("status", cmdStatus) },
    list: { summary: "the labs on this machine", run: reported("list", cmdList) },
    exec: { args: "<target> [-- cmd...]", summary: "run a command (default: sh) in a node, pod (node/pod), ext, rtr or sw", run: reported("exec", cmdExec) },
    node: { args: "add|remove|restart-agent", summary: "change nodes", run: reported("node", (argv) => dispatch(NODE, argv)) },
    pod: { args: "add|remove", summary: "change pods", run: reported("pod", (argv) => dispatch(POD, argv)) },
    down: { summary: "remove everything the lab created (idempotent)", run: reported("down", cmdDown) },
    _echo: { hidden: true, summary: "", run: cmdEcho },
    _probe: { hidden: true, summary: "", run: cmdProbe },
    _http: { hidden: true, summary: "", run: cmdHttp },
  },
  outro: `Every command takes --name (default: $MNCNI_LAB, else mnlab; now ${DEFAULT_LAB}). Pods are named
<node>/<pod> (e.g. node1/pod2) or by namespace (${DEFAULT_LAB}-node1-pod2). See docs/lab.md.`,
};

export async function labCommand(argv: string[]): Promise<number> {
  return dispatch(LAB, argv);
}
