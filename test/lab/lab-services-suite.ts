// Traffic through the lab's Services, as `lab check` and `lab explain` prove it, in one lab
// shape (mode, routing, families): every Service type and option the lab offers, against the
// agents' Service proxy. lab-services.e2e.test.ts runs one shape in `make test`, the matrix
// file the others.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { CheckReport } from "../../src/lab/check.ts";
import type { ServiceTranslation } from "../../src/lab/service-explain.ts";
import { LAB_CMD, NEEDS_AGENT, WIRING, downAll, lab, labJson, newLabName } from "./lab-cli.ts";
import { until } from "../helpers/until.ts";

export interface Shape {
  mode: "bridge" | "routed";
  routing: "auto" | "vxlan" | "host-gw";
  ipv6: boolean;
  segments?: number;
  /** The agents' source (default: the lab's API server). */
  source?: "dir";
}

export function serviceTrafficSuite(shape: Shape): void {
  // Here, not at file level: the module is evaluated once per process, so a file-level call
  // set the timeout only for the first file of `make test-matrix` to import it.
  setDefaultTimeout(180_000);
  const title = `Services through the proxy: ${shape.mode}, ${shape.routing}${shape.segments ? `, ${shape.segments} segments` : ""}${shape.source ? `, ${shape.source} source` : ""}${shape.ipv6 ? ", dual-stack" : ", IPv4"}${NEEDS_AGENT}`;
  describe.skipIf(WIRING === "static")(title, () => {
    const name = newLabName();
    afterAll(downAll);
    /** The agents program a Service within a pass (resync 2 s): check again a few times before calling it a failure. */
    const settledCheck = async (): Promise<CheckReport> => {
      let r = labJson<CheckReport>(name, ["check"], { allowFail: true });
      for (let i = 0; i < 5 && !r.ok; i++) {
        await Bun.sleep(1000);
        r = labJson<CheckReport>(name, ["check"], { allowFail: true });
      }
      return r;
    };

    beforeAll(() => {
      lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "2", "--mode", shape.mode, "--routing", shape.routing,
        ...(shape.segments ? ["--segments", String(shape.segments)] : []), ...(shape.ipv6 ? ["--ipv6"] : []), ...(shape.source ? ["--source", shape.source] : [])]);
      const add = (ref: string, ...flags: string[]) => lab(name, ["service", "add", ref, "-q", "--port", "http=80:7777/TCP", ...flags]);
      add("default/web", "--selector", "app=echo", "--type", "LoadBalancer");
      add("default/local", "--selector", "node=node1", "--type", "LoadBalancer", "--traffic-policy", "Local");
      add("default/sticky", "--selector", "app=echo", "--affinity", "ClientIP");
      add("default/itp", "--selector", "node=node2", "--traffic-policy", "Local");
      add("default/empty", "--selector", "app=nobody");
    });

    test("lab check proves ClusterIP, NodePort from nodes and the external host, LoadBalancer addresses, hairpin, affinity, Local policies and rejection", async () => {
      const r = await settledCheck();
      const failures = r.results.filter((x) => !x.ok).map((x) => `${x.kind} ${x.from} -> ${x.to} ${x.target}: ${x.error}`);
      expect(failures).toEqual([]);
      const count = (kind: string, pred: (x: CheckReport["results"][number]) => boolean = () => true) => r.results.filter((x) => x.kind === kind && pred(x)).length;
      const fams = shape.ipv6 ? 2 : 1;
      // Every cluster IP of the 5 Services x 2 client pods (the first of each node).
      const clusterIPs = labJson<{ clusterIPs: string[] }[]>(name, ["service", "list"]).reduce((a, v) => a + v.clusterIPs.length, 0);
      expect(clusterIPs).toBe(shape.ipv6 ? 10 : 5);
      expect(count("svc-cluster-ip")).toBe(clusterIPs * 2);
      // The empty Service is refused at once, from every client.
      expect(r.results.filter((x) => x.to === "svc/default/empty").every((x) => !x.reachable && x.errno === "ECONNREFUSED")).toBe(true);
      // internalTrafficPolicy Local (endpoints on node2 only): node1's pod gets no answer, node2's does.
      expect(r.results.filter((x) => x.to === "svc/default/itp" && x.kind === "svc-cluster-ip").map((x) => [x.from.split("/")[0], x.reachable]).sort()).toEqual(
        [...Array(fams).fill(["node1", false]), ...Array(fams).fill(["node2", true])],
      );
      // externalTrafficPolicy Local: the external host's address is kept, and only node1 answers.
      const local = r.results.filter((x) => x.to === "svc/default/local" && (x.kind === "svc-ext-node-port" || x.kind === "svc-lb"));
      expect(local.filter((x) => x.reachable).every((x) => x.seen === "203.0.113.10" || x.seen === "2001:db8::10")).toBe(true);
      expect(local.filter((x) => x.kind === "svc-ext-node-port" && x.reachable).every((x) => x.target.includes(".11:") || x.target.includes("::11]"))).toBe(true);
      expect(count("svc-lb")).toBe(2 * fams);
      expect(count("svc-ext-node-port", (x) => x.to === "svc/default/web")).toBe(2 * fams);
      expect(count("svc-hairpin")).toBeGreaterThanOrEqual(1);
      // One client's connections stick to one backend through each of sticky's cluster IPs.
      expect(count("svc-affinity")).toBe(fams);
    });

    test("a fetch by name: a pod's resolver (search path) finds the Service and a TCP connection to it is answered by a backend", () => {
      // bash's /dev/tcp resolves through getaddrinfo (the pod's resolv.conf), as curl would.
      const r = lab(name, ["exec", "node1/pod1", "--", "bash", "-c", "exec 3<>/dev/tcp/web/80 && cat <&3"]);
      const [seen, by] = r.stdout.trim().split(" ");
      const pods = labJson<{ node: string; name: string; ips: string[] }[]>(name, ["pods"]);
      // Either family (getaddrinfo orders them): a pod answered, and saw the client's own address
      // (unless the client was its own backend: hairpin is masqueraded).
      const mine = pods.find((p) => p.node === "node1" && p.name === "pod1")!.ips;
      expect(pods.flatMap((p) => p.ips)).toContain(by!);
      if (!mine.includes(by!)) expect(mine).toContain(seen!);
    });

    test("lab explain POD svc/NS/NAME: the translation a real connection got, then the path to that backend", () => {
      const out = labJson<{ service: ServiceTranslation; path: { outcome: string } }>(name, ["explain", "node1/pod1", "svc/default/web", "--port", "80"]);
      expect(out.service.candidates.length).toBe(4);
      expect(out.service.chosen).toBeDefined();
      expect(out.service.candidates.map((c) => c.address)).toContain(out.service.chosen!.address);
      expect(out.path.outcome).toBe("delivered");
      const text = lab(name, ["explain", "node1/pod1", "svc/default/web", "--port", "80"]).stdout;
      expect(text).toContain("translation chosen: 10.96.0.11:80 -> ");
      // No endpoint: said (exit 0: nothing disagrees).
      const empty = lab(name, ["explain", "node1/pod1", "svc/default/empty", "--port", "80"]);
      expect(empty.stdout).toContain("none: rejected");
    });

    test("an endpoint being removed with --grace keeps answering while terminating (no ready one left), then the Service rejects", async () => {
      // itp's only endpoints are node2's pods: remove one with a grace period, then the other.
      lab(name, ["pod", "remove", "node2", "pod1"]);
      const remove = Bun.spawn([...LAB_CMD, "lab", "pod", "remove", "--name", name, "node2", "pod2", "--grace", "8"], { stdout: "pipe", stderr: "pipe" });
      // The grace period runs from when the endpoint shows terminating (the command waits for that
      // before it sleeps); 8 s leaves a loaded machine time for the probe below inside it.
      const itpNow = () => labJson<{ name: string; clusterIPs: string[]; endpoints: { terminating: boolean }[] }[]>(name, ["service", "list"]).find((x) => x.name === "itp")!;
      await until("itp's endpoints (each family's) terminating", () => { const eps = itpNow().endpoints; return eps.length > 0 && eps.every((e) => e.terminating); }, 60_000);
      // The terminating endpoint is the only one: the proxy falls back to it (serving), as kube-proxy does.
      const itpIP = itpNow().clusterIPs[0]!;
      const during = lab(name, ["exec", "node2", "--", ...LAB_CMD, "lab", "_probe", "--json", `${itpIP}:80`], { allowFail: true });
      expect(await remove.exited).toBe(0);
      const answers = JSON.parse(during.stdout) as { ok: boolean }[];
      expect(answers[0]!.ok).toBe(true);
      const after = labJson<CheckReport>(name, ["check"], { allowFail: true });
      const itp = after.results.filter((x) => x.to === "svc/default/itp");
      expect(itp.every((x) => !x.reachable)).toBe(true);
    });
  });
}
