// The one error type of src/kernel: a failed netlink request, setns, open of a namespace
// or sysctl access, always carrying the errno and its symbolic name.
import { errnoName } from "../sys/libc.ts";

export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  /** What was attempted, e.g. `add veth "veth1234"`. */
  readonly op: string;
  /** The kernel's extended-ack text, when it sent one. */
  readonly extack?: string;

  constructor(op: string, errno: number, opts: { extack?: string; cause?: unknown } = {}) {
    const code = errnoName(errno);
    super(`cannot ${op}: ${code}${opts.extack ? ` (${opts.extack})` : ""}`, { cause: opts.cause });
    this.name = "NetlinkError";
    this.errno = errno;
    this.code = code;
    this.op = op;
    if (opts.extack) this.extack = opts.extack;
  }
}

/** True when err is a NetlinkError with one of the given codes ("EEXIST", ...). */
export function isErrno(err: unknown, ...codes: string[]): err is NetlinkError {
  return err instanceof NetlinkError && codes.includes(err.code);
}
