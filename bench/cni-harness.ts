// What the CNI benchmarks share (cni-latency.ts, conntrack-add.ts, plugin-alone.ts, ...): throwaway
// node and pod namespaces under one tag, removed at the end or on Ctrl-C or SIGTERM with the
// `mncni serve` processes started; a plugin set up (PluginSetup) and started in a node
// namespace as a runtime starts it (process start included) and timed; percentiles; a marked
// block of docs/benchmarks.md replaced; `sh` for a command's output (other benchmarks use it
// too; shell.ts has the variant that returns the exit code).
import { spawnSync, type Subprocess } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

export function sh(argv: string[], stdin?: string): string {
  const p = spawnSync(argv, { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`command failed: ${argv.join(" ")}: ${p.stderr.toString()}`);
  return p.stdout.toString();
}

/** Prints the usage and exits when the command line asks for --help (before anything is set up). */
export function helpOr(usage: string): void {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    console.log(usage);
    process.exit(0);
  }
}

/** The value after `--NAME` on the command line, if any. */
export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

export class BenchHarness {
  /** Prefix of every namespace this run makes (unique per process). */
  readonly tag: string;
  readonly tmp: string;
  private readonly namespaces: string[] = [];
  private readonly servers: Subprocess[] = [];

  constructor(prefix: string) {
    this.tag = `${prefix}${process.pid.toString(36)}`;
    this.tmp = mkdtempSync(`/tmp/${this.tag}-bench-`);
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      process.on(signal, () => {
        this.cleanup();
        process.exit(code);
      });
    }
  }

  /** A namespace with lo up, removed by cleanup(). */
  netns(name: string): string {
    sh(["ip", "netns", "add", name]);
    this.namespaces.push(name);
    sh(["ip", "-n", name, "link", "set", "lo", "up"]);
    return name;
  }

  /** `mncni serve` in a node namespace (as the agent runs it), once its socket is there. */
  async serve(mncni: string, node: string, socket: string, label: string): Promise<Subprocess> {
    const p = Bun.spawn(["ip", "netns", "exec", node, mncni, "serve", "--socket", socket], { stdout: "ignore", stderr: "inherit" });
    this.servers.push(p);
    for (let i = 0; i < 500 && !existsSync(socket); i++) await Bun.sleep(20);
    if (!existsSync(socket)) throw new Error(`${label}: mncni serve did not come up`);
    return p;
  }

  cleanup(): void {
    for (const p of this.servers.splice(0)) p.kill();
    for (const n of this.namespaces.splice(0)) spawnSync(["ip", "netns", "del", n]);
    rmSync(this.tmp, { recursive: true, force: true });
  }

  /** Runs the benchmark, cleaning up whatever happens. */
  async run(main: () => Promise<void>): Promise<void> {
    try {
      await main();
    } finally {
      this.cleanup();
    }
  }
}

export interface PluginCall {
  /** Who is calling (named in an error). */
  label: string;
  /** The node namespace the plugin runs in. */
  node: string;
  bin: string;
  cniPath: string;
  conf: Record<string, unknown>;
  command: "ADD" | "DEL" | "VERSION";
  containerId: string;
  /** The pod's namespace name (/run/netns/NAME). */
  pod: string;
  /** How the plugin enters the node namespace (default `ip netns exec`). */
  enter?: "ip-netns-exec" | "nsenter";
  /** A command the plugin runs under, e.g. /usr/bin/time. */
  wrap?: string[];
}

/** A plugin set up for a benchmark: its binary and config, and the node and pod namespaces it runs in. */
export interface PluginSetup {
  label: string;
  bin: string;
  cniPath: string;
  conf: Record<string, unknown>;
  node: string;
  pods: string[];
}

/** One plugin call as a runtime makes it: its wall time (ms) and stdout; throws on a non-zero exit. */
export async function runPlugin(c: PluginCall): Promise<{ ms: number; stdout: string }> {
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: c.command,
    CNI_CONTAINERID: c.containerId,
    CNI_NETNS: `/run/netns/${c.pod}`,
    CNI_IFNAME: "eth0",
    CNI_PATH: c.cniPath,
  };
  const enter = c.enter === "nsenter" ? ["nsenter", `--net=/run/netns/${c.node}`] : ["ip", "netns", "exec", c.node];
  const started = performance.now();
  const p = Bun.spawn([...enter, ...(c.wrap ?? []), c.bin], { env, stdin: Buffer.from(JSON.stringify(c.conf)), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`${c.label}: ${c.command} of ${c.containerId} failed (${code}): ${out}${err}`);
  return { ms, stdout: out };
}

/** Replaces the block between `<!-- NAME:begin…-->` and `<!-- NAME:end -->` of docs/benchmarks.md (markers included in block). */
export function writeBenchmarksBlock(name: string, block: string): void {
  const file = resolve(import.meta.dir, "../docs/benchmarks.md");
  const doc = readFileSync(file, "utf8");
  const re = new RegExp(`<!-- ${name}:begin[\\s\\S]*?<!-- ${name}:end -->`);
  if (!re.test(doc)) throw new Error(`${file} has no ${name} markers`);
  writeFileSync(file, doc.replace(re, () => block));
}
