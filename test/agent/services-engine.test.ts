// The Service proxy's table through the owned-table engine, against the kernel of a throwaway
// namespace, each sync in a process of its own (a restarted agent), checked with nft:
// - a restarted proxy adopts the table it wrote (no write), but repairs a hand-edited chain
//   and says so;
// - an endpoint change, a new Service and a removed one are element changes over netlink (no
//   structural write), as long as the endpoint count has its preset pick chain;
// - elements a restarted proxy finds wrong (an endpoint deleted by hand) are corrected.
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { join } from "node:path";
import { createNetns, inNetns } from "../helpers/netns.ts";

const ns = createNetns("mnsvce");
afterAll(() => spawnSync(["ip", "netns", "del", ns]));

const ECHO = join(import.meta.dir, "svc-echo.py");
const src = (p: string) => JSON.stringify(join(import.meta.dir, "..", "..", "src", p));
const svc = (name: string, ip: string) => ({ kind: "Service", metadata: { name, namespace: "a" }, spec: { clusterIP: ip, clusterIPs: [ip], type: "NodePort", ports: [{ name: "http", port: 80, nodePort: 30000 + Number(ip.split(".")[3]) }] } });
const slice = (svcName: string, ips: string[]) => ({
  kind: "EndpointSlice", metadata: { name: `${svcName}-x`, namespace: "a", labels: { "kubernetes.io/service-name": svcName } },
  addressType: "IPv4", ports: [{ name: "http", port: 8080, protocol: "TCP" }], endpoints: ips.map((ip) => ({ addresses: [ip], nodeName: "n1" })),
});

