// The protocol dispatcher (the shape of the reference plugins' pkg/skel): it owns the
// environment, stdin, stdout and the exit code. Plugins only provide Handlers.
import type { CniEnv, NetConf, Result } from "./types.ts";

/** Everything a handler gets for one invocation. */
export interface CallContext {
  env: CniEnv;
  /** The parsed plugin config (generic fields validated; plugin fields untouched). */
  conf: NetConf;
  /** The exact stdin bytes, forwarded unchanged to delegated plugins. */
  stdin: Uint8Array;
  /** In a resident server: work the handler may leave to be finished after it returns. */
  later?: Later;
}

/** Work a resident server finishes after the handler returned, before it answers the call. */
export interface Later {
  /** Delete this link (by index) off the main thread; the handler has unplugged it. */
  deleteLink(index: number): void;
}

export interface Handlers {
  add(ctx: CallContext): Promise<Result> | Result;
  del(ctx: CallContext): Promise<void> | void;
  check(ctx: CallContext): Promise<void> | void;
  status(ctx: CallContext): Promise<void> | void;
  gc(ctx: CallContext): Promise<void> | void;
}
