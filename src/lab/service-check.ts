// `lab check`'s Service part: real TCP through every Service whose endpoints serve the lab's
// echo port, from where Kubernetes says it must work, with the echo server naming the backend
// that answered (and the client address it saw):
//   svc-cluster-ip   the first pod of every node -> each cluster IP: a ready endpoint answers,
//                    the client's address kept (internalTrafficPolicy Local: only from nodes
//                    with an endpoint; none: no answer); a Service without ready endpoints is
//                    refused at once (as kube-proxy rejects), not left to time out
//   svc-node-port    every node -> its own address:nodePort
//   svc-ext-node-port, svc-lb
//                    the external host -> every node's nodePort and every LoadBalancer address:
//                    masqueraded (not seen as the external host), or with
//                    externalTrafficPolicy Local seen as the external host and answered only
//                    where the node has an endpoint
//   svc-hairpin      a backend pod -> its own Service, until it reaches itself
//   svc-affinity     sessionAffinity ClientIP: one client's connections all reach one backend,
//                    through each cluster IP (every family)
import { ECHO_PORT, EXTERNAL, EXTERNAL6, ns } from "./topology.ts";
import type { ProbeResult } from "./echo.ts";
import { listServices, type LabService } from "./service-list.ts";
import { netnsExecArgv, pool, runAsync } from "./sh.ts";
import { allPods, families, nodeAddressOf, type LabState } from "./state.ts";
import { familyOf } from "../net/ip.ts";
import type { ServiceCheckKind, ServiceCheckResult } from "./check-result.ts";

export { SERVICE_CHECK_KINDS, type ServiceCheckKind, type ServiceCheckResult } from "./check-result.ts";



interface Expect {
  kind: ServiceCheckKind;
  to: string;
  target: string;
  family: 4 | 6;
  /** Whether it must answer; false: must not (refused when `refused`). */
  answers: boolean;
  refused?: boolean;
  /** The backends allowed to answer. */
  backends?: string[];
  /** The client address the backend must see, or (`not`) must not see. */
  seen?: string;
  notSeen?: string;
  /** The client's own address: when it is the backend that answered (hairpin), it is masqueraded and any source will do. */
  self?: string;
}

interface Source {
  label: string;
  netns: string;
  probes: Expect[];
}

const hostPort = (ip: string, port: number) => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);
const extAddress = (family: 4 | 6) => (family === 4 ? EXTERNAL.host : EXTERNAL6.host);

/** The Service's ports that reach the echo server on its ready endpoints (TCP, target port ECHO_PORT). */
function echoPorts(svc: LabService): LabService["ports"] {
  return svc.ports.filter((p) => p.protocol === "TCP" && (p.targetPort === ECHO_PORT || svc.endpoints.some((e) => e.ports[p.name] === ECHO_PORT)));
}

async function probeIn(s: LabState, netns: string, targets: string[], timeoutMs: number): Promise<ProbeResult[]> {
  if (targets.length === 0) return [];
  const argv = [...s.options.selfCmd, "lab", "_probe", "--json", "--timeout", String(timeoutMs), ...targets];
  const r = await runAsync(netnsExecArgv(netns, argv), { timeoutMs: timeoutMs * 3 + 10_000 });
  try {
    return JSON.parse(r.stdout) as ProbeResult[];
  } catch {
    const error = `probe failed: ${(r.stderr || r.stdout).trim().slice(0, 200) || `exit ${r.code}`}`;
    return targets.map((target) => ({ target, ok: false, error, ms: 0 }));
  }
}

