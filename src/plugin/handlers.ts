// The mncni interface plugin: the protocol handlers, with the mode chosen from config.
// Modes are registered here, in plain sight.
import { CniError, ErrorCode, invalidConfig } from "../cni/errors.ts";
import type { CallContext, Handlers } from "../cni/plugin-spec.ts";
import { isErrno, Netlink } from "../kernel/index.ts";
import { antiSpoofFor } from "./antispoof.ts";
import { attach } from "./attach.ts";
import { bridgeMode } from "./bridge.ts";
import { detach } from "./detach.ts";
import { HOST_VETH_PREFIX, hostVethName, parseHostVethAlias } from "./hostveth.ts";
import { ipamClient } from "./ipam-client.ts";
import type { ModePolicy } from "./mode.ts";
import { parsePluginConf, type Mode } from "./netconf.ts";
import { routedMode } from "./routed.ts";
import { verify } from "./verify.ts";

export const MODES: Record<Mode, ModePolicy> = { bridge: bridgeMode, routed: routedMode };

const load = (ctx: CallContext) => {
  const conf = parsePluginConf(ctx.conf, ctx.env.args);
  return { conf, mode: MODES[conf.mode] };
};

/**
 * Removes host veths of this network whose attachment is no longer valid, and anti-spoofing
 * elements of host veths that no longer exist (an attachment whose DEL never ran, its veth
 * gone with its pod's namespace). Elements are added after their veth exists and removed
 * before it is deleted, so one without its veth is a leftover, whatever its network.
 */
function collectVeths(ctx: CallContext, antiSpoofing: boolean, mode: Mode): string[] {
  const valid = new Set((ctx.conf["cni.dev/valid-attachments"] ?? []).map((a) => hostVethName(ctx.conf.name, a.containerID, a.ifname)));
  const problems: string[] = [];
  const guard = antiSpoofFor(mode);
  const host = Netlink.open();
  try {
    const links = host.links();
    for (const link of links) {
      if (!link.name.startsWith(HOST_VETH_PREFIX) || link.kind !== "veth" || valid.has(link.name)) continue;
      if (parseHostVethAlias(link.alias)?.network !== ctx.conf.name) continue;
      try {
        if (antiSpoofing) guard.detach(link.name);
        host.delLink(link.index);
      } catch (e) {
        if (!isErrno(e, "ENODEV")) problems.push(`cannot delete stale host veth "${link.name}": ${(e as Error).message}`);
      }
    }
    if (antiSpoofing) {
      const present = new Set(links.map((l) => l.name));
      try {
        for (const name of guard.guarded()) {
          if (name.startsWith(HOST_VETH_PREFIX) && !present.has(name) && !valid.has(name)) guard.detach(name);
        }
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  } finally {
    host.close();
  }
  return problems;
}

export const pluginHandlers: Handlers = {
  add(ctx) {
    const { conf, mode } = load(ctx);
    return attach(ctx, conf, mode);
  },
  del(ctx) {
    return detach(ctx, load(ctx).conf);
  },
  check(ctx) {
    const { conf, mode } = load(ctx);
    return verify(ctx, conf, mode);
  },
  async status(ctx) {
    const { conf, mode } = load(ctx);
    const host = Netlink.open();
    try {
      mode.status({ conf, host });
    } finally {
      host.close();
    }
    await ipamClient(ctx).status();
  },
  async gc(ctx) {
    const { conf } = load(ctx);
    // Without the list every attachment would look stale: refuse rather than remove them all.
    if (ctx.conf["cni.dev/valid-attachments"] === undefined) throw invalidConfig("cni.dev/valid-attachments", "missing (required by GC)");
    // Keep going on errors and report them all at the end, as the spec asks of GC.
    const problems = collectVeths(ctx, conf.antiSpoofing, conf.mode);
    try {
      await ipamClient(ctx).gc();
    } catch (e) {
      problems.push((e as Error).message);
    }
    if (problems.length) throw new CniError(ErrorCode.Internal, `GC of network "${ctx.conf.name}" incomplete: ${problems.join("; ")}`);
  },
};
