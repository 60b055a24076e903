// Cluster sources, registered in one list: `--source KIND:ARG`.
import { ManifestsDirSource } from "./manifests-dir.ts";
import type { ClusterSource, SourceOptions } from "./types.ts";

const SOURCES: Record<string, (arg: string, opts: SourceOptions) => ClusterSource> = {
  dir: (path, opts) => new ManifestsDirSource(path, { relistMs: opts.resyncSeconds === undefined ? undefined : opts.resyncSeconds * 1000 }),
};

/** Makes the source; nothing is read until its start(). */
export function openSource(spec: string, opts: SourceOptions = {}): ClusterSource {
  const colon = spec.indexOf(":");
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const make = SOURCES[kind];
  if (!make || colon < 0 || colon === spec.length - 1) {
    throw new Error(`cannot use cluster source "${spec}": expected one of ${Object.keys(SOURCES).map((k) => `${k}:ARG`).join(", ")}`);
  }
  return make(spec.slice(colon + 1), opts);
}
