// The mncni interface plugin: the protocol handlers, with the mode chosen from config (the
// modes are listed in modes.ts).
import type { CallContext, Handlers } from "../cni/plugin-spec.ts";
import { Netlink } from "../kernel/index.ts";
import { attach } from "./attach.ts";
import { detach } from "./detach.ts";
import { collectGarbage } from "./gc.ts";
import { ipamClient } from "./ipam-client.ts";
import { modeOf } from "./modes.ts";
import { parsePluginConf } from "./netconf.ts";
import { verify } from "./verify.ts";

const load = (ctx: CallContext) => {
  const conf = parsePluginConf(ctx.conf, ctx.env.args);
  return { conf, mode: modeOf(conf) };
};

export const pluginHandlers: Handlers = {
  add(ctx) {
    const { conf, mode } = load(ctx);
    return attach(ctx, conf, mode);
  },
  del(ctx) {
    const { conf, mode } = load(ctx);
    return detach(ctx, conf, mode);
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
  gc(ctx) {
    const { conf, mode } = load(ctx);
    return collectGarbage(ctx, conf, mode);
  },
};
