// `mncni agent`: flags -> config, then run the agent (or --once / --uninstall).

import { say, sayError } from "./output.ts";
import { Agent } from "../agent/agent.ts";
import { agentHelp, ConfigError, parseAgentArgs } from "../agent/config.ts";
import { fileLogger } from "../base/log.ts";
import { runUninstall } from "../agent/uninstall.ts";

export async function agentCommand(argv: string[]): Promise<number> {
  let cfg;
  try {
    cfg = parseAgentArgs(argv);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    sayError(`mncni agent: ${e.message}`);
    return 2;
  }
  if (cfg === "help") {
    say(agentHelp());
    return 0;
  }
  const log = fileLogger(cfg.logFile, cfg.logLevel, { component: "agent", node: cfg.nodeName || undefined }, cfg.logFormat);
  if (cfg.uninstall) return runUninstall(cfg, log);
  let agent: Agent;
  try {
    agent = await Agent.open(cfg, log);
  } catch (e) {
    log.error(`cannot start agent: ${(e as Error).message}`);
    return 1;
  }
  if (cfg.once) {
    const rep = agent.syncOnce();
    await agent.stop();
    return rep.converged ? 0 : 1;
  }
  agent.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info("stopping", { signal });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await agent.stop();
  return 0;
}
