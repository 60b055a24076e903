// The standalone IPAM plugin (the executable invoked as mncni-ipam): the protocol is the
// dispatcher's job, these handlers only map a call onto the IPAM verbs.
import { invalidConfig } from "../cni/errors.ts";
import type { CallContext, Handlers } from "../cni/plugin-spec.ts";
import type { Result } from "../cni/types.ts";
import { parseIpamConfig } from "./config.ts";
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus } from "./ipam.ts";
import { requestedIpsFrom } from "./requested-ips.ts";

const keyOf = (ctx: CallContext) => ({ network: ctx.conf.name, containerId: ctx.env.containerId, ifname: ctx.env.ifname });

export const ipamHandlers: Handlers = {
  add(ctx): Result {
    const conf = parseIpamConfig(ctx.conf.ipam);
    const result = ipamAdd(conf, { ...keyOf(ctx), requestedIps: requestedIpsFrom(ctx.conf, ctx.env) });
    return { ...result, cniVersion: ctx.conf.cniVersion };
  },
  del(ctx) {
    ipamDel(parseIpamConfig(ctx.conf.ipam), keyOf(ctx));
  },
  check(ctx) {
    // prevResult holds what this IPAM returned at ADD (possibly via the main plugin).
    const expected = ctx.conf.prevResult?.ips?.map((i) => i.address);
    ipamCheck(parseIpamConfig(ctx.conf.ipam), keyOf(ctx), expected);
  },
  gc(ctx) {
    const valid = ctx.conf["cni.dev/valid-attachments"];
    // Without the list every reservation would look stale: refuse rather than free them all.
    if (valid === undefined) throw invalidConfig("cni.dev/valid-attachments", "missing (required by GC)");
    ipamGc(parseIpamConfig(ctx.conf.ipam), ctx.conf.name, valid);
  },
  status(ctx) {
    ipamStatus(parseIpamConfig(ctx.conf.ipam), ctx.conf.name);
  },
};
