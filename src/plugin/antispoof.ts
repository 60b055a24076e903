// Anti-spoofing: a pod may only send from its own addresses (and, on a bridge, its own
// MAC). One table per mode owned by mncni (each mode declares its layout: bridge.ts,
// routed.ts), written once per node with `nft -f`: a base chain that checks every packet
// from a pod against sets keyed by the host veth's name.
// ADD and DEL then only add or remove that pod's set elements, in one nfnetlink
// transaction (tens of microseconds) instead of running nft (~15 ms) every time.
//
// The table is written whole through src/firewall/owned-table.ts (race-safe creation without
// a lock). Its comment names its layout; a table of an older layout (or none: mncni before
// v2 kept a chain per pod) is replaced, deleting it by handle in the replacing transaction,
// so only the first of racing replacers succeeds; pods attached under the old layout lose
// their checks until they are re-created. A table of a newer layout is left alone and ADD
// fails.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { decodeKey, encodeKey, isErrno, keyHasPrefix, type Nftables, NFT_COMMENT_MAXLEN, type NftFamily, type NftKeyType, type SetElement, type SetElemChange, type SetRef } from "../kernel/index.ts";
import { nftApply } from "./nft-apply.ts";
import { withNftables } from "./nft-socket.ts";
import { familyOf, type Family } from "../net/ip.ts";
import { ANTISPOOF } from "../firewall/names.ts";
import { ensureTable as ensureOwnedTable, type WholeTable } from "../firewall/owned-table.ts";

const ANTISPOOF_TABLE = ANTISPOOF.name;
/** The table comment naming this layout of sets and rules; raise it when they (or a mode's, in bridge.ts / routed.ts) change. */
const LAYOUT = 2;
const LAYOUT_VERSION = `mncni anti-spoofing v${LAYOUT}`;
const layoutOf = (comment: string | undefined) => Number(/^mncni anti-spoofing v(\d+)$/.exec(comment ?? "")?.[1] ?? 1);

export interface GuardedPod {
  hostIfname: string;
  /** The network the attachment belongs to, recorded so GC can tell whose elements it sees. */
  network?: string;
  mac: string;
  /** Plain addresses (no prefix). */
  ips: string[];
}

export interface AntiSpoof {
  attach(p: GuardedPod): void;
  detach(hostIfname: string): void;
  /** Throws when the pod's set elements (or the table) are missing. */
  check(hostIfname: string): void;
  /** The ports that have elements, with the network recorded for each (none when there is no table). */
  guarded(): GuardedPort[];
  /**
   * Puts back the elements a guarded veth's port comment records and the sets lack (a set
   * flushed behind mncni's back drops every packet of its pods); returns what it put back,
   * one "set for veth" each. Ports whose comment records nothing are left as they are.
   */
  repair(): string[];
}

export interface GuardedPort {
  hostIfname: string;
  /** Undefined when the port element does not record it (written by an older mncni, or no room). */
  network?: string;
  /** The pod's MAC and addresses as the port's comment records them (what its packets are checked against). */
  mac?: string;
  ips?: string[];
}

/** A set keyed by host veth name (first) and what that pod may use as a source. */
export interface PodSet {
  name: string;
  /** What CHECK requires: the port itself, its MAC, and at least one address (any family). */
  holds: "port" | "mac" | "addr";
  type: NftKeyType[];
  keys(p: GuardedPod): string[][];
}

/** One mode's table (each mode declares its own, see bridge.ts and routed.ts). */
export interface AntiSpoofLayout {
  family: NftFamily;
  /** The first is portsSet: a port element marks a veth as guarded and records its pod. */
  sets: PodSet[];
  rules: string[];
}

export const FAMILIES: Family[] = [4, 6];

export const portsSet: PodSet = { name: ANTISPOOF.ports, holds: "port", type: ["ifname"], keys: (p) => [[p.hostIfname]] };
export const macsSet: PodSet = { name: ANTISPOOF.macs, holds: "mac", type: ["ifname", "ether_addr"], keys: (p) => [[p.hostIfname, p.mac]] };
export const addrSet = (f: Family): PodSet => ({
  name: ANTISPOOF.addr(f),
  holds: "addr",
  type: ["ifname", f === 4 ? "ipv4_addr" : "ipv6_addr"],
  keys: (p) => p.ips.filter((ip) => familyOf(ip) === f).map((ip) => [p.hostIfname, ip]),
});

/** Drops a pod's packets whose L3 source is not its own; `match` selects the family. */
export function sourceRule(f: Family, match: Record<Family, string>): string {
  const proto = f === 4 ? "ip" : "ip6";
  // Duplicate address detection sends from ::, and link-local sources are the pod's own business.
  const anyPod = f === 6 ? "ip6 saddr != { ::, fe80::/10 } " : "";
  return `${match[f]} ${anyPod}iifname . ${proto} saddr != @addr${f} drop`;
}

