// Pods this agent has attached (served ADDs) that the cluster state does not show with their
// addresses yet: the API reports a pod's IPs only after its ADD answered, but its policy must
// be in force before. Their addresses are laid over the state until it catches up.
import type { ClusterState, PodInfo } from "../../cluster/types.ts";

/** How long an attached pod the state never shows is remembered (deleted before it was reported). */
const FORGET_MS = 10 * 60_000;

export class AttachedPods {
  private readonly pods = new Map<string, { ips: string[]; at: number }>();

  remember(namespace: string, name: string, ips: string[], now = Date.now()): void {
    this.pods.set(`${namespace}/${name}`, { ips, at: now });
  }

  /** The state with the remembered pods' addresses (and this node) on them. */
  overlay(state: ClusterState, nodeName: string, now = Date.now()): ClusterState {
    if (this.pods.size === 0) return state;
    let pods: Map<string, PodInfo> | undefined;
    for (const [key, { ips, at }] of this.pods) {
      const known = state.pods.get(key);
      if ((known && known.podIPs.length > 0) || now - at > FORGET_MS) {
        this.pods.delete(key);
        continue;
      }
      pods ??= new Map(state.pods);
      const [namespace, name] = key.split("/") as [string, string];
      // Not in the state at all: no labels known, so only policies selecting every pod of its
      // namespace apply; the pod stays held until they are (unlabelledIPs).
      pods.set(key, { namespace, name, labels: {}, namedPorts: [], hostNetwork: false, ...known, nodeName, podIPs: ips });
    }
    return pods ? { ...state, pods } : state;
  }

  /**
   * Addresses of remembered pods the state does not know at all: their labels are unknown, so
   * label-specific policies cannot have been applied to them; they stay held (fail closed).
   */
  unlabelledIPs(state: ClusterState): string[] {
    return [...this.pods].filter(([key]) => !state.pods.has(key)).flatMap(([, p]) => p.ips);
  }
}
