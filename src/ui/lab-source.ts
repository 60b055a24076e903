// The page's data in a lab: every node read directly, through the lab's public functions
// (its status, pods, cluster state, verdict logs, explain's places), never its files, so the
// page follows the lab wherever its state lives.
import { requireState, type LabState } from "../lab/state.ts";
import { labStatus, type LabStatus } from "../lab/status.ts";
import { labCluster, labEndpoint, labPlaces } from "../lab/places.ts";
import { followLabFlows } from "../lab/flows.ts";
import { explainPacket } from "../obs/explain-packet.ts";
import type { Explanation } from "../obs/explain.ts";
import { uiPolicies } from "./policies.ts";
import { uiServices } from "./services.ts";
import type { UiExplainRequest, UiNode, UiSnapshot } from "./model.ts";
import { FOLLOW_MS, type UiFlowRecord, type UiSource } from "./source.ts";

function routingOf(paths: UiNode["paths"]): UiNode["routing"] {
  const kinds = new Set(paths.map((p) => p.path).filter((p) => p !== "none"));
  if (kinds.size === 0) return paths.length ? "unknown" : "direct";
  return kinds.size > 1 ? "mixed" : ([...kinds][0] as "direct" | "tunnel");
}

function uiNode(n: LabStatus["nodes"][number]): UiNode {
  const paths = n.paths.map((p) => ({ peer: p.peer, path: p.path }));
  return {
    name: n.name, address: n.address, segment: n.segment, podCIDRs: n.podCIDRs, routing: routingOf(paths), paths,
    ...(n.podMTU !== undefined ? { podMTU: n.podMTU } : {}), ...(n.podMTUWhy ? { podMTUWhy: n.podMTUWhy } : {}),
    ready: n.ready, notReady: n.notReady, warnings: n.warnings,
  };
}

export class LabSource implements UiSource {
  /** The nodes whose verdict logs are followed, each with its stop function. */
  private readonly following = new Map<string, () => void>();
  private onRecords?: (records: UiFlowRecord[]) => void;

  constructor(readonly lab: string) {
    requireState(lab); // a lab that does not exist: the error names the labs that do
  }

  private current(): LabState {
    return requireState(this.lab);
  }

  async state(): Promise<UiSnapshot> {
    const s = this.current();
    this.followNew(s);
    const [st, cluster] = await Promise.all([labStatus(s), labCluster(s, { services: true })]);
    return {
      topology: {
        title: s.name, kind: "lab",
        nodes: st.nodes.map(uiNode),
        pods: st.pods.map((p) => ({ id: p.ref, namespace: p.k8sNamespace, name: p.k8sName, node: p.node, ips: p.ips, labels: p.labels })),
        services: uiServices(cluster),
        outside: [{ id: "ext", address: st.external.address }],
      },
      policies: cluster ? uiPolicies(cluster) : [],
      problems: cluster ? [] : ["the lab's cluster state could not be read: no policies to show"],
    };
  }

  followFlows(onRecords: (records: UiFlowRecord[]) => void): () => void {
    this.onRecords = onRecords;
    this.followNew(this.current());
    return () => this.close();
  }

  /** Follows the verdict log of every node not followed yet (a node added since). */
  private followNew(s: LabState): void {
    if (!this.onRecords) return;
    for (const n of s.nodes) if (!this.following.has(n.name)) this.following.set(n.name, followLabFlows(s, n.name, this.onRecords, { follow: true, everyMs: FOLLOW_MS }));
  }

  async explain(req: UiExplainRequest): Promise<Explanation> {
    const s = this.current();
    const places = labPlaces(s);
    const v6 = req.dst.includes(":") && !req.dst.includes("/");
    const src = labEndpoint(s, places, req.src, v6);
    const dst = labEndpoint(s, places, req.dst, v6);
    const cluster = await labCluster(s);
    return explainPacket(places, src, dst.ip, { proto: req.proto, port: req.port, probe: req.probe, ...(cluster ? { cluster } : {}) });
  }

  close(): void {
    for (const stop of this.following.values()) stop();
    this.following.clear();
    this.onRecords = undefined;
  }
}
