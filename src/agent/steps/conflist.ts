// Step "conflist": the CNI network configuration in --cni-conf-dir, written once pods can work
// (Kubernetes treats a node with one as Ready), with the pod MTU the routing backend leaves.
import { join } from "node:path";
import { ChainVersionPicker } from "../cni-version.ts";
import { writeFileIfChanged } from "../atomic-file.ts";
import { CONFLIST_NAME, conflistFor } from "../conflist.ts";
import { podMTU, podMTUMismatches, podMTUWhy, underlayMTU } from "../routing/index.ts";
import { familyOf } from "../../net/ip.ts";
import { selfIPs, type Pass, type StepModule } from "./step.ts";

export const conflistStep: StepModule<"conflist"> = {
  name: "conflist",
  needsAdmission: true,
  create(ctx) {
    const { cfg, deps } = ctx;
    const versions = new ChainVersionPicker(cfg.cniBinDir);
    let done = false;
    return {
      run(p: Pass) {
        // Kubernetes treats a node with a CNI config as Ready: only write it once pods can work.
        if (!p.own.length) {
          if (!done) p.r.problems.push(`node "${cfg.nodeName}" has no pod CIDR yet: not writing ${CONFLIST_NAME}`);
          return;
        }
        // Pods on a node whose routes are not in place could not reach the others yet.
        if (p.failed.has("routes")) return;
        const ips = selfIPs(p, cfg.nodeName);
        const nl = deps.nl;
        // Encapsulation, if the backend adds any, comes out of the underlay's MTU.
        const underlay = underlayMTU(ips, p.localAddrs, (i) => nl.link(i)?.mtu);
        const mtu = podMTU({
          underlay,
          overhead: (f) => ctx.routing.active.mtuOverhead(f),
          selfIPs: ips,
          explicit: cfg.mtu,
        });
        if (mtu.problem) p.r.problems.push(mtu.problem);
        const out = conflistFor({
          podCIDRs: p.own,
          mode: cfg.mode,
          bridge: cfg.bridge,
          mtu: mtu.mtu,
          ipamDataDir: cfg.ipamDataDir,
          cniLogFile: cfg.cniLogFile,
          chainPortmap: cfg.chainPortmap,
          cniSocket: cfg.cniSocket === "off" ? undefined : cfg.cniSocket,
          policyHold: p.policyHold,
          fastPath: cfg.fastPath === true,
        }, cfg.cniVersion, versions);
        if ("problem" in out) return void p.r.problems.push(out.problem);
        const path = join(cfg.cniConfDir, CONFLIST_NAME);
        if (writeFileIfChanged(path, out.text)) {
          p.r.writes++;
          p.r.changes.push(`write ${path}`);
        }
        if (ctx.ownInUse.cidrs?.join() !== p.own.join()) ctx.ownInUse.cidrs = p.own;
        done = true;
        p.r.podMTU = mtu.mtu;
        // The same words `lab status`, `mncni status` and `inspect` show (served on /readyz).
        const overhead = Math.max(0, ...[...new Set(ips.map(familyOf))].map((f) => ctx.routing.active.mtuOverhead(f)));
        p.r.podMTUWhy = podMTUWhy({ mtu: mtu.mtu, ...(underlay !== undefined ? { underlay } : {}), overhead, routing: ctx.routing.active.name });
        // Not a problem (the node stays ready): the agent reports each as a warning.
        p.r.podMTUMismatch = podMTUMismatches(cfg.nodeName, mtu.mtu, p.state.nodes.values());
      },
      finish(p: Pass) {
        p.r.conflistWritten = done;
      },
    };
  },
};
