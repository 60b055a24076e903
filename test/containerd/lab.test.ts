// `mncni lab up --runtime containerd`: every node runs its own containerd and the lab drives
// it over CRI as kubelet does, so containerd execs mncni from the agent's conflist and the
// pods are real sandboxes. Checked with independent views: containerd's own list of
// sandboxes (CRI), the node's invocation log (containerd's plugin processes, with the
// sandbox's ID), `ip -j` inside the sandbox's namespace, the host port carrying real traffic
// from the external host, `tc -j` on the host veth, and nothing left after `lab down`.
// The heavier combinations (policy, a containerd restart, the agent killed) are in
// lab.matrix.test.ts.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import type { CheckReport } from "../../src/lab/check.ts";
import type { Attachment, NodeAttachments } from "../../src/obs/attachments.ts";
import { LAB_ROOT } from "../../src/lab/topology.ts";
import { ipJson, run } from "../helpers/netns.ts";
import { downAll, lab, labJson, leftovers, newLabName } from "../lab/lab-cli.ts";
import { cniCalls, labState, nodeDir, pods, probe, processesNaming, reservedIps, sandboxes, socketOf } from "./lab-containerd.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

describe("lab up --runtime containerd", () => {
  const name = newLabName();

  beforeAll(() => {
    if (!existsSync("/usr/bin/containerd")) throw new Error("containerd is not installed: make test installs it (apt-get install containerd)");
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "1", "--wiring", "agent", "--runtime", "containerd"]);
  });

  test("each node runs its own containerd inside the node's namespace, and the pods are its sandboxes", async () => {
    const s = labState(name);
    for (const node of s.nodes) {
      const pid = node.containerdPid!;
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toContain(`${nodeDir(name, node.name)}/containerd/config.toml`);
      // The process is in the node's network namespace (not the root's).
      expect(run(["ip", "netns", "identify", String(pid)]).stdout.trim()).toBe(node.ns);
      const boxes = await sandboxes(name, node.name);
      expect(boxes.map((b) => [b.id, b.state, b.metadata.name, b.metadata.namespace, b.metadata.uid, b.labels.app, b.labels.node])).toEqual(
        node.pods.map((p) => [p.sandboxId ?? "", "SANDBOX_READY", `${node.name}-${p.name}`, "default", p.uid ?? "", "echo", node.name]),
      );
      // The DNS config kubelet gives (ClusterFirst: the lab's cluster DNS), as containerd wrote it for the sandbox.
      for (const p of node.pods) {
        const resolv = readFileSync(`${nodeDir(name, node.name)}/containerd/root/io.containerd.grpc.v1.cri/sandboxes/${p.sandboxId}/resolv.conf`, "utf8");
        expect(resolv).toContain("nameserver 10.224.0.1");
        expect(resolv).toContain("search default.svc.cluster.local svc.cluster.local cluster.local");
      }
      // containerd ran the plugin (the invocation log has the sandbox's ID), not the lab, and
      // the plugin's process handed the call to the node's agent (served), as on a cluster.
      for (const p of node.pods) expect(cniCalls(name, node.name).some((c) => c.command === "ADD" && c.containerId === p.sandboxId && c.served !== undefined)).toBe(true);
    }
    expect(labJson<{ runtime: string }>(name, ["status"]).runtime).toBe("containerd");
    for (const p of pods(name)) {
      expect(p.namespace).toMatch(/^cni-/);
      const addrs = ipJson<{ addr_info: { local: string }[] }[]>(p.namespace, ["addr", "show", "dev", "eth0"]).flatMap((l) => l.addr_info.map((a) => a.local));
      expect(addrs).toContain(p.ips[0]!);
    }
  });

  test("lab check passes through the sandboxes; lab exec enters a sandbox's namespace", () => {
    const r = labJson<CheckReport>(name, ["check"], { allowFail: true });
    expect(r.problems).toEqual([]);
    expect(r.failed).toBe(0);
    expect(r.passed).toBeGreaterThan(0);
    const pod = pods(name).find((p) => p.node === "node1")!;
    const out = JSON.parse(lab(name, ["exec", "node1/pod1", "--", "ip", "-j", "addr", "show", "eth0"]).stdout) as { addr_info: { local: string }[] }[];
    expect(out[0]!.addr_info.map((a) => a.local)).toContain(pod.ips[0]!);
  });

  test("lab inspect names every sandbox's pod as containerd has it, with no problem (containerd 1.6 keeps its result cache outside the node)", async () => {
    for (const node of labState(name).nodes) {
      const n = labJson<NodeAttachments>(name, ["inspect", node.name], { allowFail: true });
      expect(n.problems).toEqual([]);
      const boxes = await sandboxes(name, node.name);
      expect(n.attachments.map((a) => [a.containerId, a.podNamespace, a.podName, a.problems]).sort()).toEqual(
        boxes.map((b) => [b.id, b.metadata.namespace, b.metadata.name, []]).sort(),
      );
      const one = node.pods[0]!;
      const single = labJson<Attachment>(name, ["inspect", `${node.name}/${one.name}`]);
      expect([single.containerId, single.podName, single.problems]).toEqual([one.sandboxId!, `${node.name}-${one.name}`, []]);
    }
  });

  test("a pod's port mapping and bandwidth annotations reach mncni through the sandbox: the host port carries traffic, the host veth shapes; remove takes both back", async () => {
    lab(name, ["pod", "add", "node1", "web", "--namespace", "shop", "--labels", "role=web", "--host-port", "18080:7777", "--ingress-bandwidth", "10M"]);
    const node = labState(name).nodes.find((n) => n.name === "node1")!;
    const pod = node.pods.find((p) => p.name === "web")!;
    const box = (await sandboxes(name, "node1")).find((b) => b.id === pod.sandboxId)!;
    expect([box.metadata.namespace, box.metadata.name, box.labels.role]).toEqual(["shop", "web", "web"]);
    // From the external host to the node's address: DNAT to the pod's echo server.
    expect(probe(`${name}-ext`, `${node.address}:18080`)).toBe("203.0.113.10");
    const veth = ipJson<{ ifname: string; ifalias?: string }[]>(node.ns, ["link", "show", "type", "veth"]).find((l) => l.ifalias?.includes(pod.sandboxId!))!.ifname;
    const qdiscs = JSON.parse(run(["ip", "netns", "exec", node.ns, "tc", "-j", "qdisc", "show", "dev", veth]).stdout) as { kind: string; options?: { rate?: number } }[];
    expect(qdiscs.find((q) => q.kind === "tbf")?.options?.rate).toBe(1_250_000); // 10 Mbit/s in bytes

    // A second pod on the same host port: the plugin refuses it inside RunPodSandbox, and
    // nothing of it is left (containerd's sandbox, the lab's pod, its address).
    const reservedBefore = reservedIps(name, "node1");
    const r = lab(name, ["pod", "add", "node1", "web2", "--host-port", "18080:7777"], { allowFail: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot map host port "18080/tcp"');
    expect((await sandboxes(name, "node1")).map((b) => b.metadata.name)).not.toContain("node1-web2");
    expect(pods(name).map((p) => p.name)).not.toContain("web2");
    expect(reservedIps(name, "node1")).toEqual(reservedBefore);

    lab(name, ["pod", "remove", "node1", "shop/web"]);
    expect((await sandboxes(name, "node1")).map((b) => b.id)).not.toContain(pod.sandboxId);
    expect(existsSync(`/run/netns/${pod.ns}`)).toBe(false);
    expect(ipJson<{ ifname: string }[]>(node.ns, ["link", "show", "type", "veth"]).map((l) => l.ifname)).not.toContain(veth);
    expect(probe(`${name}-ext`, `${node.address}:18080`)).toBeNull();
  });

  test("lab down stops every containerd, its shims and sandboxes, and leaves nothing", () => {
    const s = labState(name);
    const netns = s.nodes.flatMap((n) => n.pods.map((p) => p.ns));
    lab(name, ["down", "-q"]);
    expect(leftovers(name)).toEqual([]);
    for (const n of s.nodes) {
      expect(existsSync(`/proc/${n.containerdPid}`) && readFileSync(`/proc/${n.containerdPid}/cmdline`, "utf8").includes(name)).toBe(false);
      expect(processesNaming(socketOf(name, n.name))).toEqual([]);
    }
    for (const n of netns) expect([existsSync(`/run/netns/${n}`), existsSync(`/etc/netns/${n}`)]).toEqual([false, false]);
    expect(readFileSync("/proc/self/mounts", "utf8")).not.toContain(`${LAB_ROOT}/${name}/`);
  });
});
