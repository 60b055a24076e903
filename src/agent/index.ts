// Public entry of src/agent.
export { Agent } from "./agent.ts";
export { parseAgentArgs, agentHelp, ConfigError, type AgentConfig } from "./config.ts";
export { Reconciler, STEPS, type ReconcileReport, type ReconcilerDeps, type AgentSettings, type Step } from "./reconciler.ts";
export { admitPodCIDRs, type Admission, type AdmissionInput } from "./pod-cidrs.ts";
export { routingBackends, ROUTING_NAMES, type RoutingBackend, type RoutingName } from "./routing/index.ts";
export { planMasquerade, planMasqueradeRemoval, NAT_TABLE, NAT_FAMILY, type MasqueradeInput } from "./masquerade.ts";
export { renderConflist, conflistText, CONFLIST_NAME, type ConflistOptions } from "./conflist.ts";
export { uninstall, runUninstall, uninstallTargets, type UninstallReport, type UninstallTargets } from "./uninstall.ts";
export { AgentMetrics } from "./metrics.ts";
export { jsonLogger, textLogger, fileLogger, type Logger, type LogFormat } from "./log.ts";
export { systemNft, parseNftJson, type Nft, type NftRuleset } from "./nft-ruleset.ts";
export { ChainVersionPicker, askPluginVersions, highestCommonVersion } from "./cni-version.ts";
