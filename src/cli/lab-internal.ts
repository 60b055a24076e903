// Hidden `mncni lab` subcommands the lab runs inside its namespaces: the echo servers and
// probes of `lab check`, a GET of the agent's /readyz for `lab status`, and the
// request/response pair of bench/dataplane.ts (`_rr`).
import { say, sayError, sayJsonLine } from "./output.ts";
import { withNetns } from "../kernel/index.ts";
import { plainAddress, probe, serveEcho } from "../lab/echo.ts";
import { runRr, serveRr } from "../lab/rr.ts";
import { ECHO_PORT } from "../lab/topology.ts";
import { parseOrExit, type CommandSpec, type FlagTable } from "./flags.ts";
import { JSON_OUT, TIMEOUT } from "./lab-common.ts";

/** Hidden: the echo servers of `lab check`, one listener in each --netns (pods, external host). */
const ECHO = {
  name: "mncni lab _echo",
  summary: "internal: echo servers of `lab check`",
  flags: {
    port: { type: "int", default: ECHO_PORT, min: 1, max: 65535, help: "port" },
    lab: { type: "string", help: "the lab (a marker for finding the process)" },
    ipv6: { type: "boolean", help: "listen on :: (both families)" },
    netns: { type: "list", value: "NAME", help: "namespace to listen in" },
  },
} satisfies CommandSpec<FlagTable>;

export async function cmdEcho(argv: string[]): Promise<number> {
  const p0 = parseOrExit(ECHO, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  // "::" takes both families (v4 clients arrive as ::ffff:a.b.c.d); a v4-only lab keeps 0.0.0.0.
  const hostname = v.ipv6 ? "::" : "0.0.0.0";
  // The listening socket belongs to the namespace it was created in; Bun.listen creates it synchronously.
  const servers = v.netns.length ? v.netns.map((n) => withNetns(`/run/netns/${n}`, () => serveEcho({ port: v.port, hostname }))) : [serveEcho({ port: v.port, hostname })];
  await new Promise<void>((res) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => res());
  });
  for (const s of servers) s.stop();
  return 0;
}

/** Hidden: connects to each host:port and prints the source address each echo server saw. */
const PROBE = {
  name: "mncni lab _probe",
  args: "<host:port>...",
  summary: "internal: probes of `lab check`",
  flags: { json: JSON_OUT, timeout: TIMEOUT },
  positionals: { min: 1, max: Infinity, names: ["<host:port>"] },
} satisfies CommandSpec<FlagTable>;

export async function cmdProbe(argv: string[]): Promise<number> {
  const p0 = parseOrExit(PROBE, argv);
  if (typeof p0 === "number") return p0;
  const results = await probe(p0.positionals, p0.flags.timeout);
  if (p0.flags.json) sayJsonLine(results);
  else for (const r of results) say(`${r.target}\t${r.ok ? `seen as ${plainAddress(r.seen)}` : `FAIL ${r.error}`}\t${r.ms} ms`);
  return results.every((r) => r.ok) ? 0 : 1;
}

/** Hidden: GET a URL from inside a namespace (the agent's /readyz); exit 0 on 2xx. */
const HTTP = {
  name: "mncni lab _http",
  args: "<url>",
  summary: "internal: GET a URL (the agent's /readyz)",
  flags: {},
  positionals: { min: 1, max: 1, names: ["<url>"] },
} satisfies CommandSpec<FlagTable>;

export async function cmdHttp(argv: string[]): Promise<number> {
  const p0 = parseOrExit(HTTP, argv);
  if (typeof p0 === "number") return p0;
  try {
    const res = await fetch(p0.positionals[0]!, { signal: AbortSignal.timeout(2000) });
    // Long enough for an agent's /readyz with its warnings (lab status lists them).
    say(`${res.status} ${(await res.text()).trim().slice(0, 4000)}`);
    return res.ok ? 0 : 1;
  } catch (e) {
    say(`error ${(e as Error).message}`);
    return 1;
  }
}

/** Hidden: request/response latency (bench/dataplane.ts): --serve in each --netns, or a client of host:port. */
const RR = {
  name: "mncni lab _rr",
  args: "[<host:port>]",
  summary: "internal: TCP request/response latency (server with --serve, else client)",
  flags: {
    serve: { type: "boolean", help: "echo server in each --netns" },
    port: { type: "int", default: 7878, min: 1, max: 65535, help: "server port" },
    netns: { type: "list", value: "NAME", help: "namespace to listen in" },
    count: { type: "int", default: 2000, min: 1, max: 10_000_000, help: "timed round trips" },
    size: { type: "int", default: 1, min: 1, max: 65536, help: "request and reply size, bytes" },
  },
  positionals: { min: 0, max: 1, names: ["<host:port>"] },
} satisfies CommandSpec<FlagTable>;

export async function cmdRr(argv: string[]): Promise<number> {
  const p0 = parseOrExit(RR, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  if (v.serve) {
    const s = serveRr({ port: v.port, netns: v.netns });
    await new Promise<void>((res) => {
      for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => res());
    });
    s.stop();
    return 0;
  }
  const target = p0.positionals[0];
  if (!target) {
    sayError("mncni lab _rr: give <host:port>, or --serve");
    return 2;
  }
  const i = target.lastIndexOf(":");
  try {
    sayJsonLine(await runRr({ host: target.slice(0, i), port: Number(target.slice(i + 1)), count: v.count, size: v.size }));
    return 0;
  } catch (e) {
    sayError(`mncni lab _rr: cannot measure "${target}": ${(e as Error).message}`);
    return 1;
  }
}
