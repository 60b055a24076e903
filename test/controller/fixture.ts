// `mncni controller` as shipped (dist/mncni), run against the fake API server: its metrics
// endpoint and JSON log are the test's view of it; the server's request log is the other.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { requireBinary } from "../helpers/binary.ts";
import type { FakeApiServer, RecordedRequest } from "../helpers/kube-apiserver.ts";

let seq = 0;

/**
 * The manifests with the controller (`mncni manifests --controller`, as generated: deploy/mncni.yaml
 * leaves it out), whose RBAC the fake API server enforces for the controller's token.
 */
export function controllerManifests(): string {
  const p = Bun.spawnSync([requireBinary(), "manifests", "--controller", "--image", "localhost/mncni:test"], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`mncni manifests --controller failed: ${p.stderr.toString()}`);
  return p.stdout.toString();
}

function freePort(): number {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
}

export class ControllerProcess {
  readonly logFile: string;
  readonly port: number;
  private constructor(
    readonly proc: Subprocess,
    logFile: string,
    port: number,
    readonly identity: string,
  ) {
    this.logFile = logFile;
    this.port = port;
  }

  static start(api: FakeApiServer, args: string[], name = `c${seq++}`): ControllerProcess {
    const port = freePort();
    const logFile = join(api.dir, `${name}-${process.pid}.log`);
    const identity = `${name}-${process.pid}`;
    const proc = Bun.spawn(
      [requireBinary(), "controller", "--kubeconfig", api.writeKubeconfig(join(api.dir, "kubeconfig-controller"), { as: "mncni-controller" }), "--metrics-addr", `127.0.0.1:${port}`, "--log-file", logFile, "--identity", identity, ...args],
      { stdout: "ignore", stderr: "pipe" },
    );
    return new ControllerProcess(proc, logFile, port, identity);
  }

  static binary(): string {
    return requireBinary();
  }

  get pid(): number {
    return this.proc.pid;
  }

  logs(): { level: string; msg: string; [k: string]: unknown }[] {
    try {
      return readFileSync(this.logFile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    } catch {
      return [];
    }
  }

  async metrics(): Promise<string> {
    try {
      return await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
    } catch {
      return "";
    }
  }

  /** One sample's value (labels as written in the exposition, e.g. `{reason="overlap"}`), or NaN. */
  async metric(name: string, labels = ""): Promise<number> {
    const line = (await this.metrics()).split("\n").find((l) => l.startsWith(`${name}${labels} `));
    return line ? Number(line.split(" ").pop()) : NaN;
  }

  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<number> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return await this.proc.exited;
  }
}

/** podCIDRs of every Node patch the server accepted, in order: [node, cidr]. */
export function acceptedAssignments(api: FakeApiServer): [string, string][] {
  return api
    .requestsTo("PATCH", "/api/v1/nodes/")
    .filter((r: RecordedRequest) => r.status === 200 && r.body?.spec?.podCIDRs)
    .flatMap((r) => (r.body.spec.podCIDRs as string[]).map((c): [string, string] => [r.path.split("/")[4]!, c]));
}

/** A CIDR given to two different Nodes, across every patch the server ever accepted. */
export function doubleAssignments(api: FakeApiServer): string[] {
  const owner = new Map<string, string>();
  const dup: string[] = [];
  for (const [node, cidr] of acceptedAssignments(api)) {
    const o = owner.get(cidr);
    if (o !== undefined && o !== node) dup.push(`${cidr}: ${o} and ${node}`);
    owner.set(cidr, node);
  }
  return dup;
}

export function podCIDRs(api: FakeApiServer): Record<string, string[]> {
  return Object.fromEntries(api.objects("nodes").map((n) => [n.metadata!.name, n.spec?.podCIDRs ?? []]));
}
