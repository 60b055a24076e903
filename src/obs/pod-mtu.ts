// The pod MTU a node gives new pods (its conflist's) and why, in the agent's words: the agent
// computes it from the underlay and its routing backend (src/agent/routing/mtu.ts podMTUWhy)
// and serves it on /readyz; `mncni status` and `mncni inspect` show it beside the MTU.
/** The pod MTU the conflist gives new pods, and why (the agent's account, when it answers and agrees). */
export interface PodMTUView {
  mtu: number;
  /** "1450 = 1500 underlay − 50 VXLAN headroom kept by auto (...)": what the agent computed it from. */
  why?: string;
  /** Why there is no why: the agent did not answer, or it says another MTU than the conflist's. */
  whyMissing?: string;
}

/** The agent's /readyz JSON: readiness and, from agents that compute one, the pod MTU and why. */
export interface ReadyzBody {
  ready: boolean;
  reasons: string[];
  warnings?: string[];
  podMTU?: { mtu: number; why?: string };
  /** The fingerprint (src/cluster/policy-inputs.ts) of the state the policies in force were programmed from. */
  policy?: { inputs: string };
}

/** The conflist's pod MTU with the agent's why, when the agent says the same MTU. */
export function podMTUView(conflistMTU: number | undefined, agent: { podMTU?: ReadyzBody["podMTU"]; error?: string } | undefined): PodMTUView | undefined {
  if (conflistMTU === undefined) return undefined;
  const a = agent?.podMTU;
  if (a?.why && a.mtu === conflistMTU) return { mtu: conflistMTU, why: a.why };
  const whyMissing = a ? (a.mtu !== conflistMTU ? `the agent computes ${a.mtu}: it has not rewritten the conflist yet` : "the agent does not say why") : `no answer from the agent${agent?.error ? ` (${agent.error})` : ""}`;
  return { mtu: conflistMTU, whyMissing };
}

/** The agent's /readyz as JSON; an error naming the address when it does not answer. */
export async function fetchReadyz(addr: string, timeoutMs = 2000): Promise<ReadyzBody> {
  const r = await fetch(`http://${addr}/readyz?format=json`, { signal: AbortSignal.timeout(timeoutMs) });
  return (await r.json()) as ReadyzBody;
}

