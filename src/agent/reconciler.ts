// One reconcile pass: desired state from the cluster state, diffed against the kernel and
// the filesystem, only the differences applied. Each step's errors are collected (never
// swallowed) and the pass goes on, so one broken peer does not block the rest.
import { join } from "node:path";
import { familyOf } from "../cluster/cidr.ts";
import type { ClusterState } from "../cluster/types.ts";
import type { AgentConfig } from "./config.ts";
import { CONFLIST_NAME, conflistText } from "./conflist.ts";
import { writeFileIfChanged } from "./atomic-file.ts";
import { applyRouteDiff, desiredHostGwRoutes, diffRoutes, ownedRoutes, type RouteKernel } from "./hostgw.ts";
import { BinaryInstaller } from "./install.ts";
import { planMasquerade } from "./masquerade.ts";
import type { Nft } from "./nft-ruleset.ts";

export interface Sysctl {
  get(name: string): string;
  set(name: string, value: string): void;
}

export interface ReconcilerDeps {
  nl: RouteKernel;
  nft: Nft;
  sysctl: Sysctl;
  /** The executable to install, undefined to skip installing (running from source). */
  binary?: string;
}

export type Step = "forwarding" | "routes" | "nftables" | "binaries" | "conflist";

export interface ReconcileReport {
  errors: { step: Step; message: string }[];
  /** Things the cluster state asks for that cannot be done (a peer not on-link, ...). */
  problems: string[];
  /** What changed, for logs; empty on a no-change pass. */
  changes: string[];
  /** Kernel and file writes this pass made (0 on a no-change resync). */
  writes: number;
  routesProgrammed: number;
  conflistWritten: boolean;
  /** No errors, no problems, and the conflist is in place. */
  converged: boolean;
}

export type AgentSettings = Pick<
  AgentConfig,
  "nodeName" | "mode" | "routing" | "clusterCidr" | "nonMasqueradeCidr" | "cniConfDir" | "cniBinDir" | "ipamDataDir" | "cniLogFile" | "bridge" | "mtu" | "chainPortmap"
> &
  Partial<Pick<AgentConfig, "cniSocket">>;

export class Reconciler {
  private installer?: BinaryInstaller;
  private conflistDone = false;

  constructor(private readonly cfg: AgentSettings, private readonly deps: ReconcilerDeps) {
    if (deps.binary) this.installer = new BinaryInstaller(deps.binary, cfg.cniBinDir);
  }

  reconcile(state: ClusterState): ReconcileReport {
    const r: ReconcileReport = { errors: [], problems: [], changes: [], writes: 0, routesProgrammed: 0, conflistWritten: false, converged: false };
    const me = state.nodes.get(this.cfg.nodeName);
    const ownCIDRs = me?.podCIDRs ?? [];
    const step = (name: Step, fn: () => void) => {
      try {
        fn();
      } catch (e) {
        r.errors.push({ step: name, message: (e as Error).message });
      }
    };
    step("forwarding", () => this.forwarding(ownCIDRs, r));
    let routesOk = true;
    step("routes", () => {
      routesOk = this.routes(state, r);
    });
    if (r.errors.some((e) => e.step === "routes")) routesOk = false;
    step("nftables", () => this.nftables(state, ownCIDRs, r));
    step("binaries", () => this.binaries(r));
    step("conflist", () => this.conflist(ownCIDRs, routesOk, r));
    r.conflistWritten = this.conflistDone;
    r.converged = r.errors.length === 0 && r.problems.length === 0 && r.conflistWritten;
    return r;
  }

  private forwarding(own: string[], r: ReconcileReport): void {
    const v6 = [...own, ...this.cfg.clusterCidr].some((c) => familyOf(c) === 6);
    const want = ["net.ipv4.ip_forward", ...(v6 ? ["net.ipv6.conf.all.forwarding"] : [])];
    for (const name of want) {
      if (this.deps.sysctl.get(name) === "1") continue;
      this.deps.sysctl.set(name, "1");
      r.writes++;
      r.changes.push(`set ${name}=1`);
    }
  }

  /** Returns false when the node's routes are not in place (kernel errors). */
  private routes(state: ClusterState, r: ReconcileReport): boolean {
    const nl = this.deps.nl;
    const desired =
      this.cfg.routing === "host-gw"
        ? desiredHostGwRoutes({ self: this.cfg.nodeName, state, localAddrs: nl.addrs() })
        : { items: [], problems: [] };
    r.problems.push(...desired.problems);
    const current = nl.routes();
    const diff = diffRoutes(desired.items, current);
    const res = applyRouteDiff(nl, diff);
    r.writes += res.writes;
    for (const d of diff.add) r.changes.push(`add route ${d.dst} via ${d.gw} (node ${d.node})`);
    for (const d of diff.change) r.changes.push(`change route ${d.dst} via ${d.gw} (node ${d.node})`);
    for (const d of diff.remove) r.changes.push(`remove route ${d.dst} via ${d.gw}`);
    for (const message of res.errors) r.errors.push({ step: "routes", message });
    r.routesProgrammed = res.writes === 0 ? ownedRoutes(current).length : ownedRoutes(nl.routes()).length;
    return res.errors.length === 0;
  }

  private nftables(state: ClusterState, own: string[], r: ReconcileReport): void {
    const podNetworks = [...this.cfg.clusterCidr, ...[...state.nodes.values()].flatMap((n) => n.podCIDRs)];
    const plan = planMasquerade({ podCIDRs: own, podNetworks, nonMasquerade: this.cfg.nonMasqueradeCidr }, this.deps.nft.list());
    if (!plan.script) return;
    this.deps.nft.apply(plan.script, "apply nftables ruleset");
    r.writes++;
    r.changes.push(...plan.changes);
  }

  private binaries(r: ReconcileReport): void {
    if (!this.installer) return;
    for (const path of this.installer.ensure()) {
      r.writes++;
      r.changes.push(`install ${path}`);
    }
  }

  private conflist(own: string[], routesOk: boolean, r: ReconcileReport): void {
    // Kubernetes treats a node with a CNI config as Ready: only write it once pods can work.
    if (!own.length) {
      if (!this.conflistDone) r.problems.push(`node "${this.cfg.nodeName}" has no pod CIDR yet: not writing ${CONFLIST_NAME}`);
      return;
    }
    if (!routesOk) return;
    const text = conflistText({
      // The Node's order is kept: it says which family is primary.
      podCIDRs: own,
      mode: this.cfg.mode,
      bridge: this.cfg.bridge,
      mtu: this.cfg.mtu,
      ipamDataDir: this.cfg.ipamDataDir,
      cniLogFile: this.cfg.cniLogFile,
      chainPortmap: this.cfg.chainPortmap,
      cniSocket: this.cfg.cniSocket === "off" ? undefined : this.cfg.cniSocket,
    });
    const path = join(this.cfg.cniConfDir, CONFLIST_NAME);
    if (writeFileIfChanged(path, text)) {
      r.writes++;
      r.changes.push(`write ${path}`);
    }
    this.conflistDone = true;
  }
}
