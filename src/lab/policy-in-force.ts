// Before `lab check` judges flows by the policy evaluator, each node's agent must enforce the
// state the check read. `lab apply` returns once the object is written (as kubectl does); the
// agents program it after their watch shows it, which on a loaded machine can be seconds
// later. Each agent serves the fingerprint of what it last programmed policy from (/readyz
// JSON, `policy.inputs`); the check waits, bounded, until every agent serves the fingerprint
// of the check's own read, and otherwise says which node does not enforce it yet.
import { AGENT_HEALTH_PORT } from "../base/ports.ts";
import { NO_POLICY_INPUTS, policyInputs, type ClusterState } from "../cluster/index.ts";
import type { ReadyzBody } from "../obs/pod-mtu.ts";
import { netnsExecArgv, pidAlive, runAsync } from "./sh.ts";
import type { LabState, NodeState } from "./state.ts";

/**
 * How long the check waits for the agents by default: generous (a healthy agent programs a change
 * within a pass, a second or two on a loaded machine), yet short enough that a check that cannot
 * get there fails with its reason inside a test's minute, not with the test's timeout.
 */
export const POLICY_WAIT_MS = 30_000;

const POLL_MS = 200;

/** The fingerprint the node's agent serves, or why there is none (not answering, an agent that does not serve it). */
async function servedInputs(s: LabState, node: NodeState): Promise<{ inputs?: string; error?: string }> {
  const r = await runAsync(netnsExecArgv(node.ns, [...s.options.selfCmd, "lab", "_http", `http://127.0.0.1:${AGENT_HEALTH_PORT}/readyz?format=json`]), { timeoutMs: 5000 });
  const out = r.stdout.trim();
  try {
    // `_http` prints the status code first; a not-ready agent (503) still says what it programmed.
    const body = JSON.parse(out.slice(out.indexOf(" ") + 1)) as ReadyzBody;
    return body.policy ? { inputs: body.policy.inputs } : { error: "it has not programmed policy yet" };
  } catch {
    return { error: `no answer on /readyz: ${out || r.stderr.trim() || `exit ${r.code}`}` };
  }
}

/**
 * Waits until every node's agent enforces `state`'s policies (none, when it has none: an agent
 * still enforcing a deleted policy is waited for too). Returns one problem per node that does
 * not within `timeoutMs`, or whose agent is not running. `onWait` hears once per node that it
 * is waited for. A lab without agents (static wiring) has nothing to wait for.
 */
export interface PolicyWait {
  timeoutMs?: number;
  onWait?: (msg: string) => void;
}

export async function waitPolicyInForce(s: LabState, state: ClusterState, opts: PolicyWait = {}): Promise<string[]> {
  if (s.options.wiring !== "agent") return [];
  const want = policyInputs(state);
  const deadline = Date.now() + (opts.timeoutMs ?? POLICY_WAIT_MS);
  const one = async (node: NodeState): Promise<string | undefined> => {
    let told = false;
    let last: { inputs?: string; error?: string } = {};
    for (;;) {
      // A node without its agent keeps forwarding (lab tests rely on it): only policies it cannot vouch for make it a problem.
      if (node.agentPid !== undefined && !pidAlive(node.agentPid)) {
        return want === NO_POLICY_INPUTS ? undefined : `${node.name}: its agent (pid ${node.agentPid}) is not running: the policies the check expects may not be in force there`;
      }
      last = await servedInputs(s, node);
      if (last.inputs === want) return undefined;
      if (Date.now() >= deadline) break;
      if (!told) {
        opts.onWait?.(`waiting for the agent of ${node.name} to program the policies the check reads (${last.error ?? `it serves ${last.inputs}, the check read ${want}`})`);
        told = true;
      }
      await Bun.sleep(POLL_MS);
    }
    const why = last.error ?? `it serves policy inputs ${last.inputs}, the check read ${want}`;
    return `${node.name}: its agent does not enforce the policies the check reads yet (${why}): the evaluator's verdicts may not hold there`;
  };
  const problems = await Promise.all(s.nodes.map(one));
  return problems.filter((p) => p !== undefined);
}
