// Public entry of src/deploy: the install (or uninstall) objects for a configuration, and
// their rendering as one multi-document YAML stream with the notes as comments.
import { Document, isMap, isScalar, type Node } from "yaml";
import { agentDaemonSet, uninstallDaemonSet } from "./agent.ts";
import { controllerDeployment, controllerDisruptionBudget } from "./controller.ts";
import { clusterNetworkPolicyCRD } from "./crd.ts";
import { plain, type Explained } from "./explained.ts";
import type { ManifestOptions } from "./options.ts";
import { agentRbac, controllerRbac } from "./rbac.ts";

export { DEFAULT_OPTIONS, LOCAL_IMAGE, OptionError, resolveOptions, type ManifestOptions, type RawOptions } from "./options.ts";
export type { Explained } from "./explained.ts";

/** In apply order: identities and permissions before the workloads that use them. */
export function installObjects(o: ManifestOptions): Explained[] {
  return [
    // The resource the agent watches, before the agent.
    clusterNetworkPolicyCRD(),
    ...agentRbac(o).map(plain),
    ...(o.controller ? controllerRbac(o).map(plain) : []),
    agentDaemonSet(o),
    ...(o.controller ? [controllerDeployment(o), plain(controllerDisruptionBudget(o))] : []),
  ];
}

export function uninstallObjects(o: ManifestOptions): Explained[] {
  return [uninstallDaemonSet(o)];
}

/** Puts text as a comment above the key the path ends with. */
function annotate(doc: Document, path: (string | number)[], text: string): void {
  const parent = doc.getIn(path.slice(0, -1), true) as Node | undefined;
  const key = path[path.length - 1];
  const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === key) : undefined;
  if (!pair || !isScalar(pair.key)) throw new Error(`cannot annotate field "${path.join(".")}": not in the object`);
  pair.key.commentBefore = text.split("\n").map((l) => ` ${l}`).join("\n");
}

export function renderYaml(objects: Explained[], header: string): string {
  const docs = objects.map(({ object, notes }, i) => {
    // No anchors: objects sharing a label map must still read as plain, independent YAML.
    const doc = new Document(object, { aliasDuplicateObjects: false });
    for (const n of notes) annotate(doc, n.path, n.text);
    if (i === 0) doc.commentBefore = header.split("\n").map((l) => ` ${l}`).join("\n");
    return doc.toString({ lineWidth: 0 });
  });
  return docs.map((d, i) => (i === 0 ? d : `---\n${d}`)).join("");
}
