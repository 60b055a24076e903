// Public entry of src/agent.
export { Agent } from "./agent.ts";
export { parseAgentArgs, agentHelp, ConfigError, type AgentConfig } from "./config.ts";
export { Reconciler, type ReconcileReport, type ReconcilerDeps, type AgentSettings } from "./reconciler.ts";
export { desiredHostGwRoutes, diffRoutes, applyRouteDiff, ownedRoutes, type DesiredRoute, type RouteDiff } from "./hostgw.ts";
export { planMasquerade, planMasqueradeRemoval, NAT_TABLE, NAT_FAMILY, type MasqueradeInput } from "./masquerade.ts";
export { renderConflist, conflistText, CONFLIST_NAME, type ConflistOptions } from "./conflist.ts";
export { uninstall, type UninstallReport } from "./uninstall.ts";
export { AgentMetrics } from "./metrics.ts";
export { jsonLogger, fileLogger, type Logger } from "./log.ts";
export { systemNft, parseNftJson, type Nft, type NftRuleset } from "./nft-ruleset.ts";
