// A real runtime in front of mncni: podman 4 with its CNI backend (libcni) runs two
// containers on an mncni network inside a throwaway node namespace; they reach each other,
// and a port published with -p answers a client outside the node and the node itself
// through localhost: mncni's built-in hostPort (the reference portmap is not on the
// plugin path at all). Everything podman keeps lives under the test's temp dir (its own
// containers.conf, storage, run root, file locks, events log), and is removed afterwards.
// podman runs via `nsenter --net=...` (`ip netns exec` would remount /sys and hide cgroups).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { netnsPath, run, type RunResult } from "../helpers/netns.ts";
import { destroyAllNodes, familyOf, hostVethOf, reservedIps, TestNode, UPLINK, type Fam } from "./fixture.ts";

setDefaultTimeout(60_000);

const NETWORK = "mnrnet";
const HOST_PORT = 18080;
const LIBCNI_CACHE = "/var/lib/cni/results";
const TOOLS = ["/usr/bin/podman", "/usr/sbin/runc", "/usr/bin/conmon", "/bin/busybox"];
const missing = TOOLS.filter((t) => !existsSync(t));

let node: TestNode;
let dir: string;
const ids: Record<"a" | "b", string> = { a: "", b: "" };

function podman(args: string[], opts: { allowFail?: boolean } = {}): RunResult {
  return run(
    ["nsenter", `--net=${netnsPath(node.ns)}`, "podman", "--root", `${dir}/root`, "--runroot", `${dir}/runroot`, "--storage-driver", "vfs", ...args],
    { env: { ...(process.env as Record<string, string>), CONTAINERS_CONF: `${dir}/containers.conf` }, allowFail: opts.allowFail },
  );
}

/** A one-file image: /bin/busybox and the applets the test uses. */
function buildImage(): void {
  const root = `${dir}/image`;
  mkdirSync(`${root}/bin`, { recursive: true });
  run(["cp", "/bin/busybox", `${root}/bin/busybox`]);
  for (const a of ["sh", "nc", "ping", "sleep", "echo", "ip"]) symlinkSync("busybox", `${root}/bin/${a}`);
  run(["tar", "-C", root, "-cf", `${dir}/image.tar`, "."]);
  podman(["import", `${dir}/image.tar`, "localhost/mnrbox"]);
}

function writeConfig(): void {
  mkdirSync(`${dir}/net.d`, { recursive: true });
  writeFileSync(
    `${dir}/containers.conf`,
    [
      "[engine]",
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${dir}/events.log"`,
      // File locks under the test dir: the default shm locks are shared with the machine's podman.
      'lock_type = "file"',
      `tmp_dir = "${dir}/tmp"`,
      "[network]",
      'network_backend = "cni"',
      // mncni and mncni-ipam only: nothing else (portmap) could do the port mapping.
      `cni_plugin_dirs = ["${node.binDir}"]`,
      `network_config_dir = "${dir}/net.d"`,
      "",
    ].join("\n"),
  );
  const mncni = node.conf({ stack: "dual", extra: { mode: "bridge", bridge: "mnrbr0" } });
  delete mncni.cniVersion;
  delete mncni.name;
  writeFileSync(
    `${dir}/net.d/${NETWORK}.conflist`,
    JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, plugins: [{ ...mncni, capabilities: { portMappings: true } }] }),
  );
}

const ulimits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

/** Container addresses as podman reports them (from mncni's result). */
function addressesOf(name: string): Record<Fam, string> {
  const out = podman(["inspect", name, "--format", `{{ (index .NetworkSettings.Networks "${NETWORK}").IPAddress }} {{ (index .NetworkSettings.Networks "${NETWORK}").GlobalIPv6Address }}`]).stdout.trim();
  const [v4, v6] = out.split(/\s+/);
  return { 4: v4!, 6: v6! };
}

