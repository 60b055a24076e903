// The lab's endpoint-slice controller: for every Service with a selector, EndpointSlices of
// the pods of its namespace whose labels match, one slice per address family (and per set of
// resolved target ports, as a named targetPort may differ between pods), written through `lab
// apply`'s path. An endpoint is ready once its pod is wired and answering (a TCP probe of its
// echo port from its node, as kubelet's readiness probe runs from the node), and terminating
// (not ready, still serving) while `lab pod remove --grace` waits. Runs after every lab change
// that can move an endpoint: Services, pods, labels, nodes.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { labelsMatch, parseManifests } from "../cluster/index.ts";
import type { Endpoint, EndpointPort, KubeEndpointSlice, KubeService, ServicePort } from "../cluster/index.ts";
import { SERVICE_NAME_LABEL } from "../cluster/index.ts";
import type { ProbeResult } from "./echo.ts";
import { applyObjects, deleteObjects } from "./k8s-objects.ts";
import type { Obj } from "./apiserver/kinds.ts";
import { admitService, labServices } from "./services.ts";
import { netnsExecArgv, runAsync } from "./sh.ts";
import { allPods, findNode, type LabState, type PodState } from "./state.ts";
import { ECHO_PORT, manifestsDir } from "./topology.ts";
import { k8sPodName, podLabels } from "./write-manifests.ts";
import { syncLoadBalancerRoutes } from "./lb-routes.ts";
import { labClient, onKubernetes } from "./control-plane.ts";
import { apiView } from "./api-view.ts";
import { RESOURCES } from "../kube/index.ts";

/** The label the endpoint-slice controller puts on the slices it manages (the lab leaves others alone). */
export const MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by";
export const MANAGED_BY = "endpointslice-controller.k8s.io";

const podKey = (p: PodState) => `${p.namespace}/${k8sPodName(p)}`;

/** The lab's EndpointSlices where the agents read them: the API server, or the manifests directory. */
export async function labEndpointSlices(s: LabState): Promise<KubeEndpointSlice[]> {
  if (onKubernetes(s)) {
    return (await labClient(s).listAll<Obj & { metadata: { name: string } }>(RESOURCES.endpointSlices)).items.map((o) => ({ ...o, apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice" }) as unknown as KubeEndpointSlice);
  }
  const dir = manifestsDir(s.name);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^endpointslice-.*\.yaml$/.test(n)).sort();
  } catch {
    return [];
  }
  return names.flatMap((n) => parseManifests(readFileSync(join(dir, n), "utf8"), n).objects.filter((o): o is KubeEndpointSlice => o.kind === "EndpointSlice"));
}

/** The port a Service port reaches on a pod: a number, or the pod's container port of that name (undefined: the pod has none). */
function targetOn(pod: PodState, p: ServicePort): number | undefined {
  const t = p.targetPort ?? p.port;
  if (typeof t === "number") return t;
  return pod.ports?.find((c) => c.name === t && c.protocol === (p.protocol ?? "TCP"))?.containerPort;
}

/** Pods already ready in the current slices (address and pod): a ready endpoint is not probed again. */
function readyNow(slices: KubeEndpointSlice[]): Set<string> {
  const out = new Set<string>();
  for (const sl of slices) for (const e of sl.endpoints ?? []) if (e.conditions?.ready !== false && e.targetRef?.name) out.add(`${e.targetRef.namespace}/${e.targetRef.name}`);
  return out;
}

/** A readiness probe of each pod's echo port from its node (one probe process per node). */
async function probeReady(s: LabState, pods: PodState[]): Promise<Set<string>> {
  const byNode = new Map<string, PodState[]>();
  for (const p of pods) byNode.set(p.node, [...(byNode.get(p.node) ?? []), p]);
  const ready = new Set<string>();
  await Promise.all([...byNode].map(async ([nodeName, ps]) => {
    const node = findNode(s, nodeName);
    if (!node) return;
    const targets = ps.map((p) => `${p.ips[0]!.includes(":") ? `[${p.ips[0]}]` : p.ips[0]}:${ECHO_PORT}`);
    const r = await runAsync(netnsExecArgv(node.ns, [...s.options.selfCmd, "lab", "_probe", "--json", "--timeout", "2000", ...targets]), { timeoutMs: 10_000 });
    let results: ProbeResult[] = [];
    try {
      results = JSON.parse(r.stdout.trim().split("\n").pop() || "[]") as ProbeResult[];
    } catch {
      return;
    }
    ps.forEach((p, i) => results[i]?.ok && ready.add(podKey(p)));
  }));
  return ready;
}

export interface SyncOptions {
  /** Pods being removed with a grace period ("namespace/name"): terminating endpoints. */
  terminating?: ReadonlySet<string>;
}

/** The slices a Service should have now. */
function slicesFor(svc: KubeService, pods: PodState[], labelsOf: (p: PodState) => Record<string, string>, ready: ReadonlySet<string>, terminating: ReadonlySet<string>): KubeEndpointSlice[] {
  const ns = svc.metadata.namespace ?? "default";
  const selector = svc.spec?.selector;
  const ports = svc.spec?.ports ?? [];
  const selected = pods.filter((p) => p.namespace === ns && p.ips.length > 0 && labelsMatch({ matchLabels: selector }, labelsOf(p)));
  const groups = new Map<string, { family: 4 | 6; ports: EndpointPort[]; endpoints: Endpoint[] }>();
  for (const pod of selected) {
    const eps: EndpointPort[] = ports.flatMap((p) => {
      const port = targetOn(pod, p);
      return port === undefined ? [] : [{ name: p.name ?? "", protocol: p.protocol ?? "TCP", port }];
    });
    const key = podKey(pod);
    const term = terminating.has(key);
    const isReady = !term && ready.has(key);
    for (const ip of pod.ips) {
      const family = ip.includes(":") ? 6 : 4;
      const g = `${family} ${JSON.stringify(eps)}`;
      if (!groups.has(g)) groups.set(g, { family, ports: eps, endpoints: [] });
      groups.get(g)!.endpoints.push({
        addresses: [ip],
        conditions: { ready: isReady, serving: term ? ready.has(key) : isReady, terminating: term },
        nodeName: pod.node,
        targetRef: { kind: "Pod", namespace: pod.namespace, name: k8sPodName(pod) },
      });
    }
  }
  const perFamily = { 4: 0, 6: 0 };
  return [...groups.values()].map((g) => {
    const n = perFamily[g.family]++;
    return {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: `${svc.metadata.name}-ipv${g.family}${n ? `-${n}` : ""}`,
        namespace: ns,
        labels: { [SERVICE_NAME_LABEL]: svc.metadata.name, [MANAGED_BY_LABEL]: MANAGED_BY },
      },
      addressType: g.family === 4 ? "IPv4" : "IPv6",
      endpoints: g.endpoints,
      ports: g.ports,
    } satisfies KubeEndpointSlice;
  });
}

