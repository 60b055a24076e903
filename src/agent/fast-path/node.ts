// The fast path on this node, as the agent keeps it: the kernel facts each pass reads (pods'
// devices), the program and the plain-pods map (adopted by their recorded IDs after a restart,
// loaded when none is left), the map brought in line with the plain pods, the cross-node part
// (underlay.ts) with the pass's host-gw routes, and removal (the fast path turned off, or
// --uninstall): every filter of ours (pods' and underlay's) and the record.
import { type Netlink } from "../../kernel/index.ts";
import { closeBpfFd, type PlainPodsMap, type VerdictCount } from "../../kernel/bpf/index.ts";
import type { GuardedPort } from "../../plugin/antispoof.ts";
import { attachFastPath, detachFastPath, fastPathDir, fastPathFilter, hasRecord, openFastPath, readRecord, reloadOver, removeRecord, withFastPathLock, type FastPathObjects } from "../../plugin/fast-path.ts";
import { hostPortOwners } from "../../plugin/host-port.ts";
import type { Mode } from "../../plugin/netconf.ts";
import type { PodDevice, PodFastPath } from "./plain.ts";
import { detachUnderlay, underlayDevices, UnderlayFastPath } from "./underlay.ts";

export interface FastPathNodeOptions {
  host: Netlink;
  mode: Mode;
  bridge: string;
  network: string;
  ipamDataDir: string;
  /** Anti-spoofing's record of each pod device (its MAC and addresses). */
  guarded: () => GuardedPort[];
}

/** The pods' devices of a network on this node, by address, as the kernel shows them. */
export function readPodDevices(o: Omit<FastPathNodeOptions, "ipamDataDir">): Map<string, PodDevice> {
  const links = new Map(o.host.links().map((l) => [l.name, l]));
  const kinds = new Map<number, string[]>();
  for (const q of o.host.qdiscs()) kinds.set(q.index, [...(kinds.get(q.index) ?? []), q.kind]);
  let hostPorts: Set<string>;
  try {
    hostPorts = new Set(hostPortOwners().filter((h) => h.network === o.network).map((h) => h.hostIfname));
  } catch {
    hostPorts = new Set();
  }
  const bridgeMac = o.mode === "bridge" ? links.get(o.bridge)?.mac : undefined;
  const out = new Map<string, PodDevice>();
  for (const g of o.guarded()) {
    if (g.network !== o.network || !g.mac) continue;
    const dev = links.get(g.hostIfname);
    const hostMac = o.mode === "bridge" ? bridgeMac : dev?.mac;
    if (!dev || !hostMac) continue;
    const k = kinds.get(dev.index) ?? [];
    const d: PodDevice = {
      hostIfname: dev.name, index: dev.index, podMac: g.mac, hostMac, ips: g.ips ?? [],
      attached: fastPathFilter(o.host, dev.index, { clsact: k.includes("clsact") }) !== undefined, shaped: k.includes("tbf") || k.includes("ingress"), hostPort: hostPorts.has(dev.name),
    };
    for (const ip of d.ips) out.set(ip, d);
  }
  return out;
}

/** Every device of the namespace carrying our program (the fast path's, whatever network). */
export function attachedDevices(host: Netlink): { index: number; name: string; progId: number }[] {
  const clsact = new Set(host.qdiscs().filter((q) => q.kind === "clsact").map((q) => q.index));
  return host.links().flatMap((l) => {
    const f = fastPathFilter(host, l.index, { clsact: clsact.has(l.index) });
    return f ? [{ index: l.index, name: l.name, progId: f.progId }] : [];
  });
}

/** Removes every filter of ours and the record; returns what it removed. */
export function removeFastPath(host: Netlink, dirs: string[]): string[] {
  const done: string[] = [];
  for (const d of attachedDevices(host)) {
    detachFastPath(host, d.index);
    done.push(`fast path filter on ${d.name}`);
  }
  for (const d of underlayDevices(host)) {
    detachUnderlay(host, d.index);
    done.push(`fast path underlay filter on ${d.name}`);
  }
  for (const dir of dirs) if (removeRecord(dir)) done.push(`fast path record in ${dir}`);
  return done;
}

export class FastPathNode {
  private objects?: FastPathObjects & { map: PlainPodsMap };
  readonly dir: string;
  private readonly underlay: UnderlayFastPath;

