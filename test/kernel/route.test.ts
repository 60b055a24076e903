import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cleanupNetns, ipJson } from "../helpers/netns.ts";
import { RTPROT_MNCNI } from "../../src/kernel/index.ts";
import { netlinkError, testNs, vethPair, type TestNs } from "./fixture.ts";

let N: TestNs;
let dev: number;

beforeAll(() => {
  N = testNs();
  dev = vethPair(N, "r0", "r1").a;
  N.nl.addAddr(dev, "10.1.0.1/24");
  N.nl.addAddr(dev, "fd01::1/64", { noDad: true });
});
afterAll(() => {
  N?.nl.close();
  cleanupNetns();
});

// -d: ip hides the "boot" protocol and the route type without it.
const ipRoute = (args: string[]) => ipJson(N.name, ["-d", "route", "show", ...args]);
const ipRoute6 = (args: string[]) => ipJson(N.name, ["-d", "-6", "route", "show", ...args]);

describe("add", () => {
  test("via an unreachable gateway is ENETUNREACH with the kernel's reason", () => {
    const e = netlinkError(() => N.nl.addRoute({ dst: "10.6.0.0/24", gw: "10.99.0.1" }));
    expect(e.code).toBe("ENETUNREACH");
    expect(e.message).toContain("invalid gateway");
  });

  test("dst via gw, protocol boot by default", () => {
    N.nl.addRoute({ dst: "10.2.0.0/16", gw: "10.1.0.254" });
    expect(ipRoute(["10.2.0.0/16"])).toEqual([
      { type: "unicast", dst: "10.2.0.0/16", gateway: "10.1.0.254", dev: "r0", protocol: "boot", scope: "global", flags: [] },
    ]);
    expect(netlinkError(() => N.nl.addRoute({ dst: "10.2.0.0/16", gw: "10.1.0.254" })).code).toBe("EEXIST");
  });

  test("dev route gets link scope; host bits of dst are cleared", () => {
    N.nl.addRoute({ dst: "10.3.0.7/24", oif: dev });
    expect(ipRoute(["10.3.0.0/24"])).toEqual([{ type: "unicast", dst: "10.3.0.0/24", dev: "r0", protocol: "boot", scope: "link", flags: [] }]);
    N.nl.addRoute({ dst: "10.3.1.0/24", oif: dev, scope: "host" });
    expect(ipRoute(["10.3.1.0/24"])[0].scope).toBe("host");
  });

  test("table, metric, protocol, src, mtu, advmss", () => {
    N.nl.addRoute({ dst: "10.5.0.0/24", oif: dev, table: 100, priority: 5, protocol: RTPROT_MNCNI, src: "10.1.0.1", mtu: 1300, advmss: 1260 });
    expect(ipRoute(["table", "100"])).toEqual([{
      type: "unicast", dst: "10.5.0.0/24", dev: "r0", protocol: "77", scope: "link", prefsrc: "10.1.0.1", metric: 5, flags: [],
      metrics: [{ mtu: 1300, advmss: 1260 }],
    }]);
    N.nl.addRoute({ dst: "10.5.1.0/24", oif: dev, table: 1000 });
    expect(ipRoute(["table", "1000"]).map((r: any) => r.dst)).toEqual(["10.5.1.0/24"]);
  });

  test("onlink gateway outside every subnet", () => {
    N.nl.addRoute({ dst: "10.4.0.0/24", gw: "169.254.1.1", oif: dev, onlink: true });
    expect(ipRoute(["10.4.0.0/24"])[0]).toMatchObject({ gateway: "169.254.1.1", dev: "r0", flags: ["onlink"] });
  });

  test("IPv6 via gw, default routes of both families, blackhole", () => {
    N.nl.addRoute({ dst: "fd02::/64", gw: "fd01::fe", priority: 10 });
    expect(ipRoute6(["fd02::/64"])[0]).toMatchObject({ dst: "fd02::/64", gateway: "fd01::fe", dev: "r0", metric: 10, protocol: "boot" });
    N.nl.addRoute({ dst: "default", gw: "10.1.0.254" });
    N.nl.addRoute({ dst: "default", gw: "fd01::fe" });
    expect(ipRoute(["default"])[0]).toMatchObject({ dst: "default", gateway: "10.1.0.254" });
    expect(ipRoute6(["default"])[0]).toMatchObject({ dst: "default", gateway: "fd01::fe" });
    N.nl.addRoute({ dst: "10.7.0.0/24", type: "blackhole" });
    expect(ipRoute(["10.7.0.0/24"])[0]).toMatchObject({ type: "blackhole", dst: "10.7.0.0/24" });
  });
});

