// nftables over nfnetlink (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_NFTABLES): look up a
// table, list chains and rules (read only: what a ruleset check needs without starting
// `nft`), list a set's elements, and add or delete elements of several sets in one atomic
// transaction (an nfnetlink batch). Rulesets themselves are written with `nft -f`; this is
// the per-object hot path that must not pay for starting a process.
//
// Wire format: nlmsghdr, nfgenmsg {family, version, res_id}, then NFTA_* attributes whose
// integers are in network order. A set element key is the raw bytes nft's datatype uses;
// a concatenation is its components one after the other, each padded to 4 bytes (the
// width of an nftables register).
import { NFGENMSG_LEN, NLMSG_MIN_TYPE, NLM_F, msgAttrs, type Attrs, type Msg, type Writer } from "./codec.ts";
import { isErrno } from "./errors.ts";
import { formatIP, formatMAC, parseIP, parseIPv4Into, parseMAC } from "../net/ip.ts";
import { withNetns } from "./netns.ts";
import { NETLINK_NETFILTER, NetlinkSocket } from "./socket.ts";

/** nfgen_family values (linux/netfilter.h NFPROTO_*), by nft's family names. */
export const NFPROTO = { inet: 1, ip: 2, arp: 3, netdev: 5, bridge: 7, ip6: 10 } as const;
export type NftFamily = keyof typeof NFPROTO;

const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = NLMSG_MIN_TYPE;
const NFNL_MSG_BATCH_END = NLMSG_MIN_TYPE + 1;
/** linux/netfilter/nf_tables.h enum nf_tables_msg_types (the ones used here). */
const NFT_MSG = { NEWTABLE: 0, GETTABLE: 1, DELTABLE: 2, GETCHAIN: 4, GETRULE: 7, NEWSETELEM: 12, GETSETELEM: 13, DELSETELEM: 14 } as const;
const NFTA_TABLE = { NAME: 1, FLAGS: 2, USE: 3, HANDLE: 4, USERDATA: 6 } as const;
const NFTA_CHAIN = { TABLE: 1, HANDLE: 2, NAME: 3, HOOK: 4, POLICY: 5, TYPE: 7, USERDATA: 11 } as const;
const NFTA_HOOK = { HOOKNUM: 1, PRIORITY: 2, DEV: 3 } as const;
const NFTA_RULE = { TABLE: 1, CHAIN: 2, HANDLE: 3, EXPRESSIONS: 4, USERDATA: 7 } as const;
const NFTA_EXPR = { NAME: 1, DATA: 2 } as const;
/** Hook names by number, as nft prints them (linux/netfilter.h; bridge and inet share them). */
const HOOKS: Record<string, readonly string[]> = {
  inet: ["prerouting", "input", "forward", "output", "postrouting", "ingress"],
  arp: ["input", "output", "forward"],
  netdev: ["ingress", "egress"],
};
const hookName = (family: NftFamily, n: number) => (HOOKS[family] ?? HOOKS.inet!)[n] ?? String(n);
const FAMILY_NAMES = Object.fromEntries(Object.entries(NFPROTO).map(([k, v]) => [v, k])) as Record<number, NftFamily>;
const NFTA_SET_ELEM_LIST = { TABLE: 1, SET: 2, ELEMENTS: 3 } as const;
export const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM = { KEY: 1, DATA: 2, FLAGS: 3, USERDATA: 6 } as const;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT = { CODE: 1, CHAIN: 2 } as const;
/** linux/netfilter/nf_tables.h enum nft_verdicts: negative codes, sent as big-endian u32. */
const NFT_VERDICT_CODE = { jump: -3, goto: -4 } as const;
/**
 * libnftnl's udata TLV type of the comment of a table and of a set element (what nft's
 * `comment "..."` stores): {u8 type, u8 length, text with its NUL}.
 */
const NFTNL_UDATA_COMMENT = 0;
/** nft refuses longer comments. */
export const NFT_COMMENT_MAXLEN = 128;

