// `lab check`: the Kubernetes network model, tested with real TCP. Every pod reaches every pod
// without NAT, every node reaches every pod, every pod reaches the external host as its node.
// A dual-stack lab runs every pair over both families, with the same expectations. Between
// the first pods of every two nodes, a ping of the full pod MTU with DF set must pass (through
// the tunnel when the path is one) and one byte more must be refused: the MTU is right.
// When the lab's manifests hold policies, the expectation of each TCP pair is the policy
// evaluator's (src/cluster/evaluate-policy.ts): a pair it denies must be unreachable; a pod's
// own node and the pod itself always reach it; MTU pings run only between pods no policy selects (ICMP is
// not what policies are written for). The lab's Services are checked too (service-check.ts).
import { describeDecider, PolicyEvaluator, type Decider } from "../cluster/index.ts";
import { readClusterState } from "../obs/policy-view.ts";
import { labSourceSpec } from "./control-plane.ts";
import { ECHO_PORT, manifestsDir, plan } from "./topology.ts";
import { k8sPodName } from "./write-manifests.ts";
import { DEFINITIVE_ERRNOS, type ProbeResult } from "./echo.ts";
import { netnsExecArgv, pool, run, runAsync } from "./sh.ts";
import { allPods, families, labPodRef, nodeAddressOf, type LabState, type PodState } from "./state.ts";
import { familyOf } from "../net/ip.ts";
import { checkServices } from "./service-check.ts";
import { waitPolicyInForce, type PolicyWait } from "./policy-in-force.ts";
import type { CheckKind, CheckResult } from "./check-result.ts";

export type { CheckKind, CheckResult } from "./check-result.ts";
import { listServices } from "./service-list.ts";



export interface CheckReport {
  ok: boolean;
  passed: number;
  failed: number;
  /** Pairs that failed the first pass and passed the second. */
  retried: number;
  ms: number;
  results: CheckResult[];
  /** How many policies are in force (their verdicts are the expectations), and MTU pairs left out for them. */
  policies?: { count: number; mtuSkipped: number };
  /** Why the lab's Services were not checked (policies in force decide what may pass through them). */
  servicesSkipped?: string;
  /** Why the check fails besides its failed results: it checked nothing, the lab is incomplete, an agent does not enforce what was read. */
  problems: string[];
  /** How long the check waited for the agents to enforce the policy state it read (policy-in-force.ts), before probing. */
  policyWaitMs: number;
}

interface Target {
  label: string;
  ip: string;
  family: 4 | 6;
  kind: CheckKind;
  expected?: string;
  deniedBy?: string;
}

interface Source {
  label: string;
  node: string;
  netns: string;
  targets: Target[];
}

const describe = (d?: Decider) => (d ? describeDecider(d) : "a policy");

/**
 * The policies in the lab's source (the agents' view), or undefined when there are none; and
 * why some node may not enforce them yet (its agent has not programmed that state: the check
 * waits for it first, bounded, policy-in-force.ts).
 */
async function policyView(s: LabState, wait: PolicyWait): Promise<{ policies?: { ev: PolicyEvaluator; count: number }; notInForce: string[]; waitedMs: number }> {
  const state = await readClusterState(labSourceSpec(s, manifestsDir(s.name)));
  const t0 = performance.now();
  const notInForce = await waitPolicyInForce(s, state, wait);
  const waitedMs = Math.round(performance.now() - t0);
  const count = state.networkPolicies.size + state.clusterNetworkPolicies.size;
  return { ...(count ? { policies: { ev: new PolicyEvaluator(state), count } } : {}), notInForce, waitedMs };
}

/** The lab's name of a pod in the rows (node1/pod2; node1/z/web when the node has two webs). */
const podRef = (s: LabState, p: PodState) => labPodRef(s.nodes.find((n) => n.name === p.node)!, p);

const hostPort = (ip: string) => (ip.includes(":") ? `[${ip}]:${ECHO_PORT}` : `${ip}:${ECHO_PORT}`);

/** Marks the targets the policies deny (TCP to the echo port); a pod's own node is never denied. */
function withPolicies(s: LabState, srcs: Source[], ev: PolicyEvaluator): Source[] {
  const pods = allPods(s);
  const podOf = (label: string) => pods.find((p) => podRef(s, p) === label);
  const key = (p: PodState) => `${p.namespace}/${k8sPodName(p)}`;
  return srcs.map((src) => {
    const from = podOf(src.label);
    return {
      ...src,
      targets: src.targets.map((t) => {
        const to = podOf(t.label);
        // The pod's own node, and a pod to itself (loopback): not forwarded, never judged.
        if ((!from && to?.node === src.node) || (from && from === to)) return t;
        const fromIP = from ? from.ips.find((ip) => familyOf(ip) === t.family) : nodeAddressOf(s.nodes.find((n) => n.name === src.node)!, t.family);
        const v = ev.evaluate({
          src: from ? { pod: key(from), ...(fromIP ? { ip: fromIP } : {}) } : { ip: fromIP ?? "" },
          dst: to ? { pod: key(to), ip: t.ip } : { ip: t.ip },
          port: ECHO_PORT,
          protocol: "TCP",
        });
        return v.allowed ? t : { ...t, deniedBy: describe(v.by) };
      }),
    };
  });
}

