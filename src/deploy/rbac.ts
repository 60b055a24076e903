// ServiceAccounts and least-privilege RBAC: every rule names its verbs and resources
// (never "*"), and each grant is there because the agent or the controller calls it.
import type {
  V1ClusterRole, V1ClusterRoleBinding, V1PolicyRule, V1Role, V1RoleBinding, V1ServiceAccount,
} from "@kubernetes/client-node";
import { meta, NAMES, type Component } from "./meta.ts";
import type { ManifestOptions } from "./options.ts";

const READ = ["get", "list", "watch"];

/** What the agent reads (its cluster state) and what it writes about its own Node. */
const AGENT_RULES: readonly V1PolicyRule[] = [
  { apiGroups: [""], resources: ["nodes", "pods", "namespaces"], verbs: READ },
  { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: READ },
  // The Service proxy (--service-proxy): Services and their EndpointSlices. Granted whether
  // or not the proxy is on, so turning it on needs no RBAC change.
  { apiGroups: [""], resources: ["services"], verbs: READ },
  { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: READ },
  // The policy API's CRD, installed with mncni (while it is not served the agent programs no policy).
  { apiGroups: ["policy.networking.k8s.io"], resources: ["clusternetworkpolicies"], verbs: READ },
  // Its Node's status conditions: NetworkUnavailable (False once routes and conflist are in
  // place), MncniPodMTU (this node's pod MTU, compared by the other agents) and MncniRouting
  // (what its routing backend publishes for the peers: VXLAN's VNI and port). Never a patch
  // of nodes: RBAC cannot limit it to the agent's own Node, and it would let one compromised
  // node taint, cordon or relabel every Node.
  { apiGroups: [""], resources: ["nodes/status"], verbs: ["patch"] },
  // A Warning Event on the Node when a peer publishes another pod MTU.
  { apiGroups: [""], resources: ["events"], verbs: ["create"] },
];

/** Node IPAM: patches spec.podCIDR(s); reports conflicts and exhaustion as Events. */
const CONTROLLER_RULES: readonly V1PolicyRule[] = [
  { apiGroups: [""], resources: ["nodes"], verbs: [...READ, "patch"] },
  { apiGroups: ["", "events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
  // The endpoint-slice controller (--endpoint-slices): reads Services and Pods, writes the
  // slices it manages. Granted whether or not it is on, so turning it on needs no RBAC change.
  { apiGroups: [""], resources: ["services", "pods"], verbs: READ },
  { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: [...READ, "create", "update", "delete"] },
];

/** Leader election, only in the controller's own namespace. */
const LEASE_RULES: readonly V1PolicyRule[] = [
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
];

function serviceAccount(component: Component, namespace: string): V1ServiceAccount {
  return { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(component, NAMES[component], namespace) };
}

function clusterRole(component: Component, rules: readonly V1PolicyRule[]): V1ClusterRole {
  return { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: meta(component, NAMES[component]), rules: rules.map((r) => ({ ...r })) };
}

function clusterRoleBinding(component: Component, namespace: string): V1ClusterRoleBinding {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: meta(component, NAMES[component]),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: NAMES[component] },
    subjects: [{ kind: "ServiceAccount", name: NAMES[component], namespace }],
  };
}

export function agentRbac(o: ManifestOptions): [V1ServiceAccount, V1ClusterRole, V1ClusterRoleBinding] {
  return [serviceAccount("agent", o.namespace), clusterRole("agent", AGENT_RULES), clusterRoleBinding("agent", o.namespace)];
}

export function controllerRbac(o: ManifestOptions): [V1ServiceAccount, V1ClusterRole, V1ClusterRoleBinding, V1Role, V1RoleBinding] {
  const name = NAMES.controller;
  const role: V1Role = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: meta("controller", name, o.namespace), rules: LEASE_RULES.map((r) => ({ ...r })) };
  const binding: V1RoleBinding = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: meta("controller", name, o.namespace),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
    subjects: [{ kind: "ServiceAccount", name, namespace: o.namespace }],
  };
  return [serviceAccount("controller", o.namespace), clusterRole("controller", CONTROLLER_RULES), clusterRoleBinding("controller", o.namespace), role, binding];
}
