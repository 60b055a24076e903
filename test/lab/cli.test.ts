// The lab CLI's answers to wrong input, --help, `lab list`, MNCNI_LAB, and non-root use.
// Input errors are checked before anything is created: these tests need no lab, except the
// ones that find a lab (list, status of a missing lab, MNCNI_LAB).
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { run } from "../helpers/netns.ts";
import { LAB_CMD, WIRING, labSource, downAll, lab, labRaw, leftovers, newLabName } from "./lab-cli.ts";

setDefaultTimeout(60_000);
afterAll(downAll);

const usageError = (argv: string[]) => {
  const r = labRaw(argv, { allowFail: true });
  expect(r.code).toBe(2);
  return r.stderr;
};

describe("usage errors say what was wrong (exit 2), and create nothing", () => {
  test("numbers are checked with plain messages", () => {
    const name = newLabName();
    expect(usageError(["up", "--name", name, "--nodes", "abc"])).toContain('cannot use --nodes "abc": must be a whole number');
    expect(usageError(["up", "--name", name, "--nodes", "0"])).toContain('cannot use --nodes "0": must be 1..200');
    expect(usageError(["check", "--name", name, "--timeout", "abc"])).toContain('cannot use --timeout "abc": must be a whole number');
    expect(usageError(["check", "--name", name, "--timeout", "-5"])).toContain('cannot use --timeout "-5": must be 1..600000');
    expect(usageError(["node", "add", "--name", name, "--pods", "x"])).toContain('cannot use --pods "x": must be a whole number');
    expect(usageError(["up", "--name", name, "--mode", "vxlan"])).toContain('cannot use --mode "vxlan": must be bridge or routed');
    expect(usageError(["up", "--name", name, "--bogus"])).toContain('unknown flag "--bogus"');
    expect(usageError(["up", "--name"])).toContain("--name needs a value");
    expect(leftovers(name)).toEqual([]);
  });

  test("exec: the command goes after --; a target is needed", () => {
    expect(usageError(["exec", "node1/pod1", "ip", "route"])).toContain('the command goes after "--": mncni lab exec node1/pod1 -- ip route');
    expect(usageError(["exec"])).toContain("mncni lab exec: missing target");
  });

  test("pod add without a node, node/pod with an unknown verb, an unknown subcommand", () => {
    expect(usageError(["pod", "add"])).toContain("mncni lab pod add: missing <node>");
    expect(usageError(["pod", "remove", "node1"])).toContain("mncni lab pod remove: missing <pod>");
    expect(usageError(["node", "frob"])).toContain('mncni lab node: unknown command "frob": must be add, remove, restart-agent, restart-runtime or mtu');
    expect(usageError(["pod"])).toContain("mncni lab pod: missing command: must be add or remove");
    expect(usageError(["frob"])).toContain('mncni lab: unknown command "frob"');
  });

  test("a lab name is checked before anything exists, and nothing is said to be left", () => {
    const r = labRaw(["up", "--name", "Bad_Name"], { allowFail: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot use lab name "Bad_Name"');
    expect(r.stderr).not.toContain("left as it is");
    expect(existsSync("/run/mncni-lab/Bad_Name")).toBe(false);
  });
});

describe("--help", () => {
  test("every subcommand has its own, generated from its flags", () => {
    const cases: [string[], string[]][] = [
      [["up"], ["Usage: mncni lab up [flags]", "--nodes N", "--cluster-cidr6 CIDR", "implies --ipv6"]],
      [["check"], ["Usage: mncni lab check", "--timeout MS", "up to 24 targets"]],
      [["status"], ["Usage: mncni lab status", "--json"]],
      [["list"], ["Usage: mncni lab list", "--json"]],
      [["exec"], ["Usage: mncni lab exec <target> [-- command...]"]],
      [["down"], ["Usage: mncni lab down", "--quiet"]],
      [["node", "add"], ["Usage: mncni lab node add [<name>]", "--pods N"]],
      [["node", "remove"], ["Usage: mncni lab node remove <node>"]],
      [["node", "restart-agent"], ["Usage: mncni lab node restart-agent <node>"]],
      [["pod", "add"], ["Usage: mncni lab pod add <node> [<name>]"]],
      [["pod", "remove"], ["Usage: mncni lab pod remove <node> <pod>"]],
      [["node"], ["Usage: mncni lab node <command>", "restart-agent"]],
    ];
    for (const [argv, wanted] of cases) {
      const r = labRaw([...argv, "--help"]);
      expect(r.code).toBe(0);
      for (const w of wanted) expect(r.stdout).toContain(w);
    }
  });

  test("serve and the top level use the same parser", () => {
    const serve = run([...LAB_CMD, "serve", "--help"]);
    expect(serve.stdout).toContain("Usage: mncni serve [flags]");
    expect(serve.stdout).toContain("--socket PATH");
    const bad = run([...LAB_CMD, "serve", "--socket", "rel.sock"], { allowFail: true });
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining('mncni serve: cannot use --socket "rel.sock": must be an absolute path')]);
    const unknown = run([...LAB_CMD, "serve", "--frob"], { allowFail: true });
    expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining('mncni serve: unknown flag "--frob"')]);
  });
});

