// The page's data beside an agent (`mncni ui` on a node): the cluster from the agent's own
// source (every node and pod, the policies), this node's verdict log, health and routes, and
// explain from this node (its pods and namespace; a destination anywhere). docs/ui.md says why
// the UI runs beside each agent rather than as an aggregator of every agent's flows.
import { openSource, type ClusterSource } from "../cluster/index.ts";
import type { ClusterState } from "../cluster/types.ts";
import type { NodeView } from "../cni/node-view.ts";
import { collectAttachments } from "../obs/attachments.ts";
import { explainPacket } from "../obs/explain-packet.ts";
import { nodeEndpoint, nodePlaces } from "../obs/explain-places.ts";
import type { Explanation } from "../obs/explain.ts";
import { followFlows, ownNodeNames, withNodeNames } from "../obs/flows.ts";
import { nodeStatus } from "../obs/status.ts";
import { uiPolicies } from "./policies.ts";
import { uiServices } from "./services.ts";
import type { UiExplainRequest, UiNode, UiSnapshot } from "./model.ts";
import { FOLLOW_MS, type UiFlowRecord, type UiSource } from "./source.ts";

export interface NodeSourceOptions {
  view: NodeView;
  /** The agent's --source ("kubernetes", "dir:/path"); none: this node's pods only. */
  source?: string;
  /** The agent's --flow-log. */
  flowLog: string;
  /** Read Services and EndpointSlices too: the agent's identity may list them only with --service-proxy (its RBAC). */
  services?: boolean;
}

export class NodeSource implements UiSource {
  private cluster?: ClusterSource;
  private started?: Promise<void>;

  constructor(private readonly o: NodeSourceOptions) {
    if (o.source) {
      this.cluster = openSource(o.source, { services: o.services === true });
      this.started = this.cluster.start();
    }
  }

  private async clusterState(): Promise<{ state?: ClusterState; problem?: string }> {
    if (!this.cluster) return { problem: "no --source: only this node's pods, no policies" };
    try {
      await this.started;
      const snap = this.cluster.snapshot();
      return { state: snap.state, ...(snap.stale ? { problem: `cluster source is stale: ${snap.stale}` } : {}) };
    } catch (e) {
      return { problem: `cannot read the cluster source: ${(e as Error).message}` };
    }
  }

  async state(): Promise<UiSnapshot> {
    const v = this.o.view;
    const { state, problem } = await this.clusterState();
    const own = await nodeStatus(v, collectAttachments(v));
    const ownPaths = own.peers.map((p) => ({ peer: p.podCidr, path: p.path }));
    const kinds = new Set(ownPaths.map((p) => p.path));
    const ownNode: Omit<UiNode, "name" | "address" | "segment" | "podCIDRs"> = {
      routing: kinds.size === 0 ? "direct" : kinds.size > 1 ? "mixed" : [...kinds][0]!,
      paths: ownPaths, ready: own.agent.ready === true, notReady: own.agent.ready ? [] : own.agent.reasons.length ? own.agent.reasons : [own.agent.error ?? "agent not ready"], warnings: own.agent.warnings ?? [],
    };
    const nodes: UiNode[] = state
      ? [...state.nodes.values()].map((n) => ({
          name: n.name, address: n.internalIPs[0] ?? "", segment: 0, podCIDRs: n.podCIDRs, ...(n.podMTU !== undefined ? { podMTU: n.podMTU } : {}),
          ...(n.name === v.name ? ownNode : { routing: "unknown" as const, paths: [], notReady: [], warnings: [] }),
        }))
      : [{ name: v.name, address: "", segment: 0, podCIDRs: [], ...ownNode }];
    const pods = state
      ? [...state.pods.values()].filter((p) => !p.hostNetwork && p.phase !== "Succeeded" && p.phase !== "Failed").map((p) => ({ id: `${p.namespace}/${p.name}`, namespace: p.namespace, name: p.name, node: p.nodeName ?? "", ips: p.podIPs, labels: p.labels }))
      : collectAttachments(v).attachments.filter((a) => a.podName).map((a) => ({ id: `${a.podNamespace}/${a.podName}`, namespace: a.podNamespace ?? "", name: a.podName!, node: v.name, ips: a.podAddresses, labels: {} }));
    return {
      topology: { title: v.name, kind: "node", nodes, pods, services: uiServices(state), outside: [] },
      policies: state ? uiPolicies(state) : [],
      problems: problem ? [problem] : [],
    };
  }

  followFlows(onRecords: (records: UiFlowRecord[]) => void): () => void {
    const names = ownNodeNames(this.o.view.name);
    const node = this.o.view.name;
    return followFlows(this.o.flowLog, (lines) => onRecords(lines.flatMap((l) => ("record" in l ? [{ ...withNodeNames(l.record, names), node }] : []))), { follow: true, everyMs: FOLLOW_MS });
  }

  async explain(req: UiExplainRequest): Promise<Explanation> {
    const v = this.o.view;
    const at = nodePlaces(v, collectAttachments(v));
    const { state } = await this.clusterState();
    const v6 = req.dst.includes(":");
    // A pod of another node is a destination by its address (the cluster state knows it).
    const podIP = (id: string) => state?.pods.get(id)?.podIPs.find((ip) => ip.includes(":") === v6);
    const src = nodeEndpoint(at, req.src, v6);
    if (!src) throw new Error(`cannot explain from "${req.src}": not a pod on node ${v.name}, an address or "node"`);
    if (!src.place) src.place = at.node;
    const dst = nodeEndpoint(at, req.dst, v6) ?? (podIP(req.dst) ? { ip: podIP(req.dst)! } : undefined);
    if (!dst) throw new Error(`cannot find destination "${req.dst}": not a pod, an address or "node"`);
    return explainPacket(at.places, src, dst.ip, { proto: req.proto, port: req.port, probe: req.probe, ...(state ? { cluster: state } : {}) });
  }

  close(): void {
    this.cluster?.close();
  }
}
