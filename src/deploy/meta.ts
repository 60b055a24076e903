// Names and labels every generated object shares, so selectors, bindings and docs agree.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { AGENT_HEALTH_PORT, CONTROLLER_HEALTH_PORT } from "../base/ports.ts";

export type Component = "agent" | "controller" | "uninstall";

export const NAMES = {
  agent: "mncni-agent",
  controller: "mncni-controller",
  uninstall: "mncni-uninstall",
} as const satisfies Record<Component, string>;

/** Ports on the host's loopback (both run with hostNetwork): /healthz, /readyz, /metrics. */
export const METRICS_PORT = { agent: AGENT_HEALTH_PORT, controller: CONTROLLER_HEALTH_PORT } as const;

export function selectorLabels(component: Component): Record<string, string> {
  return { "app.kubernetes.io/name": "mncni", "app.kubernetes.io/component": component };
}

export function labels(component: Component): Record<string, string> {
  return { ...selectorLabels(component), "app.kubernetes.io/part-of": "mncni" };
}

export function meta(component: Component, name: string, namespace?: string): V1ObjectMeta {
  return namespace === undefined ? { name, labels: labels(component) } : { name, namespace, labels: labels(component) };
}
