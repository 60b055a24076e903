// `mncni lab service add` refusing what it cannot do: each bad flag or combination gets a
// message naming the flag and a non-zero exit, and leaves the lab's Services and
// EndpointSlices as they were (nothing half-created, nothing half-replaced). One small lab on
// the default (API server) source: the refusals come before or at admission, not per source.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { LabService } from "../../src/lab/service-list.ts";
import { until } from "../helpers/until.ts";
import { downAll, lab, labJson, newLabName } from "./lab-cli.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

describe("lab service add refusals", () => {
  const name = newLabName();
  const services = () => labJson<LabService[]>(name, ["service", "list"]);
  /** What a refusal must not change: every Service as listed (addresses, ports, options, endpoints). */
  const snapshot = () => JSON.stringify(services());

  beforeAll(async () => {
    lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "1"]);
    lab(name, ["service", "add", "default/kept", "-q", "--selector", "app=echo", "--port", "http=80:7777/TCP"]);
    // The endpoint-slice controller writes the endpoint on its own time: settled before any snapshot.
    await until("the pod is kept's ready endpoint", () => services()[0]?.endpoints.filter((e) => e.ready).length === 1, 60_000);
  });

  const refusals: [string, string[], RegExp][] = [
    ["no --selector", ["default/x", "--port", "80"], /--selector k=v,\.\.\. is required/],
    ["an empty --selector", ["default/x", "--selector", ",", "--port", "80"], /cannot use --selector ","/],
    ["a --selector item without a value", ["default/x", "--selector", "app", "--port", "80"], /cannot use label "app"/],
    ["a removal in --selector", ["default/x", "--selector", "app-", "--port", "80"], /cannot use --selector "app-"/],
    ["no --port", ["default/x", "--selector", "app=echo"], /--port is required/],
    ["port 0", ["default/x", "--selector", "app=echo", "--port", "0"], /cannot use --port "0": port 0 must be 1\.\.65535/],
    ["a port above 65535", ["default/x", "--selector", "app=echo", "--port", "65536"], /port 65536 must be 1\.\.65535/],
    ["a target port 0", ["default/x", "--selector", "app=echo", "--port", "80:0"], /target port 0 must be 1\.\.65535/],
    ["a port in no known form", ["default/x", "--selector", "app=echo", "--port", "80/ICMP"], /cannot use --port item "80\/ICMP"/],
    ["the same port twice", ["default/x", "--selector", "app=echo", "--port", "80,80"], /port 80\/TCP given twice/],
    ["the same port name twice", ["default/x", "--selector", "app=echo", "--port", "a=80,a=81"], /name "a" given twice/],
    ["a port name that is not a DNS label", ["default/x", "--selector", "app=echo", "--port", "Web=80"], /cannot use --port name "Web"/],
    ["a target that is neither a number nor a port name", ["default/x", "--selector", "app=echo", "--port", "80:Bad_T"], /target "Bad_T" is neither a port number nor a container port name/],
    ["an unknown --type", ["default/x", "--selector", "app=echo", "--port", "80", "--type", "ExternalName"], /cannot use --type "ExternalName": must be ClusterIP, NodePort or LoadBalancer/],
    ["--headless with --type NodePort", ["default/x", "--selector", "app=echo", "--port", "80", "--type", "NodePort", "--headless"], /cannot use --headless with --type NodePort/],
    ["an unknown --affinity", ["default/x", "--selector", "app=echo", "--port", "80", "--affinity", "None"], /cannot use --affinity "None": must be ClientIP/],
    ["an unknown --traffic-policy", ["default/x", "--selector", "app=echo", "--port", "80", "--traffic-policy", "Cluster"], /cannot use --traffic-policy "Cluster": must be Local/],
    ["an --ip-family the lab does not have", ["default/x", "--selector", "app=echo", "--port", "80", "--ip-family", "IPv6"], /cannot admit Service "default\/x": ipFamilies IPv6 not in this lab/],
    ["a reference with two slashes", ["a/b/c", "--selector", "app=echo", "--port", "80"], /cannot use Service "a\/b\/c": expected NAMESPACE\/NAME/],
    ["a name that is not a DNS label", ["default/Bad_Name", "--selector", "app=echo", "--port", "80"], /cannot use Service name "Bad_Name": must be a DNS label/],
    ["no reference", ["--selector", "app=echo", "--port", "80"], /<namespace>\/<name>/],
  ];

  test.each(refusals)("%s: a message naming it, a non-zero exit, no Service x", (_what, args, message) => {
    const before = snapshot();
    const r = lab(name, ["service", "add", ...args], { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(snapshot()).toBe(before);
    expect(services().map((s) => `${s.namespace}/${s.name}`)).toEqual(["default/kept"]);
  });

  test("replacing a Service with what admission refuses leaves the old one as it was", () => {
    const before = snapshot();
    const r = lab(name, ["service", "add", "default/kept", "--selector", "app=echo", "--port", "http=80:7777/TCP", "--ip-family", "IPv6"], { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cannot admit Service "default/kept"');
    expect(snapshot()).toBe(before);
  });

  test.skipIf(!Bun.which("kubectl"))("the lab's API server refuses the same with kubectl (422 naming the reason), and stores nothing", () => {
    const before = snapshot();
    const env = { ...process.env, KUBECONFIG: lab(name, ["kubeconfig"]).stdout.trim() } as Record<string, string>;
    const svc = "apiVersion: v1\nkind: Service\nmetadata: {name: v6only, namespace: default}\nspec:\n  ipFamilies: [IPv6]\n  ipFamilyPolicy: SingleStack\n  selector: {app: echo}\n  ports: [{port: 80, targetPort: 7777}]\n";
    const r = Bun.spawnSync(["kubectl", "apply", "-f", "-"], { env, stdin: Buffer.from(svc), stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.toString()).toContain('cannot admit Service "default/v6only": ipFamilies IPv6 not in this lab');
    expect(snapshot()).toBe(before);
  });
});
