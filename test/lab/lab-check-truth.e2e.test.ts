// `lab check` tells the truth when something is broken (#26.4): the kernel's own error
// (ENETUNREACH, not the ECONNREFUSED Bun reports for every failed connect), what ping was
// told for a lost MTU probe, and a check that checked nothing or ran on an INCOMPLETE lab fails.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import type { CheckReport } from "../../src/lab/check.ts";
import { LAB_ROOT } from "../../src/lab/topology.ts";
import { run } from "../helpers/netns.ts";
import { WIRING, downAll, lab, newLabName } from "./lab-cli.ts";

setDefaultTimeout(90_000);
afterAll(downAll);

const checkJson = (name: string) => {
  const r = lab(name, ["check", "--json", "--timeout", "1000"], { allowFail: true });
  return { code: r.code, rep: JSON.parse(r.stdout) as CheckReport };
};

describe("lab check on a broken lab", () => {
  const name = newLabName();
  beforeAll(() => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "1", "--wiring", WIRING]);
  });

  test("a pod without a default route: the kernel's ENETUNREACH, and ping's words for the MTU probe", () => {
    const pod = `${name}-node2-pod1`;
    const gw = (JSON.parse(run(["ip", "-n", pod, "-j", "route", "show", "default"]).stdout) as { gateway: string }[])[0]!.gateway;
    run(["ip", "-n", pod, "route", "del", "default"]);
    try {
      const { code, rep } = checkJson(name);
      expect(code).toBe(1);
      const fromPod = rep.results.filter((r) => r.from === "node2/pod1" && r.kind !== "pod-mtu" && r.to !== "node2/pod1");
      expect(fromPod.length).toBe(2); // node1/pod1 and ext
      for (const r of fromPod) {
        expect(r.ok).toBe(false);
        expect(r.errno).toBe("ENETUNREACH");
        expect(r.error).toContain("Network is unreachable");
      }
      const mtu = rep.results.find((r) => r.kind === "pod-mtu" && r.from === "node2/pod1")!;
      expect(mtu.error).toContain("Network is unreachable");
      // Fail fast: node1's probes to node2/pod1 time out (its replies cannot leave); no source of
      // another node reached it, so they are final after the first pass, not tried again at 3x the timeout.
      const toPod = rep.results.filter((r) => r.to === "node2/pod1" && r.from.startsWith("node1") && r.kind !== "pod-mtu");
      expect(toPod.length).toBe(2); // node1/pod1 and node1
      for (const r of toPod) expect(r).toMatchObject({ ok: false, final: true });
      expect(rep.retried).toBe(0);
      expect(rep.results.filter((r) => !r.ok && r.kind !== "pod-mtu").every((r) => r.final)).toBe(true);
    } finally {
      run(["ip", "-n", pod, "route", "add", "default", "via", gw, "dev", "eth0"], { allowFail: true });
    }
    expect(checkJson(name).rep.ok).toBe(true);
  });

  test("a pod route with a smaller MTU: the lost DF packet says what the kernel said", () => {
    const pod = `${name}-node1-pod1`;
    const gw = (JSON.parse(run(["ip", "-n", pod, "-j", "route", "show", "default"]).stdout) as { gateway: string }[])[0]!.gateway;
    run(["ip", "-n", pod, "route", "change", "default", "via", gw, "dev", "eth0", "mtu", "1350"]);
    try {
      const { rep } = checkJson(name);
      const mtu = rep.results.find((r) => r.kind === "pod-mtu" && r.from === "node1/pod1")!;
      expect(mtu.ok).toBe(false);
      expect(mtu.error).toContain("message too long, mtu=1350");
    } finally {
      run(["ip", "-n", pod, "route", "change", "default", "via", gw, "dev", "eth0"]);
    }
  });

  test.skipIf(WIRING === "static")("status says why the pod MTU is what it is", () => {
    const text = lab(name, ["status"]).stdout;
    // A flat lab under auto: every path is direct, the VXLAN headroom is kept anyway.
    expect(text).toContain("pod MTU 1450 = 1500 underlay − 50 VXLAN headroom kept by auto");
  });

  test("an INCOMPLETE lab fails, whatever its probes say", () => {
    const file = `${LAB_ROOT}/${name}/state.json`;
    const before = readFileSync(file, "utf8");
    writeFileSync(file, JSON.stringify({ ...JSON.parse(before), complete: false }));
    try {
      const { code, rep } = checkJson(name);
      expect(rep.failed).toBe(0);
      expect(rep.ok).toBe(false);
      expect(rep.problems.join("\n")).toContain("INCOMPLETE");
      expect(code).toBe(1);
    } finally {
      writeFileSync(file, before);
    }
  });
});

test("a lab without pods: the check checked nothing, so it fails (never PASS 0/0)", () => {
  const name = newLabName();
  lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "0", "--wiring", WIRING]);
  const r = lab(name, ["check"], { allowFail: true });
  expect(r.code).toBe(1);
  expect(r.stdout).not.toContain("PASS");
  expect(r.stdout).toContain("nothing was checked");
});
