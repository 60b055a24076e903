// Commands made of subcommands (`mncni`, `mncni lab`, `mncni lab node`): one dispatcher, so
// every level answers --help, names an unknown verb and reports usage errors the same way.
import { say, sayError } from "./output.ts";
import { reportUsageError, UsageError } from "./flags.ts";

export interface Subcommand {
  summary: string;
  /** Shown in the overview after the verb, e.g. "<node> [<name>]". */
  args?: string;
  /** Internal (the lab's probes and echo servers): left out of the overview. */
  hidden?: boolean;
  run: (argv: string[]) => Promise<number>;
}

export interface Group {
  /** As typed, e.g. "mncni lab". */
  name: string;
  intro?: string;
  outro?: string;
  verbs: Record<string, Subcommand>;
  /** Nothing after the group's name: print the overview and succeed (true), or a usage error. */
  bareIsHelp?: boolean;
}

function groupHelp(g: Group): string {
  const shown = Object.entries(g.verbs).filter(([, c]) => !c.hidden);
  const left = shown.map(([verb, c]) => `${verb}${c.args ? ` ${c.args}` : ""}`);
  const w = Math.max(...left.map((l) => l.length)) + 2;
  return [
    ...(g.intro ? [g.intro, ""] : []),
    `Usage: ${g.name} <command> [flags]`,
    "",
    ...shown.map(([, c], i) => `  ${left[i]!.padEnd(w)}${c.summary}`),
    "",
    `Run \`${g.name} <command> --help\` for the flags of a command.`,
    ...(g.outro ? ["", g.outro] : []),
  ].join("\n");
}

const verbList = (g: Group) => {
  const vs = Object.keys(g.verbs).filter((v) => !g.verbs[v]!.hidden);
  return `${vs.slice(0, -1).join(", ")} or ${vs[vs.length - 1]}`;
};

/**
 * Flags may come before the verb (`mncni lab node --name x add node4`): they are handed to
 * the verb's own parser, after it. The verb is the first argument that names one.
 */
function verbFirst(g: Group, argv: string[]): string[] {
  if (!argv[0]?.startsWith("-") || argv[0] === "--help" || argv[0] === "-h") return argv;
  const i = argv.findIndex((a) => Object.hasOwn(g.verbs, a));
  return i < 0 ? argv : [argv[i]!, ...argv.slice(0, i), ...argv.slice(i + 1)];
}

export async function dispatch(g: Group, argv: string[]): Promise<number> {
  const [verb, ...rest] = verbFirst(g, argv);
  if (verb === "--help" || verb === "-h" || verb === "help" || (verb === undefined && g.bareIsHelp)) {
    say(groupHelp(g));
    return 0;
  }
  const cmd = verb !== undefined && Object.hasOwn(g.verbs, verb) ? g.verbs[verb] : undefined;
  if (!cmd) {
    sayError(`${g.name}: ${verb === undefined ? "missing command" : `unknown command "${verb}"`}: must be ${verbList(g)}\n\n${groupHelp(g)}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) return reportUsageError(e);
    throw e;
  }
}
