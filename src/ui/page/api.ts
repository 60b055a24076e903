// The page's side of the server's API: the token (when the server has one) carried from the
// page's address on every request, the state, explain, and the event stream.
import type { UiEvent, UiExplainAnswer, UiExplainRequest, UiFlowRow, UiSnapshot } from "../model.ts";

const token = new URLSearchParams(location.search).get("token");
const withToken = (path: string) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);

async function get<T>(path: string): Promise<T> {
  const r = await fetch(withToken(path));
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

export const fetchState = () => get<UiSnapshot>("/api/state");
export const fetchFlows = () => get<UiFlowRow[]>("/api/flows");

export async function explain(req: UiExplainRequest): Promise<UiExplainAnswer> {
  const r = await fetch(withToken("/api/explain"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(req) });
  return (await r.json()) as UiExplainAnswer;
}

/**
 * Calls onEvent for every event; onLive with whether the stream is connected. The browser
 * reconnects by itself; onReconnect then (what changed meanwhile was not sent: read it again).
 */
export function subscribe(onEvent: (e: UiEvent) => void, onLive: (live: boolean) => void, onReconnect: () => void): () => void {
  const es = new EventSource(withToken("/api/events"));
  let opened = false;
  es.onopen = () => {
    onLive(true);
    if (opened) onReconnect();
    opened = true;
  };
  es.onerror = () => onLive(false);
  es.onmessage = (m) => onEvent(JSON.parse(m.data as string) as UiEvent);
  return () => es.close();
}
