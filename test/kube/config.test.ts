// Kubeconfig and in-cluster loading: files made here, nothing of the machine's read.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileToken, KubeConfigError, loadInCluster, loadKubeconfig } from "../../src/kube/index.ts";

const dir = mkdtempSync("/tmp/mncni-kubeconfig-test-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const p = join(dir, name);
  mkdirSync(join(p, ".."), { recursive: true });
  writeFileSync(p, text);
  return p;
}

const CA = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";

function kubeconfig(cluster: string, user: string, extra = ""): string {
  return `apiVersion: v1
kind: Config
current-context: ctx
${extra}contexts:
- name: ctx
  context: {cluster: c1, user: u1, namespace: team}
- name: other
  context: {cluster: c2, user: u1}
clusters:
- name: c1
  cluster:
${cluster}
- name: c2
  cluster:
    server: https://10.0.0.2:6443/
users:
- name: u1
  user:
${user}
`;
}

describe("kubeconfig", () => {
  test("current context: server, CA file relative to the kubeconfig, static token, namespace", () => {
    write("a/ca.crt", CA);
    const p = write("a/config", kubeconfig("    server: https://127.0.0.1:6443\n    certificate-authority: ca.crt", "    token: abc"));
    const c = loadKubeconfig(p);
    expect(c.server).toBe("https://127.0.0.1:6443");
    expect(c.ca).toBe(CA);
    expect(c.token?.()).toBe("abc");
    expect(c.namespace).toBe("team");
    expect(c.cert).toBeUndefined();
  });

  test("inline CA and client certificate data, another context", () => {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const p = write(
      "b/config",
      kubeconfig(`    server: https://127.0.0.1:6443\n    certificate-authority-data: ${b64(CA)}`, `    client-certificate-data: ${b64("CERT")}\n    client-key-data: ${b64("KEY")}`),
    );
    const c = loadKubeconfig(p);
    expect([c.ca, c.cert, c.key, c.token]).toEqual([CA, "CERT", "KEY", undefined]);
    const o = loadKubeconfig(p, { context: "other" });
    expect(o.server).toBe("https://10.0.0.2:6443");
    expect(o.namespace).toBe("default");
  });

  test("client certificate and key files", () => {
    write("c/tls.crt", "CERT");
    write("c/tls.key", "KEY");
    const p = write("c/config", kubeconfig("    server: https://127.0.0.1:6443", `    client-certificate: tls.crt\n    client-key: ${join(dir, "c/tls.key")}`));
    const c = loadKubeconfig(p);
    expect([c.cert, c.key]).toEqual(["CERT", "KEY"]);
  });

  test("tokenFile is read, and re-read after a minute", () => {
    const tf = write("d/token", "one\n");
    let now = 1_000_000;
    const tok = fileToken(tf, () => now);
    expect(tok()).toBe("one");
    writeFileSync(tf, "two\n");
    now += 30_000;
    expect(tok()).toBe("one");
    now += 30_000;
    expect(tok()).toBe("two");
    const p = write("d/config", kubeconfig("    server: https://127.0.0.1:6443", "    tokenFile: token"));
    expect(loadKubeconfig(p).token?.()).toBe("two");
  });

  test("errors name the file and the problem", () => {
    expect(() => loadKubeconfig(join(dir, "missing"))).toThrow(/cannot read kubeconfig ".*missing"/);
    const noCtx = write("e/config", kubeconfig("    server: https://127.0.0.1:6443", "    token: x").replace("current-context: ctx\n", ""));
    expect(() => loadKubeconfig(noCtx)).toThrow(/no current-context/);
    expect(() => loadKubeconfig(noCtx, { context: "nope" })).toThrow(/no context named "nope"/);
    const http = write("f/config", kubeconfig("    server: http://127.0.0.1:8080", "    token: x"));
    expect(() => loadKubeconfig(http)).toThrow(/only https/);
    const insecure = write("g/config", kubeconfig("    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true", "    token: x"));
    expect(() => loadKubeconfig(insecure)).toThrow(KubeConfigError);
    const half = write("h/config", kubeconfig("    server: https://127.0.0.1:6443", "    client-certificate-data: Q0VSVA=="));
    expect(() => loadKubeconfig(half)).toThrow(/go together/);
    const badCa = write("i/config", kubeconfig("    server: https://127.0.0.1:6443\n    certificate-authority: nope.crt", "    token: x"));
    expect(() => loadKubeconfig(badCa)).toThrow(/cannot read certificate-authority ".*nope.crt"/);
  });
});

describe("in-cluster", () => {
  test("service host/port from the environment, token, CA and namespace from the directory", () => {
    write("sa/token", "sa-token\n");
    write("sa/ca.crt", CA);
    write("sa/namespace", "kube-system");
    const c = loadInCluster({ dir: join(dir, "sa"), env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" } });
    expect(c.server).toBe("https://10.96.0.1:443");
    expect([c.ca, c.token?.(), c.namespace]).toEqual([CA, "sa-token", "kube-system"]);
    const v6 = loadInCluster({ dir: join(dir, "sa"), env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" } });
    expect(v6.server).toBe("https://[fd00::1]:443");
  });

  test("outside a pod: a clear error", () => {
    expect(() => loadInCluster({ dir: join(dir, "sa"), env: {} })).toThrow(/KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set/);
    expect(() => loadInCluster({ dir: join(dir, "none"), env: { KUBERNETES_SERVICE_HOST: "h", KUBERNETES_SERVICE_PORT: "1" } })).toThrow(/cannot read service account CA/);
  });
});
