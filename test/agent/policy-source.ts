// Where the policy integration suite's agents read the cluster from, one interface for both
// sources the agent has: the manifests directory (files written atomically) or the Kubernetes
// API (the fake API server, listening on the router at 10.99.0.254 so that the agents of every
// node namespace reach it, each agent with deploy/'s RBAC for its ServiceAccount). A test
// writes "files" of objects; the Kubernetes source puts each object through the API and
// deletes the ones a rewrite of the file drops.
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { parseManifests, type KubeObject } from "../../src/cluster/index.ts";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";
import { netnsPath, run } from "../helpers/netns.ts";
import { nodeManifest, type TestCluster } from "./lab.ts";

export type SourceName = "directory" | "kubernetes";

export interface PolicySource {
  readonly name: SourceName;
  /** The agent's --source argument. */
  readonly arg: string;
  /** Writes a file's objects (replacing what the file held before). */
  write(file: string, docs: object[]): void;
  remove(file: string): void;
  /** Every object the agents can see now (Nodes included), as the source serves them. */
  objects(): KubeObject[];
  /** The source goes away (the agents' view turns stale) until restore(). */
  makeStale(): void;
  restore(): void;
  /** Requests the API server refused with 403 (none for the directory). */
  forbidden(): string[];
  close(): void;
}

function directorySource(c: TestCluster): PolicySource {
  return {
    name: "directory",
    arg: `dir:${c.manifests}`,
    write(file, docs) {
      const tmp = join(c.manifests, `.${file}.tmp`);
      writeFileSync(tmp, docs.map((d) => stringify(d)).join("---\n"));
      run(["mv", tmp, join(c.manifests, file)]);
    },
    remove(file) {
      rmSync(join(c.manifests, file), { force: true });
    },
    objects() {
      return readdirSync(c.manifests).filter((f) => /^[^.].*\.yaml$/.test(f))
        .flatMap((f) => parseManifests(readFileSync(join(c.manifests, f), "utf8"), f).objects);
    },
    makeStale: () => renameSync(c.manifests, `${c.manifests}.away`),
    restore: () => renameSync(`${c.manifests}.away`, c.manifests),
    forbidden: () => [],
    close() {},
  };
}

const PLURALS: Record<string, string> = {
  Node: "nodes", Pod: "pods", Namespace: "namespaces", NetworkPolicy: "networkpolicies", ClusterNetworkPolicy: "clusternetworkpolicies",
};

function kubernetesSource(c: TestCluster): PolicySource {
  const api = FakeApiServer.start({ netns: netnsPath(c.router), address: "10.99.0.254" });
  const kubeconfig = api.writeKubeconfig(join(c.tmp, "kubeconfig"), { as: "mncni-agent" });
  const files = new Map<string, { plural: string; name: string; namespace?: string }[]>();
  const key = (o: { plural: string; name: string; namespace?: string }) => `${o.plural}/${o.namespace ?? ""}/${o.name}`;
  const put = (doc: any) => {
    const plural = PLURALS[doc.kind];
    if (!plural) throw new Error(`the fake API server serves no ${doc.kind}`);
    api.put(plural, doc);
    return { plural, name: doc.metadata.name as string, namespace: doc.metadata.namespace as string | undefined };
  };
  const source: PolicySource = {
    name: "kubernetes",
    arg: `kubernetes:${kubeconfig}`,
    write(file, docs) {
      const now = docs.map(put);
      const kept = new Set(now.map(key));
      for (const o of files.get(file) ?? []) if (!kept.has(key(o))) api.remove(o.plural, o.name, o.namespace);
      files.set(file, now);
    },
    remove(file) {
      source.write(file, []);
      files.delete(file);
    },
    objects: () => Object.values(PLURALS).flatMap((p) => api.objects(p)) as KubeObject[],
    makeStale: () => api.stop(),
    restore: () => api.start(),
    forbidden: () => api.forbiddenRequests().map((r) => `${r.method} ${r.path}`),
    close: () => api.close(),
  };
  for (const n of c.nodes) source.write(`node-${n.name}.yaml`, [nodeManifest(n.name, n.ip, [n.podCIDR, ...(n.podCIDR6 ? [n.podCIDR6] : [])], n.ip6)]);
  return source;
}

export function policySource(name: SourceName, c: TestCluster): PolicySource {
  return name === "directory" ? directorySource(c) : kubernetesSource(c);
}
