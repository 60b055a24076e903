// What the agent's ClusterRole in deploy/mncni.yaml allows, checked against the requests the
// fake API server recorded: the verb and resource of each request as the API server's RBAC
// authorizer sees them (list/watch/get by the path and the watch parameter, subresources as
// `nodes/status`), allowed when one rule names its group, resource and verb.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import type { V1ClusterRole, V1PolicyRule } from "@kubernetes/client-node";
import type { RecordedRequest } from "../helpers/kube-apiserver.ts";

const DEPLOY = resolve(import.meta.dir, "../../deploy/mncni.yaml");

export function deployedAgentRules(): V1PolicyRule[] {
  const docs = parseAllDocuments(readFileSync(DEPLOY, "utf8")).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
  return (docs.find((d) => d.kind === "ClusterRole" && d.metadata.name === "mncni-agent") as V1ClusterRole).rules!;
}

/** The request as RBAC sees it: `verb group/resource[/subresource]`. */
export function rbacAttributes(r: RecordedRequest): { verb: string; group: string; resource: string } {
  const seg = r.path.split("/").filter(Boolean);
  const [group, rest] = seg[0] === "api" ? ["", seg.slice(2)] : [seg[1]!, seg.slice(3)];
  const [plural, name, sub] = rest[0] === "namespaces" && rest.length >= 3 ? rest.slice(2) : rest;
  const verb = r.method === "GET" ? (name ? "get" : ["1", "true", "True"].includes(r.query.watch ?? "") ? "watch" : "list")
    : ({ POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" } as Record<string, string>)[r.method]!;
  return { verb, group, resource: sub ? `${plural}/${sub}` : plural! };
}

/** The recorded requests the rules do not allow, one line each. */
export function forbiddenRequests(requests: readonly RecordedRequest[], rules: readonly V1PolicyRule[]): string[] {
  return requests.flatMap((r) => {
    const a = rbacAttributes(r);
    const ok = rules.some((rule) => rule.apiGroups?.includes(a.group) && rule.resources?.includes(a.resource) && rule.verbs.includes(a.verb));
    return ok ? [] : [`${r.method} ${r.path}: ${a.verb} ${a.group || "core"}/${a.resource}`];
  });
}