/** One proxy sync in a fresh process (a restarted agent), then its next pass, which must write nothing. */
function sync(objects: object[]): { changes: string[]; writes: number } {
  const code = `const { ServiceProxy } = require(${src("agent/services/proxy.ts")}); const { buildClusterState } = require(${src("cluster/build-state.ts")});
    const { systemNft } = require(${src("agent/nft-ruleset.ts")});
    const p = new ServiceProxy({ nodeName: "n1", clusterCidr: ["10.244.0.0/16"], nodeportAddresses: [], nft: systemNft });
    const state = buildClusterState(${JSON.stringify(objects)});
    const r = p.sync(state, ["10.99.0.11"]);
    const next = p.sync(state, ["10.99.0.11"]);
    if (next.writes) throw new Error("the next pass wrote: " + next.changes.join("; "));
    console.log(JSON.stringify({ changes: r.changes, writes: r.writes }));`;
  const r = spawnSync(["ip", "netns", "exec", ns, process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  return JSON.parse(r.stdout.toString());
}

const endpoints = () => {
  const r = inNetns(ns, ["nft", "-j", "list", "map", "inet", "mncni-services", "endpoints-ip-4"]);
  const m = JSON.parse(r.stdout).nftables.find((o: any) => o.map).map;
  return (m.elem ?? []).map((e: any) => `${e[0].concat.join(" . ")} : ${e[1].concat.join(" . ")}`).sort();
};

const base = [svc("web", "10.96.0.10"), slice("web", ["10.244.1.2", "10.244.1.3"]), svc("db", "10.96.0.11"), slice("db", ["10.244.1.4"])];

test("first sync creates the table; a restarted proxy adopts it without a write", () => {
  const first = sync(base);
  expect(first.changes.some((c) => c.startsWith("create table inet mncni-services"))).toBe(true);
  expect(endpoints()).toHaveLength(3); // Cluster policies: no local view
  const again = sync(base);
  expect(again).toEqual({ changes: [], writes: 0 });
});

test("an endpoint change, a new Service, a removed one: element changes only", () => {
  const next = [svc("web", "10.96.0.10"), slice("web", ["10.244.1.2", "10.244.1.3", "10.244.1.9"]), svc("api", "10.96.0.12"), slice("api", ["10.244.1.5"])];
  const r = sync(next);
  expect(r.changes.filter((c) => !/element change\(s\)/.test(c))).toEqual([]);
  expect(endpoints()).toContain(`10.96.0.10 . tcp . 80 . ${0x5c000002} : 10.244.1.9 . 8080`);
  expect(endpoints().some((e: string) => e.startsWith("10.96.0.11 "))).toBe(false);
});

test("an endpoint deleted by hand is put back by the next proxy; a hand-edited chain is repaired and named", () => {
  const state = [svc("web", "10.96.0.10"), slice("web", ["10.244.1.2"])];
  sync(state);
  inNetns(ns, ["nft", "delete", "element", "inet", "mncni-services", "endpoints-ip-4", `{ 10.96.0.10 . tcp . 80 . ${0x5c000000} }`]);
  expect(endpoints().filter((e: string) => e.startsWith("10.96.0.10 . tcp . 80 . 1543503872"))).toEqual([]);
  const fixed = sync(state);
  expect(fixed.changes).toEqual(["correct 1 element change(s) in table inet mncni-services"]);
  expect(endpoints()).toContain(`10.96.0.10 . tcp . 80 . ${0x5c000000} : 10.244.1.2 . 8080`);
  inNetns(ns, ["nft", "insert", "rule", "inet", "mncni-services", "services", "ip", "daddr", "10.96.0.10", "accept"]);
  const repaired = sync(state);
  expect(repaired.changes.some((c) => c.startsWith("repair table inet mncni-services: its chains differ"))).toBe(true);
  expect(inNetns(ns, ["nft", "list", "chain", "inet", "mncni-services", "services"]).stdout).not.toContain("10.96.0.10 accept");
});

test("session affinity records of slots a Service no longer has are deleted (the packet path would keep refreshing them)", () => {
  const sticky = (name: string, ip: string, ips: string[]) => [{ ...svc(name, ip), spec: { ...svc(name, ip).spec, sessionAffinity: "ClientIP" } }, slice(name, ips)];
  // Two more sticky Services keep the pick chains of 2 and 3 endpoints in the structure, so
  // the restarted proxy adopts the table (a new structure would be written whole, records and all).
  const aff = (ips: string[]) => [...sticky("sticky", "10.96.0.30", ips), ...sticky("two", "10.96.0.31", ["10.244.2.1", "10.244.2.2"]), ...sticky("three", "10.96.0.32", ["10.244.2.1", "10.244.2.2", "10.244.2.3"])];
  sync(aff(["10.244.1.2", "10.244.1.3", "10.244.1.4"]));
  const add = (client: string, slot: number) => inNetns(ns, ["nft", "add", "element", "inet", "mncni-services", "affinity-ip-4", `{ ${client} . 10.96.0.30 . tcp . 80 timeout 1h : ${slot} }`]);
  add("10.244.9.1", 0x5c000000);
  add("10.244.9.2", 0x5c000002);
  const records = () => {
    const m = JSON.parse(inNetns(ns, ["nft", "-j", "list", "map", "inet", "mncni-services", "affinity-ip-4"]).stdout).nftables.find((o: any) => o.map).map;
    return (m.elem ?? []).map((e: any) => `${e[0].elem.val.concat[0]}:${e[1]}`).sort();
  };
  expect(records()).toEqual([`10.244.9.1:${0x5c000000}`, `10.244.9.2:${0x5c000002}`]);
  // Down to two endpoints: slot 2 is no endpoint's any more.
  const r = sync(aff(["10.244.1.2", "10.244.1.3"]));
  expect(r.changes).toContain("forget 1 session affinity record(s) of endpoints that went away");
  expect(records()).toEqual([`10.244.9.1:${0x5c000000}`]);
});

test("sessionAffinity ClientIP on a dual-stack Service: the table is written (nft 1.0.6 aborted on the IPv6 record rule), and one client's connections stick to one endpoint in both families", async () => {
  // Three endpoints in this namespace, told apart by port (the echo server answers its name);
  // the client is this namespace too (nat-output), its address on a veth of its own.
  const link = "svcaff0";
  inNetns(ns, ["ip", "link", "add", link, "type", "veth", "peer", "name", "svcaff1"]);
  const servers: ReturnType<typeof Bun.spawn>[] = [];
  try {
    inNetns(ns, ["ip", "link", "set", "svcaff1", "up"]);
    inNetns(ns, ["ip", "link", "set", link, "up"]);
    inNetns(ns, ["ip", "addr", "add", "10.244.9.1/32", "dev", link]);
    inNetns(ns, ["ip", "addr", "add", "fd00:9::1/128", "dev", link, "nodad"]);
    inNetns(ns, ["ip", "route", "add", "10.96.0.0/16", "dev", link, "src", "10.244.9.1"]);
    inNetns(ns, ["ip", "-6", "route", "add", "fd00:96::/112", "dev", link, "src", "fd00:9::1"]);
    for (const i of [1, 2, 3]) {
      const p = Bun.spawn(["ip", "netns", "exec", ns, "python3", ECHO, "serve", `e${i}`, String(8080 + i)], { stdout: "pipe", stderr: "ignore" });
      servers.push(p);
      const reader = p.stdout.getReader();
      await reader.read();
      reader.releaseLock();
    }
    const addr = { 4: "10.244.9.1", 6: "fd00:9::1" } as const;
    const cluster = { 4: "10.96.0.40", 6: "fd00:96::40" } as const;
    const objects: object[] = [
      { kind: "Service", metadata: { name: "sticky", namespace: "a" }, spec: { clusterIP: cluster[4], clusterIPs: [cluster[4], cluster[6]], ipFamilies: ["IPv4", "IPv6"], sessionAffinity: "ClientIP", ports: [{ name: "http", port: 80 }] } },
      ...([4, 6] as const).flatMap((f) => [1, 2, 3].map((i) => ({
        kind: "EndpointSlice", metadata: { name: `sticky-${f}-${i}`, namespace: "a", labels: { "kubernetes.io/service-name": "sticky" } },
        addressType: `IPv${f}`, ports: [{ name: "http", port: 8080 + i, protocol: "TCP" }], endpoints: [{ addresses: [addr[f]], nodeName: "n1" }],
      }))),
    ];
    sync(objects);
    /** One connection's answer ("e2 10.244.9.1"); retried while nothing answers (a busy machine), never judged on that. */
    const connect = async (f: 4 | 6) => {
      for (let i = 0; ; i++) {
        const a = inNetns(ns, ["python3", ECHO, "probe", cluster[f], "80", "tcp"], { allowFail: true }).stdout.trim();
        if (/^e[123] /.test(a) || i >= 30) return a;
        await Bun.sleep(100);
      }
    };
    for (const f of [4, 6] as const) {
      const answers: string[] = [];
      for (let i = 0; i < 12; i++) answers.push(await connect(f));
      // Without affinity, 12 connections spread over 3 endpoints all reach one with odds of 1 in 177,147.
      expect(answers[0]).toMatch(/^e[123] /);
      expect(new Set(answers)).toEqual(new Set([answers[0]!]));
      // The kernel's record: client . Service key (IPv6: a 32-bit hash of them) -> the slot of the endpoint that answered.
      const m = JSON.parse(inNetns(ns, ["nft", "-j", "list", "map", "inet", "mncni-services", `affinity-ip-${f}`]).stdout).nftables.find((o: any) => o.map).map;
      const records = (m.elem ?? []).map((e: any) => [e[0].elem.val.concat?.join(" . ") ?? e[0].elem.val, e[1]]);
      expect(records).toHaveLength(1);
      if (f === 4) expect(records[0][0]).toBe(`${addr[4]} . ${cluster[4]} . tcp . 80`);
      else expect(typeof records[0][0]).toBe("number");
      const endpoints = JSON.parse(inNetns(ns, ["nft", "-j", "list", "map", "inet", "mncni-services", `endpoints-ip-${f}`]).stdout).nftables.find((o: any) => o.map).map;
      const chosen = (endpoints.elem ?? []).find((e: any) => e[0].concat[0] === cluster[f] && e[0].concat[3] === records[0][1]);
      expect(`e${Number(chosen[1].concat[1]) - 8080}`).toBe(answers[0]!.split(" ")[0]!);
    }
    // IPv6 down to two endpoints: the client chooses again (its record was for three), and sticks again.
    sync(objects.filter((o: any) => o.metadata.name !== "sticky-6-3"));
    const after: string[] = [];
    for (let i = 0; i < 10; i++) after.push(await connect(6));
    expect(after[0]).toMatch(/^e[12] /);
    expect(new Set(after)).toEqual(new Set([after[0]!]));
  } finally {
    for (const p of servers) p.kill("SIGKILL");
    inNetns(ns, ["ip", "link", "del", link], { allowFail: true });
  }
});

test("mncni agent --uninstall removes the Service table with mncni's others", () => {
  sync(base);
  expect(inNetns(ns, ["nft", "list", "tables"]).stdout).toContain("inet mncni-services");
  const tmp = spawnSync(["mktemp", "-d", "/tmp/mnsvce-XXXXXX"]).stdout.toString().trim();
  try {
    const bin = join(import.meta.dir, "..", "..", "dist", "mncni");
    const r = inNetns(ns, [bin, "agent", "--uninstall", "--cni-bin-dir", join(tmp, "bin"), "--cni-conf-dir", join(tmp, "conf"), "--state-file", join(tmp, "run.json"), "--cni-socket", join(tmp, "cni.sock")], { allowFail: true });
    expect(r.code).toBe(0);
    expect(inNetns(ns, ["nft", "list", "tables"]).stdout).not.toContain("mncni-services");
  } finally {
    spawnSync(["rm", "-rf", tmp]);
  }
});

test("an agent without --service-proxy deletes a Service table an earlier run left (the rollback)", () => {
  sync(base);
  const tmp = spawnSync(["mktemp", "-d", "/tmp/mnsvce-XXXXXX"]).stdout.toString().trim();
  try {
    spawnSync(["mkdir", "-p", join(tmp, "m")]);
    Bun.write(join(tmp, "m", "node.yaml"), "kind: Node\napiVersion: v1\nmetadata: {name: n1}\nspec: {podCIDRs: [10.244.1.0/24]}\n");
    const bin = join(import.meta.dir, "..", "..", "dist", "mncni");
    inNetns(ns, [bin, "agent", "--once", "--node-name", "n1", "--source", `dir:${join(tmp, "m")}`, "--cluster-cidr", "10.244.0.0/16", "--cni-bin-dir", join(tmp, "bin"), "--cni-conf-dir", join(tmp, "conf"),
      "--ipam-data-dir", join(tmp, "ipam"), "--cni-log-file", join(tmp, "cni.log"), "--log-file", join(tmp, "agent.log"), "--state-file", join(tmp, "run.json"), "--cni-socket", "off", "--metrics-addr", "off"], { allowFail: true });
    expect(inNetns(ns, ["nft", "list", "tables"]).stdout).not.toContain("mncni-services");
    expect(spawnSync(["cat", join(tmp, "agent.log")]).stdout.toString()).toContain("delete table inet mncni-services (--service-proxy is off)");
  } finally {
    spawnSync(["rm", "-rf", tmp]);
  }
});
