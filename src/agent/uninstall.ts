// `mncni agent --uninstall`: removes what mncni created on this node (routes tagged with
// RTPROT_MNCNI, every nftables table mncni owns (src/firewall/names.ts), our rules in foreign
// chains, the conflist, the installed binaries, the bridge, and what each routing backend
// owns, through its remove()), the fast path's filters and record. Sysctls are left as they are: their previous values are
// unknown, and other software may rely on forwarding. The directories are those of the
// run recorded in the state file (see run-record.ts) and those given to this command.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Netlink, RTPROT_MNCNI, isErrno } from "../kernel/index.ts";
import { leafBackends, routingBackends, type RoutingKernel, type RoutingSettings } from "./routing/index.ts";
import type { AgentConfig } from "./config.ts";
import { CONFLIST_NAME, NETWORK_NAME } from "./conflist.ts";
import { removeFastPath } from "./fast-path/node.ts";
import { fastPathDir } from "../plugin/fast-path.ts";
import { PLUGIN_NAMES } from "./install.ts";
import type { Logger } from "../base/log.ts";
import { planMasqueradeRemoval } from "./masquerade.ts";
import { ownsTable } from "../firewall/names.ts";
import { systemNft, type Nft } from "./nft-ruleset.ts";
import { readRunRecord, type RunRecord } from "./run-record.ts";

export interface UninstallReport {
  removed: string[];
  /** Left in place on purpose, with the reason (a bridge with pods, without --force). */
  kept: string[];
  /** Removed although pods still used it (--force). */
  forced: string[];
  errors: string[];
}

export interface UninstallTargets {
  /** Each routing backend's settings: every registered backend removes what it owns. */
  routingSettings?: RoutingSettings;
  confDirs: string[];
  binDirs: string[];
  bridges: string[];
  /** Delete a bridge even when pods are attached to it. */
  force: boolean;
}

export type UninstallKernel = RoutingKernel & Pick<Netlink, "routes" | "delRoute" | "link" | "links" | "delLink">;

const unique = (xs: (string | undefined)[]) => [...new Set(xs.filter((x): x is string => !!x))];

/** What to remove: the recorded run's directories and bridge, and this command's. */
export function uninstallTargets(cfg: Pick<AgentConfig, "cniConfDir" | "cniBinDir" | "bridge" | "force"> & Partial<Pick<AgentConfig, "routingSettings">>, record: RunRecord | undefined): UninstallTargets {
  return {
    ...(cfg.routingSettings ? { routingSettings: cfg.routingSettings } : {}),
    confDirs: unique([record?.cniConfDir, cfg.cniConfDir]),
    binDirs: unique([record?.cniBinDir, cfg.cniBinDir]),
    bridges: unique([record?.bridge, cfg.bridge]),
    force: cfg.force,
  };
}

