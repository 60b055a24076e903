// What a per-pod feature is (hostPort, bandwidth, anti-spoofing, ...): a name, the config
// keys it reads, and hooks that ADD, DEL, CHECK and GC call at fixed points. The shared
// mechanism (attach.ts, detach.ts, verify.ts, gc.ts) knows the points, not the features;
// the features are listed, in the order they run, in features.ts. A mode (or a future data
// path) replaces a feature by name or leaves it out (ModePolicy.features).
//
// This module depends on no mode and no config module, so the mode and the config can
// depend on it.
import type { IPConfig, NetConf } from "../cni/types.ts";
import type { Link, Netlink } from "../kernel/index.ts";
import type { AntiSpoofLayout } from "./antispoof.ts";
import type { UndoStack } from "./undo.ts";

/** What a feature may ask of the mode it runs under (ModePolicy provides it). */
export interface ModeFacts {
  /** The anti-spoofing table of this mode: its nftables family, sets and rules. */
  readonly antiSpoof: AntiSpoofLayout;
}

/** Facts every hook gets. */
interface Common {
  /** The network's name (what elements, aliases and tables of a network record). */
  network: string;
  /** The config's bridge name (bridge mode's bridge; routed mode has none, the name is still set). */
  bridge: string;
  mode: ModeFacts;
  /** rtnetlink in the node's namespace. */
  host: Netlink;
}

/** ADD, once IPAM gave the addresses and before anything is wired. */
export interface Addressed extends Common {
  ips: IPConfig[];
  /**
   * The addresses (plain) whose previous holder's conntrack flows may remain: IPAM keeps no
   * record, or no DEL forgot them since that holder (crash, GC). The others' were forgotten.
   */
  flowsMayRemain: readonly string[];
}

/** ADD, the pod wired (device, addresses, routes). Register every side effect's undo on `undo`. */
export interface Attaching extends Common {
  /** The pod device's host end. */
  veth: Link;
  /** The pod end's MAC (NO_MAC where it has none). */
  podMac: string;
  /** As IPAM gave them (the prefix is the range's). */
  ips: IPConfig[];
  /** The pod's addresses, plain. */
  podAddrs: string[];
  undo: UndoStack;
}

/** DEL, and GC for a host veth no attachment claims. */
export interface Detaching extends Common {
  hostIfname: string;
  /** The addresses the pod is released with, plain; none when unknown (GC, or DEL with neither prevResult nor namespace). */
  addrs: string[];
}

/** DEL, IPAM released the pod's addresses. */
export interface Released extends Detaching {
  /**
   * Tells IPAM that the flows of the addresses this DEL released and forgot (Detaching.addrs)
   * are gone, so their next holders need not forget them; undefined when IPAM keeps no record.
   */
  flowsForgotten?: () => void;
}

/** CHECK. */
export interface Verifying extends Common {
  veth: Link;
  /** prevResult's addresses of the pod's interface, plain. */
  podAddrs: string[];
}

/** GC, after the stale host veths went. */
export interface Collecting extends Common {
  /** Host veth names of the valid attachments of this network. */
  valid: ReadonlySet<string>;
  /** Every problem met: GC keeps going and reports them all at the end. */
  problems: string[];
}

/**
 * A feature for one call, its settings bound. Hooks run in list order at each point; a hook
 * that throws fails the call (GC: is reported with the others).
 */
export interface PodFeature {
  /** ADD: the addresses are allocated, nothing is wired yet. */
  addressed?(a: Addressed): void;
  /** ADD: the pod is wired. Register undo; the CNI error of a refusal names the field. */
  attach?(a: Attaching): void;
  /** DEL (and GC): the pod's host veth is still there. */
  detach?(d: Detaching): void;
  /** DEL (and GC): the pod is cut off (its host veth gone or going), its addresses not yet released. */
  detached?(d: Detaching): void;
  /** DEL only: IPAM released the addresses. */
  released?(d: Released): void;
  /** CHECK: throws a CniError naming the first thing missing. */
  verify?(v: Verifying): void;
  /** GC: removes this network's leftovers of attachments whose host veth is gone. */
  collect?(g: Collecting): void;
}

export type FeatureKeyType = "string" | "number" | "boolean";

export interface Feature {
  /** The name a mode overrides it by. */
  readonly name: string;
  /** Top-level config keys this feature reads, with their JSON type (unknown keys are refused). */
  readonly keys?: Readonly<Record<string, FeatureKeyType>>;
  /**
   * Reads this feature's settings for one call; undefined: off for this call. `cleanup`
   * (DEL, GC): per-pod runtime values (runtimeConfig) are not needed and not validated,
   * so a DEL always cleans up what the config says. A promise: the feature's modules are
   * imported only when it is on (the fast path's: features/fast-path.ts).
   */
  configure(net: NetConf, o: { cleanup: boolean }): PodFeature | undefined | Promise<PodFeature | undefined>;
}

/** What a mode (or a data path) does its own way: a feature replaced by name, or left out (null). */
export type FeatureOverrides = Readonly<Record<string, Feature | null>>;

/** A feature configured for one call (what PluginConf lists). */
export interface ConfiguredFeature extends PodFeature {
  readonly name: string;
}
