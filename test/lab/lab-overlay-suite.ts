// `mncni lab up --segments 2`: nodes on two underlay subnets (a switch each) joined by the
// router, which routes no pod CIDR, so pods of different segments meet only through the
// agents' VXLAN tunnels. auto routes directly within a segment and tunnels across; vxlan
// tunnels to every node. `lab status` shows each node's segment and each peer's path, checked
// here against the kernel with `ip -j`; `lab check` proves the model and the MTU (full-MTU DF
// pings pass, one byte more refused). Nodes are added and removed on either segment; an agent
// restart leaves the kernel state as it was. A function (lab-overlay.e2e.test.ts runs it in
// `make test`; source-dir and fast-path-overlay matrix files on their own terms), not a test
// file they import: a test file imported by two files of one run registers its tests once.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { CheckReport } from "../../src/lab/check.ts";
import type { LabStatus } from "../../src/lab/status.ts";
import { inNetns, ipJson } from "../helpers/netns.ts";
import { cidrOf, downAll, lab, labAround, labJson, netOf, newLabName } from "./lab-cli.ts";

type R = { dst: string; gateway?: string; dev?: string; flags?: string[] };
const podRoutes = (netns: string) =>
  [4, 6].flatMap((f) => ipJson<R[]>(netns, [`-${f}`, "route", "show", "proto", "77"]))
    .filter((r) => r.gateway)
    .map((r) => `${r.dst} via ${r.gateway}${r.dev?.startsWith("mncni.vxlan") ? ` dev ${r.dev}` : ""}`)
    .sort();
const paths = (st: LabStatus) => Object.fromEntries(st.nodes.map((n) => [n.name, Object.fromEntries(n.paths.map((p) => [p.peer, p.path]))]));

export function overlaySuite(): void {
  setDefaultTimeout(90_000);
  afterAll(downAll);

  for (const [routing, mode] of [["auto", "bridge"], ["vxlan", "routed"]] as const) {
    describe(`lab --segments 2 --routing ${routing}, ${mode} mode, dual-stack`, () => {
      const name = newLabName();
      let st: LabStatus;

      labAround(name, ["--ipv6", "--segments", "2", "--routing", routing, "--nodes", "3", "--pods-per-node", "1", "--mode", mode, "--wiring", "agent"], (s) => (st = s));

      test("status: nodes round robin over the segments; each peer's path; the kernel agrees", () => {
        expect(st.nodes.map((n) => [n.name, n.segment, n.addresses])).toEqual([
          ["node1", 0, ["10.224.0.11", "fd00:224::11"]],
          ["node2", 1, ["10.224.1.12", "fd00:224:0:1::12"]],
          ["node3", 0, ["10.224.0.13", "fd00:224::13"]],
        ]);
        expect(st.segments.map((g) => [g.switch, g.cidr, g.cidr6])).toEqual([
          [`${name}-sw`, "10.224.0.0/24", "fd00:224::/64"],
          [`${name}-sw1`, "10.224.1.0/24", "fd00:224:0:1::/64"],
        ]);
        const direct = routing === "auto" ? "direct" : "tunnel";
        expect(paths(st)).toEqual({
          node1: { node2: "tunnel", node3: direct },
          node2: { node1: "tunnel", node3: "tunnel" },
          node3: { node1: direct, node2: "tunnel" },
        });
        const [c2, c3, c62, c63] = [cidrOf(st, "node2"), cidrOf(st, "node3"), cidrOf(st, "node2", 6), cidrOf(st, "node3", 6)];
        expect(podRoutes(`${name}-node1`)).toEqual([
          `${c2} via ${netOf(c2)} dev mncni.vxlan`,
          routing === "auto" ? `${c3} via 10.224.0.13` : `${c3} via ${netOf(c3)} dev mncni.vxlan`,
          `${c62} via ${netOf(c62)} dev mncni.vxlan6`,
          routing === "auto" ? `${c63} via fd00:224::13` : `${c63} via ${netOf(c63)} dev mncni.vxlan6`,
        ].sort());
        // The router routes no pod CIDR: across segments, only the tunnel carries pod traffic.
        expect([4, 6].flatMap((f) => ipJson<R[]>(`${name}-rtr`, [`-${f}`, "route", "show"])).some((r) => r.dst.startsWith("10.244.") || r.dst.startsWith("fd00:10:244"))).toBe(false);
        const text = lab(name, ["status"]).stdout;
        expect(text).toContain(`routing ${routing} over 2 segments`);
        expect(text).toMatch(/node1\s+node2\s+tunnel/);
      });

      test("check: no NAT pod to pod across segments, masquerade to ext, full-MTU DF probes pass and one byte more is refused", () => {
        const rep = labJson<CheckReport>(name, ["check"]);
        expect(rep.results.filter((r) => !r.ok)).toEqual([]);
        const mtu = rep.results.filter((r) => r.kind === "pod-mtu");
        // Between the first pods of 3 nodes, each way, per family; the pod MTU leaves room for VXLAN over IPv6.
        expect(mtu.length).toBe(3 * 2 * 2);
        expect(mtu.every((r) => r.target.includes("(1430 B DF)"))).toBe(true);
        expect(rep.results.filter((r) => r.kind === "pod-pod").every((r) => r.seen === r.expected)).toBe(true);
      });

      test("a node added on segment 1 and one on segment 0 get their paths; removed, they are gone from every node", () => {
        lab(name, ["node", "add", "-q", "--pods", "1"]);
        lab(name, ["node", "add", "-q", "--pods", "1"]);
        st = labJson<LabStatus>(name, ["status"]);
        expect(st.nodes.map((n) => [n.name, n.segment])).toEqual([["node1", 0], ["node2", 1], ["node3", 0], ["node4", 1], ["node5", 0]]);
        expect(paths(st).node4).toEqual({ node1: "tunnel", node2: routing === "auto" ? "direct" : "tunnel", node3: "tunnel", node5: "tunnel" });
        expect(paths(st).node1!.node5).toBe(routing === "auto" ? "direct" : "tunnel");
        expect(labJson<CheckReport>(name, ["check"]).results.filter((r) => !r.ok)).toEqual([]);
        lab(name, ["node", "remove", "node4", "-q"]);
        lab(name, ["node", "remove", "node5", "-q"]);
        for (const n of ["node1", "node2", "node3"]) {
          expect(podRoutes(`${name}-${n}`).some((r) => /10\.244\.[45]\.|fd00:10:244:[45]:/.test(r))).toBe(false);
          const fdb = JSON.parse(inNetns(`${name}-${n}`, ["bridge", "-j", "fdb", "show", "dev", "mncni.vxlan"]).stdout || "[]");
          expect(fdb.filter((e: { dst?: string }) => e.dst === "10.224.1.14" || e.dst === "10.224.0.15")).toEqual([]);
        }
      });

      test("restarting an agent changes nothing in the kernel", () => {
        const before = podRoutes(`${name}-node1`);
        const dev = ipJson<{ ifindex: number }[]>(`${name}-node1`, ["link", "show", "mncni.vxlan"])[0]!.ifindex;
        lab(name, ["node", "restart-agent", "node1", "-q"]);
        expect(podRoutes(`${name}-node1`)).toEqual(before);
        expect(ipJson<{ ifindex: number }[]>(`${name}-node1`, ["link", "show", "mncni.vxlan"])[0]!.ifindex).toBe(dev);
      });
    });
  }
}
