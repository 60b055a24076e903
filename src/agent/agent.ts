// The agent process: a cluster source, a reconciler, a loop that runs it on the source's
// changes and on a resync timer (never two passes at once), health and metrics. Each pass
// reconciles the source's cached snapshot; a source that cannot vouch for it (stale) keeps the
// last good state and makes the agent not ready. An unusable source at start-up is a refusal
// to start (Agent.open rejects before anything is changed). Stopping leaves the data plane as
// it is; starting adopts it (every apply step is a diff, so nothing is flushed).
import { openSource } from "../cluster/index.ts";
import type { ClusterSource, ClusterState } from "../cluster/types.ts";
import { Netlink, sysctlGet, sysctlSet } from "../kernel/index.ts";
import type { AgentConfig } from "./config.ts";
import { selfExecutable } from "./install.ts";
import type { Logger } from "../base/log.ts";
import { AgentMetrics } from "./metrics.ts";
import { ipamUsage, watchCalls } from "./cni-metrics.ts";
import { systemNft } from "./nft-ruleset.ts";
import { Reconciler, STEPS, type ReconcileReport } from "./reconciler.ts";
import { podMTUWarnings, readinessReasons, readinessWarnings, startHealthServer, type HealthServer } from "./health-server.ts";
import { writeRunRecord } from "./run-record.ts";
import { startCniServer, type CniServer } from "../serve/server.ts";
import { FlowLog, NFLOG_GROUP, systemHold } from "./policy/index.ts";
import { antiSpoofFor } from "../plugin/antispoof.ts";
import { MODES } from "../plugin/modes.ts";
import { NflogReader } from "../kernel/nflog.ts";
import { parseCniArgs } from "../cni/env.ts";
import type { Result } from "../cni/types.ts";
import { mncniSpec } from "../plugin-specs.ts";
import { FastPathNode } from "./fast-path/node.ts";
import { NETWORK_NAME } from "./conflist.ts";

/** How long a served ADD waits for the watch to show a pod the cache does not know (docs/policy.md). */
export const UNKNOWN_POD_WAIT_MS = 2000;

const hasPolicies = (s: ClusterState) => s.networkPolicies.size + s.clusterNetworkPolicies.size > 0;

export class Agent {
  readonly metrics = new AgentMetrics();
  private readonly source: ClusterSource;
  private readonly reconciler: Reconciler;
  private readonly nl: Netlink;
  private readonly fastPath: FastPathNode;
  private running = false;
  private again = false;
  private lastProblems = "";
  private resyncTimer?: ReturnType<typeof setInterval>;
  private server?: HealthServer;
  private stopCallWatch?: () => void;
  private cni?: CniServer;
  private readonly flows: FlowLog;
  private nflog?: NflogReader;
  private flowTimer?: ReturnType<typeof setInterval>;
  /** Told after every pass (served ADDs waiting for their pod to reach the state). */
  private readonly afterPass = new Set<() => void>();

  /** An agent whose source has a first snapshot; rejects (having changed nothing) when the source is unusable. */
  static async open(cfg: AgentConfig, log: Logger): Promise<Agent> {
    const agent = new Agent(cfg, log);
    try {
      await agent.source.start();
    } catch (e) {
      agent.source.close();
      agent.nl.close();
      throw e;
    }
    return agent;
  }

  private constructor(private readonly cfg: AgentConfig, private readonly log: Logger) {
    this.flows = new FlowLog(cfg.flowLog);
    this.source = openSource(cfg.source, { resyncSeconds: cfg.resync, nodeName: cfg.nodeName, ...(cfg.serviceProxy ? { services: true } : {}) });
    this.metrics.source = this.source;
    if (cfg.fastPath) this.metrics.fastPathVerdicts = () => this.fastPath.verdicts();
    this.nl = Netlink.open();
    const binary = selfExecutable(cfg.binary);
    if (!binary) log.warn("not installing CNI binaries: running from source, not as a compiled mncni (pass --binary PATH)", { cniBinDir: cfg.cniBinDir });
    const antiSpoof = antiSpoofFor(MODES[cfg.mode].antiSpoof);
    this.fastPath = new FastPathNode({ host: this.nl, mode: cfg.mode, bridge: cfg.bridge, network: NETWORK_NAME, ipamDataDir: cfg.ipamDataDir, guarded: () => antiSpoof.guarded() });
    this.reconciler = new Reconciler(cfg, { nl: this.nl, nft: systemNft, hold: systemHold, antiSpoof, fastPath: this.fastPath, onPolicy: (d, s) => this.flows.update(d, s), sysctl: { get: sysctlGet, set: sysctlSet }, binary });
    // Before anything is installed, so --uninstall finds every directory this run writes to.
    try {
      writeRunRecord(cfg.stateFile, cfg);
    } catch (e) {
      log.warn(`cannot write run record "${cfg.stateFile}": ${(e as Error).message}; --uninstall will need this run's directories`);
    }
  }

