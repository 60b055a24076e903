// The upstream Kubernetes NetworkPolicy e2e model in the lab, with real traffic, in a
// mode: namespaces x, y, z with pods a, b, c each (spread over two nodes), every pod serving
// 80 and 81 over TCP, UDP and SCTP (SCTP only where the kernel has it), every pod probing
// every pod. Each case applies policies with `lab apply` (or changes labels), then `lab check`
// compares the probes with the truth table of the evaluator (src/cluster/evaluate-policy.ts);
// the case also states how many flows it expects denied, so a case that denies nothing fails.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import type { PolicyReport } from "../../src/lab/policy-check.ts";
import type { LabStatus } from "../../src/lab/status.ts";
import { run } from "../helpers/netns.ts";
import { NEEDS_AGENT, WIRING, downAll, lab, labJson, newLabName } from "./lab-cli.ts";

import { CASES, np, NSS, PODS } from "./policy-cases.ts";

/**
 * The model in one mode (its own lab). `make test` runs bridge mode (policy-model.e2e.test.ts);
 * routed mode, and both on the manifests directory, run in `make test-matrix`
 * (policy-model-routed.matrix.test.ts, source-dir.matrix.test.ts).
 */
export function policyModelSuite(mode: "bridge" | "routed"): void {
  setDefaultTimeout(120_000);
  afterAll(downAll);
  // The engine (branch policy) enforces; the static wiring has no agent, so nothing to check against.
  describe.skipIf(WIRING === "static")(`upstream policy model in ${mode} mode${NEEDS_AGENT}`, () => {
    const name = newLabName();
    const dir = join(tmpdir(), `${name}-policies`);
    const check = () => labJson<PolicyReport>(name, ["check"], { allowFail: true });
    /** The agents apply a change within their debounce and a pass: retry a few times before calling it a mismatch. */
    const settled = async (): Promise<PolicyReport> => {
      let r = check();
      for (let i = 0; i < 5 && !r.ok; i++) {
        await Bun.sleep(1000);
        r = check();
      }
      return r;
    };

    beforeAll(() => {
      lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "0", "--mode", mode, "--wiring", WIRING, "--policy-ports"]);
      let i = 0;
      for (const ns of NSS) for (const pod of PODS) {
        lab(name, ["pod", "add", `node${(i++ % 2) + 1}`, `${ns}${pod}`, "--namespace", ns, "--labels", `pod=${pod}`, "--ports", "serve-80-tcp=80/TCP,serve-81-udp=81/UDP"]);
      }
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test("no policy: every pod reaches every pod", async () => {
      const r = await settled();
      expect(r.mismatches).toEqual([]);
      expect(r.pods.length).toBe(9);
      expect(r.cells.filter((c) => c.expected === "denied")).toEqual([]);
    });

    test("the check names a flow the dataplane treats differently from the policies (it can fail)", async () => {
      // A drop no policy asks for, inside one pod: the check must report exactly those flows.
      const pod = labJson<LabStatus>(name, ["status"]).pods.find((p) => p.k8sNamespace === "y" && p.labels.pod === "c")!;
      run(["ip", "netns", "exec", pod.namespace, "nft", "-f", "-"], { stdin: "table inet mnltest { chain in { type filter hook input priority 0; tcp dport 81 drop; }; }\n" });
      try {
        const r = check();
        expect(r.ok).toBe(false);
        expect(new Set(r.mismatches.map((m) => `${m.dst} ${m.port}/${m.protocol} ${m.expected}->${m.observed}`))).toEqual(new Set([`y/${pod.k8sName} 81/TCP allowed->denied`]));
        expect(r.mismatches.length).toBe(8);
      } finally {
        run(["ip", "netns", "exec", pod.namespace, "nft", "delete", "table", "inet", "mnltest"]);
      }
    });

    if (mode === "bridge") test("an allowed flow whose first answer is lost (a loaded machine) is probed again, not a mismatch", () => {
      // Inside one pod, the first two SYNs from each source to port 80 are dropped: the first
      // probe's connect (SYN, then its retransmit after 1 s, within the 1.5 s timeout) gets no
      // answer; a second probe's SYN passes. Before the second pass, that was 8 mismatches.
      const pod = labJson<LabStatus>(name, ["status"]).pods.find((p) => p.k8sNamespace === "z" && p.labels.pod === "a")!;
      const syn = "tcp dport 80 tcp flags & (syn | ack) == syn";
      run(["ip", "netns", "exec", pod.namespace, "nft", "-f", "-"], {
        stdin: `table inet mnltest2 { set one { type ipv4_addr; flags dynamic; }; set two { type ipv4_addr; flags dynamic; }; chain in { type filter hook input priority 0; ${syn} ip saddr @two accept; ${syn} ip saddr @one add @two { ip saddr } drop; ${syn} add @one { ip saddr } drop; }; }\n`,
      });
      try {
        const r = check();
        expect(r.mismatches).toEqual([]);
        expect(r.notes).toContainEqual(expect.stringMatching(/^\d+ allowed flows answered only when probed again/));
        // The drops really happened: the first pass lost those flows.
        const two = JSON.parse(run(["ip", "netns", "exec", pod.namespace, "nft", "-j", "list", "set", "inet", "mnltest2", "two"]).stdout).nftables.find((o: any) => o.set).set;
        expect((two.elem ?? []).length).toBe(8);
      } finally {
        run(["ip", "netns", "exec", pod.namespace, "nft", "delete", "table", "inet", "mnltest2"]);
      }
    });

    test("apply refuses an invalid document naming it and the field; label says what it changed", () => {
      mkdirSync(dir, { recursive: true });
      const bad = join(dir, "bad.yaml");
      writeFileSync(bad, [stringify(np("good", "x", { podSelector: {} })), stringify(np("bad", "x", { podSelector: { matchExpressions: [{ key: "pod", operator: "Near" }] } }))].join("---\n"));
      const r = lab(name, ["apply", "-f", bad], { allowFail: true });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("document 2");
      expect(r.stderr).toContain("matchExpressions[0].operator");
      // Nothing of the file was applied: the good document neither.
      const after = check();
      expect(after.cells.filter((x) => x.expected === "denied")).toEqual([]);
      const k = lab(name, ["apply", "-f", join(dir, "none.yaml")], { allowFail: true });
      expect(k.code).toBe(1);
      expect(lab(name, ["label", "namespace", "z", "team=red"]).stdout).toContain("team=red added");
      expect(lab(name, ["label", "namespace", "z", "team=blue"]).stdout).toContain("team overwritten (red -> blue)");
      expect(lab(name, ["label", "namespace", "z", "team-"]).stdout).toContain("team removed");
      const st = labJson<LabStatus>(name, ["status"]);
      expect(st.pods.filter((p) => p.k8sNamespace === "x").map((p) => p.labels.pod).sort()).toEqual(["a", "b", "c"]);
    });

    for (const c of CASES) {
      test(c.name, async () => {
        const file = join(dir, `${c.name.replace(/[^a-z0-9]+/gi, "-")}.yaml`);
        mkdirSync(dir, { recursive: true });
        const objects = typeof c.objects === "function" ? c.objects(labJson<LabStatus>(name, ["status"]).pods) : c.objects;
        writeFileSync(file, objects.map((o) => stringify(o)).join("---\n"));
        lab(name, ["apply", "-f", file]);
        try {
          for (const [pod, change] of c.labels ?? []) lab(name, ["label", "pod", pod, change]);
          const r = await settled();
          expect(r.mismatches).toEqual([]);
          // The case must deny something and allow something: a table of one colour proves little.
          expect(r.cells.some((x) => x.expected === "denied" && x.observed === "denied")).toBe(true);
          expect(r.cells.some((x) => x.expected === "allowed" && x.observed === "allowed")).toBe(true);
        } finally {
          lab(name, ["delete", "-f", file]);
        }
        // Deleted: back to everything allowed.
        const after = await settled();
        expect(after.mismatches).toEqual([]);
        expect(after.cells.filter((x) => x.expected === "denied")).toEqual([]);
      });
    }
  });
}
