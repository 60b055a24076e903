// Anti-spoofing as a per-pod feature (`antiSpoofing`, on by default): the pod's set
// elements in its mode's table (the mechanism and the table: ../antispoof.ts).
import { antiSpoofFor } from "../antispoof.ts";
import type { Feature } from "../feature.ts";
import { HOST_VETH_PREFIX } from "../hostveth.ts";

export const antiSpoofing: Feature = {
  name: "antiSpoofing",
  keys: { antiSpoofing: "boolean" },
  configure(net) {
    if (net.antiSpoofing === false) return undefined;
    return {
      attach(a) {
        const guard = antiSpoofFor(a.mode.antiSpoof);
        guard.attach({ hostIfname: a.veth.name, network: a.network, mac: a.podMac, ips: a.podAddrs });
        a.undo.push("remove anti-spoofing rules", () => guard.detach(a.veth.name));
      },
      // Before the veth goes: the kernel frees the deleted set elements while the veth is
      // being deleted, instead of making this process wait for it on exit.
      detach: (d) => antiSpoofFor(d.mode.antiSpoof).detach(d.hostIfname),
      verify: (v) => antiSpoofFor(v.mode.antiSpoof).check(v.veth.name),
      collect(g) {
        // Elements of this network (or of no recorded one) whose host veth no longer exists.
        // The set is listed before the links (see gc.ts): an element is added after its veth
        // exists and removed before it is deleted, so one listed whose veth is missing from
        // the later listing of links went away without it.
        const guard = antiSpoofFor(g.mode.antiSpoof);
        try {
          const ports = guard.guarded();
          const present = new Set(g.host.links().map((l) => l.name));
          for (const port of ports) {
            const name = port.hostIfname;
            if (!name.startsWith(HOST_VETH_PREFIX) || present.has(name) || g.valid.has(name)) continue;
            if (port.network !== undefined && port.network !== g.network) continue;
            try {
              guard.detach(name);
            } catch (e) {
              g.problems.push((e as Error).message);
            }
          }
        } catch (e) {
          g.problems.push((e as Error).message);
        }
      },
    };
  },
};
