// `mncni lab service add | list | remove`: the lab's Services (src/lab/services.ts), written
// through `lab apply`'s path, then the endpoint-slice controller's pass (src/lab/endpoint-slices.ts),
// under the lab's lock.
import { say, sayJson, sayRendered } from "./output.ts";
import { applyObjects, deleteObjects, parseLabelArgs } from "../lab/k8s-objects.ts";
import type { Obj } from "../lab/apiserver/kinds.ts";
import { syncEndpointSlices } from "../lab/endpoint-slices.ts";
import { listServices } from "../lab/service-list.ts";
import { findService, parseServicePorts, serviceObject, splitRef, type LabServiceType } from "../lab/services.ts";
import { requireState } from "../lab/state.ts";
import { formatLabServices } from "./text/lab-services.ts";
import { UsageError, type CommandSpec, type FlagTable } from "./flags.ts";
import { JSON_OUT, NAME, QUIET, locked, parse } from "./lab-common.ts";
import type { Group } from "./subcommands.ts";

const ADD = {
  name: "mncni lab service add",
  args: "<namespace>/<name>",
  summary: "Creates (or replaces) a Service: cluster IPs from the lab's Service CIDRs (10.96.0.0/16, fd00:96::/108), node ports from 30000-32767, a LoadBalancer address from 198.51.100.0/24 (2001:db8:100::/64) routed by the lab's router; EndpointSlices from the pods its selector matches.",
  flags: {
    name: NAME,
    selector: { type: "string", value: "k=v,...", help: "the pods of the Service's namespace it sends to (e.g. app=echo; the lab's pods all have app=echo and node=<node>)" },
    port: { type: "string", value: "[NAME=]PORT[:TARGET][/PROTO],...", help: "ports, e.g. http=80:7777/TCP (TARGET a number or a container port name; default PORT; PROTO TCP, UDP or SCTP, default TCP)" },
    type: { type: "string", default: "ClusterIP", choices: ["ClusterIP", "NodePort", "LoadBalancer"], help: "the Service type" },
    affinity: { type: "string", choices: ["ClientIP"], help: "sessionAffinity (timeout: the API's default, 10800 s)" },
    "traffic-policy": { type: "string", choices: ["Local"], help: "externalTrafficPolicy of a NodePort or LoadBalancer Service (source address kept; only nodes with an endpoint answer), internalTrafficPolicy of a ClusterIP one" },
    "ip-family": { type: "string", choices: ["IPv4", "IPv6"], help: "a single-stack Service of this family (default in a dual-stack lab: both, PreferDualStack)" },
    headless: { type: "boolean", help: "clusterIP None: no proxying, DNS answers the ready endpoints' addresses" },
    quiet: QUIET,
  },
  positionals: { min: 1, max: 1, names: ["<namespace>/<name>"] },
} satisfies CommandSpec<FlagTable>;

const LIST = {
  name: "mncni lab service list",
  summary: "The lab's Services: type, cluster IPs, LoadBalancer addresses, ports (port:nodePort/protocol→target), options and endpoints (ready, terminating, not ready).",
  flags: { name: NAME, json: JSON_OUT },
} satisfies CommandSpec<FlagTable>;

const REMOVE = {
  name: "mncni lab service remove",
  args: "<namespace>/<name>",
  summary: "Deletes a Service and its EndpointSlices.",
  flags: { name: NAME },
  positionals: { min: 1, max: 1, names: ["<namespace>/<name>"] },
} satisfies CommandSpec<FlagTable>;

function selectorFlag(v: string | undefined): Record<string, string> {
  if (!v) throw new UsageError(ADD.name, "--selector k=v,... is required (a Service without a selector gets no EndpointSlices from the lab)");
  const c = parseLabelArgs(v.split(",").filter((x) => x !== ""));
  if (c.remove.length || Object.keys(c.set).length === 0) throw new UsageError(ADD.name, `cannot use --selector "${v}": expected k=v,...`);
  return c.set;
}

export const SERVICE: Group = {
  name: "mncni lab service",
  verbs: {
    add: {
      args: "<ns>/<name> --selector k=v --port 80:7777/TCP",
      summary: "create or replace a Service",
      run: async (argv) => {
        const p0 = parse(ADD, argv);
        if (typeof p0 === "number") return p0;
        const v = p0.flags;
        const [namespace, name] = splitRef(p0.positionals[0]!);
        if (!v.port) throw new UsageError(ADD.name, "--port is required, e.g. --port http=80:7777/TCP");
        if (v.headless && v.type !== "ClusterIP") throw new UsageError(ADD.name, `cannot use --headless with --type ${v.type}: a headless Service has no address to expose`);
        const obj = serviceObject({
          namespace, name, selector: selectorFlag(v.selector), ports: parseServicePorts(v.port), type: v.type as LabServiceType,
          ...(v.affinity ? { affinity: "ClientIP" as const } : {}),
          ...(v["traffic-policy"] ? { trafficPolicy: "Local" as const } : {}),
          ...(v.headless ? { headless: true } : {}),
          ...(v["ip-family"] ? { ipFamily: v["ip-family"] as "IPv4" | "IPv6" } : {}),
        });
        const said = await locked(v.name, false, async () => {
          const s = requireState(v.name);
          const r = await applyObjects(s, [obj as Obj]);
          if (r.failed.length) throw new Error(r.failed.join("\n"));
          // The first line names the Service as the lab's commands do (Service NS/NAME created).
          return [...r.applied.map((l) => l.replace(/^service\//, `Service ${namespace}/`)), ...(await syncEndpointSlices(s))];
        });
        if (!v.quiet) for (const line of said.slice(1)) say(line);
        const svc = (await listServices(requireState(v.name))).find((x) => x.namespace === namespace && x.name === name)!;
        const where = [svc.headless ? "headless" : svc.clusterIPs.join(","), ...svc.loadBalancerIPs.map((ip) => `LoadBalancer ${ip}`), ...svc.ports.filter((p) => p.nodePort).map((p) => `node port ${p.nodePort}/${p.protocol}`)];
        say(`${said[0]}: ${where.join(", ")}; ${svc.endpoints.filter((e) => e.ready).length} ready endpoints`);
        return 0;
      },
    },
    list: {
      summary: "the lab's Services and their endpoints",
      run: async (argv) => {
        const p0 = parse(LIST, argv);
        if (typeof p0 === "number") return p0;
        const svcs = await listServices(requireState(p0.flags.name));
        if (p0.flags.json) sayJson(svcs);
        else sayRendered(svcs, formatLabServices);
        return 0;
      },
    },
    remove: {
      args: "<ns>/<name>",
      summary: "delete a Service and its EndpointSlices",
      run: async (argv) => {
        const p0 = parse(REMOVE, argv);
        if (typeof p0 === "number") return p0;
        const said = await locked(p0.flags.name, false, async () => {
          const s = requireState(p0.flags.name);
          const svc = await findService(s, p0.positionals[0]!);
          const r = await deleteObjects(s, [svc as Obj]);
          if (r.missing.length) throw new Error(r.missing.join("\n"));
          return [...r.deleted, ...(await syncEndpointSlices(s))];
        });
        for (const line of said) say(line);
        return 0;
      },
    },
  },
};
