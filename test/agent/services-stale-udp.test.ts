// The agent's UDP clean-up once a Service key gains endpoints (forgetStaleUdp, "service"):
// it deletes the entries to the key that were NOT translated (made while nothing answered
// for it) and keeps those a DNAT sent to an endpoint. A node namespace forwards real
// datagrams from a client namespace to the Service IP: one before the DNAT exists (an
// untranslated entry), one after (translated to the endpoint); `conntrack -L` in the node
// namespace is the independent view.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { forgetStaleUdp } from "../../src/agent/services/stale-udp.ts";
import { cleanupNetns, createNetns, inNetns, netnsPath, run } from "../helpers/netns.ts";
import { until } from "../helpers/until.ts";

const SVC = "10.96.0.53";
const CLIENT = "10.250.1.2";
const ENDPOINT = "10.250.2.2";

describe("UDP clean-up of a Service key that gained endpoints", () => {
  let node: string;
  let client: string;
  let server: string;

  const entries = () => inNetns(node, ["conntrack", "-L", "-p", "udp", "--orig-dst", SVC], { allowFail: true }).stdout;
  const entryOf = (sport: number) => entries().split("\n").find((l) => l.includes(`sport=${sport} `));
  const send = (sport: number) =>
    inNetns(client, ["python3", "-c", `import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("",${sport}));s.sendto(b"x",("${SVC}",53))`]);

  beforeAll(() => {
    node = createNetns("mst-node");
    client = createNetns("mst-cl");
    server = createNetns("mst-ep");
    const wire = (peer: string, net: number, peerIP: string) => {
      run(["ip", "-n", node, "link", "add", `to${net}`, "type", "veth", "peer", "name", "eth0", "netns", peer]);
      run(["ip", "-n", node, "addr", "add", `10.250.${net}.1/24`, "dev", `to${net}`]);
      run(["ip", "-n", node, "link", "set", `to${net}`, "up"]);
      run(["ip", "-n", peer, "addr", "add", `${peerIP}/24`, "dev", "eth0"]);
      run(["ip", "-n", peer, "link", "set", "eth0", "up"]);
      run(["ip", "-n", peer, "route", "add", "default", "via", `10.250.${net}.1`]);
    };
    wire(client, 1, CLIENT);
    wire(server, 2, ENDPOINT);
    inNetns(node, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // Before the Service has endpoints its IP is routed on (as a node with no rule for it does).
    run(["ip", "-n", node, "route", "add", `${SVC}/32`, "via", ENDPOINT]);
    // A NAT chain with a ct match from the start: the node tracks connections (as one running
    // the proxy does; a NAT chain alone does not make the kernel track them).
    inNetns(node, ["nft", "add table ip svc; add chain ip svc pre { type nat hook prerouting priority -100; }; add rule ip svc pre ct state new counter"]);
    // Unanswered UDP entries live 30 s by default: long enough for the test at load 10 on two cores.
    inNetns(node, ["sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=600"]);
  });

  afterAll(() => cleanupNetns());

  test("only the untranslated entry goes; the one DNAT sent to the endpoint stays", async () => {
    send(40001);
    await until("the untranslated entry", () => entryOf(40001)?.includes(`src=${SVC} dst=${CLIENT} sport=53 dport=40001`) ?? false);
    // The key gains an endpoint: 53 -> ENDPOINT:5353.
    inNetns(node, ["nft", `add rule ip svc pre ip daddr ${SVC} udp dport 53 dnat to ${ENDPOINT}:5353`]);
    send(40002);
    await until("the translated entry", () => entryOf(40002)?.includes(`src=${ENDPOINT} dst=${CLIENT} sport=5353 dport=40002`) ?? false);

    expect(forgetStaleUdp([{ by: "service", family: 4, ip: SVC, dports: [53] }], netnsPath(node))).toBe(1);

    expect(entryOf(40001)).toBeUndefined();
    expect(entryOf(40002)).toContain(`src=${ENDPOINT}`);

    // The endpoint goes away: its translated entry goes with it.
    expect(forgetStaleUdp([{ by: "endpoint", family: 4, ip: ENDPOINT, dports: [53] }], netnsPath(node))).toBe(1);
    expect(entries()).not.toContain("sport=40002 ");
  });
});
