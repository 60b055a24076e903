// ADD, shared by both modes: IPAM, the pod device (a veth or netkit pair, pod-device.ts) with
// the pod end created directly in the pod's namespace, addresses and routes inside, then whatever the mode wires on the host,
// then the per-pod features (features/list.ts) in list order.
// Every step registers its undo, so a failure anywhere leaves host and pod as they were.
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { CallContext } from "../cni/plugin-spec.ts";
import type { Interface, IPConfig, Result, Route } from "../cni/types.ts";
import { Netlink, sysctlSet, type Link } from "../kernel/index.ts";
import { hostVethAlias, hostVethName } from "./hostveth.ts";
import { createPodDevice, NO_MAC } from "./pod-device.ts";
import { ipamClient } from "./ipam-client.ts";
import type { ConfiguredFeature } from "./feature.ts";
import type { HostSide, ModePolicy } from "./mode.ts";
import type { PluginConf } from "./netconf.ts";
import { closeContainerNetns, openContainerNetns } from "./open-netns.ts";
import { UndoStack } from "./undo.ts";
import { phase } from "../base/phases.ts";
import { addrOf, familyOf } from "../net/ip.ts";

export async function attach(ctx: CallContext, conf: PluginConf, mode: ModePolicy, features: readonly ConfiguredFeature[]): Promise<Result> {
  const { env } = ctx;
  const pod = openContainerNetns(env.netns);
  const host = Netlink.open();
  const undo = new UndoStack();
  phase("open");
  try {
    if (pod.nl.link(env.ifname)) throw interfaceExists(ctx, host);
    const ipam = ipamClient(ctx);
    const { result: allocated, flowsMayRemain } = await ipam.add();
    undo.push("release addresses", async () => void (await ipam.del()));
    phase("ipam");
    const ips = allocated.ips ?? [];
    if (ips.length === 0) throw new CniError(ErrorCode.Internal, `cannot configure "${env.ifname}": IPAM plugin "${conf.ipam.type}" returned no address`);
    const common = { network: ctx.conf.name, bridge: conf.bridge, mode, host };
    for (const f of features) f.addressed?.({ ...common, ips, flowsMayRemain });

    const side: HostSide = { conf, host, undo };
    const prepared = mode.prepareHost(side, ips);
    phase("host");
    const veth = createPodDevice(ctx, conf, mode, host, pod.fd, undo);
    prepared.wireHostVeth(veth, ips);
    phase("wire");

    const podIf = pod.nl.link(env.ifname);
    if (!podIf) throw new CniError(ErrorCode.IOFailure, `cannot find "${env.ifname}" in "${env.netns}" after creating it`);
    const { podIps, routes } = configurePod(pod.nl, podIf, veth, ips, allocated.routes ?? [], mode);
    enableForwarding(ips);
    phase("pod");

    const attaching = { ...common, veth, podMac: podIf.mac || NO_MAC, ips, podAddrs: podIps.map((i) => addrOf(i.address)), undo };
    for (const f of features) {
      if (!f.attach) continue;
      f.attach(attaching);
      phase(f.name);
    }

    // A bridge takes its MAC from its ports, so read host interfaces again after wiring.
    const interfaces: Interface[] = [
      ...prepared.interfaces.map((i) => ({ ...i, mac: host.link(i.name)?.mac ?? i.mac })),
      // A netkit in L3 mode has no MAC: the spec makes mac optional.
      { name: veth.name, ...(veth.mac ? { mac: veth.mac } : {}) },
      { name: env.ifname, ...(podIf.mac ? { mac: podIf.mac } : {}), mtu: podIf.mtu, sandbox: env.netns },
    ];
    const podIndex = interfaces.length - 1;
    return {
      cniVersion: ctx.conf.cniVersion,
      interfaces,
      ips: podIps.map((ip) => ({ ...ip, interface: podIndex })),
      routes,
      dns: allocated.dns ?? conf.dns,
    };
  } catch (e) {
    await undo.run();
    throw e;
  } finally {
    closeContainerNetns(pod);
    host.close();
  }
}

/**
 * ADD does not converge on what an earlier ADD of the same attachment left (a server killed
 * mid-ADD): like the reference plugins it fails and leaves it alone, and the runtime DELs
 * first. When our host veth for this attachment is there, the pod's interface is that
 * ADD's, and the error says so.
 */
function interfaceExists(ctx: CallContext, host: Netlink): CniError {
  const { env } = ctx;
  const ours = host.link(hostVethName(ctx.conf.name, env.containerId, env.ifname))?.alias === hostVethAlias(ctx.conf.name, env.containerId, env.ifname);
  const why = ours ? " (left by an earlier ADD of this attachment: DEL it first)" : "";
  return new CniError(ErrorCode.InvalidEnv, `cannot create interface "${env.ifname}" in "${env.netns}": it already exists${why}`);
}

/** Addresses, link up, gateway neighbours and routes inside the pod. */
function configurePod(pod: Netlink, podIf: Link, hostVeth: Link, ips: IPConfig[], ipamRoutes: Route[], mode: ModePolicy) {
  const podIps: IPConfig[] = [];
  for (const ip of ips) {
    const family = familyOf(ip.address);
    const address = mode.podAddress(ip);
    pod.addAddr(podIf.index, address, { noDad: family === 6 });
    const g = mode.gateway(family, ip, hostVeth);
    podIps.push({ address, gateway: g.gw });
  }
  pod.setLink(podIf.index, { up: true });
  const routes: Route[] = [];
  for (const r of ipamRoutes) {
    const family = familyOf(r.dst);
    const ip = ips.find((i) => familyOf(i.address) === family);
    if (!ip) continue; // a route for a family this pod has no address in
    const g = mode.gateway(family, ip, hostVeth);
    const gw = r.gw ?? g.gw;
    if (g.neighMac && gw === g.gw) pod.addNeigh({ index: podIf.index, ip: gw, mac: g.neighMac, state: "permanent", replace: true });
    pod.addRoute({ dst: r.dst, gw, oif: podIf.index, onlink: gw === g.gw && g.onlink, mtu: r.mtu, advmss: r.advmss, priority: r.priority, table: r.table });
    routes.push({ ...r, gw });
  }
  return { podIps, routes };
}

function enableForwarding(ips: IPConfig[]): void {
  if (ips.some((i) => familyOf(i.address) === 4)) sysctlSet("net.ipv4.ip_forward", 1);
  if (ips.some((i) => familyOf(i.address) === 6)) sysctlSet("net.ipv6.conf.all.forwarding", 1);
}
