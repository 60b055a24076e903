// A reading of the compiled policy table for tests: the chains and sets of one node's
// `inet mncni-policy` (compile.ts's structure, members.ts's elements) run on a first packet
// of a flow, as nft would, in the narrow grammar the compiler writes. It lets a test hold the
// compiled rules to the evaluator (src/cluster/evaluate-policy.ts) on every flow of a
// fixture without a kernel; the traffic tests show the kernel doing what the rules say. A
// rule it cannot read throws, so the compiler cannot grow past it silently.
import { cidrContains } from "../../src/net/cidr.ts";
import { familyOf } from "../../src/net/ip.ts";
import { compilePolicy, type PolicyStructure } from "../../src/agent/policy/compile.ts";
import { Members } from "../../src/agent/policy/members.ts";
import { PolicyEvaluator } from "../../src/cluster/index.ts";
import type { ClusterState, Decider, Protocol } from "../../src/cluster/types.ts";

export interface Packet {
  saddr: string;
  daddr: string;
  protocol: "TCP" | "UDP" | "SCTP";
  dport: number;
}

export interface ModelVerdict {
  accepted: boolean;
  /** The policy and rule the last log rule before the verdict names (drops always log). */
  logged?: Decider;
}

type Elements = ReadonlyMap<string, ReadonlyMap<string, number>>;

/** Splits a rule into tokens; `{ ... }` and quoted strings are one token each. */
function tokens(rule: string): string[] {
  const out: string[] = [];
  const re = /\{[^}]*\}|"[^"]*"|\S+/g;
  for (const m of rule.matchAll(re)) out.push(m[0]);
  return out;
}

const ipv4ToInt = (a: string) => a.split(".").reduce((n, x) => n * 256n + BigInt(Number(x)), 0n);
function inRange(value: string, lo: string, hi: string): boolean {
  if (familyOf(value) !== familyOf(lo)) return false;
  if (familyOf(value) === 4) return ipv4ToInt(lo) <= ipv4ToInt(value) && ipv4ToInt(value) <= ipv4ToInt(hi);
  const big = (a: string) => BigInt(`0x${expand6(a)}`);
  return big(lo) <= big(value) && big(value) <= big(hi);
}
function expand6(a: string): string {
  const [h, t] = a.split("::") as [string, string | undefined];
  const head = h ? h.split(":") : [];
  const tail = t ? t.split(":") : [];
  const mid = a.includes("::") ? Array(8 - head.length - tail.length).fill("0") : [];
  return [...head, ...mid, ...tail].map((x) => x.padStart(4, "0")).join("");
}

/** One address value against an nft address expression (address, CIDR, range, or an anonymous set of those). */
function addrMatches(value: string, expr: string): boolean {
  if (expr.startsWith("{")) return expr.slice(1, -1).split(",").map((x) => x.trim()).filter(Boolean).some((x) => addrMatches(value, x));
  if (expr.includes("/")) return familyOf(expr) === familyOf(value) && cidrContains(expr, value);
  const r = /^([0-9a-f.:]+)-([0-9a-f.:]+)$/i.exec(expr);
  if (r && (expr.includes(".") || expr.split("-").every((x) => x.includes(":")))) return inRange(value, r[1]!, r[2]!);
  return familyOf(expr) === familyOf(value) && canon(expr) === canon(value);
}
const canon = (a: string) => (a.includes(":") ? expand6(a) : a);

function portMatches(port: number, expr: string): boolean {
  if (expr.startsWith("{")) return expr.slice(1, -1).split(",").map((x) => x.trim()).filter(Boolean).some((x) => portMatches(port, x));
  const [lo, hi] = expr.split("-");
  return port >= Number(lo) && port <= Number(hi ?? lo);
}

function protoMatches(proto: string, expr: string): boolean {
  if (expr.startsWith("{")) return expr.slice(1, -1).split(",").map((x) => x.trim()).some((x) => protoMatches(proto, x));
  return expr === proto.toLowerCase();
}

/** A `proto . port` element or anonymous set against a packet. */
function protoPortMatches(p: Packet, expr: string): boolean {
  const items = expr.startsWith("{") ? expr.slice(1, -1).split(",").map((x) => x.trim()).filter(Boolean) : [expr];
  return items.some((it) => {
    const [proto, port] = it.split(" . ").map((x) => x.trim()) as [string, string];
    return protoMatches(p.protocol, proto) && portMatches(p.dport, port);
  });
}

