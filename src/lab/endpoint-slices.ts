// The lab's EndpointSlices. On the Kubernetes source (the default) they are the work of the
// endpoint-slice controller the lab runs (`mncni controller --endpoint-slices`, leader only),
// which follows the API's Pods and Services however they change (lab commands or kubectl); the
// lab's commands then wait until the controller's slices say what the API's objects imply, so
// that a command returns with its endpoints in place. An endpoint is ready once its pod is
// wired (the Pod's Ready condition, which the lab sets as kubelet would after the ADD) and
// terminating while `lab pod remove --grace` waits (the Pod deleted, held by a finalizer).
// On the directory source the lab is the controller: it writes the same slices
// (src/cluster/endpoint-slices.ts) into the manifests directory after every lab change that
// can move an endpoint, ready once a pod answers a TCP probe of its echo port from its node.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { desiredSlices, hasSelector, MANAGED_BY, MANAGED_BY_LABEL, parseManifests, podEndpoint, selects, sliceContent } from "../cluster/index.ts";
import type { EndpointPod, KubeEndpointSlice, KubePod, KubeService } from "../cluster/index.ts";
import type { ProbeResult } from "./echo.ts";
import { applyObjects, deleteObjects } from "./k8s-objects.ts";
import type { Obj } from "./apiserver/kinds.ts";
import { labServices } from "./services.ts";
import { netnsExecArgv, runAsync } from "./sh.ts";
import { allPods, findNode, type LabState, type PodState } from "./state.ts";
import { apiserverDir } from "./apiserver/lab-server.ts";
import { ECHO_PORT, manifestsDir } from "./topology.ts";
import { k8sPodName, podLabels } from "./write-manifests.ts";
import { syncLoadBalancerRoutes } from "./lb-routes.ts";
import { labClient, onKubernetes } from "./control-plane.ts";
import { RESOURCES } from "../kube/index.ts";
import { LAB_AGENT_WAIT_MS } from "./waits.ts";

export { MANAGED_BY, MANAGED_BY_LABEL };

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

const id = (o: KubeEndpointSlice) => `${o.metadata.namespace}/${o.metadata.name}`;

/** kubectl's words for what changed between two sets of slices. */
function changes(before: KubeEndpointSlice[], after: KubeEndpointSlice[]): string[] {
  const was = new Map(before.map((o) => [id(o), sliceContent(o)]));
  return [
    ...after.filter((o) => was.get(id(o)) !== sliceContent(o)).map((o) => `endpointslice.discovery.k8s.io/${o.metadata.name} ${was.has(id(o)) ? "configured" : "created"}`),
    ...before.filter((o) => !after.some((d) => id(d) === id(o))).map((o) => `endpointslice.discovery.k8s.io/${o.metadata.name} deleted`),
  ];
}

const managed = async (s: LabState) => (await labEndpointSlices(s)).filter((sl) => sl.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY);

/**
 * Kubernetes source: waits until the controller's slices are what the API's Services and Pods
 * imply (the same function the controller runs), then routes the LoadBalancer addresses.
 */
async function followController(s: LabState, before: KubeEndpointSlice[]): Promise<string[]> {
  const deadline = Date.now() + LAB_AGENT_WAIT_MS;
  for (;;) {
    const [services, pods, current] = await Promise.all([labServices(s), labClient(s).listAll<Obj & { metadata: { name: string } }>(RESOURCES.pods), managed(s)]);
    const eps = pods.items.map((p) => podEndpoint(p as unknown as KubePod));
    // Packed from the controller's current slices, as it packs them: settled slices come out the same.
    const desired = services.flatMap((svc) => desiredSlices(svc, eps, current));
    const have = new Map(current.map((o) => [id(o), sliceContent(o)]));
    const settled = desired.length === current.length && desired.every((d) => have.get(id(d)) === sliceContent(d));
    if (settled) {
      syncLoadBalancerRoutes(s, services.filter(hasSelector), current);
      return changes(before, current);
    }
    if (Date.now() > deadline) {
      const missing = desired.filter((d) => have.get(id(d)) !== sliceContent(d)).map(id);
      const stale = current.filter((o) => !desired.some((d) => id(d) === id(o))).map(id);
      throw new Error(`the lab's endpoint-slice controller did not bring the EndpointSlices up to date in ${LAB_AGENT_WAIT_MS} ms (${[...missing.map((x) => `${x} not as the Pods say`), ...stale.map((x) => `${x} not deleted`)].join(", ")}; see ${join(apiserverDir(s.name), "controller-*.log")})`);
    }
    await Bun.sleep(50);
  }
}

/**
 * Brings every Service's EndpointSlices up to date (written, changed, deleted: by the lab on the
 * directory source, by the controller on the Kubernetes one, which this waits for) and the
 * router's LoadBalancer routes with them; returns one line per slice that changed.
 */
export async function syncEndpointSlices(s: LabState, opts: SyncOptions = {}): Promise<string[]> {
  const services = (await labServices(s)).filter(hasSelector);
  const current = await managed(s);
  // Nothing to control (most labs): no pod probes, no read of the Pods; stale LoadBalancer routes still go.
  if (services.length === 0 && current.length === 0) {
    syncLoadBalancerRoutes(s, [], []);
    return [];
  }
  if (onKubernetes(s)) return followController(s, current);
  const terminating = opts.terminating ?? new Set<string>();
  const pods = allPods(s);
  const asEndpoint = (p: PodState, ready: ReadonlySet<string>): EndpointPod => ({
    namespace: p.namespace, name: k8sPodName(p), labels: podLabels(p), ips: p.ips, node: p.node, ports: p.ports,
    ready: ready.has(podKey(p)), terminating: terminating.has(podKey(p)),
  });
  const known = readyNow(current);
  // Only the pods some Service selects are probed, and only until they were seen ready once.
  const wanted = pods.filter((p) => p.ips.length && services.some((svc) => selects(svc, asEndpoint(p, known))));
  const probed = await probeReady(s, wanted.filter((p) => !known.has(podKey(p))));
  const ready = new Set([...wanted.map(podKey).filter((k) => known.has(k)), ...probed]);
  const eps = pods.map((p) => asEndpoint(p, ready));
  const desired = services.flatMap((svc) => desiredSlices(svc, eps, current));
  const before = new Map(current.map((o) => [id(o), sliceContent(o)]));
  const changed = desired.filter((o) => before.get(id(o)) !== sliceContent(o));
  const stale = current.filter((o) => !desired.some((d) => id(d) === id(o)));
  const applied = changed.length ? await applyObjects(s, changed as Obj[]) : { applied: [], failed: [] };
  if (applied.failed.length) throw new Error(`cannot write EndpointSlices: ${applied.failed.join("; ")}`);
  const said = [...applied.applied, ...(stale.length ? (await deleteObjects(s, stale as Obj[])).deleted : [])];
  syncLoadBalancerRoutes(s, services, desired);
  return said;
}
