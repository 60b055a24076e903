// Conntrack cleanup: a client keeps sending UDP to a host port. Before any pod maps it, its
// flow has no DNAT; ADD of the mapping pod deletes that entry, so the pod receives the
// datagrams; DEL deletes every entry of the pod's address; a new pod given the same address
// and host port receives the same client's datagrams afresh. `conntrack -L` inside the
// node namespace is the independent view.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { run } from "../helpers/netns.ts";
import { destroyAllNodes, TestNode, UPLINK } from "./fixture.ts";

setDefaultTimeout(60_000);

const ADDR = "10.244.1.50";
const PORT = 18053;

const conntrack = (node: TestNode) => run(["ip", "netns", "exec", node.ns, "conntrack", "-L", "-p", "udp"], { allowFail: true }).stdout;

/** Whether a UDP socket on port 53 in `pod` receives a datagram within 5 s (the client sends every 50 ms). */
function receives(pod: string): boolean {
  const r = run(["ip", "netns", "exec", pod, "timeout", "15", "python3", "-c",
    `import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("",53));s.settimeout(5)\ntry:\n  s.recv(100);print("got")\nexcept Exception:\n  print("none")`], { allowFail: true });
  return r.stdout.includes("got");
}

describe("conntrack cleanup", () => {
  let node: TestNode;
  let sender: ReturnType<typeof Bun.spawn>;
  const conf = () => ({ ...node.conf({ mode: "bridge", stack: "v4", extra: { bridge: "mnct0" } }), runtimeConfig: { portMappings: [{ hostPort: PORT, containerPort: 53, protocol: "udp" }] } });

  beforeAll(async () => {
    node = new TestNode({ uplink: true });
    // Another pod's mapping first: the node tracks connections once it has NAT rules (as any node running kube-proxy does).
    node.addPod({ ...conf(), runtimeConfig: { portMappings: [{ hostPort: 18000, containerPort: 80, protocol: "tcp" }] } }, "ct-other");
    // One flow: the same source port all along, a datagram every 50 ms.
    sender = Bun.spawn(["ip", "netns", "exec", node.client, "timeout", "40", "python3", "-c",
      `import socket,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("",40053))\nwhile True:\n  s.sendto(b"x",("${UPLINK.node[4]}",${PORT}));time.sleep(0.05)`], { stdout: "ignore", stderr: "ignore" });
    // Until the sender is running (python starts slowly on a loaded machine).
    for (let i = 0; i < 200 && !conntrack(node).includes(`dport=${PORT}`); i++) await Bun.sleep(50);
  });
  afterAll(() => {
    sender.kill();
    destroyAllNodes();
  });

  test("the flow that existed before the mapping is replaced at ADD: the pod receives", () => {
    expect(conntrack(node)).toContain(`dport=${PORT}`);
    expect(conntrack(node)).not.toContain(ADDR);
    const pod = node.pod();
    node.add(conf(), { pod, id: "ct-a", args: `IP=${ADDR}` });
    expect(receives(pod)).toBe(true);
    expect(conntrack(node)).toContain(`src=${ADDR}`);
    expect(node.del(conf(), { pod, id: "ct-a" }).code).toBe(0);
    // DEL forgot every entry of the address (new datagrams make an entry without DNAT).
    expect(conntrack(node)).not.toContain(ADDR);
    // And the node's neighbour entry for it (learnt for this pod's MAC).
    expect(run(["ip", "-n", node.ns, "neigh", "show", "to", ADDR]).stdout.trim()).toBe("");
    node.deletePod(pod);
  });

  test("a new pod with the same address and host port receives the same client's flow", () => {
    const pod = node.pod();
    node.add(conf(), { pod, id: "ct-b", args: `IP=${ADDR}` });
    expect(receives(pod)).toBe(true);
    expect(conntrack(node)).toContain(`src=${ADDR}`);
  });
});
