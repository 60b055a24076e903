// The plugin's ipMasq as a per-pod feature (`ipMasq`, off by default; for standalone hosts):
// the network's masquerade table, removed with its last host veth (../ip-masq.ts).
import type { Feature } from "../feature.ts";
import { ensureMasquerade, releaseMasqueradeIfUnused } from "../ip-masq.ts";

export const ipMasq: Feature = {
  name: "ipMasq",
  keys: { ipMasq: "boolean" },
  configure(net) {
    if (net.ipMasq !== true) return undefined;
    return {
      attach(a) {
        ensureMasquerade(a.network, a.ips);
        // A failed first ADD of the network leaves no table (its veth, still there, is the one leaving).
        a.undo.push("remove the masquerade table", () => releaseMasqueradeIfUnused(a.network, a.veth.name));
      },
      // The veth being deleted (off the main thread when served) is not a user any more.
      released: (d) => releaseMasqueradeIfUnused(d.network, d.hostIfname),
    };
  },
};
