// The node IPAM controller Deployment: two replicas, one leader (a Lease in its namespace).
import type { V1Deployment, V1PodDisruptionBudget, V1Toleration } from "@kubernetes/client-node";
import { httpProbe, IMAGE_BINARY, LINUX_NODES, READINESS } from "./agent.ts";
import type { Explained } from "./explained.ts";
import { meta, METRICS_PORT, NAMES, selectorLabels } from "./meta.ts";
import type { ManifestOptions } from "./options.ts";

const CONTROLLER_REPLICAS = 2;

function controllerArgs(o: ManifestOptions): string[] {
  const args = ["controller", "--cluster-cidr", o.clusterCidr.join(",")];
  if (o.clusterCidr.some((c) => !c.includes(":"))) args.push("--node-cidr-mask-size-ipv4", String(o.nodeCidrMaskSizeIPv4));
  if (o.clusterCidr.some((c) => c.includes(":"))) args.push("--node-cidr-mask-size-ipv6", String(o.nodeCidrMaskSizeIPv6));
  args.push("--leader-elect", "--lease-namespace", o.namespace, "--metrics-addr", `127.0.0.1:${METRICS_PORT.controller}`);
  return args;
}

// Nodes carry these until the network works, and the controller is what makes it work.
const TOLERATIONS: V1Toleration[] = [
  { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/not-ready", operator: "Exists" },
  { key: "node.kubernetes.io/network-unavailable", operator: "Exists", effect: "NoSchedule" },
  { key: "CriticalAddonsOnly", operator: "Exists" },
];

/**
 * A voluntary disruption (a node drain) takes at most one replica at a time: the other one,
 * standby or leader, keeps pod CIDRs coming for nodes that join meanwhile.
 */
export function controllerDisruptionBudget(o: ManifestOptions): V1PodDisruptionBudget {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta("controller", NAMES.controller, o.namespace),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels("controller") } },
  };
}

export function controllerDeployment(o: ManifestOptions): Explained<V1Deployment> {
  const labels = selectorLabels("controller");
  const object: V1Deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta("controller", NAMES.controller, o.namespace),
    spec: {
      replicas: CONTROLLER_REPLICAS,
      selector: { matchLabels: labels },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      template: {
        metadata: { labels },
        spec: {
          hostNetwork: true,
          serviceAccountName: NAMES.controller,
          priorityClassName: "system-cluster-critical",
          nodeSelector: { ...LINUX_NODES },
          tolerations: TOLERATIONS,
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: labels }, topologyKey: "kubernetes.io/hostname" } },
              ],
            },
          },
          containers: [
            {
              name: "controller",
              image: o.image,
              imagePullPolicy: "IfNotPresent",
              command: [IMAGE_BINARY],
              args: controllerArgs(o),
              ports: [{ name: "metrics", containerPort: METRICS_PORT.controller, hostPort: METRICS_PORT.controller, protocol: "TCP" }],
              // Ready: a standby replica, or the leader once its allocation map is rebuilt.
              readinessProbe: httpProbe("/readyz", METRICS_PORT.controller, READINESS),
              livenessProbe: { ...httpProbe("/healthz", METRICS_PORT.controller, { period: 10, failures: 6 }), initialDelaySeconds: 10 },
              resources: { requests: { cpu: "20m", memory: "64Mi" } },
              // Needs nothing from the node: only the API.
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 65534,
                runAsGroup: 65534,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
                seccompProfile: { type: "RuntimeDefault" },
              },
            },
          ],
        },
      },
    },
  };
  return {
    object,
    notes: [
      {
        path: ["spec", "template", "spec", "hostNetwork"],
        text:
          "Pod networking does not exist before this controller hands out pod CIDRs (the CNI plugin\n" +
          "writes no conflist without one), so the controller cannot run on it: it uses the node's\n" +
          "network and reaches the API server through the kubernetes Service like any host process.",
      },
      { path: ["spec", "template", "spec", "tolerations"], text: "Scheduled on nodes that are not Ready yet: they are waiting for the pod CIDR this controller gives." },
      {
        path: ["spec", "template", "spec", "containers", 0, "ports"],
        text: "A host port: replicas never share a node (they would collide on the metrics port).\nOn a one-node cluster the second replica stays Pending; harmless, or scale to 1.",
      },
      { path: ["spec", "template", "spec", "containers", 0, "args"], text: "Two replicas, one leader (Lease mncni-controller); the other takes over within the lease duration." },
    ],
  };
}
