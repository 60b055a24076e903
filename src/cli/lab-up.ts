// `mncni lab up`: build a lab (the work: src/lab/lab.ts up()).
import { existsSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { strayNamespaces } from "../lab/inventory.ts";
import { up, validateOptions, type UpOptions } from "../lab/lab.ts";
import { containerdProblem } from "../lab/runtime-containerd.ts";
import { plural, progress } from "../lab/progress.ts";
import { run } from "../lab/sh.ts";
import { labExists, type LabRouting, type LabSource, type WiringKind } from "../lab/state.ts";
import { MODE_NAMES, type Mode } from "../plugin/netconf.ts";
import { CLUSTER_CIDR6, labDir } from "../lab/topology.ts";
import { isCompiled, selfCommand } from "../sys/self.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, QUIET, locked, parse } from "./lab-common.ts";
import { addDemoService } from "../lab/demo-service.ts";

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
    mode: { type: "string", default: "bridge", choices: MODE_NAMES, help: "the plugin's mode" },
    routing: { type: "string", choices: ["host-gw", "vxlan", "auto"], help: "how nodes reach each other's pods, passed to the agents (default auto; static wiring: host-gw)" },
    segments: { type: "int", default: 1, min: 1, max: 16, help: "underlay subnets, each its own switch, joined by the router (nodes round robin)" },
    "cluster-cidr": { type: "string", value: "CIDR", default: "10.244.0.0/16", help: "IPv4 cluster CIDR, split into one pod CIDR per node" },
    // No min/max here: the lower bound depends on --cluster-cidr (checked in src/lab/lab.ts).
    "node-cidr-size": { type: "int", default: 24, help: "prefix length of each node's IPv4 pod CIDR: longer than --cluster-cidr's, at most 28 (17..28 with the default /16)" },
    ipv6: { type: "boolean", help: "dual-stack: IPv6 underlay, pods and checks beside IPv4" },
    "cluster-cidr6": { type: "string", value: "CIDR", help: `IPv6 cluster CIDR (implies --ipv6; default ${CLUSTER_CIDR6})` },
    wiring: { type: "string", default: "auto", choices: ["auto", "agent", "static"], help: "mncni agents, or the Go reference plugins with routes by the lab" },
    source: { type: "string", choices: ["kubernetes", "dir"], help: "where the agents read the cluster: the lab's API server (with 2 controllers allocating pod CIDRs; kubectl works), or a manifests directory as on a standalone host (default kubernetes; static wiring: dir)" },
    binary: { type: "string", value: "PATH", help: "the mncni executable the agents run (default: this one, or $MNCNI_BIN)" },
    "policy-ports": { type: "boolean", help: "every pod serves ports 80 and 81 over TCP, UDP and SCTP (python3; the upstream NetworkPolicy model) and `lab check` checks the policy truth table" },
    "demo-service": { type: "boolean", help: "also a Service default/echo (NodePort, port 80 to every pod's echo port 7777), which `lab check` then proves and the lab's DNS names echo.default.svc.cluster.local (agent wiring: its agents proxy Services)" },
    runtime: { type: "string", default: "direct", choices: ["direct", "containerd"], help: "how pod sandboxes are made: the lab runs the CNI chain itself (direct), or each node runs containerd and the lab drives it over CRI as kubelet does (needs containerd, runc, podman, cc)" },
    "sandbox-gc-grace": { type: "int", value: "SECONDS", min: 0, help: "how long the agents wait before they DEL a sandbox whose DEL never came (its namespace gone, no Pod with its address); 0: never (default: the agent's)" },
    "fast-path": { type: "string", default: "off", choices: ["on", "off"], help: "the agents run with the eBPF fast path for traffic between plain pods of a node (docs/fast-path.md)" },
    quiet: QUIET,
  },
} satisfies CommandSpec<FlagTable>;