  constructor(private readonly o: FastPathNodeOptions) {
    this.dir = fastPathDir(o.ipamDataDir, o.network);
    this.underlay = new UnderlayFastPath(o.host, this.dir);
  }

  devices(): Map<string, PodDevice> {
    return readPodDevices(this.o);
  }

  /** The program and map, adopted or loaded; filters of another program of ours re-pointed to this build's. */
  private open(changes: string[]): FastPathObjects & { map: PlainPodsMap } {
    if (this.objects) {
      // Still the recorded ones (nobody reloaded them behind us): keep them.
      if (readRecord(this.dir)?.prog === this.objects.record.prog) return this.objects;
      this.close();
    }
    const got = openFastPath(this.dir, { keepMap: true }) as FastPathObjects & { map: PlainPodsMap };
    changes.push(got.loaded ? `load fast path program ${got.record.prog} over map ${got.record.map}` : `adopt fast path program ${got.record.prog} and map ${got.record.map}`);
    let objects = got;
    if (!got.loaded) {
      const newer = withFastPathLock(this.dir, () => reloadOver(this.dir, got));
      if (newer) {
        closeBpfFd(got.progFd);
        if (got.counters && got.counters !== newer.counters) got.counters.close();
        if (got.hostGw && got.hostGw !== newer.hostGw) got.hostGw.close();
        objects = newer as FastPathObjects & { map: PlainPodsMap };
        changes.push(`replace fast path program with this build's (${newer.record.prog})`);
      }
    }
    this.objects = objects;
    for (const d of attachedDevices(this.o.host)) {
      if (d.progId === objects.record.prog) continue;
      attachFastPath(this.o.host, d.index, objects.progFd);
      changes.push(`re-attach fast path program to ${d.name}`);
    }
    return objects;
  }

  /** Brings the map in line with the plain pods; returns what changed. */
  sync(pods: Iterable<PodFastPath>): string[] {
    const changes: string[] = [];
    const { map } = this.open(changes);
    const want = new Map<string, PodFastPath>();
    // Every address of a plain pod (the program keys both families), each behind the pod's device.
    for (const p of pods) if (!p.notPlain.length && p.device) for (const ip of p.ips) if (p.device.ips.includes(ip)) want.set(ip, p);
    for (const ip of map.ips()) {
      if (want.has(ip)) continue;
      map.delete(ip);
      changes.push(`fast path: ${ip} takes the stack`);
    }
    for (const [ip, p] of want) {
      const d = p.device!;
      const cur = map.get(ip);
      if (cur && cur.podMac === d.podMac && cur.hostMac === d.hostMac && cur.hostIndex === d.index) continue;
      map.set({ ip, podMac: d.podMac, hostMac: d.hostMac, hostIndex: d.index });
      changes.push(`fast path: ${p.pod} (${ip}) is plain`);
    }
    const { hostGw, counters, record } = this.objects!;
    if (hostGw) changes.push(...this.underlay.sync({ plain: map.fd, hostGw, ...(counters ? { counters: counters.fd } : {}), record }));
    return changes;
  }

  /** Takes every pod out of the map (a pass that could not bring it in line); never throws. */
  emptyMap(): string[] {
    try {
      const map = this.objects?.map;
      if (!map) return [];
      const ips = map.ips();
      for (const ip of ips) map.delete(ip);
      // Nothing plain: the host-gw routes may stay (no pod of here is sent, none received).
      return ips.length ? [`fast path: every pod takes the stack (${ips.length} taken out of the map)`] : [];
    } catch {
      return [];
    }
  }

  /** Packets per verdict since the counters were created (empty when there are none). */
  verdicts(): VerdictCount[] {
    return this.objects?.counters?.read() ?? [];
  }

  /** The plain-pods map's addresses (empty when there are no objects). */
  plainIps(): string[] {
    return this.objects?.map.ips() ?? [];
  }

  /** The fast path turned off: what an earlier run left goes (filters, record, objects). */
  remove(): string[] {
    this.close();
    // The plugin records the objects before it attaches them: no record, nothing of ours.
    if (!hasRecord(this.dir)) return [];
    return removeFastPath(this.o.host, [this.dir]);
  }

  close(): void {
    if (!this.objects) return;
    closeBpfFd(this.objects.progFd);
    this.objects.map.close();
    this.objects.counters?.close();
    this.objects.hostGw?.close();
    this.objects = undefined;
    this.underlay.close();
  }
}
