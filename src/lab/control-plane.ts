// The lab's control plane on the Kubernetes source (the default): its API server, one process
// per lab with its state in the lab's directory, listening on 127.0.0.1 for people and on the
// router's underlay address for the nodes; two `mncni controller` replicas with leader
// election in the router's namespace, allocating the nodes' pod CIDRs as they do on a cluster
// and writing the Services' EndpointSlices (--endpoint-slices);
// and the client the lab's own commands use (the "lab" token).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { KubeClient, loadKubeconfig } from "../kube/index.ts";
import { apiserverDir, componentKubeconfig, labApiPort, writeComponentKubeconfig } from "./apiserver/lab-server.ts";
import { netnsExecArgv, pidAlive, spawnDetached, stopProcess } from "./sh.ts";
import { saveState, type LabState } from "./state.ts";
import { NODE_CIDR_SIZE6, ns, segmentPlan } from "./topology.ts";
import { LAB_AGENT_WAIT_MS } from "./waits.ts";

const REPLICAS = 2;

/** The lab runs the Kubernetes source: an API server, controllers, agents on `--source kubernetes`. */
export const onKubernetes = (s: LabState): boolean => s.options.source === "kubernetes";

/** Where the nodes reach the API server: the router's address on the first segment (every node routes there). */
export const labApiAddress = (s: LabState): string => segmentPlan(0, s.options.segments ?? 1, 4).router;

/** Command-line fragment only the API server of this lab carries (`lab down` finds it by it). */
export const apiserverMarker = (lab: string): string => `lab apiserver --name ${lab} --lab-address`;

async function answers(lab: string): Promise<boolean> {
  const port = labApiPort(lab);
  if (port === undefined) return false;
  try {
    const r = await fetch(`https://127.0.0.1:${port}/readyz`, { tls: { ca: await Bun.file(join(apiserverDir(lab), "ca.crt")).text() }, signal: AbortSignal.timeout(1000) });
    return r.ok;
  } catch {
    return false;
  }
}

/** Starts the lab's API server (again: a restarted one keeps its objects, port and tokens) and waits until it answers. */
export async function startApiServer(s: LabState): Promise<void> {
  const dir = apiserverDir(s.name);
  mkdirSync(dir, { recursive: true });
  const argv = [...s.options.selfCmd, "lab", "apiserver", "--name", s.name, "--lab-address", labApiAddress(s), "--lab-netns", ns.router(s.name)];
  const pid = spawnDetached(argv, join(dir, "apiserver.log"));
  s.apiserverPid = pid;
  saveState(s);
  const deadline = Date.now() + LAB_AGENT_WAIT_MS;
  while (!(await answers(s.name))) {
    if (!pidAlive(pid)) throw new Error(`cannot start the lab's API server: it exited (see ${join(dir, "apiserver.log")})`);
    if (Date.now() > deadline) throw new Error(`cannot start the lab's API server: no answer after ${LAB_AGENT_WAIT_MS} ms (see ${join(dir, "apiserver.log")})`);
    await Bun.sleep(30);
  }
  writeComponentKubeconfig(s.name, "lab", "127.0.0.1");
}

export async function stopApiServer(s: LabState): Promise<void> {
  // SIGTERM: the server writes its objects out before it exits.
  if (s.apiserverPid) await stopProcess(s.apiserverPid, apiserverMarker(s.name), 5000);
  s.apiserverPid = undefined;
}

/** The pod networks as the controller takes them: IPv4, then IPv6 in a dual-stack lab. */
const clusterCidrs = (s: LabState) => [s.options.clusterCidr, ...(s.options.clusterCidr6 ? [s.options.clusterCidr6] : [])].join(",");

/** Two controller replicas with leader election (short timings: a lab's failover takes seconds, not a minute). */
export function startControllers(s: LabState): void {
  if (!s.options.binary) throw new Error("cannot start the controllers: no mncni executable (pass --binary)");
  const dir = apiserverDir(s.name);
  const kubeconfig = writeComponentKubeconfig(s.name, "controller", labApiAddress(s));
  s.controllerPids = Array.from({ length: REPLICAS }, (_, i) =>
    spawnDetached(netnsExecArgv(ns.router(s.name), [
      s.options.binary!, "controller",
      "--kubeconfig", kubeconfig,
      "--cluster-cidr", clusterCidrs(s),
      "--node-cidr-mask-size-ipv4", String(s.options.nodeCidrSize),
      "--node-cidr-mask-size-ipv6", String(NODE_CIDR_SIZE6),
      // The endpoint-slice controller too (the lab has no kube-controller-manager).
      "--endpoint-slices",
      "--leader-elect", "--identity", `${s.name}-controller-${i + 1}`,
      "--leader-elect-lease-duration", "6s", "--leader-elect-renew-deadline", "4s", "--leader-elect-retry-period", "500ms",
      "--metrics-addr", "off",
      "--log-file", join(dir, `controller-${i + 1}.log`),
    ]), join(dir, `controller-${i + 1}.out`)));
  saveState(s);
}

export async function stopControllers(s: LabState): Promise<void> {
  await Promise.all((s.controllerPids ?? []).map((pid) => stopProcess(pid, apiserverDir(s.name))));
  s.controllerPids = undefined;
}

/** The kubeconfig of a node's agent: its own token, the lab address. */
export function agentKubeconfig(s: LabState, node: string): string {
  return writeComponentKubeconfig(s.name, `agent-${node}`, labApiAddress(s));
}

const clients = new Map<string, KubeClient>();

/** The client of the lab's own commands (the "lab" token: every verb, as a cluster admin). */
export function labClient(s: LabState): KubeClient {
  let c = clients.get(s.name);
  if (!c) {
    // Patient: on a machine loaded far beyond its cores the server can be starved for seconds
    // (a DELETE timed out three times at 10 s under a load of 40 on 2 CPUs).
    c = new KubeClient(loadKubeconfig(componentKubeconfig(s.name, "lab")), { attempts: 4, timeoutMs: 30_000, userAgent: "mncni-lab" });
    clients.set(s.name, c);
  }
  return c;
}

/** `kubernetes:KUBECONFIG` of the lab's own view, or `dir:` of the manifests the agents read. */
export function labSourceSpec(s: LabState, manifests: string): string {
  return onKubernetes(s) ? `kubernetes:${componentKubeconfig(s.name, "lab")}` : `dir:${manifests}`;
}
