// The simulated data-center network: a switch namespace holding one bridge, a router between
// the node network and the external host's network, and one veth per node. Nothing here
// touches the machine's root namespace.
import { EXTERNAL, UNDERLAY, ns } from "./topology.ts";
import { ipBatch, netnsExists, run } from "./sh.ts";
import { noteNamespace, type LabState, type NodeState } from "./state.ts";

function addNetns(s: LabState, name: string): void {
  noteNamespace(s, name);
  if (!netnsExists(name)) run(["ip", "netns", "add", name]);
  ipBatch(name, ["link set lo up"]);
}

function enableForwarding(netns: string): void {
  run(["ip", "netns", "exec", netns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
}

export function createUnderlay(s: LabState): void {
  const sw = ns.switch(s.name);
  const rtr = ns.router(s.name);
  const ext = ns.external(s.name);
  for (const n of [sw, rtr, ext]) addNetns(s, n);
  ipBatch(sw, ["link add br0 type bridge", "link set br0 up", `link add rtr type veth peer name eth0 netns ${rtr}`, "link set rtr master br0 up"]);
  ipBatch(rtr, [
    `addr add ${UNDERLAY.router}/${UNDERLAY.prefix} dev eth0`,
    "link set eth0 up",
    `link add ext0 type veth peer name eth0 netns ${ext}`,
    `addr add ${EXTERNAL.router}/${EXTERNAL.prefix} dev ext0`,
    "link set ext0 up",
  ]);
  enableForwarding(rtr);
  ipBatch(ext, [`addr add ${EXTERNAL.host}/${EXTERNAL.prefix} dev eth0`, "link set eth0 up", `route add default via ${EXTERNAL.router}`]);
}

/** A node namespace plugged into the switch, with a default route through the router. */
export function createNodeNetwork(s: LabState, node: NodeState): void {
  addNetns(s, node.ns);
  const sw = ns.switch(s.name);
  ipBatch(sw, [`link add ${node.name} type veth peer name eth0 netns ${node.ns}`, `link set ${node.name} master br0 up`]);
  ipBatch(node.ns, [`addr add ${node.address}/${UNDERLAY.prefix} dev eth0`, "link set eth0 up", `route add default via ${UNDERLAY.router}`]);
  enableForwarding(node.ns);
}

export function createPodNetns(s: LabState, name: string): void {
  addNetns(s, name);
}

export function deleteNetns(name: string): void {
  if (netnsExists(name)) run(["ip", "netns", "del", name], { allowFail: true });
}
