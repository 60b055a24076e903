// The resident process's memory of IPAM directories (the CNI server turns it on): operations
// after the first are served from memory, and any change made by another process (a plugin
// running alone, host-local, an admin) makes the next operation read the directory again.
// Other processes are real ones (sh), the changes real files, the watch real inotify.
import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readdirSync, symlinkSync } from "node:fs";
import { spawnSync } from "bun";
import { CniError } from "../../src/cni/errors.ts";
import { ipamAdd, ipamCheck, ipamDel, parseIpamConfig } from "../../src/ipam/index.ts";
import { disableListingCache, enableListingCache, listingCache } from "../../src/ipam/listing-cache.ts";
import { cleanupDataDirs, tempDataDir } from "./tmp.ts";

afterAll(cleanupDataDirs);
beforeEach(enableListingCache);
afterEach(disableListingCache);

const confFor = (dataDir: string) => parseIpamConfig({ type: "mncni-ipam", ranges: [[{ subnet: "10.30.0.0/24" }]], dataDir });
const add = (dataDir: string, id: string) => ipamAdd(confFor(dataDir), { network: "pods", containerId: id, ifname: "eth0" }).ips![0]!.address;
const del = (dataDir: string, id: string) => ipamDel(confFor(dataDir), { network: "pods", containerId: id, ifname: "eth0" });
const sh = (script: string) => expect(spawnSync(["sh", "-c", script]).exitCode).toBe(0);
const stats = () => ({ ...listingCache()!.stats });

describe("IPAM listing memory", () => {
  test("after the first operation, allocations are served from memory and stay round robin", () => {
    const d = tempDataDir();
    expect(add(d, "c1")).toBe("10.30.0.2/24");
    const before = stats();
    expect(add(d, "c2")).toBe("10.30.0.3/24");
    del(d, "c1");
    // Round robin: the freed .2 is not handed out again at once.
    expect(add(d, "c3")).toBe("10.30.0.4/24");
    expect(stats().recalled - before.recalled).toBe(3);
    expect(stats().read).toBe(before.read);
    expect(readdirSync(`${d}/pods`).filter((n) => n.startsWith("10.")).sort()).toEqual(["10.30.0.3", "10.30.0.4"]);
    // An attachment holding an address is still refused a second one from memory.
    expect(() => add(d, "c2")).toThrow(/already holds 10\.30\.0\.3/);
  });

  test("a reservation written by another process is seen: no second address for its owner", () => {
    const d = tempDataDir();
    add(d, "c1");
    sh(`printf 'c9\\r\\neth0' > ${d}/pods/10.30.0.9`);
    const before = stats();
    let err: unknown;
    try {
      add(d, "c9");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).message).toContain("already holds 10.30.0.9");
    expect(stats().read).toBe(before.read + 1);
  });

  test("a reservation removed by another process is seen by CHECK and reused by round robin", () => {
    const d = tempDataDir();
    add(d, "c1");
    add(d, "c2");
    sh(`rm ${d}/pods/10.30.0.3 && printf '10.30.0.254' > ${d}/pods/last_reserved_ip.0`);
    expect(() => ipamCheck(confFor(d), { network: "pods", containerId: "c2", ifname: "eth0" })).toThrow(/no address is reserved/);
    // last_reserved changed behind our back too: the next address follows the file, not memory.
    expect(add(d, "c3")).toBe("10.30.0.3/24");
  });

  test("a directory removed and recreated by another process is read again", () => {
    const d = tempDataDir();
    add(d, "c1");
    sh(`rm -rf ${d}/pods && mkdir ${d}/pods && printf 'cX\\r\\neth0' > ${d}/pods/10.30.0.2`);
    expect(add(d, "c1")).toBe("10.30.0.3/24");
    // And memory works again on the new directory.
    const before = stats();
    expect(add(d, "c2")).toBe("10.30.0.4/24");
    expect(stats().recalled).toBe(before.recalled + 1);
  });

  test("a change to one network's directory does not stale another's memory, and vice versa", () => {
    const a = tempDataDir();
    const b = tempDataDir();
    add(a, "a1");
    add(b, "b1");
    sh(`printf 'bZ\\r\\neth0' > ${b}/pods/10.30.0.7`);
    add(a, "a2"); // drains b's event: b must still be read again
    expect(() => add(b, "bZ")).toThrow(/already holds 10\.30\.0\.7/);
  });

  test("two spellings of one directory (a symlink) share one memory: a DEL through either releases", () => {
    // As the issue found it: ADD x1 via ipam/, ADD x2 via ipamlink/, DEL x2 via ipam/.
    const root = tempDataDir();
    const real = `${root}/ipam`;
    const link = `${root}/ipamlink`;
    sh(`mkdir ${real}`);
    symlinkSync(real, link);
    add(real, "x1");
    add(link, "x2");
    del(real, "x2");
    const owners = readdirSync(`${real}/pods`).filter((n) => n.startsWith("10."));
    expect(owners).toEqual(["10.30.0.2"]); // x1's only: x2's file was removed
    // And a later ADD through the link does not hand out x1's address again.
    expect(add(link, "x3")).not.toBe("10.30.0.2/24");
  });
});
