// The lab's record of what it created, written ahead of each creation so `lab down` can undo
// a half-built lab. One JSON file per lab, replaced atomically.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { labDir, stateFile } from "./topology.ts";

export type Mode = "bridge" | "routed";
export type WiringKind = "agent" | "static";

export interface LabOptions {
  mode: Mode;
  routing: "host-gw";
  clusterCidr: string;
  nodeCidrSize: number;
  wiring: WiringKind;
  /** The mncni executable the agents run (required for agent wiring). */
  binary?: string;
  /** argv prefix that runs this program's CLI (echo server, probe). */
  selfCmd: string[];
}

export interface PodState {
  name: string;
  node: string;
  ns: string;
  /** Kubernetes namespace of the Pod manifest. */
  namespace: string;
  containerId: string;
  ifname: string;
  ips: string[];
  addMs?: number;
}

export interface NodeState {
  name: string;
  index: number;
  ns: string;
  address: string;
  podCidrs: string[];
  /** Index of the pod CIDR inside the cluster CIDR (the lab's node IPAM). */
  cidrIndex: number;
  agentPid?: number;
  /** The echo server listening in this node's pods. */
  echoPid?: number;
  pods: PodState[];
}

export interface LabState {
  name: string;
  createdAt: string;
  options: LabOptions;
  /** Every namespace created or about to be created, in creation order. */
  namespaces: string[];
  extEchoPid?: number;
  nodes: NodeState[];
}

export function loadState(lab: string): LabState | null {
  try {
    return JSON.parse(readFileSync(stateFile(lab), "utf8")) as LabState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new Error(`cannot read lab state "${stateFile(lab)}": ${(e as Error).message}`);
  }
}

export function requireState(lab: string): LabState {
  const s = loadState(lab);
  if (!s) throw new Error(`cannot find lab "${lab}": not running (start it with \`mncni lab up --name ${lab}\`)`);
  return s;
}

export function saveState(s: LabState): void {
  mkdirSync(labDir(s.name), { recursive: true });
  const f = stateFile(s.name);
  writeFileSync(`${f}.tmp`, JSON.stringify(s, null, 2));
  renameSync(`${f}.tmp`, f);
}

export function labExists(lab: string): boolean {
  return existsSync(stateFile(lab));
}

/** Records a namespace before it is created (write-ahead). */
export function noteNamespace(s: LabState, name: string): void {
  if (!s.namespaces.includes(name)) {
    s.namespaces.push(name);
    saveState(s);
  }
}

export function findNode(s: LabState, name: string): NodeState | undefined {
  return s.nodes.find((n) => n.name === name);
}

export function allPods(s: LabState): PodState[] {
  return s.nodes.flatMap((n) => n.pods);
}
