// Served ADDs while a big policy is written (issue #24.9): a node namespace with the compiled
// agent (the build under test and the previous build, /work/baseline/dist-a31c2fb or
// $MNCNI_BASELINE, in the same run) fed by the fake API server (`--source kubernetes`, what
// the DaemonSet runs: objects arrive as JSON over a watch), one small policy in force, then
// a large NetworkPolicy (P pod peers x Q ports, in a namespace with no pods: the report's
// 11 KB policy made 40k rules and stalled a served ADD for 4.9 s) put to the API while pods
// (known to the agent, so their ADDs need not wait for labels) are added back to back
// through the plugin the agent installed. Measures each ADD's wall time (runtime to
// result), the time until the kernel has the policy, and its size.
//   node_modules/.bin/bun bench/policy-big-add.ts [--sizes 100x200,200x400] [--baseline-sizes 100x200] [--rounds 8] [--baseline-rounds 3]
// Target: served ADDs under 100 ms while the change is written.
import "./help.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "bun";
import { requireBinary } from "../test/helpers/binary.ts";
import { createNetns, inNetns, netnsPath } from "../test/helpers/netns.ts";
import { agentArgs, buildCluster, destroyCluster, runtimeOf, waitFor, type TestCluster } from "../test/agent/lab.ts";
import { FakeApiServer } from "../test/helpers/kube-apiserver.ts";

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : def;
};
const sizes = (s: string) => s.split(",").filter(Boolean).map((x) => x.split("x").map(Number) as [number, number]);
const SIZES = sizes(arg("--sizes", "100x200,200x400"));
const BASELINE_SIZES = sizes(arg("--baseline-sizes", "100x200"));
const BASELINE = join(process.env.MNCNI_BASELINE ?? "/work/baseline/dist-a31c2fb", "mncni");
/** ADDs timed at rest, and at most while a change is written (the loop ends once the kernel has it). */
const AT_REST = 5;
const MAX_DURING = 60;
const ROUNDS = Number(arg("--rounds", "8"));
/** The previous build takes seconds per round: fewer by default. */
const BASELINE_ROUNDS = Number(arg("--baseline-rounds", "3"));

/** Round r's policy: a new name each round, so each write removes the last one and adds another. */
const bigPolicy = (peers: number, ports: number, r: number) => ({
  metadata: { name: `big${r}`, namespace: "empty" },
  spec: {
    podSelector: {},
    ingress: [{
      from: Array.from({ length: peers }, (_, i) => ({ podSelector: { matchLabels: { app: `a${i}` } } })),
      ports: Array.from({ length: ports }, (_, i) => ({ port: 1000 + i, protocol: "TCP" })),
    }],
  },
});

interface Row {
  build: string;
  policy: string;
  bytes: number;
  rules: number | string;
  programmedMs: number | string;
  rest: number[];
  during: number[];
}

const median = (x: number[]) => (x.length ? [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)]! : NaN);

async function measure(build: string, bin: string, peers: number, ports: number, rounds: number): Promise<Row> {
  let c: TestCluster | undefined;
  let api: FakeApiServer | undefined;
  try {
    c = buildCluster(1);
    const n = c.nodes[0]!;
    api = FakeApiServer.start({ netns: netnsPath(n.ns), historySize: 1000 });
    api.put("nodes", { metadata: { name: n.name }, spec: { podCIDRs: [n.podCIDR] }, status: { addresses: [{ type: "InternalIP", address: n.ip }] } });
    for (const name of ["app", "empty", ...Array.from({ length: 10 }, (_, i) => `t${i}`)]) api.put("namespaces", { metadata: { name, labels: { team: name } } });
    // The pods to be added, known to the agent before their ADDs (a served ADD for a pod the
    // cache does not know waits for its labels).
    for (let k = 0; k < AT_REST + MAX_DURING * rounds; k++) api.put("pods", { metadata: { name: `p${k}`, namespace: "app", labels: { app: "x" } }, spec: { nodeName: n.name, containers: [{ name: "c" }] }, status: { phase: "Pending" } });
    api.put("networkpolicies", { metadata: { name: "deny", namespace: "app" }, spec: { podSelector: {} } });
    const args = agentArgs(c, n, [], { bin });
    args[args.indexOf("--source") + 1] = `kubernetes:${api.writeKubeconfig(join(c.tmp, "kubeconfig"))}`;
    n.agent = spawn(args, { stdout: "ignore", stderr: "ignore" });
    await waitFor("the agent's conflist", () => existsSync(join(n.dir, "conf/10-mncni.conflist")), 30_000);
    const hasChain = (name: string) => inNetns(n.ns, ["nft", "list", "chain", "inet", "mncni-policy", name], { allowFail: true }).code === 0;
    await waitFor("the small policy", () => hasChain("ingress-np/app"), 20_000);
    let k = 0;
    const add = async (): Promise<number> => {
      const netns = createNetns("mnb-pod");
      const t0 = performance.now();
      await runtimeOf(n).add({ containerId: `b${k}`, netns: netnsPath(netns), ifname: "eth0", args: { K8S_POD_NAMESPACE: "app", K8S_POD_NAME: `p${k++}` } });
      return performance.now() - t0;
    };
    const rest: number[] = [];
    for (let i = 0; i < AT_REST; i++) rest.push(await add());
    let bytes = 0;
    const during: number[] = [];
    const programmed: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const doc = bigPolicy(peers, ports, r);
      bytes = Buffer.byteLength(JSON.stringify(doc));
      const t0 = performance.now();
      if (r > 0) api.remove("networkpolicies", `big${r - 1}`, "empty");
      api.put("networkpolicies", doc);
      for (let i = 0; i < MAX_DURING; i++) {
        during.push(await add());
        if (hasChain(`np/empty/big${r}/ingress`)) {
          programmed.push(performance.now() - t0);
          break;
        }
      }
    }
    const programmedMs = programmed.length === rounds ? median(programmed) : `${programmed.length} of ${rounds} rounds`;
    const listed = inNetns(n.ns, ["nft", "list", "chain", "inet", "mncni-policy", `np/empty/big${rounds - 1}/ingress`], { allowFail: true });
    const rules = listed.code === 0 ? listed.stdout.split("\n").filter((l) => /\b(accept|drop|goto|jump|return)\b/.test(l)).length : "-";
    return { build, policy: `${peers} peers x ${ports} ports`, bytes, rules, programmedMs, rest, during };
  } finally {
    await destroyCluster(c);
    api?.close();
  }
}

const rows: Row[] = [];
for (const [p, q] of BASELINE_SIZES) rows.push(await measure("a31c2fb (baseline)", BASELINE, p, q, BASELINE_ROUNDS));
for (const [p, q] of SIZES) rows.push(await measure("this build", requireBinary(), p, q, ROUNDS));

const f = (x: number | string) => (typeof x === "number" ? x.toFixed(0) : x);
console.log("\npolicy-big-add: served ADDs while a large NetworkPolicy (namespace without pods) is written; target: ADD < 100 ms\n");
console.log(`(each policy written ${BASELINE_ROUNDS} times with the previous build, ${ROUNDS} with this one, replacing the last; ADDs back to back until the kernel has it)\n`);
console.log("| build | policy | JSON | rules in its chain | written after, median (ms) | ADD at rest, median (ms) | ADDs during | ADD during, median (ms) | ADD during, max (ms) |");
console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.build} | ${r.policy} | ${(r.bytes / 1024).toFixed(1)} KB | ${r.rules} | ${f(r.programmedMs)} | ${f(median(r.rest))} | ${r.during.length} | ${f(median(r.during))} | ${f(Math.max(...r.during))} |`);
}
