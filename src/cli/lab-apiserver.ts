// `mncni lab apiserver`: the lab's Kubernetes API server in the foreground (until SIGTERM or
// SIGINT), and `mncni lab kubeconfig`: the path of its admin kubeconfig, for kubectl.
import { existsSync } from "node:fs";
import { say } from "./output.ts";
import { adminKubeconfig, startLabApiServer } from "../lab/apiserver/lab-server.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, locked, parse } from "./lab-common.ts";
import { onKubernetes, startApiServer, stopApiServer } from "../lab/control-plane.ts";
import { loadState, requireState } from "../lab/state.ts";
import { serviceAdmission } from "../lab/services.ts";

const APISERVER = {
  name: "mncni lab apiserver",
  summary: "Serve the lab's Kubernetes API on 127.0.0.1 (HTTPS, lab CA, a token per component, deploy/'s RBAC); state in the lab's directory. See docs/lab.md.",
  flags: {
    name: NAME,
    port: { type: "int", value: "PORT", default: 0, min: 0, max: 65535, help: "port on 127.0.0.1 (default: the port it had, else any free one)" },
    "lab-address": { type: "string", value: "IP", help: "also listen on this address (same port) inside --lab-netns: the nodes' way in (`lab up` passes the router's)" },
    "lab-netns": { type: "string", value: "NETNS", help: "the network namespace of --lab-address (a name under /run/netns)" },
  },
} satisfies CommandSpec<FlagTable>;

const KUBECONFIG = {
  name: "mncni lab kubeconfig",
  summary: "Print the path of the admin kubeconfig of the lab's API server (KUBECONFIG=$(mncni lab kubeconfig) kubectl get nodes).",
  flags: { name: NAME },
} satisfies CommandSpec<FlagTable>;

export async function cmdApiserver(argv: string[]): Promise<number> {
  const p = parse(APISERVER, argv);
  if (typeof p === "number") return p;
  const address = p.flags["lab-address"];
  const netns = p.flags["lab-netns"];
  if ((address === undefined) !== (netns === undefined)) throw new Error("cannot listen in the lab: --lab-address and --lab-netns go together");
  const srv = startLabApiServer(p.flags.name, p.flags.port, address && netns ? { hostname: address, netns: `/run/netns/${netns}` } : undefined, serviceAdmission(p.flags.name, loadState));
  say(`mncni lab apiserver: serving ${srv.url} for lab ${p.flags.name}; kubeconfig: ${adminKubeconfig(p.flags.name)}`);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  srv.stop();
  return 0;
}

export async function cmdKubeconfig(argv: string[]): Promise<number> {
  const p = parse(KUBECONFIG, argv);
  if (typeof p === "number") return p;
  const path = adminKubeconfig(p.flags.name);
  if (!existsSync(path)) throw new Error(`lab ${p.flags.name} has no API server: it runs in labs made with \`mncni lab up\` (not --source dir), or start one with "mncni lab apiserver --name ${p.flags.name}"`);
  say(path);
  return 0;
}

const RESTART = {
  name: "mncni lab restart-apiserver",
  summary: "Restart the lab's API server (as a control-plane restart): its objects, port and tokens are kept in the lab's directory; the agents' and controllers' watches resume or relist.",
  flags: { name: NAME },
} satisfies CommandSpec<FlagTable>;

export async function cmdRestartApiserver(argv: string[]): Promise<number> {
  const p = parse(RESTART, argv);
  if (typeof p === "number") return p;
  const pid = await locked(p.flags.name, false, async () => {
    const s = requireState(p.flags.name);
    if (!onKubernetes(s)) throw new Error(`cannot restart the API server of lab "${s.name}": it runs on --source dir (no API server)`);
    await stopApiServer(s);
    await startApiServer(s);
    return s.apiserverPid;
  });
  say(`lab ${p.flags.name}: API server restarted (pid ${pid}), objects, port and tokens kept`);
  return 0;
}
