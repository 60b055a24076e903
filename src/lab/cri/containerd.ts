// containerd (Debian's 1.6) as a node's runtime: one containerd per node namespace, started
// with `nsenter --net` (not `ip netns exec`, which remounts /sys: runc would find no cgroups,
// and the pods' netns mounts would stay private to containerd), with its own root, state,
// socket and CNI directories; a pause image built FROM scratch with podman (vfs storage: there
// is no registry to pull from) and imported with ctr. Every process here is started detached
// and ended by its PID (the shims and pause processes found by this containerd's paths).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cmdline, pidAlive, pidsMentioning, run, spawnDetached, stopProcess } from "../sh.ts";

export const PAUSE_IMAGE = "localhost/mncni-pause:latest";

/** A static pause: sleeps until a signal ends it (as PID 1 it gets none it does not handle). */
const PAUSE_C = `#include <signal.h>
#include <unistd.h>
static void done(int s) { (void)s; _exit(0); }
int main(void) { signal(SIGTERM, done); signal(SIGINT, done); for (;;) pause(); }
`;

/** What containerd needs that is not always installed, and which package has it. */
export const CONTAINERD_TOOLS: Record<string, string> = { containerd: "containerd", ctr: "containerd", runc: "runc", podman: "podman", cc: "gcc (and libc6-dev)" };

/** The tools containerd and the pause image need that are missing here. */
export function missingTools(): string[] {
  return Object.keys(CONTAINERD_TOOLS).filter((t) => run(["sh", "-c", `command -v ${t}`], { allowFail: true }).code !== 0);
}

