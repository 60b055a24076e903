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
