// Where the API server is and how to authenticate to it: from a kubeconfig file (the
// current context) or from the in-cluster service account. Pure loading; no connection.
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { parse as parseYaml } from "yaml";

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Bound service-account tokens rotate: re-read the file at most this often (as client-go does). */
const TOKEN_REREAD_MS = 60_000;

export interface KubeConfig {
  /** "https://host:port", no trailing slash. */
  server: string;
  /** PEM of the CA(s) that sign the server's certificate; undefined: the system trust store. */
  ca?: string;
  /** PEM client certificate and key (x509 client auth). */
  cert?: string;
  key?: string;
  /** The bearer token at the time of the call (a static token, or a file re-read now and then). */
  token?: () => string | undefined;
  /** Default namespace: the context's, or the service account's. */
  namespace: string;
  /** Where it came from, for messages. */
  source: string;
}

export class KubeConfigError extends Error {}

function fail(what: string, value: string, cause: string): never {
  throw new KubeConfigError(`cannot ${what} "${value}": ${cause}`);
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    fail(`read ${what}`, path, (e as Error).message);
  }
}

/** A token read from a file, re-read after TOKEN_REREAD_MS; `now` is injectable for tests. */
export function fileToken(path: string, now: () => number = Date.now): () => string {
  let value = readText(path, "token file").trim();
  let readAt = now();
  return () => {
    if (now() - readAt >= TOKEN_REREAD_MS) {
      // A failed re-read keeps the last token: the file is replaced by rename, never absent for long.
      try {
        value = readFileSync(path, "utf8").trim();
      } catch {}
      readAt = now();
    }
    return value;
  };
}

type Named<T> = { name?: string } & Record<string, T | undefined | string>;

interface KubeconfigFile {
  "current-context"?: string;
  clusters?: Named<Record<string, unknown>>[];
  users?: Named<Record<string, unknown>>[];
  contexts?: Named<Record<string, unknown>>[];
}

function pick(list: Named<Record<string, unknown>>[] | undefined, key: "cluster" | "user" | "context", name: string, file: string): Record<string, unknown> {
  const e = (list ?? []).find((x) => x.name === name);
  if (!e || typeof e[key] !== "object" || e[key] === null) fail(`find ${key} in kubeconfig`, file, `no ${key} named "${name}"`);
  return e[key] as Record<string, unknown>;
}

function str(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** An inline "*-data" field (base64 PEM) or a file path relative to the kubeconfig's directory. */
function pem(o: Record<string, unknown>, field: string, base: string, file: string): string | undefined {
  const data = str(o, `${field}-data`);
  if (data) return Buffer.from(data, "base64").toString("utf8");
  const path = str(o, field);
  return path ? readText(isAbsolute(path) ? path : join(base, path), field) : undefined;
}

export function loadKubeconfig(file: string, opts: { context?: string } = {}): KubeConfig {
  let doc: KubeconfigFile;
  try {
    doc = parseYaml(readText(file, "kubeconfig")) as KubeconfigFile;
  } catch (e) {
    if (e instanceof KubeConfigError) throw e;
    fail("parse kubeconfig", file, (e as Error).message);
  }
  if (!doc || typeof doc !== "object") fail("parse kubeconfig", file, "not a mapping");
  const ctxName = opts.context ?? doc["current-context"];
  if (!ctxName) fail("use kubeconfig", file, "no current-context");
  const ctx = pick(doc.contexts, "context", ctxName, file);
  const cluster = pick(doc.clusters, "cluster", String(ctx.cluster ?? ""), file);
  const user = ctx.user === undefined ? {} : pick(doc.users, "user", String(ctx.user), file);
  const base = dirname(file);
  const server = str(cluster, "server");
  if (!server) fail("use kubeconfig", file, `cluster "${ctx.cluster}" has no server`);
  if (!/^https:\/\//.test(server)) fail("use API server", server, "only https:// servers are supported");
  // Verification is never switched off: a cluster that needs it gets its CA named instead.
  if (cluster["insecure-skip-tls-verify"] === true) fail("use kubeconfig", file, "insecure-skip-tls-verify is not supported: name the cluster's CA in certificate-authority");
  const tokenFile = str(user, "tokenFile");
  const staticToken = str(user, "token");
  const token = staticToken ? () => staticToken : tokenFile ? fileToken(isAbsolute(tokenFile) ? tokenFile : join(base, tokenFile)) : undefined;
  const cert = pem(user, "client-certificate", base, file);
  const key = pem(user, "client-key", base, file);
  if ((cert === undefined) !== (key === undefined)) fail("use kubeconfig", file, "client-certificate and client-key go together");
  return {
    server: server.replace(/\/+$/, ""),
    ca: pem(cluster, "certificate-authority", base, file),
    cert,
    key,
    token,
    namespace: str(ctx, "namespace") ?? "default",
    source: file,
  };
}

export interface InClusterOpts {
  /** Where the service account's token, ca.crt and namespace are (tests point it elsewhere). */
  dir?: string;
  env?: Record<string, string | undefined>;
}

export function loadInCluster(opts: InClusterOpts = {}): KubeConfig {
  const env = opts.env ?? process.env;
  // MNCNI_SERVICE_ACCOUNT_DIR: the files somewhere else (tests; a runtime mounting them elsewhere).
  const dir = opts.dir ?? (env.MNCNI_SERVICE_ACCOUNT_DIR || SERVICE_ACCOUNT_DIR);
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) fail("use in-cluster config", dir, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (or pass --kubeconfig)");
  let namespace = "default";
  try {
    namespace = readFileSync(join(dir, "namespace"), "utf8").trim() || "default";
  } catch {}
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca: readText(join(dir, "ca.crt"), "service account CA"),
    token: fileToken(join(dir, "token")),
    namespace,
    source: `in-cluster (${dir})`,
  };
}

/** Is this process in a pod with a service account to talk to the API with (what loadInCluster needs)? */
export function inClusterSource(env: Record<string, string | undefined> = process.env): boolean {
  const dir = env.MNCNI_SERVICE_ACCOUNT_DIR || SERVICE_ACCOUNT_DIR;
  return !!env.KUBERNETES_SERVICE_HOST && !!env.KUBERNETES_SERVICE_PORT && existsSync(join(dir, "token"));
}

/** --kubeconfig PATH when given, else the in-cluster service account. */
export function loadKubeConfig(kubeconfig: string | undefined, inCluster: InClusterOpts = {}): KubeConfig {
  return kubeconfig ? loadKubeconfig(kubeconfig) : loadInCluster(inCluster);
}
