// One reconcile pass: desired state from the cluster state, diffed against the kernel and
// the filesystem, only the differences applied. The steps run in the order of STEPS; each
// step's errors are collected (never swallowed) and the pass goes on, so one broken peer does
// not block the rest.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ClusterState } from "../cluster/types.ts";
import type { AgentConfig } from "./config.ts";
import { CONFLIST_NAME, conflistFor, NETWORK_NAME } from "./conflist.ts";
import { DiskStore } from "../ipam/disk-store.ts";
import { formatIp } from "../ipam/ip-bigint.ts";
import { normalizeIP } from "../net/cidr.ts";
import { ChainVersionPicker } from "./cni-version.ts";
import { writeFileIfChanged } from "./atomic-file.ts";
import { BinaryInstaller } from "./install.ts";
import { planMasquerade } from "./masquerade.ts";
import type { Nft, NftRuleset } from "./nft-ruleset.ts";
import { AttachedPods, HOLD_TABLE_SCRIPT, PolicyEngine, type HoldKernel, type PolicyStructure, policyPods } from "./policy/index.ts";
import { HOLD_TABLE } from "../plugin/policy-hold.ts";
import { admitPodCIDRs, type Admission, type FaultMemo } from "./pod-cidrs.ts";
import { podMTU, podMTUMismatches, routingBackends, underlayMTU, type LocalAddr, type Peer, type PeerPath, type RoutingBackend, type RoutingKernel, type RoutingReport } from "./routing/index.ts";
import { familyOf } from "../net/ip.ts";

export interface Sysctl {
  get(name: string): string;
  set(name: string, value: string): void;
}

export interface ReconcilerDeps {
  nl: RoutingKernel;
  nft: Nft;
  /** Absent: no hold (tests and benchmarks without the plugin). */
  hold?: HoldKernel;
  /** Told each compile's deciders and the state (the verdict log names policies and pods from them). */
  onPolicy?: (deciders: PolicyStructure["deciders"], state: ClusterState) => void;
  sysctl: Sysctl;
  /** The executable to install, undefined to skip installing (running from source). */
  binary?: string;
}

/** The steps of a pass, in order: metrics and logs name them the same. */
export const STEPS = ["pod-cidrs", "forwarding", "routes", "masquerade", "policy", "binaries", "conflist"] as const;
export type Step = (typeof STEPS)[number];

/** Steps that act on the admitted pod CIDRs: skipped when admission failed (acting on none would remove every route). */
const NEEDS_ADMISSION: ReadonlySet<Step> = new Set<Step>(["forwarding", "routes", "masquerade", "conflist"]);

export interface ReconcileReport {
  errors: { step: Step; message: string }[];
  /** Things the cluster state asks for that cannot (or must not) be done, each a complete sentence. */
  problems: string[];
  /** What changed, for logs; empty on a no-change pass. */
  changes: string[];
  /** Kernel and file writes this pass made (0 on a no-change resync). */
  writes: number;
  routesProgrammed: number;
  /** How each peer is reached after the pass, by node name (auto: direct or tunnel). */
  paths: Map<string, PeerPath>;
  /** The pod MTU written to the conflist (undefined until it is written). */
  podMTU?: number;
  /** Peers that published a pod MTU other than this node's, with theirs (empty until podMTU is set). */
  podMTUMismatch: Map<string, number>;
  conflistWritten: boolean;
  /** No errors, no problems, and the conflist is in place. */
  converged: boolean;
}

export type AgentSettings = Pick<
  AgentConfig,
  "nodeName" | "mode" | "routing" | "clusterCidr" | "nonMasqueradeCidr" | "cniConfDir" | "cniBinDir" | "ipamDataDir" | "cniLogFile" | "bridge" | "chainPortmap"
> &
  Partial<Pick<AgentConfig, "cniSocket" | "cniVersion" | "mtu" | "vxlanVni" | "vxlanPort" | "policyLogAccepts">>;

