// No pod reaches the node's 127.0.0.1-only listeners (the CVE-2020-8558 class), in both
// modes, although hostPort turns route_localnet on for the pod-facing interface (so that
// the node's own localhost reaches host ports). The attacking pod routes 127.0.0.1 out of
// its eth0 to its gateway (what a pod with NET_ADMIN, or raw sockets, can do); a UDP
// listener on 127.0.0.1 in the node namespace counts what arrives. Controls: with the guard
// table removed by hand the same datagrams arrive, and a host port is still reached through
// the node's localhost. route_localnet goes off with the last hostPort pod behind a bridge.
// Independent views: real traffic, sysctl files, `nft -j list`.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { run } from "../helpers/netns.ts";
import { destroyAllNodes, sysctl, tcpExchange, TestNode, type Mode } from "./fixture.ts";

setDefaultTimeout(60_000);
afterAll(destroyAllNodes);

const BRIDGE = "mnln0";
const LISTEN_PORT = 19099;

/** How many of `count` UDP datagrams from `pod` to 127.0.0.1:LISTEN_PORT a listener bound to 127.0.0.1 in the node receives. */
async function datagramsToNodeLocalhost(node: TestNode, pod: string, count = 5): Promise<number> {
  const srv = Bun.spawn(["ip", "netns", "exec", node.ns, "timeout", "6", "python3", "-c",
    `import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",${LISTEN_PORT}));s.settimeout(1.5);print("up",flush=True)
n=0
try:
  while True:
    s.recv(100);n+=1
except Exception:
  pass
print(n,flush=True)`], { stdout: "pipe" });
  const reader = srv.stdout.getReader();
  let out = "";
  while (!out.includes("up\n")) out += new TextDecoder().decode((await reader.read()).value);
  run(["ip", "netns", "exec", pod, "python3", "-c",
    `import socket,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(${count}):\n  s.sendto(b"x",("127.0.0.1",${LISTEN_PORT}));time.sleep(0.05)`]);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  await srv.exited;
  return Number(out.split("\n")[1]);
}

/** Makes the pod send 127.0.0.1 out of eth0 to its gateway instead of to its own lo. */
function routeLocalhostOut(pod: string, gateway: string): void {
  for (const k of ["all", "eth0"]) run(["ip", "netns", "exec", pod, "sysctl", "-qw", `net.ipv4.conf.${k}.route_localnet=1`]);
  run(["ip", "-n", pod, "route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local"]);
  run(["ip", "-n", pod, "route", "add", "127.0.0.1/32", "via", gateway, "dev", "eth0", "onlink", "table", "local"]);
}

const hasGuard = (node: TestNode) => run(["ip", "netns", "exec", node.ns, "nft", "-j", "list", "table", "inet", "mncni-localnet"], { allowFail: true }).code === 0;

for (const mode of ["bridge", "routed"] as Mode[]) {
  describe(`node-local 127.0.0.0/8 (${mode} mode)`, () => {
    let node: TestNode;
    const conf = (ports?: object[]) => ({ ...node.conf({ mode, stack: "v4", extra: { bridge: BRIDGE } }), ...(ports ? { runtimeConfig: { portMappings: ports } } : {}) });
    const gatewayOf = (result: any) => (mode === "bridge" ? result.ips[0].gateway : "169.254.1.1");

    beforeAll(() => {
      node = new TestNode({ uplink: true });
    });

    test("a pod with a host port (route_localnet on its interface) and a plain pod reach no 127.0.0.1 listener of the node", async () => {
      const a = node.addPod(conf([{ hostPort: 19080, containerPort: 80 }]), "ln-a");
      const b = node.addPod(conf(), "ln-b");
      const facing = mode === "bridge" ? BRIDGE : run(["ip", "-n", node.ns, "-o", "link", "show"]).stdout.match(/mnc[0-9a-f]{12}/g)!.find((v) => sysctl(node.ns, `net.ipv4.conf.${v}.route_localnet`) === "1")!;
      expect(sysctl(node.ns, `net.ipv4.conf.${facing}.route_localnet`)).toBe("1");
      routeLocalhostOut(a.pod, gatewayOf(a.result));
      routeLocalhostOut(b.pod, gatewayOf(b.result));
      expect(await datagramsToNodeLocalhost(node, a.pod)).toBe(0);
      if (mode === "bridge") expect(await datagramsToNodeLocalhost(node, b.pod)).toBe(0);
      // The node's own localhost still reaches the host port (its replies were DNATed).
      expect(await tcpExchange({ server: a.pod, client: node.ns, addr: "127.0.0.1", port: 80, connectPort: 19080 })).toBe(true);
      // Control: without the guard the same datagrams arrive (the attack path is real).
      run(["ip", "netns", "exec", node.ns, "nft", "delete", "table", "inet", "mncni-localnet"]);
      expect(await datagramsToNodeLocalhost(node, a.pod)).toBeGreaterThan(0);
      expect(node.del(conf(), a).code).toBe(0);
      expect(node.del(conf(), b).code).toBe(0);
    });

    test("route_localnet stays on while a hostPort pod needs it and goes off with the last one (a bridge; a routed veth goes with its pod)", () => {
      const a = node.addPod(conf([{ hostPort: 19081, containerPort: 80 }]), "ln-c");
      const b = node.addPod(conf([{ hostPort: 19082, containerPort: 80 }]), "ln-d");
      expect(hasGuard(node)).toBe(true);
      if (mode === "bridge") expect(sysctl(node.ns, `net.ipv4.conf.${BRIDGE}.route_localnet`)).toBe("1");
      expect(node.del(conf(), a).code).toBe(0);
      if (mode === "bridge") expect(sysctl(node.ns, `net.ipv4.conf.${BRIDGE}.route_localnet`)).toBe("1");
      expect(node.del(conf(), b).code).toBe(0);
      if (mode === "bridge") expect(sysctl(node.ns, `net.ipv4.conf.${BRIDGE}.route_localnet`)).toBe("0");
      else expect(run(["ip", "-n", node.ns, "-o", "link", "show"]).stdout).not.toMatch(/mnc[0-9a-f]{12}/);
    });
  });
}
