// The policy examples of docs/policy.md ("Examples"), applied to a lab one by one in the
// doc's order with `lab apply -f`, each checked by what it changes: real TCP connections
// between pods (the lab's echo servers on 7777, from inside the pods' namespaces) and, for
// DNS on port 53 where nothing listens, `lab explain` confirmed by its traced probe. In one
// mode: `make test` runs bridge mode (policy-examples.e2e.test.ts), the fast path's matrix
// files both modes.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import type { Explanation } from "../../src/obs/explain.ts";
import type { LabStatus } from "../../src/lab/status.ts";
import { run } from "../helpers/netns.ts";
import { LAB_CMD, NEEDS_AGENT, WIRING, downAll, lab, labJson, newLabName } from "./lab-cli.ts";


/** The ```yaml blocks of docs/policy.md's "Examples" section, in order. */
function examples(): { name: string; yaml: string }[] {
  const md = readFileSync(resolve(import.meta.dir, "../../docs/policy.md"), "utf8");
  const section = md.slice(md.indexOf("## Examples"), md.indexOf("\n## ", md.indexOf("## Examples") + 1));
  return [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => ({ name: (parseAllDocuments(m[1]!)[0]!.toJS() as { metadata: { name: string } }).metadata.name, yaml: m[1]! }));
}

/** How long an agent may take to apply a policy change (generous: CI runs at load 10+ on 2 cores). */
const AGENT_APPLIES_MS = 60_000;

export function policyExamplesSuite(mode: "bridge" | "routed"): void {
  setDefaultTimeout(120_000);
  describe.skipIf(WIRING === "static")(`docs/policy.md examples in a lab${mode === "bridge" ? "" : `, ${mode} mode`}${NEEDS_AGENT}`, () => {
    const name = newLabName();
    afterAll(downAll);
    const dir = mkdtempSync(join(tmpdir(), `${name}-ex-`));
    const docs = examples();
    let pods: LabStatus["pods"] = [];
    const pod = (p: string) => pods.find((x) => x.name === p)!;

    /** A TCP connection from a pod's namespace to another pod's echo server: true when it connected. */
    const connects = (from: string, to: string) => {
      const r = run(["ip", "netns", "exec", pod(from).namespace, ...LAB_CMD, "lab", "_probe", "--json", "--timeout", "1000", `${pod(to).ips[0]}:7777`], { allowFail: true });
      return (JSON.parse(r.stdout) as { ok: boolean }[])[0]!.ok;
    };
    /**
     * Waits for the agents to apply a change (their debounce and a pass), then checks once more.
     * A deadline in time, not a count of tries: each try is a probe of up to 1 s, and at load 10+
     * an agent's pass can take longer than a few of them.
     */
    const eventually = async <T>(what: () => T, ok: (v: T) => boolean) => {
      const deadline = Date.now() + AGENT_APPLIES_MS;
      let v = what();
      while (!ok(v) && Date.now() < deadline) {
        await Bun.sleep(500);
        v = what();
      }
      return v;
    };
    const connectsEventually = (from: string, to: string, want: boolean) => eventually(() => connects(from, to), (v) => v === want);
    const apply = (n: string) => {
      const ex = docs.find((d) => d.name === n)!;
      const file = join(dir, `${n}.yaml`);
      writeFileSync(file, ex.yaml);
      lab(name, ["apply", "-f", file]);
    };
    type Reach = [from: string, to: string, connects: boolean];
    /**
     * Applies example `n`, waits until the first pair connects as expected (the agents applied
     * it), then checks the other pairs once.
     */
    const applyThen = async (n: string, [first, ...rest]: [Reach, ...Reach[]]) => {
      apply(n);
      expect(await connectsEventually(...first), `${first[0]} -> ${first[1]}`).toBe(first[2]);
      for (const [from, to, want] of rest) expect(connects(from, to), `${from} -> ${to}`).toBe(want);
    };

    beforeAll(() => {
      lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "0", "--mode", mode, "--wiring", WIRING]);
      for (const [node, p, ns, labels] of [
        ["node2", "web", "shop", "role=web"], ["node1", "fe", "frontend", "role=fe"], ["node1", "ot", "other", "role=ot"], ["node1", "dns", "kube-system", "k8s-app=kube-dns"],
      ] as const) lab(name, ["pod", "add", node, p, "--namespace", ns, "--labels", labels]);
      pods = labJson<LabStatus>(name, ["status"]).pods;
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test("the doc has the four examples, in order", () => {
      expect(docs.map((d) => d.name)).toEqual(["default-deny", "web-from-frontend", "allow-dns", "quarantine"]);
    });

    test("before any policy, every pod reaches every pod", () => {
      expect(connects("ot", "web")).toBe(true);
      expect(connects("fe", "web")).toBe(true);
      expect(connects("web", "fe")).toBe(true);
    });

    test("default deny: nothing reaches the shop pods, and they reach nothing", async () => {
      // Pods outside the namespace are not affected (ot -> fe).
      await applyThen("default-deny", [["ot", "web", false], ["fe", "web", false], ["web", "fe", false], ["ot", "fe", true]]);
    });

    test("allow from a namespace: frontend's pods reach web, others still do not", async () => {
      await applyThen("web-from-frontend", [["fe", "web", true], ["ot", "web", false], ["web", "fe", false]]);
    });

    test("allow DNS egress: web may send to kube-dns on port 53 (UDP and TCP), nothing else", async () => {
      apply("allow-dns");
      const explain = (proto: string, port: string) => {
        const r = lab(name, ["explain", "node2/web", "node1/dns", "--json", "--proto", proto, "--port", port], { allowFail: true });
        return JSON.parse(r.stdout) as Explanation;
      };
      // The evaluator reads the API (allowed as soon as apply returns); the traced probe goes
      // through the node's tables, which allow it only once its agent has applied the policy:
      // wait for both to agree, for each protocol.
      const agreed = (e: Explanation) => e.policy?.expected?.allowed === true && e.probe?.mismatches.length === 0;
      for (const e of [await eventually(() => explain("udp", "53"), agreed), await eventually(() => explain("tcp", "53"), agreed)]) {
        expect(e.policy!.expected).toMatchObject({ allowed: true });
        expect(e.policy!.expected!.by).toContain("allow-dns");
        expect(e.probe!.mismatches).toEqual([]);
      }
      // Another port to the same pod: still denied, by real traffic.
      expect(connects("web", "dns")).toBe(false);
    });

    test("quarantine: a labelled pod is cut off both ways, whatever its namespace allows; unlabelled, it is released", async () => {
      apply("quarantine");
      expect(connects("fe", "web")).toBe(true);
      lab(name, ["label", "pod", `${pod("fe").k8sNamespace}/${pod("fe").k8sName}`, "quarantine=true"]);
      expect(await connectsEventually("fe", "web", false)).toBe(false);
      expect(connects("ot", "fe")).toBe(false);
      expect(connects("fe", "ot")).toBe(false);
      lab(name, ["label", "pod", `${pod("fe").k8sNamespace}/${pod("fe").k8sName}`, "quarantine-"]);
      expect(await connectsEventually("fe", "web", true)).toBe(true);
      expect(connects("ot", "fe")).toBe(true);
    });
  });
}
