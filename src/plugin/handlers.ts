// The mncni interface plugin: the protocol handlers, with the mode chosen from config (the
// modes are listed in modes.ts).
import type { CallContext, Handlers } from "../cni/plugin-spec.ts";
import { Netlink } from "../kernel/index.ts";
import { attach } from "./attach.ts";
import { detach } from "./detach.ts";
import { collectGarbage } from "./gc.ts";
import { ipamClient } from "./ipam-client.ts";
import { modeOf } from "./modes.ts";
import { configureFeatures } from "./features/list.ts";
import { parsePluginConf, type ParseOpts } from "./netconf.ts";
import { verify } from "./verify.ts";

/** cleanup (DEL, GC): runtimeConfig is not needed, so not validated (DEL cleans up whatever it says). */
const load = (ctx: CallContext, o: ParseOpts = {}) => {
  const conf = parsePluginConf(ctx.conf, ctx.env.args, o);
  const mode = modeOf(conf);
  return { conf, mode, features: configureFeatures(conf.net, mode.features, o) };
};

export const pluginHandlers: Handlers = {
  add(ctx) {
    const { conf, mode, features } = load(ctx);
    return attach(ctx, conf, mode, features);
  },
  del(ctx) {
    const { conf, mode, features } = load(ctx, { cleanup: true });
    return detach(ctx, conf, mode, features);
  },
  check(ctx) {
    const { conf, mode, features } = load(ctx);
    return verify(ctx, conf, mode, features);
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
    const { conf, mode, features } = load(ctx, { cleanup: true });
    return collectGarbage(ctx, conf, mode, features);
  },
};
