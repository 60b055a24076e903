// containerd (Debian's 1.6) as a node's runtime, for tests: one containerd process per node
// namespace, started with `nsenter --net` (not `ip netns exec`, which remounts /sys: runc
// would find no cgroups, and the pods' netns mounts would stay private to containerd), with
// its own root, state, socket and CNI directories; a pause image built FROM scratch with
// podman (vfs storage: no registry to pull from) and imported with ctr; and a CRI client
// (@grpc/grpc-js with the runtime.v1 messages of cri-runtime-v1.proto), which calls
// RunPodSandbox / PodSandboxStatus / StopPodSandbox / RemovePodSandbox as kubelet does.
// Every process here is ours and is stopped by its PID (the shims found by their -address).
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { run } from "../helpers/netns.ts";

export const PAUSE_IMAGE = "localhost/mncni-pause:test";

/** A static pause: sleeps until a signal ends it (as PID 1 it gets none it does not handle). */
const PAUSE_C = `#include <signal.h>
#include <unistd.h>
static void done(int s) { (void)s; _exit(0); }
int main(void) { signal(SIGTERM, done); signal(SIGINT, done); for (;;) pause(); }
`;

/** Builds the pause image with podman (vfs storage under dir) and saves it as a docker archive; returns its path. */
export function buildPauseImage(dir: string): string {
  mkdirSync(join(dir, "ctx"), { recursive: true });
  writeFileSync(join(dir, "pause.c"), PAUSE_C);
  run(["cc", "-static", "-O2", "-o", join(dir, "ctx/pause"), join(dir, "pause.c")]);
  writeFileSync(join(dir, "ctx/Containerfile"), 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n');
  const podman = ["podman", "--root", join(dir, "storage"), "--runroot", join(dir, "runroot"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"];
  run([...podman, "build", "--network", "none", "-q", "-t", PAUSE_IMAGE, join(dir, "ctx")]);
  const tar = join(dir, "pause.tar");
  run([...podman, "save", "--format", "docker-archive", "-o", tar, PAUSE_IMAGE]);
  run(["rm", "-rf", join(dir, "storage"), join(dir, "runroot")]);
  return tar;
}

export interface RuntimeHandler {
  name: string;
  /** The CNI config directory containerd reads for sandboxes of this handler. */
  cniConfDir: string;
}

export class Containerd {
  readonly socket: string;
  private proc?: ReturnType<typeof Bun.spawn>;
  readonly log: string;
  /** containerd's --log-level (debug: the CRI plugin logs each sandbox's steps with times). */
  logLevel = "info";

  constructor(
    readonly dir: string,
    readonly node: string,
    readonly cniBinDir: string,
    readonly cniConfDir: string,
    readonly handlers: RuntimeHandler[] = [],
  ) {
    this.socket = join(dir, "containerd.sock");
    this.log = join(dir, "containerd.log");
  }

  private config(): string {
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    const runc = (name: string, confDir?: string) => [
      `[${cri}.containerd.runtimes.${name}]`,
      `  runtime_type = "io.containerd.runc.v2"`,
      ...(confDir ? [`  cni_conf_dir = "${confDir}"`, `  cni_max_conf_num = 1`] : []),
      `[${cri}.containerd.runtimes.${name}.options]`,
      `  BinaryName = "/usr/sbin/runc"`,
      `  Root = "${this.dir}/runc"`,
    ];
    return [
      "version = 2",
      `root = "${this.dir}/root"`,
      `state = "${this.dir}/state"`,
      `disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]`,
      "[grpc]",
      `  address = "${this.socket}"`,
      "[ttrpc]",
      `  address = "${this.socket}.ttrpc"`,
      `[plugins."io.containerd.internal.v1.opt"]`,
      `  path = "${this.dir}/opt"`,
      `[${cri}]`,
      `  sandbox_image = "${PAUSE_IMAGE}"`,
      // No CAP_SYS_RESOURCE here: runc could not lower the pause's oom_score_adj.
      "  restrict_oom_score_adj = true",
      "  disable_apparmor = true",
      `  stream_server_address = "127.0.0.1"`,
      `[${cri}.cni]`,
      `  bin_dir = "${this.cniBinDir}"`,
      `  conf_dir = "${this.cniConfDir}"`,
      "  max_conf_num = 1",
      `[${cri}.containerd]`,
      `  snapshotter = "native"`,
      `  default_runtime_name = "runc"`,
      ...runc("runc"),
      ...this.handlers.flatMap((h) => runc(h.name, h.cniConfDir)),
      "",
    ].join("\n");
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const cfg = join(this.dir, "config.toml");
    writeFileSync(cfg, this.config());
    const out = openSync(this.log, "a");
    this.proc = Bun.spawn(["nsenter", `--net=/run/netns/${this.node}`, "containerd", "--config", cfg, "--log-level", this.logLevel], { stdout: out, stderr: out, stdin: "ignore" });
    for (let i = 0; i < 500; i++) {
      if (existsSync(this.socket) && run(["ctr", "--address", this.socket, "version"], { allowFail: true }).code === 0) return;
      if (this.proc.exitCode !== null) break;
      await Bun.sleep(20);
    }
    throw new Error(`containerd did not come up on ${this.socket}: ${readFileSync(this.log, "utf8").slice(-2000)}`);
  }

  /** Stops the containerd process alone (its shims, and so the sandboxes, keep running) and starts it again. */
  async restart(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null) {
      p.kill("SIGTERM");
      await p.exited;
    }
    await this.start();
  }

  importImage(tar: string): void {
    run(["ctr", "--address", this.socket, "-n", "k8s.io", "images", "import", "--snapshotter", "native", tar]);
  }

  /** Stops containerd and every shim it started (by PID), then unmounts what they left under dir. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p && p.exitCode === null) {
      p.kill("SIGTERM");
      const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
      await p.exited;
      clearTimeout(t);
    }
    for (const pid of this.shims()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    const mounts = readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(this.dir + "/"));
    for (const m of mounts.reverse()) run(["umount", "-l", m], { allowFail: true });
  }

  /** PIDs of the shims serving this containerd (their command line names its socket). */
  shims(): number[] {
    const out: number[] = [];
    for (const e of readdirSync("/proc")) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const cmd = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
        if (cmd[0]?.endsWith("containerd-shim-runc-v2") && cmd.includes(this.socket)) out.push(Number(e));
      } catch {
        // exited meanwhile
      }
    }
    return out;
  }
}

