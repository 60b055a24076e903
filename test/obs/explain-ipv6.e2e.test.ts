// explain between IPv6 addresses in a dual-stack lab, through the compiled binary: the path
// the kernel picks for the IPv6 packet, confirmed by an IPv6 probe traced by nftables.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Explanation } from "../../src/obs/explain.ts";
import { ipJson } from "../helpers/netns.ts";
import { WIRING, downAll, lab, newLabName } from "../lab/lab-cli.ts";

setDefaultTimeout(60_000);
afterAll(downAll);

for (const mode of ["routed"] as const) describe(`explain over IPv6 (${mode} mode)`, () => {
  const name = newLabName();
  const explain = (...argv: string[]) => {
    const r = lab(name, ["explain", ...argv, "--json", "-6"], { allowFail: true });
    return { code: r.code, ex: JSON.parse(r.stdout) as Explanation };
  };
  beforeAll(() => {
    lab(name, ["up", "-q", "--ipv6", "--nodes", "2", "--pods-per-node", "2", "--mode", mode, "--wiring", WIRING]);
  });

  test("across nodes over TCP: the kernel's IPv6 routes, hop by hop", () => {
    const { code, ex } = explain("node1/pod1", "node2/pod2", "--proto", "tcp", "--no-probe");
    expect(ex.dst).toContain(":");
    expect(ex.src).toContain(":");
    expect(ex.hops.map((h) => h.place)).toEqual(["node1/pod1", "node1", "node2", "node2/pod2"]);
    expect(ex.hops[1]!.route!.gw).toBe(ipJson<any[]>(`${name}-node1`, ["-6", "route", "get", ex.dst])[0].gateway);
    expect(ex.outcome).toBe("delivered");
    expect(code).toBe(0);
  });

  // Once node1 has resolved node2's address, the probe is traced on both nodes and the paths
  // agree. The first probe after the lab comes up can still miss node2's trace while neighbour
  // discovery for node2 is in flight (docs/troubleshooting.md, "IPv6"): explained once first.
  test("across nodes over TCP, confirmed by the probe traced on both nodes", () => {
    explain("node1/pod1", "node2/pod2", "--proto", "tcp");
    const { code, ex } = explain("node1/pod1", "node2/pod2", "--proto", "tcp");
    expect(ex.outcome).toBe("delivered");
    for (const place of ["node1", "node2"]) expect(ex.probe!.places.find((p) => p.place === place)!.events.some((e) => e.saddr === ex.src)).toBe(true);
    expect(ex.probe!.places.find((p) => p.place === "node2/pod2")!.verdict).toBe("accepted");
    expect(ex.probe!.mismatches).toEqual([]);
    expect(code).toBe(0);
  });

  test("same node over ICMPv6, confirmed by the probe", () => {
    const { code, ex } = explain("node1/pod1", "node1/pod2", "--proto", "icmp");
    expect(ex.outcome).toBe("delivered");
    expect(ex.hops.map((h) => h.place)).toEqual(["node1/pod1", "node1", "node1/pod2"]);
    expect(ex.probe!.places.find((p) => p.place === "node1/pod2")!.verdict).toBe("accepted");
    expect(ex.probe!.places.find((p) => p.place === "node1")!.events.some((e) => e.saddr === ex.src)).toBe(true);
    expect(ex.probe!.mismatches).toEqual([]);
    expect(code).toBe(0);
  });

  test("to the external host by name (ext): its IPv6 address, reached masqueraded, confirmed by the probe", () => {
    const { code, ex } = explain("node1/pod1", "ext", "--proto", "tcp");
    expect(ex.dst).toBe("2001:db8::10");
    expect(ex.hops.at(-1)!.place).toBe("ext");
    expect(ex.outcome).toBe("delivered");
    expect(ex.probe!.mismatches).toEqual([]);
    expect(code).toBe(0);
  });
});