export class PolicyTableModel {
  constructor(private readonly s: PolicyStructure, private readonly elements: Elements) {}

  /** A first packet through the forward hook (the packet is not ICMPv6, not of an established flow). */
  run(p: Packet): ModelVerdict {
    let logged: Decider | undefined;
    const stack: { chain: string; i: number }[] = [];
    let frame = { chain: "forward", i: 0 };
    for (let steps = 0; steps < 100_000; steps++) {
      const chain = this.s.chains.get(frame.chain);
      if (!chain) throw new Error(`no chain ${frame.chain}`);
      if (frame.i >= chain.rules.length) {
        // End of a chain: return to the caller, or the base chain's policy (accept).
        const up = stack.pop();
        if (!up) return { accepted: true, ...(logged ? { logged } : {}) };
        frame = up;
        continue;
      }
      const rule = chain.rules[frame.i++]!;
      const r = this.rule(rule, p);
      if (!r) continue;
      if (r.log) {
        logged = this.s.deciders.get(r.log);
        if (!logged) throw new Error(`log id ${r.log} names no decider`);
      }
      const [verdict, target] = r.verdict;
      if (verdict === "none") continue;
      if (verdict === "accept") return { accepted: true, ...(logged ? { logged } : {}) };
      if (verdict === "drop") return { accepted: false, ...(logged ? { logged } : {}) };
      if (verdict === "return") {
        const up = stack.pop();
        if (!up) return { accepted: true, ...(logged ? { logged } : {}) };
        frame = up;
        continue;
      }
      if (verdict === "jump") stack.push(frame);
      frame = { chain: target!, i: 0 };
    }
    throw new Error("rule loop");
  }

  private set(name: string): ReadonlyMap<string, number> {
    if (!this.s.sets.has(name)) throw new Error(`no set ${name}`);
    return this.elements.get(name) ?? new Map();
  }

  /** Whether a rule matches, and its verdict (or log). Undefined: no match. */
  private rule(rule: string, p: Packet): { verdict: [string, string?]; log?: string } | undefined {
    const t = tokens(rule);
    const fam = familyOf(p.saddr);
    let log: string | undefined;
    let verdict: [string, string?] = ["none"];
    for (let i = 0; i < t.length; i++) {
      const w = t[i]!;
      if (w === "ct") return undefined; // ct state established,related: a first packet is new
      if (w === "icmpv6") return undefined; // neighbour discovery: not this packet
      if (w === "counter") continue;
      if (w === "comment") { i++; continue; }
      if (w === "limit") { i += 5; continue; } // limit rate N/second burst N packets
      if (w === "log") {
        // log prefix "mncni D <id>" group N
        log = /"mncni [DA] (\w+)"/.exec(t[i + 2]!)?.[1];
        i += 4;
        continue;
      }
      if (w === "ip" || w === "ip6") {
        if ((w === "ip" ? 4 : 6) !== fam) return undefined;
        const field = t[++i]!;
        const value = field === "saddr" ? p.saddr : field === "daddr" ? p.daddr : undefined;
        if (value === undefined) throw new Error(`cannot read ${rule}`);
        if (t[i + 1] === "vmap") {
          const set = t[i + 2]!.slice(1);
          const hit = [...this.set(set).keys()].find((e) => canon(e.split(" : ")[0]!) === canon(value));
          if (!hit) return undefined;
          const [code, chain] = hit.split(" : ")[1]!.split(" ");
          return { verdict: [code!, chain!], ...(log ? { log } : {}) };
        }
        if (t[i + 1] === ".") {
          // ip daddr . meta l4proto . th dport @set
          if (t.slice(i + 1, i + 7).join(" ") !== ". meta l4proto . th dport") throw new Error(`cannot read ${rule}`);
          const set = t[i + 7]!.slice(1);
          i += 7;
          const key = `${value} . ${p.protocol.toLowerCase()} . ${p.dport}`;
          if (![...this.set(set).keys()].some((e) => { const [a, pr, po] = e.split(" . "); return canon(a!) === canon(value) && `${pr} . ${po}` === key.split(" . ").slice(1).join(" . "); })) return undefined;
          continue;
        }
        const neg = t[i + 1] === "!=";
        if (neg) i++;
        const expr = t[++i]!;
        const hit = expr.startsWith("@") ? [...this.set(expr.slice(1)).keys()].some((e) => addrMatches(value, e)) : addrMatches(value, expr);
        if (hit === neg) return undefined;
        continue;
      }
      if (w === "meta" && t[i + 1] === "l4proto") {
        if (t[i + 2] === ".") {
          // meta l4proto . th dport { tcp . 80, udp . 53-60 }
          if (t.slice(i + 2, i + 5).join(" ") !== ". th dport") throw new Error(`cannot read ${rule}`);
          if (!protoPortMatches(p, t[i + 5]!)) return undefined;
          i += 5;
          continue;
        }
        if (!protoMatches(p.protocol, t[i + 2]!)) return undefined;
        i += 2;
        continue;
      }
      if (w === "th" && t[i + 1] === "dport") {
        if (!portMatches(p.dport, t[i + 2]!)) return undefined;
        i += 2;
        continue;
      }
      if (w === "accept" || w === "drop" || w === "return") { verdict = [w]; continue; }
      if (w === "jump" || w === "goto") { verdict = [w, t[++i]!]; continue; }
      throw new Error(`cannot read "${w}" in ${rule}`);
    }
    return { verdict, ...(log ? { log } : {}) };
  }
}