/** What the steps of one pass share. */
interface Pass {
  state: ClusterState;
  r: ReconcileReport;
  localAddrs: LocalAddr[];
  admitted?: Admission;
  /** This node's admitted pod CIDRs, in the Node's order (it says which family is primary). */
  own: string[];
  /** Steps that reported an error this pass. */
  failed: Set<Step>;
  /** The cluster has policies: the conflist asks the plugin to hold new pods. */
  policyHold?: boolean;
  /** The nftables ruleset (terse), once listed in this pass. */
  ruleset?: NftRuleset;
}

export class Reconciler {
  private readonly installer?: BinaryInstaller;
  private readonly backend: RoutingBackend;
  private readonly backends: RoutingBackend[];
  private conflistDone = false;
  /**
   * Pod CIDRs admitted by the last pass, per peer: a later change of one is a change in place.
   * Undefined until the first pass seeds it from the routes the backend has in the kernel, so a
   * restarted agent still knows which Nodes were established.
   */
  private peersInUse?: Map<string, string[]>;
  /** This node's pod CIDRs its pods have addresses from: the conflist's, read once from disk. */
  private ownInUse?: string[];
  /** The last admission and what it was made from: a no-change pass reuses it (a thousand Nodes). */
  private admission?: { nodes: ClusterState["nodes"]; addrs: string; own: string; result: Admission };
  private versions: ChainVersionPicker;
  private readonly faults: FaultMemo = { faults: new Map() };
  private readonly attached = new AttachedPods();
  private readonly policyEngine: PolicyEngine;
  private readonly steps: Record<Step, (p: Pass) => void> = {
    "pod-cidrs": (p) => this.admit(p),
    forwarding: (p) => this.forwarding(p),
    routes: (p) => this.routes(p),
    masquerade: (p) => this.masquerade(p),
    policy: (p) => this.policy(p),
    binaries: (p) => this.binaries(p),
    conflist: (p) => this.conflist(p),
  };

  constructor(private readonly cfg: AgentSettings, private readonly deps: ReconcilerDeps) {
    if (deps.binary) this.installer = new BinaryInstaller(deps.binary, cfg.cniBinDir);
    const all = routingBackends({ vxlan: { vni: cfg.vxlanVni ?? 1, port: cfg.vxlanPort ?? 4789 } });
    this.backend = all[cfg.routing];
    this.backends = Object.values(all);
    this.versions = new ChainVersionPicker(cfg.cniBinDir);
    this.policyEngine = new PolicyEngine({ nodeName: cfg.nodeName, nft: deps.nft, ...(cfg.policyLogAccepts ? { logAccepts: true } : {}) });
  }

  reconcile(state: ClusterState): ReconcileReport {
    const r: ReconcileReport = { errors: [], problems: [], changes: [], writes: 0, routesProgrammed: 0, paths: new Map(), podMTUMismatch: new Map(), conflistWritten: false, converged: false };
    const p: Pass = { state, r, localAddrs: [], own: [], failed: new Set() };
    for (const name of STEPS) {
      if (NEEDS_ADMISSION.has(name) && !p.admitted) continue;
      try {
        this.steps[name](p);
      } catch (e) {
        r.errors.push({ step: name, message: (e as Error).message });
        p.failed.add(name);
      }
    }
    r.conflistWritten = this.conflistDone;
    r.converged = r.errors.length === 0 && r.problems.length === 0 && r.conflistWritten;
    return r;
  }

