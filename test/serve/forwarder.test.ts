// The native forwarder (src/forward/forward.c, dist/mncni-forward): what the agent installs
// as the plugin. It hands calls to the server, or runs mncni-core (the Bun executable next to
// it) with the same arguments, environment and stdin. Checked as a runtime sees it: the
// kernel state, the results, and the invocation log saying who ran each call.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { MNCNI_BIN } from "../helpers/binary.ts";
import { addrs, destroyAllNodes, hostVethOf, link, reservedFor, TestNode } from "../plugin/fixture.ts";
import { createNetns, deleteNetns, run } from "../helpers/netns.ts";
import { holdLock } from "../helpers/lock-holder.ts";
import { lastFor, logLines, servedNode, startServer, stopServers, untilConnected } from "./serve-fixture.ts";

const FORWARDER = resolve(dirname(MNCNI_BIN), "mncni-forward");

afterEach(stopServers);
afterAll(destroyAllNodes);

describe("native forwarder", () => {
  test("is built next to mncni (make build), with mncni-core beside it", () => {
    expect(existsSync(FORWARDER)).toBe(true);
    expect(existsSync(resolve(dirname(MNCNI_BIN), "mncni-core"))).toBe(true);
  });

  test("hands ADD, CHECK, DEL to the server: same wiring, logged with the forwarder's own phase", async () => {
    const { node, conf } = await servedNode({ plugin: FORWARDER });
    const pod = node.pod();
    const r = node.add(conf, { pod, id: "fw1" });
    expect(lastFor(node, "fw1", "ADD")?.served?.client?.native).toBeGreaterThanOrEqual(0);
    expect(addrs(pod, "eth0").sort()).toEqual(r.ips.map((i: { address: string }) => i.address).sort());
    expect(hostVethOf(node.ns, "mnbnet", "fw1")?.master).toBe("cbr0");
    expect(node.check(conf, r, { pod, id: "fw1" }).code).toBe(0);
    // An error answer keeps its exit code and JSON.
    const again = node.call("ADD", conf, { pod, id: "fw1" });
    expect(again.code).toBe(1);
    expect(again.json?.code).toBe(4);
    expect(node.del(conf, { pod, id: "fw1" }).code).toBe(0);
    expect(lastFor(node, "fw1", "DEL")?.served).toBeDefined();
    expect(link(pod, "eth0")).toBeUndefined();
    expect(reservedFor(node.dataDir, "fw1")).toEqual([]);
    node.destroy();
  });

  test("runs mncni-core with the same stdin when no server takes the call (none named, none listening, declined)", async () => {
    const node = new TestNode({ bin: FORWARDER });
    // A large config (300 KB of DNS search domains, echoed in the result) proves stdin is
    // handed to mncni-core whole.
    const search = Array.from({ length: 12_000 }, (_, i) => `d${i}.example`);
    const cases: [string, Record<string, unknown>][] = [
      ["noname", {}],
      ["nobody", { agentSocket: `${node.dir}/nobody.sock` }],
    ];
    for (const [id, extra] of cases) {
      const pod = node.pod();
      const r = node.add(node.conf({ extra: { ...extra, dns: { search } } }), { pod, id });
      expect(r.dns.search).toEqual(search);
      const line = lastFor(node, id, "ADD")!;
      expect(line.served).toBeUndefined();
      expect(line.phases?.runtime).toBeGreaterThan(0); // a Bun process ran it
      expect(addrs(pod, "eth0")).toHaveLength(2);
    }
    // A server in another network namespace declines; so does one the config does not name
    // at top level (the forwarder's text search found it nested).
    const elsewhere = createNetns("mnv");
    try {
      const foreign = `${node.dir}/foreign.sock`;
      await startServer(MNCNI_BIN, elsewhere, foreign);
      const own = `${node.dir}/own.sock`;
      await startServer(MNCNI_BIN, node.ns, own);
      for (const [id, extra] of [
        ["foreign", { agentSocket: foreign }],
        ["nested", { args: { note: { agentSocket: own } } }],
      ] as const) {
        const pod = node.pod();
        node.add(node.conf({ extra: { ...extra, dns: { search } } }), { pod, id });
        expect(lastFor(node, id, "ADD")?.served).toBeUndefined();
        expect(hostVethOf(node.ns, "mnbnet", id)).toBeDefined();
      }
    } finally {
      deleteNetns(elsewhere);
    }
    node.destroy();
  }, 30_000);

  test("VERSION, the CLI and the IPAM role (invoked as mncni-ipam) always go to mncni-core", async () => {
    const version = run([FORWARDER], { env: { PATH: "/usr/bin:/bin", CNI_COMMAND: "VERSION" } });
    expect(JSON.parse(version.stdout)).toEqual(JSON.parse(run([MNCNI_BIN], { env: { PATH: "/usr/bin:/bin", CNI_COMMAND: "VERSION" } }).stdout));
    expect(run([FORWARDER, "version"]).stdout).toMatch(/^mncni \d+\.\d+\.\d+/);
    expect(run([FORWARDER, "bogus-command"], { allowFail: true }).code).toBe(2);
    // The reference bridge runs mncni-ipam (a link to the forwarder here) with a config that
    // names a live server: the IPAM call must not be handed to the interface plugin's server.
    const { node, socket } = await servedNode({ plugin: FORWARDER });
    const pod = node.pod();
    const conf = node.conf({ type: "bridge", cniVersion: "1.0.0", extra: { bridge: "cbrfw", isGateway: true, agentSocket: socket } });
    const r = node.add(conf, { pod, id: "refbr" });
    expect(r.ips).toHaveLength(2);
    const ipamLine = logLines(node).find((l) => l.containerId === "refbr");
    expect(ipamLine).toMatchObject({ command: "ADD", outcome: "ok" });
    expect((ipamLine as { plugin?: string }).plugin).toBe("mncni-ipam");
    expect(ipamLine?.served).toBeUndefined();
    expect(node.del(conf, { pod, id: "refbr" }).code).toBe(0);
    node.destroy();
  });

  test("environment values reach the server exactly (quotes, backslashes, control characters)", async () => {
    const { node, conf } = await servedNode({ plugin: FORWARDER });
    const pod = node.pod();
    const name = 'we"ird\\name\twith\u0001ctl';
    node.add(conf, { pod, id: "esc", args: `K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=${name}` });
    const line = lastFor(node, "esc", "ADD") as { served?: object; podName?: string };
    expect(line.served).toBeDefined();
    expect(line.podName).toBe(name);
    node.destroy();
  });

  test("a server that dies mid-call: code 11 from mncni-core, the call not run again", async () => {
    const { node, conf, server } = await servedNode({ plugin: FORWARDER });
    const pod = node.pod();
    const holder = await holdLock(`${node.dataDir}/mnbnet/lock`);
    const call = node.spawn("ADD", conf, { pod, id: "cut" });
    await untilConnected(node.ns, server);
    server.kill("SIGKILL");
    const r = await call.done;
    await holder.release();
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ cniVersion: "1.1.0", code: 11, msg: expect.stringContaining("try again") });
    expect(lastFor(node, "cut", "ADD")).toMatchObject({ outcome: "error", code: 11 });
    expect(hostVethOf(node.ns, "mnbnet", "cut")).toBeUndefined();
    expect(reservedFor(node.dataDir, "cut")).toEqual([]);
    node.destroy();
  }, 20_000);

  test("a server that dies mid-DEL: the DEL (idempotent) is done by the plugin itself, code 0, nothing left", async () => {
    const { node, conf, server } = await servedNode({ plugin: FORWARDER });
    const pod = node.pod();
    node.add(conf, { pod, id: "deldie" });
    expect(hostVethOf(node.ns, "mnbnet", "deldie")).toBeDefined();
    expect(reservedFor(node.dataDir, "deldie")).not.toEqual([]);
    const holder = await holdLock(`${node.dataDir}/mnbnet/lock`);
    const call = node.spawn("DEL", conf, { pod, id: "deldie" });
    await untilConnected(node.ns, server);
    server.kill("SIGKILL");
    await holder.release();
    const r = await call.done;
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0, stderr: expect.stringContaining("doing the DEL here") });
    expect(hostVethOf(node.ns, "mnbnet", "deldie")).toBeUndefined();
    expect(reservedFor(node.dataDir, "deldie")).toEqual([]);
    node.destroy();
  }, 20_000);
});
