// The mncni plugin config: parsed once, defaults applied, validated, frozen.
import { CniError, ErrorCode, invalidConfig, unsupportedField } from "../cni/errors.ts";
import type { DNS, IPAMConfig, NetConf } from "../cni/types.ts";
import { ifnameProblem } from "../cni/names.ts";
import { MAX_SOCKET_PATH } from "../serve/protocol.ts";
import type { ConfiguredFeature, FeatureKeyType } from "./feature.ts";
import { featuresUnder } from "./features/list.ts";
import { isMode, MODE_NAMES, MODES, type Mode } from "./modes.ts";
import { POD_DEVICES, type PodDevice } from "./pod-device.ts";

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
  /** The per-pod features on for this call, in the order their hooks run (features/list.ts, under the mode's overrides). */
  readonly features: readonly ConfiguredFeature[];
}

/** How a call uses the config: `cleanup` (DEL, GC) needs no per-pod runtime values and does not validate them. */
export interface ParseOpts {
  cleanup?: boolean;
}

/** Fields defined by the spec (or libcni) that any plugin config may carry. */
const RESERVED = new Set(["cniVersion", "name", "type", "capabilities", "ipam", "dns", "args", "runtimeConfig", "prevResult", "logFile"]);

/** The plugin's own keys; the features add theirs (Feature.keys). */
const KNOWN: Record<string, FeatureKeyType> = {
  mode: "string",
  bridge: "string",
  mtu: "number",
  hairpinMode: "boolean",
  promiscMode: "boolean",
  agentSocket: "string",
  podDevice: "string",
};

const MAC = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

export function parsePluginConf(net: NetConf, cniArgs: Record<string, string>, o: ParseOpts = {}): PluginConf {
  // The keys a config may have depend on the features, which depend on the mode.
  const named = typeof net.mode === "string" && isMode(net.mode) ? net.mode : "bridge";
  const features = featuresUnder(MODES[named].features);
  const known: Record<string, FeatureKeyType> = Object.assign({}, KNOWN, ...features.map((f) => f.keys ?? {}));
  for (const [key, value] of Object.entries(net)) {
    if (RESERVED.has(key) || key.startsWith("cni.dev/")) continue;
    const type = known[key];
    if (!type) throw unsupportedField(key, value);
    if (typeof value !== type) throw invalidConfig(key, `must be a ${type}, got ${JSON.stringify(value)}`);
  }
  const mode = (net.mode as string | undefined) ?? "bridge";
  if (!isMode(mode)) throw invalidConfig("mode", `"${mode}" is not one of ${MODE_NAMES.map((m) => `"${m}"`).join(", ")}`);
  const cleanup = o.cleanup === true;
  const bridge = (net.bridge as string | undefined) ?? "cbr0";
  const why = ifnameProblem(bridge);
  if (why) throw invalidConfig("bridge", `"${bridge}" ${why}`);
  const mtu = (net.mtu as number | undefined) ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw invalidConfig("mtu", `${mtu} is not an integer between 576 and 65535`);
  const socket = net.agentSocket as string | undefined;
  if (socket !== undefined && (!socket.startsWith("/") || Buffer.byteLength(socket) > MAX_SOCKET_PATH)) {
    throw invalidConfig("agentSocket", `"${socket}" is not an absolute path of at most ${MAX_SOCKET_PATH} bytes`);
  }
  const podDevice = podDeviceOf(net, mode);
  if (!net.ipam) throw invalidConfig("ipam", "missing: mncni needs an IPAM section (type mncni-ipam or another IPAM plugin)");
  // DEL and GC create no device: a MAC they are given is not needed, nor checked.
  const mac = cleanup ? undefined : macFrom(net, cniArgs);
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
    features: Object.freeze(features.flatMap((f) => {
      const on = f.configure(net, { cleanup });
      return on ? [Object.freeze({ ...on, name: f.name })] : [];
    })),
  });
}

function podDeviceOf(net: NetConf, mode: Mode): PodDevice {
  const d = (net.podDevice as string | undefined) ?? "veth";
  if (!(POD_DEVICES as readonly string[]).includes(d)) throw invalidConfig("podDevice", `"${d}" is not one of ${POD_DEVICES.map((x) => `"${x}"`).join(", ")}`);
  // Bridge ports need an Ethernet device; netkit's L2 mode as a bridge port is unmeasured.
  if (d === "netkit" && !MODES[mode].netkitMode) throw invalidConfig("podDevice", `"netkit" is not offered in ${mode} mode (use routed mode, or "veth")`);
  return d as PodDevice;
}

function macFrom(net: NetConf, cniArgs: Record<string, string>): string | undefined {
  const fromRuntime = net.runtimeConfig?.mac;
  const mac = typeof fromRuntime === "string" ? fromRuntime : cniArgs.MAC;
  if (mac === undefined) return undefined;
  if (!MAC.test(mac)) throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: runtimeConfig.mac: "${mac}" is not a MAC address`);
  return mac.toLowerCase();
}
