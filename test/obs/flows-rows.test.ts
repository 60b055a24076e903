// Rows of `flows`: repeated packets of one flow (5-tuple, verdict, decider) within the window
// are one row; a pause longer than the window, another decider, or another node starts a new one.
import { describe, expect, test } from "bun:test";
import { aggregateFlows, FLOW_WINDOW_MS, FlowAggregator, flowMatches, type FlowRecord } from "../../src/obs/flows.ts";
import { formatFlowRow } from "../../src/cli/text/flows.ts";

const at = (ms: number, over: Partial<FlowRecord> = {}): FlowRecord => ({
  time: new Date(Date.UTC(2026, 0, 1) + ms).toISOString(),
  verdict: "deny",
  protocol: "TCP",
  src: { ip: "10.244.1.2", port: 40000, namespace: "x", pod: "a" },
  dst: { ip: "10.244.2.2", port: 80, namespace: "x", pod: "b" },
  policy: { kind: "NetworkPolicy", namespace: "x", name: "p", rule: "default-deny", direction: "ingress" } as FlowRecord["policy"],
  ...over,
});

describe("flow rows", () => {
  test("a SYN and its retransmissions are one row with their count", () => {
    const rows = aggregateFlows([at(0), at(1000), at(3000), at(7000)]);
    expect(rows.map((r) => [r.record.time, r.count, r.last])).toEqual([[at(0).time, 4, at(7000).time]]);
  });

  test("a pause longer than the window, another port, verdict or decider: another row", () => {
    const other = { kind: "ClusterNetworkPolicy", name: "q", rule: "r", direction: "ingress" } as FlowRecord["policy"];
    const rows = aggregateFlows([at(0), at(FLOW_WINDOW_MS + 1), at(10, { src: { ip: "10.244.1.2", port: 40001 } }), at(20, { policy: other }), at(30, { verdict: "accept" })]);
    expect(rows.map((r) => [r.record.time, r.count])).toEqual([[at(0).time, 1], [at(10).time, 1], [at(20).time, 1], [at(30).time, 1], [at(FLOW_WINDOW_MS + 1).time, 1]]);
  });

  test("the extra key keeps the same flow logged by two nodes apart; a rate-cap line is its own row", () => {
    const records: (FlowRecord & { node?: string })[] = [{ ...at(0), node: "n1" }, { ...at(5), node: "n2" }, { ...at(6), suppressed: 3 }];
    const rows = aggregateFlows(records, (r) => r.node ?? "");
    expect(rows.map((r) => r.count)).toEqual([1, 1, 1]);
  });

  test("following: a row is printed once its flow is quiet for the window", () => {
    const agg = new FlowAggregator<FlowRecord>();
    expect(agg.add(at(0))).toEqual([]);
    expect(agg.add(at(1000))).toEqual([]);
    const t0 = Date.parse(at(1000).time);
    expect(agg.due(t0 + FLOW_WINDOW_MS)).toEqual([]);
    expect(agg.due(t0 + FLOW_WINDOW_MS + 1).map((r) => r.count)).toEqual([2]);
    expect(agg.flush()).toEqual([]);
  });

  test("filters: a pod or namespace at either end, allow meaning accept; a rate-cap line only unfiltered", () => {
    expect(flowMatches(at(0), { pod: { namespace: "x", name: "b" } })).toBe(true);
    expect(flowMatches(at(0), { pod: { namespace: "y", name: "b" } })).toBe(false);
    expect(flowMatches(at(0), { namespace: "x" })).toBe(true);
    expect(flowMatches(at(0), { namespace: "y" })).toBe(false);
    expect(flowMatches(at(0, { verdict: "accept" }), { verdict: "allow" })).toBe(true);
    expect(flowMatches(at(0), { verdict: "allow" })).toBe(false);
    expect(flowMatches({ ...at(0), suppressed: 2 }, {})).toBe(true);
    expect(flowMatches({ ...at(0), suppressed: 2 }, { verdict: "deny" })).toBe(false);
  });

  test("a NetworkPolicy isolation is shown as no rule allowing it, never as a rule named default-deny", () => {
    const line = formatFlowRow({ record: at(0), count: 1, last: at(0).time } as Parameters<typeof formatFlowRow>[0]);
    expect(line).toContain("NetworkPolicy x/p no rule allows it (ingress)");
    expect(line).not.toContain("default-deny");
  });
});