  private admit(p: Pass): void {
    const self = this.cfg.nodeName;
    p.localAddrs = this.deps.nl.addrs();
    this.ownInUse ??= conflistSubnets(join(this.cfg.cniConfDir, CONFLIST_NAME));
    this.peersInUse ??= this.routedPeers(p.state);
    const addrs = JSON.stringify(p.localAddrs);
    const own = this.ownInUse.join();
    const m = this.admission;
    let a: Admission;
    // Admission is idempotent: with what it admitted as in use (the peers it keeps, the conflist
    // written from it), the same input gives the same result.
    const sameOwn = m && (m.own === own || m.result.podCIDRs.get(self)?.join() === own);
    if (m && sameOwn && m.nodes === p.state.nodes && m.addrs === addrs) {
      a = m.result;
    } else {
      const inUse = new Map(this.peersInUse);
      inUse.set(self, this.ownInUse);
      a = admitPodCIDRs({ self, nodes: p.state.nodes, clusterCidr: this.cfg.clusterCidr, localAddrs: p.localAddrs, inUse, memo: this.faults });
      this.peersInUse = new Map([...a.podCIDRs].filter(([name, cidrs]) => name !== self && cidrs.length > 0));
      this.admission = { nodes: p.state.nodes, addrs, own, result: a };
    }
    p.r.problems.push(...a.problems);
    if (!p.state.nodes.has(self)) p.r.problems.push(`node "${self}" is not in the cluster state: its own pod CIDRs are unknown`);
    p.admitted = a;
    p.own = a.podCIDRs.get(self) ?? [];
  }

  /** Peers whose pod CIDRs the backend already routes (an earlier run of this agent admitted them). */
  private routedPeers(state: ClusterState): Map<string, string[]> {
    const routed = new Set(this.deps.nl.routes().filter((r) => this.backend.ownsRoute(r)).map((r) => r.dst));
    const out = new Map<string, string[]>();
    for (const n of state.nodes.values()) {
      const used = n.podCIDRs.filter((c) => routed.has(c));
      if (n.name !== this.cfg.nodeName && used.length) out.set(n.name, used);
    }
    return out;
  }

  private forwarding(p: Pass): void {
    const v6 = [...p.own, ...this.cfg.clusterCidr].some((c) => familyOf(c) === 6);
    const want = ["net.ipv4.ip_forward", ...(v6 ? ["net.ipv6.conf.all.forwarding"] : [])];
    for (const name of want) {
      if (this.deps.sysctl.get(name) === "1") continue;
      this.deps.sysctl.set(name, "1");
      p.r.writes++;
      p.r.changes.push(`set ${name}=1`);
    }
  }

  private routes(p: Pass): void {
    const self = this.cfg.nodeName;
    const peers: Peer[] = [];
    for (const name of [...p.state.nodes.keys()].sort()) {
      if (name === self) continue;
      peers.push({ name, internalIPs: p.state.nodes.get(name)!.internalIPs, podCIDRs: p.admitted!.podCIDRs.get(name) ?? [] });
    }
    const merge = (rep: RoutingReport) => {
      p.r.writes += rep.writes;
      p.r.changes.push(...rep.changes);
      p.r.problems.push(...rep.problems);
      for (const message of rep.errors) p.r.errors.push({ step: "routes", message });
      if (rep.errors.length) p.failed.add("routes");
    };
    // Objects of a backend this node no longer uses (--routing changed) go first; the parts of
    // the active one (auto's host-gw and VXLAN) are its own.
    // Composites (auto) are removed through their parts, so one never removes a part in use.
    const leaves = (b: RoutingBackend): RoutingBackend[] => (b.parts ? b.parts.flatMap(leaves) : [b]);
    const active = new Set(leaves(this.backend));
    for (const other of new Set(this.backends.flatMap(leaves))) if (!active.has(other)) merge(other.remove(this.deps.nl));
    const rep = this.backend.reconcile({ self, peers, localAddrs: p.localAddrs, selfIPs: this.selfIPs(p), families: this.families(p) }, this.deps.nl);
    merge(rep);
    p.r.routesProgrammed = rep.routes;
    p.r.paths = rep.paths;
  }

  private selfIPs(p: Pass): string[] {
    return p.state.nodes.get(this.cfg.nodeName)?.internalIPs ?? [];
  }

  /** Pod address families in use on this node: its own pod CIDRs' and the cluster's. */
  private families(p: Pass): (4 | 6)[] {
    return [...new Set([...p.own, ...this.cfg.clusterCidr].map(familyOf))];
  }