/**
 * Elements per set, far above any node's pods. With a size the kernel picks a hash that is
 * never resized (64 KiB of buckets here), which keeps listings consistent (see
 * Nftables.setElements); a full set makes ADD fail with ENFILE.
 */
const SET_SIZE = 4096;

function table(l: AntiSpoofLayout): WholeTable {
  const sets = l.sets.map((s) => `  set ${s.name} {\n    type ${s.type.join(" . ")}\n    size ${SET_SIZE}\n  }\n`).join("");
  const rules = l.rules.map((r) => `    ${r}\n`).join("");
  return {
    family: l.family,
    name: ANTISPOOF_TABLE,
    comment: LAYOUT_VERSION,
    body: `${sets}  chain ${ANTISPOOF.chain} {\n    type filter hook prerouting priority -300; policy accept;\n${rules}  }\n`,
  };
}

/** Creates the table when missing, replaces it when it has an older layout (see top). */
function ensureTable(nft: Nftables, l: AntiSpoofLayout): void {
  ensureOwnedTable(nft, table(l), nftApply, (current) =>
    // A newer mncni wrote it: replacing it would drop the protection of its pods.
    layoutOf(current.comment) > LAYOUT
      ? new CniError(ErrorCode.Internal, `cannot use table ${l.family} ${ANTISPOOF_TABLE}: it has a newer layout ("${current.comment}") than this mncni writes (v${LAYOUT})`)
      : "replace");
}

const setRef = (l: AntiSpoofLayout, s: PodSet): SetRef => ({ family: l.family, table: ANTISPOOF_TABLE, set: s.name });
const portKey = (hostIfname: string) => encodeKey(["ifname"], [hostIfname]);

/**
 * The port element's comment records the pod's MAC and addresses, so DEL, which is given
 * only the veth name, can name the pod's other elements without listing every set, and
 * the network, so GC can tell whose element it is once the veth is gone (and
 * `nft list set ... ports` shows whose port it is): "net=NAME MAC IP...". An older mncni
 * wrote "MAC IP..."; both are read.
 */
function portComment(p: GuardedPod): string | undefined {
  const text = [...(p.network ? [`${NET_TAG}${p.network}`] : []), p.mac, ...p.ips].join(" ");
  return Buffer.byteLength(text) <= NFT_COMMENT_MAXLEN ? text : undefined;
}

const NET_TAG = "net=";

function parsePortComment(comment: string | undefined): { network?: string; words: string[] } {
  const words = (comment ?? "").split(" ").filter((w) => w !== "");
  return words[0]?.startsWith(NET_TAG) ? { network: words[0].slice(NET_TAG.length), words: words.slice(1) } : { words };
}

/** The pod's elements, set by set, as its port's comment records them; undefined when it does not. */
function recordedElements(l: AntiSpoofLayout, hostIfname: string, comment: string | undefined): SetElement[][] | undefined {
  const { network, words: [mac, ...ips] } = parsePortComment(comment);
  if (!mac) return undefined;
  try {
    return l.sets.map((s) => elementsOf(s, { hostIfname, network, mac, ips }));
  } catch (e) {
    if (e instanceof TypeError) return undefined; // not a comment we wrote
    throw e;
  }
}

/** The elements pod p has in set s. */
function elementsOf(s: PodSet, p: GuardedPod): SetElement[] {
  return s.keys(p).map((v) => {
    const key = encodeKey(s.type, v);
    const comment = s.holds === "port" ? portComment(p) : undefined;
    return comment === undefined ? { key } : { key, comment };
  });
}

/** The elements of one set that belong to a host veth, as listed; none when the set is missing. */
function listedElements(nft: Nftables, ref: SetRef, hostIfname: string): SetElement[] {
  const prefix = portKey(hostIfname);
  try {
    return nft.setElements(ref).filter((e) => keyHasPrefix(e.key, prefix));
  } catch (e) {
    if (isErrno(e, "ENOENT")) return [];
    throw e;
  }
}

const DETACH_ATTEMPTS = 3;

const ATTACH_ATTEMPTS = 3;

