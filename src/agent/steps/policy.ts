// Step "policy": NetworkPolicy and ClusterNetworkPolicy for this node's pods, in
// `inet mncni-policy` (src/agent/policy/), with what they need around them: the fail-closed
// hold table (created here, filled by the plugin, released here once a pod's policy is
// programmed), a problem when bridge mode lacks br_netfilter, and the served ADD's fast path.
import type { ClusterState } from "../../cluster/types.ts";
import { DiskStore } from "../../ipam/disk-store.ts";
import { formatIp } from "../../ipam/ip-bigint.ts";
import { normalizeIP } from "../../net/cidr.ts";
import { HOLD } from "../../firewall/names.ts";
import { NETWORK_NAME } from "../conflist.ts";
import { BRIDGE_NF_SYSCTLS } from "./bridge-netfilter.ts";
import { AttachedPods, PolicyEngine, policyPods } from "../policy/index.ts";
import { emptyReconcileReport, type AttachedPod, type Pass, type StepContext, type StepModule } from "./step.ts";

/** What policy is computed from: a kind of these the source cannot read stops policy programming. */
const POLICY_KINDS: ReadonlySet<string> = new Set(["Pod", "Namespace", "NetworkPolicy", "ClusterNetworkPolicy"]);

export const policyStep: StepModule<"policy"> = {
  name: "policy",
  create(ctx) {
    return new PolicyStep(ctx);
  },
};

class PolicyStep {
  private readonly attached = new AttachedPods();
  private readonly engine: PolicyEngine;

  constructor(private readonly ctx: StepContext) {
    const { cfg, deps } = ctx;
    this.engine = new PolicyEngine({ nodeName: cfg.nodeName, nft: deps.nft, ...(cfg.policyLogAccepts ? { logAccepts: true } : {}) });
  }

  run(p: Pass): void {
    this.program(p.state, p, true);
  }

  /**
   * A served ADD's pod, before the ADD is answered: its addresses laid over the state, its
   * policy programmed, its hold released. Trusts the engine's memory (a pass checks the kernel).
   */
  attachedPod(state: ClusterState, pod: AttachedPod): string[] {
    this.attached.remember(pod.namespace, pod.name, pod.ips);
    const out = { r: emptyReconcileReport() };
    this.program(state, out);
    return out.r.changes;
  }

  /**
   * In bridge mode, same-node traffic is bridged, not routed: the bridge hands it to the inet
   * forward hook (and conntrack) only with bridge-nf-call-iptables/ip6tables, so they are
   * required (docs/policy.md, the hook choice). Without `verify` (the served ADD's fast path)
   * the engine trusts its memory and the hold table is not checked (a pass made it). `out.policyHold` says,
   * before anything can fail, whether the cluster has policies (the conflist then asks the
   * plugin to hold new pods).
   */
  private program(state0: ClusterState, out: Pick<Pass, "r" | "policyHold">, verify = false): void {
    const { cfg, deps } = this.ctx;
    const { r } = out;
    const state = this.attached.overlay(state0, cfg.nodeName);
    const unlabelled = this.attached.unlabelledIPs(state0);
    // A policy kind the source cannot read is unknown, not empty: programming without it would
    // drop its rules (a ClusterNetworkPolicy CRD served again 3 s later cost a minute without
    // its Deny rules). The kernel's table stays as it is, and new pods stay held (fail closed).
    const blind = (state0.unknown ?? []).filter((u) => POLICY_KINDS.has(u.kind));
    const policyHold = (out.policyHold = blind.length > 0 || state.networkPolicies.size + state.clusterNetworkPolicies.size > 0);
    // The hold table is created once and never replaced: it holds the plugin's elements.
    if (verify && deps.hold && policyHold && deps.hold.ensure((script, what) => deps.nft.apply(script, what))) {
      r.writes++;
      r.changes.push(`create table ${HOLD.family} ${HOLD.name}`);
    }
    if (blind.length) {
      r.problems.push(`cannot program policy: ${blind.map((u) => `${u.kind} cannot be read (${u.why})`).join("; ")}; keeping the policy table as it is and new pods held until it can be read`);
      return;
    }
    const sync = this.engine.sync(state, verify);
    deps.onPolicy?.(sync.structure.deciders, state);
    r.writes += sync.writes;
    r.changes.push(...sync.changes);
    if (verify) {
      r.policyRejected = sync.rejected;
      r.policyProgrammedFrom = state0;
    }
    // The bridgeNetfilter step turns them on in bridge mode; without br_netfilter a policy that selects a local pod cannot hold.
    if (sync.anySelected && cfg.mode === "bridge") {
      for (const name of BRIDGE_NF_SYSCTLS) {
        try {
          deps.sysctl.get(name);
        } catch {
          r.problems.push(`cannot read ${name} (is br_netfilter loaded?): same-node pod traffic in bridge mode is not subject to policy`);
        }
      }
    }
    // Programmed: this node's pods in the state are no longer held (with no policy, none is).
    const held = this.holdRelease(state, policyHold, unlabelled);
    if (held.length) {
      r.writes++;
      r.changes.push(`release policy hold of ${held.join(", ")}`);
    }
  }

  /** The addresses this node's IPAM has reserved; undefined when its store cannot be read. */
  private reservedAddresses(): Set<string> | undefined {
    try {
      const l = new DiskStore(this.ctx.cfg.ipamDataDir, NETWORK_NAME).list();
      if (l.unreadable.length) return undefined;
      return new Set(l.reservations.map((r) => normalizeIP(formatIp(r.ip)) ?? ""));
    } catch {
      return undefined;
    }
  }

  /** Releases the held addresses of this node's programmed pods, except those whose labels are unknown (`unlabelled`). */
  private holdRelease(state: ClusterState, policies: boolean, unlabelled: readonly string[]): string[] {
    const hold = this.ctx.deps.hold;
    if (!hold) return [];
    let held: string[];
    try {
      held = hold.held();
    } catch {
      return []; // no hold table: nothing is held
    }
    if (!held.length) return [];
    const programmed = new Set(policyPods(state).filter((q) => q.nodeName === this.ctx.cfg.nodeName).flatMap((q) => q.podIPs));
    // A served pod the state does not know yet was programmed without its labels: only
    // namespace-wide policies apply to it, so it is not released until the watch shows it.
    for (const ip of unlabelled) programmed.delete(ip);
    // An address IPAM no longer has belongs to no pod (its DEL did not know the pod's
    // addresses, e.g. the namespace was gone): the plugin reserves before it holds and
    // releases the hold before the reservation, so this never frees a pod being added.
    const reserved = this.reservedAddresses();
    const release = held.filter((ip) => !policies || programmed.has(ip) || (reserved !== undefined && !reserved.has(normalizeIP(ip) ?? ip)));
    if (release.length) hold.release(release);
    return release;
  }
}
