// sys/files.ts against the file system as node:fs sees it (the independent view), in a
// throwaway directory.
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as files from "../../src/sys/files.ts";
import type { SysError } from "../../src/sys/libc.ts";

const dir = fs.mkdtempSync(`${tmpdir()}/mncni-files-`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as SysError).code;
  }
  return undefined;
};

describe("sys/files", () => {
  test("write, append, read; exclusive creation fails on an existing file", () => {
    const f = `${dir}/a`;
    files.writeText(f, "héllo", { mode: 0o640 });
    expect(fs.readFileSync(f, "utf8")).toBe("héllo");
    expect(fs.statSync(f).mode & 0o777).toBe(0o640 & ~process.umask());
    files.writeText(f, "x");
    expect(fs.readFileSync(f, "utf8")).toBe("x");
    files.writeText(f, "yz", { append: true });
    expect(files.readText(f)).toBe("xyz");
    expect(codeOf(() => files.writeText(f, "", { exclusive: true }))).toBe("EEXIST");
    // In place: overwritten from the start and cut to the new length (the same inode).
    const ino = fs.statSync(f).ino;
    files.writeText(f, "10.244.1.10", { inPlace: true });
    files.writeText(f, "10.244.1.9", { inPlace: true });
    expect(fs.readFileSync(f, "utf8")).toBe("10.244.1.9");
    files.writeText(f, "fd00::1234", { inPlace: true });
    expect(fs.readFileSync(f, "utf8")).toBe("fd00::1234");
    expect(fs.statSync(f).ino).toBe(ino);
    files.writeText(`${dir}/new-in-place`, "10.0.0.2", { inPlace: true, mode: 0o644 });
    expect(fs.readFileSync(`${dir}/new-in-place`, "utf8")).toBe("10.0.0.2");
    expect(fs.statSync(`${dir}/new-in-place`).mode & 0o777).toBe(0o644 & ~process.umask());
    expect(codeOf(() => files.readText(`${dir}/missing`))).toBe("ENOENT");
    const big = "0123456789abcdef".repeat(10_000);
    fs.writeFileSync(`${dir}/big`, big);
    expect(files.readText(`${dir}/big`)).toBe(big);
    fs.writeFileSync(`${dir}/bigger`, big + big);
    expect(files.readBytes(`${dir}/bigger`).equals(fs.readFileSync(`${dir}/bigger`))).toBe(true);
    expect(files.readBytes("/sys/kernel/btf/vmlinux").equals(fs.readFileSync("/sys/kernel/btf/vmlinux"))).toBe(true);
    expect(files.readText("/proc/self/comm").length).toBeGreaterThan(0);
  });

  test("a sysctl reads after a file of several MiB (the BTF a program load reads): /proc/sys refuses reads of 4 MiB and more", () => {
    const big = `${dir}/big`;
    const bytes = Buffer.alloc(6 << 20, 7);
    bytes[bytes.length - 1] = 9;
    fs.writeFileSync(big, bytes);
    expect(files.readBytes(big).equals(bytes)).toBe(true);
    // The root namespace's, only read: what the agent reads before programming forwarding.
    expect(files.readText("/proc/sys/net/ipv4/ip_forward")).toBe(fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8"));
  });

  test("link, rename, unlink, exists", () => {
    files.writeText(`${dir}/l1`, "1");
    files.link(`${dir}/l1`, `${dir}/l2`);
    expect(fs.statSync(`${dir}/l2`).ino).toBe(fs.statSync(`${dir}/l1`).ino);
    expect(codeOf(() => files.link(`${dir}/l1`, `${dir}/l2`))).toBe("EEXIST");
    files.rename(`${dir}/l2`, `${dir}/l3`);
    expect([fs.existsSync(`${dir}/l2`), files.exists(`${dir}/l3`)]).toEqual([false, true]);
    files.unlink(`${dir}/l3`);
    expect(files.exists(`${dir}/l3`)).toBe(false);
    expect(codeOf(() => files.unlink(`${dir}/l3`))).toBe("ENOENT");
  });

  test("mkdir (recursive or not), readDir, removeTree", () => {
    files.mkdir(`${dir}/t/u/v`, { recursive: true, mode: 0o755 });
    files.mkdir(`${dir}/t/u/v`, { recursive: true });
    expect(fs.statSync(`${dir}/t/u/v`).isDirectory()).toBe(true);
    expect(codeOf(() => files.mkdir(`${dir}/t/u/v`))).toBe("EEXIST");
    expect(codeOf(() => files.mkdir(`${dir}/nope/x`))).toBe("ENOENT");
    const names = Array.from({ length: 700 }, (_, i) => `n${i}-${"x".repeat(i % 50)}`);
    for (const n of names) fs.writeFileSync(`${dir}/t/u/${n}`, "");
    expect(files.readDir(`${dir}/t/u`).sort()).toEqual(fs.readdirSync(`${dir}/t/u`).sort());
    expect(codeOf(() => files.readDir(`${dir}/t/u/n1-x`))).toBe("ENOTDIR");
    files.removeTree(`${dir}/t`);
    expect(fs.existsSync(`${dir}/t`)).toBe(false);
    files.removeTree(`${dir}/t`);
    files.writeText(`${dir}/plain`, "");
    files.removeTree(`${dir}/plain`);
    expect(fs.existsSync(`${dir}/plain`)).toBe(false);
  });

  test("stat and access", () => {
    files.writeText(`${dir}/s`, "12345");
    const st = files.stat(`${dir}/s`);
    const node = fs.statSync(`${dir}/s`, { bigint: true });
    expect([st.size, st.ino, st.isFile, st.isDirectory]).toEqual([5, node.ino, true, false]);
    expect(files.stat(dir).isDirectory).toBe(true);
    expect(files.stat(dir).dev).toBe(files.stat(`${dir}/s`).dev);
    expect(files.stat("/proc/thread-self/ns/net").ino).toBe(fs.statSync("/proc/thread-self/ns/net", { bigint: true }).ino);
    expect(codeOf(() => files.access(`${dir}/s`, files.X_OK))).toBe("EACCES");
    fs.chmodSync(`${dir}/s`, 0o755);
    files.access(`${dir}/s`, files.X_OK);
  });
});