/** How a decider reads in a mismatch: kind, namespace/name, rule. */
const named = (d: { kind: string; namespace?: string; name: string; rule: string } | undefined) =>
  d ? `${d.kind} ${d.namespace ? `${d.namespace}/` : ""}${d.name} ${d.rule}` : "nothing";

/**
 * Every flow between the state's pods (each of its addresses, to each other pod's address of
 * the family, on `ports` over TCP and UDP, plus each pod to `external`), through the tables
 * of the source's node and then the destination's, against the evaluator: the flows where
 * they differ in the verdict or, for a denied flow, in the policy and rule that denied it.
 */
export function disagreements(state: ClusterState, o: { ports?: number[]; external?: string[] } = {}): string[] {
  const s = compilePolicy({ state });
  const tables = new Map<string, PolicyTableModel>();
  const table = (node: string) => {
    let m = tables.get(node);
    if (!m) {
      const members = new Members(node);
      members.update(s, state);
      tables.set(node, (m = new PolicyTableModel(s, members.elements)));
    }
    return m;
  };
  const ev = new PolicyEvaluator(state);
  const pods = [...state.pods.values()].filter((p) => !p.hostNetwork && p.podIPs.length);
  const out: string[] = [];
  for (const src of pods) {
    for (const saddr of src.podIPs) {
      const dsts = [...pods.filter((d) => d !== src).flatMap((d) => d.podIPs.map((ip) => ({ ip, node: d.nodeName }))), ...(o.external ?? []).map((ip) => ({ ip, node: undefined }))]
        .filter((d) => familyOf(d.ip) === familyOf(saddr) && d.ip !== saddr);
      for (const dst of dsts) {
        for (const port of o.ports ?? [80, 81]) {
          for (const protocol of ["TCP", "UDP"] as Protocol[]) {
            const p: Packet = { saddr, daddr: dst.ip, protocol, dport: port };
            if (!s.any) continue;
            let k = table(src.nodeName ?? "")!.run(p);
            if (k.accepted && dst.node && dst.node !== src.nodeName) k = table(dst.node).run(p);
            const e = ev.evaluate({ src: { ip: saddr }, dst: { ip: dst.ip }, port, protocol });
            const flow = `${src.namespace}/${src.name} ${saddr} -> ${dst.ip} ${protocol}/${port}`;
            if (e.allowed !== k.accepted) out.push(`${flow}: evaluator ${e.allowed ? "allows" : "denies"} (${named(e.by && { ...e.by })}), rules ${k.accepted ? "accept" : "drop"} (${named(k.logged)})`);
            else if (!e.allowed && named(e.by) !== named(k.logged && { ...k.logged, name: k.logged.name })) {
              out.push(`${flow}: denied by ${named(e.by)} (evaluator) vs ${named(k.logged)} (rules)`);
            }
          }
        }
      }
    }
  }
  return out;
}