function sources(s: LabState): Source[] {
  const pods = allPods(s);
  const podTargets = pods.flatMap((p) => p.ips.map((ip) => ({ label: podRef(s, p), ip, family: familyOf(ip) })));
  const out: Source[] = [];
  for (const node of s.nodes) {
    for (const pod of node.pods) {
      out.push({
        label: podRef(s, pod),
        node: node.name,
        netns: pod.ns,
        targets: [
          ...podTargets.map((t) => ({ ...t, kind: "pod-pod" as const, expected: pod.ips.find((ip) => familyOf(ip) === t.family) })),
          ...families(s).map((family) => ({ label: "ext", ip: plan(family).external.host, family, kind: "pod-ext" as const, expected: nodeAddressOf(node, family) })),
        ],
      });
    }
    out.push({ label: node.name, node: node.name, netns: node.ns, targets: podTargets.map((t) => ({ ...t, kind: "node-pod" as const })) });
  }
  return out;
}

async function probeFrom(s: LabState, src: Source, timeoutMs: number): Promise<CheckResult[]> {
  const targets = src.targets.map((t) => hostPort(t.ip));
  const r = await runAsync(netnsExecArgv(src.netns, [...s.options.selfCmd, "lab", "_probe", "--json", "--timeout", String(timeoutMs), ...targets]), {
    timeoutMs: timeoutMs * 3 + 10_000,
  });
  let answers: ProbeResult[] = [];
  try {
    answers = JSON.parse(r.stdout) as ProbeResult[];
  } catch {
    const error = `probe failed: ${(r.stderr || r.stdout).trim().slice(0, 200) || `exit ${r.code}`}`;
    answers = targets.map((target) => ({ target, ok: false, error, ms: 0 }));
  }
  return src.targets.map((t, i) => {
    const a = answers[i]!;
    const base = { kind: t.kind, from: src.label, to: t.label, target: a.target, family: t.family, reachable: a.ok, seen: a.seen, ms: a.ms, ...(a.errno ? { errno: a.errno } : {}) };
    if (t.deniedBy) return { ...base, deniedBy: t.deniedBy, ok: !a.ok, ...(a.ok ? { error: `reached, but ${t.deniedBy} denies it` } : {}) };
    const natOk = t.expected === undefined || a.seen === t.expected;
    return {
      ...base,
      ok: a.ok && natOk,
      expected: t.expected,
      error: a.ok && !natOk ? `seen as ${a.seen}, expected ${t.expected}` : a.error,
    };
  });
}

/**
 * All namespaces share the kernel's one ARP table (gc_thresh3 = 1024 entries, settable only
 * in the root namespace). Pods of a node learn each other during the check; forgetting them
 * once the node's sources are done keeps a 10x10 lab under that limit.
 */
function forgetNeighbours(netnsList: string[]): void {
  for (const n of netnsList) run(["ip", "-n", n, "neigh", "flush", "all"], { allowFail: true });
}

/** Neighbour entries the first pass may add at once: half the kernel's hard limit, the rest for what the lab keeps. */
const NEIGHBOUR_BUDGET = 512;

/**
 * The nodes in groups whose sources can probe at the same time: a node's pods learn each other
 * and their gateway (p x (p + 2)), its namespace its pods and peers. A 3x2 lab is one group
 * (every source at once); a 10x10 lab three or four nodes at a time.
 */
function nodeGroups(s: LabState): LabState["nodes"][] {
  const cost = (n: LabState["nodes"][number]) => n.pods.length * (n.pods.length + 2) + n.pods.length + s.nodes.length;
  const groups: LabState["nodes"][] = [];
  let used = Infinity;
  for (const n of s.nodes) {
    if (used + cost(n) > NEIGHBOUR_BUDGET) {
      groups.push([]);
      used = 0;
    }
    groups.at(-1)!.push(n);
    used += cost(n);
  }
  return groups;
}

/** Connections the first pass keeps in flight at once: what a 10x10 lab had (4 sources of 111 targets). */
const CONNECT_BUDGET = 500;

