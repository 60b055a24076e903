// `lab pods`, `lab pod add/remove` names and labels, `lab inspect` text, `lab up --help`:
// run against the compiled executable, checked against the kernel (ip -j in the pod's netns)
// and the lab's own JSON.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { run } from "../helpers/netns.ts";
import type { CheckReport } from "../../src/lab/check.ts";
import { LAB_CMD, WIRING, downAll, lab, labJson, labRaw, leftovers, newLabName } from "./lab-cli.ts";

setDefaultTimeout(60_000);

const name = newLabName();
beforeAll(() => {
  lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "1", "--wiring", WIRING]);
});
afterAll(() => {
  downAll();
  expect(leftovers(name)).toEqual([]);
});

/** The IPv4 addresses of eth0 in a netns, as the kernel has them. */
function kernelIps(netns: string): string[] {
  const j = JSON.parse(run(["ip", "-n", netns, "-j", "addr", "show", "dev", "eth0"]).stdout) as { addr_info: { family: string; local: string; scope: string }[] }[];
  return j[0]!.addr_info.filter((a) => a.scope === "global").map((a) => a.local);
}

describe("lab pods", () => {
  test("lists every pod with its namespace, name, node, addresses (the kernel's) and labels; --json too", () => {
    lab(name, ["pod", "add", "node1", "web", "--namespace", "z", "--labels", "tier=db"]);
    try {
      const pods = labJson<any[]>(name, ["pods"]);
      expect(pods.map((p) => `${p.k8sNamespace}/${p.k8sName}`).sort()).toEqual(["default/node1-pod1", "z/web"]);
      for (const p of pods) expect(p.ips).toEqual(kernelIps(p.namespace));
      const web = pods.find((p) => p.name === "web")!;
      expect(web).toMatchObject({ node: "node1", namespace: `${name}-node1-web`, labels: { app: "echo", node: "node1", tier: "db" } });
      // The same pods as `lab status --json` (one source for both).
      expect(labJson<any>(name, ["status"]).pods).toEqual(pods);
      const text = lab(name, ["pods"]).stdout;
      expect(text).toMatch(/^NAMESPACE +NAME +NODE +LAB POD +IPS +LABELS$/m);
      expect(text).toMatch(new RegExp(`^z +web +node1 +node1/web +${web.ips[0].replaceAll(".", "\\.")} +app=echo,node=node1,tier=db$`, "m"));
      expect(labRaw(["pods", "--help"]).stdout).toContain("Usage: mncni lab pods");
      expect(labRaw(["--help"]).stdout).toMatch(/^ +pods +the lab's pods/m);
    } finally {
      lab(name, ["pod", "remove", "node1", "web"], { allowFail: true });
    }
  });
});

test("lab pods needs root, as every lab command", () => {
  const r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...LAB_CMD, "lab", "pods", "--name", name], { allowFail: true });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("as uid 65534: lab commands need root");
});

