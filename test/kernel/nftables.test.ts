// nftables set elements over nfnetlink, checked against `nft -j` in throwaway namespaces
// (prefix "mnn"): a ruleset written by nft, elements added, listed and deleted by the
// library, and the other way round.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cleanupNetns, createNetns, inNetns, netnsPath } from "../helpers/netns.ts";
import { decodeKey, encodeKey, keyHasPrefix, keyLength, Nftables, type NftKeyType, type SetRef } from "../../src/kernel/index.ts";
import { netlinkError } from "./fixture.ts";

const TABLE = "mnn-test";
const RULESET = `
table bridge ${TABLE} {
  comment "layout 1"
  set ports { type ifname; }
  set macs { type ifname . ether_addr; }
  set addr4 { type ifname . ipv4_addr; }
  set addr6 { type ifname . ipv6_addr; size 8192; }
  set triple { type ifname . ether_addr . ipv4_addr; }
}
table inet ${TABLE} {
  set ports { type ifname; }
}
`;

const TYPES: Record<string, NftKeyType[]> = {
  ports: ["ifname"],
  macs: ["ifname", "ether_addr"],
  addr4: ["ifname", "ipv4_addr"],
  addr6: ["ifname", "ipv6_addr"],
  triple: ["ifname", "ether_addr", "ipv4_addr"],
};

let NS: string;
let nft: Nftables;
const ref = (set: string, family: SetRef["family"] = "bridge"): SetRef => ({ family, table: TABLE, set });
const key = (set: string, ...values: string[]) => encodeKey(TYPES[set]!, values);
const els = (...keys: Uint8Array[]) => keys.map((k) => ({ key: k }));

/** An element of `nft -j` output as text: "a . b", without its comment. */
const elemText = (e: any): string => (typeof e === "string" ? e : e.concat ? e.concat.join(" . ") : elemText(e.elem.val));

/** Elements of a set as nft lists them: each one a string, parts joined by " . ". */
function nftElements(set: string, family = "bridge"): string[] {
  const out = JSON.parse(inNetns(NS, ["nft", "-j", "list", "set", family, TABLE, set]).stdout);
  const s = out.nftables.find((o: any) => o.set)?.set;
  return ((s?.elem ?? []) as any[]).map(elemText).sort();
}

/** Elements of a set as the library lists them, in the same form. */
function libElements(set: string): string[] {
  return nft.setElements(ref(set)).map((e) => decodeKey(TYPES[set]!, e.key).join(" . ")).sort();
}

function nftAdd(set: string, elems: string): void {
  inNetns(NS, ["nft", "add", "element", "bridge", TABLE, set, `{ ${elems} }`]);
}

beforeAll(() => {
  NS = createNetns("mnn");
  inNetns(NS, ["nft", "-f", "-"], { stdin: RULESET });
  nft = Nftables.open(netnsPath(NS));
});
afterAll(() => {
  nft?.close();
  cleanupNetns();
});

describe("keys", () => {
  test("a concatenation pads every part to 4 bytes; a lone type is not padded", () => {
    expect(keyLength(["ifname"])).toBe(16);
    expect(keyLength(["ether_addr"])).toBe(6);
    expect(keyLength(["ifname", "ether_addr"])).toBe(24);
    expect(keyLength(["ifname", "ether_addr", "ipv4_addr"])).toBe(28);
    expect(keyLength(["ifname", "ipv6_addr"])).toBe(32);
    const k = encodeKey(["ifname", "ether_addr", "ipv4_addr"], ["veth0", "02:AB:00:00:00:01", "10.1.2.3"]);
    expect(Buffer.from(k).toString("hex")).toBe(
      Buffer.from("veth0").toString("hex") + "00".repeat(11) + "02ab00000001" + "0000" + "0a010203",
    );
  });

  test("keys round-trip through decodeKey in nft's notation", () => {
    const cases: [NftKeyType[], string[]][] = [
      [["ifname"], ["mnc0123456789ab"]],
      [["ifname", "ether_addr", "ipv4_addr"], ["eth0", "02:00:5e:10:00:01", "192.168.7.9"]],
      [["ifname", "ipv6_addr"], ["v", "fd00:10:244:1::2a"]],
      [["ipv6_addr"], ["::"]],
    ];
    for (const [types, values] of cases) expect(decodeKey(types, encodeKey(types, values))).toEqual(values);
  });

  test("invalid values are TypeErrors before anything is sent", () => {
    expect(() => encodeKey(["ifname"], ["sixteen-bytes-xx"])).toThrow(TypeError);
    expect(() => encodeKey(["ifname"], [""])).toThrow(TypeError);
    expect(() => encodeKey(["ether_addr"], ["02:00"])).toThrow(TypeError);
    expect(() => encodeKey(["ipv4_addr"], ["fd00::1"])).toThrow(TypeError);
    expect(() => encodeKey(["ifname", "ipv4_addr"], ["eth0"])).toThrow(TypeError);
    expect(() => decodeKey(["ifname", "ipv4_addr"], new Uint8Array(16))).toThrow(TypeError);
  });

  test("keyHasPrefix compares whole parts: veth1 is not a prefix of veth10", () => {
    const k = key("addr4", "veth10", "10.0.0.1");
    expect(keyHasPrefix(k, encodeKey(["ifname"], ["veth10"]))).toBe(true);
    expect(keyHasPrefix(k, encodeKey(["ifname"], ["veth1"]))).toBe(false);
  });
});

