// The topology as graph elements with their positions: each node a box, inside it one box per
// namespace, inside that its pods on a grid; node boxes on a grid themselves, the external
// places and Services in boxes of their own; flows as edges between the ends. The structure is
// a strict tree (node > namespace > pod), so boxes on a grid are computed directly, in
// milliseconds at 300 pods, instead of by a force-directed layout, which scatters the groups
// and takes seconds at that size (docs/ui.md).
import type { UiFlowRow, UiTopology } from "../model.ts";

export interface GraphNode {
  /** health (a node): "ready", "not-ready", or "unknown" where the server cannot tell. */
  data: { id: string; label: string; kind: "node" | "ns" | "pod" | "outside" | "group" | "service"; health?: "ready" | "not-ready" | "unknown"; w?: number; h?: number };
  position: { x: number; y: number };
}
export interface GraphEdge {
  data: { id: string; source: string; target: string; verdict: "deny" | "accept" | "backend"; count: number; label?: string };
}

const POD_W = 118;
const POD_H = 46;
/** A pod's drawn size (the grid cell less the gaps). */
export const POD_SIZE = { w: 104, h: 34 };
const PODS_PER_ROW = 5;
const NS_GAP = 40;
const BOX_GAP = 70;
const NS_PAD = 8;
const NODE_PAD = 16;

export const stripLen = (ip: string) => ip.split("/")[0]!;

export function nodeLabel(n: UiTopology["nodes"][number]): string {
  const why = n.notReady[0] ?? "";
  // The reason on a line of its own, under the title.
  const state = n.ready === undefined ? "" : n.ready ? " · ready" : ` · NOT READY${why ? `\n${why.length > 60 ? `${why.slice(0, 59)}…` : why}` : ""}`;
  return `${n.name} · seg ${n.segment} · ${n.routing}${n.podMTU ? ` · MTU ${n.podMTU}` : ""}${state}`;
}

/** A box drawn behind what it holds: its centre and size from the corners of its contents' centres. */
function box(id: string, label: string, kind: GraphNode["data"]["kind"], x0: number, y0: number, x1: number, y1: number, pad: number, extra: Partial<GraphNode["data"]> = {}): GraphNode {
  return { data: { id, label, kind, w: x1 - x0 + POD_SIZE.w + 2 * pad, h: y1 - y0 + POD_SIZE.h + 2 * pad, ...extra }, position: { x: (x0 + x1) / 2, y: (y0 + y1) / 2 } };
}

/** A node box's height: its namespaces stacked, each as rows of pods. */
function nodeHeight(namespaces: Map<string, unknown[]>): number {
  let h = 0;
  for (const pods of namespaces.values()) h += Math.ceil(pods.length / PODS_PER_ROW) * POD_H + NS_GAP;
  return h;
}

/** The number of node columns that draws the boxes largest in a view of this width/height. */
function bestColumns(n: number, w: number, h: number, aspect: number): number {
  let best = 1;
  let bestScale = 0;
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const scale = Math.min(aspect / (cols * w), 1 / (Math.ceil(n / cols) * h));
    if (scale > bestScale) [best, bestScale] = [cols, scale];
  }
  return best;
}

/**
 * Boxes are plain graph nodes behind the pods, sized here, not cytoscape compound nodes:
 * compound bounds are recomputed by cytoscape on every change and cost most of the first
 * draw at 300 pods.
 */
