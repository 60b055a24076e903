// `mncni lab ...`: argument parsing and output of the lab subcommands; the work is in src/lab/.
import { isCompiled, selfCommand } from "../sys/self.ts";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { withNetns } from "../kernel/netns.ts";
import { check, formatReport } from "../lab/check.ts";
import { plainAddress, probe, serveEcho } from "../lab/echo.ts";
import { addNode, down, nextNodeName, removeNode, restartAgent, up } from "../lab/lab.ts";
import { addPod, refreshNodeEcho, removePod } from "../lab/pods.ts";
import { progress } from "../lab/progress.ts";
import { inNetns, run } from "../lab/sh.ts";
import { findNode, requireState, type Mode, type WiringKind } from "../lab/state.ts";
import { formatStatus, labStatus } from "../lab/status.ts";
import { CLUSTER_CIDR6, DEFAULT_LAB, ECHO_PORT, ns } from "../lab/topology.ts";

const USAGE = `Usage: mncni lab <command> [--name ${DEFAULT_LAB}] [flags]

  up      [--nodes 3] [--pods-per-node 2] [--mode bridge|routed] [--routing host-gw]
          [--cluster-cidr 10.244.0.0/16] [--node-cidr-size 24] [--wiring auto|agent|static]
          [--binary PATH]          build the lab (agent wiring needs a compiled mncni)
          [--ipv6 [--cluster-cidr6 ${CLUSTER_CIDR6}]]   dual-stack: IPv6 underlay, pods, check
  check   [--json] [--timeout MS]  TCP from every pod/node to every pod and the external host
  status  [--json]                 nodes, pods, external host, directories
  exec    <pod|node|ext|rtr|sw> [-- command...]   run a command (default: sh) in a namespace
  node    add [<name>] [--pods N] | remove <name> | restart-agent <name>
  pod     add <node> [<name>] | remove <node> <name>
  down                             remove everything the lab created (idempotent)

Pods are named <node>/<pod> (e.g. node1/pod2) or by namespace (${DEFAULT_LAB}-node1-pod2).`;

const COMMON = { name: { type: "string", default: DEFAULT_LAB }, help: { type: "boolean", short: "h" } } as const;

/** The command that runs this CLI again (for the echo servers and probes inside namespaces). */
const selfCmd = selfCommand;

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

async function cmdUp(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      ...COMMON,
      nodes: { type: "string", default: "3" },
      "pods-per-node": { type: "string", default: "2" },
      mode: { type: "string", default: "bridge" },
      routing: { type: "string", default: "host-gw" },
      "cluster-cidr": { type: "string", default: "10.244.0.0/16" },
      "node-cidr-size": { type: "string", default: "24" },
      ipv6: { type: "boolean", default: false },
      "cluster-cidr6": { type: "string", default: CLUSTER_CIDR6 },
      wiring: { type: "string", default: "auto" },
      binary: { type: "string" },
      quiet: { type: "boolean", short: "q", default: false },
    },
  });
  if (v.help) return usage(0);
  if (v.mode !== "bridge" && v.mode !== "routed") throw new Error(`cannot use --mode "${v.mode}": must be bridge or routed`);
  if (v.routing !== "host-gw") throw new Error(`cannot use --routing "${v.routing}": the lab supports host-gw only`);
  const binary = resolveBinary(v.binary);
  let wiring: WiringKind;
  if (v.wiring === "auto") wiring = agentAvailable(binary) ? "agent" : "static";
  else if (v.wiring === "agent" || v.wiring === "static") wiring = v.wiring;
  else throw new Error(`cannot use --wiring "${v.wiring}": must be auto, agent or static`);
  if (wiring === "agent" && !binary) throw new Error("cannot use agent wiring: run a compiled mncni or pass --binary PATH");
  const p = progress({ quiet: v.quiet });
  if (v.wiring === "auto" && wiring === "static") p.step("no usable `mncni agent`: static wiring (Go reference plugins, routes by the lab)");
  const s = await up(
    {
      name: v.name,
      nodes: Number(v.nodes),
      podsPerNode: Number(v["pods-per-node"]),
      mode: v.mode as Mode,
      routing: "host-gw",
      clusterCidr: v["cluster-cidr"],
      nodeCidrSize: Number(v["node-cidr-size"]),
      ...(v.ipv6 ? { clusterCidr6: v["cluster-cidr6"] } : {}),
      wiring,
      binary,
      selfCmd: selfCmd(),
    },
    p,
  );
  p.done(`lab "${s.name}" up: ${s.nodes.length} nodes, ${s.nodes.reduce((a, n) => a + n.pods.length, 0)} pods (${s.options.mode}, ${wiring} wiring${s.options.clusterCidr6 ? ", dual-stack" : ""})`);
  return 0;
}

