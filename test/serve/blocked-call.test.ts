// A served call that cannot proceed must not stop the server: a CNI_NETNS that is not a
// network namespace (a FIFO would block open(2) for good) is refused without opening it for
// reading, and a network's IPAM lock held by another process is waited for a bounded time,
// then answered with code 11. In both cases the server answers the next call.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { addrs, destroyAllNodes, link, reservedFor } from "../plugin/fixture.ts";
import { lastFor, servedNode, stopServers, untilConnected } from "./serve-fixture.ts";

afterEach(stopServers);
afterAll(destroyAllNodes);

// Bounds how long a broken server could hold a call here (the plugin then answers code 11
// "no answer"); a working one answers long before.
const PATIENCE = { MNCNI_AGENT_TIMEOUT_MS: "10000" };

describe("a served call that cannot proceed", () => {
  test("CNI_NETNS naming a FIFO, a directory or a plain file: code 4 naming CNI_NETNS; the server serves the next call", async () => {
    const { node, conf } = await servedNode();
    const fifo = `${node.dir}/fifo-netns`;
    Bun.spawnSync(["mkfifo", fifo]);
    const dir = `${node.dir}/dir-netns`;
    mkdirSync(dir);
    const file = `${node.dir}/file-netns`;
    writeFileSync(file, "");
    for (const [path, why] of [
      [fifo, "a FIFO"],
      [dir, "a directory"],
      [file, "not a namespace"],
    ] as const) {
      const r = await node.spawn("ADD", conf, { id: "notns", env: { CNI_NETNS: path, ...PATIENCE } }).done;
      expect(r.code).toBe(1);
      expect(r.json?.code).toBe(4);
      expect(r.json?.msg).toContain(`CNI_NETNS "${path}"`);
      expect(r.json?.msg).toContain(why);
      expect(lastFor(node, "notns", "ADD")?.served).toBeDefined(); // the server answered it
      expect(reservedFor(node.dataDir, "notns")).toEqual([]);
    }
    const pod = node.pod();
    node.add(conf, { pod, id: "next" });
    expect(lastFor(node, "next", "ADD")?.served).toBeDefined();
    expect(addrs(pod, "eth0")).toHaveLength(2);
    node.destroy();
  }, 30_000);

  test("an IPAM lock held by another process: the server stays live, answers code 11 while it is still held, and serves another network", async () => {
    const { node, conf, socket, server } = await servedNode();
    mkdirSync(`${node.dataDir}/mnbnet`, { recursive: true });
    // Held far longer than the server's bound and the plugin's patience (-o: by flock itself,
    // so killing it frees the lock).
    const holder = Bun.spawn(["flock", "-o", `${node.dataDir}/mnbnet/lock`, "sh", "-c", "echo held; exec sleep 60"], { stdout: "pipe" });
    try {
      await holder.stdout.getReader().read();
      const pod = node.pod();
      const locked = node.spawn("ADD", conf, { pod, id: "locked", env: PATIENCE });
      await untilConnected(node.ns, server);
      // While that call waits, the server's thread is free: it accepts the next connection
      // (what a thread blocked in flock cannot do; an agent's health checks and reconciles
      // run on the same thread).
      const other = node.conf({ name: "mnbother", ranges: [[{ subnet: "10.98.0.0/24" }]], routes: [], extra: { agentSocket: socket, bridge: "cbr1" } });
      const pod2 = node.pod();
      const elsewhere = node.spawn("ADD", other, { pod: pod2, id: "elsewhere", env: PATIENCE });
      await untilConnected(node.ns, server, 2);
      expect(locked.proc.exitCode).toBeNull(); // the locked call is still waiting meanwhile

      const r = await locked.done;
      expect(holder.exitCode).toBeNull(); // answered while the lock is still held
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ code: 11, msg: expect.stringContaining("cannot lock IPAM state") });
      expect(lastFor(node, "locked", "ADD")?.served).toBeDefined();
      expect(link(pod, "eth0")).toBeUndefined(); // rolled back

      // The other network (its own IPAM directory and bridge) is served while the lock is held.
      const r2 = await elsewhere.done;
      expect(holder.exitCode).toBeNull();
      expect(r2.code).toBe(0);
      expect(lastFor(node, "elsewhere", "ADD")?.served).toBeDefined();
      expect(addrs(pod2, "eth0")).toEqual(["10.98.0.2/24"]);
    } finally {
      holder.kill("SIGKILL");
      await holder.exited;
    }
    // The lock free again, the runtime's retry succeeds.
    const pod3 = node.pod();
    node.add(conf, { pod: pod3, id: "locked" });
    expect(addrs(pod3, "eth0")).toHaveLength(2);
    node.destroy();
  }, 40_000);

  test("a lock freed while a served call waits: the call goes through", async () => {
    const { node, conf, server } = await servedNode();
    mkdirSync(`${node.dataDir}/mnbnet`, { recursive: true });
    const holder = Bun.spawn(["flock", "-o", `${node.dataDir}/mnbnet/lock`, "sh", "-c", "echo held; exec sleep 60"], { stdout: "pipe" });
    await holder.stdout.getReader().read();
    const pod = node.pod();
    const call = node.spawn("ADD", conf, { pod, id: "freed", env: PATIENCE });
    await untilConnected(node.ns, server);
    holder.kill("SIGKILL");
    await holder.exited;
    const r = await call.done;
    expect(r.code).toBe(0);
    expect(addrs(pod, "eth0")).toHaveLength(2);
    expect(lastFor(node, "freed", "ADD")).toMatchObject({ outcome: "ok", served: expect.anything() });
    node.destroy();
  }, 40_000);
});
