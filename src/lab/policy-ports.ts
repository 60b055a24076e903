// The upstream NetworkPolicy model's servers and prober: every pod serves ports 80 and 81 over
// TCP, UDP and SCTP, and probes every other pod on each. Bun has no SCTP sockets, so both run
// as a small Python 3 program (the standard library's socket module has IPPROTO_SCTP) inside
// the pod's namespace; it is carried in the executable as text. SCTP needs the kernel's sctp
// module: without it the server serves TCP and UDP only, and the prober reports SCTP probes as
// "unavailable" (not as denied).
import { join } from "node:path";
import { PROTOCOLS, type Protocol } from "../cluster/index.ts";
import { netnsExecArgv, runAsync, spawnDetached, stopProcess } from "./sh.ts";
import type { LabState, PodState } from "./state.ts";
import { labDir } from "./topology.ts";

export const POLICY_PORTS = [80, 81] as const;
/** What the prober probes: every protocol a policy can name. */
export const PROBE_PROTOCOLS: readonly Protocol[] = PROTOCOLS;

const SCRIPT = String.raw`
import json, socket, sys, threading
from concurrent.futures import ThreadPoolExecutor
SCTP = getattr(socket, "IPPROTO_SCTP", 132)
def fam(h): return socket.AF_INET6 if ":" in h else socket.AF_INET
def sctp_ok():
    try: socket.socket(socket.AF_INET, socket.SOCK_STREAM, SCTP).close(); return True
    except OSError: return False
def stream(kind, port, proto):
    s = socket.socket(kind, socket.SOCK_STREAM, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if kind == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::" if kind == socket.AF_INET6 else "0.0.0.0", port)); s.listen(128)
    while True:
        c, _ = s.accept()
        try: c.sendall(b"ok\n")
        except OSError: pass
        finally: c.close()
def dgram(kind, port):
    s = socket.socket(kind, socket.SOCK_DGRAM)
    if kind == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::" if kind == socket.AF_INET6 else "0.0.0.0", port))
    while True:
        _, a = s.recvfrom(64)
        s.sendto(b"ok\n", a)
def serve(ports):
    kind = socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET
    try: socket.socket(kind, socket.SOCK_DGRAM).close()
    except OSError: kind = socket.AF_INET
    sctp = sctp_ok()
    for p in ports:
        threading.Thread(target=stream, args=(kind, p, 0), daemon=True).start()
        threading.Thread(target=dgram, args=(kind, p), daemon=True).start()
        if sctp: threading.Thread(target=stream, args=(kind, p, SCTP), daemon=True).start()
    print("serving", ports, "sctp" if sctp else "no-sctp", flush=True)
    threading.Event().wait()
def probe_one(t, timeout, sctp):
    proto, host, port = t.split(",")
    port = int(port)
    try:
        if proto == "UDP":
            s = socket.socket(fam(host), socket.SOCK_DGRAM); s.settimeout(timeout / 3)
            for _ in range(3):
                s.sendto(b"?", (host, port))
                try:
                    if s.recv(8).startswith(b"ok"): return "allowed"
                except socket.timeout: pass
            return "denied"
        if proto == "SCTP" and not sctp: return "unavailable"
        s = socket.socket(fam(host), socket.SOCK_STREAM, SCTP if proto == "SCTP" else 0); s.settimeout(timeout)
        s.connect((host, port))
        return "allowed" if s.recv(8).startswith(b"ok") else "denied"
    except OSError:
        return "denied"
def probe(timeout, targets):
    sctp = sctp_ok()
    with ThreadPoolExecutor(max_workers=64) as ex:
        print(json.dumps(list(ex.map(lambda t: probe_one(t, timeout, sctp), targets))))
if sys.argv[1] == "serve": serve([int(p) for p in sys.argv[3:]])
else: probe(float(sys.argv[3]), sys.argv[4:])
`;

/** Marks the lab's policy servers in their command lines (for stopProcess and `lab down`). */
const serverMarker = (lab: string) => `mncni-lab-policy-ports:${lab}`;

export function startPolicyServer(s: LabState, pod: PodState): number {
  const argv = ["python3", "-c", SCRIPT, "serve", serverMarker(s.name), ...POLICY_PORTS.map(String)];
  return spawnDetached(netnsExecArgv(pod.ns, argv), join(labDir(s.name), "policy-ports.log"));
}

export async function stopPolicyServer(s: LabState, pod: PodState): Promise<void> {
  if (pod.serverPid) await stopProcess(pod.serverPid, serverMarker(s.name));
  pod.serverPid = undefined;
}

export interface PortProbe {
  host: string;
  port: number;
  protocol: Protocol;
}

export type ProbeOutcome = "allowed" | "denied" | "unavailable";

/** Probes the targets from inside a pod, all at once; a probe that gets no answer within timeoutMs is denied. */
export async function probeFrom(s: LabState, pod: PodState, targets: PortProbe[], timeoutMs: number): Promise<ProbeOutcome[]> {
  if (targets.length === 0) return [];
  const argv = ["python3", "-c", SCRIPT, "probe", serverMarker(s.name), String(timeoutMs / 1000), ...targets.map((t) => `${t.protocol},${t.host},${t.port}`)];
  const r = await runAsync(netnsExecArgv(pod.ns, argv), { timeoutMs: timeoutMs * 4 + 10_000 });
  if (r.code !== 0) throw new Error(`cannot probe from pod "${pod.node}/${pod.name}": ${r.stderr.trim() || `exit ${r.code}`}`);
  const out = JSON.parse(r.stdout) as ProbeOutcome[];
  if (out.length !== targets.length) throw new Error(`cannot probe from pod "${pod.node}/${pod.name}": ${out.length} answers for ${targets.length} targets`);
  return out;
}
