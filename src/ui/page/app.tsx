// The page: three views (topology, flows, policies) over one state, kept current by the
// server's event stream, and a side panel with what was clicked: a pod, a node, a policy, or
// a flow explained (explain's typed result, the traced probe on request).
import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import type { Explanation, UiExplainRequest, UiFlowRow, UiPolicy, UiSnapshot, UiState, UiTopology } from "../model.ts";
import { explain, fetchFlows, fetchState, subscribe } from "./api.ts";
import { ExplainView } from "./explain-view.tsx";
import { deciderText, endText, filterRows, NO_FILTERS, policyKey, type FlowFilters } from "./filter.ts";
import { endIndex, stripLen } from "./layout.ts";
import { TopologyView, type TopologyClick } from "./topology-view.tsx";

type View = "topology" | "flows" | "policies";
type Panel =
  | { kind: "pod"; id: string }
  | { kind: "node"; name: string }
  | { kind: "service"; id: string }
  | { kind: "policy"; key: string }
  | { kind: "explain"; title: string; req: UiExplainRequest; ex?: Explanation; error?: string; probing: boolean };

/** Rows shown at once: the table stays fast with 10,000 flows; the filters find the rest. */
const SHOWN_ROWS = 200;

const afterPaint = () => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(resolve, 0))));

const podKeyOf = (p: { namespace: string; name: string }) => `${p.namespace}/${p.name}`;

/** What explain calls an end of a flow: a pod or place of the topology, else its address. */
function explainId(t: UiTopology, e: UiFlowRow["src"]): string {
  const g = endIndex(t)(e);
  if (g?.startsWith("pod:")) return g.slice(4);
  if (g?.startsWith("node:")) return g.slice(5);
  if (g?.startsWith("out:")) return g.slice(4);
  return e.ip;
}

function flowRequest(t: UiTopology, r: UiFlowRow, probe = false): UiExplainRequest {
  const proto = r.protocol.toLowerCase().startsWith("icmp") ? "icmp" : r.protocol.toLowerCase() === "udp" ? "udp" : "tcp";
  return { src: explainId(t, r.src), dst: r.dst.ip, proto, port: r.dst.port ?? 7777, probe };
}

