// A fake Kubernetes API server for tests: HTTPS with a server certificate signed by a test CA
// (made with openssl into a temp dir, named by the kubeconfig it writes), bearer-token auth
// with RBAC (one token per ServiceAccount bound in deploy/mncni.yaml or the manifests given,
// authorized by the ClusterRoles/Roles and bindings there: a request the role does not allow
// gets 403 Forbidden with the real server's Status body; the server's own token is
// unrestricted, like an admin's), and the list/watch wire protocol for Nodes, Pods,
// Namespaces, NetworkPolicies, ClusterNetworkPolicies (the policy API's CRD), Leases and
// Events: resourceVersion as one global counter, paged lists (limit/continue over a
// snapshot), chunked watch streams with ADDED/MODIFIED/DELETED/BOOKMARK, `410 Gone` (an ERROR
// event, as the real server sends) for a resourceVersion older than the bounded event
// history, 409 Conflict on stale writes, merge and strategic-merge patches (incl. the status
// subresource), and Node validation of spec.podCIDRs (set once, never changed). Tests can drop
// watch streams, inject 429/500 answers, hide a resource (404, a missing CRD), and stop the
// server (connections refused) then start it again on the same port.
import { spawnSync, type Server } from "bun";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { withNetns } from "../../src/kernel/netns.ts";

type Obj = { apiVersion?: string; kind?: string; metadata?: Record<string, any>; spec?: any; status?: any; [k: string]: any };

interface Kind {
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
}

