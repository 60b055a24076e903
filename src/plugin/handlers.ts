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
const load = async (ctx: CallContext, o: ParseOpts = {}) => {
  const conf = parsePluginConf(ctx.conf, ctx.env.args, o);
  const mode = modeOf(conf);
  return { conf, mode, features: await configureFeatures(conf.net, mode.features, o) };
};

export const pluginHandlers: Handlers = {
  async add(ctx) {
    const { conf, mode, features } = await load(ctx);
    return attach(ctx, conf, mode, features);
  },
  async del(ctx) {
    const { conf, mode, features } = await load(ctx, { cleanup: true });
    return detach(ctx, conf, mode, features);
  },
  async check(ctx) {
    const { conf, mode, features } = await load(ctx);
    return verify(ctx, conf, mode, features);
  },
  async status(ctx) {
    const { conf, mode } = await load(ctx);
    const host = Netlink.open();
    try {
      mode.status({ conf, host });
    } finally {
      host.close();
    }
    await ipamClient(ctx).status();
  },
  async gc(ctx) {
    const { conf, mode, features } = await load(ctx, { cleanup: true });
    return collectGarbage(ctx, conf, mode, features);
  },
};
