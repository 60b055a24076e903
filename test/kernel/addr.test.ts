import { afterAll, beforeAll, expect, test } from "bun:test";
import { cleanupNetns, ipJson } from "../helpers/netns.ts";
import { netlinkError, testNs, vethPair, type TestNs } from "./fixture.ts";

let N: TestNs;
let dev: number;

beforeAll(() => {
  N = testNs();
  dev = vethPair(N, "a0", "a1").a;
});
afterAll(() => {
  N?.nl.close();
  cleanupNetns();
});

const ipAddrs = (family: "-4" | "-6") =>
  ipJson(N.name, [family, "addr", "show", "dev", "a0"])[0]?.addr_info ?? [];

test("IPv4 address with its broadcast", () => {
  N.nl.addAddr(dev, "10.1.2.3/24");
  const a = ipAddrs("-4").find((x: any) => x.local === "10.1.2.3");
  expect(a).toMatchObject({ prefixlen: 24, broadcast: "10.1.2.255", scope: "global" });
  expect(N.nl.addrs({ index: dev, family: 4 })).toEqual([
    { index: dev, family: 4, cidr: "10.1.2.3/24", address: "10.1.2.3", prefixLen: 24, scope: 0, flags: 0x80 },
  ]);
});

test("IPv6 address with noDad is not tentative; without it, it is", () => {
  N.nl.addAddr(dev, "fd00::5/64", { noDad: true });
  N.nl.addAddr(dev, "fd00::6/64");
  const v6 = ipAddrs("-6");
  const nodad = v6.find((x: any) => x.local === "fd00::5");
  expect(nodad.prefixlen).toBe(64);
  expect(nodad.tentative).toBeUndefined();
  expect(v6.find((x: any) => x.local === "fd00::6").tentative).toBe(true);
  const ours = N.nl.addrs({ index: dev, family: 6 }).find((a) => a.address === "fd00::5")!;
  expect(ours).toMatchObject({ cidr: "fd00::5/64", prefixLen: 64, family: 6 });
  expect(ours.flags & 0x02).toBe(0x02); // IFA_F_NODAD
  expect(ours.flags & 0x40).toBe(0); // not IFA_F_TENTATIVE
});

test("addrs() agrees with ip on every address of the namespace", () => {
  const ours = N.nl.addrs().map((a) => `${a.index} ${a.cidr}`).sort();
  const theirs = ipJson(N.name, ["addr", "show"])
    .flatMap((l: any) => l.addr_info.map((x: any) => `${l.ifindex} ${x.local}/${x.prefixlen}`))
    .sort();
  expect(ours).toEqual(theirs);
  expect(N.nl.addrs({ family: 4 }).every((a) => a.family === 4)).toBe(true);
});

test("EEXIST unless replace; scope is set", () => {
  expect(netlinkError(() => N.nl.addAddr(dev, "10.1.2.3/24")).code).toBe("EEXIST");
  N.nl.addAddr(dev, "10.1.2.3/24", { replace: true });
  N.nl.addAddr(dev, "10.1.3.1/32", { scope: 253 });
  expect(ipAddrs("-4").find((x: any) => x.local === "10.1.3.1").scope).toBe("link");
});

test("delAddr removes v4 and v6; deleting again fails", () => {
  N.nl.delAddr(dev, "10.1.2.3/24");
  N.nl.delAddr(dev, "fd00::5/64");
  const left = [...ipAddrs("-4"), ...ipAddrs("-6")].map((x: any) => x.local);
  expect(left).not.toContain("10.1.2.3");
  expect(left).not.toContain("fd00::5");
  expect(left).toContain("fd00::6");
  expect(netlinkError(() => N.nl.delAddr(dev, "10.1.2.3/24")).code).toBe("EADDRNOTAVAIL");
});