const KINDS: Record<string, Kind> = {
  nodes: { group: "", version: "v1", kind: "Node", namespaced: false },
  pods: { group: "", version: "v1", kind: "Pod", namespaced: true },
  namespaces: { group: "", version: "v1", kind: "Namespace", namespaced: false },
  events: { group: "", version: "v1", kind: "Event", namespaced: true },
  networkpolicies: { group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", namespaced: true },
  clusternetworkpolicies: { group: "policy.networking.k8s.io", version: "v1alpha2", kind: "ClusterNetworkPolicy", namespaced: false },
  leases: { group: "coordination.k8s.io", version: "v1", kind: "Lease", namespaced: true },
};

/** Go's strconv.ParseBool, as the API server parses query booleans (python sends "True"). */
const truthy = (v: string | null) => v !== null && ["1", "t", "T", "true", "TRUE", "True"].includes(v);

const apiVersionOf = (k: Kind) => (k.group ? `${k.group}/${k.version}` : k.version);

export interface RecordedRequest {
  /** Who sent it: "admin" (the server's own token), a ServiceAccount's user name, or undefined (no valid token). */
  user?: string;
  method: string;
  path: string;
  query: Record<string, string>;
  contentType?: string;
  userAgent?: string;
  body?: any;
  status: number;
  /** The object as stored after a successful write. */
  result?: Obj;
}

export interface Fault {
  status: number;
  /** How many matching requests get it. */
  count: number;
  match?: (method: string, path: string, query: URLSearchParams) => boolean;
  retryAfterSeconds?: number;
}

interface Watcher {
  plural: string;
  namespace?: string;
  ctrl: ReadableStreamDefaultController<Uint8Array>;
  bookmarks: boolean;
  timer?: ReturnType<typeof setInterval>;
  timeout?: ReturnType<typeof setTimeout>;
}

interface HistoryEntry {
  rv: number;
  plural: string;
  type: "ADDED" | "MODIFIED" | "DELETED";
  obj: Obj;
}

export interface FakeApiServerOpts {
  /** Events kept for watches resuming from an older resourceVersion (beyond it: 410). */
  historySize?: number;
  bookmarkIntervalMs?: number;
  token?: string;
  /**
   * A network namespace (/run/netns/NAME) to listen in: an agent under test runs in its own
   * node namespace, where the test's 127.0.0.1 is not reachable. The socket is made there and
   * keeps that namespace; the test process stays where it is.
   */
  netns?: string;
  /**
   * The address to listen on (default 127.0.0.1), also in the certificate: e.g. a router
   * namespace's address that agents in several node namespaces reach.
   */
  address?: string;
  /**
   * The manifests (YAML text) whose RBAC is enforced for ServiceAccount tokens; default
   * deploy/mncni.yaml (e.g. `mncni manifests --controller` for the controller's grants).
   */
  rbacManifests?: string;
}

// --- RBAC: what deploy/ grants, and the authorizer's answer ---

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Rules a user holds: everywhere (a ClusterRoleBinding) or in one namespace (a RoleBinding). */
interface Grant {
  namespace?: string;
  rules: PolicyRule[];
}

/** What a request asks for, as the API server's RequestInfo resolves it. */
interface Attributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

const DEPLOY_MANIFESTS = resolve(import.meta.dir, "../../deploy/mncni.yaml");

/** The user name of a ServiceAccount, as its token authenticates. */
export const serviceAccountUser = (namespace: string, name: string) => `system:serviceaccount:${namespace}:${name}`;

/** Grants per user (ServiceAccount and User subjects) from the RBAC objects of a manifests file. */
export function parseRbac(text: string): Map<string, Grant[]> {
  const docs = parseAllDocuments(text).map((d) => d.toJS() as Obj).filter(Boolean);
  const roles = new Map<string, PolicyRule[]>();
  for (const d of docs) {
    if (d.kind === "ClusterRole") roles.set(`ClusterRole/${d.metadata!.name}`, d.rules ?? []);
    if (d.kind === "Role") roles.set(`Role/${d.metadata!.namespace}/${d.metadata!.name}`, d.rules ?? []);
  }
  const grants = new Map<string, Grant[]>();
  for (const d of docs) {
    if (d.kind !== "ClusterRoleBinding" && d.kind !== "RoleBinding") continue;
    const namespace = d.kind === "RoleBinding" ? (d.metadata!.namespace as string) : undefined;
    const ref = d.roleRef.kind === "Role" ? `Role/${namespace}/${d.roleRef.name}` : `ClusterRole/${d.roleRef.name}`;
    const rules = roles.get(ref);
    if (!rules) throw new Error(`${d.kind} ${d.metadata!.name}: roleRef ${ref} is not in the manifests`);
    for (const s of d.subjects ?? []) {
      const user = s.kind === "ServiceAccount" ? serviceAccountUser(s.namespace ?? namespace, s.name) : s.kind === "User" ? s.name : undefined;
      if (!user) continue;
      grants.set(user, [...(grants.get(user) ?? []), { namespace, rules }]);
    }
  }
  return grants;
}

const covers = (list: string[] | undefined, v: string) => !!list && (list.includes("*") || list.includes(v));

/** RBAC's rule matching: verb, API group, resource (with its subresource), and resourceNames when given. */
export function authorized(grants: Grant[], a: Attributes): boolean {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  return grants.some((g) => (g.namespace === undefined || g.namespace === a.namespace) && g.rules.some((r) =>
    covers(r.verbs, a.verb) && covers(r.apiGroups, a.group) && covers(r.resources, resource)
    && (!r.resourceNames?.length || (a.name !== undefined && r.resourceNames.includes(a.name)))));
}

/** The real server's 403 (k8s.io/apiserver's forbiddenMessage and errors.NewForbidden). */
export function forbidden(user: string, a: Attributes): Obj {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : "at the cluster scope";
  const reason = `User "${user}" cannot ${a.verb} resource "${resource}" in API group "${a.group}" ${scope}`;
  const qualified = a.group ? `${a.resource}.${a.group}` : a.resource;
  const message = a.name ? `${qualified} "${a.name}" is forbidden: ${reason}` : `${qualified} is forbidden: ${reason}`;
  const details: Record<string, string> = { ...(a.name ? { name: a.name } : {}), ...(a.group ? { group: a.group } : {}), kind: a.resource };
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason: "Forbidden", details, code: 403 };
}

/** A resource request's attributes from its method, path and query (undefined: not a resource path). */
function requestAttributes(method: string, pathname: string, q: URLSearchParams): Attributes | undefined {
  const seg = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  let rest: string[];
  let group = "";
  if (seg[0] === "api" && seg.length >= 2) rest = seg.slice(2);
  else if (seg[0] === "apis" && seg.length >= 3) [group, rest] = [seg[1]!, seg.slice(3)];
  else return undefined;
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) [namespace, rest] = [rest[1], rest.slice(2)];
  const [resource, name, subresource] = rest;
  if (!resource) return undefined;
  const verb = method === "GET" ? (name ? "get" : truthy(q.get("watch")) ? "watch" : "list")
    : method === "POST" ? "create" : method === "PUT" ? "update" : method === "PATCH" ? "patch"
    : method === "DELETE" ? (name ? "delete" : "deletecollection") : method.toLowerCase();
  return { verb, group, resource, subresource, namespace, name };
}

