// The topology drawn with cytoscape (canvas: 300 pods and their edges stay smooth to pan and
// zoom), positions from layout.ts; flows as edges, denied in red. A click on a pod, node or
// edge tells the app, which shows its details or explains the pair.
import cytoscape from "cytoscape";
import { useEffect, useLayoutEffect, useRef } from "preact/hooks";
import type { UiFlowRow, UiTopology } from "../model.ts";
import { fitView, flowEdges, layoutTopology } from "./layout.ts";

const BOX = { shape: "round-rectangle", width: "data(w)", height: "data(h)", "text-valign": "top", "text-halign": "center", "z-index": 1, "z-index-compare": "manual" } as const;
const STYLE: cytoscape.StylesheetJson = [
  { selector: "node", style: { label: "data(label)", "font-size": 10, "text-wrap": "wrap", "text-valign": "center", "text-halign": "center", "z-index": 10, "z-index-compare": "manual" } },
  { selector: 'node[kind = "pod"]', style: { shape: "round-rectangle", width: 104, height: 34, "background-color": "#e8f0fb", "border-width": 1, "border-color": "#7a9cc6" } },
  { selector: 'node[kind = "node"]', style: { ...BOX, "z-index": 0, "font-size": 13, "font-weight": "bold", "background-color": "#fafafa", "border-width": 2, "border-color": "#4b5563", "text-margin-y": -2 } },
  { selector: 'node[health = "ready"]', style: { "border-color": "#2a8a3e" } },
  { selector: 'node[health = "not-ready"]', style: { "border-color": "#d22", "border-style": "dashed", "border-width": 3 } },
  { selector: 'node[kind = "ns"]', style: { ...BOX, "font-size": 10, color: "#6b7178", "background-color": "#f2f4f7", "border-width": 1, "border-color": "#c9ced6", events: "no" } },
  { selector: 'node[kind = "group"]', style: { ...BOX, "font-size": 12, "background-color": "#fff", "border-width": 1, "border-style": "dashed", "border-color": "#9aa4ae", events: "no" } },
  { selector: 'node[kind = "outside"]', style: { shape: "round-rectangle", width: 104, height: 34, "background-color": "#f4efe6", "border-width": 1, "border-color": "#b39b6e" } },
  { selector: 'node[kind = "service"]', style: { shape: "round-rectangle", width: 130, height: 34, "background-color": "#efe6f8", "border-width": 1, "border-color": "#8a6bbf" } },
  { selector: "node:selected", style: { "border-width": 3, "border-color": "#1f5fbf" } },
  {
    selector: "edge",
    style: {
      width: "mapData(count, 1, 200, 1.5, 6)",
      // An arc, so an edge between pods of one row does not run over the pods between them.
      "curve-style": "unbundled-bezier", "control-point-distances": [-50], "control-point-weights": [0.5], "target-arrow-shape": "triangle", "arrow-scale": 0.8, opacity: 0.85, "z-index": 20, "z-index-compare": "manual",
    },
  },
  { selector: 'edge[verdict = "deny"]', style: { "line-color": "#d22", "target-arrow-color": "#d22" } },
  { selector: 'edge[verdict = "accept"]', style: { "line-color": "#2a8a3e", "target-arrow-color": "#2a8a3e" } },
  { selector: 'edge[verdict = "backend"]', style: { "line-color": "#8a6bbf", "target-arrow-color": "#8a6bbf", "line-style": "dashed", width: 1 } },
  { selector: "edge:selected", style: { width: 6 } },
];

export interface TopologyClick {
  kind: "pod" | "node" | "outside" | "service" | "edge";
  /** pod: its id; node: its name; outside: its id; service: ns/name; edge: the two ends' graph ids and verdict. */
  id: string;
  edge?: { source: string; target: string; verdict: string };
}

export function TopologyView({ topology, rows, onClick, highlight }: { topology: UiTopology; rows: UiFlowRow[]; onClick: (c: TopologyClick) => void; highlight?: string[] }) {
  const box = useRef<HTMLDivElement>(null);
  const cy = useRef<cytoscape.Core>();
  const click = useRef(onClick);
  click.current = onClick;
  const shape = JSON.stringify([topology.nodes, topology.pods, topology.outside, topology.services]);

  // Drawn as soon as the box is in the page, not a frame later.
  useLayoutEffect(() => {
    const [w, h] = [box.current!.clientWidth, Math.max(1, box.current!.clientHeight)];
    const elements = layoutTopology(topology, w / h);
    const c = cytoscape({ container: box.current!, elements, style: STYLE, layout: { name: "preset", fit: false }, ...fitView(elements, w, h), pixelRatio: 1, textureOnViewport: true, minZoom: 0.1, maxZoom: 3 });
    c.on("tap", "node, edge", (e) => {
      const t = e.target as cytoscape.SingularElementArgument;
      const id = t.id();
      if (t.isEdge()) return click.current({ kind: "edge", id, edge: { source: t.data("source") as string, target: t.data("target") as string, verdict: t.data("verdict") as string } });
      const [kind, ...rest] = id.split(":");
      const name = rest.join(":");
      if (kind === "pod") click.current({ kind: "pod", id: name });
      else if (kind === "node") click.current({ kind: "node", id: name });
      else if (kind === "out") click.current({ kind: "outside", id: name });
      else if (kind === "svc") click.current({ kind: "service", id: name });
    });
    cy.current = c;
    // For the benchmark (bench/ui.ts): the topology is drawn and takes clicks from here on.
    c.one("render", () => performance.mark("mncni-topology-ready"));
    // The graph as drawn, for the end-to-end tests (test/ui/ui.e2e.test.ts) and a curious console.
    (window as unknown as { __cy?: cytoscape.Core }).__cy = c;
    // The side panel opening or closing resizes the box: the canvas follows (cytoscape itself
    // only watches the window), and is fitted again unless the user has zoomed or panned.
    let fitted = true;
    let ours = false;
    c.on("viewport", () => {
      if (!ours) fitted = false;
    });
    const resized = new ResizeObserver(() => {
      ours = true;
      c.resize();
      if (fitted) c.viewport(fitView(elements, box.current!.clientWidth, Math.max(1, box.current!.clientHeight)));
      ours = false;
    });
    resized.observe(box.current!);
    return () => {
      resized.disconnect();
      c.destroy();
    };
  }, [shape]);

  // Edges follow the flows without moving anything else.
  useEffect(() => {
    const c = cy.current;
    if (!c) return;
    const want = flowEdges(topology, rows);
    const ids = new Set(want.map((e) => e.data.id));
    c.batch(() => {
      c.edges().forEach((e) => {
        if (!ids.has(e.id())) e.remove();
      });
      for (const e of want) {
        const have = c.getElementById(e.data.id);
        if (have.nonempty()) have.data("count", e.data.count);
        else if (c.getElementById(e.data.source).nonempty() && c.getElementById(e.data.target).nonempty()) c.add({ group: "edges", data: e.data });
      }
    });
  }, [rows, shape]);

  // Pods to pick out (a policy's): selected, as a click would.
  useEffect(() => {
    const c = cy.current;
    if (!c || !highlight) return;
    c.batch(() => {
      c.elements().unselect();
      for (const id of highlight) c.getElementById(`pod:${id}`).select();
    });
  }, [highlight, shape]);

  return (
    <>
      <div id="cy" ref={box} data-testid="topology" />
      <div class="legend">flows: <i style="background:#d22" />denied <i style="background:#2a8a3e" />allowed <i style="background:#8a6bbf" />Service backend · click a pod to explain a packet from it, an edge to explain its flow</div>
    </>
  );
}
