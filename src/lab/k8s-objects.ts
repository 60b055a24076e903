// The lab's kubectl-like verbs: Namespaces, labels and policies, written through the lab's API
// server or into its manifests directory (src/lab/objects.ts), which every agent reads.
// Callers hold the lab's lock.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { compileSelector, parseManifests } from "../cluster/index.ts";
import { KubeApiError } from "../kube/index.ts";
import type { Obj } from "./apiserver/kinds.ts";
import { LAB_POD_LABELS, k8sPodName } from "./write-manifests.ts";
import { kindOfObject, kubectlName, labObjects, NS_NAME_LABEL } from "./objects.ts";
import { findNode, nodeAddresses, saveState, type LabState, type PodState } from "./state.ts";
import { admitService, labServices } from "./services.ts";
import type { KubeService } from "../cluster/types.ts";

const APPLIABLE = ["Namespace", "NetworkPolicy", "ClusterNetworkPolicy", "Service", "EndpointSlice"];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Creates the Namespace on first use; returns whether it was created. */
export async function ensureNamespace(s: LabState, name: string): Promise<boolean> {
  if (name.length > 63 || !DNS_LABEL.test(name)) throw new Error(`cannot create namespace "${name}": not a DNS label (lower case alphanumerics and '-', at most 63)`);
  const objects = labObjects(s);
  if (await objects.namespaceLabels(name)) return false;
  await objects.putNamespace(name, {});
  return true;
}

/** `k=v` sets, `k-` removes (kubectl label). Keys and values are checked as the API server would. */
export interface LabelChanges {
  set: Record<string, string>;
  remove: string[];
}

export function parseLabelArgs(args: string[]): LabelChanges {
  const out: LabelChanges = { set: {}, remove: [] };
  for (const a of args) {
    if (a.endsWith("-") && !a.includes("=")) {
      out.remove.push(a.slice(0, -1));
      continue;
    }
    const eq = a.indexOf("=");
    if (eq <= 0) throw new Error(`cannot use label "${a}": expected key=value or key-`);
    out.set[a.slice(0, eq)] = a.slice(eq + 1);
  }
  for (const k of out.remove) compileSelector({ matchExpressions: [{ key: k, operator: "Exists" }] });
  compileSelector({ matchLabels: out.set });
  return out;
}

/** Applies the changes to `labels` in place; returns what happened, one line per label. */
function relabel(what: string, labels: Record<string, string>, c: LabelChanges, fixed: string[] = []): string[] {
  const said: string[] = [];
  for (const [k, v] of Object.entries(c.set)) {
    if (fixed.includes(k)) throw new Error(`cannot change label "${k}" of ${what}: it is set by the system`);
    if (labels[k] === v) said.push(`${what}: ${k}=${v} unchanged`);
    else if (k in labels) said.push(`${what}: ${k} overwritten (${labels[k]} -> ${v})`);
    else said.push(`${what}: ${k}=${v} added`);
    labels[k] = v;
  }
  for (const k of c.remove) {
    if (fixed.includes(k)) throw new Error(`cannot remove label "${k}" of ${what}: it is set by the system`);
    said.push(k in labels ? `${what}: ${k} removed` : `${what}: ${k} not present`);
    delete labels[k];
  }
  return said;
}

export async function labelNamespace(s: LabState, name: string, c: LabelChanges): Promise<string[]> {
  const objects = labObjects(s);
  const labels = await objects.namespaceLabels(name);
  if (!labels) throw new Error(`cannot label namespace "${name}": no such namespace in lab "${s.name}" (create it with \`lab apply\` or \`lab pod add --namespace\`)`);
  const said = relabel(`namespace ${name}`, labels, c, [NS_NAME_LABEL]);
  await objects.putNamespace(name, labels);
  return said;
}

/** A pod by "namespace/name": the Kubernetes name (node-pod) or the lab's pod name when that is unique. */
export function findPodByRef(s: LabState, ref: string): PodState {
  const slash = ref.indexOf("/");
  if (slash <= 0) throw new Error(`cannot find pod "${ref}": expected NAMESPACE/NAME`);
  const [ns, name] = [ref.slice(0, slash), ref.slice(slash + 1)];
  const inNs = s.nodes.flatMap((n) => n.pods).filter((p) => p.namespace === ns);
  const exact = inNs.filter((p) => k8sPodName(p) === name);
  const byLab = inNs.filter((p) => p.name === name);
  const found = exact.length ? exact : byLab;
  if (found.length === 1) return found[0]!;
  if (found.length > 1) throw new Error(`cannot find pod "${ref}": ambiguous (${found.map(k8sPodName).join(", ")}); use the Kubernetes name`);
  throw new Error(`cannot find pod "${ref}" in lab "${s.name}" (pods of ${ns}: ${inNs.map(k8sPodName).join(", ") || "none"})`);
}