const enc = new TextEncoder();
const clone = <T>(o: T): T => structuredClone(o);

function status(code: number, reason: string, message: string): Obj {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

function openssl(args: string[], cwd: string): void {
  const p = spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`cannot run openssl ${args[0]}: ${p.stderr.toString()}`);
}

/** A test CA and a server certificate for 127.0.0.1/localhost (and address) signed by it. */
function makeCerts(dir: string, address?: string): { ca: string; cert: string; key: string } {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=mncni-test-ca", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
  openssl(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver"], dir);
  writeFileSync(join(dir, "server.ext"), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost${address && address !== "127.0.0.1" ? `,IP:${address}` : ""}\n`);
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext"], dir);
  return { ca: join(dir, "ca.crt"), cert: join(dir, "server.crt"), key: join(dir, "server.key") };
}

/** RFC 7386 merge patch. */
export function mergePatch(target: any, patch: any): any {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return clone(patch);
  const out = target !== null && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * Strategic merge patch for the fields mncni writes: like a merge patch, except lists with a
 * merge key in the Kubernetes types: `conditions` merged by `type` and `addresses` by
 * `type`, `podCIDRs` (patchStrategy merge on a list of strings) unioned.
 */
export function strategicPatch(target: any, patch: any, key = ""): any {
  if (Array.isArray(patch)) {
    const cur = Array.isArray(target) ? target : [];
    if (key === "conditions" || key === "addresses") {
      const out = cur.map((c: any) => ({ ...c }));
      for (const p of patch) {
        const i = out.findIndex((c: any) => c.type === p.type);
        if (i >= 0) out[i] = strategicPatch(out[i], p);
        else out.push(clone(p));
      }
      return out;
    }
    if (key === "podCIDRs") return [...new Set([...cur, ...patch])];
    return clone(patch);
  }
  if (patch === null || typeof patch !== "object") return clone(patch);
  const out = target !== null && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = strategicPatch(out[k], v, k);
  }
  return out;
}

/** RFC 6902 JSON patch: add, remove, replace and test; a failed op or test is an error. */
export function jsonPatch(target: any, ops: any): any {
  if (!Array.isArray(ops)) throw new Error("a JSON patch is a list of operations");
  const doc = clone(target);
  for (const op of ops) {
    const parts = String(op.path).split("/").slice(1).map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = parts.pop()!;
    let parent: any = doc;
    for (const t of parts) {
      parent = parent?.[Array.isArray(parent) ? Number(t) : t];
      if (parent === undefined) throw new Error(`path "${op.path}" does not exist`);
    }
    const idx = Array.isArray(parent) ? (last === "-" ? parent.length : Number(last)) : last;
    switch (op.op) {
      case "add":
        if (Array.isArray(parent)) parent.splice(idx as number, 0, clone(op.value));
        else parent[idx] = clone(op.value);
        break;
      case "replace":
      case "remove":
        if (!(idx in parent)) throw new Error(`path "${op.path}" does not exist`);
        if (op.op === "replace") parent[idx] = clone(op.value);
        else if (Array.isArray(parent)) parent.splice(idx as number, 1);
        else delete parent[idx];
        break;
      case "test":
        if (JSON.stringify(parent[idx]) !== JSON.stringify(op.value)) throw new Error(`test of "${op.path}" failed`);
        break;
      default:
        throw new Error(`unsupported op "${op.op}"`);
    }
  }
  return doc;
}

function validateNode(old: Obj | undefined, next: Obj): string | undefined {
  const cidrs: string[] = next.spec?.podCIDRs ?? [];
  if (next.spec?.podCIDR && cidrs.length && next.spec.podCIDR !== cidrs[0]) return "spec.podCIDR: must equal spec.podCIDRs[0]";
  if (cidrs.length > 2) return "spec.podCIDRs: may specify no more than one CIDR for each IP family";
  for (const c of cidrs) if (!/^[0-9a-fA-F.:]+\/\d+$/.test(c)) return `spec.podCIDRs: invalid CIDR "${c}"`;
  const before: string[] = old?.spec?.podCIDRs ?? [];
  // Real validation (ValidateNodeUpdate): pod CIDRs go from unset to set once, never change.
  if (before.length && JSON.stringify(before) !== JSON.stringify(cidrs)) return "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid";
  return undefined;
}

export class FakeApiServer {
  readonly dir: string;
  readonly caFile: string;
  readonly token: string;
  readonly requests: RecordedRequest[] = [];
  readonly hidden = new Set<string>();
  /** ServiceAccount user -> its token, and back. */
  private readonly tokens = new Map<string, string>();
  private readonly users = new Map<string, string>();
  private readonly grants: Map<string, Grant[]>;
  private readonly certFile: string;
  private readonly keyFile: string;
  private readonly store = new Map<string, Map<string, Obj>>();
  private readonly history: HistoryEntry[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly faults: Fault[] = [];
  private readonly snapshots = new Map<string, Obj[]>();
  /** Pod CIDR -> the Node holding it (exact CIDR text), kept on every Node write. */
  private readonly cidrOwner = new Map<string, string>();
  private readonly nodeCIDRs = new Map<string, string[]>();
  /**
   * Writes through the API that gave a Node a pod CIDR another existing Node held: the
   * invariant "never hand out a CIDR in use", checked at every write, not only at the end.
   */
  readonly podCIDRConflicts: string[] = [];
  private compactedRv = 0;
  private rv = 1;
  private uid = 0;
  private server?: Server<undefined>;
  private portNumber = 0;
  watchCount = 0;

  private constructor(private readonly opts: FakeApiServerOpts) {
    this.dir = mkdtempSync("/tmp/mncni-kube-test-");
    const c = makeCerts(this.dir, opts.address);
    this.caFile = c.ca;
    this.certFile = c.cert;
    this.keyFile = c.key;
    this.token = opts.token ?? `token-${Math.random().toString(36).slice(2)}`;
    for (const p of Object.keys(KINDS)) this.store.set(p, new Map());
    this.grants = parseRbac(opts.rbacManifests ?? readFileSync(DEPLOY_MANIFESTS, "utf8"));
    for (const user of this.grants.keys()) {
      const token = `sa-${user.split(":").slice(2).join("-")}-${Math.random().toString(36).slice(2)}`;
      this.tokens.set(user, token);
      this.users.set(token, user);
    }
  }

  /**
   * The bearer token of a ServiceAccount bound in the RBAC manifests ("kube-system:mncni-agent"
   * or just "mncni-agent" in kube-system): its requests are authorized as deploy/ grants.
   */
  tokenOf(serviceAccount: string): string {
    const [namespace, name] = serviceAccount.includes(":") ? serviceAccount.split(":") : ["kube-system", serviceAccount];
    const token = this.tokens.get(serviceAccountUser(namespace!, name!));
    if (!token) throw new Error(`no binding for ServiceAccount ${namespace}/${name} in the RBAC manifests: known ${[...this.tokens.keys()].join(", ")}`);
    return token;
  }

  /** Requests answered 403 (what a role did not allow). */
  forbiddenRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.status === 403);
  }

  static start(opts: FakeApiServerOpts = {}): FakeApiServer {
    const s = new FakeApiServer(opts);
    s.listen();
    return s;
  }

  get port(): number {
    return this.portNumber;
  }

  get url(): string {
    return `https://${this.address}:${this.portNumber}`;
  }

  get address(): string {
    return this.opts.address ?? "127.0.0.1";
  }

  get resourceVersion(): number {
    return this.rv;
  }

  private listen(): void {
    if (this.opts.netns) withNetns(this.opts.netns, () => this.bind());
    else this.bind();
  }

  private bind(): void {
    this.server = Bun.serve({
      hostname: this.address,
      port: this.portNumber,
      // Watches stay open for minutes with only bookmarks on them.
      idleTimeout: 0,
      tls: { cert: Bun.file(this.certFile), key: Bun.file(this.keyFile) },
      fetch: (req) => this.handle(req),
    });
    this.portNumber = this.server.port!;
  }

  /** The API server goes away: connections refused (and open watches cut) until start(). */
  stop(): void {
    this.dropWatches();
    this.server?.stop(true);
    this.server = undefined;
  }

  start(): void {
    if (!this.server) this.listen();
  }

  close(): void {
    this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A kubeconfig naming the CA file and the token (the admin's, or a ServiceAccount's: `as`). */
  writeKubeconfig(path = join(this.dir, "kubeconfig"), o: { inlineCA?: boolean; token?: string; as?: string } = {}): string {
    const token = o.token ?? (o.as ? this.tokenOf(o.as) : this.token);
    const ca = o.inlineCA ? `    certificate-authority-data: ${readFileSync(this.caFile).toString("base64")}` : `    certificate-authority: ${this.caFile}`;
    writeFileSync(
      path,
      ["apiVersion: v1", "kind: Config", "clusters:", "- name: fake", "  cluster:", `    server: ${this.url}`, ca, "users:", "- name: tester", "  user:", `    token: ${token}`, "contexts:", "- name: fake", "  context:", "    cluster: fake", "    user: tester", "    namespace: kube-system", "current-context: fake", ""].join("\n"),
    );
    return path;
  }

  /** A service-account directory (token, ca.crt, namespace) for in-cluster config; `as`: a ServiceAccount's token. */
  writeServiceAccountDir(dir = join(this.dir, "serviceaccount"), namespace = "kube-system", o: { as?: string } = {}): string {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "token"), (o.as ? this.tokenOf(o.as) : this.token) + "\n");
    writeFileSync(join(dir, "ca.crt"), readFileSync(this.caFile));
    writeFileSync(join(dir, "namespace"), namespace);
    return dir;
  }

  // --- test controls ---

  fail(f: Omit<Fault, "count"> & { count?: number }): void {
    this.faults.push({ count: 1, ...f });
  }

  /** Ends every open watch stream (of one resource, or all). */
  dropWatches(plural?: string): number {
    let n = 0;
    for (const w of [...this.watchers]) {
      if (plural && w.plural !== plural) continue;
      this.endWatch(w);
      n++;
    }
    return n;
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  /** Forgets the event history: a watch from any earlier resourceVersion gets 410. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history.length = 0;
  }

  /** Sends a bookmark with the current resourceVersion on every open watch. */
  bookmark(): void {
    for (const w of this.watchers) if (w.bookmarks) this.bookmarkTo(w);
  }

  objects(plural: string): Obj[] {
    return [...this.store.get(plural)!.values()].map(clone);
  }

  getObject(plural: string, name: string, namespace?: string): Obj | undefined {
    const o = this.store.get(plural)!.get(namespace ? `${namespace}/${name}` : name);
    return o && clone(o);
  }

  /** Creates or replaces an object as a test fixture (not recorded as a request). */
  put(plural: string, obj: Obj): Obj {
    const k = KINDS[plural]!;
    const o = clone(obj);
    o.apiVersion = apiVersionOf(k);
    o.kind = k.kind;
    o.metadata ??= {};
    const key = this.keyOf(k, o.metadata.namespace, o.metadata.name);
    const old = this.store.get(plural)!.get(key);
    o.metadata.uid ??= old?.metadata?.uid ?? `uid-${++this.uid}`;
    o.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, "Z");
    this.commit(plural, key, old ? "MODIFIED" : "ADDED", o, false);
    return clone(o);
  }

  remove(plural: string, name: string, namespace?: string): boolean {
    const k = KINDS[plural]!;
    const key = this.keyOf(k, namespace, name);
    const old = this.store.get(plural)!.get(key);
    if (!old) return false;
    this.commit(plural, key, "DELETED", clone(old), false);
    return true;
  }

  /** Requests of one kind: e.g. ("PATCH", "/api/v1/nodes/") for every node patch. */
  requestsTo(method: string, pathPrefix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path.startsWith(pathPrefix));
  }

  // --- internals ---

  private keyOf(k: Kind, ns: string | undefined, name: string): string {
    return k.namespaced ? `${ns ?? "default"}/${name}` : name;
  }

  private trackPodCIDRs(type: HistoryEntry["type"], obj: Obj, viaApi: boolean): void {
    const name = obj.metadata!.name as string;
    for (const c of this.nodeCIDRs.get(name) ?? []) if (this.cidrOwner.get(c) === name) this.cidrOwner.delete(c);
    this.nodeCIDRs.delete(name);
    if (type === "DELETED") return;
    const cidrs = (obj.spec?.podCIDRs ?? []) as string[];
    this.nodeCIDRs.set(name, cidrs);
    for (const c of cidrs) {
      const other = this.cidrOwner.get(c);
      if (other !== undefined && other !== name && viaApi) this.podCIDRConflicts.push(`${c}: ${other} and ${name}`);
      this.cidrOwner.set(c, name);
    }
  }

  private commit(plural: string, key: string, type: HistoryEntry["type"], obj: Obj, viaApi = true): void {
    if (plural === "nodes") this.trackPodCIDRs(type, obj, viaApi);
    const rv = ++this.rv;
    obj.metadata!.resourceVersion = String(rv);
    if (type === "DELETED") this.store.get(plural)!.delete(key);
    else this.store.get(plural)!.set(key, obj);
    this.history.push({ rv, plural, type, obj: clone(obj) });
    const max = this.opts.historySize ?? 1000;
    while (this.history.length > max) this.compactedRv = this.history.shift()!.rv;
    for (const w of this.watchers) {
      if (w.plural !== plural || (w.namespace && w.namespace !== obj.metadata?.namespace)) continue;
      this.send(w, { type, object: obj });
    }
  }

  private send(w: Watcher, ev: unknown): void {
    try {
      w.ctrl.enqueue(enc.encode(JSON.stringify(ev) + "\n"));
    } catch {
      this.endWatch(w);
    }
  }

  private bookmarkTo(w: Watcher): void {
    const k = KINDS[w.plural]!;
    this.send(w, { type: "BOOKMARK", object: { kind: k.kind, apiVersion: apiVersionOf(k), metadata: { resourceVersion: String(this.rv) } } });
  }

  private endWatch(w: Watcher): void {
    if (!this.watchers.delete(w)) return;
    clearInterval(w.timer);
    clearTimeout(w.timeout);
    try {
      w.ctrl.close();
    } catch {}
  }

  private reply(rec: RecordedRequest, code: number, body: Obj, headers: Record<string, string> = {}): Response {
    rec.status = code;
    if (code < 300 && body.kind !== "Status" && !body.items) rec.result = clone(body);
    return new Response(JSON.stringify(body), { status: code, headers: { "Content-Type": "application/json", ...headers } });
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const contentType = req.headers.get("content-type") ?? undefined;
    let body: any;
    if (req.method !== "GET" && req.method !== "DELETE") {
      const text = await req.text();
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
    }
    const rec: RecordedRequest = { method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), contentType, userAgent: req.headers.get("user-agent") ?? undefined, body, status: 0 };
    this.requests.push(rec);
    const fault = this.faults.find((f) => f.count > 0 && (!f.match || f.match(req.method, url.pathname, url.searchParams)));
    if (fault) {
      fault.count--;
      const reason = fault.status === 429 ? "TooManyRequests" : "InternalError";
      return this.reply(rec, fault.status, status(fault.status, reason, "injected by the test"), fault.retryAfterSeconds !== undefined ? { "Retry-After": String(fault.retryAfterSeconds) } : {});
    }
    const bearer = req.headers.get("authorization")?.match(/^Bearer (.+)$/)?.[1];
    rec.user = bearer === this.token ? "admin" : bearer ? this.users.get(bearer) : undefined;
    if (!rec.user) return this.reply(rec, 401, status(401, "Unauthorized", "Unauthorized"));
    // Authorization comes before the resource is looked up, as in the real server's filters.
    if (rec.user !== "admin") {
      const attrs = requestAttributes(req.method, url.pathname, url.searchParams);
      if (attrs && !authorized(this.grants.get(rec.user)!, attrs)) return this.reply(rec, 403, forbidden(rec.user, attrs));
      if (!attrs) return this.reply(rec, 403, status(403, "Forbidden", `forbidden: User "${rec.user}" cannot ${req.method.toLowerCase()} path "${url.pathname}"`));
    }
    const route = this.route(url.pathname);
    if (!route || this.hidden.has(route.plural)) return this.reply(rec, 404, status(404, "NotFound", "the server could not find the requested resource"));
    const { plural, namespace, name, sub } = route;
    const k = KINDS[plural]!;
    if (req.method === "GET" && !name && truthy(url.searchParams.get("watch"))) {
      rec.status = 200;
      return this.startWatch(plural, namespace, url.searchParams);
    }
    if (req.method === "GET" && !name) {
      const list = this.list(plural, namespace, url.searchParams);
      return this.reply(rec, list.kind === "Status" ? list.code : 200, list);
    }
    const store = this.store.get(plural)!;
    if (req.method === "POST" && !name) {
      if (!body?.metadata?.name && !body?.metadata?.generateName) return this.reply(rec, 422, status(422, "Invalid", "metadata.name: Required value"));
      const o = clone(body) as Obj & { metadata: Record<string, any> };
      o.metadata.name ??= `${o.metadata.generateName}${Math.random().toString(36).slice(2, 7)}`;
      if (k.namespaced) o.metadata.namespace = namespace ?? o.metadata.namespace ?? "default";
      const key = this.keyOf(k, o.metadata.namespace, o.metadata.name);
      if (store.has(key)) return this.reply(rec, 409, status(409, "AlreadyExists", `${plural} "${o.metadata.name}" already exists`));
      o.apiVersion = apiVersionOf(k);
      o.kind = k.kind;
      o.metadata.uid = `uid-${++this.uid}`;
      o.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      if (plural === "nodes") {
        const err = validateNode(undefined, o);
        if (err) return this.reply(rec, 422, status(422, "Invalid", err));
      }
      this.commit(plural, key, "ADDED", o);
      return this.reply(rec, 201, o);
    }
    if (!name) return this.reply(rec, 405, status(405, "MethodNotAllowed", "method not allowed"));
    const key = this.keyOf(k, namespace, name);
    const cur = store.get(key);
    if (!cur) return this.reply(rec, 404, status(404, "NotFound", `${plural} "${name}" not found`));
    if (req.method === "GET") return this.reply(rec, 200, clone(cur));
    if (req.method === "DELETE") {
      this.commit(plural, key, "DELETED", clone(cur));
      return this.reply(rec, 200, status(200, "", "deleted"));
    }
    let next: Obj;
    if (req.method === "PUT") {
      next = clone(body);
    } else if (req.method === "PATCH") {
      if (contentType?.startsWith("application/merge-patch+json")) next = mergePatch(cur, body);
      else if (contentType?.startsWith("application/strategic-merge-patch+json")) next = strategicPatch(cur, body);
      else if (contentType?.startsWith("application/json-patch+json")) {
        try {
          next = jsonPatch(cur, body);
        } catch (e) {
          return this.reply(rec, 422, status(422, "Invalid", `cannot apply JSON patch: ${(e as Error).message}`));
        }
      } else return this.reply(rec, 415, status(415, "UnsupportedMediaType", `the body of the request was in an unknown format: ${contentType}`));
    } else {
      return this.reply(rec, 405, status(405, "MethodNotAllowed", "method not allowed"));
    }
    const want = body?.metadata?.resourceVersion;
    if (want !== undefined && want !== cur.metadata?.resourceVersion) {
      return this.reply(rec, 409, status(409, "Conflict", `Operation cannot be fulfilled on ${plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`));
    }
    // The main resource does not change status, the status subresource changes only status.
    if (sub === "status") next = { ...clone(cur), status: next.status };
    else if (cur.status !== undefined || next.status !== undefined) next = { ...next, status: clone(cur.status) };
    next.apiVersion = cur.apiVersion;
    next.kind = cur.kind;
    next.metadata = { ...next.metadata, name: cur.metadata!.name, namespace: cur.metadata!.namespace, uid: cur.metadata!.uid, creationTimestamp: cur.metadata!.creationTimestamp, resourceVersion: cur.metadata!.resourceVersion };
    if (plural === "nodes") {
      const err = validateNode(cur, next);
      if (err) return this.reply(rec, 422, status(422, "Invalid", err));
    }
    if (JSON.stringify(next) === JSON.stringify(cur)) return this.reply(rec, 200, clone(cur));
    this.commit(plural, key, "MODIFIED", next);
    return this.reply(rec, 200, clone(next));
  }

  private route(pathname: string): { plural: string; namespace?: string; name?: string; sub?: string } | undefined {
    const seg = pathname.split("/").filter(Boolean).map(decodeURIComponent);
    let rest: string[];
    let group = "";
    if (seg[0] === "api" && seg[1] === "v1") rest = seg.slice(2);
    else if (seg[0] === "apis" && seg.length >= 3) [group, rest] = [seg[1]!, seg.slice(3)];
    else return undefined;
    let namespace: string | undefined;
    if (rest[0] === "namespaces" && rest.length >= 3) [namespace, rest] = [rest[1], rest.slice(2)];
    const [plural, name, sub] = rest;
    const k = plural ? KINDS[plural] : undefined;
    if (!k || k.group !== group || (namespace && !k.namespaced)) return undefined;
    return { plural: plural!, namespace, name, sub };
  }

  private sorted(plural: string, namespace?: string): Obj[] {
    return [...this.store.get(plural)!.entries()]
      .filter(([, o]) => !namespace || o.metadata?.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o);
  }

  private list(plural: string, namespace: string | undefined, q: URLSearchParams): Obj {
    const k = KINDS[plural]!;
    const limit = Number(q.get("limit") ?? 0);
    const cont = q.get("continue");
    let items: Obj[];
    let rv: string;
    let offset = 0;
    let id: string;
    if (cont) {
      const t = JSON.parse(Buffer.from(cont, "base64").toString()) as { id: string; offset: number; rv: string };
      const snap = this.snapshots.get(t.id);
      if (!snap) return status(410, "Expired", "The provided continue parameter is too old");
      [items, offset, rv, id] = [snap, t.offset, t.rv, t.id];
    } else {
      items = this.sorted(plural, namespace).map(clone);
      rv = String(this.rv);
      id = Math.random().toString(36).slice(2);
    }
    const page = limit > 0 ? items.slice(offset, offset + limit) : items.slice(offset);
    const end = offset + page.length;
    const meta: Record<string, unknown> = { resourceVersion: rv };
    if (end < items.length) {
      this.snapshots.set(id, items);
      meta.continue = Buffer.from(JSON.stringify({ id, offset: end, rv })).toString("base64");
      meta.remainingItemCount = items.length - end;
    } else {
      this.snapshots.delete(id);
    }
    return { kind: `${k.kind}List`, apiVersion: apiVersionOf(k), metadata: meta, items: page };
  }

  private startWatch(plural: string, namespace: string | undefined, q: URLSearchParams): Response {
    this.watchCount++;
    const from = q.get("resourceVersion") ?? "";
    const bookmarks = truthy(q.get("allowWatchBookmarks"));
    const timeoutSeconds = Number(q.get("timeoutSeconds") ?? 0);
    let self: Watcher;
    const stream = new ReadableStream<Uint8Array>({
      start: (ctrl) => {
        self = { plural, namespace, ctrl, bookmarks };
        const fromRv = from === "" || from === "0" ? undefined : Number(from);
        if (fromRv !== undefined && fromRv < this.compactedRv) {
          ctrl.enqueue(enc.encode(JSON.stringify({ type: "ERROR", object: status(410, "Expired", `too old resource version: ${fromRv} (${this.compactedRv})`) }) + "\n"));
          ctrl.close();
          return;
        }
        this.watchers.add(self);
        // The real server flushes the 200 and its headers at once (a client knows its watch is
        // established); Bun sends nothing of a response before its first byte, so send one
        // byte of whitespace, which JSON stream decoders skip.
        ctrl.enqueue(enc.encode("\n"));
        if (fromRv === undefined) {
          for (const o of this.sorted(plural, namespace)) this.send(self, { type: "ADDED", object: o });
        } else {
          for (const h of this.history) {
            if (h.rv > fromRv && h.plural === plural && (!namespace || h.obj.metadata?.namespace === namespace)) this.send(self, { type: h.type, object: h.obj });
          }
        }
        if (bookmarks) self.timer = setInterval(() => this.bookmarkTo(self), this.opts.bookmarkIntervalMs ?? 1000);
        if (timeoutSeconds > 0) self.timeout = setTimeout(() => this.endWatch(self), timeoutSeconds * 1000);
      },
      cancel: () => {
        this.endWatch(self);
      },
    });
    return new Response(stream, { status: 200, headers: { "Content-Type": "application/json", "Transfer-Encoding": "chunked" } });
  }
}
