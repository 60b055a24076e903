// The agent's install step: the executable under its plugin names, or, when the native
// forwarder was built next to it, the forwarder as `mncni` and the executable as
// `mncni-core` (which the forwarder runs) and `mncni-ipam`. Real files in a temp dir.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { BinaryInstaller, installPlan } from "../../src/agent/install.ts";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(`/tmp/mncni-install-test-${process.pid}-`);
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
// /dev/shm is a tmpfs, /tmp is not on it here: link() across them fails, as from an image to a host path.
const oneFilesystem = statSync("/dev/shm").dev === statSync("/tmp").dev;

describe("install", () => {
  test("without a forwarder: the executable as mncni and mncni-ipam", () => {
    const src = tmp();
    writeFileSync(`${src}/mncni`, "core");
    expect(installPlan(`${src}/mncni`)).toEqual({ mncni: `${src}/mncni`, "mncni-ipam": `${src}/mncni` });
  });

  test("with dist/mncni-forward beside it: forwarder as mncni, executable as mncni-core and mncni-ipam; idempotent", () => {
    const src = tmp();
    const bin = tmp();
    writeFileSync(`${src}/mncni`, "core");
    writeFileSync(`${src}/mncni-forward`, "forwarder");
    const inst = new BinaryInstaller(`${src}/mncni`, bin);
    expect(inst.ensure().sort()).toEqual([`${bin}/mncni`, `${bin}/mncni-core`, `${bin}/mncni-ipam`]);
    expect(readdirSync(bin).sort()).toEqual(["mncni", "mncni-core", "mncni-ipam"]);
    expect(readFileSync(`${bin}/mncni`, "utf8")).toBe("forwarder");
    expect(readFileSync(`${bin}/mncni-core`, "utf8")).toBe("core");
    expect(readFileSync(`${bin}/mncni-ipam`, "utf8")).toBe("core");
    expect(inst.ensure()).toEqual([]);
  });

  test("an agent run from a bin dir it installed (as mncni-core) keeps the forwarder as mncni", () => {
    const bin = tmp();
    writeFileSync(`${bin}/mncni-core`, "core");
    writeFileSync(`${bin}/mncni`, "forwarder");
    expect(installPlan(`${bin}/mncni-core`)).toEqual({ mncni: `${bin}/mncni`, "mncni-core": `${bin}/mncni-core`, "mncni-ipam": `${bin}/mncni-core` });
    expect(new BinaryInstaller(`${bin}/mncni-core`, bin).ensure()).toEqual([`${bin}/mncni-ipam`]);
    expect(readFileSync(`${bin}/mncni`, "utf8")).toBe("forwarder");
  });

  test.skipIf(oneFilesystem)(`from another filesystem (a container image): the executable is copied once, its second name is a hard link to the copy${oneFilesystem ? " — skipped: /tmp and /dev/shm are one filesystem" : ""}`, () => {
    const src = mkdtempSync(`/dev/shm/mncni-install-test-${process.pid}-`);
    dirs.push(src);
    const bin = tmp();
    expect(statSync(src).dev).not.toBe(statSync(bin).dev);
    writeFileSync(`${src}/mncni`, "core");
    writeFileSync(`${src}/mncni-forward`, "forwarder");
    expect(new BinaryInstaller(`${src}/mncni`, bin).ensure().sort()).toEqual([`${bin}/mncni`, `${bin}/mncni-core`, `${bin}/mncni-ipam`]);
    expect(statSync(`${bin}/mncni-ipam`).ino).toBe(statSync(`${bin}/mncni-core`).ino);
    expect(statSync(`${bin}/mncni-core`).ino).not.toBe(statSync(`${src}/mncni`).ino);
    expect(readFileSync(`${bin}/mncni-ipam`, "utf8")).toBe("core");
  });
});
