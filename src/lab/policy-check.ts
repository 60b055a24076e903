// `lab check` in a lab that serves the policy ports: what every pod should reach on ports 80
// and 81 over TCP, UDP and SCTP under the policies in force (the evaluator, from the API
// specifications) against what it reaches (real probes from every pod, in parallel).
import { describeDecider, PolicyEvaluator, type Decider, type Protocol } from "../cluster/index.ts";
import { readClusterState } from "../obs/policy-view.ts";
import { waitPolicyInForce, type PolicyWait } from "./policy-in-force.ts";
import { labSourceSpec } from "./control-plane.ts";
import { k8sPodName } from "./write-manifests.ts";
import { POLICY_PORTS, PROBE_PROTOCOLS, probeFrom, type PortProbe, type ProbeOutcome } from "./policy-ports.ts";
import type { LabState, PodState } from "./state.ts";
import { manifestsDir } from "./topology.ts";

export interface PolicyCell {
  src: string;
  dst: string;
  port: number;
  protocol: Protocol;
  expected: "allowed" | "denied";
  observed: ProbeOutcome;
  /** The policy that decided the expectation, "kind namespace/name rule (tier)". */
  by?: string;
}

export interface PolicyReport {
  ok: boolean;
  pods: string[];
  /** Protocols probed; SCTP is left out (and said so) when the kernel has no SCTP. */
  protocols: Protocol[];
  notes: string[];
  /** Policies the manifests source refused (they are not in force). */
  invalid: string[];
  cells: PolicyCell[];
  mismatches: PolicyCell[];
}

const podKey = (p: PodState) => `${p.namespace}/${k8sPodName(p)}`;
const describe = (d?: Decider) => (d ? describeDecider(d) : undefined);

export async function policyCheck(s: LabState, opts: { timeoutMs: number; protocols?: Protocol[]; policyWait?: PolicyWait }): Promise<PolicyReport> {
  // The same view the agents have: the lab's API server, or the manifests directory, through their source.
  const state = await readClusterState(labSourceSpec(s, manifestsDir(s.name)));
  // Judged by the evaluator only once the agents enforce what was read (or it fails saying which does not).
  const notInForce = await waitPolicyInForce(s, state, opts.policyWait ?? {});
  const ev = new PolicyEvaluator(state);
  const pods = s.nodes.flatMap((n) => n.pods).filter((p) => p.ips.length > 0);
  const v4 = (p: PodState) => p.ips.find((ip) => !ip.includes(":")) ?? p.ips[0]!;
  const protocols = opts.protocols ?? [...PROBE_PROTOCOLS];
  const plans = pods.map((src) => {
    const cells: PolicyCell[] = [];
    const targets: PortProbe[] = [];
    for (const dst of pods) {
      // A pod reaching itself does not pass the bridge or the routes: not what policy is about.
      if (dst === src) continue;
      for (const port of POLICY_PORTS) for (const protocol of protocols) {
        const v = ev.evaluate({ src: { pod: podKey(src), ip: v4(src) }, dst: { pod: podKey(dst), ip: v4(dst) }, port, protocol });
        cells.push({ src: podKey(src), dst: podKey(dst), port, protocol, expected: v.allowed ? "allowed" : "denied", observed: "denied", ...(v.by ? { by: describe(v.by) } : {}) });
        targets.push({ host: v4(dst), port, protocol });
      }
    }
    return { src, cells, targets };
  });
  // A denied probe costs its whole timeout: every pod probes at once, and each probes all its targets at once.
  const outcomes = await Promise.all(plans.map((p) => probeFrom(s, p.src, p.targets, opts.timeoutMs)));
  const again = await probeAgain(s, plans, outcomes, opts.timeoutMs);
  const cells = plans.flatMap((p, i) => p.cells.map((c, j) => ({ ...c, observed: outcomes[i]![j]! })));
  const notes: string[] = [...notInForce];
  if (again) notes.push(`${again} allowed flows answered only when probed again (a loaded machine, or a lost first packet)`);
  const unavailable = cells.filter((c) => c.observed === "unavailable");
  if (unavailable.length) notes.push(`SCTP unavailable in this kernel (no sctp module): ${unavailable.length} SCTP probes not judged`);
  const mismatches = cells.filter((c) => c.observed !== "unavailable" && c.observed !== c.expected);
  return {
    ok: mismatches.length === 0 && notInForce.length === 0,
    pods: pods.map(podKey),
    protocols,
    notes,
    invalid: state.invalid.map((i) => i.error),
    cells,
    mismatches,
  };
}

/**
 * "Denied" is a probe that got no answer in time, which a loaded machine or one lost packet
 * can fake; "allowed" is an answer, never an artefact. So a flow the policies allow that got
 * no answer is probed again (per source, only those, with 3x the timeout) before it counts as
 * a mismatch, as the reachability check's second pass does. Updates outcomes; how many
 * answered the second time.
 */
async function probeAgain(s: LabState, plans: { src: PodState; cells: PolicyCell[]; targets: PortProbe[] }[], outcomes: ProbeOutcome[][], timeoutMs: number): Promise<number> {
  let answered = 0;
  await Promise.all(plans.map(async (p, i) => {
    const idx = p.cells.flatMap((c, j) => (c.expected === "allowed" && outcomes[i]![j] === "denied" ? [j] : []));
    if (idx.length === 0) return;
    const second = await probeFrom(s, p.src, idx.map((j) => p.targets[j]!), timeoutMs * 3);
    idx.forEach((j, k) => {
      if (second[k] === "allowed") answered++;
      outcomes[i]![j] = second[k]!;
    });
  }));
  return answered;
}

/** One truth table per port and protocol: rows are sources, columns destinations. */
