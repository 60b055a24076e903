// `mncni controller`: flags -> config, then run node IPAM until SIGTERM/SIGINT.
import { say, sayError } from "./output.ts";
import { fileLogger } from "../base/log.ts";
import { ConfigError, controllerHelp, parseControllerArgs } from "../controller/config.ts";
import { runController } from "../controller/controller.ts";
import { hostname } from "node:os";
import { reportUsageError, UsageError } from "./flags.ts";

export async function controllerCommand(argv: string[]): Promise<number> {
  let cfg;
  try {
    cfg = parseControllerArgs(argv, hostname());
  } catch (e) {
    if (e instanceof UsageError) return reportUsageError(e);
    if (!(e instanceof ConfigError)) throw e;
    sayError(`mncni controller: ${e.message}`);
    return 2;
  }
  if (cfg === "help") {
    say(controllerHelp());
    return 0;
  }
  const log = fileLogger(cfg.logFile, cfg.logLevel, { component: "controller" });
  const abort = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.once(sig, () => {
      log.info("stopping", { signal: sig });
      abort.abort();
    });
  }
  return runController(cfg, log, abort.signal);
}