async function cmdDown(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({ args: argv, options: { ...COMMON, quiet: { type: "boolean", short: "q", default: false } } });
  if (v.help) return usage(0);
  const p = progress({ quiet: v.quiet });
  const existed = await down(v.name, p);
  p.done(existed ? `lab "${v.name}" removed` : `lab "${v.name}" not running: nothing to remove`);
  return 0;
}

async function cmdCheck(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({ args: argv, options: { ...COMMON, json: { type: "boolean", default: false }, timeout: { type: "string", default: "2000" } } });
  if (v.help) return usage(0);
  const rep = await check(requireState(v.name), { timeoutMs: Number(v.timeout) });
  console.log(v.json ? JSON.stringify(rep, null, 2) : formatReport(rep));
  return rep.ok ? 0 : 1;
}

async function cmdStatus(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({ args: argv, options: { ...COMMON, json: { type: "boolean", default: false } } });
  if (v.help) return usage(0);
  const st = await labStatus(requireState(v.name));
  console.log(v.json ? JSON.stringify(st, null, 2) : formatStatus(st));
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

async function cmdExec(argv: string[]): Promise<number> {
  const dd = argv.indexOf("--");
  const own = dd < 0 ? argv : argv.slice(0, dd);
  const command = dd < 0 ? [] : argv.slice(dd + 1);
  const { values: v, positionals } = parseArgs({ args: own, options: COMMON, allowPositionals: true });
  if (v.help || positionals.length !== 1) return usage(v.help ? 0 : 2);
  const netns = resolveTarget(v.name, positionals[0]!);
  const p = Bun.spawn(inNetns(netns, command.length ? command : ["sh"]), { stdio: ["inherit", "inherit", "inherit"] });
  return await p.exited;
}

async function cmdNode(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args: argv,
    options: { ...COMMON, pods: { type: "string", default: "0" }, quiet: { type: "boolean", short: "q", default: false } },
    allowPositionals: true,
  });
  const [verb, name] = positionals;
  if (v.help || !verb) return usage(v.help ? 0 : 2);
  const s = requireState(v.name);
  const p = progress({ quiet: v.quiet });
  if (verb === "add") {
    const node = await addNode(s, name ?? nextNodeName(s), Number(v.pods), p);
    p.done(`node ${node.name} added: ${[node.address, ...(node.address6 ? [node.address6] : [])].join(",")}, pods ${node.podCidrs.join(",")}, ${node.pods.length} pods`);
    return 0;
  }
  const node = name ? findNode(s, name) : undefined;
  if (!node) throw new Error(`cannot find node "${name ?? ""}" in lab "${s.name}"`);
  if (verb === "remove") {
    await removeNode(s, node, p);
    p.done(`node ${node.name} removed`);
    return 0;
  }
  if (verb === "restart-agent") {
    const pid = await restartAgent(s, node);
    p.done(`node ${node.name}: agent restarted (pid ${pid})`);
    return 0;
  }
  return usage(2);
}

