// Step "staleSandboxes": a sandbox whose DEL never came (containerd killed and its state
// wiped, a node's runtime replaced; containerd 1.6 never calls CNI GC) keeps its address,
// its host-side elements and, on reuse, would leave its flows. The agent DELs such an
// attachment itself, as the runtime would have, by running the installed plugin with the
// conflist's config (without agentSocket: this thread is the server). An attachment is
// stale when its network namespace is gone (its host veth, whose peer lived there, is gone
// with it) and no Pod of this node in the source shows its address, continuously for
// --sandbox-gc-grace seconds as this agent saw it: a pod being created (its address reserved
// a moment before its veth exists) is never collected, and a restarted agent starts counting
// again. DEL needs neither the namespace nor prevResult; the address's conntrack flows are
// forgotten by its next ADD (the IPAM's flow mark stays).
import { spawnSync } from "bun";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ipamReservations } from "../../ipam/index.ts";
import { hostVethName } from "../../plugin/hostveth.ts";
import { CONFLIST_NAME, NETWORK_NAME } from "../conflist.ts";
import type { Pass, StepModule } from "./step.ts";

const DEFAULT_GRACE_S = 120;

export const staleSandboxesStep: StepModule<"staleSandboxes"> = {
  name: "staleSandboxes",
  create({ cfg, deps }) {
    /** When each attachment ("containerId/ifname") was first seen stale. */
    const since = new Map<string, number>();
    return {
      run(p: Pass) {
        const grace = (cfg.sandboxGcGrace ?? DEFAULT_GRACE_S) * 1000;
        if (grace <= 0) return;
        const now = performance.now();
        const held = new Set<string>();
        for (const pod of p.state.pods.values()) {
          if (pod.nodeName !== cfg.nodeName || pod.phase === "Succeeded" || pod.phase === "Failed") continue;
          for (const ip of pod.podIPs) held.add(ip);
        }
        const seen = new Set<string>();
        const due: { containerId: string; ifname: string }[] = [];
        for (const r of ipamReservations(cfg.ipamDataDir, NETWORK_NAME)) {
          const ifname = r.ifname ?? "eth0";
          const key = `${r.containerId}/${ifname}`;
          if (held.has(r.address) || deps.nl.link(hostVethName(NETWORK_NAME, r.containerId, ifname))) continue;
          seen.add(key);
          const first = since.get(key) ?? now;
          since.set(key, first);
          if (now - first >= grace && !due.some((d) => d.containerId === r.containerId && d.ifname === ifname)) due.push({ containerId: r.containerId, ifname });
        }
        for (const k of since.keys()) if (!seen.has(k)) since.delete(k);
        if (due.length === 0) return;
        const conf = pluginConf(join(cfg.cniConfDir, CONFLIST_NAME));
        if (!conf) return void p.r.problems.push(`cannot collect sandboxes whose DEL never came (${due.map((d) => d.containerId).join(", ")}): no mncni plugin in ${join(cfg.cniConfDir, CONFLIST_NAME)}`);
        for (const d of due) {
          const r = spawnSync([join(cfg.cniBinDir, "mncni")], {
            env: { ...process.env, CNI_COMMAND: "DEL", CNI_CONTAINERID: d.containerId, CNI_NETNS: "", CNI_IFNAME: d.ifname, CNI_PATH: cfg.cniBinDir },
            stdin: Buffer.from(JSON.stringify(conf)),
            stdout: "pipe",
            stderr: "pipe",
          });
          p.r.writes++;
          if (r.exitCode === 0) {
            since.delete(`${d.containerId}/${d.ifname}`);
            p.r.changes.push(`collect sandbox ${d.containerId} (${d.ifname}): its network namespace is gone, no Pod here has its address, and no DEL came`);
          } else {
            throw new Error(`cannot DEL sandbox ${d.containerId} (${d.ifname}) whose DEL never came: ${(r.stdout.toString() + r.stderr.toString()).trim()}`);
          }
        }
      },
    };
  },
};

/** The mncni plugin's config as the runtime passes it (network name and cniVersion from the conflist), without agentSocket. */
function pluginConf(file: string): Record<string, unknown> | undefined {
  let list: { cniVersion?: string; name?: string; plugins?: Record<string, unknown>[] };
  try {
    list = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
  const plugin = list.plugins?.find((x) => x.type === "mncni");
  if (!plugin) return undefined;
  const { agentSocket: _served, ...rest } = plugin;
  return { cniVersion: list.cniVersion, name: list.name, ...rest };
}
