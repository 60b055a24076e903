// Parses manifest text (YAML or JSON, one or several documents, an object or a List) into
// the Kubernetes objects mncni reads. Pure: every problem becomes an InvalidManifest, so one
// bad file never hides the good ones.
import { parseAllDocuments } from "yaml";
import { KINDS, type InvalidManifest, type KubeObject } from "./types.ts";
import { policyProblem } from "./policy-validation.ts";

export interface ParsedManifests {
  objects: KubeObject[];
  invalid: InvalidManifest[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks the envelope (kind, metadata.name) and returns the object, or why it is unusable. */
function checkObject(v: unknown): KubeObject | string | undefined {
  if (!isRecord(v)) return "not an object";
  const kind = v.kind;
  if (typeof kind !== "string") return "no kind";
  if (!(KINDS as readonly string[]).includes(kind)) return undefined; // kinds mncni does not read
  const meta = v.metadata;
  if (!isRecord(meta) || typeof meta.name !== "string" || meta.name === "") return `${kind} without metadata.name`;
  if (kind === "NetworkPolicy" || kind === "ClusterNetworkPolicy") {
    if (!isRecord(v.spec)) return `${kind} "${meta.name}" without spec`;
    // An invalid policy is skipped whole (and reported): half a policy could allow too much.
    const problem = policyProblem(kind, v.spec);
    const id = kind === "NetworkPolicy" ? `${typeof meta.namespace === "string" ? meta.namespace : "default"}/${meta.name}` : meta.name;
    if (problem) return `invalid ${kind} "${id}": ${problem}`;
  }
  return v as unknown as KubeObject;
}

function isList(v: unknown): v is { kind: string; items: unknown } {
  return isRecord(v) && typeof v.kind === "string" && (v.kind === "List" || v.kind.endsWith("List"));
}

export function parseManifests(text: string, file: string): ParsedManifests {
  const out: ParsedManifests = { objects: [], invalid: [] };
  const bad = (error: string) => out.invalid.push({ file, error });
  let docs;
  try {
    docs = parseAllDocuments(text, { prettyErrors: false });
  } catch (e) {
    bad(`cannot parse manifest "${file}": ${(e as Error).message}`);
    return out;
  }
  if (!Array.isArray(docs)) docs = [docs]; // an EmptyStream
  docs.forEach((doc, i) => {
    if (doc.errors.length) return bad(`cannot parse manifest "${file}" (document ${i + 1}): ${doc.errors[0]!.message}`);
    const v: unknown = doc.toJS();
    if (v === null || v === undefined) return; // an empty document
    const items = isList(v) ? v.items : [v];
    // API-server lists (NodeList, ...) omit kind on their items: it is implied by the list's kind.
    const implied = isList(v) && v.kind !== "List" ? v.kind.slice(0, -"List".length) : undefined;
    if (!Array.isArray(items)) return bad(`cannot read manifest "${file}" (document ${i + 1}): ${(v as { kind: string }).kind} without items`);
    for (const item of items) {
      const r = checkObject(implied && isRecord(item) && item.kind === undefined ? { ...item, kind: implied } : item);
      if (typeof r === "string") bad(`cannot read manifest "${file}" (document ${i + 1}): ${r}`);
      else if (r) out.objects.push(r);
    }
  });
  return out;
}
