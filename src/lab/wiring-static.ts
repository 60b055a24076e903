// Static wiring: the lab writes a conflist for the Go reference plugins (bridge or ptp with
// host-local), programs host-gw routes and the masquerade rule itself. No agent runs.
import { existsSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { desiredRoutes, routeDiff } from "./expected-routes.ts";
import { ipBatch, run } from "./sh.ts";
import type { LabState, NodeState } from "./state.ts";
import { nodePaths } from "./topology.ts";
import type { NodeWiring } from "./node-wiring.ts";

const REF_PLUGIN_DIR = "/usr/lib/cni";
const REF_PLUGINS = ["bridge", "ptp", "host-local", "loopback", "portmap"];

function referenceConflist(s: LabState, node: NodeState): object {
  const paths = nodePaths(s.name, node.name);
  const ipam = {
    type: "host-local",
    ranges: node.podCidrs.map((subnet) => [{ subnet }]),
    routes: node.podCidrs.map((c) => ({ dst: c.includes(":") ? "::/0" : "0.0.0.0/0" })),
    dataDir: paths.ipamDir,
  };
  const main =
    s.options.mode === "bridge"
      ? { type: "bridge", bridge: "cni0", isGateway: true, ipMasq: false, hairpinMode: true, ipam }
      : { type: "ptp", ipMasq: false, ipam };
  return { cniVersion: "1.0.0", name: "mncni-lab", plugins: [main] };
}

function masquerade(s: LabState, node: NodeState): void {
  const cidrs = [{ f: "ip", c: s.options.clusterCidr }, ...(s.options.clusterCidr6 ? [{ f: "ip6", c: s.options.clusterCidr6 }] : [])];
  const rules = cidrs
    .map(
      ({ f, c }) => `table ${f} mncni-lab {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ${f} saddr ${c} ${f} daddr != ${c} masquerade
  }
}
`,
    )
    .join("");
  run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"], { stdin: rules });
}

export const staticWiring: NodeWiring = {
  kind: "static",

  async start(s, node) {
    if (!existsSync(join(REF_PLUGIN_DIR, "bridge"))) {
      throw new Error(`cannot use static wiring: Go reference plugins missing in ${REF_PLUGIN_DIR} (apt-get install containernetworking-plugins)`);
    }
    const p = nodePaths(s.name, node.name);
    mkdirSync(p.binDir, { recursive: true });
    mkdirSync(p.confDir, { recursive: true });
    for (const b of REF_PLUGINS) if (!existsSync(join(p.binDir, b))) symlinkSync(join(REF_PLUGIN_DIR, b), join(p.binDir, b));
    masquerade(s, node);
    const file = join(p.confDir, "10-mncni.conflist");
    writeFileSync(`${file}.tmp`, JSON.stringify(referenceConflist(s, node), null, 2));
    renameSync(`${file}.tmp`, file);
  },

  async converge(s) {
    for (const node of s.nodes) {
      const { stale } = routeDiff(s, node);
      const lines = [
        ...stale.map((r) => `route del ${r.dst} via ${r.gateway}`),
        ...desiredRoutes(s, node).map((r) => `route replace ${r.dst} via ${r.gateway}`),
      ];
      if (lines.length) ipBatch(node.ns, lines);
    }
  },

  async stop() {
    // Everything static wiring made lives in the node namespace, removed with it.
  },
};
