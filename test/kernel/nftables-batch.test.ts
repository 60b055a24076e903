// Large element changes over nfnetlink: a change bigger than the socket's buffers is written
// as consecutive batches (before, 8,000 map elements failed with EMSGSIZE, and the owned-table
// engine's retry one element at a time flooded the receive buffer with ACKs and hung the
// agent), data maps with a `mark` (host byte order) key part, checked with `nft -j` in a
// throwaway namespace.
import { afterAll, expect, test } from "bun:test";
import { createNetns, deleteNetns, inNetns, netnsPath } from "../helpers/netns.ts";
import { encodeKey, Nftables, type NftKeyType } from "../../src/kernel/index.ts";

const NS = createNetns("mnnb");
afterAll(() => deleteNetns(NS));

const KEY: NftKeyType[] = ["ipv4_addr", "inet_proto", "inet_service", "mark"];
const DATA: NftKeyType[] = ["ipv4_addr", "inet_service"];

test("20,000 elements of a data map in one apply(), then deleted in one", () => {
  inNetns(NS, ["nft", "-f", "-"], { stdin: "table inet mnnb { map m { type ipv4_addr . inet_proto . inet_service . mark : ipv4_addr . inet_service; }; }\n" });
  const nl = Nftables.open(netnsPath(NS));
  try {
    const N = 20_000;
    const elements = Array.from({ length: N }, (_, i) => ({ key: encodeKey(KEY, [`10.96.${i >> 8}.${i & 255}`, "tcp", "80", String(0x5c000000 + (i % 7))]), data: encodeKey(DATA, [`10.1.${i >> 8}.${i & 255}`, "8080"]) }));
    nl.apply([{ family: "inet", table: "mnnb", set: "m", op: "add", elements }]);
    const listed = JSON.parse(inNetns(NS, ["nft", "-j", "list", "map", "inet", "mnnb", "m"]).stdout).nftables.find((o: any) => o.map).map.elem as any[];
    expect(listed).toHaveLength(N);
    // The mark part in host byte order: nft reads back the number written.
    expect(listed.some((e) => e[0].concat.join(" . ") === `10.96.0.3 . tcp . 80 . ${0x5c000003}` && e[1].concat.join(" . ") === "10.1.0.3 . 8080")).toBe(true);
    expect(nl.setElements({ family: "inet", table: "mnnb", set: "m" })).toHaveLength(N);
    nl.apply([{ family: "inet", table: "mnnb", set: "m", op: "del", elements: elements.map((e) => ({ key: e.key })) }]);
    expect(JSON.parse(inNetns(NS, ["nft", "-j", "list", "map", "inet", "mnnb", "m"]).stdout).nftables.find((o: any) => o.map).map.elem ?? []).toEqual([]);
  } finally {
    nl.close();
  }
}, 60_000);
