// What the containerd lab tests share: the lab's node containerd seen over CRI, pods' traffic
// from inside their sandboxes' namespaces (the lab's echo servers on 7777), and waits for the
// agents. Every check is an independent view: containerd's own answer, `ip -j`, `tc -j`,
// connections that really flow.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CriClient, type PodSandbox } from "../../src/lab/cri/client.ts";
import type { LabStatus } from "../../src/lab/status.ts";
import type { LabState } from "../../src/lab/state.ts";
import { LAB_ROOT } from "../../src/lab/topology.ts";
import { run } from "../helpers/netns.ts";
import { LAB_CMD, labJson } from "../lab/lab-cli.ts";

export const labState = (name: string) => JSON.parse(readFileSync(join(LAB_ROOT, name, "state.json"), "utf8")) as LabState;
export const nodeDir = (name: string, node: string) => join(LAB_ROOT, name, "nodes", node);
export const socketOf = (name: string, node: string) => join(nodeDir(name, node), "containerd", "containerd.sock");

/** The sandboxes the node's containerd has (its own view, over CRI). */
export async function sandboxes(name: string, node: string): Promise<PodSandbox[]> {
  const c = new CriClient(socketOf(name, node));
  try {
    return await c.listPodSandbox();
  } finally {
    c.close();
  }
}

export const pods = (name: string) => labJson<LabStatus>(name, ["status"]).pods;

/** A TCP connection from one namespace to host:port (an echo server): the address it was seen from, or null. */
export function probe(netns: string, target: string, timeoutMs = 1000): string | null {
  const r = run(["ip", "netns", "exec", netns, ...LAB_CMD, "lab", "_probe", "--json", "--timeout", String(timeoutMs), target], { allowFail: true });
  const res = (JSON.parse(r.stdout) as { ok: boolean; seen?: string }[])[0]!;
  return res.ok ? (res.seen ?? "") : null;
}

/** Waits for the agents to apply a change (their debounce and a pass), then checks once more. */
export async function eventually<T>(what: () => T, want: T): Promise<T> {
  for (let i = 0; i < 20 && what() !== want; i++) await Bun.sleep(500);
  return what();
}

/** The CNI calls of a node (its invocation log), as containerd's plugin processes wrote them. */
export function cniCalls(name: string, node: string): { command: string; containerId?: string; served?: unknown; ok?: boolean }[] {
  const file = join(nodeDir(name, node), "cni.log");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** PIDs of processes still running that name a path (a containerd's root, its shims). */
export function processesNaming(path: string): string[] {
  const out = run(["ps", "-eo", "pid,args"]).stdout.split("\n").slice(1);
  return out.filter((l) => l.includes(path) && !l.includes(" ps -eo"));
}

/** The addresses the node's IPAM holds (one file per address; the plugin's own dot-directories beside them are not reservations). */
export function reservedIps(name: string, node: string): string[] {
  return readdirSync(join(nodeDir(name, node), "ipam"), { recursive: true }).map(String).filter((f) => /\d+\.\d+\.\d+\.\d+$/.test(f) && !f.split("/").some((part) => part.startsWith("."))).sort();
}
