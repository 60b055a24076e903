// Cluster sources, registered in one list: `--source KIND:ARG`.
import { KubernetesSource } from "./kubernetes.ts";
import { ManifestsDirSource } from "./manifests-dir.ts";
import type { ClusterSource, SourceOptions } from "./types.ts";

interface SourceKind {
  make(arg: string | undefined, opts: SourceOptions): ClusterSource;
  /** Whether `KIND` alone (no `:ARG`) is a valid spec. */
  argOptional?: boolean;
  usage: string;
}

const SOURCES: Record<string, SourceKind> = {
  dir: {
    make: (path, opts) => new ManifestsDirSource(path!, { relistMs: opts.resyncSeconds === undefined ? undefined : opts.resyncSeconds * 1000 }),
    usage: "dir:PATH",
  },
  // No argument: the in-cluster service account; kubernetes:PATH: a kubeconfig file.
  kubernetes: { make: (kubeconfig, opts) => new KubernetesSource(kubeconfig, opts), argOptional: true, usage: "kubernetes[:KUBECONFIG]" },
};

/** Makes the source; nothing is read until its start(). */
export function openSource(spec: string, opts: SourceOptions = {}): ClusterSource {
  const colon = spec.indexOf(":");
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? undefined : spec.slice(colon + 1);
  const k = Object.hasOwn(SOURCES, kind) ? SOURCES[kind] : undefined;
  if (!k || arg === "" || (arg === undefined && !k.argOptional)) {
    throw new Error(`cannot use cluster source "${spec}": expected one of ${Object.values(SOURCES).map((s) => s.usage).join(", ")}`);
  }
  return k.make(arg, opts);
}
