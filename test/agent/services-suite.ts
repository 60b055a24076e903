// The Service proxy end to end (`mncni agent --service-proxy`): two nodes with the compiled
// agent, pods added through the plugin it installed, Services and EndpointSlices in the
// agents' manifests directory, an external host behind the lab's router, and real TCP/UDP
// traffic (test/agent/svc-echo.py answers "who I am, whom I saw"), checked against an
// independent view of the kernel (`nft -j list`, `conntrack -L`) where traffic cannot tell.
// services.integration.test.ts runs one combination (bridge, host-gw, IPv4) in `make test`;
// services.matrix.test.ts the others (routed, VXLAN, dual-stack).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { createNetns, inNetns, netnsPath, run } from "../helpers/netns.ts";
import { agentArgs, buildCluster, destroyCluster, EXT_IP, runtimeOf, stopAgent, waitFor, type TestCluster, type TestNode } from "./lab.ts";

const ECHO = join(import.meta.dir, "svc-echo.py");
const PY = "/usr/bin/python3";
const LB_IP = "198.51.100.20";
const LB_IP6 = "fd98::20";

export interface SuiteOptions {
  mode: "bridge" | "routed";
  routing?: "host-gw" | "vxlan";
  dualStack?: boolean;
}

interface Pod {
  name: string;
  node: TestNode;
  netns: string;
  ip: string;
  ip6?: string;
  server?: Subprocess;
}

