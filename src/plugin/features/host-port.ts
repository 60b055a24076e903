// hostPort (the `portMappings` capability) as a per-pod feature: DNAT map elements in the
// hostPort table (../host-port.ts), and route_localnet with its guard on the pod-facing
// interface (../localnet.ts). Always on: DEL and GC remove a pod's elements whatever the
// config says now.
import { parsePortMappings } from "../capabilities.ts";
import type { Feature } from "../feature.ts";
import { attachHostPorts, checkHostPorts, hostPortOwners, unmapHostPorts } from "../host-port.ts";
import { closeLocalnet } from "../localnet.ts";
import type { Netlink } from "../../kernel/index.ts";

/** route_localnet goes off on `iface` when no pod behind it has IPv4 host ports left. */
const closeIfUnused = (host: Netlink, iface: string) => closeLocalnet(host, iface, () => hostPortOwners(4).map((o) => o.hostIfname));

export const hostPort: Feature = {
  name: "hostPort",
  configure(net, { cleanup }) {
    const mappings = cleanup ? [] : parsePortMappings(net.runtimeConfig?.portMappings);
    return {
      attach: (a) => attachHostPorts({ host: a.host, network: a.network, veth: a.veth, ips: a.podAddrs, mappings, undo: a.undo }),
      verify: (v) => checkHostPorts({ network: v.network, hostIfname: v.veth.name, ips: v.podAddrs, mappings }),
      detach(d) {
        unmapHostPorts(d.hostIfname);
        // A bridge keeps route_localnet when its last hostPort pod goes (a routed pod's host
        // veth takes it along). Safe for any interface: it looks at every pod behind it.
        closeIfUnused(d.host, d.bridge);
      },
      collect(g) {
        // Listed before the links, as for anti-spoofing elements (see gc.ts).
        try {
          const owners = hostPortOwners();
          const present = new Set(g.host.links().map((l) => l.name));
          for (const o of owners) {
            if (o.network !== g.network || present.has(o.hostIfname) || g.valid.has(o.hostIfname)) continue;
            try {
              unmapHostPorts(o.hostIfname);
            } catch (e) {
              g.problems.push((e as Error).message);
            }
          }
          closeIfUnused(g.host, g.bridge);
        } catch (e) {
          g.problems.push((e as Error).message);
        }
      },
    };
  },
};
