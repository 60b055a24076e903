// Cross-check with the Go reference host-local sharing one dataDir: the same file format,
// round robin continued across both, each releasing the other's reservations, and the
// same lock file serializing both when they run at once.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { REF_CNI_DIR } from "../helpers/binary.ts";
import { ipamAdd, ipamCheck, ipamDel, parseIpamConfig } from "../../src/ipam/index.ts";
import { finish, hostLocal, reservationFiles, spawnAllocator } from "./processes.ts";
import { cleanupDataDirs, tempDataDir } from "./tmp.ts";

afterAll(cleanupDataDirs);

const haveHostLocal = existsSync(`${REF_CNI_DIR}/host-local`);

describe.skipIf(!haveHostLocal)("interoperability with host-local", () => {
  const ranges = [[{ subnet: "10.40.0.0/24" }], [{ subnet: "fd00:40::/64" }]];

  test("shares reservations, round robin and format both ways", async () => {
    const dataDir = tempDataDir();
    const ipamSection = { type: "host-local", ranges, dataDir };
    const netconf = { cniVersion: "1.0.0", name: "pods", type: "bridge", ipam: ipamSection };
    const hl = async (command: "ADD" | "DEL" | "CHECK", containerId: string) => {
      const r = await finish(hostLocal({ command, containerId, conf: netconf }));
      if (r.code !== 0) throw new Error(`host-local ${command} ${containerId}: ${r.stdout}${r.stderr}`);
      return r.stdout ? JSON.parse(r.stdout) : undefined;
    };
    const conf = parseIpamConfig({ ...ipamSection, type: "mncni-ipam" });
    const key = (containerId: string) => ({ network: "pods", containerId, ifname: "eth0" });

    const hl1 = await hl("ADD", "hl1");
    await hl("ADD", "hl2");
    expect(hl1.ips.map((i: { address: string }) => i.address)).toEqual(["10.40.0.2/24", "fd00:40::2/64"]);

    // Ours continues host-local's round robin and reads its reservations.
    expect(ipamAdd(conf, key("m1")).ips!.map((i) => i.address)).toEqual(["10.40.0.4/24", "fd00:40::4/64"]);
    ipamCheck(conf, key("hl1"), ["10.40.0.2/24", "fd00:40::2/64"]);
    expect(() => ipamAdd(conf, key("hl1"))).toThrow("already holds 10.40.0.2");

    // host-local continues ours and reads ours.
    const hl3 = await hl("ADD", "hl3");
    expect(hl3.ips.map((i: { address: string }) => i.address)).toEqual(["10.40.0.5/24", "fd00:40::5/64"]);
    await hl("CHECK", "m1");
    await hl("DEL", "m1");
    const dir = `${dataDir}/pods`;
    expect(existsSync(`${dir}/10.40.0.4`) || existsSync(`${dir}/fd00:40::4`)).toBe(false);

    // Byte-identical content and names for both writers.
    ipamAdd(conf, key("m2"));
    const files = reservationFiles(dir);
    expect(files.get("10.40.0.5")).toBe("hl3\r\neth0");
    expect(files.get("10.40.0.6")).toBe("m2\r\neth0");
    expect(files.get("fd00:40::6")).toBe("m2\r\neth0");
    expect(readFileSync(`${dir}/last_reserved_ip.0`, "utf8")).toBe("10.40.0.6");

    // Ours releases host-local's.
    ipamDel(conf, key("hl1"));
    expect(reservationFiles(dir).has("10.40.0.2")).toBe(false);
    expect([...reservationFiles(dir).keys()].sort()).toEqual(["10.40.0.3", "10.40.0.5", "10.40.0.6", "fd00:40::3", "fd00:40::5", "fd00:40::6"]);
  });

  test("host-local and mncni processes allocating at once never collide", async () => {
    const dataDir = tempDataDir();
    const ipamSection = { type: "host-local", ranges: [[{ subnet: "10.41.0.0/24" }]], dataDir };
    const netconf = { cniVersion: "1.0.0", name: "pods", type: "bridge", ipam: ipamSection };
    const procs = [];
    for (let i = 0; i < 12; i++) {
      procs.push(hostLocal({ command: "ADD", containerId: `hl${i}`, conf: netconf }));
      procs.push(spawnAllocator({ ...ipamSection, type: "mncni-ipam" }, "pods", `m${i}`, 1));
    }
    const results = await Promise.all(procs.map(finish));
    for (const r of results) expect(r.code).toBe(0);
    const files = reservationFiles(`${dataDir}/pods`);
    expect(files.size).toBe(24);
    const owners = [...files.values()];
    expect(new Set(owners).size).toBe(24);
    for (const o of owners) expect(o).toMatch(/^(hl|m)\d+(-0)?\r\neth0$/);
  }, 30_000);
});
