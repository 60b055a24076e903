// `lab explain SRC svc/NS/NAME`: which backend the Service translation gives SRC's
// connection, and (explain's path, by the caller) how the packet gets there. The candidates
// are the endpoints the proxy may use for this client, as kube-proxy chooses them (ready ones,
// else serving terminating ones; with internalTrafficPolicy Local only the client node's own);
// the one chosen is read from a real connection to the Service's address, answered by the
// backend's echo server, which names itself (and the client address it saw: NAT or not).
import type { ProbeResult } from "./echo.ts";
import { listServices, type LabService } from "./service-list.ts";
import { netnsExecArgv, runAsync } from "./sh.ts";
import type { LabState } from "./state.ts";
import { ECHO_PORT } from "./topology.ts";
import { familyOf } from "../net/ip.ts";

export interface ServiceCandidate {
  address: string;
  port: number;
  pod?: string;
  node?: string;
  ready: boolean;
  terminating: boolean;
}

export interface ServiceTranslation {
  /** "namespace/name" */
  service: string;
  type: string;
  /** The address and port the client connects to. */
  frontend: { ip: string; port: number; protocol: string };
  /** The endpoints the proxy may pick for this client (empty: the Service rejects). */
  candidates: ServiceCandidate[];
  /** What a connection really got (an echo port only): the backend and the client address it saw. */
  chosen?: { address: string; port: number; pod?: string; node?: string; seen: string; nat: boolean };
  /** Why nothing was chosen (no endpoint, not an echo port, the connection failed). */
  note?: string;
  sessionAffinity: string;
  internalTrafficPolicy?: string;
}

/** The Service named `svc/NS/NAME` (or NS/NAME). */
export async function serviceRef(s: LabState, what: string): Promise<LabService | undefined> {
  const ref = what.replace(/^svc\//, "");
  const [ns, name] = ref.includes("/") ? ref.split("/") : ["default", ref];
  return (await listServices(s)).find((v) => v.namespace === ns && v.name === name);
}

/** The translation a client (pod namespace, its address of the family wanted) gets. */
export async function translateService(s: LabState, svc: LabService, client: { netns: string; ip: string; node: string }, port?: number): Promise<ServiceTranslation> {
  const family = familyOf(client.ip || "0.0.0.0");
  const ip = svc.clusterIPs.find((x) => familyOf(x) === family);
  const sp = svc.ports.find((p) => port === undefined || p.port === port);
  const id = `${svc.namespace}/${svc.name}`;
  if (!ip || !sp) {
    throw new Error(`cannot explain Service ${id}: ${!ip ? `no IPv${family} cluster IP (${svc.headless ? "headless: DNS only, nothing translates it" : svc.clusterIPs.join(", ") || "none"})` : `no port ${port} (ports: ${svc.ports.map((p) => p.port).join(", ")})`}`);
  }
  const eps = svc.endpoints.filter((e) => familyOf(e.address) === family && e.ports[sp.name] !== undefined);
  const local = svc.internalTrafficPolicy === "Local";
  const usable = (list: typeof eps) => {
    const ready = list.filter((e) => e.ready);
    return ready.length ? ready : list.filter((e) => e.serving && e.terminating);
  };
  const candidates = usable(local ? eps.filter((e) => e.node === client.node) : eps).map((e) => ({
    address: e.address, port: e.ports[sp.name]!, ...(e.pod ? { pod: e.pod } : {}), ...(e.node ? { node: e.node } : {}), ready: e.ready, terminating: e.terminating,
  }));
  const out: ServiceTranslation = {
    service: id, type: svc.type, frontend: { ip, port: sp.port, protocol: sp.protocol }, candidates, sessionAffinity: svc.sessionAffinity,
    ...(svc.internalTrafficPolicy ? { internalTrafficPolicy: svc.internalTrafficPolicy } : {}),
  };
  if (candidates.length === 0) return { ...out, note: "no endpoint to use: the proxy rejects the connection" };
  if (sp.protocol !== "TCP" || !candidates.every((c) => c.port === ECHO_PORT)) return { ...out, note: `not probed: only the lab's echo port (${ECHO_PORT}/TCP) names its backend` };
  const target = ip.includes(":") ? `[${ip}]:${sp.port}` : `${ip}:${sp.port}`;
  const r = await runAsync(netnsExecArgv(client.netns, [...s.options.selfCmd, "lab", "_probe", "--json", "--timeout", "2000", target]), { timeoutMs: 15_000 });
  let a: ProbeResult | undefined;
  try {
    a = (JSON.parse(r.stdout) as ProbeResult[])[0];
  } catch {
    a = undefined;
  }
  if (!a?.ok || !a.by) return { ...out, note: `a connection to ${target} failed: ${a?.error ?? (r.stderr.trim() || "no result")}` };
  const c = candidates.find((x) => x.address === a.by);
  return {
    ...out,
    chosen: { address: a.by, port: c?.port ?? ECHO_PORT, ...(c?.pod ? { pod: c.pod } : {}), ...(c?.node ? { node: c.node } : {}), seen: a.seen ?? "", nat: a.seen !== client.ip },
    ...(c ? {} : { note: `answered by ${a.by}, which is not one of the endpoints the proxy may use` }),
  };
}
