// Discovery (/version, /api, /apis, group-version resource lists) and the OpenAPI documents
// kubectl fetches before it validates and applies: it accepts an OpenAPI v3 index without
// paths and an empty v2 document (protobuf: zero bytes is the empty message), then validates
// nothing client-side and builds strategic merge patches from its built-in types, CRDs with
// JSON merge patches. The real server publishes every schema (docs/lab.md).
import { apiVersionOf, KINDS, type Kind, type Obj } from "./kinds.ts";

const VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"];

export const VERSION = {
  major: "1", minor: "32", gitVersion: "v1.32.0-mncni-lab", gitCommit: "", gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z", goVersion: "", compiler: "bun", platform: `linux/${process.arch === "x64" ? "amd64" : process.arch}`,
};

const groups = (served: (k: Kind) => boolean): Map<string, Kind[]> => {
  const m = new Map<string, Kind[]>();
  for (const k of KINDS) if (k.group && served(k)) m.set(apiVersionOf(k), [...(m.get(apiVersionOf(k)) ?? []), k]);
  return m;
};

function resourceList(groupVersion: string, kinds: Kind[]): Obj {
  return {
    kind: "APIResourceList", apiVersion: "v1", groupVersion,
    resources: kinds.flatMap((k) => [
      { name: k.plural, singularName: k.singular, namespaced: k.namespaced, kind: k.kind, verbs: VERBS, ...(k.shortNames.length ? { shortNames: k.shortNames } : {}) },
      ...(k.status ? [{ name: `${k.plural}/status`, singularName: "", namespaced: k.namespaced, kind: k.kind, verbs: ["get", "patch", "update"] }] : []),
    ]),
  };
}

/** The discovery document of a path (listing the kinds served), or undefined when the path is not discovery. */
export function discovery(path: string, served: (k: Kind) => boolean = () => true): Obj | undefined {
  if (path === "/version") return VERSION;
  if (path === "/api") return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] };
  if (path === "/api/v1") return resourceList("v1", KINDS.filter((k) => !k.group && served(k)));
  const gvs = groups(served);
  if (path === "/apis") {
    const byGroup = new Map([...gvs.values()].map((ks) => [ks[0]!.group, ks[0]!]));
    return {
      kind: "APIGroupList", apiVersion: "v1",
      groups: [...byGroup.values()].map((k) => {
        const v = { groupVersion: apiVersionOf(k), version: k.version };
        return { name: k.group, versions: [v], preferredVersion: v };
      }),
    };
  }
  const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path);
  if (m) {
    const ks = [...gvs.values()].find((x) => x[0]!.group === m[1]);
    if (!ks) return undefined;
    if (m[2]) return m[2] === ks[0]!.version ? resourceList(apiVersionOf(ks[0]!), ks) : undefined;
    const v = { groupVersion: apiVersionOf(ks[0]!), version: ks[0]!.version };
    return { kind: "APIGroup", apiVersion: "v1", name: m[1], versions: [v], preferredVersion: v };
  }
  return undefined;
}

export const OPENAPI_V3_INDEX: Obj = { paths: {} };
export const OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
