// Bring-up, change and tear-down of a lab. Every creation is recorded in the state file first,
// so `down` removes a half-built lab as well as a complete one.
import { mkdirSync, rmSync } from "node:fs";
import { elsewhere, strayNamespaces } from "./inventory.ts";
import { labClient, onKubernetes, startApiServer, startControllers, stopApiServer, stopControllers, apiserverMarker } from "./control-plane.ts";
import { labObjects } from "./objects.ts";
import { isNotFound } from "../kube/index.ts";
import { KINDS, type Obj } from "./apiserver/kinds.ts";
import { apiserverDir } from "./apiserver/lab-server.ts";
import { addPod, echoMarker, refreshNodeEcho, removePod, startEcho, stopEcho } from "./pods.ts";
import type { Progress } from "./progress.ts";
import { netnsPids, pidsMentioning, pool, stopProcess } from "./sh.ts";
import { allPods, findNode, loadState, nodeAddresses, saveState, type LabOptions, type LabState, type NodeState } from "./state.ts";
import { LAB_ROOT, NODE_CIDR_SIZE6, labDir, manifestsDir, nameProblem, nodeAddress, nodePaths, ns, segmentOf } from "./topology.ts";
import { NodeCIDRAllocator, type FamilyPool } from "../controller/cidr-allocator.ts";
import { createNodeNetwork, createUnderlay, deleteNetns } from "./underlay.ts";
import { publishPodMTU } from "./pod-mtu.ts";
import { startAgent, waitAgentReady } from "./wiring-agent.ts";
import { wiringFor } from "./wiring.ts";
import { runtimeFor } from "./runtimes.ts";
import { parseCIDR } from "../net/ip.ts";
import { dnsAddresses, removeLabResolvConfs, startLabDns, stopLabDns } from "./dns/lab-dns.ts";
import { LAB_AGENT_WAIT_MS } from "./waits.ts";

export interface UpOptions extends LabOptions {
  name: string;
  nodes: number;
  podsPerNode: number;
}

/** How many CNI ADDs run at once (the machine has few cores; plugins are short-lived). */
const ADD_PARALLELISM = 4;

export function validateOptions(o: UpOptions): void {
  const why = nameProblem(o.name, 10);
  if (why) throw new Error(`cannot use lab name "${o.name}": ${why}`);
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 200) throw new Error(`cannot use --nodes "${o.nodes}": must be 1..200`);
  if (!Number.isInteger(o.podsPerNode) || o.podsPerNode < 0 || o.podsPerNode > 200) throw new Error(`cannot use --pods-per-node "${o.podsPerNode}": must be 0..200`);
  const segments = o.segments ?? 1;
  if (!Number.isInteger(segments) || segments < 1 || segments > 16) throw new Error(`cannot use --segments "${segments}": must be 1..16`);
  if (o.wiring === "static" && o.routing !== "host-gw") throw new Error(`cannot use --routing "${o.routing}" with static wiring: the lab programs host-gw routes itself (use agent wiring)`);
  if (o.wiring === "static" && o.source === "kubernetes") throw new Error(`cannot use --source kubernetes with static wiring: no agent reads the API (use agent wiring, or --source dir)`);
  if (o.wiring === "static" && o.fastPath) throw new Error(`cannot use --fast-path on with static wiring: the fast path is the agent's and its plugin's (use agent wiring)`);
  if (o.wiring === "static" && segments > 1) throw new Error(`cannot use --segments "${segments}" with static wiring: host-gw routes cannot cross segments (use agent wiring)`);
  // host-gw needs every peer on a connected subnet: across segments no node could reach the others' pods.
  if (o.wiring === "agent" && o.routing === "host-gw" && segments > 1) throw new Error(`cannot use --segments "${segments}" with --routing "host-gw": host-gw routes only reach nodes on the same segment (use --routing auto or --routing vxlan)`);
  let prefix: number;
  try {
    prefix = parseCIDR(o.clusterCidr, 4).prefixLen;
  } catch (e) {
    throw new Error(`cannot use cluster CIDR "${o.clusterCidr}": ${(e as Error).message}`);
  }
  if (o.nodeCidrSize <= prefix || o.nodeCidrSize > 28) throw new Error(`cannot use --node-cidr-size "${o.nodeCidrSize}": must be in (${prefix}, 28]`);
  if (o.clusterCidr6 !== undefined) {
    let c6;
    try {
      c6 = parseCIDR(o.clusterCidr6, 6);
    } catch (e) {
      throw new Error(`cannot use IPv6 cluster CIDR "${o.clusterCidr6}": ${(e as Error).message}`);
    }
    if (c6.prefixLen >= NODE_CIDR_SIZE6) throw new Error(`cannot use IPv6 cluster CIDR "${o.clusterCidr6}": must be wider than /${NODE_CIDR_SIZE6}`);
  }
  // What the controller's allocator refuses (more than 2^16 node subnets), refused here too.
  try {
    new NodeCIDRAllocator(nodePools(o));
  } catch (e) {
    throw new Error(`cannot use --node-cidr-size "${o.nodeCidrSize}": ${(e as Error).message}`);
  }
}

