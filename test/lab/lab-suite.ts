// `mncni lab` end to end, in a mode: bring-up, the network model check (and that it can
// fail), pods and nodes added and removed, the agent killed and restarted, tear-down that
// leaves nothing behind. Kernel state is checked independently with `ip -j` and `nft -j`.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { parse } from "yaml";
import type { CheckReport } from "../../src/lab/check.ts";
import type { LabStatus } from "../../src/lab/status.ts";
import { LAB_ROOT } from "../../src/lab/topology.ts";
import { ipJson, run } from "../helpers/netns.ts";
import { LAB_CMD, NEEDS_AGENT, WIRING, wantedSource, clusterObjects, downAll, lab, labJson, labSource, leftovers, newLabName } from "./lab-cli.ts";

const nft = (netns: string, script: string) => run(["ip", "netns", "exec", netns, "nft", "-f", "-"], { stdin: script });
const routeDsts = (netns: string) => ipJson<{ dst: string; gateway?: string }[]>(netns, ["-4", "route", "show"]).map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ""}`);

/**
 * The lab in one mode (its own lab). `make test` runs bridge mode (lab.e2e.test.ts); routed mode,
 * and both on the manifests directory, run in `make test-matrix` (lab-routed.matrix.test.ts,
 * source-dir.matrix.test.ts).
 */
export function labSuite(mode: "bridge" | "routed"): void {
  setDefaultTimeout(60_000);
  afterAll(downAll);
  describe(`lab in ${mode} mode`, () => {
    const name = newLabName();
    let st: LabStatus;
    const status = () => (st = labJson<LabStatus>(name, ["status"]));
    /** A node's pod CIDR: the controller's choice on the kubernetes source, the lab's on dir. */
    const cidr = (node: string) => st.nodes.find((n) => n.name === node)!.podCIDRs[0]!;
    const prefixOf = (node: string) => cidr(node).replace(/\.0\/24$/, ".");
    const checkReport = (timeoutMs = 2000) => labJson<CheckReport>(name, ["check", "--timeout", String(timeoutMs)], { allowFail: true });

    beforeAll(() => {
      lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "2", "--mode", mode, "--wiring", WIRING]);
      status();
    });

    afterAll(() => {
      lab(name, ["down", "-q"], { allowFail: true });
      expect(leftovers(name)).toEqual([]);
    });

    test("status: nodes with pod CIDRs and ready, pods with addresses in their node's CIDR", () => {
      expect(st.mode).toBe(mode);
      expect(st.nodes.map((n) => [n.name, n.address, n.ready])).toEqual([
        ["node1", "10.224.0.11", true],
        ["node2", "10.224.0.12", true],
      ]);
      // One /24 of the cluster CIDR each (on dir the lab leaves subnet 0 unused).
      expect(st.nodes.every((n) => n.podCIDRs.length === 1 && /^10\.244\.\d+\.0\/24$/.test(n.podCIDRs[0]!))).toBe(true);
      expect(cidr("node1")).not.toBe(cidr("node2"));
      if (labSource(name) === "dir") expect([cidr("node1"), cidr("node2")]).toEqual(["10.244.1.0/24", "10.244.2.0/24"]);
      expect(st.pods.length).toBe(4);
      for (const p of st.pods) expect(p.ips[0]).toStartWith(prefixOf(p.node));
      // The pod's eth0 really holds the address.
      const p = st.pods[0]!;
      const addrs = ipJson<{ addr_info: { local: string }[] }[]>(p.namespace, ["addr", "show", "dev", "eth0"]);
      expect(addrs[0]!.addr_info.map((a) => a.local)).toContain(p.ips[0]!);
    });

    test("cluster objects: Node objects with podCIDR and InternalIP, Pod objects Running with podIPs", () => {
      expect(labSource(name)).toBe(wantedSource());
      const node1 = clusterObjects(name, "node").find((n) => n.metadata.name === "node1");
      expect(node1).toMatchObject({ kind: "Node", metadata: { name: "node1" }, spec: { podCIDR: cidr("node1") } });
      expect(node1.status.addresses).toContainEqual({ type: "InternalIP", address: "10.224.0.11" });
      const pods = clusterObjects(name, "pod");
      expect(pods.length).toBe(4);
      expect(pods.map((p) => p.status.podIPs[0].ip).sort()).toEqual(st.pods.map((p) => p.ips[0]).sort());
      expect(pods.every((p) => p.kind === "Pod" && p.status.phase === "Running" && ["node1", "node2"].includes(p.spec.nodeName))).toBe(true);
    });

    test("underlay: the router has no route to pod CIDRs; nodes route each other's pod CIDR", () => {
      expect(routeDsts(`${name}-rtr`).some((r) => r.startsWith("10.244."))).toBe(false);
      expect(routeDsts(`${name}-node1`)).toContain(`${cidr("node2")} via 10.224.0.12`);
      expect(routeDsts(`${name}-node2`)).toContain(`${cidr("node1")} via 10.224.0.11`);
    });

    test("exec runs a command in a pod, a node or the external host, with its exit code", () => {
      const p = st.pods[0]!;
      const out = lab(name, ["exec", `${p.node}/${p.name}`, "--", "ip", "-j", "-4", "addr", "show", "dev", "eth0"]).stdout;
      expect(JSON.parse(out)[0].addr_info[0].local).toBe(p.ips[0]);
      expect(lab(name, ["exec", "ext", "--", "ip", "-br", "-4", "addr", "show", "dev", "eth0"]).stdout).toContain("203.0.113.10/24");
      expect(lab(name, ["exec", "node1", "--", "sh", "-c", "exit 3"], { allowFail: true }).code).toBe(3);
      expect(lab(name, ["exec", "nosuch", "--", "true"], { allowFail: true }).stderr).toContain('cannot find "nosuch"');
    });

    test("check: every pod and node reaches every pod without NAT; pods reach ext as their node", () => {
      const rep = checkReport();
      expect(rep.results.filter((r) => !r.ok)).toEqual([]);
      // pod-pod, node-pod, pod-ext, and a full-MTU DF probe between the first pods of the two nodes, each way.
      expect(rep.results.length).toBe(4 * 4 + 2 * 4 + 4 + 2);
      for (const r of rep.results.filter((x) => x.kind === "pod-ext")) expect(r.seen).toBe(r.from.startsWith("node1") ? "10.224.0.11" : "10.224.0.12");
      for (const r of rep.results.filter((x) => x.kind === "pod-pod")) {
        const from = st.pods.find((p) => `${p.node}/${p.name}` === r.from)!;
        expect(r.seen).toBe(from.ips[0]);
      }
      const text = lab(name, ["check"]).stdout;
      expect(text).toContain("PASS: 30/30");
    });

    test("check fails (exit 1) on an unreachable pod and on NAT between pods", () => {
      const victim = st.pods.find((p) => p.node === "node2")!;
      nft(victim.namespace, "table inet mnltest {\n chain in {\n type filter hook input priority 0;\n tcp dport 7777 drop\n }\n}\n");
      // NAT between pods, where every packet to the pod crosses it (with the fast path on, node1's
      // stack does not see its plain pods' packets): at the input of the other node2 pod, node1's
      // pods rewritten to node1's address.
      const other = st.pods.find((p) => p.node === "node2" && p !== victim)!;
      nft(other.namespace, `table ip mnltest {\n chain in {\n type nat hook input priority 100;\n ip saddr ${cidr("node1")} snat to 10.224.0.11\n }\n}\n`);
      try {
        const r = lab(name, ["check", "--json", "--timeout", "300"], { allowFail: true });
        expect(r.code).toBe(1);
        const rep = JSON.parse(r.stdout) as CheckReport;
        const bad = rep.results.filter((r) => !r.ok);
        const victimLabel = `${victim.node}/${victim.name}`;
        // Nobody reaches the victim's port: 4 pods + 2 nodes.
        expect(bad.filter((r) => r.to === victimLabel && !r.reachable).length).toBe(6);
        // node1's pods reach the other node2 pod, but seen as node1's address.
        const natted = bad.filter((r) => r.reachable);
        expect(natted.length).toBe(2);
        for (const r of natted) expect(r.seen).toBe("10.224.0.11");
      } finally {
        run(["ip", "netns", "exec", victim.namespace, "nft", "delete", "table", "inet", "mnltest"]);
        run(["ip", "netns", "exec", other.namespace, "nft", "delete", "table", "ip", "mnltest"]);
      }
      expect(checkReport().ok).toBe(true);
    });

    test.skipIf(WIRING === "static")(`with a policy in force, check expects the evaluator's verdicts, and fails on a flow the policy denies that gets through${NEEDS_AGENT}`, () => {
      const policy = `${LAB_ROOT}/${name}/deny-all.yaml`;
      writeFileSync(policy, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: default}\nspec: {podSelector: {}}\n");
      lab(name, ["apply", "-f", policy]);
      try {
        let rep = checkReport(1000);
        expect(rep.results.filter((r) => !r.ok)).toEqual([]);
        // Every pod to every other pod, and every node to the other node's pods, is denied as expected;
        // a node reaches its own pods and a pod itself.
        expect(rep.results.filter((r) => r.deniedBy).length).toBe(4 * 3 + 2 * 2);
        expect(rep.results.filter((r) => r.kind === "node-pod" && !r.deniedBy).every((r) => r.reachable && r.to.startsWith(`${r.from}/`))).toBe(true);
        expect(rep.policies).toEqual({ count: 1, mtuSkipped: 2 });
        // node2 stops enforcing (its agent killed, its table deleted): node1's pods now reach node2's, which the policy denies.
        const node2 = st.nodes.find((n) => n.name === "node2")!;
        process.kill(node2.agentPid!, "SIGKILL");
        run(["ip", "netns", "exec", `${name}-node2`, "nft", "delete", "table", "inet", "mncni-policy"]);
        const r = lab(name, ["check", "--json", "--timeout", "1000"], { allowFail: true });
        expect(r.code).toBe(1);
        rep = JSON.parse(r.stdout) as CheckReport;
        const through = rep.results.filter((x) => !x.ok);
        expect(through.length).toBeGreaterThan(0);
        for (const x of through) {
          expect(x.to).toStartWith("node2/");
          expect(x.error).toContain("reached, but NetworkPolicy default/deny-all");
        }
      } finally {
        lab(name, ["node", "restart-agent", "node2", "-q"], { allowFail: true });
        lab(name, ["delete", "-f", policy], { allowFail: true });
      }
      status();
      expect(checkReport().ok).toBe(true);
    });

    // Mode-independent (the check and the agent's /readyz): bridge only, to keep `make test` short.
    if (mode === "bridge") test.skipIf(WIRING === "static")(`a check right after apply waits for a late agent to program the policy, then expects the evaluator's verdicts; with the wait over, it names the node that does not enforce it yet${NEEDS_AGENT}`, async () => {
      const policy = `${LAB_ROOT}/${name}/deny-all-late.yaml`;
      writeFileSync(policy, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all-late, namespace: default}\nspec: {podSelector: {}}\n");
      const node1 = st.nodes.find((n) => n.name === "node1")!;
      // node1's agent is late (as on a loaded machine): stopped before the write, it cannot have programmed it.
      const pause = () => process.kill(node1.agentPid!, "SIGSTOP");
      const resume = () => process.kill(node1.agentPid!, "SIGCONT");
      pause();
      let paused = true;
      try {
        lab(name, ["apply", "-f", policy]);
        const proc = Bun.spawn([...LAB_CMD, "lab", "check", "--name", name, "--json", "--timeout", "1000"], { stdout: "pipe", stderr: "pipe" });
        const out = new Response(proc.stdout).text();
        // The agent goes on once the check says it waits for it (or the check is over: it did not wait).
        let said = "";
        for await (const chunk of proc.stderr) {
          said += new TextDecoder().decode(chunk);
          if (said.includes("waiting for the agent of node1")) break;
        }
        resume();
        paused = false;
        const code = await proc.exited;
        let rep = JSON.parse(await out) as CheckReport;
        expect(rep.problems).toEqual([]);
        expect(rep.results.filter((r) => !r.ok)).toEqual([]);
        expect(rep.results.filter((r) => r.deniedBy).length).toBe(4 * 3 + 2 * 2);
        expect(code).toBe(0);
        // Late again, now for the policy's removal: node1 still denies what the source no longer does.
        pause();
        paused = true;
        lab(name, ["delete", "-f", policy]);
        const r = lab(name, ["check", "--json", "--timeout", "1000", "--policy-wait", "1"], { allowFail: true });
        expect(r.code).toBe(1);
        rep = JSON.parse(r.stdout) as CheckReport;
        expect(rep.problems).toEqual([expect.stringContaining("node1: its agent does not enforce the policies the check reads yet")]);
      } finally {
        if (paused) resume();
        lab(name, ["delete", "-f", policy], { allowFail: true });
      }
      // The check waits for node1 to lift it.
      expect(checkReport().ok).toBe(true);
    });

    test("pod add and remove: the new pod is reachable; removal frees its namespace, manifest and address", () => {
      const added = lab(name, ["pod", "add", "node2", "extra"]).stdout;
      expect(added).toContain("node2/extra");
      status();
      const pod = st.pods.find((p) => p.name === "extra")!;
      expect(pod.ips[0]).toStartWith(prefixOf("node2"));
      const rep = checkReport();
      expect(rep.ok).toBe(true);
      expect(rep.results.filter((r) => r.to === "node2/extra").length).toBe(5 + 2);
      lab(name, ["pod", "remove", "node2", "extra"]);
      expect(existsSync(`/run/netns/${pod.namespace}`)).toBe(false);
      expect(clusterObjects(name, "pod").some((p) => p.metadata.name.includes("extra"))).toBe(false);
      // The runtime forgot it (result cache) and IPAM released it (no reservation file left).
      const nodeDir = `${LAB_ROOT}/${name}/nodes/node2`;
      expect(readdirSync(`${nodeDir}/results`).some((f) => f.includes("extra"))).toBe(false);
      const files = readdirSync(`${nodeDir}/ipam`, { recursive: true }) as string[];
      expect(files.some((f) => f.endsWith(pod.ips[0]!))).toBe(false);
      expect(status().pods.some((p) => p.name === "extra")).toBe(false);
    });

    test("node add and remove: the new node's pods are reachable from all; its routes go away with it", () => {
      lab(name, ["node", "add", "node3", "--pods", "1", "-q"]);
      status();
      expect(st.nodes.find((n) => n.name === "node3")).toMatchObject({ address: "10.224.0.13", ready: true });
      // The lowest free subnet: the controller's (or on dir the lab's) allocator.
      if (labSource(name) === "dir") expect(cidr("node3")).toBe("10.244.3.0/24");
      expect([cidr("node1"), cidr("node2")]).not.toContain(cidr("node3"));
      const node3Prefix = prefixOf("node3");
      expect(routeDsts(`${name}-node1`)).toContain(`${cidr("node3")} via 10.224.0.13`);
      const rep = checkReport();
      expect(rep.results.filter((r) => !r.ok)).toEqual([]);
      // 5 pods and 3 nodes, and the MTU probes from the first pods of the 2 other nodes.
      expect(rep.results.filter((r) => r.to === "node3/pod1").length).toBe(5 + 3 + 2);
      lab(name, ["node", "remove", "node3", "-q"]);
      expect(existsSync(`/run/netns/${name}-node3`)).toBe(false);
      expect(routeDsts(`${name}-node1`).some((r) => r.startsWith(node3Prefix))).toBe(false);
      expect(routeDsts(`${name}-node2`).some((r) => r.startsWith(node3Prefix))).toBe(false);
      expect(checkReport().ok).toBe(true);
    });

    // Static wiring has no agent: skipped (and reported as a skip) only when asked for;
    // otherwise a lab without agents means the set-up is missing, which fails.
    test.skipIf(WIRING === "static")(`agent killed: pods keep working; restarted: ready again and pods can be added${NEEDS_AGENT}`, () => {
      if (st.wiring !== "agent") throw new Error(`set-up missing: the lab runs ${st.wiring} wiring (MNCNI_LAB_WIRING=${WIRING}); build dist/mncni (make build) or set MNCNI_LAB_WIRING=static to skip this test`);
      const node1 = st.nodes.find((n) => n.name === "node1")!;
      // The agent ran node1's CNI calls (the plugin handed them over its socket).
      const cniLog = () =>
        readFileSync(`${LAB_ROOT}/${name}/nodes/node1/cni.log`, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { command: string; podName?: string; served?: object });
      const addOf = (pod: string) => cniLog().filter((l) => l.command === "ADD" && l.podName === `node1-${pod}`).pop();
      expect(cniLog().filter((l) => l.command === "ADD").every((l) => l.served)).toBe(true);
      // ...through the native forwarder the agent installed as the plugin (mncni-core beside it).
      expect(statSync(`${LAB_ROOT}/${name}/nodes/node1/bin/mncni`).size).toBeLessThan(4 << 20);
      expect(existsSync(`${LAB_ROOT}/${name}/nodes/node1/bin/mncni-core`)).toBe(true);
      expect(cniLog().filter((l) => l.command === "ADD").every((l) => (l.served as { client?: { native?: number } }).client?.native !== undefined)).toBe(true);
      process.kill(node1.agentPid!, "SIGKILL");
      expect(status().nodes.find((n) => n.name === "node1")!.ready).toBe(false);
      expect(checkReport().ok).toBe(true);
      // With the agent dead (its socket file left behind), the plugin does the call itself.
      lab(name, ["pod", "add", "node1", "alone"]);
      expect(addOf("alone")).toBeDefined();
      expect(addOf("alone")!.served).toBeUndefined();
      lab(name, ["node", "restart-agent", "node1", "-q"]);
      const again = status().nodes.find((n) => n.name === "node1")!;
      expect(again.agentPid).not.toBe(node1.agentPid);
      expect(again.ready).toBe(true);
      lab(name, ["pod", "add", "node1", "after"]);
      expect(addOf("after")?.served).toBeDefined();
      expect(checkReport().ok).toBe(true);
    });
  });
}

