// Run by netns.test.ts under `ip netns exec NODE`: the process itself lives in a non-root
// namespace. Creates a veth into the pod namespace given as argv[2], configures both ends,
// and prints what it saw of its own namespace.
import { statSync } from "node:fs";
import { Netlink, openNetnsFd, sysctlGet, sysctlSet, withNetns } from "../../../src/kernel/index.ts";
import { closeFd } from "../../../src/sys/libc.ts";

const podPath = process.argv[2]!;
const self = () => statSync("/proc/thread-self/ns/net").ino;
const before = self();

const node = Netlink.open();
const fd = openNetnsFd(podPath);
try {
  node.addVeth({ name: "hv0", peerName: "eth0", peerNetnsFd: fd, mtu: 1450 });
} finally {
  closeFd(fd);
}
const hv = node.link("hv0")!;
node.setLink(hv.index, { up: true });
node.addAddr(hv.index, "169.254.1.1/32");

const pod = Netlink.open(podPath);
const eth0 = pod.link("eth0")!;
pod.addAddr(eth0.index, "10.88.0.2/24");
pod.setLink(eth0.index, { up: true });
pod.addRoute({ dst: "default", gw: "10.88.0.1", oif: eth0.index, onlink: true });

sysctlSet("net.ipv4.ip_forward", 1);
const inPod = withNetns(podPath, () => {
  sysctlSet("net/ipv4/conf/eth0/rp_filter", 2);
  return { ino: self(), forward: sysctlGet("net.ipv4.ip_forward") };
});
node.close();
pod.close();
console.log(JSON.stringify({ before, after: self(), podIno: statSync(podPath).ino, inPod }));
