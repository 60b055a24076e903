// The public API on the real disk store: host-local's file format, path safety, crash
// leftovers, the standalone handlers and where requested IPs come from.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import type { CallContext } from "../../src/cni/plugin-spec.ts";
import type { CniEnv, NetConf } from "../../src/cni/types.ts";
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamHandlers, ipamStatus, parseIpamConfig, requestedIpsFrom } from "../../src/ipam/index.ts";
import { cleanupDataDirs, tempDataDir } from "./tmp.ts";
import { thrown } from "./thrown.ts";

afterAll(cleanupDataDirs);

const confFor = (dataDir: string, extra: object = {}) =>
  parseIpamConfig({ type: "mncni-ipam", ranges: [[{ subnet: "10.20.0.0/24" }], [{ subnet: "fd00:20::/64" }]], dataDir, ...extra });

describe("ipam on disk", () => {
  test("writes host-local's layout and content", () => {
    const dataDir = tempDataDir();
    const conf = confFor(dataDir, { routes: [{ dst: "0.0.0.0/0" }] });
    const r = ipamAdd(conf, { network: "pods", containerId: "ctr1", ifname: "eth0" });
    expect(r).toEqual({
      cniVersion: "",
      ips: [
        { address: "10.20.0.2/24", gateway: "10.20.0.1" },
        { address: "fd00:20::2/64", gateway: "fd00:20::1" },
      ],
      routes: [{ dst: "0.0.0.0/0" }],
    });
    const dir = `${dataDir}/pods`;
    expect(readdirSync(dir).sort()).toEqual([".mncni-flows", "10.20.0.2", "fd00:20::2", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
    // Flow marks (conntrack): both addresses are held.
    expect(readdirSync(`${dir}/.mncni-flows`).sort()).toEqual(["10.20.0.2", "fd00:20::2"]);
    expect(readFileSync(`${dir}/10.20.0.2`, "utf8")).toBe("ctr1\r\neth0");
    expect(readFileSync(`${dir}/fd00:20::2`, "utf8")).toBe("ctr1\r\neth0");
    expect(readFileSync(`${dir}/last_reserved_ip.1`, "utf8")).toBe("fd00:20::2");
  });

  test("reads legacy (container-ID-only) reservations and releases them on DEL", () => {
    const dataDir = tempDataDir();
    const conf = confFor(dataDir, { ranges: [[{ subnet: "10.20.0.0/24" }]] });
    ipamAdd(conf, { network: "pods", containerId: "x", ifname: "eth0" });
    writeFileSync(`${dataDir}/pods/10.20.0.3`, "old-ctr\n");
    expect(ipamAdd(conf, { network: "pods", containerId: "y", ifname: "eth0" }).ips![0].address).toBe("10.20.0.4/24");
    ipamCheck(conf, { network: "pods", containerId: "old-ctr", ifname: "eth0" }, ["10.20.0.3"]);
    ipamDel(conf, { network: "pods", containerId: "old-ctr", ifname: "eth0" });
    expect(existsSync(`${dataDir}/pods/10.20.0.3`)).toBe(false);
  });

  test("DEL is idempotent, also before anything was ever allocated", () => {
    const dataDir = tempDataDir();
    const conf = confFor(dataDir);
    const k = { network: "pods", containerId: "ctr1", ifname: "eth0" };
    ipamDel(conf, k);
    expect(existsSync(`${dataDir}/pods`)).toBe(false);
    ipamAdd(conf, k);
    ipamDel(conf, k);
    ipamDel(conf, k);
    expect(readdirSync(`${dataDir}/pods`).filter((n) => /^[0-9a-f]/.test(n) && !n.startsWith("last"))).toEqual([]);
  });

  test("untrusted names never escape dataDir", () => {
    const dataDir = tempDataDir();
    const conf = confFor(dataDir);
    for (const network of ["..", ".", "../evil", "a/b", "", "x\0y", "/abs", "-dash"]) {
      const e = thrown(() => ipamAdd(conf, { network, containerId: "c", ifname: "eth0" }));
      expect(e.code).toBe(7);
      expect(thrown(() => ipamDel(conf, { network, containerId: "c", ifname: "eth0" })).code).toBe(7);
      expect(thrown(() => ipamGc(conf, network, [])).code).toBe(7);
      expect(thrown(() => ipamStatus(conf, network)).code).toBe(50);
    }
    for (const containerId of ["", "../x", "a\r\nb", "a b"]) {
      expect(thrown(() => ipamAdd(conf, { network: "pods", containerId, ifname: "eth0" })).code).toBe(4);
    }
    for (const ifname of ["", "..", "a/b", "eth0\r\nx", "averyveryverylongname"]) {
      expect(thrown(() => ipamAdd(conf, { network: "pods", containerId: "c", ifname })).code).toBe(4);
    }
    // File names in the directory that are not canonical addresses are not reservations.
    ipamAdd(conf, { network: "pods", containerId: "c", ifname: "eth0" });
    writeFileSync(`${dataDir}/pods/010.20.0.9`, "intruder\r\neth0");
    expect(ipamGc(conf, "pods", [{ containerID: "c", ifname: "eth0" }])).toEqual([]);
    expect(existsSync(`${dataDir}/pods/010.20.0.9`)).toBe(true);
    expect(readdirSync(dataDir)).toEqual(["pods"]);
  });

  test("stale temp files of a killed writer are removed by the next operation", () => {
    const dataDir = tempDataDir();
    const conf = confFor(dataDir);
    ipamAdd(conf, { network: "pods", containerId: "a", ifname: "eth0" });
    writeFileSync(`${dataDir}/pods/.mncni-tmp.99999.deadbeef`, "b\r\neth0");
    ipamAdd(conf, { network: "pods", containerId: "b", ifname: "eth0" });
    expect(readdirSync(`${dataDir}/pods`).filter((n) => n.startsWith(".mncni-tmp."))).toEqual([]);
  });

  test("an unreadable (empty) reservation counts as taken; GC keeps and reports it", () => {
    const dataDir = tempDataDir();
    const conf = confFor(dataDir);
    ipamAdd(conf, { network: "pods", containerId: "a", ifname: "eth0" });
    writeFileSync(`${dataDir}/pods/10.20.0.3`, ""); // what a killed host-local can leave
    ipamAdd(conf, { network: "pods", containerId: "b", ifname: "eth0" });
    expect(readFileSync(`${dataDir}/pods/10.20.0.4`, "utf8")).toBe("b\r\neth0");
    const e = thrown(() => ipamGc(conf, "pods", [{ containerID: "b", ifname: "eth0" }]));
    expect(e.code).toBe(5);
    expect(e.message).toContain("1 failed (released 2)");
    expect(e.details).toContain("10.20.0.3");
    expect(existsSync(`${dataDir}/pods/10.20.0.3`)).toBe(true);
    expect(existsSync(`${dataDir}/pods/10.20.0.2`)).toBe(false);
  });

  test("status is 50 when the data directory cannot be written", () => {
    const dataDir = tempDataDir();
    writeFileSync(`${dataDir}/file`, "");
    const conf = confFor(`${dataDir}/file/sub`);
    const e = thrown(() => ipamStatus(conf, "pods"));
    expect(e.code).toBe(50);
    expect(e.message).toContain("IPAM state is not usable");
    ipamStatus(confFor(dataDir), "pods");
  });

  test("DNS comes from resolvConf or ipam.dns", () => {
    const dataDir = tempDataDir();
    writeFileSync(`${dataDir}/resolv.conf`, "# c\nnameserver 10.0.0.10\nnameserver fd00::10\nsearch a.svc b.svc\noptions ndots:5 edns0\ndomain cluster.local\n");
    const r = ipamAdd(confFor(dataDir, { resolvConf: `${dataDir}/resolv.conf` }), { network: "pods", containerId: "a", ifname: "eth0" });
    expect(r.dns).toEqual({ nameservers: ["10.0.0.10", "fd00::10"], search: ["a.svc", "b.svc"], options: ["ndots:5", "edns0"], domain: "cluster.local" });
    const r2 = ipamAdd(confFor(dataDir, { dns: { nameservers: ["1.1.1.1"] } }), { network: "pods", containerId: "b", ifname: "eth0" });
    expect(r2.dns).toEqual({ nameservers: ["1.1.1.1"] });
    const e = thrown(() => ipamAdd(confFor(dataDir, { resolvConf: `${dataDir}/nope` }), { network: "pods", containerId: "c", ifname: "eth0" }));
    expect(e.code).toBe(5);
  });
});

const env = (args: Record<string, string> = {}): CniEnv => ({
  command: "ADD",
  containerId: "ctr1",
  netns: "/run/netns/x",
  ifname: "eth0",
  args,
  rawArgs: "",
  path: [],
});

describe("requestedIpsFrom", () => {
  const base: NetConf = { cniVersion: "1.1.0", name: "pods", type: "mncni-ipam" };
  test("takes CNI_ARGS IP, args.cni.ips and runtimeConfig.ips together, canonical and deduplicated", () => {
    expect(requestedIpsFrom(base, env())).toBeUndefined();
    const conf = { ...base, args: { cni: { ips: ["10.0.0.7"] } }, runtimeConfig: { ips: ["FD00::0007/64", "10.0.0.7/24"] } };
    expect(requestedIpsFrom(conf, env({ IP: "10.0.0.5, 10.0.0.6" }))).toEqual(["10.0.0.5", "10.0.0.6", "10.0.0.7", "fd00::7"]);
  });
  test("names the bad source", () => {
    const e1 = thrown(() => requestedIpsFrom(base, env({ IP: "10.0.0.5,junk" })));
    expect([e1.code, e1.message.includes("CNI_ARGS")]).toEqual([4, true]);
    const e2 = thrown(() => requestedIpsFrom({ ...base, runtimeConfig: { ips: ["10.0.0.1", 5] } }, env()));
    expect([e2.code, e2.message.includes("runtimeConfig.ips[1]")]).toEqual([7, true]);
    const e3 = thrown(() => requestedIpsFrom({ ...base, args: { cni: { ips: "10.0.0.1" } } }, env()));
    expect([e3.code, e3.message.includes("args.cni.ips")]).toEqual([7, true]);
  });
});

describe("ipamHandlers", () => {
  test("add/check/gc/status/del through the handler interface", async () => {
    const dataDir = tempDataDir();
    const conf: NetConf = {
      cniVersion: "1.1.0",
      name: "pods",
      type: "mncni-ipam",
      ipam: { type: "mncni-ipam", ranges: [[{ subnet: "10.30.0.0/24" }]], dataDir },
      runtimeConfig: { ips: ["10.30.0.50/24"] },
    };
    const ctx = (c: NetConf, e = env()): CallContext => ({ env: e, conf: c, stdin: new Uint8Array() });
    const r = await ipamHandlers.add(ctx(conf));
    expect(r).toEqual({ cniVersion: "1.1.0", ips: [{ address: "10.30.0.50/24", gateway: "10.30.0.1" }], routes: [] });
    expect(r.interfaces).toBeUndefined();
    await ipamHandlers.check(ctx({ ...conf, prevResult: r }));
    const wrong = { ...r, ips: [{ address: "10.30.0.51/24" }] };
    expect((await Promise.resolve().then(() => ipamHandlers.check(ctx({ ...conf, prevResult: wrong }))).catch((e) => e)).code).toBe(100);
    await ipamHandlers.status(ctx(conf));
    expect((await Promise.resolve().then(() => ipamHandlers.gc(ctx(conf))).catch((e) => e)).code).toBe(7);
    await ipamHandlers.gc(ctx({ ...conf, "cni.dev/valid-attachments": [{ containerID: "ctr1", ifname: "eth0" }] }));
    expect(existsSync(`${dataDir}/pods/10.30.0.50`)).toBe(true);
    await ipamHandlers.del(ctx(conf));
    await ipamHandlers.del(ctx(conf));
    expect(existsSync(`${dataDir}/pods/10.30.0.50`)).toBe(false);
    await ipamHandlers.gc(ctx({ ...conf, "cni.dev/valid-attachments": [] }));
  });
});