describe("not root: every command says root is needed", () => {
  const asNobody = (argv: string[]) => run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...LAB_CMD, "lab", ...argv], { allowFail: true });
  for (const argv of [["status"], ["list"], ["check"], ["up", "--nodes", "1"], ["down"], ["exec", "node1"], ["pod", "add", "node1"], ["node", "add"]]) {
    test(argv.join(" "), () => {
      const r = asNobody([...argv, ...(argv[0] === "list" ? [] : ["--name", "mnlnobody"])]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("as uid 65534: lab commands need root");
    });
  }
  test("--help still works", () => {
    expect(asNobody(["up", "--help"]).code).toBe(0);
  });
});

describe("up", () => {
  test("--cluster-cidr6 alone implies --ipv6 (never silently ignored)", () => {
    const name = newLabName();
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "1", "--cluster-cidr6", "fd00:99::/56", "--wiring", WIRING]);
    const st = JSON.parse(lab(name, ["status", "--json"]).stdout);
    expect(st.clusterCidr6).toBe("fd00:99::/56");
    // The first subnet of each family: the controller's first (kubernetes source); the lab leaves subnet 0 unused (dir).
    expect(st.nodes[0].podCIDRs).toEqual(labSource(name) === "dir" ? ["10.244.1.0/24", "fd00:99:0:1::/64"] : ["10.244.0.0/24", "fd00:99::/64"]);
    expect(st.pods[0].ips.length).toBe(2);
    lab(name, ["down", "-q"]);
    expect(leftovers(name)).toEqual([]);
  });

  test("--segments N>1 with --routing host-gw is refused up front, naming both flags and the ways that work", () => {
    const name = newLabName();
    const r = lab(name, ["up", "-q", "--nodes", "2", "--segments", "2", "--routing", "host-gw", "--wiring", "agent"], { allowFail: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--segments");
    expect(r.stderr).toContain("--routing \"host-gw\"");
    expect(r.stderr).toMatch(/--routing auto or --routing vxlan/);
    expect(r.stderr).not.toContain("left as it is");
    expect(leftovers(name)).toEqual([]);
  });

  test("--source kubernetes with static wiring is refused up front, naming both and the ways that work", () => {
    const name = newLabName();
    const r = lab(name, ["up", "-q", "--nodes", "1", "--source", "kubernetes", "--wiring", "static"], { allowFail: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot use --source kubernetes with --wiring static");
    expect(r.stderr).toContain("use --source dir, or agent wiring");
    expect(r.stderr).not.toContain("left as it is");
    expect(leftovers(name)).toEqual([]);
  });

  test("--fast-path on with static wiring is refused up front, naming both", () => {
    const name = newLabName();
    const r = lab(name, ["up", "-q", "--nodes", "1", "--source", "dir", "--wiring", "static", "--fast-path", "on"], { allowFail: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot use --fast-path on with static wiring");
    expect(r.stderr).not.toContain("left as it is");
    expect(leftovers(name)).toEqual([]);
  });

  test("a lab that exists is refused without saying anything was left", () => {
    const name = newLabName();
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "0", "--wiring", WIRING]);
    const r = lab(name, ["up", "-q", "--nodes", "1"], { allowFail: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("exists");
    expect(r.stderr).not.toContain("left as it is");
    lab(name, ["down", "-q"]);
  });

  test("check's legend reads as separate entries", () => {
    const name = newLabName();
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "1", "--wiring", WIRING]);
    expect(lab(name, ["check"]).stdout).toContain("legend: ✓ reached, seen from the expected source address | NAT reached, but seen from another source address | ✗ unreachable");
    lab(name, ["down", "-q"]);
  });
});

describe("finding labs", () => {
  test("lab list shows a lab; status of a missing lab lists the ones that exist", () => {
    const name = newLabName();
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "1", "--wiring", WIRING]);
    const list = labRaw(["list", "--json"]);
    const mine = (JSON.parse(list.stdout) as any[]).find((l) => l.name === name);
    expect(mine).toMatchObject({ name, root: "/run/mncni-lab", current: true, nodes: 1, pods: 1, complete: true });
    expect(labRaw(["list"]).stdout).toMatch(new RegExp(`^${name} +/run/mncni-lab +1 +1 +bridge +\\w+ +complete$`, "m"));
    const missing = labRaw(["status", "--name", "nosuchlab"], { allowFail: true });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot find lab "nosuchlab"');
    expect(missing.stderr).toContain(`  ${name} (/run/mncni-lab)`);
  });

  test("MNCNI_LAB is the default name", () => {
    const name = newLabName();
    const env = { MNCNI_LAB: name };
    expect(labRaw(["up", "-q", "--nodes", "1", "--pods-per-node", "0", "--wiring", WIRING], { env }).stdout).toContain(`lab "${name}" up: 1 node, 0 pods`);
    expect(JSON.parse(labRaw(["status", "--json"], { env }).stdout).name).toBe(name);
    expect(labRaw(["down", "-q"], { env }).stdout).toContain(`lab "${name}" removed`);
    expect(leftovers(name)).toEqual([]);
  });

  test("a lab under another MNCNI_LAB_ROOT is found, and where it is is said", () => {
    const root = mkdtempSync("/tmp/mnlroot-");
    const name = newLabName();
    const env = { MNCNI_LAB_ROOT: root };
    try {
      labRaw(["up", "--name", name, "-q", "--nodes", "1", "--pods-per-node", "0", "--wiring", WIRING], { env });
      const wiring = JSON.parse(labRaw(["status", "--name", name, "--json"], { env }).stdout).wiring;
      const fromDefault = (JSON.parse(labRaw(["list", "--json"]).stdout) as any[]).find((l) => l.name === name);
      const status = labRaw(["status", "--name", name], { allowFail: true }).stderr;
      if (wiring === "agent") {
        // From the default root: found through its agents, with the root to use.
        expect(fromDefault).toMatchObject({ name, root, current: false, nodes: 1 });
        expect(status).toContain(`  ${name} (${root}: use MNCNI_LAB_ROOT=${root})`);
        // ...and not taken down from here: it is another root's lab.
        const down = labRaw(["down", "--name", name], { allowFail: true });
        expect(down.code).toBe(1);
        expect(down.stderr).toContain(`it lives under ${root}`);
        expect(existsSync(`/run/netns/${name}-sw`)).toBe(true);
      } else {
        // Static wiring runs no agent: its namespaces are found, its state is not.
        expect(fromDefault).toMatchObject({ name, root: null });
        expect(status).toContain(`  ${name} (namespaces only`);
      }
      // From its own root: found with its root.
      const fromOwn = (JSON.parse(labRaw(["list", "--json"], { env }).stdout) as any[]).find((l) => l.name === name);
      expect(fromOwn).toMatchObject({ name, root, current: true, nodes: 1 });
    } finally {
      labRaw(["down", "--name", name, "-q"], { env, allowFail: true });
      rmSync(root, { recursive: true, force: true });
    }
    expect(leftovers(name)).toEqual([]);
  });
});
