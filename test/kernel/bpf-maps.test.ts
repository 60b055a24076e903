// The fast path's maps through the kernel: what goes in comes out, for both families, and the
// kernel's own lookup (a longest-prefix match in the host-gw trie) agrees with what the
// programs expect. bpftool is the independent view of the keys' bytes.
import { afterAll, expect, test } from "bun:test";
import { HostGwRoutesMap, PlainPodsMap } from "../../src/kernel/bpf/index.ts";
import { mapId, mapLookup } from "../../src/kernel/bpf/syscall.ts";
import { LPM_KEY_SIZE, addrKey, lpmKey } from "../../src/kernel/bpf/addr-keys.ts";
import { run } from "../helpers/netns.ts";

const plain = PlainPodsMap.create(16);
const routes = HostGwRoutesMap.create(16);
afterAll(() => {
  plain.close();
  routes.close();
});

test("plain pods: IPv4 and IPv6 entries round-trip, keyed as the programs read them (IPv4 as ::ffff:a.b.c.d)", () => {
  plain.set({ ip: "10.1.2.3", podMac: "02:00:00:00:00:01", hostMac: "02:00:00:00:01:01", hostIndex: 7 });
  plain.set({ ip: "fd00:1::3", podMac: "02:00:00:00:00:02", hostMac: "02:00:00:00:01:02", hostIndex: 8 });
  expect(plain.get("10.1.2.3")).toEqual({ ip: "10.1.2.3", podMac: "02:00:00:00:00:01", hostMac: "02:00:00:00:01:01", hostIndex: 7 });
  expect(plain.get("fd00:1:0::3")).toEqual({ ip: "fd00:1::3", podMac: "02:00:00:00:00:02", hostMac: "02:00:00:00:01:02", hostIndex: 8 });
  expect(plain.ips().sort()).toEqual(["10.1.2.3", "fd00:1::3"]);
  const dump = JSON.parse(run(["bpftool", "-j", "map", "dump", "id", String(mapId(plain.fd))]).stdout) as { key: string[] }[];
  const keys = dump.map((e) => e.key.map((b) => Number(b)).join(","));
  expect(keys).toContain([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 1, 2, 3].join(","));
  expect(plain.delete("10.1.2.3")).toBe(true);
  expect(plain.delete("10.1.2.3")).toBe(false);
  expect(plain.ips()).toEqual(["fd00:1::3"]);
  expect(() => plain.set({ ip: "10.1.2", podMac: "02:00:00:00:00:01", hostMac: "02:00:00:00:01:01", hostIndex: 7 })).toThrow();
});

test("host-gw routes: IPv4 and IPv6 CIDRs round-trip; the kernel's longest-prefix match finds a pod's CIDR by its address", () => {
  routes.set({ cidr: "10.244.2.0/24", ifindex: 3 });
  routes.set({ cidr: "fd00:10:244:2::/64", ifindex: 4 });
  expect(routes.list().sort((a, b) => a.ifindex - b.ifindex)).toEqual([{ cidr: "10.244.2.0/24", ifindex: 3 }, { cidr: "fd00:10:244:2::/64", ifindex: 4 }]);
  expect(routes.get("10.244.2.0/24")).toEqual({ cidr: "10.244.2.0/24", ifindex: 3 });
  expect(routes.get("10.244.0.0/16")).toBeUndefined();
  // The programs look a host up with prefix length 128 over the 16-byte key.
  const host = (ip: string) => {
    const k = new Uint8Array(LPM_KEY_SIZE);
    new DataView(k.buffer).setUint32(0, 128, true);
    k.set(addrKey(ip), 4);
    const v = mapLookup(routes.fd, k, 4);
    return v ? new DataView(v.buffer).getUint32(0, true) : undefined;
  };
  expect(host("10.244.2.77")).toBe(3);
  expect(host("10.244.3.1")).toBeUndefined();
  expect(host("fd00:10:244:2::9")).toBe(4);
  expect(host("fd00:10:244:3::9")).toBeUndefined();
  // An IPv4 CIDR's prefix counts from the mapped form's 96 bits.
  expect(new DataView(lpmKey("10.244.2.0/24").buffer).getUint32(0, true)).toBe(120);
  expect(routes.delete("10.244.2.0/24")).toBe(true);
  expect(host("10.244.2.77")).toBeUndefined();
});