function nodePools(o: Pick<UpOptions, "clusterCidr" | "clusterCidr6" | "nodeCidrSize">): FamilyPool[] {
  return [
    { family: 4, clusterCIDR: o.clusterCidr, nodeMaskSize: o.nodeCidrSize },
    ...(o.clusterCidr6 ? [{ family: 6 as const, clusterCIDR: o.clusterCidr6, nodeMaskSize: NODE_CIDR_SIZE6 }] : []),
  ];
}

/**
 * The lab is the node IPAM, with the controller's allocator (one implementation): subnet 0 of
 * each cluster CIDR is left unused, so node k gets the k-th /size; the lowest free one after a
 * node was removed.
 */
export function allocatePodCidrs(s: Pick<LabState, "options" | "nodes">): string[] {
  const alloc = new NodeCIDRAllocator(nodePools(s.options));
  alloc.allocate(); // a fresh allocator hands out subnet 0 first: taken, never given to a node
  for (const n of s.nodes) for (const c of n.podCidrs) alloc.occupy(c);
  const got = alloc.allocate();
  if (got) return got;
  const full = alloc.usage().find((u) => u.allocated >= u.size)!;
  const size = full.family === 4 ? s.options.nodeCidrSize : NODE_CIDR_SIZE6;
  throw new Error(`cannot allocate pod CIDR: "${full.clusterCIDR}" has no /${size} left`);
}

function newNode(s: LabState, name: string): NodeState {
  const why = nameProblem(name);
  if (why) throw new Error(`cannot add node "${name}": name ${why}`);
  if (findNode(s, name)) throw new Error(`cannot add node "${name}": already in lab "${s.name}"`);
  const used = (k: "index" | "cidrIndex") => new Set(s.nodes.map((n) => n[k]));
  const firstFree = (set: Set<number>) => {
    let i = 1;
    while (set.has(i)) i++;
    return i;
  };
  const m = /^node(\d+)$/.exec(name);
  const index = m && !used("index").has(Number(m[1])) ? Number(m[1]) : firstFree(used("index"));
  // Recorded for the state file; the CIDRs themselves come from the allocator (the same slot).
  const cidrIndex = firstFree(used("cidrIndex"));
  // On the kubernetes source the controller allocates them (waitPodCidrs).
  const podCidrs = onKubernetes(s) ? [] : allocatePodCidrs(s);
  const c6 = s.options.clusterCidr6;
  const segment = segmentOf(index, s.options.segments ?? 1);
  return {
    name, index, ns: ns.node(s.name, name), address: nodeAddress(index, 4, segment), ...(c6 ? { address6: nodeAddress(index, 6, segment) } : {}),
    ...(segment ? { segment } : {}), podCidrs, cidrIndex, pods: [],
  };
}

export function nextNodeName(s: LabState): string {
  for (let i = 1; ; i++) if (!findNode(s, `node${i}`)) return `node${i}`;
}

const NODES = KINDS.find((k) => k.plural === "nodes")!;