/** `lab down` of half-built and duplicate labs (no lab of its own to share). */
export function labDownSuite(): void {
  setDefaultTimeout(60_000);
  afterAll(downAll);
  describe("down", () => {
  test("is idempotent and removes a half-built lab (up killed midway)", async () => {
    const name = newLabName();
    expect(lab(name, ["down", "-q"]).code).toBe(0);
    const proc = Bun.spawn([...(await import("./lab-cli.ts")).LAB_CMD, "lab", "up", "--name", name, "-q", "--nodes", "4", "--pods-per-node", "3", "--wiring", WIRING], { stdout: "ignore", stderr: "ignore" });
    // Kill once something exists but before it is complete.
    const deadline = Date.now() + 10_000;
    while (!existsSync(`/run/netns/${name}-node2`) && Date.now() < deadline) await Bun.sleep(5);
    proc.kill("SIGKILL");
    await proc.exited;
    expect(leftovers(name).length).toBeGreaterThan(0);
    lab(name, ["down", "-q"]);
    expect(leftovers(name)).toEqual([]);
    lab(name, ["down", "-q"]);
    expect(leftovers(name)).toEqual([]);
  });

  test("a second lab with the same name is refused while the first exists", () => {
    const name = newLabName();
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "0", "--wiring", WIRING]);
    const r = lab(name, ["up", "-q", "--nodes", "1"], { allowFail: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("exists");
    lab(name, ["down", "-q"]);
    expect(leftovers(name)).toEqual([]);
  });
});
}
