// Two `mncni controller --leader-elect` processes (compiled) against the lab API server, each
// with the controller's token under deploy/'s RBAC (Nodes, Events, Leases in kube-system):
// one leads and gives every Node a pod CIDR; SIGKILLed, the other takes over and assigns the
// Nodes that came since. No request of theirs is refused (the server's answers are recorded).
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ApiServer } from "../../src/lab/apiserver/server.ts";
import { requireBinary } from "../helpers/binary.ts";
import { until } from "../helpers/until.ts";

const dir = mkdtempSync("/tmp/mncni-labapi-ctl-");
const refused: string[] = [];
const api = new ApiServer({
  dir, bookmarkIntervalMs: 500,
  done: (req, url, _body, r) => r.code === 403 && refused.push(`${req.method} ${url.pathname}: ${r.body.message}`),
}).listen();
const procs: Subprocess[] = [];

afterAll(async () => {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  api.stop();
  rmSync(dir, { recursive: true, force: true });
});

const ARGS = ["--cluster-cidr", "10.244.0.0/16", "--leader-elect", "--lease-namespace", "kube-system", "--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms"];

function controller(name: string): { proc: Subprocess; identity: string } {
  const identity = `${name}-${process.pid}`;
  const proc = Bun.spawn([requireBinary(), "controller", "--kubeconfig", api.writeKubeconfig("controller"), "--metrics-addr", "off", "--log-file", join(dir, `${name}.log`), "--identity", identity, ...ARGS], { stdout: "ignore", stderr: "ignore" });
  procs.push(proc);
  return { proc, identity };
}

const cidrs = () => api.store.list("nodes").map((n) => (n.spec?.podCIDRs ?? [])[0]);
const holder = () => api.store.get("leases", "kube-system/mncni-controller")?.spec?.holderIdentity;

test("two controllers on the lab API server with the controller's token: one leads and assigns pod CIDRs; the other takes over", async () => {
  for (const ns of ["default", "kube-system"]) api.put("namespaces", { metadata: { name: ns } });
  for (let i = 0; i < 10; i++) api.put("nodes", { metadata: { name: `a${i}` } });
  const [one, two] = [controller("one"), controller("two")];
  await until("every Node has a pod CIDR", () => cidrs().every(Boolean));
  const leader = holder() === one.identity ? one : two;
  const standby = leader === one ? two : one;
  expect([one.identity, two.identity]).toContain(holder());

  leader.proc.kill("SIGKILL");
  await leader.proc.exited;
  for (let i = 0; i < 5; i++) api.put("nodes", { metadata: { name: `b${i}` } });
  await until("the standby holds the Lease", () => holder() === standby.identity, 30_000);
  await until("the new Nodes have pod CIDRs", () => cidrs().every(Boolean), 30_000);
  expect(new Set(cidrs()).size).toBe(15);
  expect(refused).toEqual([]);
}, 60_000);
