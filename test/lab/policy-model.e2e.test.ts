// The upstream Kubernetes NetworkPolicy e2e model in the lab, with real traffic, in both
// modes: namespaces x, y, z with pods a, b, c each (spread over two nodes), every pod serving
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

type PodRow = LabStatus["pods"][number];
const ipOf = (pods: PodRow[], ns: string, pod: string) => pods.find((p) => p.k8sNamespace === ns && p.labels.pod === pod)!.ips[0]!;

setDefaultTimeout(120_000);
afterAll(downAll);

const NSS = ["x", "y", "z"];
const PODS = ["a", "b", "c"];
const np = (name: string, ns: string, spec: object) => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace: ns }, spec });
const cnp = (name: string, tier: string, priority: number, spec: object) =>
  ({ apiVersion: "policy.networking.k8s.io/v1alpha2", kind: "ClusterNetworkPolicy", metadata: { name }, spec: { tier, priority, ...spec } });
const podSel = (pod: string) => ({ matchLabels: { pod } });
const nsSel = (ns: string) => ({ matchLabels: { "kubernetes.io/metadata.name": ns } });

interface Case {
  name: string;
  /** The policies, or a function of the lab's pods (for ipBlock: their addresses). */
  objects: object[] | ((pods: PodRow[]) => object[]);
  /** Runs after the apply (label changes). */
  then?: (lab: string) => void;
}

const CASES: Case[] = [
  { name: "default deny ingress", objects: [np("deny", "x", { podSelector: {}, policyTypes: ["Ingress"] })] },
  { name: "default deny egress", objects: [np("deny", "y", { podSelector: {}, policyTypes: ["Egress"] })] },
  { name: "podSelector AND namespaceSelector", objects: [np("and", "x", { podSelector: podSel("a"), ingress: [{ from: [{ namespaceSelector: nsSel("y"), podSelector: podSel("b") }] }] })] },
  { name: "podSelector OR namespaceSelector", objects: [np("or", "x", { podSelector: podSel("a"), ingress: [{ from: [{ namespaceSelector: nsSel("y") }, { podSelector: podSel("b") }] }] })] },
  { name: "matchExpressions", objects: [np("expr", "x", { podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["a", "b"] }] }, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["y"] }] } }] }] })] },
  { name: "ipBlock with except", objects: (pods) => [np("ipblock", "x", { podSelector: podSel("a"), policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "10.244.0.0/16", except: [`${ipOf(pods, "y", "b")}/32`, `${ipOf(pods, "z", "c")}/32`] } }] }] })] },
  { name: "numeric port and endPort", objects: [np("ports", "x", { podSelector: {}, ingress: [{ ports: [{ port: 80, protocol: "TCP" }, { port: 79, endPort: 81, protocol: "UDP" }] }] })] },
  { name: "named port", objects: [np("named", "z", { podSelector: {}, ingress: [{ ports: [{ port: "serve-81-udp", protocol: "UDP" }] }] })] },
  { name: "multiple policies", objects: [np("m1", "y", { podSelector: podSel("c"), ingress: [{ from: [{ podSelector: podSel("a") }] }] }), np("m2", "y", { podSelector: podSel("c"), ingress: [{ from: [{ namespaceSelector: nsSel("z") }] }] })] },
  { name: "update: a label change moves a pod out of the allowed set", objects: [np("upd", "x", { podSelector: podSel("a"), ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "client" } } }] }] })], then: (l) => { lab(l, ["label", "pod", "y/yb", "role=client"]); lab(l, ["label", "pod", "y/yb", "role-"]); lab(l, ["label", "pod", "z/zc", "role=client"]); } },
  { name: "CNP Admin Deny over a NetworkPolicy allow", objects: [np("allow-all", "x", { podSelector: {}, ingress: [{}] }), cnp("deny-y", "Admin", 10, { subject: { namespaces: nsSel("x") }, ingress: [{ name: "no-y", action: "Deny", from: [{ namespaces: nsSel("y") }] }] })] },
  { name: "CNP priorities and Pass", objects: [
    cnp("pass-z", "Admin", 1, { subject: { namespaces: nsSel("x") }, ingress: [{ action: "Pass", from: [{ namespaces: nsSel("z") }] }] }),
    cnp("deny-rest", "Admin", 20, { subject: { namespaces: nsSel("x") }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] }),
    np("z-only-a", "x", { podSelector: podSel("a"), ingress: [{ from: [{ namespaceSelector: nsSel("z"), podSelector: podSel("a") }] }] }),
  ] },
  { name: "CNP Baseline default deny overridden by a NetworkPolicy", objects: [
    cnp("baseline-deny", "Baseline", 1, { subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] }),
    np("allow-from-x", "z", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: nsSel("x") }] }] }),
  ] },
];

for (const mode of ["bridge", "routed"] as const) {
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
          c.then?.(name);
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
