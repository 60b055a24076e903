// Start-up cost of the compiled executable: a CNI VERSION call (the cheapest call a runtime
// makes, so almost pure process start) next to the Go reference plugin /usr/lib/cni/bridge,
// measured in the same run with the runs interleaved, so machine noise hits both alike.
// Then the same for `bun build --compile` variants (minify / bytecode), to choose the
// Makefile's flags, and the peak RSS of a VERSION call.
//
// Last, what the first use of a module costs a process (a one-line program per module, built
// with the Makefile's flags): why the plugin's path avoids node:fs, node:path and node:os.
//
//   node_modules/.bin/bun bench/startup.ts [--runs 50] [--bin dist/mncni] [--no-variants] [--modules-only]
import "./help.ts";
import { spawnSync } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const BUN = resolve(ROOT, "node_modules/.bin/bun");
const REFERENCE = "/usr/lib/cni/bridge";
const GNU_TIME = "/usr/bin/time";

interface Options {
  runs: number;
  bin: string;
  variants: boolean;
  modulesOnly: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 50, bin: process.env.MNCNI_BIN ?? resolve(ROOT, "dist/mncni"), variants: true, modulesOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--runs") o.runs = Number(argv[++i]);
    else if (a === "--bin") o.bin = resolve(argv[++i] ?? "");
    else if (a === "--no-variants") o.variants = false;
    else if (a === "--modules-only") o.modulesOnly = true;
    else throw new Error(`unknown argument "${a}" (use --runs N, --bin PATH, --no-variants, --modules-only)`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error(`cannot use --runs "${o.runs}": must be a positive integer`);
  return o;
}

interface Subject {
  name: string;
  file: string;
  samples: number[];
}

const VERSION_ENV = { CNI_COMMAND: "VERSION", PATH: "/usr/bin:/bin" };

/** Wall time of one VERSION call in ms; fails loudly if the call did not answer. */
function timeVersion(file: string): number {
  const t0 = performance.now();
  const p = spawnSync([file], { env: VERSION_ENV, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const ms = performance.now() - t0;
  if (p.exitCode !== 0 || !p.stdout.toString().includes("supportedVersions")) {
    throw new Error(`cannot run "${file}" VERSION: exit ${p.exitCode}: ${p.stderr.toString()}`);
  }
  return ms;
}

/** One warm-up each, then `runs` rounds, each round running every subject once. */
function measure(subjects: Subject[], runs: number): void {
  for (const s of subjects) timeVersion(s.file);
  for (let i = 0; i < runs; i++) for (const s of subjects) s.samples.push(timeVersion(s.file));
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Peak RSS in KiB, from GNU time (ru_maxrss of the exec'd program itself). */
function peakRssKiB(file: string): number | undefined {
  if (!existsSync(GNU_TIME)) return undefined;
  const p = spawnSync([GNU_TIME, "-f", "%M", file], { env: VERSION_ENV, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const kib = Number(p.stderr.toString().trim().split("\n").at(-1));
  return Number.isFinite(kib) ? kib : undefined;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")).join("\n");
}

function report(subjects: Subject[], baseline: Subject): string {
  const base50 = percentile(baseline.samples, 50);
  const rows = [["executable", "p50 ms", "p90 ms", "p50 / bridge", "size", "peak RSS"]];
  for (const s of subjects) {
    const rss = peakRssKiB(s.file);
    rows.push([
      s.name,
      percentile(s.samples, 50).toFixed(2),
      percentile(s.samples, 90).toFixed(2),
      `${(percentile(s.samples, 50) / base50).toFixed(2)}x`,
      mib(statSync(s.file).size),
      rss === undefined ? "n/a" : mib(rss * 1024),
    ]);
  }
  return table(rows);
}

interface Variant {
  name: string;
  flags: string[];
}

const VARIANTS: Variant[] = [
  { name: "plain", flags: [] },
  { name: "--minify", flags: ["--minify"] },
  { name: "--bytecode", flags: ["--bytecode"] },
  { name: "--minify --bytecode", flags: ["--minify", "--bytecode"] },
  {
    name: "as built (Makefile)",
    flags: ["--minify", "--bytecode", "--format=esm", "--splitting", "--compile-jit-policy=100", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig"],
  },
];

function build(v: Variant, dir: string, entry = resolve(ROOT, "src/main.ts"), prefix = "mncni"): string {
  const out = `${dir}/${prefix}-${v.flags.map((f) => f.replace(/^--/, "")).join("-") || "plain"}`;
  const p = spawnSync([BUN, "build", "--compile", ...v.flags, entry, "--outfile", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`cannot build variant "${v.name}": ${p.stderr.toString()}${p.stdout.toString()}`);
  return out;
}

/** One-line programs: each prints a line after its module's first use. */
const MODULE_PROGRAMS: { name: string; source: string }[] = [
  { name: "floor: prints a line", source: `console.log("x");` },
  { name: "+ node:fs (statSync)", source: `import { statSync } from "node:fs"; console.log("x", statSync("/").size);` },
  { name: "+ node:path (join)", source: `import { join } from "node:path"; console.log("x", join(process.argv0, "y"));` },
  { name: "+ node:os (endianness)", source: `import { endianness } from "node:os"; console.log("x", endianness());` },
  { name: "+ bun:ffi (libc, one function)", source: `import { dlopen } from "bun:ffi"; console.log("x", dlopen("libc.so.6", { getpid: { args: [], returns: "i32" } }).symbols.getpid());` },
];

/** Wall and CPU (user + system, from rusage) ms of each program, interleaved in a random order per round. */
function moduleCosts(runs: number): void {
  const dir = mkdtempSync("/tmp/mncni-bench-modules-");
  try {
    const flags = VARIANTS.at(-1)!;
    const subjects = [
      { name: "bridge VERSION (Go reference)", file: REFERENCE, wall: [] as number[], cpu: [] as number[] },
      ...MODULE_PROGRAMS.map((m, i) => {
        writeFileSync(`${dir}/m${i}.ts`, m.source);
        return { name: m.name, file: build(flags, dir, `${dir}/m${i}.ts`, `m${i}`), wall: [] as number[], cpu: [] as number[] };
      }),
    ];
    for (let i = 0; i < runs + 3; i++) {
      for (const s of [...subjects].sort(() => Math.random() - 0.5)) {
        const t0 = performance.now();
        const p = spawnSync([s.file], { env: VERSION_ENV, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
        const wall = performance.now() - t0;
        if (i < 3) continue;
        const ru = p.resourceUsage;
        s.wall.push(wall);
        s.cpu.push((Number(ru.cpuTime.user) + Number(ru.cpuTime.system)) / 1000);
      }
    }
    const floor = subjects[1]!;
    const rows = [["program", "wall p50 ms", "CPU p50 ms", "CPU over the floor"]];
    for (const s of subjects) {
      rows.push([s.name, percentile(s.wall, 50).toFixed(2), percentile(s.cpu, 50).toFixed(2), s === subjects[0] ? "" : `${(percentile(s.cpu, 50) - percentile(floor.cpu, 50)).toFixed(2)}`]);
    }
    console.log(`\n# the first use of a module, ${runs} runs each, interleaved (load ${readFileSync("/proc/loadavg", "utf8").split(" ")[0]})\n`);
    console.log(table(rows));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  if (o.modulesOnly) return moduleCosts(o.runs);
  if (!existsSync(REFERENCE)) throw new Error(`cannot find the reference plugin "${REFERENCE}": install containernetworking-plugins`);
  if (!existsSync(o.bin)) throw new Error(`cannot find "${o.bin}": run make build (or pass --bin / MNCNI_BIN)`);
  const bridge: Subject = { name: "bridge (Go reference)", file: REFERENCE, samples: [] };

  console.log(`# VERSION call start-up, ${o.runs} runs each after one warm-up, interleaved\n`);
  const mncni: Subject = { name: o.bin.replace(`${ROOT}/`, ""), file: o.bin, samples: [] };
  measure([bridge, mncni], o.runs);
  console.log(report([bridge, mncni], bridge));
  if (!o.variants) return moduleCosts(o.runs);

  const dir = mkdtempSync("/tmp/mncni-bench-startup-");
  try {
    console.log(`\n# bun build --compile variants of src/main.ts (built in ${dir})\n`);
    const subjects = VARIANTS.map((v) => ({ name: v.name, file: build(v, dir), samples: [] as number[] }));
    const ref: Subject = { ...bridge, samples: [] };
    // The floor: a program that only prints the VERSION answer, cheaply (console.log alone
    // costs several ms of stdout set-up), so the table shows how much of the start-up is Bun itself and how
    // much is loading mncni's code.
    writeFileSync(`${dir}/floor.ts`, `Bun.write(Bun.stdout, ${JSON.stringify(JSON.stringify({ cniVersion: "1.1.0", supportedVersions: [] }) + "\n")});`);
    const floor: Subject = { name: "floor: Bun, empty program", file: build(VARIANTS[3]!, dir, `${dir}/floor.ts`, "floor"), samples: [] };
    measure([ref, floor, ...subjects], o.runs);
    console.log(report([ref, floor, ...subjects], ref));
    const fastest = subjects.reduce((a, b) => (percentile(b.samples, 50) < percentile(a.samples, 50) ? b : a));
    const slowest = subjects.reduce((a, b) => (percentile(b.samples, 50) > percentile(a.samples, 50) ? b : a));
    const gain = percentile(slowest.samples, 50) - percentile(fastest.samples, 50);
    console.log(`\nfastest: ${fastest.name} (p50 ${percentile(fastest.samples, 50).toFixed(2)} ms; ${gain.toFixed(2)} ms ahead of the slowest, ${slowest.name})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  moduleCosts(o.runs);
}

main();