  private masquerade(p: Pass): void {
    const podNetworks = [...this.cfg.clusterCidr, ...[...p.admitted!.podCIDRs.values()].flat()];
    const plan = planMasquerade({ podCIDRs: p.own, podNetworks, nonMasquerade: this.cfg.nonMasqueradeCidr }, this.listed(p));
    if (!plan.script) return;
    this.deps.nft.apply(plan.script, "apply nftables ruleset");
    p.r.writes++;
    p.r.changes.push(...plan.changes);
  }

  /**
   * NetworkPolicy and ClusterNetworkPolicy for this node's pods, in `inet mncni-policy`. In
   * bridge mode, same-node traffic is bridged, not routed: the bridge hands it to the inet
   * forward hook (and conntrack) only with bridge-nf-call-iptables/ip6tables, so they are
   * required (docs/policy.md, the hook choice).
   */
  private policy(p: Pass, fast = false): void {
    const state = this.attached.overlay(p.state, this.cfg.nodeName);
    p.policyHold = state.networkPolicies.size + state.clusterNetworkPolicies.size > 0;
    // The served ADD's fast path trusts the engine's memory; a pass checks the kernel.
    const current = fast ? undefined : this.listed(p);
    // The hold table is created once and never replaced: it holds the plugin's elements.
    if (current && this.deps.hold && p.policyHold && !current.tables.some((t) => t.family === "inet" && t.name === HOLD_TABLE)) {
      this.deps.nft.apply(HOLD_TABLE_SCRIPT, "create the policy hold table");
      p.r.writes++;
      p.r.changes.push(`create table inet ${HOLD_TABLE}`);
    }
    const sync = this.policyEngine.sync(state, !fast);
    this.deps.onPolicy?.(sync.structure.deciders, state);
    p.r.writes += sync.writes;
    p.r.changes.push(...sync.changes);
    if (sync.anySelected && this.cfg.mode === "bridge") {
      for (const name of ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"]) {
        let v: string;
        try {
          v = this.deps.sysctl.get(name);
        } catch {
          p.r.problems.push(`cannot read ${name} (is br_netfilter loaded?): same-node pod traffic in bridge mode is not subject to policy`);
          continue;
        }
        if (v === "1") continue;
        this.deps.sysctl.set(name, "1");
        p.r.writes++;
        p.r.changes.push(`set ${name}=1`);
      }
    }
    // Programmed: this node's pods in the state are no longer held (with no policy, none is).
    const held = this.holdRelease(state, p.policyHold);
    if (held.length) {
      p.r.writes++;
      p.r.changes.push(`release policy hold of ${held.join(", ")}`);
    }
  }

  /** The ruleset (terse), listed once per pass. */
  private listed(p: Pass): NftRuleset {
    p.ruleset ??= this.deps.nft.list();
    return p.ruleset;
  }

  /** The addresses this node's IPAM has reserved; undefined when its store cannot be read. */
  private reservedAddresses(): Set<string> | undefined {
    try {
      const l = new DiskStore(this.cfg.ipamDataDir, NETWORK_NAME).list();
      if (l.unreadable.length) return undefined;
      return new Set(l.reservations.map((r) => normalizeIP(formatIp(r.ip)) ?? ""));
    } catch {
      return undefined;
    }
  }

  private holdRelease(state: ClusterState, policies: boolean): string[] {
    if (!this.deps.hold) return [];
    let held: string[];
    try {
      held = this.deps.hold.held();
    } catch {
      return []; // no hold table: nothing is held
    }
    if (!held.length) return [];
    const programmed = new Set(policyPods(state).filter((q) => q.nodeName === this.cfg.nodeName).flatMap((q) => q.podIPs));
    // An address IPAM no longer has belongs to no pod (its DEL did not know the pod's
    // addresses, e.g. the namespace was gone): the plugin reserves before it holds and
    // releases the hold before the reservation, so this never frees a pod being added.
    const reserved = this.reservedAddresses();
    const release = held.filter((ip) => !policies || programmed.has(ip) || (reserved !== undefined && !reserved.has(normalizeIP(ip) ?? ip)));
    if (release.length) this.deps.hold.release(release);
    return release;
  }

