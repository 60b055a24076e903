// python3-kubernetes (the Debian package, a second client library besides kubectl) against
// the lab API server: list with label and field selectors, watch from a list's
// resourceVersion with bookmarks, and 410 Gone after compaction as ApiException.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { ApiServer } from "../../../src/lab/apiserver/server.ts";
import { until } from "../../helpers/until.ts";

const SCRIPT = `
import json, sys
from kubernetes import client, config, watch
config.load_kube_config(sys.argv[1])
v1 = client.CoreV1Api()
print(json.dumps({"nodes": [n.metadata.name for n in v1.list_node().items]}), flush=True)
pods = v1.list_pod_for_all_namespaces(label_selector="app=web", field_selector="spec.nodeName=node1")
print(json.dumps({"pods": [p.metadata.name for p in pods.items], "rv": pods.metadata.resource_version}), flush=True)
w = watch.Watch()
for ev in w.stream(v1.list_namespaced_pod, "default", resource_version=pods.metadata.resource_version, allow_watch_bookmarks=True, timeout_seconds=20):
    print(json.dumps({"type": ev["type"], "name": ev["object"].metadata.name, "labels": ev["object"].metadata.labels}), flush=True)
    if ev["type"] == "MODIFIED":
        break
input()
try:
    for ev in watch.Watch().stream(v1.list_namespaced_pod, "default", resource_version=pods.metadata.resource_version, timeout_seconds=5):
        print(json.dumps({"stale": ev["type"]}), flush=True)
except client.exceptions.ApiException as e:
    print(json.dumps({"gone": e.status}), flush=True)
`;

let srv: ApiServer;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync("/tmp/mncni-labapi-py-");
  srv = new ApiServer({ dir, bookmarkIntervalMs: 100 }).listen();
  srv.put("namespaces", { metadata: { name: "default" } });
  srv.put("nodes", { metadata: { name: "node1" } });
  srv.put("nodes", { metadata: { name: "node2" } });
  for (const [name, node, app] of [["web", "node1", "web"], ["web2", "node2", "web"], ["db", "node1", "db"]]) {
    srv.put("pods", { metadata: { name, namespace: "default", labels: { app } }, spec: { nodeName: node, containers: [{ name: "c", image: "x" }] } });
  }
});

afterAll(() => {
  srv?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("python3-kubernetes lists with selectors, watches a change, and gets 410 after compaction", async () => {
  const kc = srv.writeKubeconfig("admin");
  const p = Bun.spawn(["/usr/bin/python3", "-c", SCRIPT, kc], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const lines: any[] = [];
  let buf = "";
  const reader = (async () => {
    for await (const chunk of p.stdout as ReadableStream<Uint8Array>) {
      buf += new TextDecoder().decode(chunk);
      const parts = buf.split("\n");
      buf = parts.pop()!;
      for (const l of parts) if (l.trim()) lines.push(JSON.parse(l));
    }
  })();
  try {
    await until("python lists pods", () => lines.some((l) => l.pods));
    expect(lines[0]).toEqual({ nodes: ["node1", "node2"] });
    expect(lines[1].pods).toEqual(["web"]);
    await until("python's watch is open", () => srv.watches.count === 1);
    const pod = srv.store.get("pods", "default/db")!;
    srv.put("pods", { ...pod, metadata: { ...pod.metadata, labels: { app: "db", tier: "back" } } });
    await until("python sees the change", () => lines.some((l) => l.type === "MODIFIED"));
    expect(lines.find((l) => l.type === "MODIFIED")).toEqual({ type: "MODIFIED", name: "db", labels: { app: "db", tier: "back" } });
    srv.store.compact();
    p.stdin.write("\n");
    p.stdin.end();
    await until("python sees 410", () => lines.some((l) => l.gone !== undefined));
    expect(lines.find((l) => l.gone !== undefined)).toEqual({ gone: 410 });
  } finally {
    p.kill();
    await reader.catch(() => {});
  }
  expect(await new Response(p.stderr).text()).toBe("");
});