function judge(from: string, e: Expect, a: ProbeResult): ServiceCheckResult {
  const base = {
    kind: e.kind, from, to: e.to, target: e.target, family: e.family, reachable: a.ok, ms: a.ms,
    ...(a.seen ? { seen: a.seen } : {}), ...(a.by ? { by: a.by } : {}), ...(a.errno ? { errno: a.errno } : {}), ...(!a.ok && a.error ? { failure: a.error } : {}),
  };
  let error: string | undefined;
  if (!e.answers) {
    if (a.ok) error = `answered (by ${a.by}), but ${e.refused ? "a Service without ready endpoints must refuse" : "no endpoint may answer from here"}`;
    else if (e.refused && a.errno !== "ECONNREFUSED") error = `not refused at once (${a.error}): a Service without ready endpoints is rejected`;
  } else if (!a.ok) error = a.error ?? "no answer";
  else if (e.backends && !e.backends.includes(a.by ?? "")) error = `answered by ${a.by}, not one of the endpoints it may use (${e.backends.join(", ")})`;
  else if (e.seen !== undefined && a.seen !== e.seen && !(e.self && a.by === e.self)) error = `seen as ${a.seen}, expected ${e.seen} (source address kept)`;
  else if (e.notSeen !== undefined && a.seen === e.notSeen) error = `seen as ${a.seen}: not masqueraded`;
  return { ...base, ok: error === undefined, ...(error ? { error } : {}) };
}

/** Plain probes: what each source must (not) reach through the Services. */
function plainSources(s: LabState, svcs: LabService[]): Source[] {
  const out: Source[] = [];
  const ext: Source = { label: "ext", netns: ns.external(s.name), probes: [] };
  for (const node of s.nodes) {
    const first = node.pods.find((p) => p.ips.length > 0);
    const podSrc: Source | undefined = first ? { label: `${node.name}/${first.name}`, netns: first.ns, probes: [] } : undefined;
    const nodeSrc: Source = { label: node.name, netns: node.ns, probes: [] };
    for (const svc of svcs) {
      const to = `svc/${svc.namespace}/${svc.name}`;
      const ready = svc.endpoints.filter((e) => e.ready);
      const none = ready.length === 0;
      const mine = ready.filter((e) => e.node === node.name);
      for (const p of echoPorts(svc)) {
        for (const ip of svc.clusterIPs) {
          const family = familyOf(ip);
          if (!podSrc) continue;
          const local = svc.internalTrafficPolicy === "Local";
          const use = (local ? mine : ready).filter((e) => familyOf(e.address) === family).map((e) => e.address);
          const self = first!.ips.find((x) => familyOf(x) === family);
          podSrc.probes.push({
            kind: "svc-cluster-ip", to, target: hostPort(ip, p.port), family,
            answers: use.length > 0, ...(none ? { refused: true } : {}), backends: use, seen: self, self,
          });
        }
        if (!p.nodePort || none) continue;
        for (const family of families(s)) {
          const addr = nodeAddressOf(node, family);
          if (!addr) continue;
          const all = ready.filter((e) => familyOf(e.address) === family).map((e) => e.address);
          nodeSrc.probes.push({ kind: "svc-node-port", to, target: hostPort(addr, p.nodePort), family, answers: all.length > 0, backends: all });
          const local = svc.externalTrafficPolicy === "Local";
          const use = (local ? mine : ready).filter((e) => familyOf(e.address) === family).map((e) => e.address);
          ext.probes.push({
            kind: "svc-ext-node-port", to, target: hostPort(addr, p.nodePort), family, answers: use.length > 0, backends: use,
            ...(local ? { seen: extAddress(family) } : { notSeen: extAddress(family) }),
          });
        }
      }
    }
    if (podSrc?.probes.length) out.push(podSrc);
    if (nodeSrc.probes.length) out.push(nodeSrc);
  }
  for (const svc of svcs) {
    const ready = svc.endpoints.filter((e) => e.ready);
    const local = svc.externalTrafficPolicy === "Local";
    for (const p of echoPorts(svc)) {
      for (const ip of ready.length ? svc.loadBalancerIPs : []) {
        const family = familyOf(ip);
        const use = ready.filter((e) => familyOf(e.address) === family).map((e) => e.address);
        ext.probes.push({
          kind: "svc-lb", to: `svc/${svc.namespace}/${svc.name}`, target: hostPort(ip, p.port), family, answers: use.length > 0, backends: use,
          ...(local ? { seen: extAddress(family) } : { notSeen: extAddress(family) }),
        });
      }
    }
  }
  if (ext.probes.length) out.push(ext);
  return out;
}

