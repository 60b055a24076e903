// Chaining, as a runtime does it through libcni (src/lab/executor.ts): a conflist
// [mncni, portmap, tuning] with the Go reference plugins after mncni. ADD passes each
// result on as prevResult, CHECK runs the chain on the cached result, DEL runs it in
// reverse. Checked against the kernel: tuning's MTU and sysctl inside the pod, portmap's
// DNAT answering real TCP from a client namespace to the node's address, and all of it
// gone after DEL.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { CniExecutor, CniPluginError, type RuntimeAttachment } from "../../src/lab/executor.ts";
import { cni } from "../helpers/cni.ts";
import { REF_CNI_DIR } from "../helpers/binary.ts";
import { inNetns, ipJson, netnsPath, run } from "../helpers/netns.ts";
import {
  destroyAllNodes,
  familyOf,
  hostVethOf,
  NET,
  plain,
  reaches,
  reservedIps,
  STACKS,
  tcpExchange,
  TestNode,
  UPLINK,
  type Fam,
} from "./fixture.ts";

afterAll(destroyAllNodes);
setDefaultTimeout(30_000);

const HOST_PORT = 18080;
const CONTAINER_PORT = 8080;
const TUNED_MTU = 1400;

/** iptables/ip6tables nat rules of the node that mention the host port (portmap's DNAT). */
function dnatRules(node: string, f: Fam): string[] {
  const out = inNetns(node, [f === 4 ? "iptables-save" : "ip6tables-save", "-t", "nat"]).stdout;
  return out.split("\n").filter((l) => l.includes(`--dport ${HOST_PORT}`));
}

describe.each(["bridge", "routed"] as const)("conflist [mncni (%s), portmap, tuning]", (mode) => {
  let node: TestNode;
  let exec: CniExecutor;
  let pod: string;
  let att: RuntimeAttachment;
  let result: any;

  beforeAll(() => {
    node = new TestNode({ uplink: true });
    const confDir = `${node.dir}/net.d`;
    mkdirSync(confDir);
    const mncni = node.conf({ stack: "dual", extra: { mode } });
    delete mncni.cniVersion;
    delete mncni.name;
    // The reference plugins speak CNI up to 1.0.0, so the list does too.
    const list = {
      cniVersion: "1.0.0",
      name: NET,
      plugins: [
        mncni,
        { type: "portmap", capabilities: { portMappings: true }, snat: true },
        { type: "tuning", mtu: TUNED_MTU, sysctl: { "net.ipv4.conf.eth0.arp_notify": "1" } },
      ],
    };
    writeFileSync(`${confDir}/10-mnr.conflist`, JSON.stringify(list));
    exec = new CniExecutor({
      confDir,
      binDirs: [node.binDir, REF_CNI_DIR],
      cacheDir: `${node.dir}/results`,
      execPrefix: ["ip", "netns", "exec", node.ns],
    });
    pod = node.pod();
    att = {
      containerId: "chain1",
      netns: netnsPath(pod),
      ifname: "eth0",
      capabilityArgs: {
        portMappings: [
          { hostPort: HOST_PORT, containerPort: CONTAINER_PORT, protocol: "tcp" },
        ],
      },
    };
  });
  afterAll(() => node?.destroy());

  /**
   * The chain's CHECK through the executor. The reference portmap 1.1.1 fails its own CHECK
   * whatever plugin precedes it: it looks for IPv6 rules built from the IPv4 address
   * (containernetworking/plugins#819, fixed upstream later). That failure, and only that one,
   * is tolerated: mncni must have passed before it, and tuning is then checked by hand.
   */
  async function checkChain(): Promise<void> {
    const from = exec.calls.length;
    const err = await exec.check(att).then(() => undefined, (e: CniPluginError) => e);
    const checks = exec.calls.slice(from);
    expect(checks[0]).toMatchObject({ command: "CHECK", plugin: "mncni", ok: true });
    if (!err) return;
    expect(err).toBeInstanceOf(CniPluginError);
    expect(err.plugin).toBe("portmap");
    expect(err.msg).toContain("could not check ipv6 dnat");
    const tuning = exec.loadNetwork().plugins[2]!;
    const r = cni({
      command: "CHECK",
      conf: { ...tuning, cniVersion: "1.0.0", name: NET, prevResult: result },
      bin: `${REF_CNI_DIR}/tuning`,
      nodeNs: node.ns,
      containerId: att.containerId,
      netns: att.netns,
      ifname: att.ifname,
      path: node.cniPath,
    });
    expect(r.stderr + r.stdout).toBe("");
    expect(r.code).toBe(0);
  }

  test("ADD runs the chain; portmap and tuning accept mncni's result and apply on top of it", async () => {
    result = await exec.add(att);
    const veth = hostVethOf(node.ns, NET, "chain1")!;
    expect(veth).toBeDefined();
    // The final result still describes mncni's interfaces and addresses.
    const names = result.interfaces.map((i: any) => i.name);
    expect(names).toContain(veth.ifname);
    expect(names).toContain("eth0");
    expect(result.ips.map((i: any) => familyOf(i.address)).sort()).toEqual([4, 6]);
    // tuning: MTU and sysctl inside the pod.
    const eth0 = ipJson<any[]>(pod, ["link", "show", "eth0"])[0];
    expect(eth0.mtu).toBe(TUNED_MTU);
    expect(inNetns(pod, ["cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify"]).stdout.trim()).toBe("1");
    // portmap: DNAT for the host port towards the pod, per family.
    for (const f of STACKS.dual.families) {
      const podIp = plain(result.ips.find((i: any) => familyOf(i.address) === f).address);
      expect(dnatRules(node.ns, f).join("\n")).toContain(podIp);
    }
  });

  for (const f of [4, 6] as Fam[]) {
    test(`IPv${f}: the published port answers a client outside the node`, async () => {
      const podIp = plain(result.ips.find((i: any) => familyOf(i.address) === f).address);
      // The path itself first (neighbour entries), then TCP through the DNAT.
      expect(await reaches(node.client, podIp)).toBe(true);
      expect(await tcpExchange({ server: pod, client: node.client, addr: UPLINK.node[f], port: CONTAINER_PORT, connectPort: HOST_PORT })).toBe(true);
    });
  }

  test("CHECK of the chain on the cached result: mncni and tuning pass (portmap: see below)", async () => {
    await checkChain();
  });

  test("CHECK of the chain fails, in mncni, when the pod's interface is down", async () => {
    // Not restored: taking the link down also flushed the pod's routes, which CHECK then misses too.
    run(["ip", "-n", pod, "link", "set", "eth0", "down"]);
    const err = await exec.check(att).then(() => undefined, (e: CniPluginError) => e);
    expect(err).toBeInstanceOf(CniPluginError);
    expect(err!.plugin).toBe("mncni");
    expect(err!.msg).toContain("eth0");
  });

  test("DEL runs the chain in reverse and removes everything; a second DEL without a cached result succeeds", async () => {
    const ips = result.ips.map((i: any) => plain(i.address));
    await exec.del(att);
    expect(hostVethOf(node.ns, NET, "chain1")).toBeUndefined();
    for (const f of [4, 6] as Fam[]) expect(dnatRules(node.ns, f)).toEqual([]);
    expect(reservedIps(node.dataDir).filter((ip) => ips.includes(ip))).toEqual([]);
    await exec.del(att);
    expect(exec.calls.filter((c) => c.command === "DEL").map((c) => c.plugin)).toEqual([
      "tuning", "portmap", "mncni", "tuning", "portmap", "mncni",
    ]);
  });
});
