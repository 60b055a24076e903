import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cleanupNetns, ipJson } from "../helpers/netns.ts";
import { NUD } from "../../src/kernel/index.ts";
import { bridgeJson, netlinkError, testNs, vethPair, type TestNs } from "./fixture.ts";

let N: TestNs;
let dev: number;

beforeAll(() => {
  N = testNs();
  dev = vethPair(N, "n0", "n1").a;
  N.nl.addAddr(dev, "10.1.0.1/24");
  N.nl.addAddr(dev, "fd01::1/64", { noDad: true });
});
afterAll(() => {
  N?.nl.close();
  cleanupNetns();
});

const ipNeigh = (family: "-4" | "-6") => ipJson(N.name, [family, "neigh", "show", "dev", "n0"]);

describe("ARP/NDP", () => {
  test("permanent IPv4 and IPv6 neighbours", () => {
    N.nl.addNeigh({ index: dev, ip: "10.1.0.9", mac: "02:00:00:00:00:09" });
    N.nl.addNeigh({ index: dev, ip: "fd01::9", mac: "02:00:00:00:00:19" });
    expect(ipNeigh("-4")).toEqual([{ dst: "10.1.0.9", lladdr: "02:00:00:00:00:09", state: ["PERMANENT"] }]);
    expect(ipNeigh("-6").find((n: any) => n.dst === "fd01::9")).toMatchObject({ lladdr: "02:00:00:00:00:19", state: ["PERMANENT"] });
    expect(N.nl.neighs({ index: dev, family: 4 })).toEqual([
      { index: dev, family: 4, ip: "10.1.0.9", mac: "02:00:00:00:00:09", state: NUD.PERMANENT, flags: 0 },
    ]);
    expect(N.nl.neighs({ index: dev }).map((n) => n.ip)).toEqual(expect.arrayContaining(["10.1.0.9", "fd01::9"]));
    expect(N.nl.neighs({ family: 6 }).every((n) => n.family === 6)).toBe(true);
  });

  test("EEXIST unless replace; states", () => {
    expect(netlinkError(() => N.nl.addNeigh({ index: dev, ip: "10.1.0.9", mac: "02:00:00:00:00:0a" })).code).toBe("EEXIST");
    N.nl.addNeigh({ index: dev, ip: "10.1.0.9", mac: "02:00:00:00:00:0a", replace: true });
    expect(ipNeigh("-4")[0].lladdr).toBe("02:00:00:00:00:0a");
    N.nl.addNeigh({ index: dev, ip: "10.1.0.10", mac: "02:00:00:00:00:10", state: "reachable" });
    expect(ipNeigh("-4").find((n: any) => n.dst === "10.1.0.10").state).toEqual(["REACHABLE"]);
  });

  test("delete; deleting again is ENOENT", () => {
    N.nl.delNeigh({ index: dev, ip: "10.1.0.9" });
    N.nl.delNeigh({ index: dev, ip: "fd01::9" });
    expect(ipNeigh("-4").map((n: any) => n.dst)).not.toContain("10.1.0.9");
    expect(ipNeigh("-6").map((n: any) => n.dst)).not.toContain("fd01::9");
    expect(netlinkError(() => N.nl.delNeigh({ index: dev, ip: "10.1.0.9" })).code).toBe("ENOENT");
  });
});

describe("FDB", () => {
  test("VXLAN flood entries (all-zero MAC, one per remote VTEP) and a per-node entry", () => {
    N.nl.addVxlan({ name: "vx0", vni: 1, local: "10.1.0.1", device: dev, learning: false });
    const vx = N.nl.link("vx0")!.index;
    N.nl.addNeigh({ index: vx, mac: "00:00:00:00:00:00", dst: "10.1.0.2", append: true });
    N.nl.addNeigh({ index: vx, mac: "00:00:00:00:00:00", dst: "10.1.0.3", append: true });
    N.nl.addNeigh({ index: vx, mac: "02:00:00:00:01:02", dst: "10.1.0.2", replace: true });
    N.nl.addNeigh({ index: vx, mac: "02:00:00:00:01:02", dst: "10.1.0.4", replace: true });
    const fdb = bridgeJson(N.name, ["fdb", "show", "dev", "vx0"]).filter((e: any) => e.dst);
    expect(fdb.map((e: any) => `${e.mac} ${e.dst} ${e.flags.join(",")} ${e.state}`).sort()).toEqual([
      "00:00:00:00:00:00 10.1.0.2 self permanent",
      "00:00:00:00:00:00 10.1.0.3 self permanent",
      "02:00:00:00:01:02 10.1.0.4 self permanent",
    ]);
    const ours = N.nl.neighs({ family: "bridge", index: vx }).filter((n) => n.dst);
    expect(ours.map((n) => `${n.mac} ${n.dst}`).sort()).toEqual([
      "00:00:00:00:00:00 10.1.0.2", "00:00:00:00:00:00 10.1.0.3", "02:00:00:00:01:02 10.1.0.4",
    ]);
    expect(ours.every((n) => n.family === "bridge" && n.state === NUD.PERMANENT && n.flags & 0x2)).toBe(true);

    N.nl.delNeigh({ index: vx, mac: "00:00:00:00:00:00", dst: "10.1.0.3" });
    expect(bridgeJson(N.name, ["fdb", "show", "dev", "vx0"]).filter((e: any) => e.dst).map((e: any) => e.dst).sort()).toEqual([
      "10.1.0.2", "10.1.0.4",
    ]);
  });

  test("static entry on a bridge port (master)", () => {
    N.nl.addBridge({ name: "br0" });
    const br = N.nl.link("br0")!.index;
    N.nl.setLink(dev, { master: br });
    N.nl.addNeigh({ index: dev, family: "bridge", mac: "02:00:00:00:02:01", master: true });
    const e = bridgeJson(N.name, ["fdb", "show", "dev", "n0"]).find((x: any) => x.mac === "02:00:00:00:02:01");
    expect(e).toMatchObject({ master: "br0", state: "permanent" });
    N.nl.addNeigh({ index: dev, family: "bridge", mac: "02:00:00:00:02:02", master: true, state: "noarp" });
    const s = bridgeJson(N.name, ["fdb", "show", "dev", "n0"]).find((x: any) => x.mac === "02:00:00:00:02:02");
    expect(s).toMatchObject({ master: "br0", state: "static" });
    expect(N.nl.neighs({ family: "bridge", index: dev }).map((n) => n.mac)).toContain("02:00:00:00:02:01");
    N.nl.delNeigh({ index: dev, family: "bridge", mac: "02:00:00:00:02:01", master: true });
    expect(bridgeJson(N.name, ["fdb", "show", "dev", "n0"]).map((x: any) => x.mac)).not.toContain("02:00:00:00:02:01");
  });
});
