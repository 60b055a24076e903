// CNI_* environment parsing from one table: which verbs need each variable and how it is
// validated. All problems are reported at once, naming every variable (code 4).
import { CniError, ErrorCode } from "./errors.ts";
import { containerIdProblem, ifnameProblem } from "./names.ts";
import type { CniCommand, CniEnv } from "./types.ts";

const COMMANDS: readonly CniCommand[] = ["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"];

interface EnvVar {
  name: string;
  requiredFor: readonly CniCommand[];
  validate?: (value: string) => string | undefined;
}

const VARS: readonly EnvVar[] = [
  { name: "CNI_CONTAINERID", requiredFor: ["ADD", "DEL", "CHECK"], validate: containerIdProblem },
  { name: "CNI_NETNS", requiredFor: ["ADD", "CHECK"] },
  { name: "CNI_IFNAME", requiredFor: ["ADD", "DEL", "CHECK"], validate: ifnameProblem },
  { name: "CNI_ARGS", requiredFor: [], validate: argsProblem },
  { name: "CNI_PATH", requiredFor: ["GC"] },
];

function argsProblem(raw: string): string | undefined {
  for (const pair of raw.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) return `"${pair}" is not KEY=VALUE`;
  }
  return undefined;
}

export function parseCniArgs(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of raw.split(";")) {
    const eq = pair.indexOf("=");
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND ?? "";
  if (!command) throw new CniError(ErrorCode.InvalidEnv, "required env variable CNI_COMMAND is missing");
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(ErrorCode.InvalidEnv, `invalid env variable CNI_COMMAND ${JSON.stringify(command)}: must be one of ${COMMANDS.join(", ")}`);
  }
  const cmd = command as CniCommand;
  const problems: string[] = [];
  for (const v of VARS) {
    const value = env[v.name];
    if (value === undefined || value === "") {
      if (v.requiredFor.includes(cmd)) problems.push(`required env variable ${v.name} is missing`);
      continue;
    }
    // VERSION uses nothing but the command (the reference skel validates nothing else for it).
    const why = cmd === "VERSION" ? undefined : v.validate?.(value);
    if (why) problems.push(`invalid env variable ${v.name} ${JSON.stringify(value)}: ${why}`); // untrusted: quote and escape
  }
  if (problems.length > 0) throw new CniError(ErrorCode.InvalidEnv, problems.join("; "));
  const rawArgs = env.CNI_ARGS ?? "";
  return {
    command: cmd,
    containerId: env.CNI_CONTAINERID ?? "",
    netns: env.CNI_NETNS ?? "",
    ifname: env.CNI_IFNAME ?? "",
    args: parseCniArgs(rawArgs),
    rawArgs,
    path: (env.CNI_PATH ?? "").split(":").filter(Boolean),
  };
}
