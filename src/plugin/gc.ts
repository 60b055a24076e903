// GC, shared by both modes: removes what belongs to attachments of this network that are no
// longer valid (the IP reservations, the host veths and their anti-spoofing elements), and
// anti-spoofing elements whose host veth is gone (an attachment whose DEL never ran, its
// veth gone with its pod's namespace). Keeps going on errors and reports them all at the
// end, as the spec asks of GC.
//
// GC runs while other calls (of this network and of others, sharing the mode's
// anti-spoofing table) add and remove pods. What it removes is decided per element from
// facts that cannot race with them:
// - a veth is this network's by its alias, written at creation, before its elements exist;
// - an element is a leftover only when its veth does not exist. The set is listed first and
//   the links after: an element is added after its veth exists and removed before it is
//   deleted, so an element listed whose veth is missing from a later listing of links is
//   one whose veth went away without it; a veth created after the set was read is not
//   judged at all;
// - and a leftover is removed only when its port element records this network (or records
//   none: written by an mncni before it recorded networks).
import { CniError, ErrorCode, invalidConfig } from "../cni/errors.ts";
import type { CallContext } from "../cni/plugin-spec.ts";
import { isErrno, Netlink } from "../kernel/index.ts";
import { antiSpoofFor, type AntiSpoof } from "./antispoof.ts";
import { HOST_VETH_PREFIX, hostVethName, hostVethsOf } from "./hostveth.ts";
import { ipamClient } from "./ipam-client.ts";
import type { ModePolicy } from "./mode.ts";
import type { PluginConf } from "./netconf.ts";
import { removeBandwidth, staleIfbs } from "./bandwidth.ts";
import { hostPortOwners, unmapHostPorts } from "./host-port.ts";

export async function collectGarbage(ctx: CallContext, conf: PluginConf, mode: ModePolicy): Promise<void> {
  const attachments = ctx.conf["cni.dev/valid-attachments"];
  // Without the list every attachment would look stale: refuse rather than remove them all.
  if (attachments === undefined) throw invalidConfig("cni.dev/valid-attachments", "missing (required by GC)");
  const network = ctx.conf.name;
  const valid = new Set(attachments.map((a) => hostVethName(network, a.containerID, a.ifname)));
  const guard = conf.antiSpoofing ? antiSpoofFor(mode.antiSpoof) : undefined;
  const problems: string[] = [];
  const host = Netlink.open();
  try {
    removeStaleVeths(host, network, valid, guard, problems);
    if (guard) removeLeftoverElements(host, network, valid, guard, problems);
    removeLeftoverCapabilities(host, network, valid, problems);
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

/** This network's host veths that no attachment claims: their elements first, then the veth (as DEL does). */
function removeStaleVeths(host: Netlink, network: string, valid: Set<string>, guard: AntiSpoof | undefined, problems: string[]): void {
  for (const link of hostVethsOf(host, network)) {
    if (valid.has(link.name)) continue;
    try {
      guard?.detach(link.name);
      unmapHostPorts(link.name);
      host.delLink(link.index);
      removeBandwidth(host, link.name);
    } catch (e) {
      if (!isErrno(e, "ENODEV")) problems.push(`cannot delete stale host veth "${link.name}": ${(e as Error).message}`);
    }
  }
}

/** Elements of this network (or of no recorded one) whose host veth no longer exists. */
function removeLeftoverElements(host: Netlink, network: string, valid: Set<string>, guard: AntiSpoof, problems: string[]): void {
  try {
    // The set before the links: see the top of this file.
    const ports = guard.guarded();
    const present = new Set(host.links().map((l) => l.name));
    for (const port of ports) {
      const name = port.hostIfname;
      if (!name.startsWith(HOST_VETH_PREFIX) || present.has(name) || valid.has(name)) continue;
      if (port.network !== undefined && port.network !== network) continue;
      try {
        guard.detach(name);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  } catch (e) {
    problems.push((e as Error).message);
  }
}

/**
 * hostPort elements and ifbs of this network whose host veth is gone (the same ordering as
 * for anti-spoofing elements: the elements are listed before the links; an ifb is created
 * after its veth, so one listing of links that has the ifb and not its veth shows a leftover).
 */
function removeLeftoverCapabilities(host: Netlink, network: string, valid: Set<string>, problems: string[]): void {
  try {
    const owners = hostPortOwners();
    const links = host.links();
    const present = new Set(links.map((l) => l.name));
    for (const o of owners) {
      if (o.network !== network || present.has(o.hostIfname) || valid.has(o.hostIfname)) continue;
      try {
        unmapHostPorts(o.hostIfname);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    for (const ifb of staleIfbs(links, network, (veth) => !present.has(veth) && !valid.has(veth))) {
      try {
        host.delLink(ifb.index);
      } catch (e) {
        if (!isErrno(e, "ENODEV")) problems.push(`cannot delete stale ifb "${ifb.name}": ${(e as Error).message}`);
      }
    }
  } catch (e) {
    problems.push((e as Error).message);
  }
}
