// The flow table's filters: each narrows by its field, at either end of the flow.
import { expect, test } from "bun:test";
import { filterRows, NO_FILTERS, policyKey } from "../../src/ui/page/filter.ts";
import type { UiFlowRow } from "../../src/ui/model.ts";

const NOW = Date.parse("2026-01-01T01:00:00.000Z");
const row = (key: string, o: Partial<UiFlowRow>): UiFlowRow => ({
  key, node: "n1", verdict: "deny", protocol: "TCP", count: 1, first: "2026-01-01T00:59:30.000Z", last: "2026-01-01T00:59:30.000Z",
  src: { ip: "10.0.0.1", namespace: "a", pod: "x" }, dst: { ip: "10.0.0.2", port: 80, namespace: "b", pod: "y" },
  policy: { kind: "NetworkPolicy", namespace: "b", name: "p", rule: "default-deny", direction: "ingress" }, ...o,
});
const rows = [
  row("1", {}),
  row("2", { verdict: "accept", policy: undefined, last: "2026-01-01T00:30:00.000Z" }),
  row("3", { src: { ip: "10.0.0.9", namespace: "c", pod: "z" }, dst: { ip: "203.0.113.10" }, policy: { kind: "ClusterNetworkPolicy", name: "deny-ext", rule: "r1", tier: "Admin", direction: "egress" } }),
];
const keys = (f: Partial<typeof NO_FILTERS>) => filterRows(rows, { ...NO_FILTERS, ...f }, NOW).map((r) => r.key).sort();

test("each filter narrows by its field", () => {
  expect(keys({})).toEqual(["1", "2", "3"]);
  expect(keys({ namespace: "b" })).toEqual(["1", "2"]);
  expect(keys({ namespace: "c" })).toEqual(["3"]);
  expect(keys({ pod: "a/x" })).toEqual(["1", "2"]);
  expect(keys({ pod: "c/z" })).toEqual(["3"]);
  expect(keys({ verdict: "accept" })).toEqual(["2"]);
  expect(keys({ policy: "none" })).toEqual(["2"]);
  expect(keys({ policy: policyKey({ kind: "ClusterNetworkPolicy", name: "deny-ext" }) })).toEqual(["3"]);
  expect(keys({ policy: "NetworkPolicy|b/p" })).toEqual(["1"]);
  expect(keys({ minutes: 5 })).toEqual(["1", "3"]);
  expect(keys({ namespace: "b", verdict: "deny" })).toEqual(["1"]);
});

test("newest first", () => {
  expect(filterRows(rows, NO_FILTERS, NOW).map((r) => r.key)).toEqual(["1", "3", "2"]);
});
