// Driving `mncni lab` from tests: the compiled executable when there is one ($MNCNI_BIN or
// dist/mncni), else the sources through bun. Every lab a test makes is removed by downAll().
import { afterAll, beforeAll, expect } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { MNCNI_BIN } from "../helpers/binary.ts";
import { run, uniqueName, type RunResult } from "../helpers/netns.ts";
import { markOwned, unmarkOwned } from "../helpers/run-owner.ts";
import { LAB_ROOT } from "../../src/lab/topology.ts";
import type { LabStatus } from "../../src/lab/status.ts";

export const LAB_CMD = existsSync(MNCNI_BIN) ? [MNCNI_BIN] : [process.execPath, resolve(import.meta.dir, "../../src/main.ts")];
/** auto: the agent when the executable has one, else static wiring (see docs/lab.md). */
export const WIRING = process.env.MNCNI_LAB_WIRING ?? "auto";
/**
 * Where the lab's agents read the cluster: `lab up`'s default (kubernetes: the lab's API server)
 * unless MNCNI_LAB_SOURCE says dir (source-dir.matrix.test.ts runs the suites that way; read at
 * each call, as that file sets it only while its own tests run).
 */
export const wantedSource = (): string => process.env.MNCNI_LAB_SOURCE ?? (WIRING === "static" ? "dir" : "kubernetes");
/** Appended to the name of a test that needs the agent, so that its skip says why (scripts/test.sh). */
export const NEEDS_AGENT = WIRING === "static" ? " — skipped: static wiring has no agent (MNCNI_LAB_WIRING=static)" : "";

const labs = new Set<string>();

export function newLabName(): string {
  // Namespace names are <lab>-<node>-<pod>: keep the lab name short.
  const name = uniqueName("mnl").slice(0, 10).replace(/-$/, "");
  return ownLab(name);
}

/** `mncni lab <argv...>` as given (no --name added); env is added to this process's. */
export function labRaw(argv: string[], opts: { env?: Record<string, string>; allowFail?: boolean } = {}): RunResult {
  return run([...LAB_CMD, "lab", ...argv], { env: { ...(process.env as Record<string, string>), ...opts.env }, allowFail: opts.allowFail });
}

/** Marks a lab name as this run's, so downAll() removes it. */
export function ownLab(name: string): string {
  labs.add(name);
  // A run killed before downAll leaves it: the next run's sweep takes it down (test/helpers/run-owner.ts).
  markOwned("lab", name, process.env.MNCNI_LAB_ROOT ? { labRoot: process.env.MNCNI_LAB_ROOT } : {});
  return name;
}

/** `mncni lab <sub> --name <lab> <rest...>`; throws on failure unless allowFail. */
export function lab(name: string, argv: string[], opts: { allowFail?: boolean } = {}): RunResult {
  const [sub, ...rest] = argv;
  // The suites run on MNCNI_LAB_SOURCE when set (their `up` says no --source of its own).
  const source = sub === "up" && process.env.MNCNI_LAB_SOURCE && !rest.includes("--source") ? ["--source", process.env.MNCNI_LAB_SOURCE] : [];
  // ... and with the fast path when MNCNI_LAB_FAST_PATH says so (fast-path-suites.matrix.test.ts).
  const fast = sub === "up" && process.env.MNCNI_LAB_FAST_PATH && !rest.includes("--fast-path") ? ["--fast-path", process.env.MNCNI_LAB_FAST_PATH] : [];
  return run([...LAB_CMD, "lab", sub!, "--name", name, ...rest, ...source, ...fast], { allowFail: opts.allowFail });
}

/** The lab's source as its state says. */
export function labSource(name: string): string {
  return (JSON.parse(readFileSync(`${LAB_ROOT}/${name}/state.json`, "utf8")) as { options: { source?: string } }).options.source ?? "dir";
}

/**
 * The cluster's objects of a kind as the agents see them: from the lab's API server (kubectl
 * with the admin kubeconfig) or from its manifests directory (files named <kind>-...).
 */
