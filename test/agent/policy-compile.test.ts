// The compiler, the set membership and the scripts, pure: which pods are selected, how named
// ports and peers the engine does not enforce come out, that keeping members incrementally
// gives exactly what computing them from scratch gives, and what the scripts write. (The
// traffic tests in policy.integration.test.ts show the rules doing what they say.)
import { describe, expect, test } from "bun:test";
import { buildClusterState } from "../../src/cluster/build-state.ts";
import type { KubeObject } from "../../src/cluster/types.ts";
import { compilePolicy } from "../../src/agent/policy/index.ts";
import { Members } from "../../src/agent/policy/members.ts";
import { deltaScript, tableScript } from "../../src/firewall/table-engine.ts";
import { POLICY_TARGET, policyTable } from "../../src/agent/policy/engine.ts";
import { MAX_POLICY_RULES, nftComment } from "../../src/agent/policy/compile.ts";
import { disagreements } from "./nft-model.ts";
import { AddressClaims, addressPods } from "../../src/cluster/index.ts";

const pod = (ns: string, name: string, node: string, ip: string, labels: Record<string, string> = {}, ports: { name: string; containerPort: number; protocol?: "TCP" | "UDP" }[] = [], phase?: string): KubeObject => ({
  kind: "Pod", metadata: { name, namespace: ns, labels }, spec: { nodeName: node, containers: [{ ports }] }, status: { podIP: ip, ...(phase ? { phase } : {}) },
});
const np = (ns: string, name: string, spec: object): KubeObject => ({ kind: "NetworkPolicy", metadata: { name, namespace: ns }, spec } as KubeObject);

/** Elements of every set whose description matches, for readable assertions. */
function elementsOf(objs: KubeObject[], node: string) {
  const state = buildClusterState(objs);
  const s = compilePolicy({ state });
  const m = new Members(node);
  m.update(s, state);
  const byKind = (kind: string) => [...s.sets].filter(([, d]) => d.kind === kind).flatMap(([n]) => [...(m.elements.get(n)?.keys() ?? [])]).sort();
  return { s, m, byKind };
}