/**
 * Brings every Service's EndpointSlices up to date (written, changed, deleted) and the router's
 * LoadBalancer routes with them; returns one line per slice that changed.
 */
export async function syncEndpointSlices(s: LabState, opts: SyncOptions = {}): Promise<string[]> {
  const all = await labServices(s);
  // A Service created around the lab's commands (kubectl) has no cluster IP or node ports yet: admitted here.
  const unadmitted = all.filter((o) => JSON.stringify(admitService(s, o, all).spec) !== JSON.stringify(o.spec));
  const admitted = unadmitted.length ? await applyObjects(s, unadmitted as unknown as Obj[]) : { applied: [], failed: [] };
  if (admitted.failed.length) throw new Error(`cannot admit Services: ${admitted.failed.join("; ")}`);
  const services = (unadmitted.length ? await labServices(s) : all).filter((o) => o.spec?.selector && Object.keys(o.spec.selector).length > 0);
  const current = (await labEndpointSlices(s)).filter((sl) => sl.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY);
  // Nothing to control (most labs): no pod probes, no read of the Pods; stale LoadBalancer routes still go.
  if (services.length === 0 && current.length === 0) {
    syncLoadBalancerRoutes(s, [], []);
    return admitted.applied;
  }
  const terminating = opts.terminating ?? new Set<string>();
  const pods = allPods(s);
  // The Pods' labels as stored (kubectl may have changed them on the API), else the lab's record.
  const view = await apiView(s);
  const labelsOf = (p: PodState) => view?.podLabels.get(podKey(p)) ?? podLabels(p);
  const known = readyNow(current);
  // Only the pods some Service selects are probed, and only until they were seen ready once.
  const wanted = pods.filter((p) => p.ips.length && services.some((svc) => p.namespace === (svc.metadata.namespace ?? "default") && labelsMatch({ matchLabels: svc.spec!.selector }, labelsOf(p))));
  const probed = await probeReady(s, wanted.filter((p) => !known.has(podKey(p))));
  const ready = new Set([...wanted.map(podKey).filter((k) => known.has(k)), ...probed]);
  const desired = services.flatMap((svc) => slicesFor(svc, pods, labelsOf, ready, terminating));
  const id = (o: KubeEndpointSlice) => `${o.metadata.namespace}/${o.metadata.name}`;
  // What the controller sets, not what the server adds (uid, resourceVersion, timestamps).
  const content = (o: KubeEndpointSlice) => JSON.stringify([o.metadata.labels ?? {}, o.addressType, o.endpoints ?? [], o.ports ?? []]);
  const before = new Map(current.map((o) => [id(o), content(o)]));
  const changed = desired.filter((o) => before.get(id(o)) !== content(o));
  const stale = current.filter((o) => !desired.some((d) => id(d) === id(o)));
  const applied = changed.length ? await applyObjects(s, changed as Obj[]) : { applied: [], failed: [] };
  if (applied.failed.length) throw new Error(`cannot write EndpointSlices: ${applied.failed.join("; ")}`);
  const said = [...admitted.applied, ...applied.applied, ...(stale.length ? (await deleteObjects(s, stale as Obj[])).deleted : [])];
  syncLoadBalancerRoutes(s, services, desired);
  return said;
}
