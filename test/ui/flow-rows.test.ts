// The page's flow rows: one row per flow (the source port left out), counted; a row seen again
// moves to the newest end; the oldest rows go past the bound; rate-cap lines name no flow.
import { expect, test } from "bun:test";
import { FlowRows } from "../../src/ui/flow-rows.ts";
import type { UiFlowRecord } from "../../src/ui/source.ts";

const rec = (o: { sport: number; dst?: string; time: string; verdict?: "deny" | "accept"; node?: string }): UiFlowRecord => ({
  time: o.time, verdict: o.verdict ?? "deny", protocol: "TCP", node: o.node ?? "node2",
  src: { ip: "10.244.1.2", port: o.sport, namespace: "default", pod: "a" },
  dst: { ip: o.dst ?? "10.244.2.2", port: 7777, namespace: "default", pod: "b" },
  policy: { kind: "NetworkPolicy", namespace: "default", name: "p", rule: "ingress[0]", direction: "ingress" },
});

test("connection attempts between the same ends are one row with a count; the changed rows are returned", () => {
  const rows = new FlowRows();
  const changed = rows.add([rec({ sport: 1000, time: "2026-01-01T00:00:00.000Z" }), rec({ sport: 1001, time: "2026-01-01T00:00:01.000Z" }), rec({ sport: 1002, dst: "10.244.2.3", time: "2026-01-01T00:00:02.000Z" })]);
  expect(rows.size).toBe(2);
  expect(changed.map((r) => [r.dst.ip, r.count])).toEqual([["10.244.2.2", 2], ["10.244.2.3", 1]]);
  const [first] = rows.all();
  expect(first!.first).toBe("2026-01-01T00:00:00.000Z");
  expect(first!.last).toBe("2026-01-01T00:00:01.000Z");
  expect(first!.src.port).toBeUndefined();
  // Another verdict, or another node's log, is another row.
  rows.add([rec({ sport: 1, time: "2026-01-01T00:00:03.000Z", verdict: "accept" }), rec({ sport: 1, time: "2026-01-01T00:00:03.000Z", node: "node3" })]);
  expect(rows.size).toBe(4);
});

test("a row seen again is the newest; past the bound the oldest go; a rate-cap line is no row", () => {
  const rows = new FlowRows(2);
  rows.add([rec({ sport: 1, dst: "10.0.0.1", time: "2026-01-01T00:00:00.000Z" }), rec({ sport: 1, dst: "10.0.0.2", time: "2026-01-01T00:00:01.000Z" })]);
  rows.add([rec({ sport: 2, dst: "10.0.0.1", time: "2026-01-01T00:00:02.000Z" })]);
  expect(rows.all().map((r) => r.dst.ip)).toEqual(["10.0.0.2", "10.0.0.1"]);
  rows.add([rec({ sport: 1, dst: "10.0.0.3", time: "2026-01-01T00:00:03.000Z" })]);
  expect(rows.all().map((r) => r.dst.ip)).toEqual(["10.0.0.1", "10.0.0.3"]);
  expect(rows.add([{ ...rec({ sport: 1, time: "2026-01-01T00:00:04.000Z" }), suppressed: 12 }])).toEqual([]);
});