/** The pod CIDRs the controller gave the node's Node (one per family of the lab). */
async function waitPodCidrs(s: LabState, node: NodeState): Promise<string[]> {
  const c = labClient(s);
  const want = s.options.clusterCidr6 ? 2 : 1;
  const deadline = Date.now() + LAB_AGENT_WAIT_MS;
  for (;;) {
    let got: string[] = [];
    try {
      got = ((await c.get(NODES, { name: node.name })) as Obj).spec?.podCIDRs ?? [];
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    if (got.length >= want) return got;
    if (Date.now() > deadline) throw new Error(`cannot get pod CIDRs for node "${node.name}": the controllers gave none in ${LAB_AGENT_WAIT_MS} ms (see ${apiserverDir(s.name)}/controller-*.log)`);
    await Bun.sleep(25);
  }
}

/** Creates a node: namespace, underlay port, directories, Node object, pod CIDRs, wiring (agent). */
async function createNode(s: LabState, name: string, p: Progress): Promise<NodeState> {
  const node = newNode(s, name);
  s.nodes.push(node);
  saveState(s);
  createNodeNetwork(s, node);
  const paths = nodePaths(s.name, node.name);
  for (const d of [paths.confDir, paths.binDir, paths.ipamDir, paths.cacheDir]) mkdirSync(d, { recursive: true });
  const objects = labObjects(s);
  // As kubelet registers its Node; on the kubernetes source the controller then gives it pod CIDRs.
  await objects.putNode(node);
  if (onKubernetes(s)) {
    node.podCidrs = await waitPodCidrs(s, node);
    saveState(s);
  }
  p.step(`${node.name}: ${nodeAddresses(node).join(",")}, pods ${node.podCidrs.join(",")}, starting ${s.options.wiring} wiring`);
  await wiringFor(s.options.wiring).start(s, node);
  await runtimeFor(s).startNode(s, node);
  // The agent has written its conflist: its pod MTU goes on the Node, for the peers to compare.
  publishPodMTU(s, node);
  await objects.nodeReady(node);
  saveState(s);
  return node;
}

async function addPods(s: LabState, nodes: NodeState[], perNode: number, p: Progress): Promise<void> {
  const jobs = nodes.flatMap((n) => Array.from({ length: perNode }, () => n));
  let done = 0;
  // Names are picked before the parallel ADDs so two jobs never choose the same one.
  const named = jobs.map((n, i) => ({ n, name: `pod${n.pods.length + 1 + jobs.slice(0, i).filter((m) => m === n).length}` }));
  await pool(named, ADD_PARALLELISM, async ({ n, name }) => {
    await addPod(s, n, name);
    p.step(`pods: ${++done}/${jobs.length}`);
  });
  for (const n of nodes) await refreshNodeEcho(s, n);
}

export async function up(o: UpOptions, p: Progress): Promise<LabState> {
  validateOptions(o);
  const existing = loadState(o.name);
  if (existing) throw new Error(`cannot create lab "${o.name}": it exists (run \`mncni lab down --name ${o.name}\` first)`);
  const { name, nodes, podsPerNode, ...options } = o;
  const s: LabState = { name, createdAt: new Date().toISOString(), complete: false, options, namespaces: [], nodes: [] };
  mkdirSync(manifestsDir(name), { recursive: true });
  saveState(s);
  p.step(`underlay: ${(s.options.segments ?? 1) > 1 ? `${s.options.segments} switches` : "switch"}, router, external host`);
  createUnderlay(s);
  s.extEchoPid = startEcho(s, ns.external(name), [ns.external(name)]);
  saveState(s);
  if (onKubernetes(s)) {
    p.step("control plane: API server, 2 controllers");
    await startApiServer(s);
    startControllers(s);
  }
  // After the API server: on the kubernetes source the DNS server reads it.
  p.step(`cluster DNS: ${dnsAddresses(s).join(", ")} port 53 in ${ns.router(name)}`);
  await startLabDns(s);
  await Promise.all(Array.from({ length: nodes }, (_, i) => `node${i + 1}`).map(async (n) => {
    // Node creation is serialised on the state; agents start in parallel.
    await createNode(s, n, p);
  }));
  p.step(`${s.options.routing} routes: converging`);
  await wiringFor(s.options.wiring).converge(s);
  await addPods(s, s.nodes, podsPerNode, p);
  s.complete = true;
  saveState(s);
  return s;
}

export async function addNode(s: LabState, name: string, pods: number, p: Progress): Promise<NodeState> {
  const node = await createNode(s, name, p);
  await wiringFor(s.options.wiring).converge(s);
  await addPods(s, [node], pods, p);
  return node;
}

/** Pods are deleted through CNI first, as a drained node would; then the node goes. */
export async function removeNode(s: LabState, node: NodeState, p: Progress): Promise<void> {
  await stopEcho(s, node.echoPid);
  node.echoPid = undefined;
  for (const pod of [...node.pods]) {
    p.step(`${node.name}: removing ${pod.name}`);
    await removePod(s, node, pod, { refreshEcho: false });
  }
  await labObjects(s).removeNode(node.name);
  await runtimeFor(s).stopNode(s, node);
  await wiringFor(s.options.wiring).stop(s, node);
  for (const pid of netnsPids(node.ns)) await stopProcess(pid, "");
  deleteNetns(node.ns);
  rmSync(nodePaths(s.name, node.name).dir, { recursive: true, force: true });
  s.nodes = s.nodes.filter((n) => n !== node);
  s.namespaces = s.namespaces.filter((n) => n !== node.ns);
  saveState(s);
  // The switch port went with the node's namespace (its veth peer).
  p.step(`${s.options.routing} routes: converging`);
  await wiringFor(s.options.wiring).converge(s);
}

/** Restarts a node's agent (after a crash or a kill); pods must keep working meanwhile. */
export async function restartAgent(s: LabState, node: NodeState): Promise<number> {
  if (s.options.wiring !== "agent") throw new Error(`cannot restart agent of "${node.name}": lab "${s.name}" uses ${s.options.wiring} wiring`);
  await wiringFor("agent").stop(s, node);
  const pid = startAgent(s, node);
  saveState(s);
  await waitAgentReady(s, node);
  publishPodMTU(s, node);
  saveState(s);
  return pid;
}

/**
 * Removes everything of a lab, complete or half-built, including what its state file missed:
 * namespaces named <lab>-..., and processes started with the lab's markers. Idempotent.
 * Returns whether there was anything to remove.
 */
export async function down(name: string, p: Progress): Promise<boolean> {
  const s = loadState(name);
  // Without a state here, the namespaces may be a live lab of another root: not ours to take.
  const other = s ? null : elsewhere(name);
  if (other) throw new Error(`cannot remove lab "${name}": it lives under ${other}, not ${LAB_ROOT} (run it with MNCNI_LAB_ROOT=${other})`);
  if (s) {
    p.step(`stopping processes of lab "${name}"`);
    await Promise.all([s.extEchoPid, ...s.nodes.map((n) => n.echoPid)].map((pid) => stopEcho(s, pid)));
    await stopLabDns(s);
    await Promise.all(s.nodes.map((n) => runtimeFor(s).stopNode(s, n)));
    await Promise.all(s.nodes.map((n) => wiringFor(s.options.wiring).stop(s, n)));
    await stopControllers(s);
    await stopApiServer(s);
  }
  const listed = s?.namespaces ?? [];
  const stray = strayNamespaces(name, listed);
  const all = [...listed, ...stray];
  // Anything else still inside a lab namespace (an exec'd shell, an agent started by hand),
  // and the lab's own processes wherever they run.
  const pids = new Set([...all.flatMap((n) => netnsPids(n)), ...labMarkers(name).flatMap(pidsMentioning)]);
  await Promise.all([...pids].map((pid) => stopProcess(pid, "", 1000)));
  if (all.length) p.step(`deleting ${all.length} namespaces${stray.length ? ` (${stray.length} not in the state file)` : ""}`);
  for (const n of [...stray, ...[...listed].reverse()]) deleteNetns(n);
  removeLabResolvConfs(name);
  rmSync(labDir(name), { recursive: true, force: true });
  return s !== null || stray.length > 0 || pids.size > 0;
}

/** Command-line fragments only the lab's own processes carry: its node directories, its echo servers. */
function labMarkers(name: string): string[] {
  return [`${labDir(name)}/nodes/`, `${labDir(name)}/apiserver/`, apiserverMarker(name), echoMarker(name)];
}

export { findNode, allPods };