/** Builds the pause image with podman (vfs storage under dir) and saves it as a docker archive; returns its path. */
export function buildPauseImage(dir: string): string {
  mkdirSync(join(dir, "ctx"), { recursive: true });
  writeFileSync(join(dir, "pause.c"), PAUSE_C);
  run(["cc", "-static", "-O2", "-o", join(dir, "ctx/pause"), join(dir, "pause.c")]);
  writeFileSync(join(dir, "ctx/Containerfile"), 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n');
  const podman = ["podman", "--root", join(dir, "storage"), "--runroot", join(dir, "runroot"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"];
  try {
    run([...podman, "build", "--network", "none", "-q", "-t", PAUSE_IMAGE, join(dir, "ctx")]);
    const tar = join(dir, "pause.tar");
    run([...podman, "save", "--format", "docker-archive", "-o", tar, PAUSE_IMAGE]);
    return tar;
  } finally {
    run(["rm", "-rf", join(dir, "storage"), join(dir, "runroot"), join(dir, "ctx")], { allowFail: true });
  }
}

export interface RuntimeHandler {
  name: string;
  /** The CNI config directory containerd reads for sandboxes of this handler. */
  cniConfDir: string;
}

export interface ContainerdSetup {
  /** Everything of this containerd lives here: config, root, state, socket, log, runc's root. */
  dir: string;
  /** The node's network namespace (a name under /run/netns). */
  netns: string;
  cniBinDir: string;
  cniConfDir: string;
  /** Further runtime handlers, each with its own CNI config directory (containerd 1.6 takes one per handler). */
  handlers?: RuntimeHandler[];
  /** containerd's --log-level (debug: the CRI plugin logs each sandbox's steps with times). */
  logLevel?: string;
}

export const containerdPaths = (dir: string) => ({
  config: join(dir, "config.toml"),
  socket: join(dir, "containerd.sock"),
  log: join(dir, "containerd.log"),
  runcRoot: join(dir, "runc"),
});

/** runc by its full path: the shim's PATH is not always the one of this process. */
function runcPath(): string {
  return run(["sh", "-c", "command -v runc"], { allowFail: true }).stdout.trim() || "/usr/sbin/runc";
}

function config(c: ContainerdSetup): string {
  const p = containerdPaths(c.dir);
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const runc = (name: string, confDir?: string) => [
    `[${cri}.containerd.runtimes.${name}]`,
    `  runtime_type = "io.containerd.runc.v2"`,
    ...(confDir ? [`  cni_conf_dir = "${confDir}"`, `  cni_max_conf_num = 1`] : []),
    `[${cri}.containerd.runtimes.${name}.options]`,
    `  BinaryName = "${runcPath()}"`,
    `  Root = "${p.runcRoot}"`,
  ];
  return [
    "version = 2",
    `root = "${c.dir}/root"`,
    `state = "${c.dir}/state"`,
    `disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]`,
    "[grpc]",
    `  address = "${p.socket}"`,
    "[ttrpc]",
    `  address = "${p.socket}.ttrpc"`,
    `[plugins."io.containerd.internal.v1.opt"]`,
    `  path = "${c.dir}/opt"`,
    `[${cri}]`,
    `  sandbox_image = "${PAUSE_IMAGE}"`,
    // No CAP_SYS_RESOURCE here: runc could not lower the pause's oom_score_adj.
    "  restrict_oom_score_adj = true",
    "  disable_apparmor = true",
    `  stream_server_address = "127.0.0.1"`,
    `[${cri}.cni]`,
    `  bin_dir = "${c.cniBinDir}"`,
    `  conf_dir = "${c.cniConfDir}"`,
    "  max_conf_num = 1",
    `[${cri}.containerd]`,
    `  snapshotter = "native"`,
    `  default_runtime_name = "runc"`,
    ...runc("runc"),
    ...(c.handlers ?? []).flatMap((h) => runc(h.name, h.cniConfDir)),
    "",
  ].join("\n");
}

/** Starts containerd in the node's namespace, detached (it outlives the lab command); its PID once its socket answers. */
export async function startContainerd(c: ContainerdSetup, timeoutMs = 30_000): Promise<number> {
  const p = containerdPaths(c.dir);
  mkdirSync(c.dir, { recursive: true });
  writeFileSync(p.config, config(c));
  const pid = spawnDetached(["nsenter", `--net=/run/netns/${c.netns}`, "containerd", "--config", p.config, "--log-level", c.logLevel ?? "info"], p.log);
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (existsSync(p.socket)) {
      // Ready when its CRI answers: containerd itself answers before the CRI plugin has
      // restored its sandboxes, and the CRI refuses every call until then ("server is not
      // initialized yet"). A socket left by an earlier containerd refuses connections.
      last = await criReady(p.socket, Math.min(deadline, Date.now() + 1000));
      if (!last) return pid;
    }
    if (!pidAlive(pid)) break;
    await Bun.sleep(20);
  }
  await stopProcess(pid, p.config);
  throw new Error(`cannot start containerd on ${p.socket}${last ? ` (CRI: ${last})` : ""}: ${tailOf(p.log)}`);
}

/** Waits until the CRI service answers; "" once it does, else its last error. */
async function criReady(socket: string, deadline: number): Promise<string> {
  const { CriClient } = await import("./client.ts");
  const c = new CriClient(socket);
  let last = "";
  try {
    while (Date.now() < deadline) {
      try {
        await c.listPodSandbox({}, 2000);
        return "";
      } catch (e) {
        last = (e as Error).message;
      }
      await Bun.sleep(20);
    }
    return last || "timed out";
  } finally {
    c.close();
  }
}

function tailOf(file: string): string {
  try {
    return readFileSync(file, "utf8").slice(-2000);
  } catch {
    return "(no log)";
  }
}

export function importImage(dir: string, tar: string): void {
  run(["ctr", "--address", containerdPaths(dir).socket, "-n", "k8s.io", "images", "import", "--snapshotter", "native", tar]);
}

/** Ends the containerd process alone (by PID, if its command line still names its config): its shims and sandboxes keep running. */
export async function stopContainerdProcess(pid: number | undefined, dir: string): Promise<void> {
  if (pid) await stopProcess(pid, containerdPaths(dir).config, 10_000);
}

/**
 * Ends containerd and whatever it left running: its shims (their command line names its
 * socket), the sandboxes' processes runc still lists, and unmounts what they left under dir.
 * Sandboxes should be stopped and removed over CRI first; this is for what was not.
 */
export async function stopContainerd(pid: number | undefined, dir: string): Promise<void> {
  const p = containerdPaths(dir);
  await stopContainerdProcess(pid, dir);
  for (const shim of pidsMentioning(p.socket)) {
    if (cmdline(shim).includes("containerd-shim")) await stopProcess(shim, p.socket, 500);
  }
  for (const ns of ["k8s.io"]) {
    const r = run(["runc", "--root", join(p.runcRoot, ns), "list", "-f", "json"], { allowFail: true });
    const list = r.code === 0 && r.stdout.trim() !== "null" ? (JSON.parse(r.stdout || "[]") as { id: string; pid: number }[]) : [];
    for (const c of list) {
      try {
        if (c.pid > 0) process.kill(c.pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
      run(["runc", "--root", join(p.runcRoot, ns), "delete", "--force", c.id], { allowFail: true });
    }
  }
  const mounts = readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(dir + "/"));
  for (const m of mounts.reverse()) run(["umount", "-l", m], { allowFail: true });
}