  /**
   * A served ADD's pod, before the ADD is answered: its addresses laid over the state, its
   * policy programmed, its hold released. Returns what changed.
   */
  programAttachedPod(state: ClusterState, namespace: string, name: string, ips: string[]): string[] {
    this.attached.remember(namespace, name, ips);
    const r: ReconcileReport = { errors: [], problems: [], changes: [], writes: 0, routesProgrammed: 0, paths: new Map(), podMTUMismatch: new Map(), conflistWritten: false, converged: false };
    this.policy({ state, r, localAddrs: [], own: [], failed: new Set() }, true);
    return r.changes;
  }

  private binaries(p: Pass): void {
    if (!this.installer) return;
    for (const path of this.installer.ensure()) {
      p.r.writes++;
      p.r.changes.push(`install ${path}`);
    }
  }

  private conflist(p: Pass): void {
    // Kubernetes treats a node with a CNI config as Ready: only write it once pods can work.
    if (!p.own.length) {
      if (!this.conflistDone) p.r.problems.push(`node "${this.cfg.nodeName}" has no pod CIDR yet: not writing ${CONFLIST_NAME}`);
      return;
    }
    // Pods on a node whose routes are not in place could not reach the others yet.
    if (p.failed.has("routes")) return;
    const selfIPs = this.selfIPs(p);
    const nl = this.deps.nl;
    // Encapsulation, if the backend adds any, comes out of the underlay's MTU.
    const mtu = podMTU({
      underlay: underlayMTU(selfIPs, p.localAddrs, (i) => nl.link(i)?.mtu),
      overhead: (f) => this.backend.mtuOverhead(f),
      selfIPs,
      explicit: this.cfg.mtu,
    });
    if (mtu.problem) p.r.problems.push(mtu.problem);
    const out = conflistFor({
      podCIDRs: p.own,
      mode: this.cfg.mode,
      bridge: this.cfg.bridge,
      mtu: mtu.mtu,
      ipamDataDir: this.cfg.ipamDataDir,
      cniLogFile: this.cfg.cniLogFile,
      chainPortmap: this.cfg.chainPortmap,
      cniSocket: this.cfg.cniSocket === "off" ? undefined : this.cfg.cniSocket,
      policyHold: p.policyHold,
    }, this.cfg.cniVersion, this.versions);
    if ("problem" in out) return void p.r.problems.push(out.problem);
    const text = out.text;
    const path = join(this.cfg.cniConfDir, CONFLIST_NAME);
    if (writeFileIfChanged(path, text)) {
      p.r.writes++;
      p.r.changes.push(`write ${path}`);
    }
    if (this.ownInUse?.join() !== p.own.join()) this.ownInUse = p.own;
    this.conflistDone = true;
    p.r.podMTU = mtu.mtu;
    // Not a problem (the node stays ready): the agent reports each as a warning.
    p.r.podMTUMismatch = podMTUMismatches(this.cfg.nodeName, mtu.mtu, p.state.nodes.values());
  }
}

/** The subnets of the mncni-ipam ranges in a conflist this agent wrote; none when absent or unreadable. */
function conflistSubnets(path: string): string[] {
  try {
    const c = JSON.parse(readFileSync(path, "utf8")) as { plugins?: { ipam?: { ranges?: { subnet?: unknown }[][] } }[] };
    return (c.plugins?.[0]?.ipam?.ranges ?? []).flat().map((r) => r.subnet).filter((s): s is string => typeof s === "string");
  } catch {
    // No conflist yet (a new node) or not one we can read: no pod CIDR is in use.
    return [];
  }
}
