// The mncni plugin config: parsed once, defaults applied, validated, frozen.
import { CniError, ErrorCode, invalidConfig, unsupportedField } from "../cni/errors.ts";
import type { DNS, IPAMConfig, NetConf } from "../cni/types.ts";
import { ifnameProblem } from "../cni/names.ts";
import { MAX_SOCKET_PATH } from "../sys/unix-socket.ts";
import type { FeatureKeyType } from "./feature.ts";
import { FEATURES } from "./features/list.ts";

/**
 * The modes a config can name. The config schema owns the names; modes.ts maps each to its
 * implementation (and fails to type-check when one is missing).
 */
export const MODE_NAMES = ["bridge", "routed"] as const;
export type Mode = (typeof MODE_NAMES)[number];
export const isMode = (name: string): name is Mode => (MODE_NAMES as readonly string[]).includes(name);

/** The pod's device kinds a config can name (pod-device.ts creates them). */
export const POD_DEVICES = ["veth", "netkit"] as const;
export type PodDevice = (typeof POD_DEVICES)[number];

export interface PluginConf {
  readonly net: NetConf;
  readonly mode: Mode;
  readonly bridge: string;
  readonly mtu: number;
  readonly hairpinMode: boolean;
  readonly promiscMode: boolean;
  /** The pod's device: "veth" (default) or "netkit" (routed mode; veth where the kernel lacks it). */
  readonly podDevice: PodDevice;
  readonly ipam: IPAMConfig;
  readonly dns?: DNS;
  /** A MAC for the container interface from the `mac` capability or CNI_ARGS MAC=. */
  readonly mac?: string;
}

/** How a call uses the config: `cleanup` (DEL, GC) needs no per-pod runtime values and does not validate them. */
export interface ParseOpts {
  cleanup?: boolean;
}

/** Fields defined by the spec (or libcni) that any plugin config may carry. */
const RESERVED = new Set(["cniVersion", "name", "type", "capabilities", "ipam", "dns", "args", "runtimeConfig", "prevResult", "logFile"]);

/** The plugin's own keys and the per-pod features' (Feature.keys; a mode's replacement of a feature reads the same keys). */
const KNOWN: Readonly<Record<string, FeatureKeyType>> = Object.assign(
  {
    mode: "string",
    bridge: "string",
    mtu: "number",
    hairpinMode: "boolean",
    promiscMode: "boolean",
    agentSocket: "string",
    podDevice: "string",
  },
  ...FEATURES.map((f) => f.keys ?? {}),
);

const MAC = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

export function parsePluginConf(net: NetConf, cniArgs: Record<string, string>, o: ParseOpts = {}): PluginConf {
  for (const [key, value] of Object.entries(net)) {
    if (RESERVED.has(key) || key.startsWith("cni.dev/")) continue;
    const type = KNOWN[key];
    if (!type) throw unsupportedField(key, value);
    if (typeof value !== type) throw invalidConfig(key, `must be a ${type}, got ${JSON.stringify(value)}`);
  }
  const mode = (net.mode as string | undefined) ?? "bridge";
  if (!isMode(mode)) throw invalidConfig("mode", `"${mode}" is not one of ${MODE_NAMES.map((m) => `"${m}"`).join(", ")}`);
  const bridge = (net.bridge as string | undefined) ?? "cbr0";
  const why = ifnameProblem(bridge);
  if (why) throw invalidConfig("bridge", `"${bridge}" ${why}`);
  const mtu = (net.mtu as number | undefined) ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw invalidConfig("mtu", `${mtu} is not an integer between 576 and 65535`);
  const socket = net.agentSocket as string | undefined;
  if (socket !== undefined && (!socket.startsWith("/") || Buffer.byteLength(socket) > MAX_SOCKET_PATH)) {
    throw invalidConfig("agentSocket", `"${socket}" is not an absolute path of at most ${MAX_SOCKET_PATH} bytes`);
  }
  const podDevice = podDeviceOf(net);
  if (!net.ipam) throw invalidConfig("ipam", "missing: mncni needs an IPAM section (type mncni-ipam or another IPAM plugin)");
  // DEL and GC create no device: a MAC they are given is not needed, nor checked.
  const mac = o.cleanup ? undefined : macFrom(net, cniArgs);
  return Object.freeze({
    net,
    mode,
    bridge,
    mtu,
    hairpinMode: (net.hairpinMode as boolean | undefined) ?? true,
    promiscMode: (net.promiscMode as boolean | undefined) ?? false,
    podDevice,
    ipam: net.ipam,
    dns: net.dns,
    mac,
  });
}

function podDeviceOf(net: NetConf): PodDevice {
  const d = (net.podDevice as string | undefined) ?? "veth";
  if (!(POD_DEVICES as readonly string[]).includes(d)) throw invalidConfig("podDevice", `"${d}" is not one of ${POD_DEVICES.map((x) => `"${x}"`).join(", ")}`);
  return d as PodDevice;
}

function macFrom(net: NetConf, cniArgs: Record<string, string>): string | undefined {
  const fromRuntime = net.runtimeConfig?.mac;
  const mac = typeof fromRuntime === "string" ? fromRuntime : cniArgs.MAC;
  if (mac === undefined) return undefined;
  if (!MAC.test(mac)) throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: runtimeConfig.mac: "${mac}" is not a MAC address`);
  return mac.toLowerCase();
}
