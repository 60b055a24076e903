// `mncni controller --endpoint-slices` (compiled) for a Service with 250 pods, against the lab
// API server with the controller's token under deploy/'s RBAC: its EndpointSlices hold at most
// 100 endpoints each (kube-controller-manager's default), cover every pod once, and a change
// rewrites only the slice it touches; `--max-endpoints-per-slice 40` splits them further. The
// independent view is kubectl's (`kubectl get endpointslices -o json`). An agent with
// --service-proxy (compiled, --source kubernetes, in a node namespace) merges the slices of the
// one Service: its nftables table (`nft -j`) sends the Service to every endpoint.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ApiServer } from "../../src/lab/apiserver/server.ts";
import type { Obj } from "../../src/lab/apiserver/kinds.ts";
import { requireBinary } from "../helpers/binary.ts";
import { inNetns, netnsPath } from "../helpers/netns.ts";
import { until } from "../helpers/until.ts";
import { agentArgv, agentNode, removeAgentNode } from "../agent/agent-process.ts";

// Waits are for conditions, with deadlines generous for a loaded 2-core machine.
setDefaultTimeout(240_000);
const LONG = 120_000;

const dir = mkdtempSync("/tmp/mncni-ctl-split-");
let api: ApiServer;
let ns = "";
let tmp = "";
let agent: Subprocess | undefined;
let controller: Subprocess | undefined;
const refused: string[] = [];

const READY = [{ type: "Ready", status: "True" }];
const pod = (name: string, ip: string): Obj => ({
  metadata: { name, namespace: "apps", labels: { app: "web" } },
  spec: { nodeName: "n2", containers: [{ name: "c" }] },
  status: { phase: "Running", podIP: ip, podIPs: [{ ip }], conditions: READY },
});
/** Pod i (1..250) at 10.244.2.i; the ones added later at 10.244.3.i. */
const first = Array.from({ length: 250 }, (_, i) => pod(`web-${String(i + 1).padStart(3, "0")}`, `10.244.2.${i + 1}`));

function startController(extra: string[] = []): void {
  controller = Bun.spawn([requireBinary(), "controller", "--kubeconfig", api.writeKubeconfig("controller"), "--metrics-addr", "off", "--log-file", join(dir, "controller.log"), "--cluster-cidr", "10.244.0.0/16", "--endpoint-slices", ...extra], { stdout: "ignore", stderr: "ignore" });
}
async function stopController(): Promise<void> {
  controller?.kill("SIGKILL");
  await controller?.exited;
  controller = undefined;
}

interface Slice { metadata: { name: string; resourceVersion: string; labels?: Record<string, string> }; endpoints?: { addresses: string[] }[] }
/** The Service's slices as kubectl shows them (spawned, not spawnSync: the API server answers from this process). */
async function kubectlSlices(): Promise<Slice[]> {
  const p = Bun.spawn(["kubectl", "--kubeconfig", api.writeKubeconfig("admin"), "get", "endpointslices", "-n", "apps", "-l", "kubernetes.io/service-name=web", "-o", "json"], { stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  if (code !== 0) return [];
  return (JSON.parse(out).items as Slice[]).sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
}
const sizes = (slices: Slice[]) => slices.map((s) => s.endpoints?.length ?? 0);
const covered = (slices: Slice[]) => slices.flatMap((s) => (s.endpoints ?? []).map((e) => e.addresses[0]!)).sort().join(" ");
const addressesOf = (pods: Obj[]) => pods.map((p) => p.status.podIP as string).sort().join(" ");

/** Waits until kubectl shows slices of at most `cap` endpoints covering exactly these pods (each once); returns them. */
async function settled(what: string, pods: Obj[], cap: number): Promise<Slice[]> {
  let last: Slice[] = [];
  await until(what, async () => {
    last = await kubectlSlices();
    const ok = last.length > 0 && sizes(last).every((n) => n > 0 && n <= cap) && covered(last) === addressesOf(pods);
    // kubectl is a heavy process: asked again at most every 200 ms (pacing, not a wait for the controller).
    if (!ok) await Bun.sleep(200);
    return ok;
  }, LONG).catch((e) => {
    throw new Error(`${(e as Error).message}: kubectl shows ${last.map((s) => `${s.metadata.name}: ${s.endpoints?.length ?? 0}`).join(", ")}`);
  });
  return last;
}

/** The endpoint addresses the agent's Service table names (every pod address, 10.244.2-3.x, in it). */
function proxied(): string {
  const r = inNetns(ns, ["nft", "-j", "list", "table", "inet", "mncni-services"], { allowFail: true });
  if (r.code !== 0) return "";
  return [...new Set(r.stdout.match(/\b10\.244\.[23]\.\d+\b/g) ?? [])].sort().join(" ");
}

beforeAll(() => {
  ({ ns, tmp } = agentNode("es", "10.228.0"));
  api = new ApiServer({
    dir, bookmarkIntervalMs: 500, also: [{ hostname: "127.0.0.1", netns: netnsPath(ns) }],
    done: (req, url, _body, r) => void (r.code === 403 && refused.push(`${req.method} ${url.pathname}: ${r.body.message}`)),
  }).listen();
  for (const name of ["default", "kube-system", "apps"]) api.put("namespaces", { metadata: { name } });
  api.put("nodes", { metadata: { name: "me" }, spec: { podCIDRs: ["10.244.1.0/24"] }, status: { addresses: [{ type: "InternalIP", address: "10.228.0.1" }] } });
  api.put("nodes", { metadata: { name: "n2" }, spec: { podCIDRs: ["10.244.2.0/23"] }, status: { addresses: [{ type: "InternalIP", address: "10.228.0.2" }] } });
  for (const p of first) api.put("pods", p);
  api.put("services", { metadata: { name: "web", namespace: "apps" }, spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }], clusterIP: "10.96.0.50", clusterIPs: ["10.96.0.50"] } });
});

