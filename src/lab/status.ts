// `lab status`: what the lab is made of, read from its state and checked against the kernel
// (as data; cli/text/lab-status.ts renders it).
import { firstConfFile } from "./executor.ts";
import { listPods, type LabPod } from "./pod-list.ts";
import { listServices, type LabService } from "./service-list.ts";
import { dnsAddresses } from "./dns/lab-dns.ts";
import { ipJson, netnsExecArgv, pidAlive, runAsync } from "./sh.ts";
import { nodeAddresses, type LabState } from "./state.ts";
import { EXTERNAL, EXTERNAL6, labDir, manifestsDir, nodePaths, ns, segmentPlan } from "./topology.ts";
import { actualPaths, expectedPath, type PeerPath } from "./expected-routes.ts";
import { AGENT_HEALTH_PORT } from "../base/ports.ts";
import { podMTUWhy, routingBackends, type RoutingName } from "../agent/routing/index.ts";
import { familyOf } from "../net/ip.ts";
import type { ReadyzBody } from "../obs/pod-mtu.ts";
import { apiView } from "./api-view.ts";
import { onKubernetes } from "./control-plane.ts";
import { adminKubeconfig, labApiPort } from "./apiserver/lab-server.ts";

export interface LabStatus {
  name: string;
  /** false while `up` runs or after it was interrupted: parts may be missing. */
  complete: boolean;
  mode: string;
  wiring: string;
  /** Where the agents read the cluster: kubernetes (the lab's API server) or dir (its manifests directory). */
  source: string;
  /** The lab's API server (kubernetes source): its address for people and the admin kubeconfig for kubectl. */
  apiserver?: { url: string; kubeconfig: string };
  /** How pod sandboxes are made (`up --runtime`): direct or containerd. */
  runtime: string;
  /** What the agents were told (--routing). */
  routing: string;
  clusterCidr: string;
  /** Dual-stack labs only. */
  clusterCidr6?: string;
  binary?: string;
  nodes: {
    name: string;
    namespace: string;
    address: string;
    /** Every underlay address (IPv4, then IPv6 in a dual-stack lab). */
    addresses: string[];
    podCIDRs: string[];
    /** The underlay segment (switch) the node is on. */
    segment: number;
    /** Per peer: the path its pod CIDRs take from this node, read from the node's routes ("none": a route missing), and the path expected. */
    paths: { peer: string; path: PeerPath | "none"; expected: PeerPath }[];
    agentPid?: number;
    agentAlive?: boolean;
    /** The node's containerd (`--runtime containerd`): its PID and whether it runs (a node without its runtime is not ready). */
    containerdPid?: number;
    containerdAlive?: boolean;
    /** The agent's own answer on /readyz (127.0.0.1:AGENT_HEALTH_PORT in the node), when it runs. */
    agentReadyz?: string;
    /** What the agent reports on /readyz without being not ready: a peer publishing another pod MTU. */
    warnings: string[];
    /** Pods whose ADD failed and whose rollback DEL failed too (address still reserved; the DEL is tried again), with its error. */
    pendingDel?: { pod: string; error: string }[];
    /** The pod MTU published on the node's Node manifest (status condition MncniPodMTU): what its agent wrote into its conflist. */
    podMTU?: number;
    /** Why the pod MTU is what it is: "1450 = 1500 underlay − 50 VXLAN headroom kept by auto (...)". */
    podMTUWhy?: string;
    echoPid?: number;
    /** Has a CNI config and, with an agent, the agent is alive and answers /readyz with 2xx. */
    ready: boolean;
    /** Why it is not ready, one sentence each (the agent's own /readyz reasons when it answers); empty when ready. */
    notReady: string[];
    cniConfig: string | null;
    dir: string;
  }[];
  /** name: the lab's pod name; k8sName: the Pod's name in Kubernetes; namespace: its network namespace. */
  pods: LabPod[];
  /** The lab's Services with their addresses, ports and endpoints (`lab service list`). */
  services: LabService[];
  /** The lab's DNS server: where it listens (pods' nameservers), its PID and whether it runs. */
  dns?: { addresses: string[]; pid: number; alive: boolean };
  external: { namespace: string; address: string; router: string; address6?: string; router6?: string };
  underlay: { switch: string; router: string; cidr: string; routerAddress: string; cidr6?: string; routerAddress6?: string };
  /** Every segment: its switch and subnets (the first is `underlay`'s). */
  segments: { segment: number; switch: string; cidr: string; routerAddress: string; cidr6?: string; routerAddress6?: string }[];
  dirs: { lab: string; manifests: string };
}