describe.skipIf(missing.length > 0)(`podman (CNI backend) on an mncni network${missing.length ? ` — skipped: missing ${missing.join(", ")}` : ""}`, () => {
  beforeAll(() => {
    node = new TestNode({ uplink: true });
    dir = `${node.dir}/podman`;
    mkdirSync(`${dir}/tmp`, { recursive: true });
    writeConfig();
    buildImage();
  });

  afterAll(() => {
    if (dir) podman(["rm", "-af", "-t", "0"], { allowFail: true });
    // libcni's result cache is machine-wide; podman's DEL removes its entries, this catches a failed run.
    if (existsSync(LIBCNI_CACHE)) {
      for (const f of readdirSync(LIBCNI_CACHE)) if (Object.values(ids).some((id) => id && f.includes(id))) rmSync(`${LIBCNI_CACHE}/${f}`, { force: true });
    }
    node?.destroy();
    destroyAllNodes();
  });

  test("podman sees the network with mncni as its driver", () => {
    const out = podman(["network", "ls", "--format", "{{.Name}} {{.Driver}}"]).stdout;
    expect(out).toContain(`${NETWORK} mncni`);
  });

  test("two containers on the mncni network reach each other", () => {
    ids.a = podman(["run", "-d", "--name", "mnra", "--network", NETWORK, ...ulimits, "localhost/mnrbox", "sleep", "600"]).stdout.trim();
    ids.b = podman([
      "run", "-d", "--name", "mnrb", "--network", NETWORK, "-p", `${HOST_PORT}:8080`, ...ulimits, "localhost/mnrbox",
      "sh", "-c", "while true; do echo hello-from-b | nc -l -p 8080; done",
    ]).stdout.trim();
    // mncni did the wiring: one host veth per container, named after podman's container ID.
    for (const id of [ids.a, ids.b]) expect(hostVethOf(node.ns, NETWORK, id)).toBeDefined();
    const b = addressesOf("mnrb");
    expect(familyOf(b[4])).toBe(4);
    expect(familyOf(b[6])).toBe(6);
    for (const f of [4, 6] as Fam[]) {
      const r = podman(["exec", "mnra", "ping", "-c", "1", "-W", "3", b[f]], { allowFail: true });
      expect(r.stdout).toContain("1 packets received");
    }
    const tcp = podman(["exec", "mnra", "sh", "-c", `echo hi | nc ${b[4]} 8080`], { allowFail: true });
    expect(tcp.stdout).toContain("hello-from-b");
  });

  test("the published port (-p, mncni's hostPort) answers a client outside the node, and the node via localhost", () => {
    expect(existsSync(`${node.binDir}/portmap`)).toBe(false);
    // The container's server restarts nc after each connection (a moment with nothing
    // listening), and the bridge's IPv6 address may still be in DAD: up to three tries each.
    const answer = (ns: string, addr: string) => {
      let out = "";
      for (let i = 0; i < 3 && !out.includes("hello-from-b"); i++) {
        if (i) Bun.sleepSync(300);
        out = run(["ip", "netns", "exec", ns, "timeout", "5", "busybox", "nc", "-w", "3", addr, String(HOST_PORT)], { stdin: "hi\n", allowFail: true }).stdout;
      }
      return out;
    };
    for (const [ns, addr] of [[node.client, UPLINK.node[4]], [node.client, UPLINK.node[6]], [node.ns, "127.0.0.1"]] as const) {
      expect(answer(ns, addr)).toContain("hello-from-b");
    }
    const map = run(["ip", "netns", "exec", node.ns, "nft", "list", "map", "inet", "mncni-hostport", "port4"]).stdout;
    expect(map).toContain(`tcp . ${HOST_PORT}`);
  });

  test("removing the containers runs DEL: host veths and reservations are gone", () => {
    expect(reservedIps(node.dataDir, NETWORK).length).toBe(4);
    podman(["rm", "-f", "-t", "0", "mnra", "mnrb"]);
    for (const id of [ids.a, ids.b]) expect(hostVethOf(node.ns, NETWORK, id)).toBeUndefined();
    expect(reservedIps(node.dataDir, NETWORK)).toEqual([]);
    const map = run(["ip", "netns", "exec", node.ns, "nft", "list", "map", "inet", "mncni-hostport", "port4"]).stdout;
    expect(map).not.toContain(`${HOST_PORT}`);
  });
});
