// The container image as `make image` builds it (into a test-owned podman storage, under a
// unique tag): the executables and nft run in it, and the agent in it converges a node (its
// own network namespace, podman --network none) with the DaemonSet's privileges, installing
// the forwarder and the executable into the host paths the DaemonSet mounts. The same agent
// with capabilities instead of privileged fails on /proc/sys: why the DaemonSet is privileged.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { MNCNI_BIN } from "../helpers/binary.ts";
import { run, uniqueName, type RunResult } from "../helpers/netns.ts";

const ROOT = resolve(import.meta.dir, "../..");
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const TOOLS = ["/usr/bin/podman", "/usr/sbin/runc", "/usr/sbin/nft", join(ROOT, "dist/mncni"), join(ROOT, "dist/mncni-forward")];
const missing = TOOLS.filter((t) => !existsSync(t));
const skipReason = missing.length ? ` — skipped: missing ${missing.join(", ")}${missing.some((m) => m.includes("dist/")) ? " (make build)" : ""}` : "";
// The image test builds from dist/; a $MNCNI_BIN elsewhere is not what it would package.
const usesDist = MNCNI_BIN === join(ROOT, "dist/mncni");

let dir = "";
const image = `localhost/${uniqueName("mncni-img")}:${VERSION}`;
const storage = () => ["--root", `${dir}/root`, "--runroot", `${dir}/runroot`, "--storage-driver", "vfs"];
const env = () => ({ ...(process.env as Record<string, string>), CONTAINERS_CONF: `${dir}/containers.conf` });
const podman = (args: string[], opts: { stdin?: string; allowFail?: boolean } = {}): RunResult => run(["podman", ...storage(), ...args], { ...opts, env: env() });
// Its own network namespace (podman creates and removes it); explicit ulimits, runc (test-machine.md).
const RUN = ["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

describe.skipIf(missing.length > 0 || !usesDist)(`image (make image, podman)${skipReason}${usesDist ? "" : " — skipped: MNCNI_BIN is not dist/mncni"}`, () => {
  let size = "";

  beforeAll(() => {
    dir = mkdtempSync("/tmp/mncni-image-");
    writeFileSync(
      `${dir}/containers.conf`,
      ["[engine]", 'runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', `events_logfile_path = "${dir}/events.log"`,
        // File locks under the test dir: the default shm locks are shared with the machine's podman.
        'lock_type = "file"', `tmp_dir = "${dir}/tmp"`, ""].join("\n"),
    );
    // -o: use dist/ as built (make build ran before the tests); never rebuild or reinstall here.
    const out = run(["make", "-s", "-C", ROOT, "image", "-o", "dist/mncni", "-o", "dist/mncni-forward", "-o", "build",
      `PODMAN=podman ${storage().join(" ")}`, `IMAGE=${image}`, `IMAGE_CONTEXT=${dir}/context`], { env: env() }).stdout;
    size = out.trim().split("\n").at(-1)!;
  }, 180_000);

  afterAll(() => {
    if (!dir) return;
    podman(["rmi", "--force", image], { allowFail: true });
    rmSync(dir, { recursive: true, force: true });
  });

  test("built under its tag; size reported", () => {
    expect(size).toStartWith(`${image} `);
    console.log(`image ${size}`);
  });

  test("mncni version", () => {
    expect(podman([...RUN, image, "mncni", "version"]).stdout.trim()).toBe(`mncni ${VERSION}`);
  });

  test("nft --version, and nft programs a table with its libraries", () => {
    expect(podman([...RUN, image, "nft", "--version"]).stdout).toStartWith("nftables v");
    const out = podman(["run", "-i", ...RUN.slice(2), "--cap-add", "NET_ADMIN", image, "nft", "-f", "-"], { stdin: "add table inet probe\nadd chain inet probe c { type filter hook forward priority 0; }\nlist ruleset\n" }).stdout;
    expect(out).toContain("table inet probe");
  });

  test("the controller's settings: read-only root, nobody, no capabilities", () => {
    const out = podman([...RUN, "--read-only", "--user", "65534:65534", "--cap-drop", "ALL", image, "mncni", "manifests", "--image", image]).stdout;
    expect(out).toContain("kind: DaemonSet");
  });

  describe("the agent in the image", () => {
    const node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nspec:\n  podCIDR: 10.244.1.0/24\n  podCIDRs: [10.244.1.0/24]\nstatus:\n  addresses:\n    - {type: InternalIP, address: 10.99.0.11}\n";
    const agent = ["mncni", "agent", "--once", "--node-name", "n1", "--source", "dir:/m", "--cluster-cidr", "10.244.0.0/16", "--metrics-addr", "off", "--cni-socket", "off"];
    /** A fresh "host": a manifest dir and the DaemonSet's bin and conf host paths. */
    function host(): { dir: string; mounts: string[] } {
      const h = mkdtempSync(`${dir}/host-`);
      for (const d of ["m", "bin", "conf"]) mkdirSync(join(h, d));
      writeFileSync(join(h, "m/n1.yaml"), node);
      return { dir: h, mounts: ["-v", `${h}/m:/m:ro`, "-v", `${h}/bin:/opt/cni/bin`, "-v", `${h}/conf:/etc/cni/net.d`] };
    }

    test("privileged (as the DaemonSet): converges, installs forwarder + executable, writes the conflist", () => {
      const h = host();
      const r = podman([...RUN, "--privileged", ...h.mounts, image, ...agent], { allowFail: true });
      expect({ code: r.code, err: r.stderr.includes('"level":"error"') ? r.stderr : "" }).toEqual({ code: 0, err: "" });
      expect(readFileSync(join(h.dir, "bin/mncni"))).toEqual(readFileSync(join(ROOT, "dist/mncni-forward")));
      expect(Bun.hash(readFileSync(join(h.dir, "bin/mncni-core")))).toBe(Bun.hash(readFileSync(join(ROOT, "dist/mncni"))));
      expect(existsSync(join(h.dir, "bin/mncni-ipam"))).toBe(true);
      const conf = JSON.parse(readFileSync(join(h.dir, "conf/10-mncni.conflist"), "utf8")) as { plugins: { type: string }[] };
      expect(conf.plugins[0]!.type).toBe("mncni");
    });

    // What `kubectl -n kube-system exec ds/mncni-agent -- mncni status` does on a node: the
    // agent running as the DaemonSet runs it (NODE_NAME set, the host paths at their default
    // places), and `mncni` from the image's PATH, in the same container, with no flags.
    test("mncni status exec'd in the running agent's container: found on PATH, names the node by NODE_NAME, default paths, no problems", async () => {
      const h = host();
      for (const d of ["networks", "log", "results"]) mkdirSync(join(h.dir, d));
      const mounts = [...h.mounts, "-v", `${h.dir}/networks:/var/lib/cni/networks`, "-v", `${h.dir}/log:/var/log/mncni`, "-v", `${h.dir}/results:/var/lib/cni/results:ro`];
      const name = uniqueName("mncni-agent");
      // A resident agent with its default health address (what status asks), no CNI socket.
      const daemon = agent.filter((a) => a !== "--once");
      const args = [...daemon.slice(0, daemon.indexOf("--metrics-addr")), "--cni-socket", "off"];
      podman(["run", "-d", "--name", name, ...RUN.slice(2), "--privileged", "-e", "NODE_NAME=n1", "--hostname", "some-host-name", ...mounts, image, ...args]);
      try {
        let s: { node: string; agent: { ready?: boolean; reachable: boolean }; problems: string[]; conflist?: string } | undefined;
        for (let i = 0; i < 40; i++) {
          const r = podman(["exec", name, "mncni", "status", "--json"], { allowFail: true });
          s = r.stdout ? JSON.parse(r.stdout) : undefined;
          // The conflist is read before the agent is asked: wait for a snapshot after both.
          if (s?.agent.ready && s.conflist && s.problems.length === 0) break;
          await Bun.sleep(250);
        }
        expect(s!.node).toBe("n1");
        expect(s!.agent.ready).toBe(true);
        expect(s!.conflist).toBe("/etc/cni/net.d/10-mncni.conflist");
        expect(s!.problems).toEqual([]);
      } finally {
        podman(["rm", "--force", "--time", "0", name], { allowFail: true });
      }
    });

    test("capabilities only (NET_ADMIN, NET_RAW, SYS_ADMIN, SYS_PTRACE): /proc/sys is read-only, the agent fails", () => {
      const h = host();
      const r = podman([...RUN, "--cap-add", "NET_ADMIN,NET_RAW,SYS_ADMIN,SYS_PTRACE", ...h.mounts, image, ...agent], { allowFail: true });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('cannot write sysctl \\"net.ipv4.ip_forward\\": EROFS');
    });
  });
});
