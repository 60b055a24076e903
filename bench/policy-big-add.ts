// Served ADDs while a big policy is written (issue #24.9): a node namespace with the compiled
// agent (the build under test and the previous build, /work/baseline/dist-a31c2fb or
// $MNCNI_BASELINE, in the same run), one small policy in force, then a large NetworkPolicy
// (P pod peers x Q ports, in a namespace with no pods: the report's 11 KB policy made 40k
// rules and stalled a served ADD for 4.9 s) written to the manifests directory while pods
// are added back to back through the plugin the agent installed. Measures each ADD's wall
// time (runtime to result), the time until the kernel has the policy, and its size.
//   node_modules/.bin/bun bench/policy-big-add.ts [--sizes 100x200,200x400] [--baseline-sizes 100x200]
// Target: served ADDs under 100 ms while the change is written.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { spawn } from "bun";
import { requireBinary } from "../test/helpers/binary.ts";
import { createNetns, inNetns, netnsPath, run } from "../test/helpers/netns.ts";
import { agentArgs, buildCluster, destroyCluster, runtimeOf, waitFor, type TestCluster } from "../test/agent/lab.ts";

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
const MAX_DURING = 200;

const bigPolicy = (peers: number, ports: number) => ({
  apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "big", namespace: "empty" },
  spec: {
    podSelector: {},
    ingress: [{
      from: Array.from({ length: peers }, (_, i) => ({ namespaceSelector: { matchLabels: { team: `t${i % 10}` } }, podSelector: { matchLabels: { app: `a${i}` } } })),
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

async function measure(build: string, bin: string, peers: number, ports: number): Promise<Row> {
  let c: TestCluster | undefined;
  try {
    c = buildCluster(1);
    const n = c.nodes[0]!;
    const write = (file: string, docs: object[]) => {
      const tmp = join(c!.manifests, `.${file}.tmp`);
      writeFileSync(tmp, docs.map((d) => stringify(d)).join("---\n"));
      run(["mv", tmp, join(c!.manifests, file)]);
    };
    n.agent = spawn(agentArgs(c, n, [], bin), { stdout: "ignore", stderr: "ignore" });
    await waitFor("the agent's conflist", () => existsSync(join(n.dir, "conf/10-mncni.conflist")), 20_000);
    write("ns.yaml", ["app", "empty", ...Array.from({ length: 10 }, (_, i) => `t${i}`)].map((name) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { team: name } } })));
    write("small.yaml", [{ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "deny", namespace: "app" }, spec: { podSelector: {} } }]);
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
    const doc = bigPolicy(peers, ports);
    const bytes = Buffer.byteLength(stringify(doc));
    const t0 = performance.now();
    write("big.yaml", [doc]);
    const during: number[] = [];
    let programmedMs: number | string = "not within the run";
    for (let i = 0; i < MAX_DURING; i++) {
      during.push(await add());
      if (hasChain("np/empty/big/ingress")) {
        programmedMs = performance.now() - t0;
        break;
      }
    }
    const listed = inNetns(n.ns, ["nft", "list", "chain", "inet", "mncni-policy", "np/empty/big/ingress"], { allowFail: true });
    const rules = listed.code === 0 ? listed.stdout.split("\n").filter((l) => /\b(accept|drop|goto|jump|return)\b/.test(l)).length : "-";
    return { build, policy: `${peers} peers x ${ports} ports`, bytes, rules, programmedMs, rest, during };
  } finally {
    await destroyCluster(c);
  }
}

const rows: Row[] = [];
for (const [p, q] of BASELINE_SIZES) rows.push(await measure("a31c2fb (baseline)", BASELINE, p, q));
for (const [p, q] of SIZES) rows.push(await measure("this build", requireBinary(), p, q));

const f = (x: number | string) => (typeof x === "number" ? x.toFixed(0) : x);
console.log("\npolicy-big-add: served ADDs while a large NetworkPolicy (namespace without pods) is written; target: ADD < 100 ms\n");
console.log("| build | policy | YAML | rules in its chain | written after (ms) | ADD at rest, median (ms) | ADDs during | ADD during, median (ms) | ADD during, max (ms) |");
console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.build} | ${r.policy} | ${(r.bytes / 1024).toFixed(1)} KB | ${r.rules} | ${f(r.programmedMs)} | ${f(median(r.rest))} | ${r.during.length} | ${f(median(r.during))} | ${f(Math.max(...r.during))} |`);
}