export function uninstall(t: UninstallTargets, deps: { nl: UninstallKernel; nft: Nft }): UninstallReport {
  const rep: UninstallReport = { removed: [], kept: [], forced: [], errors: [] };
  const attempt = (what: string, fn: () => boolean | void) => {
    try {
      if (fn() !== false) rep.removed.push(what);
    } catch (e) {
      rep.errors.push(`cannot remove ${what}: ${(e as Error).message}`);
    }
  };
  // Every routing backend removes what it owns by its own rule (VXLAN: its devices, with
  // their FDB entries and neighbours, and its routes), whichever one this node used.
  for (const b of leafBackends(Object.values(routingBackends(t.routingSettings)))) {
    const r = b.remove(deps.nl);
    rep.removed.push(...r.changes.map((c) => `${c} (routing ${b.name})`));
    rep.errors.push(...r.errors.map((e) => `routing ${b.name}: ${e}`));
  }
  // What is left with mncni's route protocol: the routed mode's per-pod routes, and routes of a
  // backend this build no longer has.
  for (const r of deps.nl.routes({ table: 0, protocol: RTPROT_MNCNI })) {
    attempt(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ""}`, () => {
      try {
        deps.nl.delRoute({ dst: r.dst, family: r.family, gw: r.gw, oif: r.oif, table: r.table, protocol: RTPROT_MNCNI });
      } catch (e) {
        if (!isErrno(e, "ESRCH")) throw e;
      }
    });
  }
  attempt("nftables tables mncni* and mncni rules in other tables", () => {
    const current = deps.nft.list();
    let script = planMasqueradeRemoval(current);
    // Every table mncni owns (src/firewall/names.ts), the plugin's too (anti-spoofing, hostPort, standalone ipMasq).
    for (const t of current.tables) {
      if (ownsTable(t.family, t.name) && !script.includes(`delete table ${t.family} ${t.name}\n`)) script += `delete table ${t.family} ${t.name}\n`;
    }
    if (!script) return false;
    deps.nft.apply(script, "remove mncni nftables state");
  });
  for (const name of t.bridges) {
    attempt(`bridge ${name}`, () => {
      const br = deps.nl.link(name);
      if (!br || br.kind !== "bridge") return false;
      // Deleting the bridge cuts every pod on it off the network (their veths stay, unplugged).
      const ports = deps.nl.links().filter((l) => l.master === br.index).map((l) => l.name);
      if (ports.length && !t.force) {
        rep.kept.push(`bridge ${name}: ${ports.length} pod interface(s) still attached (${ports.join(", ")}); delete the pods first, or pass --force to cut them off`);
        return false;
      }
      deps.nl.delLink(br.index);
      if (ports.length) rep.forced.push(`bridge ${name} with ${ports.length} pod interface(s) attached (${ports.join(", ")}): those pods have no network until they are recreated`);
    });
  }
  const files = [...t.confDirs.map((d) => join(d, CONFLIST_NAME)), ...t.binDirs.flatMap((d) => PLUGIN_NAMES.map((n) => join(d, n)))];
  for (const path of files) {
    attempt(path, () => {
      if (!existsSync(path)) return false;
      rmSync(path);
    });
  }
  return rep;
}

/** The --uninstall command: reads the run record, removes, logs; returns the exit code. */
export function runUninstall(cfg: AgentConfig, log: Logger): number {
  let record: RunRecord | undefined;
  const errors: string[] = [];
  try {
    record = readRunRecord(cfg.stateFile);
    if (record) log.info("uninstalling the recorded run", { stateFile: cfg.stateFile, cniConfDir: record.cniConfDir, cniBinDir: record.cniBinDir, bridge: record.bridge });
    else log.info("no run record: uninstalling from the given (or default) directories", { stateFile: cfg.stateFile });
  } catch (e) {
    errors.push((e as Error).message);
  }
  const t = uninstallTargets(cfg, record);
  const rep = (() => {
    using nl = Netlink.open();
    const rep = uninstall(t, { nl, nft: systemNft });
    // The fast path's filters (found on the devices, whatever recorded them) and its record; the
    // program and map go with their last holder.
    try {
      rep.removed.push(...removeFastPath(nl, [fastPathDir(cfg.ipamDataDir, NETWORK_NAME)]));
    } catch (e) {
      rep.errors.push(`cannot remove the fast path: ${(e as Error).message}`);
    }
    return rep;
  })();
  rep.errors.unshift(...errors);
  // The record goes last, and only when nothing was left: a second run (--force) needs it.
  if (record && !rep.errors.length && !rep.kept.length) {
    rmSync(cfg.stateFile, { force: true });
    rep.removed.push(cfg.stateFile);
  }
  for (const r of rep.removed) log.info(`removed ${r}`);
  for (const f of rep.forced) log.warn(`removed ${f}`);
  for (const k of rep.kept) log.warn(`not removed: ${k}`);
  for (const e of rep.errors) log.error(e);
  log.info("uninstall finished", { removed: rep.removed.length, kept: rep.kept.length, errors: rep.errors.length });
  return rep.errors.length || rep.kept.length ? 1 : 0;
}
