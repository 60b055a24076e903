// The topology as graph elements with their positions: each node a box, inside it one box per
// namespace, inside that its pods on a grid; node boxes on a grid themselves, the external
// places and Services in boxes of their own; flows as edges between the ends. The structure is
// a strict tree (node > namespace > pod), so boxes on a grid are computed directly, in
// milliseconds at 300 pods, instead of by a force-directed layout, which scatters the groups
// and takes seconds at that size (docs/ui.md).
import type { UiFlowRow, UiTopology } from "../model.ts";

export interface GraphNode {
  /** health (a node): "ready", "not-ready", or "unknown" where the server cannot tell. */
  data: { id: string; label: string; parent?: string; kind: "node" | "ns" | "pod" | "outside" | "group" | "service"; health?: "ready" | "not-ready" | "unknown" };
  position?: { x: number; y: number };
}
export interface GraphEdge {
  data: { id: string; source: string; target: string; verdict: "deny" | "accept" | "backend"; count: number; label?: string };
}

const POD_W = 118;
const POD_H = 46;
const PODS_PER_ROW = 5;
const NS_GAP = 34;
const BOX_GAP = 70;

export const stripLen = (ip: string) => ip.split("/")[0]!;

/** Node box sizes: its namespaces stacked, each as rows of pods. */
function nodeHeight(namespaces: Map<string, unknown[]>): number {
  let h = 0;
  for (const pods of namespaces.values()) h += Math.ceil(pods.length / PODS_PER_ROW) * POD_H + NS_GAP;
  return Math.max(h, POD_H);
}

export function nodeLabel(n: UiTopology["nodes"][number]): string {
  const state = n.ready === undefined ? "" : n.ready ? " · ready" : " · NOT READY";
  return `${n.name} · seg ${n.segment} · ${n.routing}${n.podMTU ? ` · MTU ${n.podMTU}` : ""}${state}`;
}

export function layoutTopology(t: UiTopology): GraphNode[] {
  const out: GraphNode[] = [];
  const byNode = new Map<string, Map<string, UiTopology["pods"]>>();
  for (const n of t.nodes) byNode.set(n.name, new Map());
  for (const p of t.pods) {
    if (!byNode.has(p.node)) byNode.set(p.node, new Map());
    const m = byNode.get(p.node)!;
    if (!m.has(p.namespace)) m.set(p.namespace, []);
    m.get(p.namespace)!.push(p);
  }
  const names = [...byNode.keys()];
  const cols = Math.max(1, Math.ceil(Math.sqrt(names.length * 0.8)));
  const boxW = PODS_PER_ROW * POD_W + BOX_GAP;
  let y = 0;
  for (let row = 0; row * cols < names.length; row++) {
    const inRow = names.slice(row * cols, row * cols + cols);
    let rowH = 0;
    inRow.forEach((name, col) => {
      const n = t.nodes.find((x) => x.name === name);
      const id = `node:${name}`;
      out.push({ data: { id, label: n ? nodeLabel(n) : name, kind: "node", health: n?.ready === undefined ? "unknown" : n.ready ? "ready" : "not-ready" } });
      const namespaces = byNode.get(name)!;
      let ny = y;
      for (const [ns, pods] of [...namespaces.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        const nsId = `ns:${name}:${ns}`;
        out.push({ data: { id: nsId, label: ns, parent: id, kind: "ns" } });
        pods.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true })).forEach((p, i) => {
          out.push({
            data: { id: `pod:${p.id}`, label: `${p.name}\n${p.ips.map(stripLen).join(" ")}`, parent: nsId, kind: "pod" },
            position: { x: col * boxW + (i % PODS_PER_ROW) * POD_W, y: ny + Math.floor(i / PODS_PER_ROW) * POD_H },
          });
        });
        ny += Math.ceil(pods.length / PODS_PER_ROW) * POD_H + NS_GAP;
      }
      // A node without pods still shows its box.
      if (!namespaces.size) out.push({ data: { id: `empty:${name}`, label: "no pods", parent: id, kind: "outside" }, position: { x: col * boxW, y } });
      rowH = Math.max(rowH, nodeHeight(namespaces));
    });
    y += rowH + BOX_GAP + 30;
  }
  if (t.outside.length) {
    out.push({ data: { id: "group:outside", label: "outside the cluster", kind: "group" } });
    t.outside.forEach((o, i) => out.push({ data: { id: `out:${o.id}`, label: `${o.id}\n${o.address}`, parent: "group:outside", kind: "outside" }, position: { x: i * POD_W, y } }));
  }
  if (t.services.length) {
    out.push({ data: { id: "group:services", label: "Services", kind: "group" } });
    t.services.forEach((s, i) => out.push({
      data: { id: `svc:${s.namespace}/${s.name}`, label: `${s.namespace}/${s.name}\n${s.clusterIPs.join(" ")}`, parent: "group:services", kind: "service" },
      position: { x: (t.outside.length + 1) * POD_W + 40 + (i % PODS_PER_ROW) * POD_W * 1.2, y: y + Math.floor(i / PODS_PER_ROW) * POD_H },
    }));
  }
  return out;
}

/** Which graph node an end of a flow is: a pod, a node, an outside place; undefined when none. */
export function endIndex(t: UiTopology): (e: UiFlowRow["src"]) => string | undefined {
  const byIp = new Map<string, string>();
  for (const p of t.pods) for (const ip of p.ips) byIp.set(stripLen(ip), `pod:${p.id}`);
  for (const n of t.nodes) if (n.address) byIp.set(n.address, `node:${n.name}`);
  for (const o of t.outside) byIp.set(o.address, `out:${o.id}`);
  const byName = new Map(t.pods.map((p) => [`${p.namespace}/${p.name}`, `pod:${p.id}`]));
  return (e) => (e.pod ? byName.get(`${e.namespace}/${e.pod}`) : undefined) ?? (e.node ? `node:${e.node}` : undefined) ?? byIp.get(e.ip);
}

/** One edge per (source, destination, verdict), counting the rows' packets; Services to their backends. */
export function flowEdges(t: UiTopology, rows: UiFlowRow[]): GraphEdge[] {
  const at = endIndex(t);
  const edges = new Map<string, GraphEdge>();
  for (const r of rows) {
    const s = at(r.src);
    const d = at(r.dst);
    if (!s || !d || s === d) continue;
    const id = `flow:${s}>${d}:${r.verdict}`;
    const e = edges.get(id);
    if (e) e.data.count += r.count;
    else edges.set(id, { data: { id, source: s, target: d, verdict: r.verdict, count: r.count } });
  }
  const pods = new Map(t.pods.map((p) => [`${p.namespace}/${p.name}`, p.id]));
  for (const s of t.services) for (const b of s.backends) {
    const id = pods.get(b);
    if (id) edges.set(`svc:${s.namespace}/${s.name}>${id}`, { data: { id: `svc:${s.namespace}/${s.name}>${id}`, source: `svc:${s.namespace}/${s.name}`, target: `pod:${id}`, verdict: "backend", count: 1 } });
  }
  return [...edges.values()];
}