  /** One full pass: reconcile the source's snapshot, record metrics and logs. */
  syncOnce(): ReconcileReport {
    const t0 = performance.now();
    const { state, stale } = this.source.snapshot();
    const rep = this.reconciler.reconcile(state);
    if (stale) {
      rep.problems.push(`${stale}: keeping the last state read from ${this.source.description}`);
      rep.converged = false;
    }
    const seconds = (performance.now() - t0) / 1000;
    const m = this.metrics;
    m.observeRun(seconds);
    m.nodesKnown = state.nodes.size;
    m.invalidManifests = state.invalid.length;
    m.routesProgrammed = rep.routesProgrammed;
    m.peerPaths = rep.paths;
    if (rep.podMTU !== undefined) {
      m.podMTU = rep.podMTU;
      m.podMTUWhy = rep.podMTUWhy ?? "";
      this.source.publishPodMTU?.(rep.podMTU);
    }
    m.podMTUMismatch = rep.podMTUMismatch;
    if (rep.routingPublished) this.source.publishRouting?.(rep.routingPublished);
    m.problems = rep.problems.length;
    m.kernelWrites += rep.writes;
    m.ready = rep.converged;
    // Routes and conflist in place: a source that reports it back (the Node's condition) does.
    this.source.dataPlaneReady?.(rep.converged);
    m.notReady = readinessReasons(rep);
    m.warnings = readinessWarnings(rep);
    m.policyRejected = rep.policyRejected?.length ?? 0;
    m.policyProgrammedFrom = rep.policyProgrammedFrom;
    if (rep.policyRejected) this.source.reportPolicyRejected?.(rep.policyRejected);
    if (rep.podMTU !== undefined) this.source.reportPodMTUMismatch?.(podMTUWarnings(rep));
    for (const s of STEPS) m.count(m.runs, s);
    for (const e of rep.errors) m.count(m.errors, e.step);
    if (rep.errors.length === 0) m.lastSuccessSeconds = Date.now() / 1000;
    for (const c of rep.changes) this.log.info(c);
    for (const e of rep.errors) this.log.error(e.message, { step: e.step });
    // Problems and invalid manifests persist across passes: log them when they change, not every resync.
    const problems = JSON.stringify([rep.problems, state.invalid, m.warnings]);
    if (problems !== this.lastProblems) {
      for (const p of [...rep.problems, ...m.warnings]) this.log.warn(p);
      for (const i of state.invalid) this.log.warn("skipping invalid manifest", { file: i.file, error: i.error });
      this.lastProblems = problems;
    }
    for (const f of [...this.afterPass]) f();
    this.log.debug("reconciled", { ms: +(seconds * 1000).toFixed(2), writes: rep.writes, nodes: state.nodes.size, converged: rep.converged });
    return rep;
  }

  /**
   * A served ADD succeeded: the pod (K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS) gets its
   * policy programmed, and its hold released, before the runtime hears back.
   */
  private async attachedPod(env: Record<string, string>, stdout: string): Promise<void> {
    const args = parseCniArgs(env.CNI_ARGS ?? "");
    const ns = args.K8S_POD_NAMESPACE;
    const name = args.K8S_POD_NAME;
    if (!ns || !name) return;
    const ips = ((JSON.parse(stdout) as Result).ips ?? []).map((i) => i.address.split("/")[0]!);
    const key = `${ns}/${name}`;
    const snap = this.source.snapshot();
    let { state } = snap;
    // A pod the cache does not know has no labels here: with policies in force (the pod is
    // held), wait for the watch to show it; the policy step keeps it held while it is unknown.
    // Served calls run one at a time, so a source that is not watching (stale) is not waited
    // for: the pod stays held at once, and the next pass that shows it releases it.
    if (!state.pods.has(key) && hasPolicies(state)) {
      if (!snap.stale) state = await this.podInState(key, UNKNOWN_POD_WAIT_MS);
      if (!state.pods.has(key)) {
        const waited = snap.stale ? "at its ADD (the source is stale)" : `${UNKNOWN_POD_WAIT_MS / 1000} s after its ADD`;
        this.log.warn(`pod ${key} is not in the cluster state ${waited}: its labels are unknown, so it stays held (no traffic) until ${this.source.description} shows it`, { pod: key });
      }
    }
    const changes = this.reconciler.programAttachedPod(state, ns, name, ips);
    for (const c of changes) this.log.info(c, { pod: key });
  }