export function servicesSuite(o: SuiteOptions): void {
  const label = `${o.mode}, ${o.routing ?? "host-gw"}${o.dualStack ? ", dual-stack" : ""}`;
  describe(`Service proxy (${label})`, () => {
    let c: TestCluster;
    let n1: TestNode;
    let n2: TestNode;
    const pods: Record<string, Pod> = {};
    const t = (name: string, fn: () => Promise<void>) => test(name, fn, 90_000);
    const startAgent = (n: TestNode) => {
      const extra = ["--mode", o.mode, "--service-proxy", ...(o.routing ? ["--routing", o.routing] : []), ...(o.dualStack ? ["--cluster-cidr", "fd00:244::/48"] : [])];
      n.agent = spawn(agentArgs(c, n, extra), { stdout: "ignore", stderr: "pipe" });
    };

    const write = (file: string, docs: object[]) => {
      const tmp = join(c.manifests, `.${file}.tmp`);
      writeFileSync(tmp, docs.map((d) => stringify(d)).join("---\n"));
      renameSync(tmp, join(c.manifests, `${file}.yaml`));
    };
    const probe = (from: string, host: string, port: number, proto: "tcp" | "udp" = "tcp", src?: number) =>
      inNetns(from, [PY, ECHO, "probe", host, String(port), proto, ...(src ? [String(src)] : [])], { allowFail: true }).stdout.trim();
    /** Probes until the answer passes `ok` (the agents program within a pass or two). */
    const eventually = async (what: string, from: string, host: string, port: number, ok: (a: string) => boolean, proto: "tcp" | "udp" = "tcp", src?: number) => {
      let last = "";
      try {
        await waitFor(what, () => ok((last = probe(from, host, port, proto, src))), 20_000, 200);
      } catch (e) {
        throw new Error(`${(e as Error).message}: last answer "${last}"`);
      }
      return last;
    };
    const who = (a: string) => a.split(" ")[0]!;
    const seen = (a: string) => a.split(" ")[1] ?? "";

    const service = (name: string, spec: object, status?: object) => ({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: "apps" }, spec, ...(status ? { status } : {}) });
    const slice = (name: string, svc: string, eps: { pod: Pod; ready?: boolean; serving?: boolean; terminating?: boolean }[], ports: object[], family: 4 | 6 = 4) => ({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name, namespace: "apps", labels: { "kubernetes.io/service-name": svc } },
      addressType: family === 4 ? "IPv4" : "IPv6",
      ports,
      endpoints: eps.map((e) => ({
        addresses: [family === 4 ? e.pod.ip : e.pod.ip6!],
        conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
        nodeName: e.pod.node.name,
        targetRef: { kind: "Pod", namespace: "apps", name: e.pod.name },
      })),
    });
    const http = [{ name: "http", port: 8080, protocol: "TCP" }];
    const nftJson = (n: TestNode, kind: "map" | "set", name: string) => {
      const r = inNetns(n.ns, ["nft", "-j", "list", kind, "inet", "mncni-services", name], { allowFail: true });
      if (r.code !== 0) return [];
      const s = JSON.parse(r.stdout).nftables.find((x: any) => x[kind])?.[kind];
      return (s?.elem ?? []) as any[];
    };
    /** An element's key as the compiler writes it (a dynamic set's elements carry their timeout: {elem: {val}}). */
    const keyText = (e: any): string => {
      const k = Array.isArray(e) ? e[0] : e;
      const v = k?.elem?.val ?? k;
      return v?.concat?.map(String).join(" . ") ?? String(v);
    };

    async function addPod(name: string, node: TestNode): Promise<Pod> {
      const netns = createNetns(`mns-${name}`);
      const r = (await runtimeOf(node).add({ containerId: `svc-${name}`, netns: netnsPath(netns), ifname: "eth0" })) as { ips: { address: string }[] };
      const ips = r.ips.map((x) => x.address.split("/")[0]!);
      const pod: Pod = { name, node, netns, ip: ips.find((x) => !x.includes(":"))!, ...(o.dualStack ? { ip6: ips.find((x) => x.includes(":")) } : {}) };
      const server = spawn(["ip", "netns", "exec", netns, PY, ECHO, "serve", name, "8080", "8081", "5353"], { stdout: "pipe", stderr: "ignore" });
      const reader = server.stdout.getReader();
      await reader.read();
      reader.releaseLock();
      pod.server = server;
      return (pods[name] = pod);
    }

    beforeAll(async () => {
      c = buildCluster(2, { dualStack: o.dualStack });
      [n1, n2] = c.nodes as [TestNode, TestNode];
      // The load balancer's address is routed by the lab's router to n1 (as a cloud LB would hand it to a node).
      run(["ip", "-n", c.router, "route", "add", `${LB_IP}/32`, "via", n1.ip]);
      run(["ip", "-n", c.ext, "route", "add", "198.51.100.0/24", "via", "203.0.113.1"]);
      for (const n of c.nodes) startAgent(n);
      await waitFor("both agents' conflists", () => c.nodes.every((n) => inNetns(n.ns, ["test", "-e", join(n.dir, "conf", "10-mncni.conflist")], { allowFail: true }).code === 0), 30_000);
      // a, b on n1; c on n2; cl1 on n1 and cl2 on n2 are clients.
      await addPod("a", n1);
      await addPod("b", n1);
      await addPod("c", n2);
      await addPod("cl1", n1);
      await addPod("cl2", n2);
    }, 120_000);

    afterAll(async () => {
      for (const p of Object.values(pods)) p.server?.kill("SIGKILL");
      await destroyCluster(c);
    });

    t("ClusterIP with a named targetPort: every ready endpoint answers, from both nodes; the table says so too", async () => {
      write("web", [
        service("web", { type: "ClusterIP", clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10"], ports: [{ name: "http", port: 80, targetPort: "http" }] }),
        slice("web-1", "web", [{ pod: pods.a! }, { pod: pods.b! }, { pod: pods.c! }], http),
      ]);
      const answered = new Set<string>();
      await waitFor("answers from a, b and c", () => {
        for (const from of ["cl1", "cl2"]) answered.add(who(probe(pods[from]!.netns, "10.96.0.10", 80)));
        return ["a", "b", "c"].every((x) => answered.has(x));
      }, 30_000, 50);
      // Pods reach the ClusterIP unmasqueraded: the backend sees the client pod's address.
      expect(seen(await eventually("c answers cl1", pods.cl1!.netns, "10.96.0.10", 80, (a) => who(a) === "c"))).toBe(pods.cl1!.ip);
      // Independent view: the kernel's map of Service IPs and the endpoints behind it.
      for (const n of [n1, n2]) {
        expect(nftJson(n, "map", "service-ips-4").map(keyText)).toContain("10.96.0.10 . tcp . 80");
        const eps = nftJson(n, "map", "endpoints-ip-4").filter((e) => keyText(e).startsWith("10.96.0.10 . tcp . 80 . ")).map((e) => e[1].concat.join(":")).sort();
        expect(eps.filter((x, i) => eps.indexOf(x) === i)).toEqual([pods.a!.ip, pods.b!.ip, pods.c!.ip].map((ip) => `${ip}:8080`).sort());
      }
    });

    t("no endpoints: rejected at once (not a timeout); headless Services are not proxied; SCTP ports are programmed", async () => {
      write("empty", [
        service("empty", { clusterIP: "10.96.0.12", clusterIPs: ["10.96.0.12"], ports: [{ port: 80, targetPort: 8080 }, { name: "s", port: 9, protocol: "SCTP", targetPort: 9 }] }),
        service("headless", { clusterIP: "None", ports: [{ port: 80 }] }),
        slice("headless-1", "headless", [{ pod: pods.a! }], [{ port: 8080, protocol: "TCP" }]),
        service("sctp", { clusterIP: "10.96.0.19", clusterIPs: ["10.96.0.19"], ports: [{ name: "s", port: 7, protocol: "SCTP", targetPort: 7 }] }),
        slice("sctp-1", "sctp", [{ pod: pods.c! }], [{ name: "s", port: 7, protocol: "SCTP" }]),
      ]);
      const t0 = Date.now();
      await eventually("the empty Service refused", pods.cl1!.netns, "10.96.0.12", 80, (a) => a === "refused");
      expect(Date.now() - t0).toBeLessThan(20_000);
      // From the node itself (output hook) too.
      await eventually("refused from the node", n1.ns, "10.96.0.12", 80, (a) => a === "refused");
      await waitFor("the SCTP Service in the map", () => nftJson(n1, "map", "service-ips-4").map(keyText).includes("10.96.0.19 . sctp . 7"), 20_000);
      expect(nftJson(n1, "map", "no-endpoints-ip-4").map(keyText)).toContain("10.96.0.12 . sctp . 9");
      // Headless: nothing for it in any map.
      expect(JSON.stringify(inNetns(n1.ns, ["nft", "-j", "list", "table", "inet", "mncni-services"]).stdout)).not.toContain(`${pods.a!.ip} . 8080`);
    });

    t("hairpin: a pod reaching itself through its Service gets an answer, masqueraded (a source other than its own)", async () => {
      write("self", [
        service("self", { clusterIP: "10.96.0.14", clusterIPs: ["10.96.0.14"], ports: [{ name: "http", port: 80, targetPort: "http" }] }),
        slice("self-1", "self", [{ pod: pods.a! }], http),
      ]);
      const a = await eventually("a reaches itself", pods.a!.netns, "10.96.0.14", 80, (x) => who(x) === "a");
      expect(seen(a)).not.toBe(pods.a!.ip);
    });

    t("NodePort on every node address, from the external host: masqueraded (Cluster); Local keeps the source and answers with this node's endpoints only", async () => {
      write("np", [
        service("np", { type: "NodePort", clusterIP: "10.96.0.20", clusterIPs: ["10.96.0.20"], ports: [{ name: "http", port: 80, targetPort: "http", nodePort: 30080 }] }),
        slice("np-1", "np", [{ pod: pods.c! }], http),
        service("local", { type: "NodePort", externalTrafficPolicy: "Local", clusterIP: "10.96.0.21", clusterIPs: ["10.96.0.21"], ports: [{ name: "http", port: 80, targetPort: "http", nodePort: 30081 }] }),
        slice("local-1", "local", [{ pod: pods.a! }, { pod: pods.c! }], http),
      ]);
      // n1 has no endpoint of np: its answer crosses to n2 and back, so n1 masquerades.
      const viaN1 = await eventually("np through n1", c.ext, n1.ip, 30080, (x) => who(x) === "c");
      expect(seen(viaN1)).toBe(n1.ip);
      expect(who(await eventually("np through n2", c.ext, n2.ip, 30080, (x) => who(x) === "c"))).toBe("c");
      // Local: n1 answers only with a, n2 only with c, and both see the external host's address.
      for (let i = 0; i < 6; i++) {
        const x = await eventually("local through n1", c.ext, n1.ip, 30081, (y) => y !== "no");
        expect(x).toBe(`a ${EXT_IP}`);
      }
      expect(await eventually("local through n2", c.ext, n2.ip, 30081, (y) => y !== "no")).toBe(`c ${EXT_IP}`);
      // The node itself reaches a NodePort on its own address (output hook).
      expect(who(await eventually("np from n2 itself", n2.ns, n2.ip, 30080, (x) => x !== "no"))).toBe("c");
    });

    t("LoadBalancer: its ingress IP answers from outside (routed to n1 by the router); healthCheckNodePort says how many endpoints run here", async () => {
      write("lb", [
        service("lb", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 32001, clusterIP: "10.96.0.22", clusterIPs: ["10.96.0.22"], ports: [{ name: "http", port: 80, targetPort: "http", nodePort: 30082 }] },
          { loadBalancer: { ingress: [{ ip: LB_IP }] } }),
        slice("lb-1", "lb", [{ pod: pods.c! }], http),
        service("ext", { clusterIP: "10.96.0.23", clusterIPs: ["10.96.0.23"], externalIPs: [LB_IP], ports: [{ name: "http", port: 81, targetPort: "http" }] }),
        slice("ext-1", "ext", [{ pod: pods.c! }], http),
      ]);
      const health = (n: TestNode) => inNetns(c.ext, ["curl", "-s", "-m", "2", "-w", " %{http_code}", `http://${n.ip}:32001/`], { allowFail: true }).stdout;
      await waitFor("n2's health check answers 200", () => health(n2).endsWith(" 200"), 20_000, 200);
      expect(JSON.parse(health(n2).replace(/ 200$/, ""))).toMatchObject({ service: { namespace: "apps", name: "lb" }, localEndpoints: 1 });
      await waitFor("n1's health check answers 503 (no endpoint here)", () => health(n1).endsWith(" 503"), 20_000, 200);
      // n1 has no local endpoint for the Local LB: external traffic to it is dropped there...
      expect(probe(c.ext, LB_IP, 80)).toBe("no");
      // ...while the externalIP of a Cluster Service on the same address answers, masqueraded.
      const x = await eventually("externalIP through n1", c.ext, LB_IP, 81, (y) => who(y) === "c");
      expect(seen(x)).toBe(n1.ip);
      // Pods use every endpoint of a Local LoadBalancer's IP.
      expect(who(await eventually("cl1 to the LB IP", pods.cl1!.netns, LB_IP, 80, (y) => y !== "no"))).toBe("c");
    });

    t("sessionAffinity ClientIP: one client keeps its endpoint; internalTrafficPolicy Local: this node's endpoints only", async () => {
      write("aff", [
        service("aff", { clusterIP: "10.96.0.13", clusterIPs: ["10.96.0.13"], sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } }, ports: [{ name: "http", port: 80, targetPort: "http" }] }),
        slice("aff-1", "aff", [{ pod: pods.a! }, { pod: pods.b! }, { pod: pods.c! }], http),
        service("itp", { clusterIP: "10.96.0.15", clusterIPs: ["10.96.0.15"], internalTrafficPolicy: "Local", ports: [{ name: "http", port: 80, targetPort: "http" }] }),
        slice("itp-1", "itp", [{ pod: pods.c! }], http),
      ]);
      const first = who(await eventually("aff answers", pods.cl1!.netns, "10.96.0.13", 80, (x) => x !== "no" && x !== "refused"));
      for (let i = 0; i < 12; i++) expect(who(probe(pods.cl1!.netns, "10.96.0.13", 80))).toBe(first);
      // The kernel recorded it: client . Service key -> its slot, with the timeout.
      const aff = nftJson(n1, "map", "affinity-ip-4").map(keyText);
      expect(aff).toContain(`${pods.cl1!.ip} . 10.96.0.13 . tcp . 80`);
      expect(who(await eventually("itp from n2", pods.cl2!.netns, "10.96.0.15", 80, (x) => x !== "no"))).toBe("c");
      // n1 has none of itp's endpoints: dropped there (kube-proxy's behaviour), not sent to n2.
      expect(probe(pods.cl1!.netns, "10.96.0.15", 80)).toBe("no");
    });

    t("terminating endpoints serve only while no endpoint is ready", async () => {
      write("term", [
        service("term", { clusterIP: "10.96.0.16", clusterIPs: ["10.96.0.16"], ports: [{ name: "http", port: 80, targetPort: "http" }] }),
        slice("term-1", "term", [{ pod: pods.b!, ready: false, serving: true, terminating: true }, { pod: pods.a!, ready: false, serving: false, terminating: false }], http),
      ]);
      for (let i = 0; i < 4; i++) expect(who(await eventually("term answered by b", pods.cl2!.netns, "10.96.0.16", 80, (x) => x !== "no" && x !== "refused"))).toBe("b");
      write("term", [
        service("term", { clusterIP: "10.96.0.16", clusterIPs: ["10.96.0.16"], ports: [{ name: "http", port: 80, targetPort: "http" }] }),
        slice("term-1", "term", [{ pod: pods.b!, ready: false, serving: true, terminating: true }, { pod: pods.c! }], http),
      ]);
      await eventually("c, once ready, alone", pods.cl2!.netns, "10.96.0.16", 80, (x) => who(x) === "c");
      for (let i = 0; i < 6; i++) expect(who(probe(pods.cl2!.netns, "10.96.0.16", 80))).toBe("c");
    });

    t("UDP: an endpoint that goes away takes its conntrack entries with it (the client's next datagram reaches the new endpoint)", async () => {
      const udp = [{ name: "dns", port: 5353, protocol: "UDP" }];
      const svc = service("dns", { clusterIP: "10.96.0.17", clusterIPs: ["10.96.0.17"], ports: [{ name: "dns", port: 53, protocol: "UDP", targetPort: 5353 }] });
      write("dns", [svc, slice("dns-1", "dns", [{ pod: pods.a! }], udp)]);
      try {
        await eventually("a answers UDP", pods.cl1!.netns, "10.96.0.17", 53, (x) => who(x) === "a", "udp", 40053);
      } catch (e) {
        console.error(inNetns(n1.ns, ["conntrack", "-L"], { allowFail: true }).stdout, probe(pods.cl1!.netns, pods.a!.ip, 5353, "udp"), JSON.stringify(nftJson(n1, "map", "service-ips-4")), JSON.stringify(nftJson(n1, "map", "endpoints-ip-4")));
        if (process.env.SVC_KEEP) await Bun.sleep(600_000);
        throw e;
      }
      const entries = () => inNetns(n1.ns, ["conntrack", "-L", "-p", "udp", "--orig-dst", "10.96.0.17"], { allowFail: true }).stdout;
      // The agent clears the Service IP's untranslated UDP entries once it gains endpoints
      // (entries made while it had none would keep being rejected), after its write; the
      // entry is read once a's answer has made it, whenever that clean-up runs.
      await waitFor("a's conntrack entry", () => who(probe(pods.cl1!.netns, "10.96.0.17", 53, "udp", 40053)) === "a" && entries().includes(`src=${pods.a!.ip}`), 20_000, 200);
      // a is still up and answering: only the removal of the entry can send the client to c.
      write("dns", [svc, slice("dns-1", "dns", [{ pod: pods.c! }], udp)]);
      await waitFor("a's conntrack entry deleted", () => !entries().includes(`src=${pods.a!.ip}`), 20_000, 100);
      expect(who(probe(pods.cl1!.netns, "10.96.0.17", 53, "udp", 40053))).toBe("c");
    });

    test("UDP: a restarted agent's clean-up (every key new to it) deletes the untranslated entries to its keys and keeps the flows translated to an endpoint; SIGTERM ends an agent that answers a health check", async () => {
      const udp = [{ name: "dns", port: 5353, protocol: "UDP" }];
      write("dns2", [
        service("dns2", { clusterIP: "10.96.0.25", clusterIPs: ["10.96.0.25"], ports: [{ name: "dns", port: 53, protocol: "UDP", targetPort: 5353 }] }),
        slice("dns2-1", "dns2", [{ pod: pods.b! }], udp),
        // n1 answers a health check too: the restart below also shows that such a server does not keep the agent from ending.
        service("lbh", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 32002, clusterIP: "10.96.0.26", clusterIPs: ["10.96.0.26"], ports: [{ name: "http", port: 80, targetPort: "http", nodePort: 30083 }] }),
        slice("lbh-1", "lbh", [{ pod: pods.b! }], http),
      ]);
      await eventually("b answers UDP", pods.cl1!.netns, "10.96.0.25", 53, (x) => who(x) === "b", "udp", 40054);
      await waitFor("n1's health check answers", () => inNetns(c.ext, ["curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", `http://${n1.ip}:32002/`], { allowFail: true }).stdout === "200", 20_000, 200);
      // A live flow: one source port, a datagram every 100 ms (for two minutes at most, should the test die).
      const sender = spawn(["ip", "netns", "exec", pods.cl1!.netns, PY, "-c",
        `import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("",40055));end=time.time()+120\nwhile time.time()<end:\n  s.sendto(b"x",("10.96.0.25",53));time.sleep(0.1)`], { stdout: "ignore", stderr: "ignore" });
      try {
        /** The entry of a source port on n1 (conntrack -L's line, with its id), or "". */
        const entry = (sport: number) =>
          inNetns(n1.ns, ["conntrack", "-L", "-p", "udp", "--orig-dst", "10.96.0.25", "--sport", String(sport), "-o", "id"], { allowFail: true }).stdout.trim();
        const idOf = (line: string) => /id=(\d+)/.exec(line)?.[1];
        await waitFor("the live flow's translated entry", () => entry(40055).includes(`src=${pods.b!.ip} `), 30_000, 100);
        const live = entry(40055);
        const agent = n1.agent!;
        agent.kill("SIGTERM");
        const ended = await Promise.race([agent.exited.then(() => true), Bun.sleep(30_000).then(() => false)]);
        if (!ended) agent.kill("SIGKILL");
        await stopAgent(n1);
        expect(ended, "the agent ends on SIGTERM within 30 s while it serves a health check").toBe(true);
        // An entry made while nothing answered for the key (as before the Service existed): not translated.
        inNetns(n1.ns, ["conntrack", "-I", "-p", "udp", "-s", pods.cl1!.ip, "-d", "10.96.0.25", "--sport", "40056", "--dport", "53", "-t", "600"]);
        expect(entry(40056)).toContain("src=10.96.0.25 ");
        startAgent(n1);
        // Its deletion says the restarted agent's clean-up ran (one dump decides both entries).
        await waitFor("the restarted agent to delete the untranslated entry", () => entry(40056) === "", 60_000, 200);
        // The live flow's entry is the same one (deleted, its next datagram would have made a new id).
        expect(idOf(entry(40055)), `the live flow's entry, kept (before the restart: ${live})`).toBe(idOf(live)!);
        expect(entry(40055)).toContain(`src=${pods.b!.ip} `);
      } finally {
        sender.kill("SIGKILL");
        await sender.exited;
        // The tests after this one need n1's agent, whatever happened here.
        if (!n1.agent) startAgent(n1);
      }
    }, 180_000);

    t("NetworkPolicy through a Service: policy sees the backend pod (DNAT comes first)", async () => {
      write("guarded", [
        service("guarded", { clusterIP: "10.96.0.18", clusterIPs: ["10.96.0.18"], ports: [{ name: "http", port: 80, targetPort: "http" }] }),
        slice("guarded-1", "guarded", [{ pod: pods.c! }], http),
      ]);
      write("guarded-policy", [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "apps", labels: { "kubernetes.io/metadata.name": "apps" } } },
        { apiVersion: "v1", kind: "Pod", metadata: { name: "c", namespace: "apps", labels: { role: "c" } }, spec: { nodeName: n2.name }, status: { phase: "Running", podIP: pods.c!.ip, podIPs: [{ ip: pods.c!.ip }] } },
        { apiVersion: "v1", kind: "Pod", metadata: { name: "cl2", namespace: "apps", labels: { role: "cl2" } }, spec: { nodeName: n2.name }, status: { phase: "Running", podIP: pods.cl2!.ip, podIPs: [{ ip: pods.cl2!.ip }] } },
        { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "only-cl2", namespace: "apps" }, spec: { podSelector: { matchLabels: { role: "c" } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: "cl2" } } }] }] } },
      ]);
      try {
        await eventually("cl2 allowed through the Service", pods.cl2!.netns, "10.96.0.18", 80, (x) => who(x) === "c");
        await waitFor("cl1 denied through the Service", () => probe(pods.cl1!.netns, "10.96.0.18", 80) === "no", 20_000, 200);
      } finally {
        // The policy isolates c: the tests after this one reach it freely again.
        rmSync(join(c.manifests, "guarded-policy.yaml"), { force: true });
      }
      await eventually("cl1 allowed again once the policy is gone", pods.cl1!.netns, "10.96.0.18", 80, (x) => who(x) === "c");
    });

    if (o.dualStack) {
      t("dual-stack: the IPv6 cluster IP answers with the IPv6 endpoints", async () => {
        write("web6", [
          service("web6", { clusterIP: "10.96.0.30", clusterIPs: ["10.96.0.30", "fd00:96::30"], ipFamilies: ["IPv4", "IPv6"], ports: [{ name: "http", port: 80, targetPort: "http", nodePort: 30090 }], type: "NodePort" }),
          slice("web6-4", "web6", [{ pod: pods.c! }], http),
          slice("web6-6", "web6", [{ pod: pods.a! }, { pod: pods.c! }], http, 6),
        ]);
        const got = new Set<string>();
        await waitFor("a and c over IPv6", () => {
          got.add(who(probe(pods.cl1!.netns, "fd00:96::30", 80)));
          return got.has("a") && got.has("c");
        }, 30_000, 50);
        expect(who(await eventually("IPv4 side", pods.cl1!.netns, "10.96.0.30", 80, (x) => x !== "no"))).toBe("c");
        const x = await eventually("IPv6 NodePort from the external host's router", c.router, n2.ip6!, 30090, (y) => y !== "no");
        expect(["a", "c"]).toContain(who(x));
      });
    }
  });
}
