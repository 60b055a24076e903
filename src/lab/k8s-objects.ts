// The lab as a small Kubernetes API: Namespaces, labels, policies, Services and EndpointSlices become manifests in the
// lab's manifests directory, which every agent reads (the manifests source). Callers hold the
// lab's lock.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { compileSelector, parseManifests } from "../cluster/index.ts";
import type { KubeObject } from "../cluster/types.ts";
import { LAB_POD_LABELS, endpointSliceFile, k8sPodName, namespaceFile, policyFile, writeManifest, writePod } from "./write-manifests.ts";
import { findNode, nodeAddresses, saveState, type LabState, type PodState } from "./state.ts";
import { manifestsDir } from "./topology.ts";
import { admitService, labServices, serviceFile } from "./services.ts";

const NS_NAME_LABEL = "kubernetes.io/metadata.name";
const APPLIABLE = ["Namespace", "NetworkPolicy", "ClusterNetworkPolicy", "Service", "EndpointSlice"];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function namespaceManifest(name: string, labels: Record<string, string>): object {
  // Kubernetes sets the name label on every Namespace and does not let it change.
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { ...labels, [NS_NAME_LABEL]: name } } };
}

function namespaceLabels(s: LabState, name: string): Record<string, string> | undefined {
  const path = join(manifestsDir(s.name), namespaceFile(name));
  if (!existsSync(path)) return undefined;
  const doc = parseYaml(readFileSync(path, "utf8")) as { metadata?: { labels?: Record<string, string> } };
  return { ...doc?.metadata?.labels };
}

/** Creates the Namespace manifest on first use; returns whether it was created. */
export function ensureNamespace(s: LabState, name: string): boolean {
  if (name.length > 63 || !DNS_LABEL.test(name)) throw new Error(`cannot create namespace "${name}": not a DNS label (lower case alphanumerics and '-', at most 63)`);
  if (namespaceLabels(s, name)) return false;
  writeManifest(manifestsDir(s.name), namespaceFile(name), namespaceManifest(name, {}));
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

export function labelNamespace(s: LabState, name: string, c: LabelChanges): string[] {
  const labels = namespaceLabels(s, name);
  if (!labels) throw new Error(`cannot label namespace "${name}": no such namespace in lab "${s.name}" (create it with \`lab apply\` or \`lab pod add --namespace\`)`);
  const said = relabel(`namespace ${name}`, labels, c, [NS_NAME_LABEL]);
  writeManifest(manifestsDir(s.name), namespaceFile(name), namespaceManifest(name, labels));
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

export function labelPod(s: LabState, ref: string, c: LabelChanges): string[] {
  const pod = findPodByRef(s, ref);
  const labels = { ...pod.labels };
  const said = relabel(`pod ${pod.namespace}/${k8sPodName(pod)}`, labels, c, LAB_POD_LABELS);
  pod.labels = labels;
  const node = findNode(s, pod.node)!;
  writePod(manifestsDir(s.name), pod, nodeAddresses(node));
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
export function readAppliable(path: string): KubeObject[] {
  const objects: KubeObject[] = [];
  const problems: string[] = [];
  for (const file of manifestFiles(path)) {
    const text = readFileSync(file, "utf8");
    const docs = parseAllDocuments(text, { prettyErrors: false });
    (Array.isArray(docs) ? docs : [docs]).forEach((doc, i) => {
      const where = `"${file}" document ${i + 1}`;
      if (doc.errors.length) return problems.push(`${where}: ${doc.errors[0]!.message}`);
      const v = doc.toJS() as { kind?: unknown; items?: unknown[] } | null;
      if (v === null || v === undefined) return;
      const items = typeof v.kind === "string" && v.kind.endsWith("List") && Array.isArray(v.items) ? v.items : [v];
      for (const item of items as { kind?: unknown }[]) {
        if (!APPLIABLE.includes(String(item?.kind))) {
          problems.push(`${where}: kind ${JSON.stringify(item?.kind)} cannot be applied in the lab (only ${APPLIABLE.join(", ")})`);
          continue;
        }
        const parsed = parseManifests(JSON.stringify(item), file);
        for (const bad of parsed.invalid) problems.push(`${where}: ${bad.error}`);
        if (item.kind === "Namespace") {
          const name = (parsed.objects[0]?.metadata.name ?? "") as string;
          if (parsed.objects[0] && !DNS_LABEL.test(name)) problems.push(`${where}: metadata.name "${name}" is not a DNS label`);
        }
        objects.push(...parsed.objects);
      }
    });
  }
  if (problems.length) throw new Error(`cannot apply "${path}":\n  ${problems.join("\n  ")}`);
  if (objects.length === 0) throw new Error(`cannot apply "${path}": no ${APPLIABLE.join(", ")} in it`);
  return objects;
}

/** Namespaced kinds the lab writes. */
const NAMESPACED = ["NetworkPolicy", "Service", "EndpointSlice"];
const nsOf = (o: KubeObject) => o.metadata.namespace ?? "default";

const fileOf = (o: KubeObject) =>
  o.kind === "Namespace" ? namespaceFile(o.metadata.name)
  : o.kind === "Service" ? serviceFile(nsOf(o), o.metadata.name)
  : o.kind === "EndpointSlice" ? endpointSliceFile(nsOf(o), o.metadata.name)
  : policyFile(o.kind, o.metadata.name, o.kind === "NetworkPolicy" ? nsOf(o) : undefined);

const idOf = (o: KubeObject) => (NAMESPACED.includes(o.kind) ? `${o.kind} ${nsOf(o)}/${o.metadata.name}` : `${o.kind} ${o.metadata.name}`);

export function applyObjects(s: LabState, objects: KubeObject[]): string[] {
  const dir = manifestsDir(s.name);
  const said: string[] = [];
  for (const o of objects) {
    const existed = existsSync(join(dir, fileOf(o)));
    if (NAMESPACED.includes(o.kind) && nsOf(o) !== "default") ensureNamespace(s, nsOf(o));
    // A Service gets its cluster IPs, node ports and LoadBalancer address here, as kube-apiserver's admission would.
    const obj = o.kind === "Namespace" ? namespaceManifest(o.metadata.name, { ...o.metadata.labels }) : o.kind === "Service" ? admitService(s, o, labServices(s)) : o;
    writeManifest(dir, fileOf(o), obj);
    said.push(`${idOf(o)} ${existed ? "configured" : "created"}`);
  }
  return said;
}

export function deleteObjects(s: LabState, objects: KubeObject[]): string[] {
  const dir = manifestsDir(s.name);
  return objects.map((o) => {
    const path = join(dir, fileOf(o));
    if (!existsSync(path)) return `${idOf(o)} not found`;
    rmSync(path, { force: true });
    return `${idOf(o)} deleted`;
  });
}
