// Wire formats of the CNI protocol (spec 1.1.0). Internally mncni always works with the
// 1.x result shape; src/cni/version.ts converts to and from older versions at the edge.

export const SUPPORTED_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
/** The version mncni speaks natively (and answers VERSION with). */
export const CURRENT_VERSION: CniVersion = "1.1.0";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "STATUS" | "GC" | "VERSION";

/** The CNI_* environment as validated by src/cni/env.ts. */
export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS parsed into key/value pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, ...). */
  args: Record<string, string>;
  /** CNI_ARGS exactly as received, passed on to delegated plugins. */
  rawArgs: string;
  path: string[];
}

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  /** The CNI_NETNS path for interfaces inside the container; absent for host interfaces. */
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface IPConfig {
  /** CIDR notation: "10.244.1.5/24". */
  address: string;
  gateway?: string;
  /** Index into Result.interfaces. */
  interface?: number;
}

export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface DNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A 1.x Result (also the in-memory form of every version). */
export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: Route[];
  dns?: DNS;
}

export interface ErrorResult {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export interface Attachment {
  containerID: string;
  ifname: string;
}

export interface IPAMConfig {
  type: string;
  [key: string]: unknown;
}

/** The plugin object delivered on stdin; plugin-specific fields are validated by each plugin. */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  capabilities?: Record<string, boolean>;
  ipam?: IPAMConfig;
  dns?: DNS;
  args?: Record<string, unknown>;
  runtimeConfig?: Record<string, unknown>;
  prevResult?: Result;
  "cni.dev/valid-attachments"?: Attachment[];
  [key: string]: unknown;
}
