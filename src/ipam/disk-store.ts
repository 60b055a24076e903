// host-local's on-disk format: dataDir/<network>/<ip> holding "<containerId>\r\n<ifname>",
// last_reserved_ip.<rangeSet>, and a `lock` file taken with flock(2). Unlike host-local,
// a reservation file is never visible half-written: its content goes to a temp file first
// which is then link(2)ed to the address name (atomic, EEXIST when taken). See README.md.
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";

import { CniError, ErrorCode } from "../cni/errors.ts";
import { networkNameProblem, safeJoin } from "../cni/names.ts";
import { closeFd, errno, errnoName, LOCK_EX, O_CREAT, O_RDONLY, openFd, sym } from "../sys/libc.ts";
import { formatIp, parseIp, type Ip } from "./ip.ts";
import { ownedBy, type AttachmentKey, type Listing, type Reservation, type Store } from "./store.ts";

export const LINE_BREAK = "\r\n";
export const LOCK_FILE = "lock";
export const LAST_RESERVED_PREFIX = "last_reserved_ip.";
/** Temp files exist only while their writer holds the lock; any seen under the lock are stale. */
export const TEMP_PREFIX = ".mncni-tmp.";
const EINTR = 4;

const codeOf = (e: unknown) => (e as NodeJS.ErrnoException | undefined)?.code;

function ioError(what: string, e: unknown): CniError {
  return new CniError(ErrorCode.IOFailure, `cannot ${what}: ${(e as Error).message}`, "", { cause: e });
}

/** Parses a reservation file; host-local trims whitespace around the whole content. */
export function parseReservation(ip: Ip, content: string): Reservation | undefined {
  const text = content.trim();
  if (text === "") return undefined;
  const nl = text.indexOf("\n");
  if (nl < 0) return { ip, containerId: text };
  return { ip, containerId: text.slice(0, nl).trim(), ifname: text.slice(nl + 1).trim() };
}

export function formatReservation(key: AttachmentKey): string {
  return key.containerId.trim() + LINE_BREAK + key.ifname;
}

export class DiskStore implements Store {
  readonly dir: string;
  private fd = -1;

  constructor(dataDir: string, network: string) {
    const why = networkNameProblem(network);
    if (why) throw new CniError(ErrorCode.InvalidNetworkConfig, `cannot use network name "${network}" for IPAM state: ${why}`);
    this.dir = safeJoin(dataDir, network);
  }

  /** False before the first reservation of this network, so DEL/CHECK need not create it. */
  exists(): boolean {
    return existsSync(this.dir);
  }

  lock(): void {
    if (this.fd >= 0) throw new Error(`lock of ${this.dir} taken twice`);
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw ioError(`create IPAM directory "${this.dir}"`, e);
    }
    const path = this.path(LOCK_FILE);
    let fd: number;
    try {
      fd = openFd(path, O_RDONLY | O_CREAT, 0o644);
    } catch (e) {
      throw ioError(`open IPAM lock "${path}"`, e);
    }
    for (;;) {
      if (sym.flock(fd, LOCK_EX) === 0) break;
      const err = errno();
      if (err === EINTR) continue;
      closeFd(fd);
      throw new CniError(ErrorCode.IOFailure, `cannot lock IPAM state "${path}": flock: ${errnoName(err)}`);
    }
    this.fd = fd;
    this.removeStaleTemps();
  }

  unlock(): void {
    // Closing the only descriptor of the open file description drops the flock.
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }

  reserve(ip: Ip, key: AttachmentKey): boolean {
    const tmp = this.writeTemp(formatReservation(key));
    try {
      linkSync(tmp, this.path(formatIp(ip)));
      return true;
    } catch (e) {
      if (codeOf(e) === "EEXIST") return false;
      throw ioError(`reserve IP "${formatIp(ip)}" in "${this.dir}"`, e);
    } finally {
      this.unlinkQuietly(tmp);
    }
  }

  release(ip: Ip): boolean {
    try {
      unlinkSync(this.path(formatIp(ip)));
      return true;
    } catch (e) {
      if (codeOf(e) === "ENOENT") return false;
      throw ioError(`release IP "${formatIp(ip)}" in "${this.dir}"`, e);
    }
  }

  releaseByKey(key: AttachmentKey): Ip[] {
    const owned = this.list().reservations.filter((r) => ownedBy(r, key));
    return owned.filter((r) => this.release(r.ip)).map((r) => r.ip);
  }

  list(): Listing {
    const out: Listing = { reservations: [], unreadable: [] };
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if (codeOf(e) === "ENOENT") return out;
      throw ioError(`list IPAM directory "${this.dir}"`, e);
    }
    for (const name of names) {
      const ip = parseIp(name);
      // Only canonical names are reservations (host-local writes Go's canonical text).
      if (!ip || formatIp(ip) !== name) continue;
      try {
        const r = parseReservation(ip, readFileSync(this.path(name), "utf8"));
        if (r) out.reservations.push(r);
        else out.unreadable.push({ ip, error: `reservation file "${this.path(name)}" is empty` });
      } catch (e) {
        if (codeOf(e) === "ENOENT") continue;
        out.unreadable.push({ ip, error: `cannot read reservation file "${this.path(name)}": ${(e as Error).message}` });
      }
    }
    return out;
  }

  lastReserved(rangeSet: number): Ip | undefined {
    try {
      return parseIp(readFileSync(this.path(LAST_RESERVED_PREFIX + rangeSet), "utf8").trim());
    } catch {
      // Only round robin is lost without it, exactly as host-local tolerates.
      return undefined;
    }
  }

  setLastReserved(rangeSet: number, ip: Ip): void {
    const tmp = this.writeTemp(formatIp(ip));
    try {
      renameSync(tmp, this.path(LAST_RESERVED_PREFIX + rangeSet));
    } catch (e) {
      this.unlinkQuietly(tmp);
      throw ioError(`record the last reserved IP in "${this.dir}"`, e);
    }
  }

  checkWritable(): void {
    this.unlinkQuietly(this.writeTemp("probe"));
  }

  private path(name: string): string {
    return safeJoin(this.dir, name);
  }

  private writeTemp(content: string): string {
    const tmp = this.path(`${TEMP_PREFIX}${process.pid}.${Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("hex")}`);
    try {
      writeFileSync(tmp, content, { flag: "wx", mode: 0o644 });
    } catch (e) {
      this.unlinkQuietly(tmp);
      throw ioError(`write to IPAM directory "${this.dir}"`, e);
    }
    return tmp;
  }

  private removeStaleTemps(): void {
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const n of names) if (n.startsWith(TEMP_PREFIX)) this.unlinkQuietly(this.path(n));
  }

  private unlinkQuietly(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // Already gone, or left for removeStaleTemps() of the next locked operation.
    }
  }
}
