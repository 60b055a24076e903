// Every generated object validated three ways: against the upstream OpenAPI schemas of a
// current Kubernetes release (the kubernetes-models package: JSON-schema validators built from
// the upstream OpenAPI document), strictly against @kubernetes/client-node's model metadata
// (unknown fields rejected, types checked), and by the upstream Python client's model classes.
// Each check is also shown to reject a broken object, so a pass means something.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { structuralErrors } from "./structural.ts";

const DEPLOY = resolve(import.meta.dir, "../../deploy");
const PYTHON = "/usr/bin/python3";
const FILES = ["mncni.yaml", "mncni-uninstall.yaml"];

type Obj = { apiVersion: string; kind: string; metadata: { name: string } } & Record<string, unknown>;

function load(file: string): Obj[] {
  return parseAllDocuments(readFileSync(`${DEPLOY}/${file}`, "utf8")).map((d) => d.toJS() as Obj);
}

/** Also covers non-default flags: dual-stack, routed, the controller and its PodDisruptionBudget. */
function generated(args: string[]): Obj[] {
  const bin = resolve(import.meta.dir, "../../dist/mncni");
  const p = spawnSync([process.env.MNCNI_BIN ?? bin, "manifests", ...args], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`mncni manifests ${args.join(" ")} failed: ${p.stderr}`);
  return parseAllDocuments(p.stdout.toString()).map((d) => d.toJS() as Obj);
}

const SETS: Record<string, () => Obj[]> = {
  "deploy/mncni.yaml": () => load(FILES[0]!),
  "deploy/mncni-uninstall.yaml": () => load(FILES[1]!),
  "dual-stack routed, with the controller": () => generated(["--image", "registry.example/mncni:1.2.3", "--controller", "--cluster-cidr", "10.10.0.0/16,fd00:10::/56", "--mode", "routed", "--routing", "none", "--namespace", "mncni"]),
};

/** A copy with a field of the wrong type and an unknown field in the pod template. */
function broken(o: Obj): Obj {
  const b = structuredClone(o) as Obj & { spec: { template: { spec: Record<string, unknown> } } };
  b.spec.template.spec.hostNetwork = "yes";
  b.spec.template.spec.hostNetwrok = true;
  return b;
}
const agentOf = (objs: Obj[]) => objs.find((o) => o.kind === "DaemonSet")!;

// kubernetes-models: a devDependency to add (`kubernetes-models@5.1.0`); skipped, saying so,
// where it is not installed.
type Validating = new (data: object) => { validate(): void };
let models: ((apiVersion: string) => Promise<Record<string, Validating>>) | undefined;
let modelsVersion = "";
try {
  const entry = Bun.resolveSync("kubernetes-models", import.meta.dir);
  modelsVersion = (JSON.parse(readFileSync(join(dirname(entry), "package.json"), "utf8")) as { version: string }).version;
  models = async (apiVersion) => (await import(`kubernetes-models/${apiVersion}`)) as Record<string, Validating>;
} catch {
  models = undefined;
}

async function openApiErrors(o: Obj): Promise<string[]> {
  const Model = (await models!(o.apiVersion))[o.kind];
  if (!Model) return [`no model for ${o.apiVersion} ${o.kind}`];
  try {
    new Model(o).validate();
    return [];
  } catch (e) {
    return [String((e as Error).message)];
  }
}

describe.skipIf(!models)(`OpenAPI schemas (kubernetes-models${models ? ` ${modelsVersion}` : " — skipped: package not installed; add devDependency kubernetes-models@5.1.0"})`, () => {
  for (const [name, objs] of Object.entries(SETS)) {
    test(name, async () => {
      for (const o of objs()) expect({ object: `${o.kind}/${o.metadata.name}`, errors: await openApiErrors(o) }).toEqual({ object: `${o.kind}/${o.metadata.name}`, errors: [] });
    });
  }
  test("rejects a field of the wrong type", async () => {
    expect((await openApiErrors(broken(agentOf(load(FILES[0]!))))).join()).toContain("hostNetwork");
  });
});

describe("structure (@kubernetes/client-node model metadata: unknown fields rejected)", () => {
  for (const [name, objs] of Object.entries(SETS)) {
    test(name, () => {
      for (const o of objs()) expect({ object: `${o.kind}/${o.metadata.name}`, errors: structuralErrors(o) }).toEqual({ object: `${o.kind}/${o.metadata.name}`, errors: [] });
    });
  }
  test("rejects a wrong type and an unknown field", () => {
    const errors = structuralErrors(broken(agentOf(load(FILES[0]!))));
    expect(errors.some((e) => e.includes(".hostNetwork: expected boolean"))).toBe(true);
    expect(errors.some((e) => e.includes(".hostNetwrok: unknown field of V1PodSpec"))).toBe(true);
  });
});

const pythonClient = existsSync(PYTHON) && spawnSync([PYTHON, "-c", "import kubernetes, yaml"]).exitCode === 0;
describe.skipIf(!pythonClient)(`upstream Python client models${pythonClient ? "" : " — skipped: /usr/bin/python3 with python3-kubernetes and python3-yaml missing"}`, () => {
  const check = (objs: Obj[]) => {
    const p = spawnSync([PYTHON, resolve(import.meta.dir, "k8s_models.py")], { stdin: Buffer.from(objs.map((o) => JSON.stringify(o)).join("\n---\n")), stdout: "pipe", stderr: "pipe" });
    return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString() };
  };
  for (const [name, objs] of Object.entries(SETS)) {
    test(name, () => {
      const all = objs();
      const r = check(all);
      expect(r.out.trim().split("\n")).toEqual(all.map((o) => `OK ${o.kind}/${o.metadata.name}`));
      expect(r.code).toBe(0);
    });
  }
  test("rejects an unknown field", () => {
    const r = check([broken(agentOf(load(FILES[0]!)))]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("FAIL DaemonSet/mncni-agent");
  });
});
