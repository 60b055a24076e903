// Cluster sources, registered in one list: `--source KIND:ARG`.
import { ManifestsDirSource } from "./manifests-dir.ts";
import type { ClusterSource } from "./types.ts";

const SOURCES: Record<string, (arg: string) => ClusterSource> = {
  dir: (path) => new ManifestsDirSource(path),
};

export function openSource(spec: string): ClusterSource {
  const colon = spec.indexOf(":");
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const make = SOURCES[kind];
  if (!make || colon < 0 || colon === spec.length - 1) {
    throw new Error(`cannot use cluster source "${spec}": expected one of ${Object.keys(SOURCES).map((k) => `${k}:ARG`).join(", ")}`);
  }
  return make(spec.slice(colon + 1));
}