  /** The state once it has pod `key` (checked after every pass), or as it is after `ms`. */
  private podInState(key: string, ms: number): Promise<ClusterState> {
    return new Promise((resolve) => {
      const done = (state: ClusterState) => {
        clearTimeout(timer);
        this.afterPass.delete(check);
        resolve(state);
      };
      const check = () => {
        const { state } = this.source.snapshot();
        if (state.pods.has(key)) done(state);
      };
      const timer = setTimeout(() => done(this.source.snapshot().state), ms);
      this.afterPass.add(check);
    });
  }

  /** Runs a pass now, or right after the one in progress (coalescing bursts of events). */
  private kick = (): void => {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        try {
          this.syncOnce();
        } catch (e) {
          this.log.error(`cannot reconcile: ${(e as Error).message}`);
        }
      } while (this.again);
    } finally {
      this.running = false;
    }
  };

  start(): void {
    // Before the first pass writes the conflist that names it: plugins then find it listening.
    if (this.cfg.cniSocket !== "off") {
      try {
        this.cni = startCniServer({ socket: this.cfg.cniSocket, spec: mncniSpec, log: (m) => this.log.error(m), afterAdd: (env, out) => this.attachedPod(env, out) });
        this.metrics.cniServer = this.cni;
        this.log.info("serving CNI calls", { socket: this.cfg.cniSocket });
      } catch (e) {
        // Plugins fall back to running calls themselves: slower, still correct.
        this.log.error(`cannot serve CNI calls on ${this.cfg.cniSocket}: ${(e as Error).message}`);
      }
    }
    if (this.cfg.metricsAddr !== "off") {
      this.stopCallWatch = watchCalls(this.cfg.cniLogFile, (verb, outcome, s) => this.metrics.observeCniCall(verb, outcome, s));
      this.metrics.ipamUsage = () => ipamUsage(this.cfg.cniConfDir);
      this.server = startHealthServer(this.cfg.metricsAddr, this.metrics);
      this.log.info("serving health and metrics", { addr: this.cfg.metricsAddr });
    }
    this.log.info("agent started", { node: this.cfg.nodeName, source: this.source.description, mode: this.cfg.mode, routing: this.cfg.routing });
    this.kick();
    try {
      this.source.watch(() => this.kick());
    } catch (e) {
      this.log.warn(`cannot watch ${this.source.description}: ${(e as Error).message}; relying on the resync timer`);
    }
    this.resyncTimer = setInterval(this.kick, this.cfg.resync * 1000);
    this.startVerdictLog();
  }

  /** Reads the policy table's NFLOG group into the verdict log (polled: the read never waits). */
  private startVerdictLog(): void {
    try {
      this.nflog = NflogReader.open(NFLOG_GROUP);
    } catch (e) {
      this.log.warn(`cannot read policy verdicts (NFLOG group ${NFLOG_GROUP}): ${(e as Error).message}; no verdict log`);
      return;
    }
    this.metrics.verdicts = this.flows;
    this.flowTimer = setInterval(() => {
      try {
        this.flows.record(this.nflog!.read());
      } catch (e) {
        this.log.error(`cannot write verdict log "${this.cfg.flowLog}": ${(e as Error).message}`);
      }
    }, 200);
  }

  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    clearInterval(this.flowTimer);
    this.nflog?.close();
    this.source.close();
    this.server?.stop();
    this.stopCallWatch?.();
    // Waits for the call in progress; then the socket is gone and plugins work alone.
    await this.cni?.stop();
    this.fastPath.close();
    this.nl.close();
    this.log.info("agent stopped; data plane left in place");
  }
}
