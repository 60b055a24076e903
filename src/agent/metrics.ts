// The agent's metrics, rendered by prom-client (the Prometheus text exposition format 0.0.4).
// The agent sets plain fields and calls observe*; what the fields hold is read at each
// scrape by the metrics' collect() callbacks, so a scrape always shows the last pass.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ClusterState } from "../cluster/types.ts";
import type { RangeUse } from "../ipam/usage.ts";
import { CNI_BUCKETS } from "./cni-metrics.ts";

const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class AgentMetrics {
  nodesKnown = 0;
  routesProgrammed = 0;
  /** How each peer is reached (auto decides per peer): exported so `lab status` and operators can see it. */
  peerPaths = new Map<string, string>();
  /** The pod MTU in the conflist; 0 until written. */
  podMTU = 0;
  /** Why the pod MTU is what it is (podMTUWhy), served on /readyz; empty until written. */
  podMTUWhy = "";
  /** Peers publishing another pod MTU than this node's, with theirs. */
  podMTUMismatch = new Map<string, number>();
  invalidManifests = 0;
  problems = 0;
  lastSuccessSeconds = 0;
  kernelWrites = 0;
  ready = false;
  /** Why the node is not ready (served on /readyz). */
  notReady: string[] = ["no reconcile pass has finished yet"];
  /** Reported on /readyz without making the node not ready (a peer this node cannot reach, a peer's other pod MTU). */
  warnings: string[] = [];
  /** The source's state the last pass programmed policy from (its fingerprint is on /readyz); undefined when it could not. */
  policyProgrammedFrom?: ClusterState;
  /** Policy objects the kernel refused in the last pass (left out, the rest programmed). */
  policyRejected = 0;
  /** The verdict log's counts per policy, when it runs. */
  verdicts?: { readonly counts: ReadonlyMap<string, number> };
  /** The fast path's packets per verdict, read at each scrape (with --fast-path on). */
  fastPathVerdicts?: () => { verdict: string; reason: string; packets: number }[];
  /** The CNI server, when the agent runs one: its call count is exported. */
  cniServer?: { readonly served: number };
  /** Where IPAM usage per range is read at each scrape (the conflist's ranges and dataDir). */
  ipamUsage?: () => RangeUse[];
  /** The cluster source, when it has metrics of its own (the Kubernetes source's watches): merged in. */
  source?: { readonly metricsRegistry?: Registry };
  readonly runs = new Map<string, number>();
  readonly errors = new Map<string, number>();
  readonly registry = new Registry();
  private readonly runDuration: Histogram;
  private readonly cniCalls: Histogram<"verb" | "outcome">;

  constructor() {
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    gauge("mncni_agent_nodes_known", "Nodes in the cluster state.", () => this.nodesKnown);
    gauge("mncni_agent_routes_programmed", "Routes to other nodes' pod CIDRs in the kernel (host-gw and VXLAN).", () => this.routesProgrammed);
    gauge("mncni_agent_pod_mtu", "The pod interface MTU written to the conflist (underlay MTU minus encapsulation).", () => this.podMTU);
    const mismatch = () => this.podMTUMismatch; // replaced whole by each pass
    new Gauge({
      name: "mncni_agent_pod_mtu_mismatch",
      help: "The pod MTU a peer node published (its Node status condition MncniPodMTU), for each peer whose MTU differs from this node's.",
      labelNames: ["node"], registers,
      collect() {
        this.reset();
        for (const [node, mtu] of mismatch()) this.set({ node }, mtu);
      },
    });
    const paths = () => this.peerPaths; // replaced whole by each pass
    new Gauge({
      name: "mncni_agent_peer_path",
      help: "1 for each peer node and the path its pod CIDRs are reached by (direct: host-gw route, tunnel: VXLAN).",
      labelNames: ["node", "path"], registers,
      collect() {
        this.reset();
        for (const [node, path] of paths()) this.set({ node, path }, 1);
      },
    });
    gauge("mncni_agent_invalid_manifests", "Manifests (or documents) skipped in the last read because they are malformed.", () => this.invalidManifests);
    gauge("mncni_agent_problems", "Things the last reconcile could not do that make the node not ready (listed on /readyz; an unreachable peer is a warning instead).", () => this.problems);
    gauge("mncni_policy_rejected_objects", "Policy objects (elements, rules, policies) the kernel refused in the last reconcile: left out while the rest is programmed (listed on /readyz and in mncni status).", () => this.policyRejected);
    gauge("mncni_agent_warnings", "Things the last reconcile reports that do not make the node not ready (listed on /readyz: a peer this node cannot reach, a peer's other pod MTU, a refused policy object).", () => this.warnings.length);
    gauge("mncni_agent_ready", "1 when state is converged and the CNI config is written.", () => (this.ready ? 1 : 0));
    gauge("mncni_agent_last_sync_timestamp_seconds", "Unix time of the last reconcile that finished without errors.", () => this.lastSuccessSeconds);
    // Counters kept by the agent as plain numbers: re-set from them at each scrape.
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
    counter("mncni_agent_kernel_writes_total", "Route, nftables, sysctl and file writes made by reconciles.", () => this.kernelWrites);
    counter("mncni_agent_cni_calls_served_total", "CNI calls executed for plugin processes over the agent socket.", () => this.cniServer?.served ?? 0);
    const verdicts = () => this.verdicts?.counts ?? new Map<string, number>();
    new Counter({
      name: "mncni_agent_policy_verdicts_total",
      help: "Flows logged by policy verdict rules (denied; accepted with --policy-log-accepts), per deciding policy.",
      labelNames: ["kind", "namespace", "name", "verdict"], registers,
      collect() {
        this.reset();
        for (const [k, n] of verdicts()) {
          const [kind = "", namespace = "", name = "", verdict = ""] = k.split("|");
          this.inc({ kind, namespace, name, verdict }, n);
        }
      },
    });
    const fast = () => {
      try {
        return this.fastPathVerdicts?.() ?? [];
      } catch {
        return []; // the map went with the fast path turned off
      }
    };
    new Counter({
      name: "mncni_fast_path_packets_total",
      help: "Packets the eBPF fast path's program decided on, per verdict (redirect: skipped the stack; stack: handed to it) and reason.",
      labelNames: ["verdict", "reason"], registers,
      collect() {
        this.reset();
        for (const v of fast()) this.inc({ verdict: v.verdict, reason: v.reason }, v.packets);
      },
    });
    const perReconciler = (name: string, help: string, m: Map<string, number>) =>
      new Counter({
        name, help, labelNames: ["reconciler"], registers,
        collect() {
          this.reset();
          for (const [reconciler, v] of m) this.inc({ reconciler }, v);
        },
      });
    perReconciler("mncni_agent_reconcile_runs_total", "Reconciler runs.", this.runs);
    perReconciler("mncni_agent_reconcile_errors_total", "Reconciler runs that failed.", this.errors);
    this.runDuration = new Histogram({ name: "mncni_agent_reconcile_duration_seconds", help: "Duration of a full reconcile pass.", buckets: BUCKETS, registers });
    this.cniCalls = new Histogram({
      name: "mncni_cni_call_duration_seconds",
      help: "Duration of CNI calls on this node (served or run by the plugin), per verb and outcome.",
      labelNames: ["verb", "outcome"], buckets: CNI_BUCKETS, registers,
    });
    const usage = (): RangeUse[] => {
      try {
        return this.ipamUsage?.() ?? [];
      } catch {
        return []; // no conflist yet, or its data directory unreadable: /readyz says why
      }
    };
    for (const [name, help, pick] of [
      ["mncni_ipam_addresses_used", "Addresses reserved per IPAM range set.", (u: RangeUse) => u.used],
      ["mncni_ipam_addresses_free", "Addresses still free per IPAM range set.", (u: RangeUse) => u.free],
    ] as const) {
      new Gauge({
        name, help, labelNames: ["range"], registers,
        collect() {
          this.reset();
          for (const u of usage()) this.set({ range: u.range }, pick(u));
        },
      });
    }
  }

  observeRun(seconds: number): void {
    this.runDuration.observe(seconds);
  }

  observeCniCall(verb: string, outcome: string, seconds: number): void {
    this.cniCalls.observe({ verb, outcome }, seconds);
  }

  count(map: Map<string, number>, reconciler: string): void {
    map.set(reconciler, (map.get(reconciler) ?? 0) + 1);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text; prom-client's blank lines between metrics are dropped (one line per sample or comment, as before). */
  async render(): Promise<string> {
    const own = this.source?.metricsRegistry;
    const registry = own ? Registry.merge([this.registry, own]) : this.registry;
    return (await registry.metrics()).replace(/\n{2,}/g, "\n");
  }
}