const AGENT_READYZ = `http://127.0.0.1:${AGENT_HEALTH_PORT}/readyz`;

function segmentInfo(s: LabState, k: number) {
  const u = segmentPlan(k, s.options.segments ?? 1, 4);
  const u6 = segmentPlan(k, s.options.segments ?? 1, 6);
  return {
    switch: ns.switch(s.name, k),
    cidr: u.cidr,
    routerAddress: u.router,
    ...(s.options.clusterCidr6 ? { cidr6: u6.cidr, routerAddress6: u6.router } : {}),
  };
}

async function readyz(s: LabState, nodeNs: string): Promise<{ ok: boolean; answer: string }> {
  const r = await runAsync(netnsExecArgv(nodeNs, [...s.options.selfCmd, "lab", "_http", AGENT_READYZ]), { timeoutMs: 5000 });
  return { ok: r.code === 0, answer: r.stdout.trim() || r.stderr.trim() };
}

/** The node's agent's /readyz as JSON (`lab inspect` shows its pod MTU and why), or why there is none. */
export async function agentReadyz(s: LabState, node: { ns: string }): Promise<{ podMTU?: ReadyzBody["podMTU"]; error?: string }> {
  if (s.options.wiring !== "agent") return { error: `lab "${s.name}" runs no agent (${s.options.wiring} wiring)` };
  const r = await runAsync(netnsExecArgv(node.ns, [...s.options.selfCmd, "lab", "_http", `${AGENT_READYZ}?format=json`]), { timeoutMs: 5000 });
  const out = r.stdout.trim();
  try {
    // `_http` prints the status code first.
    const body = JSON.parse(out.slice(out.indexOf(" ") + 1)) as ReadyzBody;
    return body.podMTU ? { podMTU: body.podMTU } : {};
  } catch {
    return { error: out || r.stderr.trim() || `exit ${r.code}` };
  }
}

/** The "- ..." lines under "warnings:" of a /readyz text body. */
function readyzWarnings(answer: string | undefined): string[] {
  const lines = (answer ?? "").split("\n");
  const at = lines.indexOf("warnings:");
  return at < 0 ? [] : lines.slice(at + 1).filter((l) => l.startsWith("- ")).map((l) => l.slice(2));
}

/** The "- ..." lines under "not ready:" of a /readyz text body (the lab's `_http` puts the status code first). */
function readyzReasons(answer: string): string[] {
  const lines = answer.split("\n");
  const at = lines.findIndex((l) => l.endsWith("not ready:"));
  if (at < 0) return [];
  const end = lines.findIndex((l, i) => i > at && !l.startsWith("- "));
  return lines.slice(at + 1, end < 0 ? undefined : end).map((l) => l.slice(2));
}

/** Why a node is not ready: no CNI config, no live agent, or what its agent says on /readyz. */
function notReadyReasons(s: LabState, n: LabState["nodes"][number], confDir: string, conf: string | null, agentAlive: boolean | undefined, answer: { ok: boolean; answer: string } | undefined): string[] {
  const reasons = conf === null ? [`no CNI config in ${confDir}`] : [];
  if (s.options.wiring !== "agent") return reasons;
  if (!n.agentPid) return [...reasons, "no agent started"];
  if (agentAlive !== true) return [...reasons, `agent (pid ${n.agentPid}) is not running (see its agent.log)`];
  if (answer?.ok) return reasons;
  const said = readyzReasons(answer?.answer ?? "");
  return [...reasons, ...(said.length ? said : [`agent does not answer /readyz: ${answer?.answer || "no answer"}`])];
}

