// The controller's /metrics (prom-client, merged with the client layer's): the names and
// labels as before the move from hand-written text, and every metric in docs/controller.md.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { NodeCIDRAllocator } from "../../src/controller/cidr-allocator.ts";
import { ControllerMetrics } from "../../src/controller/metrics.ts";
import { KubeMetrics } from "../../src/kube/index.ts";

describe("controller metrics", () => {
  test("samples as the fields say, one line per sample or comment", async () => {
    const kube = new KubeMetrics("mncni_controller");
    const allocator = new NodeCIDRAllocator([{ family: 4, clusterCIDR: "10.244.0.0/16", nodeMaskSize: 24 }]);
    const m = new ControllerMetrics(kube, () => allocator);
    m.leader = true;
    m.allocations = 4;
    m.rejected.overlap = 2;
    kube.watchRestart("Node", "expired");
    kube.retry("PATCH");
    kube.retry("PATCH");
    const t = await m.render();
    expect(t).toContain("mncni_controller_leader 1\n");
    expect(t).toContain("mncni_controller_allocations_total 4\n");
    expect(t).toContain('mncni_controller_nodes_rejected{reason="overlap"} 2\n');
    expect(t).toContain('mncni_controller_nodes_rejected{reason="outside"} 0\n');
    expect(t).toContain('mncni_controller_cidrs_total{family="ipv4",cluster_cidr="10.244.0.0/16"} 256\n');
    expect(t).toContain('mncni_controller_cidrs_allocated{family="ipv4",cluster_cidr="10.244.0.0/16"} 0\n');
    expect(t).toContain('mncni_controller_watch_restarts_total{kind="Node",reason="expired"} 1\n');
    expect(t).toContain('mncni_controller_api_retries_total{method="PATCH"} 2\n');
    for (const line of t.trim().split("\n")) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [0-9.e+-]+)$/);
  });

  test("docs/controller.md lists every metric the controller exports", async () => {
    const names = [...(await new ControllerMetrics(new KubeMetrics("mncni_controller"), () => undefined).render()).matchAll(/^# TYPE (\w+) /gm)].map((x) => x[1]!);
    expect(names.length).toBeGreaterThan(12);
    const doc = readFileSync(resolve(import.meta.dir, "../../docs/controller.md"), "utf8");
    expect(names.filter((n) => !new RegExp(`\`${n}[\`{]`).test(doc))).toEqual([]);
  });
});
