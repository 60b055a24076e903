// hostPort built in (the `portMappings` capability), in both modes: a TCP port published
// on the node answers from a namespace outside the node (IPv4 and IPv6), from the node
// itself (its own address and localhost), from the pod itself (hairpin) and from another
// pod on the node; UDP the same way; a host port taken is a clear error at ADD that leaves
// nothing behind; DEL and GC remove the pod's map elements. Independent views: real
// traffic (busybox nc, python UDP sockets) and `nft -j list`.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { run } from "../helpers/netns.ts";
import { destroyAllNodes, hostVethOf, NET, reservedIps, tcpExchange, TestNode, UPLINK, type Mode } from "./fixture.ts";

setDefaultTimeout(60_000);

const TABLE = "mncni-hostport";

function elements(node: TestNode): string[] {
  const r = run(["ip", "netns", "exec", node.ns, "nft", "-j", "list", "table", "inet", TABLE], { allowFail: true });
  if (r.code !== 0) return [];
  const out: string[] = [];
  for (const o of JSON.parse(r.stdout).nftables) {
    if (!o.map || !o.map.elem) continue;
    for (const e of o.map.elem) out.push(`${o.map.name} ${JSON.stringify(e)}`);
  }
  return out;
}

/** The elements of one of the table's maps as "KEY -> VALUE" ("tcp 18080 -> 10.1.2.3 80"), comments left out. */
function mapEntries(node: TestNode, map: string): string[] {
  const r = run(["ip", "netns", "exec", node.ns, "nft", "-j", "list", "map", "inet", TABLE, map], { allowFail: true });
  if (r.code !== 0) return [];
  const flat = (x: any): string => (x?.elem ? flat(x.elem.val) : Array.isArray(x?.concat) ? x.concat.map(flat).join(" ") : String(x));
  const m = JSON.parse(r.stdout).nftables.find((o: any) => o.map).map;
  return (m.elem ?? []).map((e: any) => `${flat(e[0])} -> ${flat(e[1])}`).sort();
}

/** A UDP datagram from `client` to addr:port answered by a python echo server in `server` on `port`. */
async function udpExchange(o: { server: string; client: string; addr: string; port: number; connectPort: number }): Promise<boolean> {
  const fam = o.addr.includes(":") ? "AF_INET6" : "AF_INET";
  const srv = Bun.spawn(["ip", "netns", "exec", o.server, "timeout", "5", "python3", "-c",
    `import socket;s=socket.socket(socket.${fam},socket.SOCK_DGRAM);s.bind(("",${o.port}));print("up",flush=True);d,a=s.recvfrom(100);s.sendto(b"pong:"+d,a)`], { stdout: "pipe" });
  try {
    const reader = srv.stdout.getReader();
    await reader.read(); // "up"
    reader.releaseLock();
    const cli = run(["ip", "netns", "exec", o.client, "timeout", "5", "python3", "-c",
      `import socket;s=socket.socket(socket.${fam},socket.SOCK_DGRAM);s.settimeout(2);s.sendto(b"ping",("${o.addr}",${o.connectPort}));print(s.recv(100).decode())`], { allowFail: true });
    return cli.stdout.includes("pong:ping");
  } finally {
    srv.kill();
    await srv.exited;
  }
}

/** Up to three tries: a fresh namespace's first exchange can fail for reasons not under test (DAD). */
async function settled(fn: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 2; i++) if (await fn()) return true;
  return fn();
}

const pm = (hostPort: number, containerPort: number, protocol = "tcp", hostIP?: string) => ({ hostPort, containerPort, protocol, ...(hostIP ? { hostIP } : {}) });

// Bridge mode twice: with br_netfilter handing bridged packets to the inet hooks (the
// machine's default here, and a Kubernetes node's) and without it (set in the node
// namespace only), where a pod's connection to another pod's host port is routed up to the
// node and back down the bridge and needs the `sameif` masquerade.
const VARIANTS: { mode: Mode; brNetfilter: boolean }[] = [
  { mode: "bridge", brNetfilter: true },
  { mode: "bridge", brNetfilter: false },
  { mode: "routed", brNetfilter: true },
];

