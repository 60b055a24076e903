// route_localnet for hostPort, and its guard (CVE-2020-8558). A host port reached through
// the node's 127.0.0.1 is DNATed to the pod with 127.0.0.1 as source (then masqueraded),
// and its replies come back to 127.0.0.1 on the pod-facing interface: the kernel routes
// 127.0.0.0/8 to and from an interface only with route_localnet on it. Left alone, that
// also lets any pod behind the interface reach the node's 127.0.0.1-only listeners. So:
// - before route_localnet goes on, a guard drops what arrives on any interface but lo for
//   127.0.0.0/8 and was not DNATed (the hostPort replies were), as kube-proxy does;
// - it goes off again when the last hostPort pod behind the interface is gone (a bridge
//   stays; a routed pod's host veth goes with its pod, and the setting with it).
//
// The guard is a table mncni owns (firewall/names.ts LOCALNET), written whole once per node
// (firewall/owned-table.ts: race-safe, one lookup when present).
import { CniError, ErrorCode } from "../cni/errors.ts";
import { LOCALNET } from "../firewall/names.ts";
import { ensureTable } from "../firewall/owned-table.ts";
import { sysctlGet, sysctlSet, type Netlink } from "../kernel/index.ts";
import { nftApply } from "./nft-apply.ts";
import { withNftables } from "./nft-socket.ts";

/** `ct status & dnat == 0`: the connection's destination was not translated (nft lists it as `ct status ! dnat`; `!= dnat` would compare the whole word). */
const BODY = `  chain ${LOCALNET.chain} {\n    type filter hook input priority filter; policy accept;\n    iifname != "lo" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop\n  }\n`;

/** Creates the guard table when missing; throws when a table of that name has another layout. */
export function guardLocalnet(): void {
  withNftables("guard 127.0.0.0/8", (nft) =>
    ensureTable(nft, { family: LOCALNET.family, name: LOCALNET.name, comment: LOCALNET.layout, body: BODY }, nftApply, (current) =>
      new CniError(ErrorCode.Internal, `cannot use table ${LOCALNET.family} ${LOCALNET.name}: it has another layout ("${current.comment ?? ""}") than this mncni writes ("${LOCALNET.layout}")`)));
}

const key = (iface: string) => `net/ipv4/conf/${iface}/route_localnet`;

/** Turns route_localnet on for a pod-facing interface, the guard first. */
export function openLocalnet(iface: string): void {
  guardLocalnet();
  sysctlSet(key(iface), 1);
}

/**
 * Turns route_localnet off on `iface` unless a hostPort pod behind it still needs it.
 * `owners`: the host veths that have IPv4 host ports now. Against an ADD racing this one
 * (which maps its ports, then turns the setting on): after turning it off, looked at
 * again, and on again when a pod appeared meanwhile.
 */
export function closeLocalnet(host: Netlink, iface: string, owners: () => string[]): void {
  let on: string;
  try {
    on = sysctlGet(key(iface));
  } catch {
    return; // the interface is gone, and its setting with it
  }
  const index = on === "1" ? host.link(iface)?.index : undefined;
  if (index === undefined) return;
  const needed = () => owners().some((veth) => veth === iface || host.link(veth)?.master === index);
  if (needed()) return;
  sysctlSet(key(iface), 0);
  if (needed()) sysctlSet(key(iface), 1);
}