describe("tables", () => {
  test("table() reports handle and comment as nft sees them; undefined when missing", () => {
    const listed = JSON.parse(inNetns(NS, ["nft", "-j", "list", "tables"]).stdout).nftables.filter((o: any) => o.table).map((o: any) => o.table);
    const bridge = listed.find((t: any) => t.family === "bridge")!;
    const t = nft.table("bridge", TABLE)!;
    expect(t).toMatchObject({ family: "bridge", name: TABLE, comment: "layout 1" });
    expect(t.handle).toBe(BigInt(bridge.handle));
    expect(t.use).toBe(5); // five sets
    expect(nft.table("inet", TABLE)!.comment).toBeUndefined();
    expect(nft.table("ip", TABLE)).toBeUndefined();
    expect(nft.table("bridge", "mnn-nope")).toBeUndefined();
  });

  test("a socket opened for a namespace acts there, not in the caller's", () => {
    const other = createNetns("mnn");
    const o = Nftables.open(netnsPath(other));
    try {
      expect(o.table("bridge", TABLE)).toBeUndefined();
      inNetns(other, ["nft", "add", "table", "bridge", TABLE]);
      expect(o.table("bridge", TABLE)!.use).toBe(0);
    } finally {
      o.close();
    }
  });
});

describe("set elements", () => {
  test("elements added by the library are what nft lists, in every key layout", () => {
    nft.apply([
      { ...ref("ports"), op: "add", elements: els(key("ports", "mnc1"), key("ports", "mnc2")) },
      { ...ref("macs"), op: "add", elements: els(key("macs", "mnc1", "02:00:00:00:00:01")) },
      { ...ref("addr4"), op: "add", elements: els(key("addr4", "mnc1", "10.244.1.5"), key("addr4", "mnc2", "10.244.1.6")) },
      { ...ref("addr6"), op: "add", elements: els(key("addr6", "mnc1", "fd00:10:244:1::5")) },
      { ...ref("triple"), op: "add", elements: els(key("triple", "mnc1", "02:00:00:00:00:01", "10.244.1.5")) },
    ]);
    expect(nftElements("ports")).toEqual(['mnc1', 'mnc2']);
    expect(nftElements("macs")).toEqual(["mnc1 . 02:00:00:00:00:01"]);
    expect(nftElements("addr4")).toEqual(["mnc1 . 10.244.1.5", "mnc2 . 10.244.1.6"]);
    expect(nftElements("addr6")).toEqual(["mnc1 . fd00:10:244:1::5"]);
    expect(nftElements("triple")).toEqual(["mnc1 . 02:00:00:00:00:01 . 10.244.1.5"]);
    for (const s of Object.keys(TYPES)) expect(libElements(s)).toEqual(nftElements(s));
  });

  test("elements added by nft are listed and found by the library", () => {
    nftAdd("addr6", '"nft9" . fe80::1, "nft9" . 2001:db8::ffff:1');
    nftAdd("triple", '"nft9" . 0a:0b:0c:0d:0e:0f . 192.0.2.1');
    expect(libElements("addr6")).toEqual(nftElements("addr6"));
    expect(libElements("addr6")).toContain("nft9 . 2001:db8::ffff:1");
    expect(libElements("triple")).toContain("nft9 . 0a:0b:0c:0d:0e:0f . 192.0.2.1");
    expect(nft.hasSetElement(ref("addr6"), key("addr6", "nft9", "fe80::1"))).toBe(true);
    expect(nft.hasSetElement(ref("addr6"), key("addr6", "nft9", "fe80::2"))).toBe(false);
    expect(nft.hasSetElement(ref("ports"), key("ports", "mnc1"))).toBe(true);
    expect(nft.hasSetElement(ref("ports"), key("ports", "mnc"))).toBe(false);
  });

  test("adding an element that exists is not an error; deleting removes exactly the given keys", () => {
    nft.addSetElements(ref("ports"), [key("ports", "mnc1")]);
    expect(nftElements("ports")).toEqual(["mnc1", "mnc2"]);
    nft.delSetElements(ref("addr4"), [key("addr4", "mnc2", "10.244.1.6")]);
    nft.delSetElements(ref("ports"), [key("ports", "mnc2")]);
    expect(nftElements("addr4")).toEqual(["mnc1 . 10.244.1.5"]);
    expect(nftElements("ports")).toEqual(["mnc1"]);
  });

  test("a batch is atomic: one failing change leaves every set as it was", () => {
    const before = Object.fromEntries(Object.keys(TYPES).map((s) => [s, nftElements(s)]));
    // A missing element to delete, after valid adds to two sets.
    const e1 = netlinkError(() =>
      nft.apply([
        { ...ref("ports"), op: "add", elements: els(key("ports", "mnc7")) },
        { ...ref("addr4"), op: "add", elements: els(key("addr4", "mnc7", "10.244.1.7")) },
        { ...ref("macs"), op: "del", elements: els(key("macs", "mnc7", "02:00:00:00:00:07")) },
      ]),
    );
    expect(e1.code).toBe("ENOENT");
    expect(e1.message).toContain(`delete elements from set "bridge ${TABLE} macs"`);
    // A key of the wrong length for its set, in the middle of a batch.
    const e2 = netlinkError(() =>
      nft.apply([
        { ...ref("ports"), op: "add", elements: els(key("ports", "mnc8")) },
        { ...ref("addr6"), op: "add", elements: els(key("addr4", "mnc8", "10.244.1.8")) },
        { ...ref("addr4"), op: "add", elements: els(key("addr4", "mnc8", "10.244.1.8")) },
      ]),
    );
    expect(e2.code).toBe("EINVAL");
    expect(e2.message).toContain(`add elements to set "bridge ${TABLE} addr6"`);
    for (const s of Object.keys(TYPES)) expect(nftElements(s)).toEqual(before[s]!);
    // The socket stays usable after failed batches.
    nft.addSetElements(ref("ports"), [key("ports", "mnc8")]);
    expect(nftElements("ports")).toContain("mnc8");
  });

  test("errors are typed: ENOENT for a missing set, table or element", () => {
    expect(netlinkError(() => nft.setElements(ref("nope"))).code).toBe("ENOENT");
    expect(netlinkError(() => nft.setElements({ family: "ip", table: TABLE, set: "ports" })).code).toBe("ENOENT");
    const e = netlinkError(() => nft.addSetElements(ref("nope"), [key("ports", "mnc1")]));
    expect(e.code).toBe("ENOENT");
    expect(e.message).toBe(`cannot add elements to set "bridge ${TABLE} nope": ENOENT`);
    expect(netlinkError(() => nft.delSetElements(ref("ports"), [key("ports", "gone")])).code).toBe("ENOENT");
    expect(() => nft.hasSetElement(ref("nope"), key("ports", "mnc1"))).not.toThrow();
    expect(nft.hasSetElement(ref("nope"), key("ports", "mnc1"))).toBe(false);
    // An empty change list sends nothing and cannot fail.
    expect(() => nft.apply([{ ...ref("nope"), op: "del", elements: els() }])).not.toThrow();
  });

  test("element comments are written and read as nft's `comment`", () => {
    nft.apply([{ ...ref("ports"), op: "add", elements: [{ key: key("ports", "cmt1"), comment: "02:00:00:00:00:09 10.0.0.9 fd00::9" }] }]);
    const text = inNetns(NS, ["nft", "list", "set", "bridge", TABLE, "ports"]).stdout;
    expect(text).toContain('"cmt1" comment "02:00:00:00:00:09 10.0.0.9 fd00::9"');
    nftAdd("ports", '"cmt2" comment "from nft"');
    expect(nft.setElement(ref("ports"), key("ports", "cmt2"))).toEqual({ key: key("ports", "cmt2"), comment: "from nft" });
    expect(nft.setElement(ref("ports"), key("ports", "cmt1"))!.comment).toBe("02:00:00:00:00:09 10.0.0.9 fd00::9");
    expect(nft.setElements(ref("ports")).find((e) => decodeKey(["ifname"], e.key)[0] === "mnc1")).toEqual({ key: key("ports", "mnc1") });
    expect(nft.setElement(ref("ports"), key("ports", "cmt3"))).toBeUndefined();
    expect(() => nft.apply([{ ...ref("ports"), op: "add", elements: [{ key: key("ports", "cmt3"), comment: "x".repeat(129) }] }])).toThrow(TypeError);
    nft.delSetElements(ref("ports"), [key("ports", "cmt1"), key("ports", "cmt2")]);
  });

  test("families are kept apart: the inet table's set is another set", () => {
    nft.addSetElements(ref("ports", "inet"), [key("ports", "inet0")]);
    expect(nftElements("ports", "inet")).toEqual(["inet0"]);
    expect(nftElements("ports")).not.toContain("inet0");
    expect(nft.setElements(ref("ports", "inet")).map((e) => decodeKey(["ifname"], e.key))).toEqual([["inet0"]]);
  });

  // addr6 has a size: a resizable hash set can repeat and skip elements in a dump that
  // spans datagrams while the kernel grows it (see setElements).
  test("a set too large for one datagram is listed whole; big batches apply", () => {
    const keys = Array.from({ length: 3000 }, (_, i) => key("addr6", `big${i % 300}`, `fd00:99::${i.toString(16)}`));
    nft.addSetElements(ref("addr6"), keys);
    const listed = nft.setElements(ref("addr6"));
    expect(listed.filter((e) => decodeKey(TYPES.addr6!, e.key)[0]!.startsWith("big"))).toHaveLength(3000);
    expect(listed.length).toBe(nftElements("addr6").length);
    nft.delSetElements(ref("addr6"), keys);
    expect(nftElements("addr6").some((e) => e.startsWith("big"))).toBe(false);
  });
});
