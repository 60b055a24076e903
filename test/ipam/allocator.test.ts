// One allocator suite run against both stores: the in-memory fake and the real disk store.
import { afterAll, describe, expect, test } from "bun:test";
import { allocate, check, gc, IPAM_CHECK_FAILED, release, status } from "../../src/ipam/allocator.ts";
import { parseIpamConfig, type RangeSet } from "../../src/ipam/config.ts";
import { DiskStore } from "../../src/ipam/disk-store.ts";
import { MemoryStore } from "../../src/ipam/memory-store.ts";
import { withLock, type Store } from "../../src/ipam/store.ts";
import { cleanupDataDirs, tempDataDir } from "./tmp.ts";
import { thrown } from "./thrown.ts";

afterAll(cleanupDataDirs);

const stores: [string, () => Store][] = [
  ["memory", () => new MemoryStore()],
  ["disk", () => new DiskStore(tempDataDir(), "net1")],
];

const ranges = (...sets: object[][]): readonly RangeSet[] => parseIpamConfig({ type: "mncni-ipam", ranges: sets }).ranges;
const key = (containerId: string, ifname = "eth0") => ({ containerId, ifname });

for (const [name, makeStore] of stores) {
  describe(`allocator on the ${name} store`, () => {
    const add = (store: Store, rs: readonly RangeSet[], id: string, requestedIps?: string[]) =>
      allocate({ store, ranges: rs, network: "net1", key: key(id), requestedIps });

    test("IPv4: starts after the gateway, round robin, skips network/gateway/broadcast", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "10.9.0.0/29" }]); // .1 gateway, .2-.6 usable, .7 broadcast
      const got = ["a", "b", "c"].map((id) => add(store, rs, id)[0]);
      expect(got).toEqual([
        { address: "10.9.0.2/29", gateway: "10.9.0.1" },
        { address: "10.9.0.3/29", gateway: "10.9.0.1" },
        { address: "10.9.0.4/29", gateway: "10.9.0.1" },
      ]);
      release(store, key("a"));
      // A freed address is not reused at once: the iterator continues after the last one.
      expect(add(store, rs, "d")[0].address).toBe("10.9.0.5/29");
      expect(add(store, rs, "e")[0].address).toBe("10.9.0.6/29");
      // Wraps around to the start, skipping the gateway, and finds the freed .2.
      expect(add(store, rs, "f")[0].address).toBe("10.9.0.2/29");
    });

    test("explicit range including network and broadcast never hands them out", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "10.9.1.0/30", rangeStart: "10.9.1.0", rangeEnd: "10.9.1.3", gateway: "10.9.1.1" }]);
      expect(add(store, rs, "a")[0].address).toBe("10.9.1.2/30");
      const e = thrown(() => add(store, rs, "b"));
      expect(e.code).toBe(11);
      expect(e.message).toContain("range set 0 (10.9.1.0/30 10.9.1.0-10.9.1.3): no free address left");
    });

    test("IPv6 and dual stack give one address per range set", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "10.9.2.0/24" }], [{ subnet: "fd00:9::/64" }]);
      expect(add(store, rs, "a")).toEqual([
        { address: "10.9.2.2/24", gateway: "10.9.2.1" },
        { address: "fd00:9::2/64", gateway: "fd00:9::1" },
      ]);
      expect(add(store, rs, "b").map((c) => c.address)).toEqual(["10.9.2.3/24", "fd00:9::3/64"]);
    });

    test("a range set with several ranges continues into the next range", () => {
      const store = makeStore();
      const rs = ranges([
        { subnet: "10.9.3.0/24", rangeStart: "10.9.3.10", rangeEnd: "10.9.3.11" },
        { subnet: "10.9.4.0/24", rangeStart: "10.9.4.10", rangeEnd: "10.9.4.10" },
      ]);
      expect(["a", "b", "c"].map((id) => add(store, rs, id)[0].address)).toEqual(["10.9.3.10/24", "10.9.3.11/24", "10.9.4.10/24"]);
      expect(thrown(() => add(store, rs, "d")).code).toBe(11);
    });

    test("exhaustion of one set releases what the call already took", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "10.9.5.0/24" }], [{ subnet: "fd00:5::/120", rangeStart: "fd00:5::10", rangeEnd: "fd00:5::10" }]);
      add(store, rs, "a");
      const e = thrown(() => add(store, rs, "b"));
      expect(e.message).toContain('network "net1" range set 1 (fd00:5::/120 fd00:5::10-fd00:5::10): no free address left');
      const held = withLockList(store).map((r) => r.containerId);
      expect(held.sort()).toEqual(["a", "a"]);
    });

    test("requested IPs are used for their family; errors are clear", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "10.9.6.0/24" }], [{ subnet: "fd00:6::/64" }]);
      expect(add(store, rs, "a", ["10.9.6.77/24"]).map((c) => c.address)).toEqual(["10.9.6.77/24", "fd00:6::2/64"]);
      expect(add(store, rs, "b", ["fd00:6::abc", "10.9.6.78"]).map((c) => c.address)).toEqual(["10.9.6.78/24", "fd00:6::abc/64"]);
      const taken = thrown(() => add(store, rs, "c", ["10.9.6.77"]));
      expect(taken.code).toBe(11);
      expect(taken.message).toContain('requested IP "10.9.6.77" in network "net1": already reserved by container "a" interface "eth0"');
      const outside = thrown(() => add(store, rs, "c", ["10.10.0.1"]));
      expect([outside.code, outside.message.includes('"10.10.0.1"')]).toEqual([7, true]);
      const gw = thrown(() => add(store, rs, "c", ["10.9.6.1"]));
      expect([gw.code, gw.message]).toEqual([7, 'cannot allocate requested IP "10.9.6.1": it is the gateway']);
      const bcast = thrown(() => add(store, rs, "c", ["10.9.6.255"]));
      expect(bcast.code).toBe(7); // outside the default range (.1-.254)
      const two = thrown(() => add(store, rs, "c", ["10.9.6.80", "10.9.6.81"]));
      expect(two.code).toBe(7);
      const junk = thrown(() => add(store, rs, "c", ["nope"]));
      expect(junk.code).toBe(7);
      // Failed calls left nothing behind.
      expect(withLockList(store).filter((r) => r.containerId === "c")).toEqual([]);
    });

    test("a second ADD of the same attachment is refused with a clear message", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "10.9.7.0/24" }]);
      add(store, rs, "a");
      const e = thrown(() => add(store, rs, "a"));
      expect(e.message).toBe('cannot allocate an IP for container "a" interface "eth0" in network "net1": it already holds 10.9.7.2 (DEL it first)');
      // Another interface of the same container is a different attachment.
      expect(allocate({ store, ranges: rs, network: "net1", key: key("a", "eth1") })[0].address).toBe("10.9.7.3/24");
    });

    test("release is idempotent and only touches the attachment", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "10.9.8.0/24" }], [{ subnet: "fd00:8::/64" }]);
      add(store, rs, "a");
      add(store, rs, "b");
      expect(release(store, key("a")).length).toBe(2);
      expect(release(store, key("a"))).toEqual([]);
      expect(release(store, key("a", "eth1"))).toEqual([]);
      expect(withLockList(store).map((r) => r.containerId)).toEqual(["b", "b"]);
    });

    test("check: ok, missing, partial, differing", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "10.9.9.0/24" }], [{ subnet: "fd00:99::/64" }]);
      add(store, rs, "a");
      check({ store, ranges: rs, network: "net1", key: key("a") });
      check({ store, ranges: rs, network: "net1", key: key("a"), expected: ["10.9.9.2/24", "fd00:99::2/64"] });
      const differs = thrown(() => check({ store, ranges: rs, network: "net1", key: key("a"), expected: ["10.9.9.3/24", "fd00:99::2/64"] }));
      expect(differs.code).toBe(IPAM_CHECK_FAILED);
      expect(differs.message).toContain("reserved [10.9.9.2, fd00:99::2], expected [10.9.9.3, fd00:99::2]");
      expect(thrown(() => check({ store, ranges: rs, network: "net1", key: key("zz") })).message).toContain("no address is reserved");
      withLock(store, () => store.release({ family: 6, value: 0xfd000099000000000000000000000002n }));
      expect(thrown(() => check({ store, ranges: rs, network: "net1", key: key("a") })).message).toContain("in range set 1");
    });

    test("gc keeps valid attachments and releases the rest", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "10.9.10.0/24" }]);
      for (const id of ["a", "b", "c"]) add(store, rs, id);
      allocate({ store, ranges: rs, network: "net1", key: key("a", "eth1") });
      const released = gc({ store, network: "net1", valid: [{ containerID: "a", ifname: "eth0" }, { containerID: "c", ifname: "eth0" }] });
      expect(released.sort()).toEqual(["10.9.10.3", "10.9.10.5"]);
      expect(withLockList(store).map((r) => `${r.containerId}/${r.ifname}`).sort()).toEqual(["a/eth0", "c/eth0"]);
      expect(gc({ store, network: "net1", valid: [{ containerID: "a", ifname: "eth0" }, { containerID: "c", ifname: "eth0" }] })).toEqual([]);
    });

    test("status: ok while free, code 50 when a range set is exhausted", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "10.9.11.0/30" }], [{ subnet: "fd00:11::/64" }]);
      status({ store, ranges: rs, network: "net1" });
      add(store, rs, "a"); // takes the only v4 address, .2
      const e = thrown(() => status({ store, ranges: rs, network: "net1" }));
      expect(e.code).toBe(50);
      expect(e.message).toContain("range set 0 (10.9.11.0/30 10.9.11.1-10.9.11.2) has no free address");
      release(store, key("a"));
      status({ store, ranges: rs, network: "net1" });
    });

    test("a large IPv6 range is never walked address by address", () => {
      const store = makeStore();
      const rs = ranges([{ subnet: "fd00:12::/64" }]);
      withLock(store, () => store.setLastReserved(0, { family: 6, value: 0xfd000012000000000000000000000000n | 0xffffffffffffffffn }));
      // Wraps from the last address of the range to its start.
      expect(add(store, rs, "a")[0].address).toBe("fd00:12::2/64");
    });
  });
}

function withLockList(store: Store) {
  return withLock(store, () => store.list().reservations);
}