/**
 * How many sources probe at once: every source of a small lab (a timeout then costs one
 * timeout, not one per wave), and as before on a large one, where more at once would only
 * crowd the shared CPUs and the echo servers into timeouts of their own.
 */
function firstPassWidth(srcs: Source[], parallel: number): number {
  const widest = Math.max(1, ...srcs.map((x) => x.targets.length));
  return Math.max(parallel, Math.min(srcs.length, 16, Math.floor(CONNECT_BUDGET / widest)));
}

/**
 * The first pass's failures that a second try cannot change: the kernel refused at once
 * (ENETUNREACH...), or the failure is systematic across nodes: a target no source of another
 * node reached, or a source that reached no target on another node (at least two each). That
 * is a broken pod, route or node, not the slow first connection between two pods of one node
 * that the second pass is for (that one is sporadic, and within a node).
 */
function finalFailures(results: CheckResult[]): Set<CheckResult> {
  const failed = results.filter((r) => !r.ok);
  const final = new Set(failed.filter((r) => r.errno !== undefined && DEFINITIVE_ERRNOS.has(r.errno)));
  const nodeOf = (label: string) => label.split("/")[0]!;
  const across = results.filter((r) => nodeOf(r.from) !== nodeOf(r.to));
  const dead = (key: (r: CheckResult) => string) => {
    const m = new Map<string, { n: number; failed: number }>();
    for (const r of across) {
      const t = m.get(key(r)) ?? { n: 0, failed: 0 };
      t.n++;
      if (!r.ok) t.failed++;
      m.set(key(r), t);
    }
    return (r: CheckResult) => {
      const t = m.get(key(r));
      return t !== undefined && t.n >= 2 && t.failed === t.n;
    };
  };
  const deadTarget = dead((r) => r.target);
  const deadSource = dead((r) => r.from);
  for (const r of failed) if (nodeOf(r.from) !== nodeOf(r.to) && (deadTarget(r) || deadSource(r))) final.add(r);
  return final;
}

/**
 * One pass over every source (nodes in groups that stay under the neighbour-table limit, all
 * sources of a group at once), then a second pass (with 3x the timeout) over what failed
 * sporadically: on larger labs (10x10) the first connection between two pods of a node
 * sometimes waits several seconds for ARP resolution (seen as `probes 4-6` in `ip -s neigh`;
 * cause not found yet). A pair fails only when it fails twice; `retried` counts the pairs that
 * needed the second pass. A failure a second try cannot change (finalFailures: the kernel's
 * ENETUNREACH, a target nobody reached, a source that reached nothing) is not tried again: the
 * check fails fast, with the kernel's words. The MTU pings run beside both passes.
 */
export async function check(s: LabState, opts: { timeoutMs?: number; parallel?: number; policyWait?: PolicyWait } = {}): Promise<CheckReport> {
  const started = performance.now();
  const timeout = opts.timeoutMs ?? 2000;
  const { policies, notInForce, waitedMs } = await policyView(s, opts.policyWait ?? {});
  const all = policies ? withPolicies(s, sources(s), policies.ev) : sources(s);
  const mtuRun = mtuProbes(s, policies?.ev);
  const results: CheckResult[] = [];
  for (const group of nodeGroups(s)) {
    const mine = all.filter((src) => group.some((n) => n.name === src.node));
    results.push(...(await pool(mine, firstPassWidth(mine, opts.parallel ?? 4), (src) => probeFrom(s, src, timeout))).flat());
    if (group.length < s.nodes.length) forgetNeighbours(group.flatMap((n) => n.pods.map((p) => p.ns)));
  }
  const final = finalFailures(results);
  for (const r of final) r.final = true;
  const failedKeys = new Set(results.filter((r) => !r.ok && !final.has(r)).map((r) => `${r.from}>${r.target}`));
  const again = all
    .map((src) => ({ ...src, targets: src.targets.filter((t) => failedKeys.has(`${src.label}>${hostPort(t.ip)}`)) }))
    .filter((src) => src.targets.length > 0);
  const [second, mtu] = await Promise.all([
    // Few sources and few targets each: all of them wait at once (up to 16), not in waves of the timeout.
    pool(again, Math.max(opts.parallel ?? 4, Math.min(again.length, 16)), (src) => probeFrom(s, src, timeout * 3)).then((r) => r.flat()),
    mtuRun,
  ]);
  let retried = 0;
  for (const r of second) {
    const i = results.findIndex((x) => x.from === r.from && x.target === r.target);
    if (r.ok) retried++;
    results[i] = r;
  }
  results.push(...mtu.results);
  // Through the Services (none: nothing to do). With policies in force their verdicts decide, which this part does not evaluate.
  const svcCount = policies ? (await listServices(s)).length : 0;
  if (!policies) results.push(...(await checkServices(s, timeout)));
  const failed = results.filter((r) => !r.ok).length;
  // A check that checked nothing, or a lab whose `up` did not finish, proves nothing: it fails.
  const problems = [
    ...(results.length === 0 ? ["nothing was checked: the lab has no pods (add some with `mncni lab pod add`)"] : []),
    ...(s.complete === false ? [`lab "${s.name}" is INCOMPLETE: its \`up\` was interrupted or is still running`] : []),
    ...notInForce,
  ];
  return {
    ok: failed === 0 && problems.length === 0, passed: results.length - failed, failed, retried, ms: Math.round(performance.now() - started), results, problems, policyWaitMs: waitedMs,
    ...(policies ? { policies: { count: policies.count, mtuSkipped: mtu.skipped } } : {}),
    ...(svcCount ? { servicesSkipped: `${svcCount} Service(s) not checked: policies are in force` } : {}),
  };
}

