// The NFLOG reader's binding as the kernel reports it (/proc/net/netfilter/nfnetlink_log in the
// namespace: group, peer, queue length, copy mode and range, flush timeout, use count): packet
// copies of 128 bytes, and a flush timeout of a tenth of a second. The kernel's default is a
// second, which held a lone denied packet that long before the verdict log (and every page or
// `flows --follow` reading it) could see it.
import { afterAll, expect, test } from "bun:test";
import { NflogReader } from "../../src/kernel/nflog.ts";
import { cleanupNetns, createNetns, inNetns, netnsPath } from "../helpers/netns.ts";

afterAll(() => cleanupNetns());

test("the reader binds its group with packet copies and a 100 ms flush timeout", () => {
  const ns = createNetns("mnflog");
  const reader = NflogReader.open(4242, netnsPath(ns));
  try {
    const lines = inNetns(ns, ["cat", "/proc/net/netfilter/nfnetlink_log"]).stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
    const mine = lines.find((l) => l[0] === 4242);
    expect(mine).toBeDefined();
    const [, , , copyMode, copyRange, flushTimeout] = mine!;
    expect({ copyMode, copyRange, flushTimeout }).toEqual({ copyMode: 2, copyRange: 128, flushTimeout: 10 });
  } finally {
    reader.close();
  }
});
