// The mode table: every mode a config can name (netconf.ts MODE_NAMES) and its
// implementation, so adding a mode is one name there, one line here and one module.
import { invalidConfig } from "../cni/errors.ts";
import { bridgeMode } from "./bridge.ts";
import type { ModePolicy } from "./mode.ts";
import type { Mode, PluginConf } from "./netconf.ts";
import { routedMode } from "./routed.ts";

export const MODES: Readonly<Record<Mode, ModePolicy>> = { bridge: bridgeMode, routed: routedMode };

/** The implementation of the config's mode; refuses a pod device the mode does not offer. */
export function modeOf(conf: PluginConf): ModePolicy {
  const mode = MODES[conf.mode];
  // Bridge ports need an Ethernet device; netkit's L2 mode as a bridge port is unmeasured.
  if (conf.podDevice === "netkit" && !mode.netkitMode) throw invalidConfig("podDevice", `"netkit" is not offered in ${conf.mode} mode (use routed mode, or "veth")`);
  return mode;
}
