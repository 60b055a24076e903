// Every `mncni manifests` command line in the install guides (README.md, docs/install.md,
// docs/aks.md), run as the reader would run it: it must be accepted, name its image in every
// workload, and install the controller only where it says --controller (kubeadm's recipe
// must not: kube-controller-manager allocates pod CIDRs there).
import { describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { requireBinary } from "../helpers/binary.ts";

const ROOT = resolve(import.meta.dir, "../..");
const GUIDES = ["README.md", "docs/install.md", "docs/aks.md"];
/** The placeholders the guides use, as a reader would fill them in. */
const VARS: Record<string, string> = { "$ACR": "myacr", REGISTRY: "registry.example.com" };

/** Lines of fenced code blocks that run `mncni manifests`, with the file and line. */
function documentedCommands(): { where: string; line: string }[] {
  const out: { where: string; line: string }[] = [];
  for (const file of GUIDES) {
    let fenced = false;
    readFileSync(resolve(ROOT, file), "utf8").split("\n").forEach((line, i) => {
      if (/^\s*```/.test(line)) fenced = !fenced;
      else if (fenced && /\bmncni manifests\b/.test(line)) out.push({ where: `${file}:${i + 1}`, line: line.trim() });
    });
  }
  return out;
}

/** The command's arguments after `mncni manifests`, placeholders filled, redirections and pipes cut. */
function argsOf(line: string): string[] {
  let cmd = line.replace(/#.*$/, "").split(/\s[|>]\s/)[0]!;
  for (const [k, v] of Object.entries(VARS)) cmd = cmd.split(k).join(v);
  const words = cmd.trim().split(/\s+/);
  return words.slice(words.indexOf("manifests") + 1);
}

const commands = documentedCommands();

describe("the guides' mncni manifests commands", () => {
  test("the guides have them (the kubeadm recipe, AKS, the README one-liner, uninstall)", () => {
    expect(commands.length).toBeGreaterThanOrEqual(6);
    for (const f of GUIDES) expect(commands.some((c) => c.where.startsWith(`${f}:`))).toBe(true);
  });

  for (const { where, line } of commands) {
    test(`${where}: ${line}`, () => {
      const args = argsOf(line);
      const p = spawnSync([requireBinary(), "manifests", ...args], { stdout: "pipe", stderr: "pipe" });
      expect(p.stderr.toString()).toBe("");
      expect(p.exitCode).toBe(0);
      const objs = parseAllDocuments(p.stdout.toString()).map((d) => d.toJS() as { kind: string; spec?: any });
      const image = args[args.indexOf("--image") + 1]!;
      const workloads = objs.filter((o) => o.kind === "DaemonSet" || o.kind === "Deployment");
      expect(workloads.length).toBeGreaterThan(0);
      for (const w of workloads) for (const c of [...(w.spec.template.spec.initContainers ?? []), ...w.spec.template.spec.containers]) if (c.name !== "done") expect(c.image).toBe(image);
      expect(objs.some((o) => o.kind === "Deployment")).toBe(args.includes("--controller"));
    });
  }

  test("the kubeadm recipe installs no controller (its kube-controller-manager allocates pod CIDRs)", () => {
    const md = readFileSync(resolve(ROOT, "docs/install.md"), "utf8");
    const kubeadm = md.slice(md.indexOf("## 3. kubeadm"), md.indexOf("## 4."));
    expect(kubeadm).toContain("kubeadm init --pod-network-cidr");
    const lines = kubeadm.split("\n").filter((l) => /\bmncni manifests\b/.test(l) && !l.startsWith("No "));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(argsOf(l)).not.toContain("--controller");
  });

  test("the AKS recipe passes --controller and waits for the agent DaemonSet as well as the controller", () => {
    const md = readFileSync(resolve(ROOT, "docs/aks.md"), "utf8");
    for (const c of commands.filter((x) => x.where.startsWith("docs/aks.md"))) expect(argsOf(c.line)).toContain("--controller");
    expect(md).toContain("rollout status ds/mncni-agent");
    expect(md).toContain("rollout status deploy/mncni-controller");
  });
});

// A reader has no access to the project's issue tracker or its internal notes.
test("the docs name no internal references (issue numbers, seed notes)", () => {
  const files = ["README.md", ...readdirSync(resolve(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
  const found = files.flatMap((f) =>
    readFileSync(resolve(ROOT, f), "utf8").split("\n").flatMap((line, i) => (/\bissues? *#?\d|shared\/seeds|\bseed \d|\(seed\b|\bthe seed's\b|(?<!dev)[\s(]#\d+\b/i.test(line) ? [`${f}:${i + 1}: ${line.trim()}`] : [])),
  );
  expect(found).toEqual([]);
});
