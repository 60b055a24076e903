// Agent wiring: one `mncni agent` per node, inside the node namespace, reading the lab's
// manifests directory. The agent installs the plugin, programs routes and masquerade, and
// writes the conflist once it can serve ADD; the lab only waits for it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { describeDiff, routeDiff } from "./expected-routes.ts";
import { firstConfFile } from "./executor.ts";
import { netnsExecArgv, pidAlive, runAsync, spawnDetached, stopProcess, waitFor } from "./sh.ts";
import type { LabState, NodeState } from "./state.ts";
import { manifestsDir, nodePaths } from "./topology.ts";
import type { NodeWiring } from "./node-wiring.ts";
import { agentKubeconfig, onKubernetes } from "./control-plane.ts";
import { AGENT_HEALTH_PORT } from "../base/ports.ts";
import { LAB_AGENT_WAIT_MS } from "./waits.ts";


function agentArgv(s: LabState, node: NodeState): string[] {
  const p = nodePaths(s.name, node.name);
  if (!s.options.binary) throw new Error("cannot start agent: no mncni executable (pass --binary)");
  return netnsExecArgv(node.ns, [
    s.options.binary, "agent",
    "--node-name", node.name,
    // Its own token on the kubernetes source, as a DaemonSet's pod has its service account's.
    "--source", onKubernetes(s) ? `kubernetes:${agentKubeconfig(s, node.name)}` : `dir:${manifestsDir(s.name)}`,
    "--cni-conf-dir", p.confDir,
    "--cni-bin-dir", p.binDir,
    "--mode", s.options.mode,
    "--routing", s.options.routing,
    "--cluster-cidr", [s.options.clusterCidr, ...(s.options.clusterCidr6 ? [s.options.clusterCidr6] : [])].join(","),
    "--ipam-data-dir", p.ipamDir,
    "--cni-log-file", p.cniLog,
    "--cni-socket", p.cniSocket,
    "--resync", "2",
    "--log-file", p.agentLog,
    // The lab proxies its Services (docs/services.md): no kube-proxy here.
    "--service-proxy",
    ...(s.options.sandboxGcGrace !== undefined ? ["--sandbox-gc-grace", String(s.options.sandboxGcGrace)] : []),
    ...(s.options.fastPath ? ["--fast-path", "on"] : []),
  ]);
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Starts the node's agent (again: after a kill, to test restarts) and records its PID. */
export function startAgent(s: LabState, node: NodeState): number {
  const p = nodePaths(s.name, node.name);
  for (const d of [p.confDir, p.binDir, p.ipamDir]) mkdirSync(d, { recursive: true });
  const pid = spawnDetached(agentArgv(s, node), `${p.agentLog}.out`);
  node.agentPid = pid;
  writeFileSync(p.agentPid, `${pid}\n`);
  return pid;
}

/** Polls the agent's /readyz inside the node until it answers 2xx. */
export async function waitAgentReady(s: LabState, node: NodeState): Promise<void> {
  const deadline = Date.now() + LAB_AGENT_WAIT_MS;
  let last = "";
  while (Date.now() < deadline) {
    const r = await runAsync(netnsExecArgv(node.ns, [...s.options.selfCmd, "lab", "_http", `http://127.0.0.1:${AGENT_HEALTH_PORT}/readyz`]), { timeoutMs: 5000 });
    if (r.code === 0) return;
    last = r.stdout.trim();
    if (node.agentPid && !pidAlive(node.agentPid)) break;
    await Bun.sleep(100);
  }
  throw new Error(`cannot get agent of node "${node.name}" ready: /readyz answered "${last}"; last log lines:\n${tail(nodePaths(s.name, node.name).agentLog)}`);
}

export const agentWiring: NodeWiring = {
  kind: "agent",

  async start(s, node) {
    const p = nodePaths(s.name, node.name);
    const pid = startAgent(s, node);
    await waitFor(
      `the agent of node "${node.name}" to write its CNI config`,
      () => {
        if (!pidAlive(pid)) {
          throw new Error(`cannot start agent on node "${node.name}": exited; last log lines:\n${tail(`${p.agentLog}.out`)}\n${tail(p.agentLog)}`);
        }
        return firstConfFile(p.confDir) !== null && existsSync(p.binDir);
      },
      LAB_AGENT_WAIT_MS,
    );
  },

  async converge(s) {
    let last = "";
    await waitFor(
      `agents to converge ${s.options.routing} routes`,
      () => {
        last = s.nodes.map((n) => ({ n, d: describeDiff(routeDiff(s, n)) })).filter((x) => x.d).map((x) => `${x.n.name}: ${x.d}`).join("; ");
        return last === "";
      },
      LAB_AGENT_WAIT_MS,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message} (${last})`);
    });
  },

  async stop(s, node) {
    if (node.agentPid) await stopProcess(node.agentPid, nodePaths(s.name, node.name).dir);
    node.agentPid = undefined;
  },
};
