// GC, shared by both modes: removes what belongs to attachments of this network that are no
// longer valid (the IP reservations, the host veths and what the per-pod features made for
// them, as DEL would), and what the features left of attachments whose host veth is gone
// (an attachment whose DEL never ran, its veth gone with its pod's namespace). Keeps going
// on errors and reports them all at the end, as the spec asks of GC.
//
// GC runs while other calls (of this network and of others, sharing the tables) add and
// remove pods. What it removes is decided per element from facts that cannot race with them:
// - a veth is this network's by its alias, written at creation, before its elements exist;
// - an element is a leftover only when its veth does not exist. A feature lists its
//   elements first and the links after: an element is added after its veth exists and
//   removed before it is deleted, so an element listed whose veth is missing from a later
//   listing of links is one whose veth went away without it; a veth created after the
//   elements were read is not judged at all;
// - and a leftover is removed only when it records this network (anti-spoofing: or records
//   none, written by an mncni before it recorded networks).
import { CniError, ErrorCode, invalidConfig } from "../cni/errors.ts";
import type { CallContext } from "../cni/plugin-spec.ts";
import { isErrno, Netlink } from "../kernel/index.ts";
import { hostVethName, hostVethsOf } from "./hostveth.ts";
import { ipamClient } from "./ipam-client.ts";
import type { ConfiguredFeature } from "./feature.ts";
import type { ModePolicy } from "./mode.ts";
import type { PluginConf } from "./netconf.ts";

export async function collectGarbage(ctx: CallContext, conf: PluginConf, mode: ModePolicy, features: readonly ConfiguredFeature[]): Promise<void> {
  const attachments = ctx.conf["cni.dev/valid-attachments"];
  // Without the list every attachment would look stale: refuse rather than remove them all.
  if (attachments === undefined) throw invalidConfig("cni.dev/valid-attachments", "missing (required by GC)");
  const network = ctx.conf.name;
  const valid = new Set(attachments.map((a) => hostVethName(network, a.containerID, a.ifname)));
  const problems: string[] = [];
  const host = Netlink.open();
  try {
    const common = { network, bridge: conf.bridge, mode, host };
    // This network's host veths that no attachment claims: as DEL removes them, without addresses to go by.
    for (const link of hostVethsOf(host, network)) {
      if (valid.has(link.name)) continue;
      const detaching = { ...common, hostIfname: link.name, addrs: [] };
      try {
        for (const f of features) f.detach?.(detaching);
        host.delLink(link.index);
        for (const f of features) f.detached?.(detaching);
      } catch (e) {
        if (!isErrno(e, "ENODEV")) problems.push(`cannot delete stale host veth "${link.name}": ${(e as Error).message}`);
      }
    }
    for (const f of features) f.collect?.({ ...common, valid, problems });
  } finally {
    host.close();
  }
  try {
    await ipamClient(ctx).gc();
  } catch (e) {
    problems.push((e as Error).message);
  }
  if (problems.length) throw new CniError(ErrorCode.Internal, `GC of network "${network}" incomplete: ${problems.join("; ")}`);
}
