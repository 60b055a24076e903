// The bpf programs on a device's ingress, from outside mncni: tc's filters (clsact, `tc -j
// filter show`) and tcx's programs (test/helpers/tcx-progs.py: this machine's tc and bpftool
// do not list tcx). How the tests see where the fast path attached its program.
import { resolve } from "node:path";

export interface IngressProgram {
  name: string;
  id: number;
  /** tcx, or a clsact filter ("da" when direct action) */
  hook: "tcx" | "clsact";
  da?: boolean;
}

const TCX_PROGS = resolve(import.meta.dir, "tcx-progs.py");

function run(argv: string[]): { code: number; out: string } {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString() };
}

/** Every named bpf program on the device's ingress (tcx first: it runs first); none when the device is gone. */
export function ingressPrograms(ns: string, dev: string): IngressProgram[] {
  const tcx = run(["ip", "netns", "exec", ns, "python3", TCX_PROGS, dev]);
  const tc = run(["ip", "netns", "exec", ns, "tc", "-j", "filter", "show", "dev", dev, "ingress"]);
  const out: IngressProgram[] = tcx.code === 0 ? (JSON.parse(tcx.out) as { id: number; name: string }[]).map((p) => ({ ...p, hook: "tcx" as const })) : [];
  if (tc.code === 0)
    for (const f of JSON.parse(tc.out || "[]") as any[])
      if (f.kind === "bpf" && f.options?.bpf_name) out.push({ name: f.options.bpf_name, id: f.options.prog?.id, hook: "clsact", da: f.options["direct-action"] === true });
  return out;
}

/** Takes the programs of that name off the device's tcx ingress (a test breaking what mncni made). */
export function detachTcx(ns: string, dev: string, name: string): void {
  const r = run(["ip", "netns", "exec", ns, "python3", TCX_PROGS, dev, "--detach", name]);
  if (r.code !== 0) throw new Error(`cannot detach ${name} from ${dev} in ${ns}`);
}
