// Transmit checksum offload over SIOCETHTOOL, checked with ethtool(8): set on a VXLAN device
// inside a throwaway namespace through a Netlink handle bound to it (the ioctl socket is
// opened there, not in the test's own namespace), read back both ways.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { cleanupNetns, inNetns } from "../helpers/netns.ts";
import { netlinkError, testNs, type TestNs } from "./fixture.ts";

let N: TestNs;
beforeAll(() => {
  N = testNs();
  N.nl.addVxlan({ name: "vx0", vni: 9, port: 4789, learning: false });
});
afterAll(() => {
  N?.nl.close();
  cleanupNetns();
});

const ethtoolSays = () => /tx-checksum-ip-generic: (on|off)/.exec(inNetns(N.name, ["ethtool", "-k", "vx0"]).stdout)?.[1];

test("off and on again, as ethtool sees it; the getter agrees", () => {
  expect(ethtoolSays()).toBe("on");
  expect(N.nl.txChecksumOn("vx0")).toBe(true);
  N.nl.setTxChecksum("vx0", false);
  expect(ethtoolSays()).toBe("off");
  expect(N.nl.txChecksumOn("vx0")).toBe(false);
  N.nl.setTxChecksum("vx0", true);
  expect(ethtoolSays()).toBe("on");
});

test("a device missing in the handle's namespace is ENODEV, named", () => {
  const e = netlinkError(() => N.nl.setTxChecksum("nosuch0", false));
  expect(e.code).toBe("ENODEV");
  expect(e.message).toBe('cannot set tx checksum offload of "nosuch0": ENODEV');
});
