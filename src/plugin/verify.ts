// CHECK, shared by both modes: what prevResult says we created must still be there, and
// what each per-pod feature (features/list.ts) made.
// Routes added by later plugins in a chain are tolerated: only ours are required.
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { CallContext } from "../cni/plugin-spec.ts";
import type { IPConfig, Route } from "../cni/types.ts";
import { Netlink, NUD, type Link } from "../kernel/index.ts";
import { hostVethName } from "./hostveth.ts";
import { ipamClient } from "./ipam-client.ts";
import type { ConfiguredFeature } from "./feature.ts";
import type { ModePolicy } from "./mode.ts";
import type { PluginConf } from "./netconf.ts";
import { closeContainerNetns, openContainerNetns } from "./open-netns.ts";
import { addrOf, familyOf } from "../net/ip.ts";

const fail = (msg: string) => new CniError(ErrorCode.Internal, msg);

export async function verify(ctx: CallContext, conf: PluginConf, mode: ModePolicy, features: readonly ConfiguredFeature[]): Promise<void> {
  const { env } = ctx;
  const prev = ctx.conf.prevResult;
  if (!prev) throw new CniError(ErrorCode.InvalidNetworkConfig, "invalid network config: prevResult: required for CHECK");
  const podIndex = (prev.interfaces ?? []).findIndex((i) => i.name === env.ifname && i.sandbox === env.netns);
  if (podIndex < 0) throw fail(`prevResult has no interface "${env.ifname}" in sandbox "${env.netns}"`);
  const podIf = prev.interfaces![podIndex]!;
  const ips = (prev.ips ?? []).filter((i) => i.interface === podIndex);

  const pod = openContainerNetns(env.netns);
  const host = Netlink.open();
  try {
    const link = pod.nl.link(env.ifname);
    if (!link) throw fail(`interface "${env.ifname}" is missing in "${env.netns}"`);
    if (podIf.mac && link.mac !== podIf.mac.toLowerCase()) throw fail(`interface "${env.ifname}" has MAC ${link.mac}, expected ${podIf.mac}`);
    if (!link.up) throw fail(`interface "${env.ifname}" is down`);
    const have = new Set(pod.nl.addrs({ index: link.index }).map((a) => a.cidr));
    for (const ip of ips) if (!have.has(ip.address)) throw fail(`address ${ip.address} is missing on "${env.ifname}"`);
    const routes = pod.nl.routes();
    for (const r of prev.routes ?? []) {
      const found = routes.some((k) => k.dst === r.dst && (r.gw === undefined || k.gw === r.gw));
      if (!found) throw fail(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ""} is missing in "${env.netns}"`);
    }
    const vethName = hostVethName(ctx.conf.name, env.containerId, env.ifname);
    const veth = host.link(vethName);
    if (!veth) throw fail(`host veth "${vethName}" is missing`);
    mode.checkHost({ conf, host }, veth, ips);
    checkPinnedGateways({ pod: pod.nl, podIf: link, hostVeth: veth, ips, routes: prev.routes ?? [], mode });
    const verifying = { network: ctx.conf.name, bridge: conf.bridge, mode, host, veth, podAddrs: ips.map((i) => addrOf(i.address)) };
    for (const f of features) f.verify?.(verifying);
  } finally {
    closeContainerNetns(pod);
    host.close();
  }
  await ipamClient(ctx).check(ips.map((i) => addrOf(i.address)));
}

/**
 * A mode that pins its gateway's MAC (routed) needs that neighbour entry, or nothing answers
 * ARP/ND for the gateway. ADD pins it only when a route uses the gateway, so only then.
 */
function checkPinnedGateways(o: { pod: Netlink; podIf: Link; hostVeth: Link; ips: IPConfig[]; routes: Route[]; mode: ModePolicy }): void {
  const present = o.pod.neighs({ index: o.podIf.index });
  for (const ip of o.ips) {
    // No gateway in prevResult: nothing was pinned for it (and bridge mode's gateway() would throw).
    if (!ip.gateway) continue;
    const g = o.mode.gateway(familyOf(ip.address), ip, o.hostVeth);
    if (!g.neighMac || !o.routes.some((r) => r.gw === g.gw)) continue;
    const n = present.find((x) => x.ip === g.gw);
    if (!n || n.mac !== g.neighMac || !(n.state & NUD.PERMANENT)) {
      throw fail(`permanent neighbour entry ${g.gw} lladdr ${g.neighMac} is missing on "${o.podIf.name}"`);
    }
  }
}
