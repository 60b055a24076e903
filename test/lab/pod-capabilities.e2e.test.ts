// `lab pod add --host-port / --ingress-bandwidth / --egress-bandwidth` with the direct runtime:
// the lab hands the chain the portMappings and bandwidth capability arguments containerd would
// build from the sandbox (test/containerd/lab.test.ts checks the containerd runtime). Checked
// with real traffic from the external host and `tc -j` on the host veth; bad input is refused
// naming the flag, before anything exists.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { LabState } from "../../src/lab/state.ts";
import { LAB_ROOT } from "../../src/lab/topology.ts";
import { ipJson, run } from "../helpers/netns.ts";
import { LAB_CMD, NEEDS_AGENT, WIRING, downAll, lab, newLabName } from "./lab-cli.ts";

setDefaultTimeout(60_000);
afterAll(downAll);

const state = (name: string) => JSON.parse(readFileSync(join(LAB_ROOT, name, "state.json"), "utf8")) as LabState;

describe.skipIf(WIRING === "static")(`lab pod add with host ports and bandwidth (direct runtime)${NEEDS_AGENT}`, () => {
  const name = newLabName();
  const probe = (target: string) => {
    const r = run(["ip", "netns", "exec", `${name}-ext`, ...LAB_CMD, "lab", "_probe", "--json", "--timeout", "1000", target], { allowFail: true });
    return (JSON.parse(r.stdout) as { ok: boolean }[])[0]!.ok;
  };
  // On the dir source, so the Pod object is a file to read (the API source writes the same podManifest).
  beforeAll(() => lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "0", "--wiring", WIRING, "--source", "dir"]));

  test("the host port carries traffic to the pod and the host veth shapes it; remove takes both back", () => {
    lab(name, ["pod", "add", "node1", "web", "--host-port", "18080:7777", "--ingress-bandwidth", "10M", "--egress-bandwidth", "20M"]);
    const node = state(name).nodes[0]!;
    expect(node.pods[0]).toMatchObject({ hostPorts: [{ hostPort: 18080, containerPort: 7777, protocol: "TCP" }], bandwidth: { ingress: "10M", egress: "20M" } });
    // The Pod says so as a Pod would: a container port with its hostPort, the bandwidth annotations.
    const manifest = parse(readFileSync(join(LAB_ROOT, name, "manifests", "pod-default-node1-web.yaml"), "utf8"));
    expect(manifest.spec.containers[0].ports).toContainEqual({ containerPort: 7777, hostPort: 18080, protocol: "TCP" });
    expect(manifest.metadata.annotations).toEqual({ "kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "20M" });
    expect(probe(`${node.address}:18080`)).toBe(true);
    const veth = ipJson<{ ifname: string; ifalias?: string }[]>(node.ns, ["link", "show", "type", "veth"]).find((l) => l.ifalias?.includes(node.pods[0]!.containerId))!.ifname;
    const qdiscs = JSON.parse(run(["ip", "netns", "exec", node.ns, "tc", "-j", "qdisc", "show", "dev", veth]).stdout) as { kind: string; options?: { rate?: number } }[];
    expect(qdiscs.find((q) => q.kind === "tbf")?.options?.rate).toBe(1_250_000);
    lab(name, ["pod", "remove", "node1", "web"]);
    expect(probe(`${node.address}:18080`)).toBe(false);
  });

  test("bad input is refused naming the flag, and nothing is created", () => {
    for (const [flag, value, says] of [
      ["--host-port", "18080", "--host-port item"],
      ["--host-port", "70000:80", "--host-port host port"],
      ["--ingress-bandwidth", "fast", "--ingress-bandwidth"],
      // kubelet's bounds: containerd would fail the sandbox half-made (and its Stop too).
      ["--egress-bandwidth", "1", "unreasonably small"],
    ] as const) {
      const r = lab(name, ["pod", "add", "node1", "bad", flag, value], { allowFail: true });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(says);
    }
    expect(state(name).nodes[0]!.pods).toEqual([]);
    // The direct runtime has no process to restart.
    const rr = lab(name, ["node", "restart-runtime", "node1"], { allowFail: true });
    expect([rr.code, rr.stderr.includes("direct runtime")]).toEqual([1, true]);
    expect(run(["ip", "netns", "list"]).stdout).not.toContain(`${name}-node1-bad`);
  });
});
