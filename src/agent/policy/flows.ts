// The verdict log: packets the policy table logs (NFLOG group NFLOG_GROUP, prefix
// `mncni D|A <id>`) become JSON lines naming the deciding policy and, when the cluster state
// knows them, the pods at both ends. Bounded twice: the nft rules' `limit`, and here at most
// MAX_LINES_PER_SECOND lines (the rest are counted, and one line says how many were
// suppressed); the file is rotated to FILE.1 past MAX_BYTES. /metrics counts every verdict.
import { appendFileSync, mkdirSync, renameSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { ClusterState, Decider } from "../../cluster/types.ts";
import type { LoggedPacket } from "../../kernel/nflog.ts";

const MAX_LINES_PER_SECOND = 100;
const MAX_BYTES = 10 * 1024 * 1024;
/** Deciders of earlier compiles are kept this many (a packet logged just before a change). */
const KEEP_DECIDERS = 10_000;

/** One line of the verdict log (`mncni flows --json` prints these). */
export interface FlowRecord {
  time: string;
  verdict: "deny" | "accept";
  protocol: string;
  src: { ip: string; port?: number; namespace?: string; pod?: string };
  dst: { ip: string; port?: number; namespace?: string; pod?: string };
  policy?: Decider;
  /** Only on the line that reports lines the cap left out. */
  suppressed?: number;
}

export interface VerdictCounts {
  /** `kind|namespace|name|verdict` -> count. */
  readonly counts: Map<string, number>;
}

export class FlowLog implements VerdictCounts {
  readonly counts = new Map<string, number>();
  private readonly deciders = new Map<string, Decider>();
  private podsByIP = new Map<string, { namespace: string; name: string }>();
  private podsOf?: ClusterState["pods"];
  private second = 0;
  private inSecond = 0;
  private suppressed = 0;

  constructor(private readonly file: string) {}

  /** The latest compile's deciders and the state the pods are named from. */
  update(deciders: ReadonlyMap<string, Decider>, state: ClusterState): void {
    for (const [id, d] of deciders) {
      this.deciders.delete(id);
      this.deciders.set(id, d);
    }
    while (this.deciders.size > KEEP_DECIDERS) this.deciders.delete(this.deciders.keys().next().value!);
    if (state.pods !== this.podsOf) {
      this.podsOf = state.pods;
      this.podsByIP = new Map();
      for (const p of state.pods.values()) if (!p.hostNetwork) for (const ip of p.podIPs) this.podsByIP.set(ip, { namespace: p.namespace, name: p.name });
    }
  }

  /** Records the packets: counts all, writes what the cap allows. Returns the lines written. */
  record(packets: LoggedPacket[], now = Date.now()): FlowRecord[] {
    const lines: FlowRecord[] = [];
    for (const p of packets) {
      const m = /^mncni ([DA]) (\S+)/.exec(p.prefix);
      if (!m) continue;
      const policy = this.deciders.get(m[2]!);
      const verdict = m[1] === "D" ? "deny" : "accept";
      const key = `${policy?.kind ?? "unknown"}|${policy?.namespace ?? ""}|${policy?.name ?? ""}|${verdict}`;
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
      const sec = Math.floor(now / 1000);
      if (sec !== this.second) {
        if (this.suppressed) lines.push(this.suppressedLine(now));
        this.second = sec;
        this.inSecond = 0;
      }
      if (this.inSecond >= MAX_LINES_PER_SECOND) {
        this.suppressed++;
        continue;
      }
      this.inSecond++;
      const end = (ip: string, port?: number) => ({ ip, ...(port !== undefined ? { port } : {}), ...this.pod(ip) });
      lines.push({
        time: new Date(p.time).toISOString(),
        verdict,
        protocol: p.protocol,
        src: end(p.src, p.srcPort),
        dst: end(p.dst, p.dstPort),
        ...(policy ? { policy } : {}),
      });
    }
    if (lines.length) this.write(lines);
    return lines;
  }

  private suppressedLine(now: number): FlowRecord {
    const r: FlowRecord = { time: new Date(now).toISOString(), verdict: "deny", protocol: "", src: { ip: "" }, dst: { ip: "" }, suppressed: this.suppressed };
    this.suppressed = 0;
    return r;
  }

  private pod(ip: string): { namespace?: string; pod?: string } {
    const p = this.podsByIP.get(ip);
    return p ? { namespace: p.namespace, pod: p.name } : {};
  }

  private write(lines: FlowRecord[]): void {
    mkdirSync(dirname(this.file), { recursive: true });
    try {
      if (statSync(this.file).size > MAX_BYTES) renameSync(this.file, `${this.file}.1`);
    } catch {
      // Not there yet: the append creates it.
    }
    appendFileSync(this.file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  }
}
