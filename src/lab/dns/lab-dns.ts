// The lab's cluster DNS: one server per lab in the router's namespace, on the router's first
// underlay address (every node reaches it; pods through their node's masquerade), reading
// Services and EndpointSlices from the same source the agents read. Pods resolve through it
// with the resolv.conf kubelet writes for dnsPolicy ClusterFirst, placed in
// /etc/netns/<pod namespace>/, which `ip netns exec` (so `lab exec`) mounts over /etc.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openSource } from "../../cluster/index.ts";
import type { ClusterState } from "../../cluster/index.ts";
import { netnsExecArgv, pidAlive, spawnDetached, stopProcess, waitFor } from "../sh.ts";
import { saveState, type LabState } from "../state.ts";
import { labDir, manifestsDir, ns, segmentPlan } from "../topology.ts";
import { labApiAddress, onKubernetes } from "../control-plane.ts";
import { writeComponentKubeconfig } from "../apiserver/lab-server.ts";
import { serveDns, type DnsServer } from "./server.ts";
import { CLUSTER_DOMAIN, DnsZone } from "./zone.ts";

export const DNS_PORT = 53;
const NETNS_ETC = "/etc/netns";

/** The addresses the lab's DNS listens on: the router's on segment 0, per family of the lab. */
export function dnsAddresses(s: Pick<LabState, "options">): string[] {
  const segments = s.options.segments ?? 1;
  return [segmentPlan(0, segments, 4).router, ...(s.options.clusterCidr6 ? [segmentPlan(0, segments, 6).router] : [])];
}

/** What kubelet puts in a ClusterFirst pod's resolv.conf (and a CRI sandbox's DNSConfig). */
export function podDnsConfig(s: Pick<LabState, "options">, namespace: string): { servers: string[]; searches: string[]; options: string[] } {
  return { servers: dnsAddresses(s), searches: [`${namespace}.svc.${CLUSTER_DOMAIN}`, `svc.${CLUSTER_DOMAIN}`, CLUSTER_DOMAIN], options: ["ndots:5"] };
}

/** The first line of every resolv.conf the lab writes: `down` removes only files that carry it. */
const marker = (lab: string) => `# mncni lab ${lab}: cluster DNS (dnsPolicy ClusterFirst)`;

export function writePodResolvConf(s: LabState, pod: { ns: string; namespace: string }): void {
  const c = podDnsConfig(s, pod.namespace);
  const dir = join(NETNS_ETC, pod.ns);
  mkdirSync(dir, { recursive: true });
  const text = [marker(s.name), ...c.servers.map((a) => `nameserver ${a}`), `search ${c.searches.join(" ")}`, `options ${c.options.join(" ")}`, ""].join("\n");
  writeFileSync(join(dir, "resolv.conf"), text);
}

/** Removes the resolv.conf the lab wrote for a namespace (and the directory when that leaves it empty). */
export function removeResolvConf(lab: string, netns: string): void {
  const dir = join(NETNS_ETC, netns);
  const file = join(dir, "resolv.conf");
  try {
    if (!readFileSync(file, "utf8").startsWith(marker(lab))) return;
  } catch {
    return;
  }
  rmSync(file, { force: true });
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    /* gone already */
  }
}

/** Every resolv.conf of this lab's namespaces (`<lab>-…`), including those its state file missed. */
export function removeLabResolvConfs(lab: string): void {
  if (!existsSync(NETNS_ETC)) return;
  for (const n of readdirSync(NETNS_ETC)) if (n.startsWith(`${lab}-`)) removeResolvConf(lab, n);
}

export const dnsMarker = (lab: string) => `_dns --lab ${lab} `;

/** Whether a process (in its own namespace) has UDP port 53 bound: /proc/PID/net is the process's namespace's view. */
function listening(pid: number): boolean {
  try {
    const port = DNS_PORT.toString(16).toUpperCase().padStart(4, "0");
    return ["udp", "udp6"].some((f) => existsSync(`/proc/${pid}/net/${f}`) && readFileSync(`/proc/${pid}/net/${f}`, "utf8").includes(`:${port} `));
  } catch {
    return false;
  }
}

/** Starts the lab's DNS server in the router's namespace and waits until it listens. */
export async function startLabDns(s: LabState): Promise<number> {
  const argv = [
    // On the kubernetes source it reads the API (its own token, the lab address: it runs in the router), as CoreDNS does.
    ...s.options.selfCmd, "lab", "_dns", "--lab", s.name, "--source", onKubernetes(s) ? `kubernetes:${writeComponentKubeconfig(s.name, "lab-dns", labApiAddress(s))}` : `dir:${manifestsDir(s.name)}`,
    ...dnsAddresses(s).flatMap((a) => ["--listen", a]),
  ];
  const pid = spawnDetached(netnsExecArgv(ns.router(s.name), argv), join(labDir(s.name), "dns.log"));
  s.dnsPid = pid;
  saveState(s);
  await waitFor(`the lab's DNS server (PID ${pid}, log ${join(labDir(s.name), "dns.log")}) to listen`, () => {
    if (!pidAlive(pid)) throw new Error(`cannot start the lab's DNS server: it exited (see ${join(labDir(s.name), "dns.log")})`);
    return listening(pid);
  }, 10_000);
  return pid;
}

export async function stopLabDns(s: LabState): Promise<void> {
  if (s.dnsPid) await stopProcess(s.dnsPid, dnsMarker(s.name));
  s.dnsPid = undefined;
}

/** The zone of a cluster state: its Services and their EndpointSlices. */
export function zoneOf(state: ClusterState): DnsZone {
  return new DnsZone(state.services.values(), state.endpointSlices.values());
}

/** The server process (`lab _dns`): the source's Services and EndpointSlices, rebuilt into a zone on every change. */
export async function runLabDns(opts: { source: string; addresses: string[]; port: number; log?: (line: string) => void }): Promise<DnsServer> {
  const source = openSource(opts.source, { services: true, resyncSeconds: 2 });
  await source.start();
  let zone = zoneOf(source.snapshot().state);
  source.watch(() => {
    zone = zoneOf(source.snapshot().state);
    opts.log?.(`zone: ${zone.dump().length} records`);
  });
  const server = await serveDns({ addresses: opts.addresses, port: opts.port, zone: () => zone });
  opts.log?.(`serving DNS on ${opts.addresses.map((a) => (a.includes(":") ? `[${a}]` : a)).join(", ")} port ${opts.port} (UDP, TCP); zone: ${zone.dump().length} records`);
  return {
    stop() {
      server.stop();
      source.close();
    },
  };
}