// ---- CRI client ----

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  log_directory?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] };
  port_mappings?: { protocol?: "TCP" | "UDP" | "SCTP"; container_port: number; host_port: number; host_ip?: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface PodSandboxStatus {
  id: string;
  state: "SANDBOX_READY" | "SANDBOX_NOTREADY";
  network?: { ip: string; additional_ips: { ip: string }[] };
}

type Call<Req, Res> = (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;

/** kubelet's side of the CRI runtime service, over containerd's socket. */
export class CriClient {
  private readonly client: grpc.Client & Record<string, Call<unknown, unknown>>;

  constructor(socket: string) {
    const def = protoLoader.loadSync(resolve(import.meta.dir, "cri-runtime-v1.proto"), { keepCase: true, enums: String, longs: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
    this.client = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure()) as never;
  }

  private call<Res>(method: string, req: object, timeoutMs = 60_000): Promise<Res> {
    return new Promise((ok, fail) => {
      const deadline = new Date(Date.now() + timeoutMs);
      (this.client[method] as unknown as (r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void).call(
        this.client, req, new grpc.Metadata(), { deadline }, (e, r) => (e ? fail(e) : ok(r)),
      );
    });
  }

  version(): Promise<{ runtime_name: string; runtime_version: string; runtime_api_version: string }> {
    return this.call("Version", { version: "v1" });
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ""): Promise<string> {
    const r = await this.call<{ pod_sandbox_id: string }>("RunPodSandbox", { config, runtime_handler: runtimeHandler });
    return r.pod_sandbox_id;
  }

  /** The status, and (verbose) the runtime's info: containerd's names the sandbox's netns path. */
  async podSandboxStatus(id: string): Promise<{ status: PodSandboxStatus; netns?: string }> {
    const r = await this.call<{ status: PodSandboxStatus; info: Record<string, string> }>("PodSandboxStatus", { pod_sandbox_id: id, verbose: true });
    const info = r.info?.info ? JSON.parse(r.info.info) : undefined;
    const ns = info?.runtimeSpec?.linux?.namespaces?.find((n: { type: string; path?: string }) => n.type === "network")?.path;
    return { status: r.status, netns: ns };
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call("StopPodSandbox", { pod_sandbox_id: id });
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call("RemovePodSandbox", { pod_sandbox_id: id });
  }

  close(): void {
    this.client.close();
  }
}