export function antiSpoofFor(l: AntiSpoofLayout): AntiSpoof {
  const table = `${l.family} ${ANTISPOOF_TABLE}`;
  const missing = (hostIfname: string, why: string) =>
    new CniError(ErrorCode.Internal, `anti-spoofing rules for "${hostIfname}" are missing in table ${table}: ${why}`);

  return {
    attach(p) {
      withNftables(`install anti-spoofing rules for "${p.hostIfname}"`, (nft) => {
        ensureTable(nft, l);
        // attach and detach change all of a veth's elements in one transaction, so without
        // its port element the veth has none (the common case: one lookup, no listing).
        // With it, they are leftovers of an attachment that died before it could roll
        // back: replace them all, in the same transaction as the new ones.
        for (let attempt = 1; ; attempt++) {
          const leftovers = nft.hasSetElement(setRef(l, portsSet), portKey(p.hostIfname));
          try {
            nft.apply(
              l.sets.flatMap((s): SetElemChange[] => [
                { ...setRef(l, s), op: "del", elements: leftovers ? listedElements(nft, setRef(l, s), p.hostIfname) : [] },
                { ...setRef(l, s), op: "add", elements: elementsOf(s, p) },
              ]),
            );
            return;
          } catch (e) {
            // ENOENT: a GC removed the leftovers between listing and deleting them. Again.
            if (!isErrno(e, "ENOENT") || attempt >= ATTACH_ATTEMPTS) throw e;
          }
        }
      });
    },
    detach(hostIfname) {
      withNftables(`remove anti-spoofing rules for "${hostIfname}"`, (nft) => {
        // The port's comment names the other elements. Listing the sets is the fallback
        // when it does not, or names elements that are not there, or when the port element
        // is gone (a second DEL; someone removed it by hand; no table, or one of another
        // layout: the listing then finds nothing).
        const port = nft.setElement(setRef(l, portsSet), portKey(hostIfname));
        const recorded = recordedElements(l, hostIfname, port?.comment);
        for (let attempt = 1; ; attempt++) {
          const changes = l.sets.map((s, i): SetElemChange => ({
            ...setRef(l, s),
            op: "del",
            elements: recorded && attempt === 1 ? recorded[i]! : listedElements(nft, setRef(l, s), hostIfname),
          }));
          try {
            nft.apply(changes);
            return;
          } catch (e) {
            // ENOENT: something removed an element meanwhile (GC racing DEL), or the
            // comment was stale. List what is there and try again.
            if (!isErrno(e, "ENOENT") || attempt >= DETACH_ATTEMPTS) throw e;
          }
        }
      });
    },
    guarded() {
      return withNftables(`list anti-spoofing ports`, (nft) => {
        try {
          return nft.setElements(setRef(l, portsSet)).map((e) => {
            const { network, words: [mac, ...ips] } = parsePortComment(e.comment);
            const hostIfname = decodeKey(portsSet.type, e.key)[0]!;
            return { hostIfname, ...(network === undefined ? {} : { network }), ...(mac ? { mac, ips } : {}) };
          });
        } catch (e) {
          if (isErrno(e, "ENOENT")) return [];
          throw e;
        }
      });
    },
    repair() {
      return withNftables(`repair anti-spoofing elements`, (nft) => {
        const t = nft.table(l.family, ANTISPOOF_TABLE);
        if (!t || t.comment !== LAYOUT_VERSION) return [];
        const hex = (k: Uint8Array) => Buffer.from(k).toString("hex");
        const listed = l.sets.map((s) => {
          try {
            return new Set(nft.setElements(setRef(l, s)).map((e) => hex(e.key)));
          } catch (e) {
            if (isErrno(e, "ENOENT")) return new Set<string>();
            throw e;
          }
        });
        const portIndex = l.sets.indexOf(portsSet);
        const changes: SetElemChange[] = [];
        const repaired: string[] = [];
        for (const port of nft.setElements(setRef(l, portsSet))) {
          const hostIfname = decodeKey(portsSet.type, port.key)[0]!;
          const recorded = recordedElements(l, hostIfname, port.comment);
          if (!recorded) continue;
          const missing = l.sets.map((s, i) => (i === portIndex ? [] : recorded[i]!.filter((e) => !listed[i]!.has(hex(e.key)))));
          if (missing.every((m) => m.length === 0)) continue;
          // The port element goes in again with them: a DEL racing this pass then leaves a whole
          // set of elements for GC (which follows ports), never addresses without their port.
          l.sets.forEach((s, i) => {
            const elements = i === portIndex ? [port.comment === undefined ? { key: port.key } : { key: port.key, comment: port.comment }] : missing[i]!;
            if (elements.length) changes.push({ ...setRef(l, s), op: "add", elements });
            if (missing[i]!.length) repaired.push(`${s.name} for "${hostIfname}"`);
          });
        }
        if (changes.length) nft.apply(changes);
        return repaired;
      });
    },
    check(hostIfname) {
      withNftables(`check anti-spoofing rules for "${hostIfname}"`, (nft) => {
        const t = nft.table(l.family, ANTISPOOF_TABLE);
        if (!t) throw missing(hostIfname, "the table does not exist");
        if (t.comment !== LAYOUT_VERSION) throw missing(hostIfname, `the table has another layout ("${t.comment ?? ""}")`);
        const has = (s: PodSet) => listedElements(nft, setRef(l, s), hostIfname).length > 0;
        if (!nft.hasSetElement(setRef(l, portsSet), portKey(hostIfname))) throw missing(hostIfname, `not in set ${portsSet.name}`);
        for (const s of l.sets.filter((s) => s.holds === "mac")) {
          if (!has(s)) throw missing(hostIfname, `no element in set ${s.name}`);
        }
        const addrSets = l.sets.filter((s) => s.holds === "addr");
        if (!addrSets.some(has)) throw missing(hostIfname, `no element in set ${addrSets.map((s) => s.name).join(" or ")}`);
      });
    },
  };
}
