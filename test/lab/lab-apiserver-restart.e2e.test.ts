// The lab's API server restarted under a running lab (`lab restart-apiserver`): nothing is lost
// (the same objects, uids and port; every kubeconfig still valid), the agents and controllers
// carry on (their watches resume or relist), a pod added afterwards is Running with its IP and
// reachable; the leading controller replica killed, the other takes over and gives a new node
// its pod CIDR; `lab down` removes the server and the controllers with everything else.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import type { CheckReport } from "../../src/lab/check.ts";
import type { LabStatus } from "../../src/lab/status.ts";
import { LAB_ROOT } from "../../src/lab/topology.ts";
import { run } from "../helpers/netns.ts";
import { until } from "../helpers/until.ts";
import { downAll, lab, labJson, leftovers, newLabName } from "./lab-cli.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

describe.skipIf(!Bun.which("kubectl"))("lab control plane: API server restarted, controller failover", () => {
  const name = newLabName();
  const kubectl = (args: string[]) => run(["kubectl", "--kubeconfig", `${LAB_ROOT}/${name}/apiserver/admin.kubeconfig`, ...args]);
  const pid = () => (JSON.parse(readFileSync(`${LAB_ROOT}/${name}/state.json`, "utf8")) as { apiserverPid?: number }).apiserverPid;
  const objects = () => JSON.parse(kubectl(["get", "nodes,pods", "-A", "-o", "json"]).stdout).items.map((o: any) => `${o.kind} ${o.metadata.name} ${o.metadata.uid}`).sort();

  beforeAll(() => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "1"]);
  });

  test("objects, uids, port and tokens kept; agents ready; a new pod Running with its IP and reachable", async () => {
    const before = objects();
    const old = pid()!;
    const port = readFileSync(`${LAB_ROOT}/${name}/apiserver/port`, "utf8");
    expect(lab(name, ["restart-apiserver"]).stdout).toContain("API server restarted");
    expect(pid()).not.toBe(old);
    // Gone (or a zombie its parent has not reaped yet).
    const stat = existsSync(`/proc/${old}/stat`) ? readFileSync(`/proc/${old}/stat`, "utf8") : "";
    expect(stat === "" || / Z /.test(stat.slice(stat.lastIndexOf(")")))).toBe(true);
    expect(readFileSync(`${LAB_ROOT}/${name}/apiserver/port`, "utf8")).toBe(port);
    expect(objects()).toEqual(before);
    lab(name, ["pod", "add", "node2", "after"]);
    const pod = JSON.parse(kubectl(["get", "pod", "node2-after", "-o", "json"]).stdout);
    expect(pod.status.phase).toBe("Running");
    // The agents' watches were cut: ready again once they relisted.
    let st = labJson<LabStatus>(name, ["status"]);
    await until("every node ready again", () => (st = labJson<LabStatus>(name, ["status"])).nodes.every((n) => n.ready));
    expect(pod.status.podIP).toBe(st.pods.find((p) => p.name === "after")!.ips[0]);
    const rep = labJson<CheckReport>(name, ["check"], { allowFail: true });
    expect(rep.results.filter((r) => !r.ok)).toEqual([]);
    expect(rep.results.filter((r) => r.to === "node2/after").length).toBeGreaterThan(0);
  });

  test("the leading controller killed: the other replica takes the Lease and gives a new node its pod CIDR", async () => {
    const state = () => JSON.parse(readFileSync(`${LAB_ROOT}/${name}/state.json`, "utf8")) as { name: string; controllerPids: number[] };
    const holder = () => JSON.parse(kubectl(["get", "lease", "mncni-controller", "-n", "kube-system", "-o", "json"]).stdout).spec.holderIdentity as string;
    const leader = holder();
    const index = Number(/-controller-(\d+)$/.exec(leader)![1]);
    process.kill(state().controllerPids[index - 1]!, "SIGKILL");
    lab(name, ["node", "add", "node3", "--pods", "1", "-q"]);
    expect(holder()).not.toBe(leader);
    const node3 = JSON.parse(kubectl(["get", "node", "node3", "-o", "json"]).stdout);
    const cidrs = JSON.parse(kubectl(["get", "nodes", "-o", "json"]).stdout).items.map((n: any) => n.spec.podCIDRs[0]);
    expect(node3.spec.podCIDRs).toHaveLength(1);
    expect(new Set(cidrs).size).toBe(3);
    const rep = labJson<CheckReport>(name, ["check"], { allowFail: true });
    expect(rep.results.filter((r) => !r.ok)).toEqual([]);
  });

  test("down removes the server and its directory", () => {
    lab(name, ["down", "-q"]);
    expect(leftovers(name)).toEqual([]);
  });
});
