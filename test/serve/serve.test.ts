// The resident CNI server (`mncni serve`, also run by the agent): plugin processes whose
// config names its socket hand their calls over. Checked as a runtime sees it (the compiled
// plugin in a node namespace) and with independent views: the wiring in the kernel, the
// IPAM files, and the invocation log telling which process ran each call.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { createConnection } from "node:net";
import { addrs, destroyAllNodes, hostVethOf, hostVeths, link, ping, reservations, reservedFor, TestNode } from "../plugin/fixture.ts";
import { createNetns, deleteNetns } from "../helpers/netns.ts";
import { holdLock } from "../helpers/lock-holder.ts";
import { parseReply, SERVE_PROTOCOL } from "../../src/serve/protocol.ts";
import { lastFor, logLines, servedNode, startServer, stopServers, untilConnected, untilLogged } from "./serve-fixture.ts";

afterEach(stopServers);
afterAll(destroyAllNodes);

describe("mncni serve", () => {
  test("served ADD, CHECK, STATUS, DEL wire and unwire the pod exactly as the plugin alone does", async () => {
    const { node, conf } = await servedNode();
    const alone = node.conf();
    const [p1, p2] = [node.pod(), node.pod()];

    const r1 = node.add(conf, { pod: p1, id: "served1" });
    const r2 = node.add(alone, { pod: p2, id: "alone1" });
    // The log says which process ran each call: the server (queue wait recorded) or the plugin.
    expect(lastFor(node, "served1", "ADD")?.served).toBeDefined();
    expect(lastFor(node, "alone1", "ADD")?.served).toBeUndefined();
    expect(lastFor(node, "alone1", "ADD")?.phases?.runtime).toBeGreaterThan(0);

    // Same shape of result, addresses really configured, veth on the bridge, traffic flows.
    expect(r1.interfaces.map((i: { name: string }) => i.name)).toEqual(["cbr0", hostVethOf(node.ns, "mnbnet", "served1")!.ifname, "eth0"]);
    expect(Object.keys(r1).sort()).toEqual(Object.keys(r2).sort());
    const a1 = r1.ips.map((i: { address: string }) => i.address);
    expect(addrs(p1, "eth0").sort()).toEqual([...a1].sort());
    expect(hostVethOf(node.ns, "mnbnet", "served1")?.master).toBe("cbr0");
    expect(reservedFor(node.dataDir, "served1")).toHaveLength(2);
    expect(ping(p2, a1[0].split("/")[0])).toBe(true);

    expect(node.check(conf, r1, { pod: p1, id: "served1" }).code).toBe(0);
    expect(lastFor(node, "served1", "CHECK")?.served).toBeDefined();
    expect(node.call("STATUS", conf).code).toBe(0);

    const del = node.del(conf, { pod: p1, id: "served1" });
    expect(del.code).toBe(0);
    expect(lastFor(node, "served1", "DEL")?.served).toBeDefined();
    expect(hostVethOf(node.ns, "mnbnet", "served1")).toBeUndefined();
    expect(link(p1, "eth0")).toBeUndefined();
    expect(reservedFor(node.dataDir, "served1")).toEqual([]);
    node.destroy();
  });

  test("served DEL is idempotent (pod namespace gone, no CNI_NETNS, twice) and GC sweeps stale attachments", async () => {
    const { node, conf } = await servedNode();
    const [gone, kept, stale] = [node.pod(), node.pod(), node.pod()];
    for (const [pod, id] of [[gone, "gone"], [kept, "kept"], [stale, "stale"]] as const) node.add(conf, { pod, id });
    node.deletePod(gone); // the runtime removed the namespace first: the veth pair went with it
    for (const pod of [gone, undefined]) {
      const r = node.del(conf, { pod, id: "gone" });
      expect({ code: r.code, out: r.stdout }).toEqual({ code: 0, out: "" });
    }
    expect(reservedFor(node.dataDir, "gone")).toEqual([]);
    const gc = node.call("GC", { ...conf, "cni.dev/valid-attachments": [{ containerID: "kept", ifname: "eth0" }] });
    expect(gc.code).toBe(0);
    expect(logLines(node).filter((l) => l.command === "GC").pop()?.served).toBeDefined();
    expect(hostVeths(node.ns).map((l) => l.ifalias)).toEqual(["mncni/mnbnet/kept/eth0"]);
    expect([...reservations(node.dataDir).values()].every((owner) => owner.startsWith("kept"))).toBe(true);
    expect(reservedFor(node.dataDir, "kept")).toHaveLength(2);
    node.destroy();
  });

  test("errors come back with the plugin's codes; rollback happens in the server", async () => {
    const { node, socket } = await servedNode();
    const pod = node.pod();
    const bad = node.call("ADD", node.conf({ extra: { agentSocket: socket, bogus: 1 } }), { pod, id: "bad1" });
    expect(bad.code).toBe(1);
    expect(bad.json).toMatchObject({ code: 2, msg: expect.stringContaining('"bogus"') });
    expect(lastFor(node, "bad1", "ADD")).toMatchObject({ outcome: "error", code: 2, served: expect.anything() });

    // An exhausted range after the veth would be created: nothing is left behind.
    const tiny = node.conf({ extra: { agentSocket: socket }, ranges: [[{ subnet: "10.99.0.0/30" }]], routes: [] });
    node.add(tiny, { pod, id: "fill1" });
    const other = node.pod();
    const full = node.call("ADD", tiny, { pod: other, id: "fill2" });
    expect(full.json?.code).toBe(11);
    expect(link(other, "eth0")).toBeUndefined();
    expect(hostVethOf(node.ns, "mnbnet", "fill2")).toBeUndefined();
    node.destroy();
  });

  test("the server follows a network's IPAM section as it changes between calls (parsed sections are kept by their text)", async () => {
    const { node, socket } = await servedNode();
    const conf = (ranges: object[][]) => node.conf({ extra: { agentSocket: socket }, ranges, routes: [] });
    const [p1, p2, p3] = [node.pod(), node.pod(), node.pod()];
    const first = node.add(conf([[{ subnet: "10.98.1.0/24" }]]), { pod: p1, id: "sec1" });
    expect(first.ips.map((i: { address: string }) => i.address)).toEqual(["10.98.1.2/24"]);
    // Same network, another range: the next address comes from the new section.
    const second = node.add(conf([[{ subnet: "10.98.2.0/24" }]]), { pod: p2, id: "sec2" });
    expect(second.ips.map((i: { address: string }) => i.address)).toEqual(["10.98.2.2/24"]);
    expect(addrs(p2, "eth0")).toEqual(["10.98.2.2/24"]);
    expect(lastFor(node, "sec2", "ADD")?.served).toBeDefined();
    // A broken section is refused every time, naming the field, after a good one was kept.
    for (let i = 0; i < 2; i++) {
      const bad = node.call("ADD", conf([[{ subnet: "10.98.3.0/33" }]]), { pod: p3, id: `sec3-${i}` });
      expect(bad.json).toMatchObject({ code: 7, msg: expect.stringContaining("ipam.ranges[0]") });
      expect(link(p3, "eth0")).toBeUndefined();
    }
    node.destroy();
  });

  test("a relative or too long agentSocket is a config error naming the field", () => {
    const node = new TestNode();
    const pod = node.pod();
    for (const agentSocket of ["run/cni.sock", `/${"x".repeat(120)}`]) {
      const r = node.call("ADD", node.conf({ extra: { agentSocket } }), { pod, id: "badsock" });
      expect(r.json).toMatchObject({ code: 7, msg: expect.stringContaining("agentSocket") });
    }
    expect(link(pod, "eth0")).toBeUndefined();
    node.destroy();
  });

  test("with no server (no socket file, or a stale one) the plugin does the call itself", async () => {
    const node = new TestNode();
    const socket = `${node.dir}/cni.sock`;
    const pod = node.pod();
    node.add(node.conf({ extra: { agentSocket: socket } }), { pod, id: "nosrv" });
    expect(lastFor(node, "nosrv", "ADD")?.served).toBeUndefined();
    expect(addrs(pod, "eth0")).toHaveLength(2);

    // A server killed with SIGKILL leaves its socket file: connecting is refused.
    const srv = await startServer(node.bin, node.ns, socket);
    srv.kill("SIGKILL");
    await srv.exited;
    expect(existsSync(socket)).toBe(true);
    const pod2 = node.pod();
    node.add(node.conf({ extra: { agentSocket: socket } }), { pod: pod2, id: "stale" });
    expect(lastFor(node, "stale", "ADD")?.served).toBeUndefined();
    expect(addrs(pod2, "eth0")).toHaveLength(2);
    node.destroy();
  });

  test("a server in another network namespace declines: the pod is wired from the caller's node", async () => {
    const node = new TestNode();
    const elsewhere = createNetns("mnv");
    try {
      const socket = `${node.dir}/cni.sock`;
      await startServer(node.bin, elsewhere, socket);
      const pod = node.pod();
      node.add(node.conf({ extra: { agentSocket: socket } }), { pod, id: "foreign" });
      expect(lastFor(node, "foreign", "ADD")?.served).toBeUndefined();
      expect(hostVethOf(node.ns, "mnbnet", "foreign")).toBeDefined();
      expect(hostVeths(elsewhere)).toEqual([]);
      expect(link(elsewhere, "cbr0")).toBeUndefined();
    } finally {
      deleteNetns(elsewhere);
      node.destroy();
    }
  });

  test("a request from another build or protocol is declined, not run", async () => {
    const { node, socket } = await servedNode();
    // node:net: end() half-closes the way the plugin does (shutdown SHUT_WR).
    const ask = (req: object) =>
      new Promise<any>((resolve, reject) => {
        let got = "";
        const c = createConnection(socket, () => c.end(JSON.stringify(req)));
        c.on("data", (d) => (got += d.toString()));
        c.on("end", () => resolve(parseReply(got) ?? got));
        c.on("error", reject);
      });
    const env = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "x", CNI_NETNS: "/run/netns/none", CNI_IFNAME: "eth0" };
    const stdin = JSON.stringify(node.conf());
    expect(await ask({ protocol: SERVE_PROTOCOL, build: "another-build", netns: "net:[1]", env, stdin })).toEqual({ fallback: expect.stringContaining("another-build") });
    expect(await ask({ protocol: 99, build: "x", netns: "net:[1]", env, stdin })).toEqual({ fallback: expect.stringContaining("protocol 99") });
    expect(await ask({ garbage: true }).catch(() => ({}))).toEqual({ fallback: expect.any(String) });
    expect(hostVeths(node.ns)).toEqual([]);
    node.destroy();
  });

  test("20 plugin processes at once get unique addresses through one server", async () => {
    const { node, conf } = await servedNode();
    const pods = Array.from({ length: 20 }, () => node.pod());
    const adds = await Promise.all(pods.map((pod, i) => node.spawn("ADD", conf, { pod, id: `par${i}` }).done));
    for (const r of adds) expect(r.code).toBe(0);
    const v4 = pods.map((p) => addrs(p, "eth0").find((a) => !a.includes(":")));
    expect(new Set(v4).size).toBe(20);
    expect(reservations(node.dataDir).size).toBe(40);
    expect(logLines(node).filter((l) => l.command === "ADD" && l.served)).toHaveLength(20);
    const dels = await Promise.all(pods.map((pod, i) => node.spawn("DEL", conf, { pod, id: `par${i}` }).done));
    for (const r of dels) expect(r.code).toBe(0);
    expect(hostVeths(node.ns)).toEqual([]);
    expect(reservations(node.dataDir).size).toBe(0);
    node.destroy();
  });

  test("an ADD right behind a DEL of the same attachment gets a working veth (deletions go by index)", async () => {
    const { node, conf } = await servedNode();
    const pod = node.pod();
    for (let round = 0; round < 5; round++) {
      node.add(conf, { pod, id: "again" });
      // The DEL is logged before its veth is gone; start the ADD the moment it is.
      const before = logLines(node).length;
      const del = node.spawn("DEL", conf, { pod, id: "again" });
      while (logLines(node).length === before) await Bun.sleep(1);
      const add = node.spawn("ADD", conf, { pod, id: "again" });
      const [d, a] = await Promise.all([del.done, add.done]);
      expect(d.code).toBe(0);
      // The ADD may find eth0 still there (the DEL not finished yet): the runtime retries.
      if (a.code !== 0) {
        expect(a.json?.code).toBe(4);
        node.add(conf, { pod, id: "again" });
      }
      expect(hostVethOf(node.ns, "mnbnet", "again")?.master).toBe("cbr0");
      expect(addrs(pod, "eth0")).toHaveLength(2);
      expect(node.del(conf, { pod, id: "again" }).code).toBe(0);
    }
    node.destroy();
  }, 30_000);

  test("no answer in time: code 11; a call still queued when its plugin gave up is never run", async () => {
    const { node, conf, server } = await servedNode();
    const [p1, p2] = [node.pod(), node.pod()];
    const holder = await holdLock(`${node.dataDir}/mnbnet/lock`);
    // The first ADD waits for the lock inside the server; the second waits in its queue.
    const first = node.spawn("ADD", conf, { pod: p1, id: "slow1" });
    await untilConnected(node.ns, server);
    const second = node.spawn("ADD", conf, { pod: p2, id: "slow2", env: { MNCNI_AGENT_TIMEOUT_MS: "300" } });
    const r2 = await second.done;
    expect(r2.code).toBe(1);
    expect(r2.json).toMatchObject({ code: 11, msg: expect.stringContaining("no answer") });
    await holder.release();
    expect((await first.done).code).toBe(0);
    await untilLogged(server, "skipping ADD of slow2");
    expect(link(p2, "eth0")).toBeUndefined();
    expect(hostVethOf(node.ns, "mnbnet", "slow2")).toBeUndefined();
    expect(reservedFor(node.dataDir, "slow2")).toEqual([]);
    expect(addrs(p1, "eth0")).toHaveLength(2);
    node.destroy();
  }, 20_000);

  test("a server that dies mid-call gets the call answered with code 11, not run twice", async () => {
    const { node, conf, server: srv } = await servedNode();
    const pod = node.pod();
    // Hold the IPAM lock so the served ADD waits inside the server, then kill the server.
    const holder = await holdLock(`${node.dataDir}/mnbnet/lock`);
    const call = node.spawn("ADD", conf, { pod, id: "cut" });
    await untilConnected(node.ns, srv);
    srv.kill("SIGKILL");
    const r = await call.done;
    await holder.release();
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 11, msg: expect.stringContaining("try again") });
    expect(reservedFor(node.dataDir, "cut")).toEqual([]);
    expect(hostVethOf(node.ns, "mnbnet", "cut")).toBeUndefined();
    // The runtime retries: with the server gone, the plugin does it itself.
    node.add(conf, { pod, id: "cut" });
    expect(addrs(pod, "eth0")).toHaveLength(2);
    node.destroy();
  }, 20_000);

  test("the socket is root's alone; SIGTERM finishes the call in progress, removes the socket, and plugins then work alone", async () => {
    const { node, socket, conf, server: srv } = await servedNode();
    expect(statSync(socket).mode & 0o077).toBe(0); // no access for group or others
    // A call in progress (waiting for the IPAM lock) when SIGTERM arrives is still answered.
    const holder = await holdLock(`${node.dataDir}/mnbnet/lock`);
    const pod = node.pod();
    const inFlight = node.spawn("ADD", conf, { pod, id: "inflight" });
    await untilConnected(node.ns, srv);
    srv.kill("SIGTERM");
    // Let the lock go only once SIGTERM is sent: the call is in progress when it arrives.
    await holder.release();
    const r = await inFlight.done;
    expect(r.code).toBe(0);
    expect(lastFor(node, "inflight", "ADD")?.served).toBeDefined();
    expect(await srv.exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
    const pod2 = node.pod();
    node.add(conf, { pod: pod2, id: "after" });
    expect(lastFor(node, "after", "ADD")?.served).toBeUndefined();
    node.destroy();
  }, 20_000);
});