export async function cmdUp(argv: string[]): Promise<number> {
  const p0 = parse(UP, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const binary = resolveBinary(v.binary);
  let wiring: WiringKind;
  if (v.wiring === "auto") wiring = agentAvailable(binary) ? "agent" : "static";
  else wiring = v.wiring as WiringKind;
  if (wiring === "agent" && !binary) throw new Error("cannot use agent wiring: run a compiled mncni or pass --binary PATH");
  if (v.source === "kubernetes" && wiring === "static") {
    throw new Error(`cannot use --source kubernetes with ${v.wiring === "auto" ? "static wiring (no usable `mncni agent` here)" : "--wiring static"}: no agent would read the API (use --source dir, or agent wiring)`);
  }
  const source: LabSource = (v.source as LabSource | undefined) ?? (wiring === "agent" ? "kubernetes" : "dir");
  const dualStack = v.ipv6 || v["cluster-cidr6"] !== undefined;
  const options: UpOptions = {
    name: v.name,
    nodes: v.nodes,
    podsPerNode: v["pods-per-node"],
    mode: v.mode as Mode,
    source,
    routing: (v.routing ?? (wiring === "agent" ? "auto" : "host-gw")) as LabRouting,
    ...(v.segments > 1 ? { segments: v.segments } : {}),
    clusterCidr: v["cluster-cidr"],
    nodeCidrSize: v["node-cidr-size"],
    ...(dualStack ? { clusterCidr6: v["cluster-cidr6"] ?? CLUSTER_CIDR6 } : {}),
    wiring,
    binary,
    selfCmd: selfCommand(),
    ...(v["policy-ports"] ? { policyPorts: true } : {}),
    ...(v.runtime === "containerd" ? { runtime: "containerd" as const } : {}),
    ...(v["sandbox-gc-grace"] !== undefined ? { sandboxGcGrace: v["sandbox-gc-grace"] } : {}),
    ...(v["fast-path"] === "on" ? { fastPath: true } : {}),
  };
  if (v["demo-service"] && wiring !== "agent") throw new Error("cannot use --demo-service with static wiring: no agent proxies Services there (use agent wiring)");
  validateOptions(options); // before anything exists, so a refusal leaves nothing
  const missing = options.runtime === "containerd" ? containerdProblem() : null;
  if (missing) throw new Error(`cannot use --runtime containerd: ${missing}`);
  const existed = labExists(v.name);
  const p = progress({ quiet: v.quiet });
  try {
    const s = await locked(v.name, true, async () => {
      if (v.wiring === "auto" && wiring === "static") p.step("no usable `mncni agent`: static wiring (Go reference plugins, routes by the lab)");
      const s = await up(options, p);
      if (v["demo-service"]) {
        p.step("Service default/echo (NodePort, 80 -> 7777 on every pod)");
        await addDemoService(s);
      }
      return s;
    });
    const pods = s.nodes.reduce((a, n) => a + n.pods.length, 0);
    const segs = (s.options.segments ?? 1) > 1 ? `, ${s.options.segments} segments` : "";
    p.done(`lab "${s.name}" up: ${plural(s.nodes.length, "node")}, ${plural(pods, "pod")} (${s.options.mode}, ${wiring} wiring${s.options.runtime === "containerd" ? ", containerd" : ""}, ${source} source, ${s.options.routing}${segs}${s.options.clusterCidr6 ? ", dual-stack" : ""}${s.options.fastPath ? ", fast path" : ""})`);
    return 0;
  } catch (e) {
    // Say "left for inspection" only when this `up` left something (not when it refused to start).
    const left = !existed && (labExists(v.name) || strayNamespaces(v.name, []).length > 0);
    if (left) (e as Error).message += `\nthe lab is left as it is for inspection: remove it with \`mncni lab down --name ${v.name}\``;
    else if (!existed) rmSync(labDir(v.name), { recursive: true, force: true }); // only its lock file
    throw e;
  }
}
