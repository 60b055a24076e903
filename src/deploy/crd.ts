// The ClusterNetworkPolicy CRD (policy.networking.k8s.io/v1alpha2), from the Network Policy
// API project's apis/v1alpha2/clusternetworkpolicy_types.go: the same names, enums, bounds
// and one-of rules, as a structural schema. The agent validates every policy again
// (src/cluster/policy-validation.ts), so a cluster with the upstream CRD installed instead
// behaves the same.
//
// The metadata is the upstream CRD's (config/crd/experimental in that repository, bundle
// v0.2.0: the channel with the `nodes` and `domainNames` peers this schema has). The group is
// a protected one (*.k8s.io): a real API server refuses the CRD without the
// api-approved.kubernetes.io annotation naming the API review that approved it.
import { plain, type Explained } from "./explained.ts";

type Schema = Record<string, unknown>;

/** The upstream release whose CRD metadata is shipped (docs/policy.md names it too). */
export const CNP_BUNDLE = { version: "v0.2.0", channel: "experimental", approval: "https://github.com/kubernetes-sigs/network-policy-api/pull/347" } as const;

const obj = (properties: Record<string, Schema>, extra: Schema = {}): Schema => ({ type: "object", properties, ...extra });
const arr = (items: Schema, extra: Schema = {}): Schema => ({ type: "array", items, ...extra });
const str = (extra: Schema = {}): Schema => ({ type: "string", ...extra });
const oneOf = (extra: Schema = {}): Schema => ({ minProperties: 1, maxProperties: 1, ...extra });

const labelSelector: Schema = obj({
  matchLabels: { type: "object", additionalProperties: { type: "string" } },
  matchExpressions: arr(obj({ key: str(), operator: str(), values: arr(str()) }, { required: ["key", "operator"] })),
}, { "x-kubernetes-map-type": "atomic" });

const namespacedPod: Schema = obj({ namespaceSelector: labelSelector, podSelector: labelSelector }, { required: ["podSelector"] });
const port: Schema = obj({
  number: { type: "integer", format: "int32", minimum: 1, maximum: 65535 },
  range: obj({
    start: { type: "integer", format: "int32", minimum: 1, maximum: 65535 },
    end: { type: "integer", format: "int32", minimum: 1, maximum: 65535 },
  }, { required: ["start", "end"], "x-kubernetes-validations": [{ rule: "self.start < self.end", message: "Start port must be less than End port" }] }),
}, oneOf());
const perProtocol: Schema = obj({ destinationPort: port }, { minProperties: 1 });
const protocol: Schema = obj({ tcp: perProtocol, udp: perProtocol, sctp: perProtocol, destinationNamedPort: str() }, oneOf());
const action: Schema = str({ enum: ["Accept", "Deny", "Pass"] });
const rule = (peerKey: string, peer: Schema): Schema => obj({
  name: str({ maxLength: 100 }),
  action,
  [peerKey]: arr(peer, { minItems: 1, maxItems: 25 }),
  protocols: arr(protocol, { minItems: 1, maxItems: 25 }),
}, { required: ["action", peerKey] });
const cidr = str({ maxLength: 43, "x-kubernetes-validations": [{ rule: "isCIDR(self)", message: "Invalid CIDR format provided" }] });

const spec: Schema = obj({
  tier: str({ enum: ["Admin", "Baseline"] }),
  priority: { type: "integer", format: "int32", minimum: 0, maximum: 1000 },
  subject: obj({ namespaces: labelSelector, pods: namespacedPod }, oneOf()),
  ingress: arr(rule("from", obj({ namespaces: labelSelector, pods: namespacedPod }, oneOf())), { maxItems: 25 }),
  egress: arr(rule("to", obj({
    namespaces: labelSelector,
    pods: namespacedPod,
    nodes: labelSelector,
    networks: arr(cidr, { minItems: 1, maxItems: 25, "x-kubernetes-list-type": "set" }),
    domainNames: arr(str(), { minItems: 1, maxItems: 25, "x-kubernetes-list-type": "set" }),
  }, oneOf())), { maxItems: 25 }),
}, { required: ["tier", "priority", "subject"] });

export function clusterNetworkPolicyCRD(): Explained {
  return plain({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      annotations: {
        "api-approved.kubernetes.io": CNP_BUNDLE.approval,
        "policy.networking.k8s.io/bundle-version": CNP_BUNDLE.version,
        "policy.networking.k8s.io/channel": CNP_BUNDLE.channel,
      },
      name: "clusternetworkpolicies.policy.networking.k8s.io",
    },
    spec: {
      group: "policy.networking.k8s.io",
      names: { kind: "ClusterNetworkPolicy", listKind: "ClusterNetworkPolicyList", plural: "clusternetworkpolicies", singular: "clusternetworkpolicy", shortNames: ["cnp"] },
      scope: "Cluster",
      versions: [{
        name: "v1alpha2",
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: "Tier", type: "string", jsonPath: ".spec.tier" },
          { name: "Priority", type: "string", jsonPath: ".spec.priority" },
          { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
        ],
        schema: {
          openAPIV3Schema: obj({
            apiVersion: str(),
            kind: str(),
            metadata: { type: "object" },
            spec,
            status: obj({ conditions: arr({ type: "object", "x-kubernetes-preserve-unknown-fields": true }) }),
          }, { required: ["metadata", "spec"] }),
        },
      }],
    },
  });
}
