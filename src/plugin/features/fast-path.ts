// The eBPF fast path as a per-pod feature (`fastPath`, written by the agent run with
// --fast-path on): the node's pod-to-pod program attached to the pod's host-side device
// (../fast-path.ts). Attaching it changes nothing by itself: the program sends to the stack
// every packet of a pod the agent has not put in the plain-pods map.
//
// The fast path's modules (../fast-path.ts and src/kernel/bpf/) are imported only when the
// config turns it on: evaluating them costs a plugin process 0.1-0.2 ms, which an ADD without
// the fast path should not pay (`make depcheck` keeps the plugin's static imports off them).
import { DEFAULT_DATA_DIR } from "../../cni/node-view.ts";
import { CniError, ErrorCode, invalidConfig } from "../../cni/errors.ts";
import type { Feature, PodFeature } from "../feature.ts";

export const fastPath: Feature = {
  name: "fastPath",
  keys: { fastPath: "boolean" },
  configure(net, { cleanup }) {
    if (net.fastPath !== true) return undefined;
    if (!cleanup && net.podDevice === "netkit") throw invalidConfig("fastPath", "cannot be combined with podDevice \"netkit\" (the program works on the veth's Ethernet frames)");
    const dataDir = typeof net.ipam?.dataDir === "string" && net.ipam.dataDir ? net.ipam.dataDir : DEFAULT_DATA_DIR;
    return Promise.all([import("../fast-path.ts"), import("../../kernel/bpf/index.ts")]).then(([fp, bpf]) => hooks(fp, bpf.closeBpfFd, dataDir));
  },
};

function hooks(fp: typeof import("../fast-path.ts"), closeBpfFd: (fd: number) => void, dataDir: string): PodFeature {
  const { attachFastPath, attachProblem, detachFastPath, fastPathDir, fastPathFilter, forgetPlain, openFastPath } = fp;
  return {
    attach(a) {
      // An entry of the addresses' previous holder would send this pod's traffic to its device.
      forgetPlain(fastPathDir(dataDir, a.network), a.podAddrs);
      // A shaped pod keeps its qdiscs (and takes the stack): the agent leaves it out of the map.
      if (attachProblem(a.host, a.veth)) return;
      const { progFd } = openFastPath(fastPathDir(dataDir, a.network));
      try {
        a.undo.push("detach fast path", () => detachFastPath(a.host, a.veth.index));
        attachFastPath(a.host, a.veth.index, progFd);
      } finally {
        // The filter holds the program now.
        closeBpfFd(progFd);
      }
    },
    verify(v) {
      if (attachProblem(v.host, v.veth)) return;
      if (!fastPathFilter(v.host, v.veth.index)) throw new CniError(ErrorCode.Internal, `fast path: no bpf filter on the ingress of "${v.veth.name}"`);
    },
    // The device's qdiscs go with it; this leaves nothing when DEL comes while it is still there.
    detach(d) {
      const dev = d.host.link(d.hostIfname);
      if (dev) detachFastPath(d.host, dev.index);
    },
    // Out of the map before IPAM can give the addresses to another pod (the agent's next pass would too, later).
    detached(d) {
      forgetPlain(fastPathDir(dataDir, d.network), d.addrs);
    },
  };
}
