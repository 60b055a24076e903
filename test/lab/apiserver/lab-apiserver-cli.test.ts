// `mncni lab apiserver` and `mncni lab kubeconfig` (compiled binary): the server keeps its
// objects, port and tokens across a restart; a watch from before the restart gets 410.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireBinary } from "../../helpers/binary.ts";

const root = mkdtempSync("/tmp/mncni-labapi-cli-");
const env = { ...process.env, MNCNI_LAB_ROOT: root };
const lab = `t${process.pid}`;
let server: ReturnType<typeof Bun.spawn> | undefined;

async function run(cmd: string[], input?: string): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(cmd, { env, stdout: "pipe", stderr: "pipe", stdin: input === undefined ? "ignore" : new TextEncoder().encode(input) });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

async function startServer(): Promise<string> {
  server = Bun.spawn([requireBinary(), "lab", "apiserver", "--name", lab], { env, stdout: "pipe", stderr: "inherit" });
  const reader = (server.stdout as ReadableStream<Uint8Array>).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const line = new TextDecoder().decode(value);
  expect(line).toContain("mncni lab apiserver: serving https://127.0.0.1:");
  return /serving (\S+)/.exec(line)![1]!;
}

async function stopServer(): Promise<void> {
  server?.kill("SIGTERM");
  expect(await server?.exited).toBe(0);
  server = undefined;
}

afterAll(async () => {
  server?.kill("SIGKILL");
  await server?.exited;
  rmSync(root, { recursive: true, force: true });
});

test("lab apiserver: kubectl through lab kubeconfig; objects, port and token survive a restart", async () => {
  const url = await startServer();
  const kc = (await run([requireBinary(), "lab", "kubeconfig", "--name", lab])).out.trim();
  expect(kc).toBe(join(root, lab, "apiserver", "admin.kubeconfig"));
  expect((await run(["kubectl", "--kubeconfig", kc, "get", "namespaces", "-o", "name"])).out.split("\n")).toEqual(expect.arrayContaining(["namespace/default", "namespace/kube-system"]));
  const file = join(root, "ns.yaml");
  writeFileSync(file, "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {team: a}}\n");
  expect((await run(["kubectl", "--kubeconfig", kc, "apply", "-f", file])).out).toContain("namespace/team-a created");
  // A protobuf body (kubectl's typed client), decoded inside the compiled executable.
  expect((await run(["kubectl", "--kubeconfig", kc, "create", "namespace", "team-b"])).out).toBe("namespace/team-b created\n");
  const rv = JSON.parse((await run(["kubectl", "--kubeconfig", kc, "get", "namespace", "team-a", "-o", "json"])).out).metadata.resourceVersion;
  await stopServer();
  // Down: the kubeconfig's address refuses connections.
  expect((await run(["kubectl", "--kubeconfig", kc, "get", "ns", "--request-timeout=2s"])).code).not.toBe(0);

  expect(await startServer()).toBe(url);
  const got = await run(["kubectl", "--kubeconfig", kc, "get", "namespace", "team-a", "-o", "jsonpath={.metadata.labels.team}"]);
  expect(got.out).toBe("a");
  // The change log is not kept: a watch from before the restart is told to relist.
  const watch = await run(["kubectl", "--kubeconfig", kc, "get", "--raw", `/api/v1/namespaces?watch=1&resourceVersion=${Number(rv) - 1}`, "--request-timeout=5s"]);
  expect(JSON.parse(watch.out.trim()).object).toMatchObject({ kind: "Status", code: 410, reason: "Expired" });
  await stopServer();
});
