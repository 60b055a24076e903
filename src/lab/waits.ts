// How long the lab waits for a node's control plane to converge (a controller to give it a
// pod CIDR, its agent to write the conflist and turn ready, the agent to program an object)
// before `up`, `node add` or `apply` give up. kubelet waits for the CNI config without end;
// the lab needs an end, but one long enough for a machine that is busy (a lab on the
// Kubernetes source starts an API server, two controllers with leader election and an agent
// per node: at load 15 on two cores, 20 s was seen to run out). MNCNI_LAB_AGENT_TIMEOUT_MS
// overrides it (tests that expect a failure shorten it).
export const LAB_AGENT_WAIT_MS = Number(process.env.MNCNI_LAB_AGENT_TIMEOUT_MS ?? 60_000);
