// The lab CA and server certificate (openssl, kept in the lab's directory), one bearer token
// per component, and kubeconfigs naming them.
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { stringify } from "yaml";
import { NAMES } from "../../deploy/meta.ts";
import { LAB_INSTALL, type User } from "./rbac.ts";

export interface Certs {
  ca: string;
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  const p = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`cannot make the lab CA: openssl ${args[0]}: ${p.stderr.toString().trim()}`);
}

/**
 * A CA (made once per directory: every kubeconfig names it) and a server certificate for the
 * addresses given (made again when they change).
 */
export function ensureCerts(dir: string, ips: string[] = ["127.0.0.1"]): Certs {
  const c = { ca: join(dir, "ca.crt"), cert: join(dir, "apiserver.crt"), key: join(dir, "apiserver.key") };
  const san = [...ips.map((ip) => `IP:${ip}`), "DNS:localhost", "DNS:kubernetes.default.svc"].join(",");
  const ext = `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`;
  const extFile = join(dir, "apiserver.ext");
  if (existsSync(c.cert) && existsSync(extFile) && readFileSync(extFile, "utf8") === ext) return c;
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  if (!existsSync(c.ca)) openssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", "/CN=mncni-lab-ca", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
  openssl(["req", ...ec, "-keyout", "apiserver.key", "-out", "apiserver.csr", "-subj", "/CN=kube-apiserver"], dir);
  writeFileSync(extFile, ext);
  openssl(["x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "apiserver.crt", "-days", "3650", "-extfile", "apiserver.ext"], dir);
  return c;
}

/** Who each lab component is to the API server. */
export function identity(component: string): User {
  const ns = LAB_INSTALL.namespace;
  // lab-dns: the lab's DNS server, which reads Services and EndpointSlices (a lab process, as "lab").
  if (component === "admin" || component === "lab" || component === "lab-dns") return { name: `lab:${component}`, groups: ["system:masters", "system:authenticated"] };
  if (component === "controller") return { name: `system:serviceaccount:${ns}:${NAMES.controller}`, groups: ["system:serviceaccounts", "system:authenticated"] };
  if (component.startsWith("agent")) return { name: `system:serviceaccount:${ns}:${NAMES.agent}`, groups: ["system:serviceaccounts", "system:authenticated"] };
  // Any ServiceAccount by its user name (tests act as whatever the RBAC they load binds).
  const sa = /^system:serviceaccount:([^:]+):[^:]+$/.exec(component);
  if (sa) return { name: component, groups: ["system:serviceaccounts", `system:serviceaccounts:${sa[1]}`, "system:authenticated"] };
  // Any other name is a user without a role: it can read discovery and nothing else.
  return { name: `lab:${component}`, groups: ["system:authenticated"] };
}

/** token -> component, kept in tokens.json (mode 0600) so a restart keeps every kubeconfig valid. */
export class Tokens {
  private readonly byToken = new Map<string, string>();
  private readonly file: string;
  private readAt = 0;

  constructor(dir: string) {
    this.file = join(dir, "tokens.json");
    this.reload();
  }

  /**
   * Reads tokens.json again when it changed since the last read: `lab node add` makes a node's
   * token in its own process while the lab's server runs. True when it read something new.
   */
  private reload(): boolean {
    let mtime: number;
    try {
      mtime = statSync(this.file).mtimeMs;
    } catch {
      return false;
    }
    if (mtime === this.readAt) return false;
    this.readAt = mtime;
    for (const [t, c] of Object.entries(JSON.parse(readFileSync(this.file, "utf8")) as Record<string, string>)) this.byToken.set(t, c);
    return true;
  }

  /** The token of a component ("admin", "lab", "controller", "agent-node1", ...), made on first use. */
  tokenOf(component: string): string {
    for (const [t, c] of this.byToken) if (c === component) return t;
    const t = randomBytes(24).toString("base64url");
    this.byToken.set(t, component);
    writeFileSync(`${this.file}.tmp`, JSON.stringify(Object.fromEntries(this.byToken), null, 1), { mode: 0o600 });
    renameSync(`${this.file}.tmp`, this.file);
    return t;
  }

  userOf(authorization: string | null): User | undefined {
    const m = /^Bearer (\S+)$/.exec(authorization ?? "");
    let c = m ? this.byToken.get(m[1]!) : undefined;
    if (m && c === undefined && this.reload()) c = this.byToken.get(m[1]!);
    return c === undefined ? undefined : identity(c);
  }
}

/** A kubeconfig naming the CA file (or carrying it: inlineCA) and a bearer token. */
export function kubeconfigText(server: string, caFile: string, token: string, namespace = "default", inlineCA = false): string {
  const ca = inlineCA ? { "certificate-authority-data": readFileSync(caFile).toString("base64") } : { "certificate-authority": caFile };
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "mncni-lab", cluster: { server, ...ca } }],
    users: [{ name: "mncni-lab", user: { token } }],
    contexts: [{ name: "mncni-lab", context: { cluster: "mncni-lab", user: "mncni-lab", namespace } }],
    "current-context": "mncni-lab",
  });
}
