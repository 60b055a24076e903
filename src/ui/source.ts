// Where the page's server gets what it shows: a lab (every node, read directly:
// lab-source.ts) or the node it runs beside (node-source.ts). The server (server.ts) knows
// only this interface.
import type { ShownFlowRecord } from "../obs/flows.ts";
import type { Explanation } from "../obs/explain.ts";
import type { UiExplainRequest, UiSnapshot } from "./model.ts";

/**
 * How often a verdict log is looked at: one stat per log and period, so that a new verdict is
 * in the page well within a second (the agent itself writes what it read every 200 ms).
 */
export const FOLLOW_MS = 100;

export type UiFlowRecord = ShownFlowRecord & { node: string };

export interface UiSource {
  /** Topology and policies as they are now (read anew on every call). */
  state(): Promise<UiSnapshot>;
  /** Calls onRecords with the verdict logs' records so far, then with what is appended; returns a stop function. */
  followFlows(onRecords: (records: UiFlowRecord[]) => void): () => void;
  /** explain's typed result for the request (an error naming what could not be found is thrown). */
  explain(req: UiExplainRequest): Promise<Explanation>;
  close?(): void;
}
