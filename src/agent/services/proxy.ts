// The Service proxy: keeps `inet mncni-services` equal to what the Services and their
// EndpointSlices ask for, through the owned-table engine (src/firewall/table-engine.ts), as
// policy does: elements over netlink, structure as a minimal `nft -f` delta, a restarted
// agent adopting the table only when its structure hash and chain fingerprint check out.
import type { ClusterState } from "../../cluster/types.ts";
import { SERVICES } from "../../firewall/names.ts";
import { TableEngine, type ChainSpec, type TableStructure } from "../../firewall/table-engine.ts";
import { decodeKey, isErrno, Nftables, type NftKeyType } from "../../kernel/index.ts";
import { sha256Hex } from "../../sys/hash.ts";
import { cidrContains } from "../../net/cidr.ts";
import type { Nft } from "../nft-ruleset.ts";
import { ProxyElements, type AffinitySlots, type StaleUdp } from "./elements.ts";
import { FAMILIES, FORMS, layoutChains, layoutSets, names, pickRules, PRESET_COUNTS, type PickChain } from "./layout.ts";

export interface ServiceProxyOptions {
  nodeName: string;
  clusterCidr: readonly string[];
  /** NodePorts only on the node's addresses within these; empty: every local address. */
  nodeportAddresses: readonly string[];
  nft: Pick<Nft, "apply">;
  netlink?: () => Nftables;
}

export interface ProxySync {
  changes: string[];
  writes: number;
  /** Elements the kernel refused, one sentence each. */
  rejected: string[];
  staleUdp: StaleUdp[];
  /** healthCheckNodePort -> the Service and its endpoints on this node. */
  health: Map<number, { service: string; local: number }>;
}

export const SERVICES_TARGET = { table: SERVICES, markerChain: SERVICES.markerChain, markerPrefix: SERVICES.markerPrefix, stateSet: SERVICES.stateSet } as const;

export class ServiceProxy {
  private readonly engine: TableEngine;
  private readonly els: ProxyElements;
  private readonly fixed: Map<string, ChainSpec>;
  private structure?: TableStructure;
  private nl?: Nftables;
  private structureKey = "";

  constructor(private readonly o: ServiceProxyOptions) {
    this.els = new ProxyElements(o.nodeName);
    this.fixed = layoutChains({ clusterCidr: o.clusterCidr, nodePortIpsSet: o.nodeportAddresses.length > 0 });
    this.engine = new TableEngine({ ...SERVICES_TARGET, apply: (s, what) => o.nft.apply(s, what), netlink: o.netlink ?? (() => Nftables.open()), elementsOverNetlink: true });
  }

  /** `nodeIPs`: this node's addresses (NodePorts answer on those within --nodeport-addresses). */
  sync(state: ClusterState, nodeIPs: readonly string[], verify = true): ProxySync {
    const npIps = this.o.nodeportAddresses.length ? nodeIPs.filter((ip) => this.o.nodeportAddresses.some((c) => within(c, ip))) : [];
    const u = this.els.update(state, npIps, nodeIPs);
    const s = this.structureFor(this.els.picks());
    const r = this.engine.sync(s, this.els.elements, u.delta, verify);
    const pruned = u.affinityPrune.length ? this.pruneAffinity(u.affinityPrune) : 0;
    return {
      changes: pruned ? [...r.changes, `forget ${pruned} session affinity record(s) of endpoints that went away`] : r.changes,
      writes: r.writes,
      rejected: r.rejected.map((x) => `element "${x.element}" of set ${x.name} refused by the kernel: ${x.reason}`),
      staleUdp: u.staleUdp,
      health: this.els.health(),
    };
  }

  /**
   * Deletes the IPv4 affinity records that name a slot a Service no longer uses: the packet path
   * chooses again for such a client, but `update` refreshes a record's timeout without
   * changing its slot, so a client connecting more often than the timeout would never get
   * affinity back.
   */
  private pruneAffinity(prune: readonly AffinitySlots[]): number {
    this.nl ??= (this.o.netlink ?? (() => Nftables.open()))();
    let n = 0;
    // IPv6 records are keyed by a hash that includes the endpoint count (layout.ts affinityKey):
    // a count change retires them all by itself, and they cannot be told apart here.
    for (const f of FAMILIES.filter((x) => x === 4)) {
      for (const form of FORMS) {
        const mine = prune.filter((p) => p.f === f && p.form === form);
        if (!mine.length) continue;
        const set = layoutSets().get(names.affinity(f, form))!;
        const ref = { family: SERVICES.family, table: SERVICES.name, set: names.affinity(f, form) } as const;
        let els;
        try {
          els = this.nl.setElements(ref);
        } catch (e) {
          if (isErrno(e, "ENOENT")) continue;
          throw e;
        }
        const gone = els.filter((e) => {
          const key = decodeKey(set.key as NftKeyType[], e.key).slice(1).join(" . ");
          const slot = e.data ? Number(decodeKey(["mark"], e.data)[0]) : NaN;
          return mine.some((p) => p.key === key && slot >= p.base + p.n && slot < p.base + 0x10000);
        });
        if (!gone.length) continue;
        try {
          this.nl.apply([{ ...ref, op: "del", elements: gone.map((e) => ({ key: e.key })) }]);
          n += gone.length;
        } catch (e) {
          if (!isErrno(e, "ENOENT")) throw e;
          // One expired meanwhile (the batch failed whole): one by one, the expired ones skipped.
          for (const g of gone) {
            try {
              this.nl.apply([{ ...ref, op: "del", elements: [{ key: g.key }] }]);
              n++;
            } catch (e2) {
              if (!isErrno(e2, "ENOENT")) throw e2;
            }
          }
        }
      }
    }
    return n;
  }

  /** Removes the table (the proxy turned off). */
  remove(): string[] {
    return this.engine.sync(undefined, new Map(), new Map()).changes;
  }

  reset(): void {
    this.engine.reset();
  }

  close(): void {
    this.engine.close();
    this.nl?.close();
  }

  /** The fixed chains and sets, the preset pick chains and those the elements name. */
  private structureFor(picks: PickChain[]): TableStructure {
    const all = new Map<string, PickChain>();
    for (const f of FAMILIES) for (const form of FORMS) for (const view of ["all", "local"] as const) for (let n = 1; n <= PRESET_COUNTS; n++) all.set(names.pickChain(f, form, n, view), { f, form, n, view });
    for (const c of picks) all.set(names.pickChain(c.f, c.form, c.n, c.view, c.affinity), c);
    const key = [...all.keys()].sort().join(",");
    if (this.structure && key === this.structureKey) return this.structure;
    const chains = new Map(this.fixed);
    for (const name of [...all.keys()].sort()) chains.set(name, { rules: pickRules(all.get(name)!) });
    const sets = layoutSets();
    const text = [...sets].map(([n, d]) => `${n} ${JSON.stringify(d)}`).join("\n") + [...chains].map(([n, c]) => `${n} ${c.hook ?? ""}\n${c.rules.join("\n")}`).join("\n");
    this.structureKey = key;
    this.structure = { hash: sha256Hex(text).slice(0, 16), sets, chains };
    return this.structure;
  }
}

function within(cidr: string, ip: string): boolean {
  try {
    return cidrContains(cidr, `${ip}/${ip.includes(":") ? 128 : 32}`);
  } catch {
    return false;
  }
}