export async function labelPod(s: LabState, ref: string, c: LabelChanges): Promise<string[]> {
  const pod = findPodByRef(s, ref);
  const objects = labObjects(s);
  // What the Pod has now (kubectl may have changed it), without the lab's own labels.
  const labels = Object.fromEntries(Object.entries(await objects.podLabels(pod)).filter(([k]) => !LAB_POD_LABELS.includes(k)));
  const said = relabel(`pod ${pod.namespace}/${k8sPodName(pod)}`, labels, c, LAB_POD_LABELS);
  pod.labels = labels;
  const node = findNode(s, pod.node)!;
  await objects.relabelPod(pod, nodeAddresses(node));
  saveState(s);
  return said;
}

function manifestFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new Error(`cannot read "${path}": ${(e as Error).message}`);
  }
  if (!st.isDirectory()) return [path];
  return readdirSync(path).filter((n) => /^[^.].*\.(ya?ml|json)$/.test(n)).sort().map((n) => join(path, n));
}

/**
 * Reads and validates every document (NetworkPolicy, ClusterNetworkPolicy, Namespace) before
 * anything is written: one bad document refuses the whole apply, naming file, document and field.
 */
export function readAppliable(paths: string[]): Obj[] {
  const objects: Obj[] = [];
  const problems: string[] = [];
  const kinds = APPLIABLE;
  const path = paths.join(", ");
  for (const file of paths.flatMap(manifestFiles)) {
    const text = readFileSync(file, "utf8");
    const docs = parseAllDocuments(text, { prettyErrors: false });
    (Array.isArray(docs) ? docs : [docs]).forEach((doc, i) => {
      const where = `"${file}" document ${i + 1}`;
      if (doc.errors.length) return problems.push(`${where}: ${doc.errors[0]!.message}`);
      const v = doc.toJS() as { kind?: unknown; items?: unknown[] } | null;
      if (v === null || v === undefined) return;
      const items = typeof v.kind === "string" && v.kind.endsWith("List") && Array.isArray(v.items) ? v.items : [v];
      for (const item of items as { kind?: unknown }[]) {
        if (!kinds.includes(String(item?.kind))) {
          problems.push(`${where}: kind ${JSON.stringify(item?.kind)} cannot be applied in the lab (only ${kinds.join(", ")})`);
          continue;
        }
        const parsed = parseManifests(JSON.stringify(item), file);
        for (const bad of parsed.invalid) problems.push(`${where}: ${bad.error}`);
        if (item.kind === "Namespace") {
          const name = (parsed.objects[0]?.metadata.name ?? "") as string;
          if (parsed.objects[0] && !DNS_LABEL.test(name)) problems.push(`${where}: metadata.name "${name}" is not a DNS label`);
        }
        objects.push(...(parsed.objects as Obj[]));
      }
    });
  }
  if (problems.length) throw new Error(`cannot apply "${path}":\n  ${problems.join("\n  ")}`);
  if (objects.length === 0) throw new Error(`cannot apply "${path}": no ${kinds.join(", ")} in it`);
  return objects;
}

/** One line per object, as kubectl says it (networkpolicy.networking.k8s.io/NAME created); a NetworkPolicy's namespace is created on first use. */
export async function applyObjects(s: LabState, objects: Obj[]): Promise<{ applied: string[]; failed: string[] }> {
  const store = labObjects(s);
  const out = { applied: [] as string[], failed: [] as string[] };
  for (const o of objects) {
    try {
      if (kindOfObject(o)?.namespaced && (o.metadata?.namespace ?? "default") !== "default") await ensureNamespace(s, o.metadata!.namespace);
      // A Service gets its cluster IPs, node ports and LoadBalancer address here, as kube-apiserver's admission would.
      const obj = o.kind === "Service" ? (admitService(s, o as KubeService, await labServices(s)) as Obj) : o;
      out.applied.push(`${kubectlName(o)} ${await store.apply(obj)}`);
    } catch (e) {
      // As kubectl: the others are still applied, and the command fails.
      if (!(e instanceof KubeApiError)) throw e;
      out.failed.push(`Error from server (${e.reason}): error when applying ${kubectlName(o)}: ${typeof e.body === "object" && e.body?.message ? e.body.message : e.message}`);
    }
  }
  return out;
}

/** What was deleted, and what was not there (kubectl's NotFound lines: the command fails). */
export async function deleteObjects(s: LabState, objects: Obj[]): Promise<{ deleted: string[]; missing: string[] }> {
  const store = labObjects(s);
  const out = { deleted: [] as string[], missing: [] as string[] };
  for (const o of objects) {
    const k = kindOfObject(o);
    const name = `${k ? k.plural : String(o.kind).toLowerCase()}${k?.group ? `.${k.group}` : ""}`;
    if (await store.remove(o)) out.deleted.push(`${kubectlName(o).replace(/\/(.*)$/, ' "$1"')} deleted`);
    else out.missing.push(`Error from server (NotFound): ${name} "${o.metadata?.name}" not found`);
  }
  return out;
}