describe("policy compiler", () => {
  const base = [
    pod("x", "a", "n1", "10.0.1.2", { app: "a" }),
    pod("x", "b", "n1", "10.0.1.3", { app: "b" }),
    pod("y", "c", "n2", "10.0.2.2", { app: "c" }, [{ name: "http", containerPort: 8080 }]),
    pod("y", "d", "n2", "fd00::2", { app: "c" }, [{ name: "http", containerPort: 9090 }]),
  ];

  test("only pods a policy selects are selected, and only on their node", () => {
    const objs = [...base, np("x", "p", { podSelector: { matchLabels: { app: "a" } } })];
    const n1 = elementsOf(objs, "n1");
    expect(n1.m.selected()).toEqual({ ingress: ["x/a"], egress: [] });
    expect(n1.byKind("selected")).toEqual(["10.0.1.2"]);
    // Both pods of namespace x go to its chain; only a is isolated there.
    expect(n1.byKind("dispatch")).toEqual(["10.0.1.2 : goto ingress-np/x", "10.0.1.3 : goto ingress-np/x"]);
    expect(n1.s.chains.get("ingress-np/x")!.rules.join("\n")).toContain('counter drop comment "np x ingress isolated: no rule allows (p)"');
    expect(elementsOf(objs, "n2").m.selected()).toEqual({ ingress: [], egress: [] });
  });

  test("an egress named port resolves on each destination pod, per family", () => {
    const objs = [...base, np("x", "p", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: "http" }] }] })];
    const { s, byKind } = elementsOf(objs, "n1");
    expect(byKind("ports")).toEqual(["10.0.2.2 . tcp . 8080", "fd00::2 . tcp . 9090"]);
    const rules = s.chains.get("np/x/p/egress")!.rules;
    expect(rules.some((r) => /^ip daddr \. meta l4proto \. th dport @n_\w+_4 counter goto ingress /.test(r))).toBe(true);
    expect(rules.some((r) => /^ip6 daddr \. meta l4proto \. th dport @n_\w+_6 counter goto ingress /.test(r))).toBe(true);
  });

  test("unenforced CNP peers fail closed: Accept matches nothing, Deny and Pass deny everything", () => {
    const cnp = (action: "Accept" | "Deny" | "Pass"): KubeObject => ({ kind: "ClusterNetworkPolicy", metadata: { name: `n-${action}` }, spec: {
      tier: "Admin", priority: 1, subject: { namespaces: {} }, egress: [{ action, to: [{ nodes: {} }], protocols: [{ tcp: { destinationPort: { number: 80 } } }] }],
    } } as KubeObject);
    expect(compilePolicy({ state: buildClusterState([...base, cnp("Accept")]) }).chains.get("cnp/n-Accept/egress")!.rules).toEqual([]);
    for (const action of ["Deny", "Pass"] as const) {
      // No match at all before the verdict (no port either): the rule is a Deny of everything.
      const rules = compilePolicy({ state: buildClusterState([...base, cnp(action)]) }).chains.get(`cnp/n-${action}/egress`)!.rules;
      expect(rules).toContain(`counter drop comment "cnp Admin n-${action} egress[0]"`);
    }
  });

  test("finished pods are neither subjects nor peers; an address has one owner", () => {
    const p = np("x", "p", { podSelector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }] }] });
    // A finished b shows a's address, a finished a shows b's; a second live pod shows b's too.
    const objs = [...base, p, pod("x", "old-b", "n1", "10.0.1.2", { app: "b" }, [], "Succeeded"), pod("x", "old-a", "n1", "10.0.1.3", { app: "a" }, [], "Failed"),
      pod("y", "twin", "n1", "10.0.1.3", { app: "c" }, [], "Pending")];
    const { s, m, byKind } = elementsOf(objs, "n1");
    expect(m.selected()).toEqual({ ingress: ["x/a"], egress: [] });
    expect(byKind("peers")).toEqual(["10.0.1.3"]);
    expect(byKind("subjects")).toEqual(["10.0.1.2"]);
    // One verdict per address in the dispatch map (two would be EEXIST in the kernel).
    expect(byKind("dispatch")).toEqual(["10.0.1.2 : goto ingress-np/x", "10.0.1.3 : goto ingress-np/x"]);
    expect(s.any).toBe(true);
  });

  test("comments are cut by bytes (nft keeps 128), at a character boundary, and cannot end the string", () => {
    const c = nftComment(`cnp Admin p ingress[0] ${"ü".repeat(100)}`);
    expect(Buffer.byteLength(c)).toBeLessThanOrEqual(120);
    expect(Buffer.from(c).toString("utf8")).toBe(c);
    expect(c.endsWith("ü")).toBe(true);
    expect(nftComment('a "quoted"\nname\u0007')).toBe("a 'quoted'?name?");
    const s = compilePolicy({ state: buildClusterState([...base, { kind: "ClusterNetworkPolicy", metadata: { name: "u" }, spec: {
      tier: "Admin", priority: 1, subject: { namespaces: {} }, ingress: [{ name: "名".repeat(100), action: "Deny", from: [{ namespaces: {} }] }],
    } } as KubeObject]) });
    for (const r of s.chains.get("cnp/u/ingress")!.rules) expect(Buffer.byteLength(/comment "([^"]*)"/.exec(r)?.[1] ?? "")).toBeLessThanOrEqual(128);
  });

  test("the structure does not depend on pods: a pod coming or going changes elements only", () => {
    const p = np("x", "p", { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { app: "c" } }, namespaceSelector: {} }] }] });
    const before = compilePolicy({ state: buildClusterState([...base, p]) });
    const after = compilePolicy({ state: buildClusterState([...base, p, pod("y", "e", "n3", "10.0.3.2", { app: "c" })]) });
    expect(after.hash).toBe(before.hash);
  });

  test("members kept incrementally equal members computed from scratch", () => {
    // A pseudo-random walk over pods, labels, namespaces and policies.
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const objs = new Map<string, KubeObject>();
    const policies: KubeObject[] = [
      np("x", "a-in", { podSelector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: "http" }] }] }),
      np("y", "all-eg", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: { matchLabels: { team: "t1" } } }], ports: [{ port: "http", protocol: "UDP" }] }] }),
      { kind: "ClusterNetworkPolicy", metadata: { name: "c1" }, spec: { tier: "Admin", priority: 3, subject: { pods: { namespaceSelector: { matchLabels: { team: "t1" } }, podSelector: { matchLabels: { app: "a" } } } }, ingress: [{ action: "Deny", from: [{ namespaces: { matchLabels: { team: "t2" } } }] }] } } as KubeObject,
    ];
    const incremental = new Members("n1");
    for (let step = 0; step < 300; step++) {
      const r = rnd(10);
      const ns = ["x", "y", "z"][rnd(3)]!;
      if (r < 6) {
        const name = `p${rnd(12)}`;
        const ports = rnd(2) ? [{ name: "http", containerPort: 80 + rnd(3), protocol: (rnd(2) ? "TCP" : "UDP") as "TCP" | "UDP" }] : [];
        const ip = rnd(4) ? `10.1.${rnd(3)}.${rnd(200) + 1}` : `fd00::${rnd(200) + 1}`;
        // Addresses collide now and then (a finished pod's, or two pods'), as in a real cluster.
        objs.set(`Pod/${ns}/${name}`, pod(ns, name, `n${rnd(2) + 1}`, ip, { app: ["a", "b", "c"][rnd(3)]! }, ports, ["Running", "Pending", "Succeeded", undefined][rnd(4)]));
      } else if (r < 7) objs.delete([...objs.keys()].filter((k) => k.startsWith("Pod/"))[0] ?? "");
      else if (r < 8) objs.set(`Namespace/${ns}`, { kind: "Namespace", metadata: { name: ns, labels: { team: `t${rnd(3)}` } } } as KubeObject);
      else {
        const p = policies[rnd(policies.length)]!;
        const k = `${p.kind}/${p.metadata.name}`;
        if (objs.has(k)) objs.delete(k);
        else objs.set(k, p);
      }
      const state = buildClusterState([...objs.values()]);
      const s = compilePolicy({ state });
      incremental.update(s, state);
      const fresh = new Members("n1");
      fresh.update(s, state);
      const dump = (m: Members) => Object.fromEntries([...s.sets.keys()].map((n) => [n, [...(m.elements.get(n)?.keys() ?? [])].sort()]));
      expect(dump(incremental)).toEqual(dump(fresh));
      expect(incremental.selected()).toEqual(fresh.selected());
      // And the rules those members fill agree with the evaluator on every flow.
      if (step % 20 === 19) expect(disagreements(state, { ports: [80, 81, 82] })).toEqual([]);
    }
  });

  test("address owners kept incrementally equal addressPods computed whole, through shared addresses", () => {
    let seed = 11;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const objs = new Map<string, KubeObject>();
    const claims = new AddressClaims();
    let view = new Map<string, unknown>();
    let incremental = 0;
    for (let step = 0; step < 400; step++) {
      const name = `p${rnd(10)}`;
      // Few addresses for many pods: sharing comes and goes.
      if (rnd(5)) objs.set(name, pod("x", name, "n1", `10.1.0.${rnd(12) + 1}`, {}, [], ["Running", "Pending", "Succeeded"][rnd(3)]));
      else objs.delete(name);
      const state = buildClusterState([...objs.values()]);
      const whole = addressPods(state.pods);
      const changes = claims.changes(state.pods);
      if (changes) {
        incremental++;
        for (const [k, p] of changes) {
          if (p) view.set(k, p);
          else view.delete(k);
        }
      } else view = new Map(whole);
      expect([...view.entries()].sort()).toEqual([...whole.entries()].sort());
      // Identity is kept (the members tell changes by it).
      for (const [k, p] of whole) expect(view.get(k)).toBe(p);
    }
    expect(incremental).toBeGreaterThan(20);
    expect(incremental).toBeLessThan(400);
  });

  test("scripts: the whole table, and a change that removes a policy", () => {
    const p = np("x", "p", { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }] }] });
    const { s, m } = elementsOf([...base, p], "n1");
    const whole = tableScript(POLICY_TARGET, policyTable(s), m.elements).text;
    expect(whole).toStartWith("table inet mncni-policy {}\ndelete table inet mncni-policy\ntable inet mncni-policy {");
    expect(whole).toContain(`counter comment "mncni-policy ruleset ${s.hash}"`);
    const state = buildClusterState(base);
    const none = compilePolicy({ state });
    const delta = m.update(none, state);
    const d = deltaScript(POLICY_TARGET, policyTable(s), policyTable(none), m.elements, delta).text;
    // The dispatch elements go before the chain they point at.
    expect(d.indexOf("delete element inet mncni-policy np_ingress_4")).toBeLessThan(d.indexOf("delete chain inet mncni-policy ingress-np/x"));
    expect(d).toContain("delete chain inet mncni-policy np/x/p/ingress");
    expect(d).toContain(`mncni-policy ruleset ${none.hash}`);
  });
});