export function clusterObjects(name: string, kind: "node" | "pod" | "namespace"): any[] {
  if (labSource(name) === "dir") {
    const dir = `${LAB_ROOT}/${name}/manifests`;
    return readdirSync(dir).filter((f) => f.startsWith(`${kind}-`)).map((f) => parseYaml(readFileSync(`${dir}/${f}`, "utf8")));
  }
  const out = run(["kubectl", "--kubeconfig", `${LAB_ROOT}/${name}/apiserver/admin.kubeconfig`, "get", `${kind}s`, "-A", "-o", "json"]).stdout;
  return (JSON.parse(out) as { items: any[] }).items;
}

export function labJson<T = any>(name: string, argv: string[], opts: { allowFail?: boolean } = {}): T {
  const r = lab(name, [...argv, "--json"], opts);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    // No JSON: the command failed; say what it said rather than a parse error.
    throw new Error(`lab ${argv.join(" ")} --json gave no JSON (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim() || "no output"}`);
  }
}

/** What of the lab is still on the machine: namespaces, processes, files. */
export function leftovers(name: string): string[] {
  const out: string[] = [];
  const nets = existsSync("/run/netns") ? readdirSync("/run/netns") : [];
  out.push(...nets.filter((n) => n.startsWith(`${name}-`)).map((n) => `netns ${n}`));
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {
      continue;
    }
    if (cmd.includes(`--lab ${name} `) || cmd.includes(`${LAB_ROOT}/${name}/`) || cmd.includes(`lab apiserver --name ${name} `)) out.push(`process ${pid}: ${cmd}`);
  }
  if (existsSync(`${LAB_ROOT}/${name}`)) out.push(`dir ${LAB_ROOT}/${name}`);
  return out;
}

/**
 * A lab for one describe block: `lab up -q ARGS` before its tests (its status handed to
 * `ready`), `lab down` after them, and nothing of it left on the machine.
 */
export function labAround(name: string, args: string[], ready: (st: LabStatus) => void): void {
  beforeAll(() => {
    lab(name, ["up", "-q", ...args]);
    ready(labJson<LabStatus>(name, ["status"]));
  });
  afterAll(() => {
    lab(name, ["down", "-q"], { allowFail: true });
    expect(leftovers(name)).toEqual([]);
  });
}

export function downAll(): void {
  for (const name of labs) if (lab(name, ["down", "-q"], { allowFail: true }).code === 0) unmarkOwned("lab", name);
}

/** A node's pod CIDR of a family from `lab status --json` (the controller's choice on the kubernetes source). */
export function cidrOf(st: { nodes: { name: string; podCIDRs: string[] }[] }, node: string, family: 4 | 6 = 4): string {
  const c = st.nodes.find((n) => n.name === node)!.podCIDRs.find((x) => x.includes(":") === (family === 6));
  if (!c) throw new Error(`node ${node} has no IPv${family} pod CIDR`);
  return c;
}

/** The CIDR's network address (10.244.2.0, fd00:10:244:2::). */
export const netOf = (cidr: string): string => cidr.split("/")[0]!;

/** What the addresses of a /24 or /64 pod CIDR start with (10.244.2., fd00:10:244:2::). */
export const addrPrefixOf = (cidr: string): string => (cidr.includes(":") ? netOf(cidr) : netOf(cidr).replace(/0$/, ""));

const kubectlLab = (name: string, args: string[], stdin?: string) =>
  run(["kubectl", "--kubeconfig", `${LAB_ROOT}/${name}/apiserver/admin.kubeconfig`, ...args], stdin === undefined ? {} : { stdin });

/**
 * Puts an object where the agents read it, behind the lab's back (a test's intruder): kubectl
 * against the lab's API server (its status through /status, as a kubelet would), or a file in
 * its manifests directory. Returns how to remove it.
 */
export function putClusterObject(name: string, obj: { kind: string; metadata: { name: string }; status?: unknown }): () => void {
  if (labSource(name) === "dir") {
    const file = `${LAB_ROOT}/${name}/manifests/${obj.kind.toLowerCase()}-${obj.metadata.name}.yaml`;
    writeFileSync(file, stringifyYaml(obj));
    return () => rmSync(file, { force: true });
  }
  const { status, ...rest } = obj;
  kubectlLab(name, ["apply", "-f", "-"], JSON.stringify(rest));
  if (status) kubectlLab(name, ["patch", obj.kind.toLowerCase(), obj.metadata.name, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status })]);
  return () => kubectlLab(name, ["delete", obj.kind.toLowerCase(), obj.metadata.name]);
}
