// `mncni lab up --ipv6`: a dual-stack lab. Every node, pod and the external host get an IPv6
// address beside the IPv4 one, the router routes only the underlay and external prefixes of
// both families, and `lab check` probes every pair over both families with the same
// expectations. Kernel state is checked independently with `ip -j`; down leaves nothing.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { CheckReport } from "../../src/lab/check.ts";
import type { LabStatus } from "../../src/lab/status.ts";
import { ipJson, run } from "../helpers/netns.ts";
import { WIRING, labSource, addrPrefixOf, cidrOf, clusterObjects, downAll, lab, labAround, labJson, newLabName } from "./lab-cli.ts";

setDefaultTimeout(60_000);
afterAll(downAll);

const routes = (netns: string, family: 4 | 6) =>
  ipJson<{ dst: string; gateway?: string }[]>(netns, [`-${family}`, "route", "show"]).map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ""}`);
const addrs = (netns: string, dev: string) =>
  ipJson<{ addr_info: { local: string; scope: string }[] }[]>(netns, ["addr", "show", "dev", dev])[0]!.addr_info.filter((a) => a.scope === "global").map((a) => a.local);
const v6 = (ip: string) => ip.includes(":");

for (const mode of ["bridge", "routed"] as const) {
  describe(`dual-stack lab (--ipv6) in ${mode} mode`, () => {
    const name = newLabName();
    let st: LabStatus;

    labAround(name, ["--ipv6", "--nodes", "2", "--pods-per-node", "2", "--mode", mode, "--wiring", WIRING], (s) => (st = s));

    test("status: nodes and pods have an address of each family; the kernel agrees", () => {
      expect(st.nodes.map((n) => [n.name, n.addresses, n.ready])).toEqual([
        ["node1", ["10.224.0.11", "fd00:224::11"], true],
        ["node2", ["10.224.0.12", "fd00:224::12"], true],
      ]);
      // One pod CIDR per family each (the controller's on the kubernetes source; the lab's on dir, subnet 0 unused).
      for (const n of st.nodes) expect([/^10\.244\.\d+\.0\/24$/.test(n.podCIDRs[0]!), /^fd00:10:244:[0-9a-f:]*:\/64$/.test(n.podCIDRs[1]!)]).toEqual([true, true]);
      if (labSource(name) === "dir") expect(st.nodes.map((n) => n.podCIDRs)).toEqual([["10.244.1.0/24", "fd00:10:244:1::/64"], ["10.244.2.0/24", "fd00:10:244:2::/64"]]);
      expect(st.external).toMatchObject({ address: "203.0.113.10", address6: "2001:db8::10" });
      expect(st.pods.length).toBe(4);
      for (const p of st.pods) {
        expect(p.ips.length).toBe(2);
        expect(p.ips[0]).toStartWith(addrPrefixOf(cidrOf(st, p.node, 4)));
        expect(p.ips[1]).toStartWith(addrPrefixOf(cidrOf(st, p.node, 6)));
        expect(addrs(p.namespace, "eth0").sort()).toEqual([...p.ips].sort());
      }
      expect(addrs(`${name}-node1`, "eth0")).toEqual(["10.224.0.11", "fd00:224::11"]);
      expect(addrs(`${name}-ext`, "eth0")).toEqual(["203.0.113.10", "2001:db8::10"]);
      expect(lab(name, ["status"]).stdout).toContain("10.224.0.11,fd00:224::11");
    });

    test("cluster objects: Node with both podCIDRs and both InternalIPs, Pod with both podIPs", () => {
      const node1 = clusterObjects(name, "node").find((n) => n.metadata.name === "node1");
      expect(node1.spec).toEqual({ podCIDR: cidrOf(st, "node1", 4), podCIDRs: [cidrOf(st, "node1", 4), cidrOf(st, "node1", 6)] });
      const internal = node1.status.addresses.filter((a: { type: string }) => a.type === "InternalIP").map((a: { address: string }) => a.address);
      expect(internal).toEqual(["10.224.0.11", "fd00:224::11"]);
      const pods = clusterObjects(name, "pod");
      expect(pods.map((p) => p.status.podIPs.map((x: { ip: string }) => x.ip).join(",")).sort()).toEqual(st.pods.map((p) => p.ips.join(",")).sort());
    });

    test("routes: the router knows only underlay and ext prefixes; nodes route pod CIDRs of both families; v6 defaults", () => {
      expect(routes(`${name}-rtr`, 6).filter((r) => !r.startsWith("fe80:")).sort()).toEqual(["2001:db8::/64", "fd00:224::/64"]);
      expect(routes(`${name}-rtr`, 4).some((r) => r.startsWith("10.244."))).toBe(false);
      expect(routes(`${name}-node1`, 6)).toContain(`${cidrOf(st, "node2", 6)} via fd00:224::12`);
      expect(routes(`${name}-node2`, 6)).toContain(`${cidrOf(st, "node1", 6)} via fd00:224::11`);
      expect(routes(`${name}-node1`, 6)).toContain("default via fd00:224::1");
      expect(routes(`${name}-ext`, 6)).toContain("default via 2001:db8::1");
    });

    test("check: every pair over both families; pod-pod keeps the source, pod-ext is seen as the node", () => {
      const r = lab(name, ["check", "--json"], { allowFail: true });
      const rep = JSON.parse(r.stdout) as CheckReport;
      expect(rep.results.filter((x) => !x.ok)).toEqual([]);
      expect(r.code).toBe(0);
      // (4 pods x 4 pods + 2 nodes x 4 pods + 4 pods x ext + 2 MTU probes between the first pods) per family.
      expect(rep.results.length).toBe(2 * (4 * 4 + 2 * 4 + 4 + 2));
      for (const f of [4, 6] as const) expect(rep.results.filter((x) => x.family === f).length).toBe(30);
      for (const x of rep.results.filter((x) => x.kind === "pod-ext")) {
        const node = st.nodes.find((n) => x.from.startsWith(`${n.name}/`))!;
        expect(x.seen).toBe(node.addresses[x.family === 4 ? 0 : 1]);
        expect(x.target.startsWith("[")).toBe(x.family === 6);
      }
      for (const x of rep.results.filter((x) => x.kind === "pod-pod")) {
        const from = st.pods.find((p) => `${p.node}/${p.name}` === x.from)!;
        expect(x.seen).toBe(from.ips.find((ip) => v6(ip) === (x.family === 6)));
      }
    });

    test("check fails over IPv6 alone when a pod drops IPv6 traffic to its echo port", () => {
      const victim = st.pods.find((p) => p.node === "node2")!;
      run(["ip", "netns", "exec", victim.namespace, "nft", "-f", "-"], { stdin: "table ip6 mnltest {\n chain in {\n type filter hook input priority 0;\n tcp dport 7777 drop\n }\n}\n" });
      try {
        const r = lab(name, ["check", "--json", "--timeout", "300"], { allowFail: true });
        expect(r.code).toBe(1);
        const bad = (JSON.parse(r.stdout) as CheckReport).results.filter((x) => !x.ok);
        expect(bad.length).toBe(6);
        expect(bad.every((x) => x.family === 6 && x.to === `${victim.node}/${victim.name}` && !x.reachable)).toBe(true);
      } finally {
        run(["ip", "netns", "exec", victim.namespace, "nft", "delete", "table", "ip6", "mnltest"]);
      }
    });
  });
}