const msgType = (t: number) => (NFNL_SUBSYS_NFTABLES << 8) | t;
/** Keeps an element list (at most 64 bytes of key and 134 of comment each) under 64 KiB. */
const ELEMS_PER_MSG = 256;
/** Per batch: ~100 KB of elements at most (the send buffer), and ACKs the receive buffer holds. */
const ELEMS_PER_BATCH = 1024;
const MSGS_PER_BATCH = 128;
const LIST_ATTEMPTS = 5;

export interface NftTable {
  family: NftFamily;
  name: string;
  /** Unique in its namespace, never reused: a re-created table gets a new handle. */
  handle: bigint;
  flags: number;
  /** How many chains and sets it holds. */
  use: number;
  comment?: string;
}

/** A chain as the kernel lists it; base chains carry their hook. */
export interface NftChainInfo {
  family: NftFamily;
  table: string;
  name: string;
  handle: bigint;
  /** Base chains only. */
  type?: string;
  hook?: string;
  prio?: number;
  policy?: "accept" | "drop";
  comment?: string;
}

/** A rule as the kernel lists it. */
export interface NftRuleInfo {
  family: NftFamily;
  table: string;
  chain: string;
  handle: bigint;
  comment?: string;
  /**
   * With `withExprs`: the rule's expressions as the kernel encodes them (NFTA_RULE_EXPRESSIONS),
   * with the attributes of stateful ones (counter, quota, last, connlimit) zeroed, so equal
   * rules give equal bytes whatever traffic they saw.
   */
  expressions?: Uint8Array;
}

/** A set, named as nft names it: `bridge mncni-antispoof ports`. */
export interface SetRef {
  family: NftFamily;
  table: string;
  set: string;
}

export interface SetElement {
  /** As encodeKey() builds it. */
  key: Uint8Array;
  /** A map element's value, encoded like a key (encodeKey of the map's data types). */
  data?: Uint8Array;
  /** A verdict map element's value: jump or goto a chain of the same table. */
  verdict?: { code: "jump" | "goto"; chain: string };
  /** Shown by `nft list` as `comment "..."`; at most NFT_COMMENT_MAXLEN bytes. */
  comment?: string;
}

export interface SetElemChange extends SetRef {
  op: "add" | "del";
  elements: SetElement[];
  /** add only: an element whose key exists already fails the transaction (EEXIST). */
  exclusive?: boolean;
}

const setName = (r: SetRef) => `${r.family} ${r.table} ${r.set}`;

export class Nftables {
  private constructor(private readonly sock: NetlinkSocket) {}

  /** A NETLINK_NETFILTER socket; with netnsPath it acts in that namespace for its whole life. */
  static open(netnsPath?: string): Nftables {
    const open = () => NetlinkSocket.open({ protocol: NETLINK_NETFILTER });
    return new Nftables(netnsPath === undefined ? open() : withNetns(netnsPath, open));
  }

