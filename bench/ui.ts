// The web page at scale: `mncni ui` (the compiled executable, as beside an agent) over a cluster
// of 10 nodes and 300 pods (a manifests directory, as the agent's --source dir: reads it) and a
// verdict log of 10,000 distinct flows, driven by headless Chromium (Debian's chromium through
// playwright-core). Measures, for the issue's targets:
//   - page interactive: navigation start -> topology drawn (300 pods) / flow table rendered
//     (10,000 flows), median of fresh loads (new browser context each: no cache);
//   - a new verdict in the page: a record appended to the log -> its row in the page (the
//     agent's own NFLOG -> log write comes before this; with --lab NAME, a real denied TCP
//     connection in that lab -> its row, the whole way);
//   - memory: the RSS of the `mncni ui` process, next to the same build's `mncni flows --follow`
//     on the same log (the terminal's live view, what the page adds to) and the baseline
//     build's (--baseline, default /work/baseline/dist-00a3f3e/mncni), all in the same run.
// Also saves a screenshot of the 10 x 30 topology (--shot FILE).
//
//   node_modules/.bin/bun bench/ui.ts [--loads 5] [--verdicts 10] [--bin dist/mncni] [--baseline PATH] [--shot FILE] [--lab NAME]
import "./help.ts";
import { spawn, spawnSync, type Subprocess } from "bun";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openBrowser } from "../test/helpers/browser.ts";
import { printedAddress } from "../test/helpers/ui-server.ts";

const ROOT = resolve(import.meta.dir, "..");
const NODES = 10;
const PODS_PER_NODE = 30;
const FLOWS = 10_000;
const NAMESPACES = ["shop", "payments", "monitoring"];

interface Options { loads: number; verdicts: number; bin: string; baseline: string; shot?: string; lab?: string }
function parseArgs(argv: string[]): Options {
  const o: Options = { loads: 5, verdicts: 10, bin: resolve(ROOT, "dist/mncni"), baseline: "/work/baseline/dist-00a3f3e/mncni" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--loads") o.loads = Number(argv[++i]);
    else if (a === "--verdicts") o.verdicts = Number(argv[++i]);
    else if (a === "--bin") o.bin = resolve(argv[++i] ?? "");
    else if (a === "--baseline") o.baseline = resolve(argv[++i] ?? "");
    else if (a === "--shot") o.shot = resolve(argv[++i] ?? "");
    else if (a === "--lab") o.lab = argv[++i];
    else throw new Error(`unknown argument "${a}" (use --loads N, --verdicts N, --bin PATH, --baseline PATH, --shot FILE, --lab NAME)`);
  }
  return o;
}

const podIP = (n: number, p: number) => `10.244.${n}.${p + 2}`;
const podName = (n: number, p: number) => `web-${n}-${p}`;
const nsOf = (p: number) => NAMESPACES[p % NAMESPACES.length]!;

/** The cluster as manifests (what `--source dir:` reads) and a verdict log of FLOWS distinct flows. */
function makeCluster(dir: string): { manifests: string; log: string } {
  const manifests = join(dir, "manifests");
  mkdirSync(manifests);
  for (let n = 1; n <= NODES; n++) {
    writeFileSync(join(manifests, `node-${n}.yaml`), `apiVersion: v1\nkind: Node\nmetadata:\n  name: node${n}\nspec:\n  podCIDRs: [10.244.${n}.0/24]\nstatus:\n  addresses:\n    - type: InternalIP\n      address: 10.224.0.${10 + n}\n  conditions:\n    - type: MncniPodMTU\n      status: "True"\n      reason: Published\n      message: "1450"\n`);
    for (let p = 0; p < PODS_PER_NODE; p++) {
      writeFileSync(join(manifests, `pod-${n}-${p}.yaml`), `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${podName(n, p)}\n  namespace: ${nsOf(p)}\n  labels:\n    app: web${p % 5}\n    tier: t${p % 3}\nspec:\n  nodeName: node${n}\nstatus:\n  phase: Running\n  podIP: ${podIP(n, p)}\n  podIPs: [{ip: ${podIP(n, p)}}]\n`);
    }
  }
  for (const ns of NAMESPACES) {
    writeFileSync(join(manifests, `np-${ns}.yaml`), `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: only-web0\n  namespace: ${ns}\nspec:\n  podSelector:\n    matchLabels:\n      tier: t1\n  policyTypes: [Ingress]\n  ingress:\n    - from:\n        - podSelector:\n            matchLabels:\n              app: web0\n`);
  }
  const log = join(dir, "flows.log");
  const t0 = Date.now() - 10 * 60_000;
  const lines: string[] = [];
  for (let i = 0; i < FLOWS; i++) {
    const sn = 1 + (i % NODES), sp = (i * 7) % PODS_PER_NODE, dn = 1 + ((i * 3) % NODES), dp = (i * 11) % PODS_PER_NODE;
    const deny = i % 4 !== 0;
    lines.push(JSON.stringify({
      time: new Date(t0 + i * 50).toISOString(), verdict: deny ? "deny" : "accept", protocol: "TCP",
      src: { ip: podIP(sn, sp), port: 30000 + (i % 20000), namespace: nsOf(sp), pod: podName(sn, sp) },
      dst: { ip: podIP(dn, dp), port: 1000 + i, namespace: nsOf(dp), pod: podName(dn, dp) },
      policy: { kind: "NetworkPolicy", namespace: nsOf(dp), name: "only-web0", rule: deny ? "default-deny" : "ingress[0]", direction: "ingress" },
    }));
  }
  writeFileSync(log, lines.join("\n") + "\n");
  return { manifests, log };
}

