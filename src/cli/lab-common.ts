// What every `mncni lab` subcommand shares: the common flags, parsing with the root check,
// the lab's lock, and how errors end a command.
import { sayError } from "./output.ts";
import { lockLab } from "../lab/lock.ts";
import { DEFAULT_LAB } from "../lab/topology.ts";
import { parseOrExit, UsageError, type CommandSpec, type FlagTable } from "./flags.ts";

export const NAME = { type: "string", value: "NAME", default: DEFAULT_LAB, help: "the lab to act on ($MNCNI_LAB sets the default)" } as const;
export const QUIET = { type: "boolean", short: "q", help: "no progress lines (the result line is still printed)" } as const;
export const JSON_OUT = { type: "boolean", help: "machine-readable output" } as const;
export const TIMEOUT = { type: "int", value: "MS", default: 2000, min: 1, max: 600_000, help: "connect timeout of each probe, in milliseconds" } as const;

/** Every lab command drives namespaces, netlink and nftables: without root it would give wrong answers. */
function requireRoot(cmd: string): void {
  const uid = process.getuid?.();
  if (uid !== 0) throw new Error(`cannot run "${cmd}" as uid ${uid}: lab commands need root (network namespaces, netlink, nftables); run it with sudo`);
}

/** Parses, prints --help or a usage error, then checks for root: the parsed flags, or the exit status. */
export function parse<T extends FlagTable>(spec: CommandSpec<T>, argv: string[]) {
  const p = parseOrExit(spec, argv);
  if (typeof p !== "number") requireRoot(spec.name);
  return p;
}

/** Runs fn holding the lab's lock (changes to a lab are serialised; see src/lab/lock.ts). */
export async function locked<R>(lab: string, create: boolean, fn: () => Promise<R>): Promise<R> {
  using _lock = lockLab(lab, { create });
  return await fn();
}

/** Errors of a lab command (not usage errors: the dispatcher words those) end it with status 1. */
export function reported(verb: string, fn: (argv: string[]) => Promise<number>): (argv: string[]) => Promise<number> {
  return async (argv) => {
    try {
      return await fn(argv);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      sayError(`\nmncni lab ${verb}: ${(e as Error).message}`);
      return 1;
    }
  };
}