afterAll(async () => {
  await stopController();
  await removeAgentNode(tmp, agent);
  api?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("EndpointSlices split at 100 endpoints", () => {
  test("250 pods: slices of at most 100 covering every pod once, labelled for the Service and the controller (kubectl's view)", async () => {
    startController();
    const slices = await settled("250 endpoints in slices of at most 100", first, 100);
    expect(sizes(slices)).toEqual([100, 100, 50]);
    for (const s of slices) {
      expect(s.metadata.labels?.["kubernetes.io/service-name"]).toBe("web");
      expect(s.metadata.labels?.["endpointslice.kubernetes.io/managed-by"]).toBe("endpointslice-controller.k8s.io");
    }
  });

  test("the agent's Service proxy merges the slices: its nftables table names all 250 endpoints", async () => {
    agent = Bun.spawn(["ip", "netns", "exec", ns, ...agentArgv({ mncni: requireBinary(), tmp, node: "me", source: `kubernetes:${api.writeKubeconfig("agent-me", join(tmp, "kubeconfig"))}`, clusterCidr: "10.244.0.0/16" }, ["--service-proxy"])], { stdout: "ignore", stderr: "ignore" });
    await until("all 250 endpoints in the agent's table", () => proxied() === addressesOf(first), LONG);
  });

  test("a pod going rewrites only its slice; pods coming fill the slice with room before a new one is made", async () => {
    const before = await kubectlSlices();
    const rv = new Map(before.map((s) => [s.metadata.name, s.metadata.resourceVersion]));
    // web-150 is in the second slice (pods are packed in name order at first).
    const holder = before.find((s) => s.endpoints?.some((e) => e.addresses[0] === "10.244.2.150"))!.metadata.name;
    api.remove("pods", "web-150", "apps");
    let pods = first.filter((p) => p.metadata!.name !== "web-150");
    const after = await settled("web-150 gone", pods, 100);
    expect(after.filter((s) => s.metadata.resourceVersion !== rv.get(s.metadata.name)).map((s) => s.metadata.name)).toEqual([holder]);
    // 60 more (seen by the controller in one batch or several): they go to the slices with room
    // or new ones; the full slice that held neither web-150 nor room is never rewritten, and
    // no slice is replaced.
    const full = after.find((s) => s.metadata.name !== holder && s.endpoints?.length === 100)!;
    const more = Array.from({ length: 60 }, (_, i) => pod(`more-${String(i + 1).padStart(2, "0")}`, `10.244.3.${i + 1}`));
    for (const p of more) api.put("pods", p);
    pods = [...pods, ...more];
    const grown = await settled("309 endpoints", pods, 100);
    expect(grown.find((s) => s.metadata.name === full.metadata.name)?.metadata.resourceVersion).toBe(full.metadata.resourceVersion);
    for (const s of after) expect(grown.map((g) => g.metadata.name)).toContain(s.metadata.name);
    await until("the agent's table follows", () => proxied() === addressesOf(pods), LONG);
  });

  test("--max-endpoints-per-slice 40: a restarted controller splits the slices to at most 40", async () => {
    await stopController();
    startController(["--max-endpoints-per-slice", "40"]);
    const pods = api.store.list("pods").filter((p) => p.metadata?.namespace === "apps");
    expect(pods.length).toBe(309);
    await settled("slices of at most 40", pods, 40);
    await until("the agent's table still names every endpoint", () => proxied() === addressesOf(pods), LONG);
    expect(refused).toEqual([]);
  });
});