describe("lab pod add / remove", () => {
  test("--labels with the lab's own app or node is refused, naming the key, and nothing is created", () => {
    for (const key of ["app", "node"]) {
      const r = lab(name, ["pod", "add", "node1", "lbl", "--labels", `${key}=web`], { allowFail: true });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot use --labels key "${key}": the lab sets it on every pod`);
    }
    expect(existsSync(`/run/netns/${name}-node1-lbl`)).toBe(false);
    expect(labJson<any[]>(name, ["pods"]).map((p) => p.name)).toEqual(["pod1"]);
  });

  test("remove takes the Kubernetes name and <namespace>/<name>, as `lab label pod` does", () => {
    lab(name, ["pod", "add", "node1", "r1"]);
    lab(name, ["pod", "add", "node1", "r2", "--namespace", "z"]);
    expect(lab(name, ["pod", "remove", "node1", "node1-r1"]).stdout).toContain("pod node1/r1 removed (Kubernetes default/node1-r1)");
    expect(lab(name, ["pod", "remove", "node1", "z/r2"]).stdout).toContain("pod node1/r2 removed (Kubernetes z/r2)");
    for (const p of ["r1", "r2"]) expect(existsSync(`/run/netns/${name}-node1-${p}`)).toBe(false);
    expect(labJson<any[]>(name, ["pods"]).map((p) => p.name)).toEqual(["pod1"]);
    const miss = lab(name, ["pod", "remove", "node1", "node1-nosuch"], { allowFail: true });
    expect(miss.code).toBe(1);
    expect(miss.stderr).toContain('cannot find pod "node1-nosuch" on node "node1" (pods: pod1 = default/node1-pod1)');
  });
});

describe("pods of one name in two namespaces on one node", () => {
  test("--namespace z names the Pod z/NAME; node1/a and node1/z/a are two pods for pods, exec, explain, inspect, check and remove", () => {
    lab(name, ["pod", "add", "node1", "a"]);
    try {
      expect(lab(name, ["pod", "add", "node1", "a", "--namespace", "z"]).stdout).toContain("pod node1/z/a added");
      const again = lab(name, ["pod", "add", "node1", "a", "--namespace", "z"], { allowFail: true });
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('cannot add pod "a": node "node1" already has it in namespace z');
      const pods = labJson<any[]>(name, ["pods"]).filter((p) => p.name === "a");
      expect(pods.map((p) => [p.ref, `${p.k8sNamespace}/${p.k8sName}`]).sort()).toEqual([["node1/a", "default/node1-a"], ["node1/z/a", "z/a"]]);
      const [dflt, inZ] = [pods.find((p) => p.k8sNamespace === "default")!, pods.find((p) => p.k8sNamespace === "z")!];
      expect(dflt.namespace).not.toBe(inZ.namespace);
      // Each reference reaches its own pod, as the kernel has it.
      for (const p of [dflt, inZ]) {
        expect(p.ips).toEqual(kernelIps(p.namespace));
        const inside = JSON.parse(lab(name, ["exec", p.ref, "--", "ip", "-j", "-4", "addr", "show", "dev", "eth0"]).stdout)[0].addr_info.map((a: { local: string }) => a.local);
        expect(inside).toEqual(p.ips);
      }
      const ex = JSON.parse(lab(name, ["explain", "node1/z/a", "node1/a", "--no-probe", "--json"]).stdout) as { src: string; dst: string; outcome: string; hops: { place: string }[] };
      expect([ex.src, ex.dst, ex.outcome]).toEqual([inZ.ips[0], dflt.ips[0], "delivered"]);
      expect(ex.hops[0]!.place).toBe("node1/z/a");
      const one = JSON.parse(lab(name, ["inspect", "node1/z/a", "--json"]).stdout) as { podNamespace: string; podName: string };
      expect([one.podNamespace, one.podName]).toEqual(["z", "a"]);
      const rep = labJson<CheckReport>(name, ["check"]);
      expect(rep.ok).toBe(true);
      expect(rep.results.filter((r) => r.from === "node1/z/a" || r.to === "node1/z/a").length).toBeGreaterThan(0);
      expect(lab(name, ["pod", "remove", "node1", "z/a"]).stdout).toContain("pod node1/z/a removed (Kubernetes z/a)");
      expect(labJson<any[]>(name, ["pods"]).filter((p) => p.name === "a").map((p) => p.ref)).toEqual(["node1/a"]);
    } finally {
      lab(name, ["pod", "remove", "node1", "z/a"], { allowFail: true });
      lab(name, ["pod", "remove", "node1", "a"], { allowFail: true });
    }
  });
});

describe("lab inspect", () => {
  test("the container ID is not cut to an ambiguous prefix; the interface is named once", () => {
    const table = lab(name, ["inspect", "node1"]).stdout;
    expect(table).toMatch(new RegExp(`^default/node1-pod1 +${name}-node1-pod1 +eth0 `, "m"));
    const one = lab(name, ["inspect", "node1/pod1"]).stdout;
    expect(one).toMatch(/^ {2}interface: +eth0 \(index \d+, [0-9a-f:]{17}, mtu \d+\)$/m);
    expect(one).not.toContain("eth0: eth0");
  });
});

describe("lab up --help", () => {
  test("--node-cidr-size says the range that is accepted", () => {
    const help = labRaw(["up", "--help"]).stdout;
    expect(help).toMatch(/--node-cidr-size N +.*at most 28 \(17\.\.28 with the default \/16\)/);
    expect(help).not.toContain("1..32");
    const other = newLabName();
    for (const size of ["16", "29"]) {
      const r = lab(other, ["up", "-q", "--nodes", "1", "--node-cidr-size", size], { allowFail: true });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot use --node-cidr-size "${size}": must be in (16, 28]`);
    }
    expect(leftovers(other)).toEqual([]);
  });
});
