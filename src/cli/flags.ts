// The CLI's side of the flag parser (src/base/flags.ts, which prints nothing): --help and usage
// errors printed the same way for every command. Commands import the parser from here too.
import { helpText, HELP, parseFlags, UsageError, type CommandSpec, type FlagTable, type Parsed } from "../base/flags.ts";
import { say, sayError } from "./output.ts";

export { helpText, HELP, parseFlags, UsageError, type CommandSpec, type FlagSpec, type FlagTable, type FlagValues, type Parsed } from "../base/flags.ts";

/** Prints a usage error the same way for every command; the exit status of a usage error. */
export function reportUsageError(e: UsageError): number {
  sayError(`${e.command}: ${e.message}\nRun \`${e.command} --help\` for its usage.`);
  return 2;
}

/**
 * The whole cycle for a command: parse, print --help, report a usage error. Returns either
 * the parsed arguments or the exit status to end with.
 */
export function parseOrExit<T extends FlagTable>(spec: CommandSpec<T>, argv: string[]): Parsed<T> | number {
  try {
    const p = parseFlags(spec, argv);
    if (p === HELP) {
      say(helpText(spec));
      return 0;
    }
    return p;
  } catch (e) {
    if (e instanceof UsageError) return reportUsageError(e);
    throw e;
  }
}