/** The node's pod MTU explained from its underlay link (eth0) and the lab's routing backend. */
function mtuWhy(s: LabState, n: LabState["nodes"][number], mtu: number): string {
  let underlay: number | undefined;
  try {
    underlay = ipJson<{ mtu: number }[]>(n.ns, ["link", "show", "eth0"])[0]?.mtu;
  } catch {
    underlay = undefined;
  }
  const backend = routingBackends()[s.options.routing as RoutingName];
  const overhead = backend ? Math.max(0, ...nodeAddresses(n).map((a) => backend.mtuOverhead(familyOf(a)))) : 0;
  return podMTUWhy({ mtu, ...(underlay !== undefined ? { underlay } : {}), overhead, routing: s.options.routing });
}

export async function labStatus(s: LabState): Promise<LabStatus> {
  const [agentAnswers, api] = await Promise.all([s.options.wiring === "agent" ? Promise.all(s.nodes.map((n) => readyz(s, n.ns))) : [], apiView(s)]);
  const port = labApiPort(s.name);
  return {
    name: s.name,
    complete: s.complete !== false,
    mode: s.options.mode,
    wiring: s.options.wiring,
    source: s.options.source ?? "dir",
    ...(onKubernetes(s) && port !== undefined ? { apiserver: { url: `https://127.0.0.1:${port}`, kubeconfig: adminKubeconfig(s.name) } } : {}),
    runtime: s.options.runtime ?? "direct",
    routing: s.options.routing,
    clusterCidr: s.options.clusterCidr,
    ...(s.options.clusterCidr6 ? { clusterCidr6: s.options.clusterCidr6 } : {}),
    binary: s.options.binary,
    nodes: s.nodes.map((n, i) => {
      const p = nodePaths(s.name, n.name);
      const conf = firstConfFile(p.confDir);
      const agentAlive = n.agentPid ? pidAlive(n.agentPid) : undefined;
      const containerdAlive = s.options.runtime === "containerd" ? !!n.containerdPid && pidAlive(n.containerdPid) : undefined;
      const notReady = [
        ...notReadyReasons(s, n, p.confDir, conf, agentAlive, agentAnswers[i]),
        ...(containerdAlive === false ? [`containerd (pid ${n.containerdPid ?? "none"}) is not running (see ${p.containerdDir}/containerd.log; \`lab node restart-runtime ${n.name}\`)`] : []),
      ];
      return {
        name: n.name,
        namespace: n.ns,
        address: n.address,
        addresses: nodeAddresses(n),
        podCIDRs: api?.podCIDRs.get(n.name) ?? n.podCidrs,
        segment: n.segment ?? 0,
        paths: [...actualPaths(s, n)].map(([peer, path]) => ({ peer, path, expected: expectedPath(s, n, s.nodes.find((x) => x.name === peer)!) })),
        agentPid: n.agentPid,
        agentAlive,
        ...(containerdAlive !== undefined ? { containerdPid: n.containerdPid, containerdAlive } : {}),
        echoPid: n.echoPid,
        agentReadyz: agentAnswers[i]?.answer,
        warnings: readyzWarnings(agentAnswers[i]?.answer),
        ...(n.pendingDel?.length ? { pendingDel: n.pendingDel.map((p) => ({ pod: p.name, error: p.delError })) } : {}),
        ...(n.podMTU !== undefined ? { podMTU: n.podMTU, podMTUWhy: mtuWhy(s, n, n.podMTU) } : {}),
        ready: notReady.length === 0,
        notReady,
        cniConfig: conf,
        dir: p.dir,
      };
    }),
    pods: listPods(s, api?.podLabels),
    services: await listServices(s).catch(() => []),
    ...(s.dnsPid ? { dns: { addresses: dnsAddresses(s), pid: s.dnsPid, alive: pidAlive(s.dnsPid) } } : {}),
    external: {
      namespace: ns.external(s.name),
      address: EXTERNAL.host,
      router: EXTERNAL.router,
      ...(s.options.clusterCidr6 ? { address6: EXTERNAL6.host, router6: EXTERNAL6.router } : {}),
    },
    underlay: { router: ns.router(s.name), ...segmentInfo(s, 0) },
    segments: Array.from({ length: s.options.segments ?? 1 }, (_, k) => ({ segment: k, ...segmentInfo(s, k) })),
    dirs: { lab: labDir(s.name), manifests: manifestsDir(s.name) },
  };
}
