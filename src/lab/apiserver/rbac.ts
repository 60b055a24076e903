// Authorization: the Roles and bindings of deploy/ (the objects `mncni manifests` installs),
// evaluated as kube-apiserver's RBAC authorizer does, plus system:masters for the lab's own
// commands and people. Every authenticated user may read discovery and /version.
import type { V1PolicyRule } from "@kubernetes/client-node";
import { installObjects, resolveOptions } from "../../deploy/install-objects.ts";
import type { Obj } from "./kinds.ts";

export interface User {
  name: string;
  groups: string[];
}

export interface Attributes {
  verb: string;
  group: string;
  /** "nodes" or "nodes/status". */
  resource: string;
  namespace?: string;
  name?: string;
}

interface Grant {
  rules: V1PolicyRule[];
  /** A RoleBinding's namespace; undefined for a ClusterRoleBinding. */
  namespace?: string;
  subjects: { kind: string; name: string; namespace?: string }[];
}

const has = (list: string[] | undefined, v: string): boolean => !!list && (list.includes(v) || list.includes("*"));

function grantsOf(objects: Obj[]): Grant[] {
  const roles = new Map<string, V1PolicyRule[]>();
  for (const o of objects) {
    if (o.kind === "ClusterRole") roles.set(`ClusterRole/${o.metadata!.name}`, o.rules ?? []);
    if (o.kind === "Role") roles.set(`Role/${o.metadata!.namespace}/${o.metadata!.name}`, o.rules ?? []);
  }
  const grants: Grant[] = [];
  for (const o of objects) {
    if (o.kind !== "ClusterRoleBinding" && o.kind !== "RoleBinding") continue;
    const ref = o.roleRef.kind === "ClusterRole" ? `ClusterRole/${o.roleRef.name}` : `Role/${o.metadata!.namespace}/${o.roleRef.name}`;
    grants.push({ rules: roles.get(ref) ?? [], namespace: o.kind === "RoleBinding" ? o.metadata!.namespace : undefined, subjects: o.subjects ?? [] });
  }
  return grants;
}

function subjectIs(s: Grant["subjects"][number], u: User): boolean {
  if (s.kind === "ServiceAccount") return u.name === `system:serviceaccount:${s.namespace}:${s.name}`;
  if (s.kind === "User") return u.name === s.name;
  return s.kind === "Group" && u.groups.includes(s.name);
}

/** The install as the lab runs it (with the node IPAM controller); roles and namespace do not depend on the image. */
export const LAB_INSTALL = resolveOptions({ image: "localhost/mncni:lab", controller: true });

export class Authorizer {
  private readonly grants: Grant[];

  /** The grants of the objects given (by default those deploy/ installs). */
  constructor(objects: Obj[] = installObjects(LAB_INSTALL).map((e) => e.object as Obj)) {
    this.grants = grantsOf(objects);
  }

  allows(u: User, a: Attributes): boolean {
    if (u.groups.includes("system:masters")) return true;
    return this.grants.some((g) =>
      (g.namespace === undefined || g.namespace === a.namespace) &&
      g.subjects.some((s) => subjectIs(s, u)) &&
      g.rules.some((r) => has(r.verbs, a.verb) && has(r.apiGroups, a.group) && has(r.resources, a.resource) && (!r.resourceNames?.length || (!!a.name && r.resourceNames.includes(a.name)))));
  }
}

/** The message kube-apiserver gives with a 403. */
export function forbiddenMessage(u: User, a: Attributes): string {
  const plural = a.resource.split("/")[0];
  const what = `${plural}${a.group ? `.${a.group}` : ""}${a.name ? ` "${a.name}"` : ""}`;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : "at the cluster scope";
  return `${what} is forbidden: User "${u.name}" cannot ${a.verb} resource "${a.resource}" in API group "${a.group}" ${scope}`;
}