export function layoutTopology(t: UiTopology, aspect = 1.6): GraphNode[] {
  const boxes: GraphNode[] = [];
  const items: GraphNode[] = [];
  const byNode = new Map<string, Map<string, UiTopology["pods"]>>();
  for (const n of t.nodes) byNode.set(n.name, new Map());
  for (const p of t.pods) {
    if (!byNode.has(p.node)) byNode.set(p.node, new Map());
    const m = byNode.get(p.node)!;
    if (!m.has(p.namespace)) m.set(p.namespace, []);
    m.get(p.namespace)!.push(p);
  }
  const names = [...byNode.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const boxW = PODS_PER_ROW * POD_W + BOX_GAP;
  const cols = bestColumns(names.length, boxW, Math.max(...[...byNode.values()].map(nodeHeight), POD_H) + POD_H + BOX_GAP + 40, aspect);
  let y = 0;
  for (let row = 0; row * cols < names.length; row++) {
    let rowBottom = y;
    names.slice(row * cols, row * cols + cols).forEach((name, col) => {
      const n = t.nodes.find((x) => x.name === name);
      const x0 = col * boxW;
      let ny = y;
      let widest = 0;
      for (const [ns, pods] of [...byNode.get(name)!.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        pods.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
        pods.forEach((p, i) => items.push({ data: { id: `pod:${p.id}`, label: `${p.name}\n${p.ips.map(stripLen).join(" ")}`, kind: "pod" }, position: { x: x0 + (i % PODS_PER_ROW) * POD_W, y: ny + Math.floor(i / PODS_PER_ROW) * POD_H } }));
        const rows = Math.ceil(pods.length / PODS_PER_ROW);
        const inRow = Math.min(pods.length, PODS_PER_ROW);
        widest = Math.max(widest, inRow);
        boxes.push(box(`ns:${name}:${ns}`, ns, "ns", x0, ny, x0 + (inRow - 1) * POD_W, ny + (rows - 1) * POD_H, NS_PAD));
        ny += rows * POD_H + NS_GAP;
      }
      const bottom = Math.max(y, ny - POD_H - NS_GAP);
      // A node without pods still shows its box.
      boxes.unshift(box(`node:${name}`, n ? nodeLabel(n) : name, "node", x0, y - NS_PAD, x0 + Math.max(widest - 1, 1) * POD_W, bottom + NS_PAD, NODE_PAD + NS_PAD, { health: n?.ready === undefined ? "unknown" : n.ready ? "ready" : "not-ready" }));
      rowBottom = Math.max(rowBottom, bottom);
    });
    y = rowBottom + POD_H + BOX_GAP + 40;
  }
  if (t.outside.length) {
    t.outside.forEach((o, i) => items.push({ data: { id: `out:${o.id}`, label: `${o.id}\n${o.address}`, kind: "outside" }, position: { x: i * POD_W, y } }));
    boxes.push(box("group:outside", "outside the cluster", "group", 0, y, (t.outside.length - 1) * POD_W, y, NS_PAD));
  }
  if (t.services.length) {
    const x0 = (t.outside.length + 1) * POD_W + 40;
    const svcW = POD_W * 1.2;
    t.services.forEach((s, i) => items.push({ data: { id: `svc:${s.namespace}/${s.name}`, label: `${s.namespace}/${s.name}\n${s.clusterIPs.join(" ")}`, kind: "service" }, position: { x: x0 + (i % PODS_PER_ROW) * svcW, y: y + Math.floor(i / PODS_PER_ROW) * POD_H } }));
    const rows = Math.ceil(t.services.length / PODS_PER_ROW);
    boxes.push(box("group:services", "Services", "group", x0, y, x0 + (Math.min(t.services.length, PODS_PER_ROW) - 1) * svcW + 20, y + (rows - 1) * POD_H, NS_PAD + 6));
  }
  return [...boxes, ...items];
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

/**
 * The zoom and pan that show every element in a view of width x height: from the sizes the
 * layout gave them, so cytoscape need not measure every label to fit (a third of the first
 * draw at 300 pods).
 */
export function fitView(nodes: GraphNode[], width: number, height: number, padding = 30): { zoom: number; pan: { x: number; y: number } } {
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const n of nodes) {
    const w = n.data.w ?? POD_SIZE.w;
    // Room for a box's title above it.
    const h = n.data.h ?? POD_SIZE.h;
    const top = n.data.w !== undefined ? 20 : 0;
    x0 = Math.min(x0, n.position.x - w / 2);
    x1 = Math.max(x1, n.position.x + w / 2);
    y0 = Math.min(y0, n.position.y - h / 2 - top);
    y1 = Math.max(y1, n.position.y + h / 2);
  }
  if (!Number.isFinite(x0)) return { zoom: 1, pan: { x: 0, y: 0 } };
  const zoom = Math.min(3, Math.max(0.05, Math.min((width - 2 * padding) / (x1 - x0), (height - 2 * padding) / (y1 - y0))));
  return { zoom, pan: { x: (width - (x1 - x0) * zoom) / 2 - x0 * zoom, y: (height - (y1 - y0) * zoom) / 2 - y0 * zoom } };
}