  close(): void {
    this.sock.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The table, or undefined when it does not exist. */
  table(family: NftFamily, name: string): NftTable | undefined {
    let found: NftTable | undefined;
    const w = this.sock.begin(msgType(NFT_MSG.GETTABLE), 0).nfgenmsg({ family: NFPROTO[family] });
    w.attrStr(NFTA_TABLE.NAME, name);
    try {
      this.sock.exec(`get table "${family} ${name}"`, (m) => {
        found = parseTable(m, family);
      });
    } catch (e) {
      if (isErrno(e, "ENOENT")) return undefined;
      throw e;
    }
    return found;
  }

  /** Every table of a family (every family when none is given), with its comment. */
  tables(family?: NftFamily): NftTable[] {
    return this.sock.dump("list tables", msgType(NFT_MSG.GETTABLE), (w) => {
      w.nfgenmsg({ family: family ? NFPROTO[family] : 0 });
    }, (m) => {
      const f = FAMILY_NAMES[m.buf[m.start]!];
      return f ? parseTable(m, f) : undefined;
    });
  }

  /** Every chain of a family (every family when none is given), or of one table. */
  chains(family?: NftFamily, table?: string): NftChainInfo[] {
    const all = this.sock.dump(`list chains${table ? ` of table "${family} ${table}"` : ""}`, msgType(NFT_MSG.GETCHAIN), (w) => {
      w.nfgenmsg({ family: family ? NFPROTO[family] : 0 });
    }, parseChain);
    return table === undefined ? all : all.filter((c) => c.table === table);
  }

  /**
   * The rules of a table, or of one of its chains, in chain order; none when the table (or
   * chain) is missing. exprs only with `withExprs` (a fingerprint needs them; a comment
   * lookup does not).
   */
  rules(family: NftFamily, table: string, chain?: string, withExprs = false): NftRuleInfo[] {
    const what = chain === undefined ? `table "${family} ${table}"` : `chain "${family} ${table} ${chain}"`;
    return this.sock.dump(`list rules of ${what}`, msgType(NFT_MSG.GETRULE), (w) => {
      w.nfgenmsg({ family: NFPROTO[family] });
      w.attrStr(NFTA_RULE.TABLE, table);
      if (chain !== undefined) w.attrStr(NFTA_RULE.CHAIN, chain);
    }, (m) => parseRule(m, withExprs));
  }

  /**
   * Every element of a set (NFT_MSG_GETSETELEM dump); ENOENT when the set or table is missing.
   * A dump that spans several messages resumes by counting elements, so a hash set that the
   * kernel resizes meanwhile (one created without `size`) can repeat some and skip others,
   * with no NLM_F_DUMP_INTR to say so. A listing that repeats a key is therefore redone;
   * sets declared with a `size` are never resized and list consistently.
   */
  setElements(ref: SetRef): SetElement[] {
    for (let attempt = 1; ; attempt++) {
      const out = this.sock
        .dump(`list elements of set "${setName(ref)}"`, msgType(NFT_MSG.GETSETELEM), (w) => setHeader(w, ref), parseElements)
        .flat();
      if (attempt >= LIST_ATTEMPTS || !hasRepeatedKey(out)) return out;
    }
  }

  /**
   * The element with exactly this key (a single-element get, no dump); undefined when the
   * set, or its table, holds none (the kernel says ENOENT for all three).
   */
  setElement(ref: SetRef, key: Uint8Array): SetElement | undefined {
    const w = this.sock.begin(msgType(NFT_MSG.GETSETELEM), 0);
    setHeader(w, ref);
    writeElements(w, [{ key }]);
    let found: SetElement | undefined;
    try {
      this.sock.exec(`get element of set "${setName(ref)}"`, (m) => {
        found = parseElements(m)[0];
      });
    } catch (e) {
      if (isErrno(e, "ENOENT")) return undefined;
      throw e;
    }
    return found;
  }

  hasSetElement(ref: SetRef, key: Uint8Array): boolean {
    return this.setElement(ref, key) !== undefined;
  }

  /**
   * Applies every change in one transaction: all of them or, when one fails, none (the
   * kernel aborts the whole batch). Adding an element that exists is not an error; deleting
   * one that does not is (ENOENT), as is naming a missing set or table.
   */
  apply(changes: SetElemChange[]): void {
    const todo = changes.filter((c) => c.elements.length > 0);
    if (todo.length === 0) return;
    // One batch is one transaction, but a batch must fit the socket's send buffer (EMSGSIZE
    // beyond ~200 KB) and its ACKs the receive buffer (the kernel drops ACKs past it, and the
    // reply never completes): a large change is written as consecutive batches, deletions
    // still before additions, each whole or not at all.
    let ops: string[] = [];
    let msgs = 0;
    let elems = 0;
    const start = () => {
      ops = [""];
      msgs = 0;
      elems = 0;
      this.sock.begin(NFNL_MSG_BATCH_BEGIN, 0).nfgenmsg({ family: 0, resId: NFNL_SUBSYS_NFTABLES });
    };
    const flush = () => {
      // The batch header and trailer carry the whole transaction's name: the kernel answers
      // them when it rejects the batch as a whole (e.g. the commit fails).
      this.sock.append(NFNL_MSG_BATCH_END, 0).nfgenmsg({ family: 0, resId: NFNL_SUBSYS_NFTABLES });
      ops[0] = msgs === 1 ? ops[1]! : `apply ${msgs} set element changes`;
      ops.push(ops[0]);
      this.sock.execBatch(ops);
    };
    start();
    for (const c of todo) {
      const type = c.op === "add" ? NFT_MSG.NEWSETELEM : NFT_MSG.DELSETELEM;
      // The element list is one attribute, whose length is 16 bits: spread big lists.
      for (let i = 0; i < c.elements.length; i += ELEMS_PER_MSG) {
        const part = c.elements.slice(i, i + ELEMS_PER_MSG);
        if (msgs > 0 && (msgs >= MSGS_PER_BATCH || elems + part.length > ELEMS_PER_BATCH)) {
          flush();
          start();
        }
        const w = this.sock.append(msgType(type), NLM_F.ACK | (c.op === "add" ? NLM_F.CREATE | (c.exclusive ? NLM_F.EXCL : 0) : 0));
        setHeader(w, c);
        writeElements(w, part);
        ops.push(`${c.op === "add" ? "add elements to" : "delete elements from"} set "${setName(c)}"`);
        msgs++;
        elems += part.length;
      }
    }
    flush();
  }

  addSetElements(ref: SetRef, keys: Uint8Array[]): void {
    this.apply([{ ...ref, op: "add", elements: keys.map((key) => ({ key })) }]);
  }

  delSetElements(ref: SetRef, keys: Uint8Array[]): void {
    this.apply([{ ...ref, op: "del", elements: keys.map((key) => ({ key })) }]);
  }
}

function setHeader(w: Writer, ref: SetRef): void {
  w.nfgenmsg({ family: NFPROTO[ref.family] });
  w.attrStr(NFTA_SET_ELEM_LIST.TABLE, ref.table);
  w.attrStr(NFTA_SET_ELEM_LIST.SET, ref.set);
}

function writeElements(w: Writer, elements: SetElement[]): void {
  const list = w.nestStart(NFTA_SET_ELEM_LIST.ELEMENTS);
  for (const e of elements) {
    const elem = w.nestStart(NFTA_LIST_ELEM);
    const k = w.nestStart(NFTA_SET_ELEM.KEY);
    w.attrBytes(NFTA_DATA_VALUE, e.key);
    w.nestEnd(k);
    if (e.data !== undefined) {
      const d = w.nestStart(NFTA_SET_ELEM.DATA);
      w.attrBytes(NFTA_DATA_VALUE, e.data);
      w.nestEnd(d);
    } else if (e.verdict !== undefined) {
      const d = w.nestStart(NFTA_SET_ELEM.DATA);
      const v = w.nestStart(NFTA_DATA_VERDICT);
      const code = new Uint8Array(4);
      new DataView(code.buffer).setInt32(0, NFT_VERDICT_CODE[e.verdict.code], false);
      w.attrBytes(NFTA_VERDICT.CODE, code);
      w.attrStr(NFTA_VERDICT.CHAIN, e.verdict.chain);
      w.nestEnd(v);
      w.nestEnd(d);
    }
    if (e.comment !== undefined) w.attrBytes(NFTA_SET_ELEM.USERDATA, encodeComment(e.comment));
    w.nestEnd(elem);
  }
  w.nestEnd(list);
}

function parseElements(m: Msg): SetElement[] {
  const list = msgAttrs(m, NFGENMSG_LEN).items(NFTA_SET_ELEM_LIST.ELEMENTS);
  return list.flatMap((e: Attrs) => {
    const key = e.nested(NFTA_SET_ELEM.KEY)?.bytes(NFTA_DATA_VALUE);
    if (!key) return [];
    const comment = parseComment(e.bytes(NFTA_SET_ELEM.USERDATA));
    const d = e.nested(NFTA_SET_ELEM.DATA);
    const data = d?.bytes(NFTA_DATA_VALUE);
    const out: SetElement = comment === undefined ? { key } : { key, comment };
    if (data) out.data = data;
    const v = d?.nested(NFTA_DATA_VERDICT);
    const code = v?.be32(NFTA_VERDICT.CODE);
    const chain = v?.str(NFTA_VERDICT.CHAIN);
    if (code !== undefined && chain !== undefined) {
      const signed = code | 0;
      const name = signed === NFT_VERDICT_CODE.jump ? "jump" : signed === NFT_VERDICT_CODE.goto ? "goto" : undefined;
      if (name) out.verdict = { code: name, chain };
    }
    return [out];
  });
}

function parseTable(m: Msg, family: NftFamily): NftTable {
  const a = msgAttrs(m, NFGENMSG_LEN);
  const t: NftTable = {
    family,
    name: a.str(NFTA_TABLE.NAME) ?? "",
    handle: a.be64(NFTA_TABLE.HANDLE) ?? 0n,
    flags: a.be32(NFTA_TABLE.FLAGS) ?? 0,
    use: a.be32(NFTA_TABLE.USE) ?? 0,
  };
  const comment = parseComment(a.bytes(NFTA_TABLE.USERDATA));
  if (comment !== undefined) t.comment = comment;
  return t;
}

function parseChain(m: Msg): NftChainInfo | undefined {
  const family = FAMILY_NAMES[m.buf[m.start]!];
  if (!family) return undefined;
  const a = msgAttrs(m, NFGENMSG_LEN);
  const c: NftChainInfo = { family, table: a.str(NFTA_CHAIN.TABLE) ?? "", name: a.str(NFTA_CHAIN.NAME) ?? "", handle: a.be64(NFTA_CHAIN.HANDLE) ?? 0n };
  const hook = a.nested(NFTA_CHAIN.HOOK);
  if (hook) {
    const n = hook.be32(NFTA_HOOK.HOOKNUM);
    if (n !== undefined) c.hook = hookName(family, n);
    const prio = hook.be32(NFTA_HOOK.PRIORITY);
    if (prio !== undefined) c.prio = prio | 0;
    const type = a.str(NFTA_CHAIN.TYPE);
    if (type !== undefined) c.type = type;
    const policy = a.be32(NFTA_CHAIN.POLICY);
    if (policy !== undefined) c.policy = policy === 0 ? "drop" : "accept";
  }
  const comment = parseComment(a.bytes(NFTA_CHAIN.USERDATA));
  if (comment !== undefined) c.comment = comment;
  return c;
}

function parseRule(m: Msg, withExprs: boolean): NftRuleInfo | undefined {
  const family = FAMILY_NAMES[m.buf[m.start]!];
  if (!family) return undefined;
  const a = msgAttrs(m, NFGENMSG_LEN);
  const r: NftRuleInfo = { family, table: a.str(NFTA_RULE.TABLE) ?? "", chain: a.str(NFTA_RULE.CHAIN) ?? "", handle: a.be64(NFTA_RULE.HANDLE) ?? 0n };
  const comment = parseComment(a.bytes(NFTA_RULE.USERDATA));
  if (comment !== undefined) r.comment = comment;
  if (withExprs) {
    const e = a.bytes(NFTA_RULE.EXPRESSIONS);
    if (e) r.expressions = zeroStateful(e);
  }
  return r;
}

/** Expressions whose attributes are state (what traffic did), not configuration: their names as NUL-terminated bytes. */
const STATEFUL_EXPRS = ["counter", "quota", "last", "connlimit"].map((n) => Buffer.from(`${n}\0`));

/** Zeroes, in place, the data of the stateful expressions in an NFTA_RULE_EXPRESSIONS payload (no strings made: a listing has ~100,000 expressions). */
function zeroStateful(b: Uint8Array): Uint8Array {
  const u16 = (p: number) => b[p]! | (b[p + 1]! << 8);
  for (let p = 0; p + 4 <= b.length; ) {
    const len = u16(p);
    if (len < 4 || p + len > b.length) break;
    const end = p + len;
    let stateful = false;
    for (let q = p + 4; q + 4 <= end; ) {
      const l2 = u16(q);
      if (l2 < 4 || q + l2 > end) break;
      const t = u16(q + 2) & 0x3fff;
      if (t === NFTA_EXPR.NAME) stateful = STATEFUL_EXPRS.some((n) => n.length === l2 - 4 && n.every((c, i) => b[q + 4 + i] === c));
      else if (t === NFTA_EXPR.DATA && stateful) b.fill(0, q + 4, q + l2);
      q += (l2 + 3) & ~3;
    }
    p += (len + 3) & ~3;
  }
  return b;
}

function hasRepeatedKey(elements: SetElement[]): boolean {
  const seen = new Set<string>();
  for (const e of elements) {
    const k = Buffer.from(e.key.buffer, e.key.byteOffset, e.key.byteLength).toString("latin1");
    if (seen.has(k)) return true;
    seen.add(k);
  }
  return false;
}

function encodeComment(text: string): Uint8Array {
  const b = Buffer.from(text, "utf8");
  if (b.length > NFT_COMMENT_MAXLEN) throw new TypeError(`invalid comment "${text}": longer than ${NFT_COMMENT_MAXLEN} bytes`);
  const out = new Uint8Array(b.length + 3);
  out[0] = NFTNL_UDATA_COMMENT;
  out[1] = b.length + 1;
  out.set(b, 2);
  return out;
}

/** The comment among a table's, chain's, rule's or element's userdata TLVs, if there is one. */
function parseComment(ud: Uint8Array | undefined): string | undefined {
  if (!ud) return undefined;
  for (let p = 0; p + 2 <= ud.length; p += 2 + ud[p + 1]!) {
    const len = ud[p + 1]!;
    if (ud[p] !== NFTNL_UDATA_COMMENT || p + 2 + len > ud.length) continue;
    let end = p + 2 + len;
    while (end > p + 2 && ud[end - 1] === 0) end--;
    return Buffer.from(ud.subarray(p + 2, end)).toString("utf8");
  }
  return undefined;
}

// ---- keys ------------------------------------------------------------------------------

/** The nft datatypes mncni puts in set keys, with their width on the wire. */
const KEY_TYPES = {
  ifname: { len: 16, encode: encodeIfname, decode: decodeIfname },
  ether_addr: { len: 6, encode: parseMAC, decode: formatMAC },
  ipv4_addr: { len: 4, encode: (s: string) => parseIP(s, 4).bytes, decode: (b: Uint8Array) => formatIP(b, 4), into: intoIPv4 },
  ipv6_addr: { len: 16, encode: (s: string) => parseIP(s, 6).bytes, decode: (b: Uint8Array) => formatIP(b, 6) },
  inet_proto: { len: 1, encode: encodeProto, decode: (b: Uint8Array) => PROTO_NAMES[b[0]!] ?? String(b[0]), into: intoProto },
  inet_service: { len: 2, encode: encodePort, decode: (b: Uint8Array) => String((b[0]! << 8) | b[1]!), into: intoPort },
  // A packet mark (and numgen's result): a 32-bit integer in host byte order, unlike the rest.
  mark: { len: 4, encode: encodeMark, decode: decodeMark, into: intoMark },
} as const satisfies Record<string, { len: number; encode: (s: string) => Uint8Array; decode: (b: Uint8Array) => string; into?: (s: string, out: Uint8Array, at: number) => void }>;

// Written in place, without a part's own array (a full Service sync encodes ~150,000 keys).
function intoIPv4(s: string, out: Uint8Array, at: number): void {
  if (!parseIPv4Into(s, out, at)) parseIP(s, 4); // throws the parser's error
}

/** A decimal number of at most `max`, or -1. */
function decimal(s: string, max: number): number {
  if (s.length === 0 || s.length > 10) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n <= max ? n : -1;
}

function intoProto(s: string, out: Uint8Array, at: number): void {
  out[at] = s === "tcp" ? 6 : s === "udp" ? 17 : encodeProto(s)[0]!;
}

function intoPort(s: string, out: Uint8Array, at: number): void {
  const n = decimal(s, 65535);
  if (n < 0) throw new TypeError(`invalid port "${s}"`);
  out[at] = n >> 8;
  out[at + 1] = n & 0xff;
}

function intoMark(s: string, out: Uint8Array, at: number): void {
  const d = decimal(s, 0xffffffff);
  if (d < 0) return out.set(encodeMark(s), at); // hex, or invalid (throws)
  for (let i = 0; i < 4; i++) out[at + (LITTLE_ENDIAN ? i : 3 - i)] = Math.floor(d / 2 ** (8 * i)) & 0xff;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function encodeMark(v: string): Uint8Array {
  const n = /^(0x[0-9a-f]+|\d+)$/i.test(v) ? Number(v) : NaN;
  if (!(n >= 0 && n <= 0xffffffff)) throw new TypeError(`invalid mark "${v}"`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, LITTLE_ENDIAN);
  return out;
}

function decodeMark(b: Uint8Array): string {
  return String(new DataView(b.buffer, b.byteOffset, 4).getUint32(0, LITTLE_ENDIAN));
}

/** IP protocol numbers by the names nft prints. */
export const IPPROTO = { tcp: 6, udp: 17, sctp: 132 } as const;
const PROTO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(IPPROTO).map(([n, v]) => [v, n]));

function encodeProto(name: string): Uint8Array {
  const n = IPPROTO[name as keyof typeof IPPROTO] ?? (/^\d+$/.test(name) ? Number(name) : NaN);
  if (!(n >= 0 && n <= 255)) throw new TypeError(`invalid protocol "${name}"`);
  return Uint8Array.of(n);
}

function encodePort(port: string): Uint8Array {
  const n = /^\d+$/.test(port) ? Number(port) : NaN;
  if (!(n >= 0 && n <= 65535)) throw new TypeError(`invalid port "${port}"`);
  return Uint8Array.of(n >> 8, n & 0xff);
}
export type NftKeyType = keyof typeof KEY_TYPES;

const IFNAMSIZ = 16;
const pad4 = (n: number) => (n + 3) & ~3;

function encodeIfname(name: string): Uint8Array {
  const b = Buffer.from(name, "utf8");
  if (b.length === 0 || b.length >= IFNAMSIZ) throw new TypeError(`invalid interface name "${name}": must be 1-15 bytes`);
  const out = new Uint8Array(IFNAMSIZ);
  out.set(b);
  return out;
}

function decodeIfname(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return Buffer.from(b.subarray(0, nul < 0 ? b.length : nul)).toString("utf8");
}

/** Length of a key of these types: a lone type is unpadded, a concatenation pads each part. */
export function keyLength(types: readonly NftKeyType[]): number {
  if (types.length === 1) return KEY_TYPES[types[0]!].len;
  return types.reduce((n, t) => n + pad4(KEY_TYPES[t].len), 0);
}

/**
 * The key of a set whose type is `types` (nft's `type ifname . ether_addr` is
 * ["ifname", "ether_addr"]) holding `values` ("veth0", "02:00:00:00:00:01").
 * Invalid values throw a TypeError.
 */
export function encodeKey(types: readonly NftKeyType[], values: readonly string[]): Uint8Array {
  if (types.length !== values.length || types.length === 0) {
    throw new TypeError(`cannot encode set key "${values.join(" . ")}": expected ${types.length} values (${types.join(" . ")})`);
  }
  const out = new Uint8Array(keyLength(types));
  let at = 0;
  for (let i = 0; i < types.length; i++) {
    const kt: { len: number; encode: (s: string) => Uint8Array; into?: (s: string, out: Uint8Array, at: number) => void } = KEY_TYPES[types[i]!];
    if (kt.into) kt.into(values[i]!, out, at);
    else {
      const part = kt.encode(values[i]!);
      if (part.length !== kt.len) throw new TypeError(`invalid ${types[i]} "${values[i]}": expected ${kt.len} bytes`);
      out.set(part, at);
    }
    at += types.length === 1 ? kt.len : pad4(kt.len);
  }
  return out;
}

/** The values of a key built for `types`, formatted as nft prints them. */
export function decodeKey(types: readonly NftKeyType[], key: Uint8Array): string[] {
  if (key.length !== keyLength(types)) {
    throw new TypeError(`cannot decode set key of ${key.length} bytes as ${types.join(" . ")} (${keyLength(types)} bytes)`);
  }
  const out: string[] = [];
  let at = 0;
  for (const t of types) {
    const { len, decode } = KEY_TYPES[t];
    out.push(decode(key.subarray(at, at + len)));
    at += types.length === 1 ? len : pad4(len);
  }
  return out;
}

/** Whether key starts with prefix: finds a concatenation's elements by its first part(s). */
export function keyHasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}