function FlowTable({ rows, selected, onPick }: { rows: UiFlowRow[]; selected?: string; onPick: (r: UiFlowRow) => void }) {
  return (
    <table data-testid="flows">
      <thead>
        <tr><th>last seen</th><th>node</th><th>verdict</th><th>source</th><th>destination</th><th>proto/port</th><th>direction</th><th>policy</th><th>tier</th><th>rule</th><th>count</th></tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.key} data-key={r.key} class={r.key === selected ? "sel" : ""} data-verdict={r.verdict} data-policy={r.policy ? deciderText(r.policy) : ""} data-rule={r.policy?.rule ?? ""} onClick={() => onPick(r)}>
            <td>{new Date(r.last).toLocaleTimeString()}</td>
            <td>{r.node}</td>
            <td class={`verdict-${r.verdict}`}>{r.verdict === "deny" ? "denied" : "allowed"}</td>
            <td>{endText(r.src)}</td>
            <td>{endText(r.dst)}</td>
            <td>{r.protocol}{r.dst.port !== undefined ? `/${r.dst.port}` : ""}</td>
            <td>{r.policy?.direction ?? ""}</td>
            <td title={r.policy?.kind}>{deciderText(r.policy)}</td>
            <td>{r.policy ? r.policy.tier ?? "NetworkPolicy" : ""}</td>
            <td>{r.policy?.rule ?? ""}</td>
            <td>{r.count}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Filters({ f, set, namespaces, policies, shown, total }: { f: FlowFilters; set: (f: FlowFilters) => void; namespaces: string[]; policies: UiPolicy[]; shown: number; total: number }) {
  return (
    <div class="filters">
      <label>namespace <select data-testid="f-namespace" value={f.namespace} onChange={(e) => set({ ...f, namespace: e.currentTarget.value })}><option value="">all</option>{namespaces.map((n) => <option value={n}>{n}</option>)}</select></label>
      <label>pod <input data-testid="f-pod" placeholder="ns/name" value={f.pod} onInput={(e) => set({ ...f, pod: e.currentTarget.value })} /></label>
      <label>verdict <select data-testid="f-verdict" value={f.verdict} onChange={(e) => set({ ...f, verdict: e.currentTarget.value as FlowFilters["verdict"] })}><option value="">all</option><option value="deny">denied</option><option value="accept">allowed</option></select></label>
      <label>policy <select data-testid="f-policy" value={f.policy} onChange={(e) => set({ ...f, policy: e.currentTarget.value })}><option value="">any</option><option value="none">none</option>{policies.map((p) => <option value={policyKey(p)}>{p.namespace ? `${p.namespace}/` : ""}{p.name}</option>)}</select></label>
      <label>seen in <select data-testid="f-time" value={String(f.minutes)} onChange={(e) => set({ ...f, minutes: Number(e.currentTarget.value) })}><option value="0">all time</option><option value="1">1 min</option><option value="5">5 min</option><option value="15">15 min</option><option value="60">1 hour</option></select></label>
      <span class="count" data-testid="flow-count">{shown < total ? `${shown} of ${total} flows (newest first)` : `${total} flows`}</span>
    </div>
  );
}

function PoliciesView({ policies, onPick }: { policies: UiPolicy[]; onPick: (p: UiPolicy) => void }) {
  return (
    <table data-testid="policies">
      <thead><tr><th>kind</th><th>name</th><th>tier</th><th>priority</th><th>directions</th><th>selects</th><th>rules (in/out)</th></tr></thead>
      <tbody>
        {policies.map((p) => (
          <tr onClick={() => onPick(p)} data-policy={policyKey(p)}>
            <td>{p.kind}</td><td>{p.namespace ? `${p.namespace}/` : ""}{p.name}</td><td>{p.tier}</td><td>{p.priority ?? ""}</td>
            <td>{p.directions.join(", ")}</td><td>{p.selects.length} pods</td><td>{p.rules.ingress}/{p.rules.egress}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function PodPanel({ state, id, onExplain }: { state: UiState; id: string; onExplain: (req: UiExplainRequest, title: string) => void }) {
  const pod = state.topology.pods.find((p) => p.id === id);
  const [dst, setDst] = useState("");
  const [proto, setProto] = useState<UiExplainRequest["proto"]>("tcp");
  const [port, setPort] = useState(7777);
  if (!pod) return <p>pod {id} is gone</p>;
  const key = podKeyOf(pod);
  const selecting = state.policies.filter((p) => p.selects.includes(key));
  const others = state.topology.pods.filter((p) => p.id !== id);
  return (
    <>
      <h2>{key}</h2>
      <dl class="kv">
        <dt>node</dt><dd>{pod.node}</dd>
        <dt>addresses</dt><dd>{pod.ips.map(stripLen).join(", ")}</dd>
        <dt>labels</dt><dd>{Object.entries(pod.labels).map(([k, v]) => <span class="tag">{k}={v}</span>)}</dd>
        <dt>policies</dt><dd>{selecting.length ? selecting.map((p) => <span class="tag">{p.namespace ? `${p.namespace}/` : ""}{p.name}</span>) : "none select it"}</dd>
      </dl>
      <h3>Explain a packet from here</h3>
      <div class="filters">
        <select data-testid="explain-dst" value={dst} onChange={(e) => setDst(e.currentTarget.value)}>
          <option value="">to…</option>
          {others.map((p) => <option value={p.id}>{podKeyOf(p)}</option>)}
          {state.topology.nodes.map((n) => <option value={n.name}>node {n.name}</option>)}
          {state.topology.outside.map((o) => <option value={o.id}>{o.id}</option>)}
        </select>
        <select value={proto} onChange={(e) => setProto(e.currentTarget.value as UiExplainRequest["proto"])}><option>tcp</option><option>udp</option><option>icmp</option></select>
        <input type="number" min={1} max={65535} value={port} style="width:70px" onInput={(e) => setPort(Number(e.currentTarget.value))} />
        <button class="act" data-testid="explain-go" disabled={!dst} onClick={() => onExplain({ src: id, dst, proto, port, probe: false }, `${key} → ${dst}`)}>Explain</button>
      </div>
    </>
  );
}

function NodePanel({ t, name }: { t: UiTopology; name: string }) {
  const n = t.nodes.find((x) => x.name === name);
  if (!n) return <p>node {name} is gone</p>;
  return (
    <>
      <h2>node {n.name}</h2>
      <dl class="kv">
        <dt>address</dt><dd>{n.address}</dd>
        <dt>segment</dt><dd>{n.segment}</dd>
        <dt>pod CIDRs</dt><dd>{n.podCIDRs.join(", ")}</dd>
        <dt>routing</dt><dd>{n.routing}</dd>
        <dt>pod MTU</dt><dd>{n.podMTUWhy ?? n.podMTU ?? "unknown"}</dd>
        <dt>ready</dt><dd>{n.ready === undefined ? "unknown here" : n.ready ? "yes" : "no"}</dd>
        {n.notReady.length > 0 && <><dt>why not</dt><dd>{n.notReady.map((r) => <div class="why">{r}</div>)}</dd></>}
        {n.warnings.length > 0 && <><dt>warnings</dt><dd>{n.warnings.map((r) => <div>{r}</div>)}</dd></>}
      </dl>
      <h3>Paths to peers</h3>
      <ul>{n.paths.map((p) => <li>{p.peer}: {p.path}</li>)}</ul>
    </>
  );
}

function PolicyPanel({ state, pkey, onPickRow, onShow }: { state: UiState; pkey: string; onPickRow: (r: UiFlowRow) => void; onShow: (podIds: string[]) => void }) {
  const p = state.policies.find((x) => policyKey(x) === pkey);
  if (!p) return <p>policy is gone</p>;
  const recent = filterRows(state.flows, { ...NO_FILTERS, policy: pkey }, Date.now()).slice(0, 50);
  return (
    <>
      <h2>{p.kind} {p.namespace ? `${p.namespace}/` : ""}{p.name}</h2>
      <dl class="kv"><dt>tier</dt><dd>{p.tier}</dd>{p.priority !== undefined && <><dt>priority</dt><dd>{p.priority}</dd></>}<dt>directions</dt><dd>{p.directions.join(", ") || "none (selects no pod)"}</dd></dl>
      <h3>Selects {p.selects.length} pods</h3>
      <div data-testid="policy-selects">{p.selects.map((s) => <span class="tag">{s}</span>)}</div>
      {p.selects.length > 0 && (
        <p><button class="act" data-testid="policy-show" onClick={() => onShow(state.topology.pods.filter((x) => p.selects.includes(podKeyOf(x))).map((x) => x.id))}>Show them on the topology</button></p>
      )}
      <h3>Recent verdicts</h3>
      {recent.length ? <ul>{recent.map((r) => <li style="cursor:pointer" onClick={() => onPickRow(r)}><span class={`verdict-${r.verdict}`}>{r.verdict}</span> {endText(r.src)} → {endText(r.dst)}{r.dst.port ? `:${r.dst.port}` : ""} ({r.policy?.rule}) ×{r.count}</li>)}</ul> : <p class="muted">none logged</p>}
    </>
  );
}

function App() {
  const [state, setState] = useState<UiState>();
  const [live, setLive] = useState(false);
  // The view is in the address (#flows, #policies), so a link or a reload keeps it.
  const [view, setViewState] = useState<View>(() => (["flows", "policies"].includes(location.hash.slice(1)) ? (location.hash.slice(1) as View) : "topology"));
  const setView = (v: View) => {
    history.replaceState(null, "", v === "topology" ? location.pathname + location.search : `#${v}`);
    setViewState(v);
  };
  const [filters, setFilters] = useState<FlowFilters>(NO_FILTERS);
  const [panel, setPanel] = useState<Panel>();
  const [error, setError] = useState<string>();
  /** Pods picked out on the topology (a policy's, on request). */
  const [highlight, setHighlight] = useState<string[]>();
  /** The flow row explained in the panel (highlighted in the table). */
  const [picked, setPicked] = useState<string>();

  useEffect(() => {
    // Subscribe first, then read the state and the rows: nothing that changes in between is
    // lost (a row's newer copy, with the higher count, wins). The topology is drawn as soon as
    // the state is in, before the rows; events are applied at most once a frame.
    let base: UiSnapshot | undefined;
    const rows = new Map<string, UiFlowRow>();
    const keep = (r: UiFlowRow) => {
      const have = rows.get(r.key);
      if (!have || have.count <= r.count) rows.set(r.key, r);
    };
    const publish = () => base && setState({ ...base, flows: [...rows.values()] });
    let queued = false;
    const schedule = () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        publish();
      });
    };
    const load = () =>
      fetchState().then((s) => {
        performance.mark("mncni-state"); // bench/ui.ts
        base = s;
        publish();
        // The rows (megabytes at 10,000 flows) after the first frames are drawn: parsing them
        // would hold up the topology's first draw.
        return afterPaint().then(fetchFlows).then((list) => {
          list.forEach(keep);
          publish();
        });
      });
    const stop = subscribe(
      (e) => {
        if (e.type === "state") base = e.state;
        else e.rows.forEach(keep);
        schedule();
      },
      setLive,
      // The stream was cut, or the server restarted (its row keys start again): read it all again.
      () => {
        rows.clear();
        load().catch(() => {});
      },
    );
    load().catch((e: Error) => setError(e.message));
    return stop;
  }, []);

  const haveRows = (state?.flows.length ?? 0) > 0;
  useEffect(() => {
    if (view === "flows" && haveRows) performance.mark("mncni-flows-ready"); // bench/ui.ts: the table has its rows
  }, [view, haveRows]);

  const runExplain = async (req: UiExplainRequest, title: string) => {
    setPanel({ kind: "explain", title, req, probing: req.probe });
    const a = await explain(req);
    setPanel((p) => (p?.kind === "explain" && p.req.src === req.src && p.req.dst === req.dst ? { ...p, req, probing: false, ...("error" in a ? { error: a.error, ex: undefined } : { ex: a.explanation, error: undefined }) } : p));
  };

  const now = Date.now();
  const shownRows = useMemo(() => (state ? filterRows(state.flows, filters, now) : []), [state?.flows, filters]);
  const namespaces = useMemo(() => [...new Set(state?.topology.pods.map((p) => p.namespace) ?? [])].sort(), [state?.topology]);
  if (error) return <p class="loading">cannot read the server's state: {error}</p>;
  if (!state) return <p class="loading">loading…</p>;
  const t = state.topology;
  const pickRow = (r: UiFlowRow) => {
    setPicked(r.key);
    runExplain(flowRequest(t, r), `${endText(r.src)} → ${endText(r.dst)}`);
  };
  const onTopo = (c: TopologyClick) => {
    if (c.kind === "pod") setPanel({ kind: "pod", id: c.id });
    else if (c.kind === "node") setPanel({ kind: "node", name: c.id });
    else if (c.kind === "service") setPanel({ kind: "service", id: c.id });
    else if (c.kind === "edge" && c.edge) {
      const at = endIndex(t);
      const row = shownRows.find((r) => at(r.src) === c.edge!.source && at(r.dst) === c.edge!.target && r.verdict === c.edge!.verdict);
      if (row) pickRow(row);
    }
  };
  const denied = state.flows.filter((r) => r.verdict === "deny").length;

  return (
    <>
      <header>
        <h1>mncni · {t.kind} {t.title}</h1>
        <nav>
          {(["topology", "flows", "policies"] as const).map((v) => <button class={view === v ? "on" : ""} data-testid={`tab-${v}`} onClick={() => setView(v)}>{v === "flows" ? `flows (${state.flows.length}, ${denied} denied)` : v === "topology" ? `topology (${t.nodes.length} nodes, ${t.pods.length} pods)` : `policies (${state.policies.length})`}</button>)}
        </nav>
        <span class={`live ${live ? "ok" : "down"}`} data-testid="live">{live ? "live" : "reconnecting"}</span>
      </header>
      {state.problems.length > 0 && <div class="problems">{state.problems.join(" · ")}</div>}
      <main>
        {view === "topology" && <section class="view topology"><TopologyView topology={t} rows={shownRows} onClick={onTopo} highlight={highlight} /></section>}
        {view === "flows" && (
          <section class="view">
            <Filters f={filters} set={setFilters} namespaces={namespaces} policies={state.policies} shown={Math.min(shownRows.length, SHOWN_ROWS)} total={shownRows.length} />
            <FlowTable rows={shownRows.slice(0, SHOWN_ROWS)} selected={panel?.kind === "explain" ? picked : undefined} onPick={pickRow} />
          </section>
        )}
        {view === "policies" && <section class="view"><PoliciesView policies={state.policies} onPick={(p) => setPanel({ kind: "policy", key: policyKey(p) })} /></section>}
        {panel && (
          <aside data-testid="panel">
            <button class="close" title="close" onClick={() => setPanel(undefined)}>×</button>
            {panel.kind === "pod" && <PodPanel state={state} id={panel.id} onExplain={runExplain} />}
            {panel.kind === "node" && <NodePanel t={t} name={panel.name} />}
            {panel.kind === "policy" && <PolicyPanel state={state} pkey={panel.key} onPickRow={pickRow} onShow={(ids) => (setHighlight(ids), setView("topology"))} />}
            {panel.kind === "service" && (() => {
              const s = t.services.find((x) => `${x.namespace}/${x.name}` === panel.id);
              return s ? <><h2>Service {panel.id}</h2><dl class="kv"><dt>type</dt><dd>{s.type}</dd><dt>cluster IPs</dt><dd>{s.clusterIPs.join(", ")}</dd><dt>ports</dt><dd>{s.ports.join(", ")}</dd><dt>selector</dt><dd>{Object.entries(s.selector ?? {}).map(([k, v]) => <span class="tag">{k}={v}</span>)}</dd><dt>backends</dt><dd>{s.backends.join(", ") || "none"}</dd></dl></> : <p>Service is gone</p>;
            })()}
            {panel.kind === "explain" && (
              <div data-testid="explain">
                <h2>Explain {panel.title}</h2>
                {panel.error && <div class="outcome dropped">{panel.error}</div>}
                {!panel.ex && !panel.error && <p class="muted">{panel.probing ? "sending a traced probe…" : "computing the path…"}</p>}
                {panel.ex && <ExplainView ex={panel.ex} probing={panel.probing} onProbe={() => runExplain({ ...panel.req, probe: true }, panel.title)} />}
              </div>
            )}
          </aside>
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