async function cmdPod(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({ args: argv, options: COMMON, allowPositionals: true });
  const [verb, nodeName, podName] = positionals;
  if (v.help || !verb || !nodeName) return usage(v.help ? 0 : 2);
  const s = requireState(v.name);
  const node = findNode(s, nodeName);
  if (!node) throw new Error(`cannot find node "${nodeName}" in lab "${s.name}"`);
  if (verb === "add") {
    const pod = await addPod(s, node, podName);
    await refreshNodeEcho(s, node);
    console.log(`pod ${node.name}/${pod.name} added: ${pod.ips.join(",")} (namespace ${pod.ns})`);
    return 0;
  }
  if (verb === "remove") {
    const pod = node.pods.find((x) => x.name === podName);
    if (!pod) throw new Error(`cannot find pod "${podName ?? ""}" on node "${node.name}"`);
    await removePod(s, node, pod);
    console.log(`pod ${node.name}/${pod.name} removed`);
    return 0;
  }
  return usage(2);
}

/** Hidden: the echo servers of `lab check`, one listener in each --netns (pods, external host). */
async function cmdEcho(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: String(ECHO_PORT) },
      lab: { type: "string" },
      ipv6: { type: "boolean", default: false },
      netns: { type: "string", multiple: true, default: [] },
    },
  });
  const port = Number(v.port);
  // "::" takes both families (v4 clients arrive as ::ffff:a.b.c.d); a v4-only lab keeps 0.0.0.0.
  const hostname = v.ipv6 ? "::" : "0.0.0.0";
  // The listening socket belongs to the namespace it was created in; Bun.listen creates it synchronously.
  const servers = v.netns.length ? v.netns.map((n) => withNetns(`/run/netns/${n}`, () => serveEcho({ port, hostname }))) : [serveEcho({ port, hostname })];
  await new Promise<void>((res) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => res());
  });
  for (const s of servers) s.stop();
  return 0;
}

/** Hidden: connects to each host:port and prints the source address each echo server saw. */
async function cmdProbe(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args: argv,
    options: { json: { type: "boolean", default: false }, timeout: { type: "string", default: "2000" } },
    allowPositionals: true,
  });
  const results = await probe(positionals, Number(v.timeout));
  if (v.json) console.log(JSON.stringify(results));
  else for (const r of results) console.log(`${r.target}\t${r.ok ? `seen as ${plainAddress(r.seen)}` : `FAIL ${r.error}`}\t${r.ms} ms`);
  return results.every((r) => r.ok) ? 0 : 1;
}

/** Hidden: GET a URL from inside a namespace (the agent's /readyz); exit 0 on 2xx. */
async function cmdHttp(argv: string[]): Promise<number> {
  const [url] = argv;
  if (!url) return usage(2);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    console.log(`${res.status} ${(await res.text()).trim().slice(0, 200)}`);
    return res.ok ? 0 : 1;
  } catch (e) {
    console.log(`error ${(e as Error).message}`);
    return 1;
  }
}

function usage(code: number): number {
  (code === 0 ? console.log : console.error)(USAGE);
  return code;
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  up: cmdUp,
  down: cmdDown,
  check: cmdCheck,
  status: cmdStatus,
  exec: cmdExec,
  node: cmdNode,
  pod: cmdPod,
  _echo: cmdEcho,
  _probe: cmdProbe,
  _http: cmdHttp,
};

export async function labCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === "--help" || sub === "-h" || sub === "help") return usage(0);
  const fn = SUBCOMMANDS[sub];
  if (!fn) {
    console.error(`mncni lab: unknown command "${sub}"`);
    return usage(2);
  }
  try {
    return await fn(rest);
  } catch (e) {
    console.error(`\nmncni lab ${sub}: ${(e as Error).message}`);
    if (sub === "up") console.error("the lab is left as it is for inspection: remove it with `mncni lab down` (same --name)");
    return 1;
  }
}
