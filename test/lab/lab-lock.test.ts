// Lab commands run at the same time: serialised on the lab's lock, so none is lost; `down`
// removes what the state file missed; an interrupted `up` shows as incomplete.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import type { LabState } from "../../src/lab/state.ts";
import type { LabStatus } from "../../src/lab/status.ts";
import { LAB_ROOT } from "../../src/lab/topology.ts";
import { run } from "../helpers/netns.ts";
import { LAB_CMD, WIRING, downAll, lab, labJson, leftovers, newLabName } from "./lab-cli.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

const podsInState = (name: string) =>
  (JSON.parse(readFileSync(`${LAB_ROOT}/${name}/state.json`, "utf8")) as LabState).nodes.flatMap((n) => n.pods.map((p) => p.name)).sort();

describe("concurrent lab commands", () => {
  test("six parallel pod adds: all six in the state, and down leaves no namespace", async () => {
    const name = newLabName();
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "0", "--wiring", WIRING]);
    const procs = Array.from({ length: 6 }, (_, i) =>
      Bun.spawn([...LAB_CMD, "lab", "pod", "add", "node1", `rtc${i + 1}`, "--name", name], { stdout: "pipe", stderr: "pipe" }),
    );
    const codes = await Promise.all(procs.map((p) => p.exited));
    const stderr = await Promise.all(procs.map((p) => new Response(p.stderr).text()));
    expect(codes).toEqual([0, 0, 0, 0, 0, 0]);
    expect(podsInState(name)).toEqual(["rtc1", "rtc2", "rtc3", "rtc4", "rtc5", "rtc6"]);
    // The ones that had to wait said so.
    expect(stderr.filter((e) => e.includes(`waiting for lab "${name}" (another mncni lab command holds its lock)`)).length).toBeGreaterThan(0);
    expect(labJson<LabStatus>(name, ["status"]).pods.length).toBe(6);
    lab(name, ["down", "-q"]);
    expect(leftovers(name)).toEqual([]);
  });

  test("down removes a namespace with the lab's prefix that the state does not list", () => {
    const name = newLabName();
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "0", "--wiring", WIRING]);
    run(["ip", "netns", "add", `${name}-node1-lost`]);
    expect(readFileSync(`${LAB_ROOT}/${name}/state.json`, "utf8")).not.toContain("lost");
    const r = lab(name, ["down"]);
    expect(r.stderr).toContain("(1 not in the state file)");
    expect(existsSync(`/run/netns/${name}-node1-lost`)).toBe(false);
    expect(leftovers(name)).toEqual([]);
  });

  test("down finds namespaces of a lab whose state file is gone", () => {
    const name = newLabName();
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "1", "--wiring", WIRING]);
    run(["rm", "-f", `${LAB_ROOT}/${name}/state.json`]);
    expect(lab(name, ["down", "-q"]).stdout).toContain(`lab "${name}" removed`);
    expect(leftovers(name)).toEqual([]);
  });

  test("node add and pod add print their result on the same stream (stdout)", () => {
    const name = newLabName();
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "0", "--wiring", WIRING]);
    const node = lab(name, ["node", "add", "node2"]);
    const pod = lab(name, ["pod", "add", "node2"]);
    expect(node.stdout).toContain("node node2 added");
    expect(node.stdout).toContain("0 pods");
    expect(pod.stdout).toContain("pod node2/pod1 added");
    expect(node.stderr).not.toContain("added");
    lab(name, ["down", "-q"]);
  });
});

describe("an interrupted up", () => {
  test.each(["SIGINT", "SIGKILL"] as const)("(%s) shows as incomplete in status and list, and down removes it", async (signal) => {
    const name = newLabName();
    const proc = Bun.spawn([...LAB_CMD, "lab", "up", "--name", name, "-q", "--nodes", "4", "--pods-per-node", "3", "--wiring", WIRING], { stdout: "ignore", stderr: "ignore" });
    const deadline = Date.now() + 20_000;
    while (!existsSync(`/run/netns/${name}-node2`) && Date.now() < deadline) await Bun.sleep(5);
    expect(existsSync(`/run/netns/${name}-node2`)).toBe(true);
    proc.kill(signal);
    await proc.exited;
    const st = labJson<LabStatus>(name, ["status"]);
    expect(st.complete).toBe(false);
    expect(lab(name, ["status"]).stdout).toContain("INCOMPLETE");
    const listed = (JSON.parse(run([...LAB_CMD, "lab", "list", "--json"]).stdout) as { name: string; complete?: boolean }[]).find((l) => l.name === name);
    expect(listed?.complete).toBe(false);
    lab(name, ["down", "-q"]);
    expect(leftovers(name)).toEqual([]);
  });

  test("a complete lab says so", () => {
    const name = newLabName();
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "0", "--wiring", WIRING]);
    expect(labJson<LabStatus>(name, ["status"]).complete).toBe(true);
    expect(lab(name, ["status"]).stdout).not.toContain("INCOMPLETE");
    lab(name, ["down", "-q"]);
  });
});
