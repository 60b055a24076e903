// The simulated data-center network: a switch namespace holding one bridge per underlay
// segment, a router between the segments and the external host's network, and one veth per node. Nothing here
// touches the machine's root namespace.
import { EXTERNAL, EXTERNAL6, ns, segmentPlan } from "./topology.ts";
import { ipBatch, netnsExists, run } from "./sh.ts";
import { noteNamespace, type LabState, type NodeState } from "./state.ts";

// No duplicate address detection in the lab's own namespaces (set before any link is made,
// so every link-local address inherits it): nothing else shares their segments, and a
// link-local address stays tentative for a second or two after `up`, during which the router
// and the nodes do not answer neighbour solicitation over IPv6 — a `check` run straight after
// `up` saw pod -> ext over IPv6 time out. The global addresses are added with nodad for the
// same reason. Pods' namespaces are left as a runtime leaves them.
function addNetns(s: LabState, name: string): void {
  noteNamespace(s, name);
  if (!netnsExists(name)) run(["ip", "netns", "add", name]);
  run(["ip", "netns", "exec", name, "sh", "-c", "if [ -d /proc/sys/net/ipv6 ]; then echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad && echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad; fi"]);
  ipBatch(name, ["link set lo up"]);
}

function enableForwarding(s: LabState, netns: string): void {
  const v6 = dualStack(s) ? " && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding" : "";
  run(["ip", "netns", "exec", netns, "sh", "-c", `echo 1 > /proc/sys/net/ipv4/ip_forward${v6}`]);
}

const dualStack = (s: LabState) => s.options.clusterCidr6 !== undefined;

/** IPv6 lines of a dual-stack lab (none otherwise); nodad: usable at once, no DAD wait. */
const v6 = (s: LabState, lines: string[]) => (dualStack(s) ? lines : []);

const segmentCount = (s: LabState) => s.options.segments ?? 1;

export function createUnderlay(s: LabState): void {
  const rtr = ns.router(s.name);
  const ext = ns.external(s.name);
  const segments = Array.from({ length: segmentCount(s) }, (_, k) => k);
  for (const n of [...segments.map((k) => ns.switch(s.name, k)), rtr, ext]) addNetns(s, n);
  // One switch per segment; the router's port on segment k is its eth<k>.
  for (const k of segments) {
    const u = segmentPlan(k, segmentCount(s), 4);
    const u6 = segmentPlan(k, segmentCount(s), 6);
    ipBatch(ns.switch(s.name, k), ["link add br0 type bridge", "link set br0 up", `link add rtr type veth peer name eth${k} netns ${rtr}`, "link set rtr master br0 up"]);
    ipBatch(rtr, [`addr add ${u.router}/${u.prefix} dev eth${k}`, `link set eth${k} up`, ...v6(s, [`addr add ${u6.router}/${u6.prefix} dev eth${k} nodad`])]);
  }
  ipBatch(rtr, [
    `link add ext0 type veth peer name eth0 netns ${ext}`,
    `addr add ${EXTERNAL.router}/${EXTERNAL.prefix} dev ext0`,
    "link set ext0 up",
    ...v6(s, [`addr add ${EXTERNAL6.router}/${EXTERNAL6.prefix} dev ext0 nodad`]),
  ]);
  enableForwarding(s, rtr);
  ipBatch(ext, [
    `addr add ${EXTERNAL.host}/${EXTERNAL.prefix} dev eth0`,
    ...v6(s, [`addr add ${EXTERNAL6.host}/${EXTERNAL6.prefix} dev eth0 nodad`]),
    "link set eth0 up",
    `route add default via ${EXTERNAL.router}`,
    ...v6(s, [`route add ::/0 via ${EXTERNAL6.router}`]),
  ]);
}

/** A node namespace plugged into the switch, with a default route through the router. */
export function createNodeNetwork(s: LabState, node: NodeState): void {
  addNetns(s, node.ns);
  const k = node.segment ?? 0;
  const u = segmentPlan(k, segmentCount(s), 4);
  const u6 = segmentPlan(k, segmentCount(s), 6);
  ipBatch(ns.switch(s.name, k), [`link add ${node.name} type veth peer name eth0 netns ${node.ns}`, `link set ${node.name} master br0 up`]);
  ipBatch(node.ns, [
    `addr add ${node.address}/${u.prefix} dev eth0`,
    ...(node.address6 ? [`addr add ${node.address6}/${u6.prefix} dev eth0 nodad`] : []),
    "link set eth0 up",
    `route add default via ${u.router}`,
    ...(node.address6 ? [`route add ::/0 via ${u6.router}`] : []),
  ]);
  enableForwarding(s, node.ns);
}

export function createPodNetns(s: LabState, name: string): void {
  addNetns(s, name);
}

export function deleteNetns(name: string): void {
  if (netnsExists(name)) run(["ip", "netns", "del", name], { allowFail: true });
}
