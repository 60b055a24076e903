// The agent's metrics, rendered in the Prometheus text exposition format (0.0.4).

const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class AgentMetrics {
  nodesKnown = 0;
  routesProgrammed = 0;
  invalidManifests = 0;
  problems = 0;
  lastSuccessSeconds = 0;
  kernelWrites = 0;
  ready = false;
  /** Why the node is not ready (served on /readyz). */
  notReady: string[] = ["no reconcile pass has finished yet"];
  /** The verdict log's counts per policy, when it runs. */
  verdicts?: { readonly counts: ReadonlyMap<string, number> };
  /** The CNI server, when the agent runs one: its call count is exported. */
  cniServer?: { readonly served: number };
  readonly runs = new Map<string, number>();
  readonly errors = new Map<string, number>();
  private readonly bucketCounts = BUCKETS.map(() => 0);
  private durationSum = 0;
  private durationCount = 0;

  observeRun(seconds: number): void {
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) this.bucketCounts[i]!++;
    });
    this.durationSum += seconds;
    this.durationCount++;
  }

  count(map: Map<string, number>, reconciler: string): void {
    map.set(reconciler, (map.get(reconciler) ?? 0) + 1);
  }

  render(): string {
    const out: string[] = [];
    const gauge = (name: string, help: string, v: number) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${v}`);
    const counter = (name: string, help: string, m: Map<string, number>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [k, v] of [...m].sort()) out.push(`${name}{reconciler="${k}"} ${v}`);
    };
    gauge("mncni_agent_nodes_known", "Nodes in the cluster state.", this.nodesKnown);
    gauge("mncni_agent_routes_programmed", "host-gw routes to other nodes' pod CIDRs in the kernel.", this.routesProgrammed);
    gauge("mncni_agent_invalid_manifests", "Manifests (or documents) skipped in the last read because they are malformed.", this.invalidManifests);
    gauge("mncni_agent_problems", "Peers or objects the last reconcile could not serve (e.g. a peer not on-link).", this.problems);
    gauge("mncni_agent_ready", "1 when state is converged and the CNI config is written.", this.ready ? 1 : 0);
    gauge("mncni_agent_last_sync_timestamp_seconds", "Unix time of the last reconcile that finished without errors.", this.lastSuccessSeconds);
    out.push("# HELP mncni_agent_kernel_writes_total Route, nftables, sysctl and file writes made by reconciles.", "# TYPE mncni_agent_kernel_writes_total counter", `mncni_agent_kernel_writes_total ${this.kernelWrites}`);
    out.push("# HELP mncni_agent_cni_calls_served_total CNI calls executed for plugin processes over the agent socket.", "# TYPE mncni_agent_cni_calls_served_total counter", `mncni_agent_cni_calls_served_total ${this.cniServer?.served ?? 0}`);
    const v = "mncni_agent_policy_verdicts_total";
    out.push(`# HELP ${v} Flows logged by policy verdict rules (denied; accepted with --policy-log-accepts), per deciding policy.`, `# TYPE ${v} counter`);
    for (const [k, n] of [...(this.verdicts?.counts ?? [])].sort()) {
      const [kind, namespace, name, verdict] = k.split("|");
      out.push(`${v}{kind="${kind}",namespace="${namespace}",name="${name}",verdict="${verdict}"} ${n}`);
    }
    counter("mncni_agent_reconcile_runs_total", "Reconciler runs.", this.runs);
    counter("mncni_agent_reconcile_errors_total", "Reconciler runs that failed.", this.errors);
    const h = "mncni_agent_reconcile_duration_seconds";
    out.push(`# HELP ${h} Duration of a full reconcile pass.`, `# TYPE ${h} histogram`);
    BUCKETS.forEach((b, i) => out.push(`${h}_bucket{le="${b}"} ${this.bucketCounts[i]}`));
    out.push(`${h}_bucket{le="+Inf"} ${this.durationCount}`, `${h}_sum ${this.durationSum}`, `${h}_count ${this.durationCount}`);
    return out.join("\n") + "\n";
  }
}