for (const { mode, brNetfilter } of VARIANTS) {
  describe(`hostPort (${mode} mode${brNetfilter ? "" : ", no br_netfilter"})`, () => {
    let node: TestNode;
    let a: { pod: string; id: string; result: any };
    let b: { pod: string; id: string; result: any };
    const base = () => node.conf({ mode, stack: "dual", extra: { bridge: "mnhp0" } });
    const withPorts = (ports: object[]) => ({ ...base(), runtimeConfig: { portMappings: ports } as Record<string, unknown> });
    const addrOf = (r: any, f: 4 | 6) => r.ips.map((i: any) => i.address.split("/")[0]).find((x: string) => x.includes(":") === (f === 6));

    beforeAll(() => {
      node = new TestNode({ uplink: true });
      if (!brNetfilter) {
        for (const f of ["iptables", "ip6tables"]) run(["ip", "netns", "exec", node.ns, "sysctl", "-qw", `net.bridge.bridge-nf-call-${f}=0`]);
      }
      a = node.addPod(withPorts([pm(18080, 80), pm(18053, 53, "udp"), pm(18132, 132, "sctp"), pm(18081, 81, "tcp", UPLINK.node[4])]), "hp-a");
      b = node.addPod(base(), "hp-b");
    });
    afterAll(() => destroyAllNodes());

    test("the pod's mappings are map elements of the hostPort table, every protocol and family, each to the pod's address and container port", () => {
      const v4 = addrOf(a.result, 4);
      const v6 = addrOf(a.result, 6);
      for (const [map, addr] of [["port4", v4], ["port6", v6]] as const) {
        expect(mapEntries(node, map)).toEqual([`sctp 18132 -> ${addr} 132`, `tcp 18080 -> ${addr} 80`, `udp 18053 -> ${addr} 53`]);
      }
      expect(mapEntries(node, "addr4")).toEqual([`${UPLINK.node[4]} tcp 18081 -> ${v4} 81`]);
      expect(mapEntries(node, "addr6")).toEqual([]);
    });

    test("TCP from another host, IPv4 and IPv6", async () => {
      for (const f of [4, 6] as const) {
        // The first exchange may meet the bridge's IPv6 addresses still in duplicate address detection.
        expect(await settled(() => tcpExchange({ server: a.pod, client: node.client, addr: UPLINK.node[f], port: 80, connectPort: 18080 }))).toBe(true);
      }
    });

    test("TCP from the node itself and via localhost", async () => {
      expect(await tcpExchange({ server: a.pod, client: node.ns, addr: UPLINK.node[4], port: 80, connectPort: 18080 })).toBe(true);
      expect(await tcpExchange({ server: a.pod, client: node.ns, addr: UPLINK.node[6], port: 80, connectPort: 18080 })).toBe(true);
      expect(await tcpExchange({ server: a.pod, client: node.ns, addr: "127.0.0.1", port: 80, connectPort: 18080 })).toBe(true);
    });

    test("hairpin: the pod reaches itself, and another pod reaches it, through the host port", async () => {
      expect(await tcpExchange({ server: a.pod, client: a.pod, addr: UPLINK.node[4], port: 80, connectPort: 18080 })).toBe(true);
      expect(await tcpExchange({ server: a.pod, client: b.pod, addr: UPLINK.node[4], port: 80, connectPort: 18080 })).toBe(true);
      expect(await tcpExchange({ server: a.pod, client: b.pod, addr: UPLINK.node[6], port: 80, connectPort: 18080 })).toBe(true);
    });

    test("UDP from another host and from the node", async () => {
      expect(await udpExchange({ server: a.pod, client: node.client, addr: UPLINK.node[4], port: 53, connectPort: 18053 })).toBe(true);
      expect(await udpExchange({ server: a.pod, client: node.client, addr: UPLINK.node[6], port: 53, connectPort: 18053 })).toBe(true);
      expect(await udpExchange({ server: a.pod, client: node.ns, addr: UPLINK.node[4], port: 53, connectPort: 18053 })).toBe(true);
    });

    test("hostIP: only that address answers", async () => {
      expect(await tcpExchange({ server: a.pod, client: node.client, addr: UPLINK.node[4], port: 81, connectPort: 18081 })).toBe(true);
      const gw = addrOf(b.result, 4).replace(/\.\d+$/, ".1");
      // Another local address of the node (routed mode has none on the pod side: the pod's own /32 route is not local).
      if (mode === "bridge") expect(await tcpExchange({ server: a.pod, client: b.pod, addr: gw, port: 81, connectPort: 18081 })).toBe(false);
    });

    test("only connections that need it are masqueraded: a client outside keeps its address", async () => {
      const srv = Bun.spawn(["ip", "netns", "exec", a.pod, "timeout", "5", "python3", "-c",
        `import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("",80));s.listen();print("up",flush=True);c,a=s.accept();print(a[0],flush=True)`], { stdout: "pipe" });
      const reader = srv.stdout.getReader();
      // The pipe hands out whatever was written so far: read whole lines, not chunks.
      let out = "";
      const line = async (n: number) => {
        while (out.split("\n").length <= n) {
          const { value, done } = await reader.read();
          if (done) break;
          out += new TextDecoder().decode(value);
        }
        return out.split("\n")[n - 1] ?? "";
      };
      await line(1); // "up"
      run(["ip", "netns", "exec", node.client, "timeout", "3", "busybox", "nc", "-w", "1", UPLINK.node[4], "18080"], { stdin: "x\n", allowFail: true });
      const seen = await line(2);
      srv.kill();
      await srv.exited;
      expect(seen).toContain(UPLINK.client[4]);
    });

    test("a host port already taken: ADD fails with the port named, and leaves nothing", () => {
      const before = reservedIps(node.dataDir).length;
      const pod = node.pod();
      // With a bandwidth limit too: its ifb, made before the ports are mapped, is rolled back.
      const ifbs = () => run(["ip", "-n", node.ns, "-o", "link", "show", "type", "ifb"]).stdout.trim();
      const conf = { ...withPorts([pm(18090, 90), pm(18080, 8080)]) };
      conf.runtimeConfig.bandwidth = { egressRate: 1_000_000, egressBurst: 100_000 };
      const r = node.call("ADD", conf, { pod, id: "hp-c" });
      expect(r.json.code).toBe(7);
      expect(r.json.msg).toContain(`cannot map host port "18080/tcp": already mapped to the pod of host veth "${hostVethOf(node.ns, NET, a.id)!.ifname}"`);
      expect(hostVethOf(node.ns, NET, "hp-c")).toBeUndefined();
      expect(ifbs()).toBe("");
      expect(reservedIps(node.dataDir)).toHaveLength(before);
      expect(elements(node).join("\n")).not.toContain("18090");
      // The same port twice in one request.
      const twice = node.call("ADD", withPorts([pm(18091, 90), pm(18091, 91)]), { pod, id: "hp-d" });
      expect(twice.json.code).toBe(7);
      expect(twice.json.msg).toContain(`"18091/tcp": it is given twice`);
    });

    test("CHECK finds the mappings, and names one that is missing", () => {
      const conf = withPorts([pm(18097, 97)]);
      const c = node.addPod(conf, "hp-g");
      expect(node.check(conf, c.result, c).code).toBe(0);
      run(["ip", "netns", "exec", node.ns, "nft", "delete", "element", "inet", TABLE, "port4", `{ tcp . 18097 }`]);
      const r = node.check(conf, c.result, c);
      expect(r.json.msg).toContain(`host port "18097/tcp" of "${hostVethOf(node.ns, NET, "hp-g")!.ifname}" is missing`);
      expect(node.del(conf, c).code).toBe(0);
    });

    test("DEL removes the pod's elements, and the port answers no more; GC removes a leftover's", async () => {
      const c = node.addPod(withPorts([pm(18095, 95)]), "hp-e");
      expect(elements(node).join("\n")).toContain("18095");
      const toPod = () => tcpExchange({ server: c.pod, client: node.client, addr: UPLINK.node[4], port: 95, connectPort: 18095 });
      // A listener of the node's own on the host port: it gets the connection once nothing redirects it.
      const toNode = () => tcpExchange({ server: node.ns, client: node.client, addr: UPLINK.node[4], port: 18095 });
      expect(await toPod()).toBe(true);
      expect(await toNode()).toBe(false);
      expect(node.del(base(), c).code).toBe(0);
      expect(elements(node).join("\n")).not.toContain("18095");
      expect(await toNode()).toBe(true);
      // A pod whose DEL never ran, its namespace (and veth) gone: GC removes its elements.
      const d = node.addPod(withPorts([pm(18096, 96)]), "hp-f");
      node.deletePod(d.pod);
      for (let i = 0; i < 50 && hostVethOf(node.ns, NET, "hp-f"); i++) await Bun.sleep(50);
      expect(elements(node).join("\n")).toContain("18096");
      expect(node.gc(base(), [a, b]).code).toBe(0);
      expect(elements(node).join("\n")).not.toContain("18096");
      expect(elements(node).join("\n")).toContain("18080");
    });
  });
}
