// Hidden `mncni lab _dns`: the lab's DNS server process (src/lab/dns/lab-dns.ts), run by `lab
// up` inside the router's namespace until `lab down` ends it.
import { say, sayError } from "./output.ts";
import { runLabDns, DNS_PORT } from "../lab/dns/lab-dns.ts";
import { parseOrExit, type CommandSpec, type FlagTable } from "./flags.ts";

const DNS = {
  name: "mncni lab _dns",
  summary: "internal: the lab's DNS server (Kubernetes DNS specification, cluster.local)",
  flags: {
    lab: { type: "string", help: "the lab (a marker for finding the process)" },
    source: { type: "string", value: "KIND:ARG", help: "where Services and EndpointSlices come from (as the agent's --source)" },
    listen: { type: "list", value: "ADDRESS", help: "address to listen on (UDP and TCP)" },
    port: { type: "int", default: DNS_PORT, min: 1, max: 65535, help: "port" },
  },
} satisfies CommandSpec<FlagTable>;

export async function cmdDns(argv: string[]): Promise<number> {
  const p0 = parseOrExit(DNS, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  if (!v.source || v.listen.length === 0) {
    sayError("mncni lab _dns: give --source and at least one --listen");
    return 2;
  }
  const server = await runLabDns({ source: v.source, addresses: v.listen, port: v.port, log: (l) => say(`${new Date().toISOString()} ${l}`) });
  await new Promise<void>((res) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => res());
  });
  server.stop();
  return 0;
}
