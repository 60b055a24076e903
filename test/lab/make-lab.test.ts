// `make lab NAME=... LAB_FLAGS=...`: a lab of that name with those flags, nothing done to any
// other lab, and only the lab's (and the build's) Debian packages.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { resolve } from "node:path";
import type { LabStatus } from "../../src/lab/status.ts";
import { run } from "../helpers/netns.ts";
import { downAll, labJson, leftovers, newLabName } from "./lab-cli.ts";

setDefaultTimeout(180_000);
afterAll(downAll);

const repo = resolve(import.meta.dir, "../..");
const make = (...args: string[]) => run(["make", "--no-print-directory", "-C", repo, ...args], { allowFail: true });

test("make lab NAME=x LAB_FLAGS=...: builds lab x with those flags, and never runs `lab down`", () => {
  const name = newLabName();
  const plan = make("-n", "lab", `NAME=${name}`).stdout;
  expect(plan).not.toMatch(/^\S*mncni lab down/m);
  expect(plan).toContain(`lab up --name ${name} --nodes 3 --pods-per-node 2`);
  const r = make("lab", `NAME=${name}`, "LAB_FLAGS=--nodes 1 --pods-per-node 1 --mode routed");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`lab "${name}" up: 1 node, 1 pod (routed`);
  expect(r.stdout).toContain("PASS:");
  const st = labJson<LabStatus>(name, ["status"]);
  expect([st.mode, st.source, st.nodes.length, st.pods.length]).toEqual(["routed", "kubernetes", 1, 1]);
  // It says how to point kubectl at the lab, and that works.
  const recipe = /^kubectl: export KUBECONFIG=\$\((\.\/dist\/mncni lab kubeconfig --name \S+)\)/m.exec(r.stdout);
  expect(recipe?.[1]).toBe(`./dist/mncni lab kubeconfig --name ${name}`);
  const kubeconfig = run(["sh", "-c", `cd ${repo} && ${recipe![1]}`]).stdout.trim();
  expect(run(["kubectl", "--kubeconfig", kubeconfig, "get", "pods", "-o", "name"]).stdout.trim()).toBe("pod/node1-pod1");
  // Again with the same name: refused, the lab stays (it may be someone else's).
  const again = make("lab", `NAME=${name}`, "LAB_FLAGS=--nodes 1 --pods-per-node 0");
  expect(again.code).not.toBe(0);
  expect(again.stderr).toContain(`cannot create lab "${name}": it exists`);
  expect(labJson<LabStatus>(name, ["status"]).pods.length).toBe(1);
  expect(make("lab-down", `NAME=${name}`).code).toBe(0);
  expect(leftovers(name)).toEqual([]);
});

test("make lab installs only the lab's and the build's packages; make test all of them", () => {
  const debsOf = (target: string) => {
    const line = make("-n", target).stdout.split("\n").find((l) => l.includes("dpkg -s")) ?? "";
    return (/for p in ([^;]*);/.exec(line)?.[1] ?? "").trim().split(/\s+/);
  };
  const lab = debsOf("lab");
  expect(lab).toEqual(expect.arrayContaining(["iproute2", "nftables", "containernetworking-plugins"]));
  for (const p of ["podman", "runc", "hyperfine", "strace", "busybox-static", "iperf3"]) expect(lab).not.toContain(p);
  expect(debsOf("test")).toEqual(expect.arrayContaining([...lab, "podman", "runc", "hyperfine", "strace"]));
});