/** A backend pod connects to its own Service until it reaches itself (several backends: the choice is random). */
async function hairpin(s: LabState, svc: LabService, timeoutMs: number): Promise<ServiceCheckResult | undefined> {
  const p = echoPorts(svc)[0];
  const ip = svc.clusterIPs.find((x) => familyOf(x) === 4) ?? svc.clusterIPs[0];
  const ready = svc.endpoints.filter((e) => e.ready && ip && familyOf(e.address) === familyOf(ip));
  if (!p || !ip || svc.sessionAffinity === "ClientIP" || svc.internalTrafficPolicy === "Local") return undefined;
  const pod = allPods(s).find((x) => ready.some((e) => e.address === x.ips.find((a) => familyOf(a) === familyOf(ip))));
  if (!pod) return undefined;
  const self = pod.ips.find((a) => familyOf(a) === familyOf(ip))!;
  const tries = Math.min(8 * ready.length, 96);
  const target = hostPort(ip, p.port);
  const answers = await probeIn(s, pod.ns, Array.from({ length: tries }, () => target), timeoutMs);
  const hit = answers.find((a) => a.ok && a.by === self);
  const from = `${pod.node}/${pod.name}`;
  const base = { kind: "svc-hairpin" as const, from, to: `svc/${svc.namespace}/${svc.name}`, target, family: familyOf(ip), ms: Math.max(0, ...answers.map((a) => a.ms)) };
  if (hit) return { ...base, ok: true, reachable: true, ...(hit.seen ? { seen: hit.seen } : {}), by: self };
  const failed = answers.find((a) => !a.ok);
  return { ...base, ok: false, reachable: answers.some((a) => a.ok), error: failed ? `${failed.error}` : `${tries} connections, none reached the pod itself (answered by ${[...new Set(answers.map((a) => a.by))].join(", ")})` };
}

/** sessionAffinity ClientIP, per cluster IP (each family): after a first connection, eight more from the same client reach the same backend. */
async function affinity(s: LabState, svc: LabService, timeoutMs: number): Promise<ServiceCheckResult[]> {
  const p = echoPorts(svc)[0];
  if (svc.sessionAffinity !== "ClientIP" || !p || !svc.endpoints.some((e) => e.ready)) return [];
  const out: ServiceCheckResult[] = [];
  for (const ip of svc.clusterIPs) {
    const client = s.nodes.flatMap((n) => n.pods).find((x) => x.ips.some((a) => familyOf(a) === familyOf(ip)));
    if (!client || !svc.endpoints.some((e) => e.ready && familyOf(e.address) === familyOf(ip))) continue;
    const target = hostPort(ip, p.port);
    const first = (await probeIn(s, client.ns, [target], timeoutMs))[0]!;
    const rest = await probeIn(s, client.ns, Array.from({ length: 8 }, () => target), timeoutMs);
    const by = [...new Set([first, ...rest].map((a) => (a.ok ? a.by : `(${a.error})`)))];
    const ok = first.ok && rest.every((a) => a.ok) && by.length === 1;
    out.push({
      kind: "svc-affinity", from: `${client.node}/${client.name}`, to: `svc/${svc.namespace}/${svc.name}`, target, family: familyOf(ip), ok, reachable: first.ok,
      ...(first.by ? { by: first.by } : {}), ...(first.seen ? { seen: first.seen } : {}), ms: first.ms,
      ...(ok ? {} : { error: `9 connections reached ${by.join(", ")}: not one backend` }),
    });
  }
  return out;
}

/** Every Service probe of the lab (none when it has no Service with an echo port). */
export async function checkServices(s: LabState, timeoutMs: number): Promise<ServiceCheckResult[]> {
  const svcs = (await listServices(s)).filter((v) => !v.headless && v.clusterIPs.length > 0 && echoPorts(v).length > 0);
  if (svcs.length === 0) return [];
  const plain = (await pool(plainSources(s, svcs), 4, async (src) => {
    const answers = await probeIn(s, src.netns, src.probes.map((e) => e.target), timeoutMs);
    return src.probes.map((e, i) => judge(src.label, e, answers[i] ?? { target: e.target, ok: false, error: "no result", ms: 0 }));
  })).flat();
  const extra = (await Promise.all(svcs.flatMap((v) => [hairpin(s, v, timeoutMs), affinity(s, v, timeoutMs)]))).flat();
  return [...plain, ...extra.filter((r): r is ServiceCheckResult => r !== undefined)];
}