/** The pod's interface MTU (what the conflist gave it). */
async function podMTU(s: LabState, podNs: string): Promise<number | undefined> {
  const r = await runAsync(netnsExecArgv(podNs, ["ip", "-j", "link", "show", "eth0"]), { timeoutMs: 5000 });
  try {
    return (JSON.parse(r.stdout) as { mtu: number }[])[0]?.mtu;
  } catch {
    return undefined;
  }
}

const IP_ICMP_HEADERS = { 4: 28, 6: 48 } as const;

/** What the kernel told ping ("connect: Network is unreachable", "message too long, mtu=1350"), or that no reply came. */
function pingSaid(out: string): string {
  const said = out.split("\n").map((l) => l.trim()).find((l) => /unreachable|message too long|frag needed|packet too big|connect:|sendmsg:|invalid argument|not permitted/i.test(l));
  return said ?? "no reply";
}

/** Full-MTU DF pings between the first pods of every two nodes, and one byte more refused. */
async function mtuProbes(s: LabState, ev?: PolicyEvaluator): Promise<{ results: CheckResult[]; skipped: number }> {
  const firsts = s.nodes.map((n) => n.pods[0]).filter((p) => p !== undefined);
  const all = firsts.flatMap((a) => firsts.filter((b) => b.node !== a.node).flatMap((b) => b.ips.map((ip) => ({ a, b, ip, family: familyOf(ip) }))));
  // A pair an end of which some policy selects is left out: whether ICMP passes depends on rules written for ports.
  const key = (p: PodState) => `${p.namespace}/${k8sPodName(p)}`;
  const free = (x: (typeof all)[number]) => {
    if (!ev) return true;
    const v = ev.evaluate({ src: { pod: key(x.a) }, dst: { pod: key(x.b), ip: x.ip }, port: ECHO_PORT, protocol: "TCP" });
    return !v.egress.by && !v.ingress.by;
  };
  const pairs = all.filter(free);
  return { results: await mtuPings(s, pairs), skipped: all.length - pairs.length };
}

async function mtuPings(s: LabState, pairs: { a: PodState; b: PodState; ip: string; family: 4 | 6 }[]): Promise<CheckResult[]> {
  const firsts = [...new Set(pairs.map((x) => x.a))];
  const mtus = new Map(await Promise.all(firsts.map(async (p) => [p.ns, await podMTU(s, p.ns)] as const)));
  return pool(pairs, 4, async ({ a, b, ip, family }): Promise<CheckResult> => {
    const started = performance.now();
    const mtu = mtus.get(a.ns);
    const base = { kind: "pod-mtu" as const, from: podRef(s, a), to: podRef(s, b), family, reachable: false };
    if (!mtu) return { ...base, target: ip, ok: false, error: "cannot read the pod's MTU", ms: 0 };
    const size = mtu - IP_ICMP_HEADERS[family];
    const ping = (n: number) => runAsync(netnsExecArgv(a.ns, ["ping", "-c", "1", "-W", "2", "-M", "do", "-s", String(n), ip]), { timeoutMs: 10_000 });
    // Side by side: a lost full-size packet costs ping's wait once, not before the refused one too.
    const [full, over] = await Promise.all([ping(size), ping(size + 1)]);
    const overText = over.stdout + over.stderr;
    const refused = over.code !== 0 && /message too long|Frag needed|Packet too big/i.test(overText);
    const error = full.code !== 0 ? `${mtu}-byte DF packet lost: ${pingSaid(full.stdout + full.stderr)}` : !refused ? `${mtu + 1}-byte DF packet not refused: ${overText.trim().split("\n").pop()}` : undefined;
    return { ...base, target: `${ip} (${mtu} B DF)`, reachable: full.code === 0, ok: !error, ...(error ? { error } : {}), ms: Math.round(performance.now() - started) };
  });
}
