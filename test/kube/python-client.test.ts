// Cross-check of the fake API server against a real client: Debian's python3-kubernetes (the
// upstream Python client) lists, pages, watches and patches it through the kubeconfig it
// writes (CA-verified TLS, bearer token). If the fake spoke the protocol wrong, this fails.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";

const PYTHON = "/usr/bin/python3";
const hasClient = existsSync(PYTHON) && Bun.spawnSync([PYTHON, "-c", "import kubernetes"]).exitCode === 0;

const SCRIPT = `
import json, sys
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
out = {}
first = v1.list_node(limit=2)
out["page1"] = [n.metadata.name for n in first.items]
out["continue"] = bool(first.metadata._continue)
everything = v1.list_node()
out["all"] = [n.metadata.name for n in everything.items]
rv = everything.metadata.resource_version
v1.patch_node("py-a", {"spec": {"podCIDR": "10.9.0.0/24", "podCIDRs": ["10.9.0.0/24"]}})
v1.patch_node_status("py-a", {"status": {"conditions": [{"type": "NetworkUnavailable", "status": "False", "reason": "MncniIsUp"}]}})
print("READY", flush=True)
events = []
w = watch.Watch()
for ev in w.stream(v1.list_node, resource_version=rv, timeout_seconds=20, allow_watch_bookmarks=True):
    events.append([ev["type"], ev["object"].metadata.name])
    if ev["type"] == "DELETED":
        w.stop()
out["events"] = events
coord = client.CoordinationV1Api()
lease = coord.read_namespaced_lease("mncni-controller", "kube-system")
out["lease"] = lease.spec.holder_identity
print(json.dumps(out), flush=True)
`;

let api: FakeApiServer;
beforeAll(() => {
  api = FakeApiServer.start({ bookmarkIntervalMs: 60_000 });
});
afterAll(() => api.close());

describe("python3-kubernetes against the fake API server", () => {
  test.skipIf(!hasClient)("list with paging, patch spec and status, watch from a resourceVersion, read a Lease", async () => {
    for (const n of ["py-a", "py-b", "py-c"]) api.put("nodes", { metadata: { name: n } });
    api.put("leases", { metadata: { name: "mncni-controller", namespace: "kube-system" }, spec: { holderIdentity: "someone" } });
    const p = Bun.spawn([PYTHON, "-c", SCRIPT, api.writeKubeconfig()], { stdout: "pipe", stderr: "pipe" });
    try {
      const reader = p.stdout.getReader();
      let text = "";
      while (!text.includes("READY")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`python client ended early: ${await new Response(p.stderr).text()}`);
        text += new TextDecoder().decode(value);
      }
      // The watch from the list's resourceVersion replays the two patches, then sees these.
      api.put("nodes", { metadata: { name: "py-d" } });
      api.remove("nodes", "py-b");
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      expect(await p.exited).toBe(0);
      const out = JSON.parse(text.slice(text.indexOf("{")));
      expect(out.page1).toEqual(["py-a", "py-b"]);
      expect(out.continue).toBe(true);
      expect(out.all).toEqual(["py-a", "py-b", "py-c"]);
      expect(out.events).toEqual([["MODIFIED", "py-a"], ["MODIFIED", "py-a"], ["ADDED", "py-d"], ["DELETED", "py-b"]]);
      expect(out.lease).toBe("someone");
      const a = api.getObject("nodes", "py-a")!;
      expect(a.spec.podCIDRs).toEqual(["10.9.0.0/24"]);
      expect(a.status.conditions).toEqual([{ type: "NetworkUnavailable", status: "False", reason: "MncniIsUp" }]);
    } finally {
      p.kill();
    }
  }, 60_000);
});
