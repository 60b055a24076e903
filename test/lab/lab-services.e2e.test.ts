// The lab's Services and DNS, end to end: `lab service add|list|remove` with the cluster IPs,
// node ports and LoadBalancer addresses admission gives, the EndpointSlices the lab's
// controller writes from pod labels (ready once a pod answers, terminating during `lab pod
// remove --grace`), the router's LoadBalancer routes, and the lab's DNS server answering the
// Kubernetes DNS specification to a real resolver in a pod (glibc's getent through the pod's
// resolv.conf and search path; dig over UDP and TCP). Dual-stack, bridge mode. Then traffic
// through every kind of Service (lab check, lab explain: lab-services-suite.ts) in the same
// shape; the other modes and routings are in lab-services.matrix.test.ts.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LabService } from "../../src/lab/service-list.ts";
import { manifestsDir } from "../../src/lab/topology.ts";
import { LAB_CMD, downAll, lab, labJson, leftovers, newLabName } from "./lab-cli.ts";
import { serviceTrafficSuite } from "./lab-services-suite.ts";
import { until } from "../helpers/until.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

describe("lab Services and DNS (bridge, dual-stack)", () => {
  const name = newLabName();
  const exec = (target: string, cmd: string[], allowFail = false) => lab(name, ["exec", target, "--", ...cmd], { allowFail });
  const services = () => labJson<LabService[]>(name, ["service", "list"]);
  const svc = (ns: string, n: string) => services().find((s) => s.namespace === ns && s.name === n)!;
  /**
   * getent in a pod until it answers (or 5 s): the DNS server follows the API's watch, so a
   * Service written a moment ago may take a few hundred ms to be answered, as with CoreDNS.
   */
  const resolve = async (target: string, args: string[]): Promise<string> => {
    for (let i = 0; ; i++) {
      const r = exec(target, ["getent", ...args], true);
      if (r.code === 0 || i >= 50) return r.stdout;
      await Bun.sleep(100);
    }
  };
  const dig = (args: string[]) => exec("node1/pod1", ["dig", "+short", ...args]).stdout.trim().split("\n").filter(Boolean).sort();

  beforeAll(() => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "2", "--ipv6"]);
    lab(name, ["pod", "add", "node2", "db0", "--namespace", "apps", "--labels", "role=db"]);
  });

  test("a Service gets cluster IPs of both families, and EndpointSlices of the ready pods it selects", () => {
    const out = lab(name, ["service", "add", "apps/web", "--selector", "app=echo", "--port", "http=80:7777/TCP"]).stdout;
    expect(out).toContain("Service apps/web created: 10.96.0.11,fd00:96::b");
    const web = svc("apps", "web");
    expect(web.clusterIPs).toEqual(["10.96.0.11", "fd00:96::b"]);
    // Only the pod of its namespace; one endpoint per family, ready (it answered).
    expect(web.endpoints.map((e) => [e.pod, e.ready, e.ports]).sort()).toEqual([
      ["apps/db0", true, { http: 7777 }],
      ["apps/db0", true, { http: 7777 }],
    ]);
    expect(web.endpoints.map((e) => e.address.includes(":")).sort()).toEqual([false, true]);
  });

  test("the pod's resolv.conf is kubelet's ClusterFirst one, and glibc resolves through the search path", async () => {
    const conf = exec("node1/pod1", ["cat", "/etc/resolv.conf"]).stdout;
    expect(conf).toContain("nameserver 10.224.0.1\nnameserver fd00:224::1\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5");
    const hosts = await resolve("node1/pod1", ["hosts", "web.apps.svc.cluster.local"]);
    expect(hosts).toContain("fd00:96::b");
    expect(exec("node1/pod1", ["getent", "ahostsv4", "web.apps"]).stdout).toContain("10.96.0.11");
    // From a pod of apps, the bare name (first search domain).
    expect(exec("node2/db0", ["getent", "ahostsv4", "web"]).stdout).toContain("10.96.0.11");
    expect(exec("node1/pod1", ["getent", "hosts", "nope.apps.svc.cluster.local"], true).code).not.toBe(0);
  });

  test("dig (bind9-dnsutils, which make test installs): A, AAAA, SRV of a named port, PTR, NXDOMAIN, over UDP and TCP", () => {
    expect(dig(["web.apps.svc.cluster.local", "A"])).toEqual(["10.96.0.11"]);
    expect(dig(["+tcp", "web.apps.svc.cluster.local", "AAAA"])).toEqual(["fd00:96::b"]);
    expect(dig(["_http._tcp.web.apps.svc.cluster.local", "SRV"])).toEqual(["0 100 80 web.apps.svc.cluster.local."]);
    expect(dig(["-x", "10.96.0.11"])).toEqual(["web.apps.svc.cluster.local."]);
    expect(dig(["-x", "fd00:96::b"])).toEqual(["web.apps.svc.cluster.local."]);
    const nx = exec("node1/pod1", ["dig", "nope.apps.svc.cluster.local"]).stdout;
    expect(nx).toContain("status: NXDOMAIN");
    expect(exec("node1/pod1", ["dig", "dns-version.cluster.local", "TXT", "+short"]).stdout.trim()).toBe('"1.0.1"');
  });

  test("a headless Service answers its ready endpoints, by hostname too; SRV per endpoint", async () => {
    lab(name, ["service", "add", "apps/db", "--selector", "role=db", "--port", "pg=5432:7777", "--headless"]);
    const db = svc("apps", "db");
    expect({ headless: db.headless, clusterIPs: db.clusterIPs, ready: db.endpoints.filter((e) => e.ready).length }).toEqual({ headless: true, clusterIPs: [], ready: 2 });
    const v4 = db.endpoints.find((e) => !e.address.includes(":"))!.address;
    expect(await resolve("node1/pod1", ["ahostsv4", "db.apps.svc.cluster.local"])).toContain(v4);
    const host = `${v4.replaceAll(".", "-")}.db.apps.svc.cluster.local`;
    expect(await resolve("node1/pod1", ["ahostsv4", host])).toContain(v4);
    expect(dig(["_pg._tcp.db.apps.svc.cluster.local", "SRV"])).toContain(`0 100 7777 ${host}.`);
  });

  test("labels move endpoints; NodePort and LoadBalancer get node ports and a routed address; remove deletes the slices", () => {
    lab(name, ["service", "add", "default/lb", "--selector", "tier=front", "--port", "80:7777", "--type", "LoadBalancer", "--traffic-policy", "Local"]);
    let lb = svc("default", "lb");
    expect(lb.endpoints).toEqual([]);
    expect(lb.ports[0]!.nodePort).toBeGreaterThanOrEqual(30000);
    expect(lb.healthCheckNodePort).toBeGreaterThan(lb.ports[0]!.nodePort!);
    expect(lb.loadBalancerIPs).toEqual(["198.51.100.1", "2001:db8:100::1"]);
    const routes = () => exec("rtr", ["ip", "-4", "route", "show", "198.51.100.1"]).stdout;
    // Local: no endpoint, no next hop.
    expect(routes()).toBe("");
    lab(name, ["label", "pod", "default/node1-pod2", "tier=front"]);
    lb = svc("default", "lb");
    expect(lb.endpoints.map((e) => e.pod)).toEqual(["default/node1-pod2", "default/node1-pod2"]);
    expect(routes()).toContain("via 10.224.0.11");
    expect(routes()).not.toContain("10.224.0.12");
    lab(name, ["label", "pod", "default/node1-pod2", "tier-"]);
    expect(svc("default", "lb").endpoints).toEqual([]);
    lab(name, ["service", "remove", "default/lb"]);
    expect(services().some((s) => s.name === "lb")).toBe(false);
    expect(labJson(name, ["status"]).services.some((s: LabService) => s.name === "lb")).toBe(false);
    expect(routes()).toBe("");
  });

  test("lab apply -f takes a Service: admission gives it a cluster IP, the controller its EndpointSlices; lab delete removes both", async () => {
    const file = join(tmpdir(), `${name}-svc.yaml`);
    writeFileSync(file, "apiVersion: v1\nkind: Service\nmetadata: {name: applied, namespace: apps}\nspec:\n  selector: {role: db}\n  ports: [{name: http, port: 8080, targetPort: 7777}]\n");
    try {
      expect(lab(name, ["apply", "-f", file]).stdout).toContain("service/applied created");
      const applied = svc("apps", "applied");
      expect(applied.clusterIPs[0]).toMatch(/^10\.96\.0\.\d+$/);
      expect(applied.endpoints.filter((e) => e.ready).map((e) => e.pod)).toEqual(["apps/db0", "apps/db0"]);
      expect(await resolve("node1/pod1", ["ahostsv4", "applied.apps.svc.cluster.local"])).toContain(applied.clusterIPs[0]!);
      lab(name, ["delete", "-f", file]);
      expect(services().some((x) => x.name === "applied")).toBe(false);
      expect(existsSync(join(manifestsDir(name), "endpointslice-apps.applied-ipv4.yaml"))).toBe(false);
    } finally {
      rmSync(file, { force: true });
    }
  });

  test("lab pod remove --grace: the endpoint is terminating (serving, not ready) for the grace period, then gone", async () => {
    // Grace long enough to be seen by a poll on a loaded machine; both families' slices are
    // written one after the other, so wait for both.
    const remove = Bun.spawn([...LAB_CMD, "lab", "pod", "remove", "--name", name, "node2", "apps/db0", "--grace", "6"], { stdout: "pipe", stderr: "pipe" });
    let seen: LabService["endpoints"] = [];
    await until("both of db0's endpoints terminating", () => {
      seen = svc("apps", "web").endpoints;
      return seen.length === 2 && seen.every((e) => e.terminating);
    }, 60_000);
    expect(seen.map((e) => [e.ready, e.serving, e.terminating])).toEqual([[false, true, true], [false, true, true]]);
    expect(await remove.exited).toBe(0);
    expect(svc("apps", "web").endpoints).toEqual([]);
    // Headless without ready endpoints: NXDOMAIN (the specification).
    expect(exec("node1/pod1", ["getent", "hosts", "db.apps.svc.cluster.local"], true).code).not.toBe(0);
  });

  test.skipIf(!Bun.which("kubectl"))("a Service and a label made with kubectl on the lab's API, no lab command after: admission gives the Service its addresses, the lab's controller its EndpointSlices, and traffic through the ClusterIP flows", async () => {
    const env = { ...process.env, KUBECONFIG: lab(name, ["kubeconfig"]).stdout.trim() } as Record<string, string>;
    const kubectl = (args: string[], stdin?: string) => {
      const r = Bun.spawnSync(["kubectl", ...args], { env, stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr.toString()}`);
      return r.stdout.toString();
    };
    kubectl(["apply", "-f", "-"], "apiVersion: v1\nkind: Service\nmetadata: {name: kc, namespace: default}\nspec:\n  type: NodePort\n  selector: {tier: kc}\n  ports: [{name: http, port: 80, targetPort: 7777}]\n");
    // The API server admitted it: cluster IPs of both families and a node port, at once.
    const created = JSON.parse(kubectl(["get", "service", "kc", "-o", "json"]));
    expect(created.spec.clusterIPs.length).toBe(2);
    expect(created.spec.ports[0].nodePort).toBeGreaterThanOrEqual(30000);
    kubectl(["label", "pod", "node1-pod1", "tier=kc"]);
    // Read-only from here (service list and exec run no controller pass): the slices are the controller's.
    await until("the controller writes kc's EndpointSlices with node1-pod1 ready", () => {
      const eps = svc("default", "kc")?.endpoints ?? [];
      return eps.length === 2 && eps.every((e) => e.pod === "default/node1-pod1" && e.ready);
    }, 60_000);
    const kc = svc("default", "kc");
    const backend = labJson<{ node: string; name: string; ips: string[] }[]>(name, ["pods"]).find((p) => p.node === "node1" && p.name === "pod1")!.ips;
    // The agents program the Service from the slice within a pass: probe until it answers, then it must be the backend.
    let answer: { ok: boolean; by?: string } = { ok: false };
    await until(`node2/pod1 reaches ${kc.clusterIPs[0]}:80`, () => {
      const r = exec("node2/pod1", [...LAB_CMD, "lab", "_probe", "--json", `${kc.clusterIPs[0]}:80`], true);
      answer = (JSON.parse(r.stdout.trim().split("\n").pop() || "[{}]") as { ok: boolean; by?: string }[])[0] ?? { ok: false };
      return answer.ok;
    }, 60_000);
    expect(backend).toContain(answer.by!);
    expect(await resolve("node1/pod2", ["ahostsv4", "kc"])).toContain(kc.clusterIPs[0]!);
    // And the label taken away with kubectl: the endpoints go, again with no lab command.
    kubectl(["label", "pod", "node1-pod1", "tier-"]);
    await until("kc's endpoints go with the label", () => svc("default", "kc")?.endpoints.length === 0, 60_000);
  });

  test("lab down removes the DNS server and every resolv.conf it wrote", () => {
    expect(existsSync(`/etc/netns/${name}-node1-pod1/resolv.conf`)).toBe(true);
    expect(readFileSync(`/etc/netns/${name}-node1-pod1/resolv.conf`, "utf8")).toStartWith(`# mncni lab ${name}`);
    lab(name, ["down", "-q"]);
    expect(leftovers(name)).toEqual([]);
    expect(existsSync(`/etc/netns/${name}-node1-pod1`)).toBe(false);
  });
});

serviceTrafficSuite({ mode: "bridge", routing: "auto", ipv6: true });