test("a policy with a 253-character name gets a chain name nft accepts (under 256 bytes)", () => {
  const long = `p${"x".repeat(252)}`;
  const s = compilePolicy({ state: buildClusterState([np("some-namespace-with-a-long-name", long, { podSelector: {}, ingress: [{}] })]) });
  const names = [...s.chains.keys()].filter((n) => n.startsWith("np/"));
  expect(names.length).toBe(1);
  expect(Buffer.byteLength(names[0]!)).toBeLessThan(256);
  expect(s.chains.get("ingress-np/some-namespace-with-a-long-name")!.rules.some((r) => r.includes(`jump ${names[0]}`))).toBe(true);
});

describe("policy size (#24.9): rules grow with a policy's rules, not its peers x ports", () => {
  const peers = (n: number) => Array.from({ length: n }, (_, i) => ({ podSelector: { matchLabels: { app: `a${i}` } } }));
  const ports = (n: number) => Array.from({ length: n }, (_, i) => ({ port: 1000 + 3 * i }));
  const policy = (rules: number, nPeers: number, nPorts: number) => np("empty", "big", {
    podSelector: {}, ingress: Array.from({ length: rules }, () => ({ from: [...peers(nPeers), { ipBlock: { cidr: "192.168.0.0/16", except: ["192.168.1.0/24"] } }], ports: [...ports(nPorts), { port: 53, protocol: "UDP" }, { port: "http" }] })),
  });

  test("100 peers x 200 ports (the report's 11 KB policy: 40k rules before) is a handful of rules", () => {
    const s = compilePolicy({ state: buildClusterState([policy(1, 100, 200)]) });
    const chain = s.chains.get("np/empty/big/ingress")!.rules;
    // pods (2 families) x (tcp ports, udp ports, named) + the block (IPv4) x the same: 9.
    expect(chain.length).toBe(9);
    expect(chain.some((r) => /^ip saddr 192\.168\.0\.0\/16 ip saddr != 192\.168\.1\.0\/24 meta l4proto tcp th dport \{ 1000, 1003, /.test(r))).toBe(true);
    expect(s.refused).toEqual([]);
  });

  test("address blocks: one block with exceptions is a prefix and a negation (no interval set); several blocks one interval set", () => {
    const blocks = (from: unknown[]) => compilePolicy({ state: buildClusterState([np("empty", "b", { podSelector: {}, ingress: [{ from }] })]) }).chains.get("np/empty/b/ingress")!.rules.filter((r) => !r.includes(" log "));
    expect(blocks([{ ipBlock: { cidr: "192.168.0.0/16", except: ["192.168.1.0/24"] } }])).toEqual([expect.stringMatching(/^ip saddr 192\.168\.0\.0\/16 ip saddr != 192\.168\.1\.0\/24 counter accept /)]);
    // Overlapping exceptions are merged (an anonymous set refuses overlapping intervals).
    expect(blocks([{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16", "10.1.2.0/24", "10.3.0.0/16"] } }])).toEqual([expect.stringMatching(/^ip saddr 10\.0\.0\.0\/8 ip saddr != \{ 10\.1\.0\.0\/16, 10\.3\.0\.0\/16 \} counter accept /)]);
    // An exception that leaves one prefix is that prefix; two blocks are one interval set.
    expect(blocks([{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.128.0.0/9"] } }])).toEqual([expect.stringMatching(/^ip saddr 10\.0\.0\.0\/9 counter accept /)]);
    expect(blocks([{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.0.1.0/24"] } }, { ipBlock: { cidr: "172.16.0.0/12" } }])).toEqual([expect.stringMatching(/^ip saddr \{ 10\.0\.0\.0\/24, 10\.0\.2\.0-10\.0\.255\.255, 172\.16\.0\.0\/12 \} counter accept /)]);
  });

  test("the same rules, many times: linear in the number of rules", () => {
    const one = compilePolicy({ state: buildClusterState([policy(10, 50, 50)]) }).rules;
    const ten = compilePolicy({ state: buildClusterState([policy(100, 50, 50)]) }).rules;
    expect(ten - one).toBe(90 * 9);
  });

  test(`a policy that would still compile to more than ${MAX_POLICY_RULES} rules is refused, fail closed, and reported`, () => {
    const big = policy(600, 3, 3);
    const state = buildClusterState([pod("empty", "p", "n1", "10.0.9.2"), pod("empty", "q", "n1", "10.0.9.3"), big, np("empty", "small", { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })]);
    const s = compilePolicy({ state });
    expect(s.refused).toEqual([`NetworkPolicy empty/big is refused: it would compile to ${600 * 9 + 6} nft rules (more than ${MAX_POLICY_RULES}); until it is made smaller, the pods it selects are isolated and it allows nothing`]);
    expect(s.chains.has("np/empty/big/ingress")).toBe(false);
    expect(s.rules).toBeLessThan(100);
    // Its pods stay isolated (the other policy still allows what it allows).
    const m = new Members("n1");
    m.update(s, state);
    expect(m.selected().ingress).toEqual(["empty/p", "empty/q"]);
    const cnp = { kind: "ClusterNetworkPolicy", metadata: { name: "huge" }, spec: { tier: "Admin", priority: 1, subject: { namespaces: {} },
      egress: Array.from({ length: 2600 }, (_, i) => ({ action: "Accept", to: [{ networks: [`10.${i >> 8}.${i & 255}.0/24`, `fd00:${i}::/64`] }] })) } } as KubeObject;
    const c = compilePolicy({ state: buildClusterState([cnp]) });
    expect(c.refused[0]).toStartWith("ClusterNetworkPolicy huge is refused: it would compile to 5202 nft rules");
    expect(c.chains.get("cnp/huge/egress")!.rules.at(-1)).toBe('counter drop comment "cnp Admin huge egress refused: too many rules"');
  });
});
