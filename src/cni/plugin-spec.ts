// What a plugin gives the protocol dispatcher (run.ts): its handlers, the context each call
// gets, and the hooks of a process that runs many calls. The dispatcher owns the
// environment, stdin, stdout and the exit code (the shape of the reference plugins' pkg/skel).
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

export interface PluginSpec {
  /** Name written to the invocation log ("mncni", "mncni-ipam"). */
  name: string;
  /**
   * The handlers, or a loader for them: VERSION and calls with bad input are then answered
   * without loading (and evaluating) the plugin's code, which is most of the start-up.
   */
  handlers: Handlers | (() => Promise<Handlers>);
  /**
   * Called once by a process that will run many calls (a resident server) before the first:
   * what the plugin may keep between calls, and how long a call may wait, is the plugin's
   * business, not the server's.
   */
  resident?(): Resident | void | Promise<Resident | void>;
}

/** A plugin's side of running in a resident server. */
export interface Resident {
  /**
   * Asked after each call. undefined: its answer stands. Otherwise the call stopped at
   * something it must not wait for on the server's thread (a lock held by another process):
   * the promise settles when that may be free, and true means run the call again (it rolled
   * back, so running it again is what a runtime's retry would do). The plugin bounds how long
   * one call may be retried, counted from startedAt (performance.now() at its first run).
   */
  again?(startedAt: number): Promise<boolean> | undefined;
  /**
   * Work a call left for after its answer (what would only delay it), run by the server once
   * the answer is sent (or, when it waits for link deletions, meanwhile) and before the next
   * call starts. A failure is logged; the answer stands.
   */
  afterAnswer?(): void | Promise<void>;
}
