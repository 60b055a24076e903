// Lab API server benchmark: 1,000 Nodes and 30,000 Pods served to 3 watching clients, the
// test fake (test/helpers/kube-apiserver.ts, the lab server with test hooks) beside it.
//   node_modules/.bin/bun bench/lab-apiserver.ts [--nodes 1000] [--pods 30000] [--writes 300]
//       [--baseline-fake OLD/test/helpers/kube-apiserver.ts]
// --baseline-fake adds a row for the fake of another checkout (e.g. the build before the fake
// became a wrapper: `git archive REV src test/helpers deploy | tar -x -C OLD`), same run.
// Each server runs in its own process (its RSS is its own); the lab server twice, in memory
// and keeping state.json (what `lab apiserver` does). Measures: seeding the objects
// (in-process puts), a full list of Pods by each of 3 clients (concurrently), then --writes
// pod label patches one after the other (p50/p99 of one patch), the time until all 3 watches
// have seen every one, and the server's RSS at the end. Target: RSS <= 500 MB.
import "./help.ts";
import { spawn } from "bun";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";

const flag = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const flagText = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const NODES = flag("nodes", 1000);
const PODS = flag("pods", 30_000);
const WRITES = flag("writes", 300);

interface Served {
  url: string;
  token: string;
  ca: string;
  seedMs: number;
}

/** The child: one server, seeded, its address on stdout; it runs until killed. */
async function serve(impl: string): Promise<void> {
  const pod = (i: number) => ({
    metadata: { name: `pod-${i}`, namespace: `ns-${i % 50}`, labels: { app: `app-${i % 100}`, "pod-template-hash": "abcdef" }, annotations: { note: "x".repeat(200) } },
    spec: { nodeName: `node-${i % NODES}`, containers: [{ name: "c", image: "registry.example/app:1", ports: [{ name: "http", containerPort: 8080 }] }] },
    status: { phase: "Running", podIP: `10.${128 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, podIPs: [{ ip: `10.${128 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}` }] },
  });
  const node = (i: number) => ({ metadata: { name: `node-${i}` }, spec: { podCIDRs: [`10.${128 + (i >> 8)}.${i & 255}.0/24`] }, status: { addresses: [{ type: "InternalIP", address: `10.224.${i >> 8}.${i & 255}` }] } });
  let put: (plural: string, o: object) => unknown;
  let out: Omit<Served, "seedMs">;
  if (impl.startsWith("lab")) {
    const { ApiServer } = await import("../src/lab/apiserver/server.ts");
    const s = new ApiServer({ dir: process.argv[process.argv.indexOf("--dir") + 1]!, persist: impl === "lab-persist" }).listen();
    put = (p, o) => s.put(p, o);
    out = { url: s.url, token: s.tokens.tokenOf("admin"), ca: s.certs.ca };
  } else {
    const module = impl === "baseline-fake" ? flagText("baseline-fake")! : "../test/helpers/kube-apiserver.ts";
    const { FakeApiServer } = (await import(module)) as typeof import("../test/helpers/kube-apiserver.ts");
    const s = FakeApiServer.start({ historySize: 10_000 });
    put = (p, o) => s.put(p, o);
    out = { url: s.url, token: s.token, ca: s.caFile };
  }
  const t0 = performance.now();
  for (let i = 0; i < 50; i++) put("namespaces", { metadata: { name: `ns-${i}` } });
  for (let i = 0; i < NODES; i++) put("nodes", node(i));
  for (let i = 0; i < PODS; i++) put("pods", pod(i));
  console.log(JSON.stringify({ ...out, seedMs: performance.now() - t0 }));
  await new Promise(() => {});
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

async function measure(impl: string): Promise<Record<string, string>> {
  const dir = mkdtempSync("/tmp/mncni-bench-labapi-");
  const baseline = flagText("baseline-fake");
  const child = spawn(["node_modules/.bin/bun", import.meta.path, "--serve", impl, "--dir", dir, "--nodes", String(NODES), "--pods", String(PODS), ...(baseline ? ["--baseline-fake", baseline] : [])], { stdout: "pipe", stderr: "inherit" });
  try {
    const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
    let line = "";
    while (!line.includes("\n")) line += new TextDecoder().decode((await reader.read()).value);
    const s = JSON.parse(line) as Served;
    const init = { headers: { Authorization: `Bearer ${s.token}` }, tls: { ca: Bun.file(s.ca) } };
    const t0 = performance.now();
    const lists = await Promise.all([0, 1, 2].map(async () => (await (await fetch(`${s.url}/api/v1/pods`, init)).json()) as { items: unknown[]; metadata: { resourceVersion: string } }));
    const listMs = performance.now() - t0;
    if (lists.some((l) => l.items.length !== PODS)) throw new Error(`${impl}: a list did not return ${PODS} pods`);
    const seen = [0, 0, 0];
    const watches = lists.map(async (l, w) => {
      const res = await fetch(`${s.url}/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=${l.metadata.resourceVersion}`, init);
      let buf = "";
      for await (const chunk of res.body as ReadableStream<Uint8Array>) {
        buf += new TextDecoder().decode(chunk);
        const parts = buf.split("\n");
        buf = parts.pop()!;
        for (const p of parts) if (p.includes('"MODIFIED"')) seen[w]!++;
        if (seen[w] === WRITES) return;
      }
    });
    const lat: number[] = [];
    const w0 = performance.now();
    for (let i = 0; i < WRITES; i++) {
      const t = performance.now();
      const r = await fetch(`${s.url}/api/v1/namespaces/ns-${i % 50}/pods/pod-${i}`, { ...init, method: "PATCH", headers: { ...init.headers, "Content-Type": "application/merge-patch+json" }, body: JSON.stringify({ metadata: { labels: { bench: String(i) } } }) });
      if (r.status !== 200) throw new Error(`${impl}: patch answered ${r.status}`);
      await r.arrayBuffer();
      lat.push(performance.now() - t);
    }
    await Promise.all(watches);
    const allSeenMs = performance.now() - w0;
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) / 1024;
    return {
      server: { lab: "lab API server (in memory)", "lab-persist": "lab API server (state.json)", "baseline-fake": `test fake of ${flagText("baseline-fake")} (baseline)` }[impl] ?? "test fake (wrapper)",
      seed: `${(s.seedMs / 1000).toFixed(2)} s`,
      "3 lists of all pods": `${(listMs / 1000).toFixed(2)} s`,
      "patch p50 / p99": `${pct(lat, 50).toFixed(1)} / ${pct(lat, 99).toFixed(1)} ms`,
      [`${WRITES} writes seen by 3 watches`]: `${(allSeenMs / 1000).toFixed(2)} s`,
      "RSS": `${rss.toFixed(0)} MB`,
    };
  } finally {
    child.kill();
    await child.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes("--serve")) await serve(process.argv[process.argv.indexOf("--serve") + 1]!);
else {
  console.log(`lab API server bench: ${NODES} Nodes, ${PODS} Pods, 3 watching clients (target RSS <= 500 MB)`);
  const impls = [...(flagText("baseline-fake") ? ["baseline-fake"] : []), "fake", "lab", "lab-persist"];
  const rows: Record<string, string>[] = [];
  for (const impl of impls) rows.push(await measure(impl));
  const cols = Object.keys(rows[0]!);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i]!)).join("  ");
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => r[c]!)));
}
