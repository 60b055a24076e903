// The rtnetlink handle the rest of mncni uses: one socket, bound to one namespace.
import * as addr from "./addr.ts";
import * as ethtool from "./ethtool.ts";
import * as link from "./link.ts";
import * as neigh from "./neigh.ts";
import * as route from "./route.ts";
import * as tc from "./tc.ts";
import { withNetns } from "./netns.ts";
import { NetlinkSocket } from "./socket.ts";
import type { Family } from "../net/ip.ts";

export class Netlink {
  private constructor(private readonly sock: NetlinkSocket, private readonly netnsPath?: string) {}

  /**
   * A NETLINK_ROUTE socket. With netnsPath the socket is created inside that namespace and
   * stays bound to it: every later call acts there, with no further setns.
   */
  static open(netnsPath?: string): Netlink {
    const sock = netnsPath === undefined ? NetlinkSocket.open() : withNetns(netnsPath, () => NetlinkSocket.open());
    return new Netlink(sock, netnsPath);
  }

  close(): void {
    this.sock.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // links
  links(): link.Link[] { return link.links(this.sock); }
  link(nameOrIndex: string | number): link.Link | undefined { return link.link(this.sock, nameOrIndex); }
  addVeth(o: link.VethOpts): void { link.addVeth(this.sock, o); }
  addNetkit(o: link.NetkitOpts): void { link.addNetkit(this.sock, o); }
  addBridge(o: link.BridgeOpts): void { link.addBridge(this.sock, o); }
  addVxlan(o: link.VxlanOpts): void { link.addVxlan(this.sock, o); }
  addIfb(o: link.BridgeOpts): void { link.addIfb(this.sock, o); }
  setLink(index: number, o: link.SetLinkOpts): void { link.setLink(this.sock, index, o); }
  /** Throws NetlinkError ENODEV when the link does not exist. */
  delLink(nameOrIndex: string | number): void { link.delLink(this.sock, nameOrIndex); }
  setBridgePort(index: number, o: link.BridgePortOpts): void { link.setBridgePort(this.sock, index, o); }

  // addresses
  addAddr(index: number, cidr: string, o?: addr.AddAddrOpts): void { addr.addAddr(this.sock, index, cidr, o); }
  delAddr(index: number, cidr: string): void { addr.delAddr(this.sock, index, cidr); }
  addrs(o?: { index?: number; family?: Family }): addr.Addr[] { return addr.addrs(this.sock, o); }

  // routes
  addRoute(r: route.RouteSpec): void { route.addRoute(this.sock, r); }
  replaceRoute(r: route.RouteSpec): void { route.replaceRoute(this.sock, r); }
  delRoute(r: route.RouteSpec): void { route.delRoute(this.sock, r); }
  /** The route the kernel picks for one packet (`ip route get`). */
  getRoute(q: route.RouteQuery): route.RouteInfo { return route.getRoute(this.sock, q); }
  /** Default: the main table, both families. */
  routes(o?: route.RouteFilter): route.RouteInfo[] { return route.routes(this.sock, o); }

  // traffic control
  addTbf(o: tc.TbfOpts): void { tc.addTbf(this.sock, o); }
  addIngressQdisc(index: number): void { tc.addIngressQdisc(this.sock, index); }
  addRedirect(o: { index: number; to: number; priority?: number }): void { tc.addRedirect(this.sock, o); }
  qdiscs(index?: number): tc.QdiscInfo[] { return tc.qdiscs(this.sock, index); }
  delQdisc(index: number, parent?: number): void { tc.delQdisc(this.sock, index, parent); }
  addClsact(index: number): void { tc.addClsact(this.sock, index); }
  addBpfFilter(o: tc.BpfFilterOpts): void { tc.addBpfFilter(this.sock, o); }
  bpfFilters(index: number): tc.BpfFilterInfo[] { return tc.bpfFilters(this.sock, index); }
  delIngressFilter(index: number, priority: number): void { tc.delIngressFilter(this.sock, index, priority); }
  // offloads (an ioctl socket, opened in the namespace this handle is bound to)
  txChecksumOn(ifname: string): boolean { return this.inNetns(() => ethtool.txChecksumOn(ifname)); }
  setTxChecksum(ifname: string, on: boolean): void { this.inNetns(() => ethtool.setTxChecksum(ifname, on)); }
  private inNetns<T>(fn: () => T): T { return this.netnsPath === undefined ? fn() : withNetns(this.netnsPath, fn); }
  /** fn run in the namespace this handle is bound to: for calls that name a device by its index in the thread's namespace (bpf(2)'s tcx). */
  within<T>(fn: () => T): T { return this.inNetns(fn); }

  // neighbours and FDB
  addNeigh(n: neigh.NeighSpec & neigh.AddNeighOpts): void { neigh.addNeigh(this.sock, n); }
  delNeigh(n: neigh.NeighSpec): void { neigh.delNeigh(this.sock, n); }
  /** Default: IPv4 and IPv6 neighbours; family "bridge" lists the FDB. */
  neighs(o?: { index?: number; family?: neigh.NeighFamily }): neigh.NeighInfo[] { return neigh.neighs(this.sock, o); }
}