describe("replace and delete", () => {
  test("replace changes the gateway and creates when missing", () => {
    N.nl.replaceRoute({ dst: "10.2.0.0/16", gw: "10.1.0.253" });
    expect(ipRoute(["10.2.0.0/16"]).map((r: any) => r.gateway)).toEqual(["10.1.0.253"]);
    N.nl.replaceRoute({ dst: "10.8.0.0/24", oif: dev });
    expect(ipRoute(["10.8.0.0/24"])).toHaveLength(1);
  });

  test("delete matches what is given; deleting again is ESRCH", () => {
    N.nl.delRoute({ dst: "10.2.0.0/16" });
    expect(ipRoute(["10.2.0.0/16"])).toEqual([]);
    expect(netlinkError(() => N.nl.delRoute({ dst: "10.2.0.0/16" })).code).toBe("ESRCH");
    N.nl.delRoute({ dst: "10.5.0.0/24", table: 100, protocol: RTPROT_MNCNI });
    expect(ipRoute(["table", "100"])).toEqual([]);
    N.nl.delRoute({ dst: "fd02::/64", gw: "fd01::fe" });
    expect(ipRoute6(["fd02::/64"])).toEqual([]);
  });
});

describe("list", () => {
  test("the main table by default, both families, as ip shows it", () => {
    const ours = N.nl.routes().map((r) => `${r.family} ${r.dst} ${r.gw ?? "-"}`).sort();
    const norm = (f: number, r: any) =>
      `${f} ${r.dst === "default" ? (f === 4 ? "0.0.0.0/0" : "::/0") : r.dst.includes("/") ? r.dst : `${r.dst}/${f === 4 ? 32 : 128}`} ${r.gateway ?? "-"}`;
    const theirs = [...ipRoute([]).map((r: any) => norm(4, r)), ...ipRoute6([]).map((r: any) => norm(6, r))].sort();
    expect(ours).toEqual(theirs);
    const def = N.nl.routes({ family: 4 }).find((r) => r.dst === "0.0.0.0/0")!;
    expect(def).toMatchObject({ family: 4, gw: "10.1.0.254", oif: dev, table: 254, protocol: 3, scope: 0, type: "unicast" });
  });

  test("filters: family, table, protocol, oif", () => {
    expect(N.nl.routes({ family: 6 }).every((r) => r.family === 6)).toBe(true);
    expect(N.nl.routes({ family: 6 }).map((r) => r.dst)).toContain("::/0");
    N.nl.addRoute({ dst: "10.9.0.0/24", oif: dev, table: 100, protocol: RTPROT_MNCNI, onlink: true, gw: "10.1.0.9", mtu: 1400 });
    expect(N.nl.routes({ table: 100 })).toEqual([{
      family: 4, dst: "10.9.0.0/24", gw: "10.1.0.9", oif: dev, table: 100, protocol: RTPROT_MNCNI, scope: 0, type: "unicast", onlink: true, mtu: 1400,
    }]);
    expect(N.nl.routes({ protocol: RTPROT_MNCNI }).length).toBe(0); // main table only
    expect(N.nl.routes({ table: 0, protocol: RTPROT_MNCNI }).map((r) => r.dst)).toEqual(["10.9.0.0/24"]);
    expect(N.nl.routes({ table: 0 }).some((r) => r.table === 255 && r.type === "local")).toBe(true);
    expect(N.nl.routes({ oif: 12345 })).toEqual([]);
    expect(N.nl.routes({ oif: dev }).length).toBe(N.nl.routes().filter((r) => r.oif === dev).length);
    const bh = N.nl.routes().find((r) => r.dst === "10.7.0.0/24")!;
    expect(bh.type).toBe("blackhole");
  });
});
