// The CNI network configuration the agent writes for the runtime: the mncni plugin with
// mncni-ipam ranges set to this node's pod CIDRs (dual-stack when the Node has two), in the
// highest cniVersion every plugin of the chain supports up to 1.0.0 (or the one --cni-version
// pins), since the runtime reading it has a version ceiling of its own (cni-version.ts).
import type { Mode } from "../plugin/netconf.ts";
import { chainPluginTypes, type ChainVersionPicker } from "./cni-version.ts";
import { familyOf } from "../net/ip.ts";

export const CONFLIST_NAME = "10-mncni.conflist";
export const NETWORK_NAME = "mncni";

export interface ConflistOptions {
  cniVersion: string;
  podCIDRs: string[];
  mode: Mode;
  bridge: string;
  mtu: number;
  ipamDataDir: string;
  cniLogFile: string;
  chainPortmap: boolean;
  /** The agent's CNI server socket, named as agentSocket; undefined: the plugin works alone. */
  cniSocket?: string;
  /** The cluster has network policies: new pods are held until programmed (docs/policy.md). */
  policyHold?: boolean;
  /** The plugin attaches the fast path's program to each pod's host device (docs/fast-path.md). */
  fastPath?: boolean;
}

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
}

export function renderConflist(o: ConflistOptions): Conflist {
  const plugins: Record<string, unknown>[] = [
    {
      type: "mncni",
      mode: o.mode,
      bridge: o.bridge,
      mtu: o.mtu,
      // The agent masquerades for the whole node; the plugin's own ipMasq is for standalone hosts.
      ipMasq: false,
      hairpinMode: true,
      antiSpoofing: true,
      ipam: {
        type: "mncni-ipam",
        ranges: o.podCIDRs.map((subnet) => [{ subnet }]),
        routes: [...new Set(o.podCIDRs.map(familyOf))].map((f) => ({ dst: f === 4 ? "0.0.0.0/0" : "::/0" })),
        dataDir: o.ipamDataDir,
      },
      logFile: o.cniLogFile,
      ...(o.cniSocket ? { agentSocket: o.cniSocket } : {}),
      // What the runtime passes as runtimeConfig: hostPorts (unless the chained portmap maps them), the
      // bandwidth annotations, requested addresses and MAC.
      capabilities: { portMappings: !o.chainPortmap, bandwidth: true, ips: true, mac: true },
      ...(o.policyHold ? { policyHold: true } : {}),
      ...(o.fastPath ? { fastPath: true } : {}),
    },
  ];
  if (o.chainPortmap) plugins.push({ type: "portmap", capabilities: { portMappings: true }, snat: true });
  return { cniVersion: o.cniVersion, name: NETWORK_NAME, plugins };
}

function conflistText(o: ConflistOptions): string {
  return JSON.stringify(renderConflist(o), null, 2) + "\n";
}

/**
 * The conflist's text with its version: `pinned` (--cni-version) as given, otherwise the one
 * the picker finds for the chain's plugins; or why no version can be picked.
 */
export function conflistFor(o: Omit<ConflistOptions, "cniVersion">, pinned: string | undefined, picker: ChainVersionPicker): { text: string } | { problem: string } {
  if (pinned) return { text: conflistText({ ...o, cniVersion: pinned }) };
  const choice = picker.pick(chainPluginTypes(renderConflist({ ...o, cniVersion: "" }).plugins));
  return "problem" in choice ? choice : { text: conflistText({ ...o, cniVersion: choice.version }) };
}
