// The three patch types of PATCH requests. JSON patch is fast-json-patch (RFC 6902). JSON
// merge patch (RFC 7386) is ten lines. Strategic merge patch has no npm implementation: the
// subset here is what kubectl apply/label/annotate and mncni send for the built-in kinds —
// lists with a merge key merged by it, primitive lists with patchStrategy merge unioned, the
// `$patch`, `$setElementOrder/` and `$deleteFromPrimitiveList/` directives.
import fastJsonPatch, { type Operation } from "fast-json-patch";
import type { Obj } from "./kinds.ts";

export class PatchError extends Error {}

const isMap = (v: unknown): v is Record<string, any> => v !== null && typeof v === "object" && !Array.isArray(v);

export function mergePatch(target: any, patch: any): any {
  if (!isMap(patch)) return structuredClone(patch);
  const out: Record<string, any> = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export function jsonPatch(target: Obj, ops: unknown): Obj {
  if (!Array.isArray(ops)) throw new PatchError("a JSON patch is a list of operations");
  try {
    return fastJsonPatch.applyPatch(structuredClone(target), ops as Operation[], true, false).newDocument;
  } catch (e) {
    throw new PatchError((e as Error).message.split("\n")[0]!);
  }
}

/**
 * patchMergeKey of the Kubernetes types, by kind and field path (list indices left out);
 * "" marks a list of primitives with patchStrategy merge. A list not named here is replaced.
 */
const MERGE_KEYS: Record<string, string> = {
  "*:metadata.finalizers": "",
  "*:metadata.ownerReferences": "uid",
  "Node:spec.podCIDRs": "",
  "Node:spec.taints": "key",
  "Node:status.conditions": "type",
  "Node:status.addresses": "type",
  "Pod:spec.containers": "name",
  "Pod:spec.initContainers": "name",
  "Pod:spec.containers.ports": "containerPort",
  "Pod:spec.containers.env": "name",
  "Pod:spec.containers.volumeMounts": "mountPath",
  "Pod:spec.volumes": "name",
  "Pod:status.conditions": "type",
  "Pod:status.podIPs": "ip",
  "Pod:status.hostIPs": "ip",
  "Service:spec.ports": "port",
  "Namespace:status.conditions": "type",
};

function mergeKey(kind: string, path: string): string | undefined {
  return MERGE_KEYS[`${kind}:${path}`] ?? MERGE_KEYS[`*:${path}`];
}

function mergeList(kind: string, path: string, cur: any[], patch: any[]): any[] {
  const key = mergeKey(kind, path);
  if (key === undefined) return patch.filter((p) => !(isMap(p) && p.$patch)).map((p) => structuredClone(p));
  if (key === "") return [...new Set([...cur, ...patch])];
  if (patch.some((p) => isMap(p) && p.$patch === "replace")) return patch.filter((p) => p.$patch !== "replace").map((p) => structuredClone(p));
  const out = cur.map((c) => structuredClone(c));
  for (const p of patch) {
    if (!isMap(p) || p[key] === undefined) throw new PatchError(`map: ${JSON.stringify(p)} does not contain declared merge key: ${key}`);
    const i = out.findIndex((c) => isMap(c) && c[key] === p[key]);
    if (p.$patch === "delete") {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = strategic(kind, path, out[i], p);
    else out.push(strategic(kind, path, {}, p));
  }
  return out;
}

function strategic(kind: string, path: string, target: any, patch: Record<string, any>): any {
  if (patch.$patch === "delete") return undefined;
  if (patch.$patch === "replace") {
    const { $patch, ...rest } = patch;
    return structuredClone(rest);
  }
  const out: Record<string, any> = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch" || k === "$retainKeys" || k.startsWith("$setElementOrder/")) continue;
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      const field = k.slice("$deleteFromPrimitiveList/".length);
      if (Array.isArray(out[field])) out[field] = out[field].filter((x: unknown) => !(v as unknown[]).includes(x));
      continue;
    }
    const sub = path ? `${path}.${k}` : k;
    if (v === null) delete out[k];
    else if (Array.isArray(v)) out[k] = mergeList(kind, sub, Array.isArray(out[k]) ? out[k] : [], v);
    else if (isMap(v)) {
      const r = strategic(kind, sub, out[k], v);
      if (r === undefined) delete out[k];
      else out[k] = r;
    } else out[k] = v;
  }
  return out;
}

export function strategicMergePatch(kind: string, target: Obj, patch: unknown): Obj {
  if (!isMap(patch)) throw new PatchError("a strategic merge patch is a JSON object");
  return strategic(kind, "", target, patch);
}
