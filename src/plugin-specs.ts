// The plugins this executable is, as the protocol dispatcher (src/cni/run.ts) runs them:
// one definition each, shared by the plugin process, `mncni serve` and the agent. Handlers
// load lazily, so VERSION and bad input are answered without evaluating them.
import type { PluginSpec } from "./cni/plugin-spec.ts";

/** The IPAM plugin (invoked as mncni-ipam); the interface plugin runs the same code in-process. */
export const ipamSpec: PluginSpec = {
  name: "mncni-ipam",
  handlers: async () => (await import("./ipam/index.ts")).ipamHandlers,
};

/** The interface plugin. */
export const mncniSpec: PluginSpec = {
  name: "mncni",
  handlers: async () => (await import("./plugin/handlers.ts")).pluginHandlers,
  // Its IPAM runs in-process: in a resident server it remembers listings between calls and
  // waits a bounded time for a network's lock (src/ipam/resident.ts); and it forgets a pod's
  // conntrack entries once the call is answered (src/plugin/conntrack-cleanup.ts).
  resident: async () => {
    const ipam = (await import("./ipam/resident.ts")).becomeResident();
    const afterAnswer = (await import("./plugin/conntrack-cleanup.ts")).deferConntrackCleanup();
    return { ...ipam, afterAnswer };
  },
};
