import { afterAll, beforeAll, expect, test } from "bun:test";
import { cleanupNetns, ipJson } from "../helpers/netns.ts";
import { withNetns } from "../../src/kernel/index.ts";
import { links } from "../../src/kernel/link.ts";
import { NetlinkSocket } from "../../src/kernel/socket.ts";
import { testNs, type TestNs } from "./fixture.ts";

let N: TestNs;

beforeAll(() => {
  N = testNs();
  // Enough links that a dump spans several datagrams.
  for (let i = 0; i < 12; i++) N.nl.addBridge({ name: `b${i}` });
});
afterAll(() => {
  N?.nl.close();
  cleanupNetns();
});

test("a receive buffer too small for one datagram grows instead of truncating", () => {
  const sock = withNetns(N.path, () => NetlinkSocket.open({ recvSize: 64 }));
  try {
    const names = links(sock).map((l) => l.name);
    expect(names).toEqual(ipJson(N.name, ["link", "show"]).map((l: any) => l.ifname));
    expect(names).toHaveLength(13);
    // The socket stays usable: sequence numbers and the grown buffer carry on.
    expect(links(sock)).toHaveLength(13);
  } finally {
    sock.close();
  }
});

test("a closed socket refuses requests with EBADF", () => {
  const sock = withNetns(N.path, () => NetlinkSocket.open());
  sock.close();
  sock.close(); // idempotent
  expect(() => links(sock)).toThrow(expect.objectContaining({ code: "EBADF" }));
});

test("a parser that throws mid-dump does not leave the dump half-read", () => {
  const sock = withNetns(N.path, () => NetlinkSocket.open({ recvSize: 64 })); // one link per datagram
  try {
    const boom = new Error("boom");
    expect(() => sock.dump("list links", 18 /* RTM_GETLINK */, (w) => w.ifinfomsg({}), () => { throw boom; })).toThrow(boom);
    expect(links(sock)).toHaveLength(13); // a new dump is accepted, not EBUSY
  } finally {
    sock.close();
  }
});
