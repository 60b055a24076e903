// `mncni agent --uninstall`: removes what mncni created on this node (routes tagged with
// RTPROT_MNCNI, every nftables table named mncni*, our rules in foreign chains, the conflist,
// the installed binaries, the bridge). Sysctls are left as they are: their previous values
// are unknown, and other software may rely on forwarding.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { RTPROT_MNCNI, isErrno, type Netlink } from "../kernel/index.ts";
import type { AgentConfig } from "./config.ts";
import { CONFLIST_NAME } from "./conflist.ts";
import { PLUGIN_NAMES } from "./install.ts";
import { planMasqueradeRemoval } from "./masquerade.ts";
import type { Nft } from "./nft-ruleset.ts";

export interface UninstallReport {
  removed: string[];
  errors: string[];
}

export type UninstallKernel = Pick<Netlink, "routes" | "delRoute" | "link" | "delLink">;

export function uninstall(cfg: Pick<AgentConfig, "cniConfDir" | "cniBinDir" | "bridge">, deps: { nl: UninstallKernel; nft: Nft }): UninstallReport {
  const rep: UninstallReport = { removed: [], errors: [] };
  const attempt = (what: string, fn: () => boolean | void) => {
    try {
      if (fn() !== false) rep.removed.push(what);
    } catch (e) {
      rep.errors.push(`cannot remove ${what}: ${(e as Error).message}`);
    }
  };
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
    // The plugin's own tables (anti-spoofing, standalone ipMasq) go too.
    for (const t of current.tables) {
      if (t.name.startsWith("mncni") && !script.includes(`delete table ${t.family} ${t.name}\n`)) script += `delete table ${t.family} ${t.name}\n`;
    }
    if (!script) return false;
    deps.nft.apply(script, "remove mncni nftables state");
  });
  attempt(`bridge ${cfg.bridge}`, () => {
    const br = deps.nl.link(cfg.bridge);
    if (!br || br.kind !== "bridge") return false;
    deps.nl.delLink(br.index);
  });
  for (const path of [join(cfg.cniConfDir, CONFLIST_NAME), ...PLUGIN_NAMES.map((n) => join(cfg.cniBinDir, n))]) {
    attempt(path, () => {
      if (!existsSync(path)) return false;
      rmSync(path);
    });
  }
  return rep;
}