const rssMB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number) => x.toFixed(0);

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(o.bin)) throw new Error(`cannot find ${o.bin}: run make build`);
  const dir = mkdtempSync(join(tmpdir(), "mncni-bench-ui-"));
  const procs: Subprocess[] = [];
  const browser = await openBrowser();
  try {
    const { manifests, log } = makeCluster(dir);
    const empty = join(dir, "empty");
    mkdirSync(empty);
    const ui = spawn([o.bin, "ui", "--port", "0", "--source", `dir:${manifests}`, "--flow-log", log, "--cni-conf-dir", empty, "--cache-dir", empty, "--agent-addr", "127.0.0.1:1"], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NODE_NAME: "node1" } });
    procs.push(ui);
    const url = await printedAddress(ui);
    if (process.env.BENCH_UI_SERVE) {
      console.log(`serving ${url} (BENCH_UI_SERVE: until killed)`);
      await new Promise(() => {});
    }
    // The terminal's live view of the same log, this build's and the baseline's: the memory reference.
    const follow = (bin: string) => {
      const p = spawn([bin, "flows", "--follow", "--file", log], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
      procs.push(p);
      return p;
    };
    const followNow = follow(o.bin);
    const followBase = existsSync(o.baseline) ? follow(o.baseline) : undefined;

    // Page interactive, each view, fresh contexts (no cache), interleaved.
    const times: Record<"topology" | "flows", number[]> = { topology: [], flows: [] };
    for (let i = 0; i < o.loads; i++) {
      for (const view of ["topology", "flows"] as const) {
        const ctx = await browser.browser.newContext({ viewport: { width: 1400, height: 900 } });
        const page = await ctx.newPage();
        await page.goto(view === "flows" ? `${url}#flows` : url);
        const mark = `mncni-${view}-ready`;
        await page.waitForFunction((m) => performance.getEntriesByName(m).length > 0, mark, { timeout: 30_000, polling: 10 });
        if (view === "flows") await page.waitForSelector('[data-testid="flows"] tbody tr');
        times[view].push(await page.evaluate((m) => performance.getEntriesByName(m)[0]!.startTime, mark));
        if (view === "topology" && i === 0 && o.shot) {
          await page.waitForTimeout(300);
          await page.screenshot({ path: o.shot });
        }
        await ctx.close();
      }
    }

    // A new verdict: appended to the log -> its row in the open page.
    const ctx = await browser.browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${url}#flows`);
    await page.waitForSelector('[data-testid="flows"] tbody tr');
    const lat: number[] = [];
    for (let i = 0; i < o.verdicts; i++) {
      const dst = `10.99.${i}.1`;

      const t = performance.now();
      appendFileSync(log, JSON.stringify({ time: new Date().toISOString(), verdict: "deny", protocol: "TCP", src: { ip: podIP(1, 0), port: 40000 + i, namespace: "shop", pod: podName(1, 0) }, dst: { ip: dst, port: 443 }, policy: { kind: "NetworkPolicy", namespace: "shop", name: "only-web0", rule: "default-deny", direction: "ingress" } }) + "\n");
      await page.locator('[data-testid="flows"] tbody tr', { hasText: dst }).first().waitFor({ timeout: 10_000, state: "attached" });
      lat.push(performance.now() - t);
      await Bun.sleep(300 + Math.random() * 200); // not in step with the server's 250 ms poll
    }
    await Bun.sleep(500);
    const mem = { ui: rssMB(ui.pid), follow: rssMB(followNow.pid), base: followBase ? rssMB(followBase.pid) : NaN };
    await ctx.close();

    let labRow = "";
    if (o.lab) labRow = await labLatency(o, browser, dir);

    const load = spawnSync(["cat", "/proc/loadavg"]).stdout.toString().trim().split(" ").slice(0, 3).join(" ");
    console.log(`\nbench/ui.ts: ${NODES} nodes, ${NODES * PODS_PER_NODE} pods, ${FLOWS} flows; ${o.loads} loads per view, ${o.verdicts} verdicts; load ${load}\n`);
    console.log("| measure | result | target |");
    console.log("| --- | --- | --- |");
    console.log(`| page interactive, topology (300 pods drawn), median (max) | ${fmt(median(times.topology))} ms (${fmt(Math.max(...times.topology))}) | <= 1000 ms |`);
    console.log(`| page interactive, flows (10,000 flows, table rendered), median (max) | ${fmt(median(times.flows))} ms (${fmt(Math.max(...times.flows))}) | <= 1000 ms |`);
    console.log(`| new verdict: log line -> row in the page, median (max) | ${fmt(median(lat))} ms (${fmt(Math.max(...lat))}) | <= 1000 ms |`);
    if (labRow) console.log(labRow);
    console.log(`| RSS of \`mncni ui\` (10,000 flows, page open) | ${fmt(mem.ui)} MB | |`);
    console.log(`| RSS of \`mncni flows --follow\`, same log, this build | ${fmt(mem.follow)} MB | |`);
    console.log(`| RSS of \`mncni flows --follow\`, same log, baseline build | ${Number.isNaN(mem.base) ? "n/a" : `${fmt(mem.base)} MB`} | |`);
    console.log(`| the page's server adds (ui − flows --follow, this build) | ${fmt(mem.ui - mem.follow)} MB | <= 50 MB |`);
  } finally {
    await browser.close();
    for (const p of procs) {
      p.kill("SIGTERM");
      await p.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** In a running lab with agents: a real denied TCP connection -> its row in `mncni lab ui`'s page. */
async function labLatency(o: Options, browser: Awaited<ReturnType<typeof openBrowser>>, dir: string): Promise<string> {
  const lab = o.lab!;
  const status = JSON.parse(spawnSync([o.bin, "lab", "status", "--name", lab, "--json"]).stdout.toString()) as { pods: { name: string; node: string; namespace: string; ips: string[] }[] };
  const [a, b] = [status.pods.find((p) => p.node !== status.pods.at(-1)!.node)!, status.pods.at(-1)!];
  const policy = join(dir, "deny.yaml");
  writeFileSync(policy, `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: bench-ui-deny\n  namespace: default\nspec:\n  podSelector:\n    matchLabels:\n      node: ${b.node}\n  policyTypes: [Ingress]\n  ingress:\n    - from:\n        - podSelector:\n            matchLabels:\n              role: nobody\n`);
  spawnSync([o.bin, "lab", "apply", "--name", lab, "-f", policy]);
  const ui = spawn([o.bin, "lab", "ui", "--name", lab, "--port", "0"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  try {
    const url = await printedAddress(ui);
    const page = await (await browser.browser.newContext()).newPage();
    await page.goto(`${url}#flows`);
    await page.waitForSelector('[data-testid="flows"]');
    await Bun.sleep(3000); // the agents' pass with the policy
    const lat: number[] = [];
    const dstIp = b.ips[0]!.split("/")[0]!;
    // A sender already running in the pod's namespace: one SYN per line it reads, sent at once
    // (starting a process per probe would time the process start, not the page).
    const sender = spawn(["ip", "netns", "exec", a.namespace, "python3", "-u", "-c", `import socket,sys
for line in sys.stdin:
    s = socket.socket(); s.settimeout(0.3)
    try: s.connect(("${dstIp}", 7777))
    except OSError: pass
    s.close(); print("sent", flush=True)`], { stdin: "pipe", stdout: "ignore", stderr: "ignore" });
    const counted = async () => (await page.locator('tr[data-policy="default/bench-ui-deny"] td:last-child').allInnerTexts()).reduce((x, y) => x + Number(y), 0);
    try {
      for (let i = 0; i < o.verdicts; i++) {
        const before = await counted();
        const t = performance.now();
        sender.stdin.write("go\n");
        sender.stdin.flush();
        for (const end = t + 10_000; (await counted()) <= before; ) if (performance.now() > end) throw new Error("the denied connection's row did not appear in 10 s");
        lat.push(performance.now() - t);
        await Bun.sleep(1500 + Math.random() * 300); // past the SYN's retransmission (1 s), out of step with the polls
      }
    } finally {
      sender.stdin.end();
      sender.kill();
    }
    return `| new verdict in lab ${lab}: TCP connect -> agent's log -> row, median (max) | ${fmt(median(lat))} ms (${fmt(Math.max(...lat))}) | <= 1000 ms |`;
  } finally {
    spawnSync([o.bin, "lab", "delete", "--name", lab, "-f", policy]);
    ui.kill("SIGTERM");
    await ui.exited;
  }
}

await main();
