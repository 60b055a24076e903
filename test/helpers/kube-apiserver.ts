// The Kubernetes API server of the agent, controller and client tests: the lab API server
// (src/lab/apiserver/: its store, watches, RBAC, validation and patches) in a temp directory,
// in memory, with what tests need around it: a record of every resource request (who sent
// it, its answer), injected 429/500 answers, hidden kinds (a missing CRD), dropped watches,
// a compacted log (410 on resume), and stop/start on the same port. RBAC is that of the
// manifests given (default deploy/mncni.yaml): each ServiceAccount bound there has a token;
// the fake's own token is an admin's (system:masters).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { kubeconfigText } from "../../src/lab/apiserver/credentials.ts";
import { kindByPlural, type Obj } from "../../src/lab/apiserver/kinds.ts";
import type { User } from "../../src/lab/apiserver/rbac.ts";
import { ApiServer } from "../../src/lab/apiserver/server.ts";
import { status } from "../../src/lab/apiserver/status.ts";
import { keyOf } from "../../src/lab/apiserver/store.ts";

/** Go's strconv.ParseBool, as the API server parses query booleans (python sends "True"). */
const truthy = (v: string | null) => v !== null && ["1", "t", "T", "true", "TRUE", "True"].includes(v);

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

/**
 * A request the server takes and then leaves hanging: before its status and headers (a request
 * written into a connection nobody serves any more), or after them with no byte more (a stream
 * stopped mid-way). What a client's header and idle timeouts are for.
 */
export interface Hang {
  when: "before-headers" | "after-headers";
  count: number;
  match?: (method: string, path: string, query: URLSearchParams) => boolean;
}

export interface FakeApiServerOpts {
  /** Changes kept for watches resuming from an older resourceVersion (beyond it: 410). */
  historySize?: number;
  bookmarkIntervalMs?: number;
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

const DEPLOY_MANIFESTS = resolve(import.meta.dir, "../../deploy/mncni.yaml");

/** The namespaces every cluster starts with (Events and Leases are written there). */
const NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

/** The user name of a ServiceAccount, as its token authenticates. */
export const serviceAccountUser = (namespace: string, name: string) => `system:serviceaccount:${namespace}:${name}`;

/** The ServiceAccount users the RBAC objects bind (the only ones tokenOf hands out). */
function boundServiceAccounts(objects: Obj[]): Set<string> {
  const out = new Set<string>();
  for (const o of objects) {
    if (o.kind !== "ClusterRoleBinding" && o.kind !== "RoleBinding") continue;
    for (const s of o.subjects ?? []) if (s.kind === "ServiceAccount") out.add(serviceAccountUser(s.namespace ?? o.metadata?.namespace, s.name));
  }
  return out;
}

export class FakeApiServer {
  readonly dir: string;
  readonly caFile: string;
  readonly token: string;
  readonly requests: RecordedRequest[] = [];
  /**
   * Writes through the API that gave a Node a pod CIDR another existing Node held: the
   * invariant "never hand out a CIDR in use", checked at every write, not only at the end.
   */
  readonly podCIDRConflicts: string[] = [];
  watchCount = 0;
  readonly server: ApiServer;
  private readonly faults: Fault[] = [];
  private readonly hangs: Hang[] = [];
  private readonly shortWatches: Omit<Hang, "when">[] = [];
  /** The streams of hanging answers, closed by stop() (which cuts connections) so nothing outlives the server. */
  private readonly hanging = new Set<ReadableStreamDefaultController<Uint8Array>>();
  private readonly serviceAccounts: Set<string>;
  /** Pod CIDR -> the Node holding it (exact CIDR text), kept on every Node write. */
  private readonly cidrOwner = new Map<string, string>();
  private readonly nodeCIDRs = new Map<string, string[]>();
  /** A fixture write (put/remove) is under way: not a write through the API. */
  private fixture = false;
  private running = false;

  private constructor(private readonly opts: FakeApiServerOpts) {
    this.dir = mkdtempSync("/tmp/mncni-kube-test-");
    const rbac = parseAllDocuments(opts.rbacManifests ?? readFileSync(DEPLOY_MANIFESTS, "utf8")).map((d) => d.toJS() as Obj).filter(Boolean);
    this.serviceAccounts = boundServiceAccounts(rbac);
    this.server = new ApiServer({
      dir: this.dir, hostname: this.address, netns: opts.netns, persist: false, rbac,
      logSize: opts.historySize ?? 1000, bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 1000,
      intercept: (req, url) => this.injectFault(req, url),
      done: (req, url, body, result, user) => this.record(req, url, body, result.code, result.body, user),
    });
    this.caFile = this.server.certs.ca;
    this.token = this.server.tokens.tokenOf("admin");
    this.server.store.subscribe((c) => c.plural === "nodes" && this.trackPodCIDRs(c.type, c.obj));
    for (const name of NAMESPACES) this.put("namespaces", { metadata: { name, labels: { "kubernetes.io/metadata.name": name } }, status: { phase: "Active" } });
  }

  static start(opts: FakeApiServerOpts = {}): FakeApiServer {
    const s = new FakeApiServer(opts);
    s.start();
    return s;
  }

  get port(): number {
    return this.server.port;
  }

  get url(): string {
    return this.server.url;
  }

  get address(): string {
    return this.opts.address ?? "127.0.0.1";
  }

  get resourceVersion(): number {
    return this.server.store.resourceVersion;
  }

  /** Kinds (plural names) answered 404 and left out of discovery, as without their CRD. */
  get hidden(): Set<string> {
    return this.server.hidden;
  }

  get openWatches(): number {
    return this.server.watches.count;
  }

  /**
   * The bearer token of a ServiceAccount bound in the RBAC manifests ("kube-system:mncni-agent"
   * or just "mncni-agent" in kube-system): its requests are authorized as deploy/ grants.
   */
  tokenOf(serviceAccount: string): string {
    const [namespace, name] = serviceAccount.includes(":") ? serviceAccount.split(":") : ["kube-system", serviceAccount];
    const user = serviceAccountUser(namespace!, name!);
    if (!this.serviceAccounts.has(user)) throw new Error(`no binding for ServiceAccount ${namespace}/${name} in the RBAC manifests: known ${[...this.serviceAccounts].join(", ")}`);
    return this.server.tokens.tokenOf(user);
  }

  /** Requests answered 403 (what a role did not allow). */
  forbiddenRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.status === 403);
  }

  /** Requests of one kind: e.g. ("PATCH", "/api/v1/nodes/") for every node patch. */
  requestsTo(method: string, pathPrefix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path.startsWith(pathPrefix));
  }

  /** The API server goes away: connections refused (and open watches cut) until start(). */
  stop(): void {
    for (const c of this.hanging) {
      try {
        c.close();
      } catch {}
    }
    this.hanging.clear();
    if (!this.running) return;
    this.server.stop();
    this.running = false;
  }

  start(): void {
    if (this.running) return;
    this.server.listen();
    this.running = true;
  }

  close(): void {
    this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A kubeconfig naming the CA file and the token (the admin's, or a ServiceAccount's: `as`). */
  writeKubeconfig(path = join(this.dir, "kubeconfig"), o: { inlineCA?: boolean; token?: string; as?: string } = {}): string {
    const token = o.token ?? (o.as ? this.tokenOf(o.as) : this.token);
    writeFileSync(path, kubeconfigText(this.url, this.caFile, token, "kube-system", o.inlineCA));
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

  /** The next `count` (default 1) requests that match get this status instead of an answer. */
  fail(f: Omit<Fault, "count"> & { count?: number }): void {
    this.faults.push({ count: 1, ...f });
  }

  /** The next `count` (default 1) requests that match are taken and never answered (Hang). */
  hang(h: Omit<Hang, "count"> & { count?: number }): void {
    this.hangs.push({ count: 1, ...h });
  }

  /**
   * The next `count` (default 1) watch requests that match are answered 200 and their stream
   * ended at once, with no event: a server shutting down, or a proxy cutting streams.
   */
  closeWatchesAtOnce(h: Omit<Hang, "when" | "count"> & { count?: number }): void {
    this.shortWatches.push({ count: 1, ...h });
  }

  /** How many hanging answers are still open (a client that gave up closed its side). */
  get hangingNow(): number {
    return this.hanging.size;
  }

  /** Ends every open watch stream (of one resource, or all); how many. */
  dropWatches(plural?: string): number {
    return this.server.watches.endAll(plural);
  }

  /** Forgets the change log: a watch from any earlier resourceVersion gets 410. */
  compact(): void {
    this.server.store.compact();
  }

  /** Sends a bookmark with the current resourceVersion on every open watch that allows them. */
  bookmark(): void {
    this.server.watches.bookmarkAll();
  }

  objects(plural: string): Obj[] {
    return this.server.store.list(plural).map((o) => structuredClone(o));
  }

  getObject(plural: string, name: string, namespace?: string): Obj | undefined {
    const o = this.server.store.get(plural, kindByPlural(plural).namespaced ? `${namespace ?? "default"}/${name}` : name);
    return o && structuredClone(o);
  }

  /** Creates or replaces an object as a test fixture (not recorded as a request, not validated). */
  put(plural: string, obj: Obj): Obj {
    return this.asFixture(() => this.server.put(plural, obj));
  }

  remove(plural: string, name: string, namespace?: string): boolean {
    return this.asFixture(() => this.server.remove(plural, name, kindByPlural(plural).namespaced ? namespace ?? "default" : undefined));
  }

  // --- internals ---

  private asFixture<T>(f: () => T): T {
    this.fixture = true;
    try {
      return f();
    } finally {
      this.fixture = false;
    }
  }

  private injectFault(req: Request, url: URL): Response | undefined {
    const isWatch = req.method === "GET" && truthy(url.searchParams.get("watch"));
    const short = isWatch ? this.shortWatches.find((h) => h.count > 0 && (!h.match || h.match(req.method, url.pathname, url.searchParams))) : undefined;
    if (short) {
      short.count--;
      this.record(req, url, undefined, 200, { kind: "Status", reason: "closed at once by the test" }, undefined);
      return new Response("\n", { status: 200, headers: { "Content-Type": "application/json" } });
    }
    const hang = this.hangs.find((h) => h.count > 0 && (!h.match || h.match(req.method, url.pathname, url.searchParams)));
    if (hang) {
      hang.count--;
      this.record(req, url, undefined, 200, { kind: "Status", reason: "hung by the test" }, undefined);
      let ctl: ReadableStreamDefaultController<Uint8Array> | undefined;
      const body = new ReadableStream<Uint8Array>({
        start: (c) => {
          ctl = c;
          this.hanging.add(c);
          // Bun sends the status and headers with the first byte: one newline (skipped by watch decoders), or nothing.
          if (hang.when === "after-headers") c.enqueue(new TextEncoder().encode("\n"));
        },
        cancel: () => void (ctl && this.hanging.delete(ctl)),
      });
      return new Response(body, { status: 200, headers: { "Content-Type": "application/json" } });
    }
    const fault = this.faults.find((f) => f.count > 0 && (!f.match || f.match(req.method, url.pathname, url.searchParams)));
    if (!fault) return undefined;
    fault.count--;
    const body = status(fault.status, fault.status === 429 ? "TooManyRequests" : "InternalError", "injected by the test");
    this.record(req, url, undefined, fault.status, body, undefined);
    return new Response(JSON.stringify(body), {
      status: fault.status,
      headers: { "Content-Type": "application/json", ...(fault.retryAfterSeconds !== undefined ? { "Retry-After": String(fault.retryAfterSeconds) } : {}) },
    });
  }

  private record(req: Request, url: URL, body: unknown, code: number, answer: Obj, user: User | undefined): void {
    const watch = req.method === "GET" && truthy(url.searchParams.get("watch"));
    if (watch && code === 200) this.watchCount++;
    this.requests.push({
      user: user && (user.groups.includes("system:masters") ? "admin" : user.name),
      method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams),
      contentType: req.headers.get("content-type") ?? undefined, userAgent: req.headers.get("user-agent") ?? undefined,
      body, status: code,
      ...(code < 300 && !watch && answer.kind !== "Status" && !answer.items ? { result: structuredClone(answer) } : {}),
    });
  }

  private trackPodCIDRs(type: string, obj: Obj): void {
    const name = keyOf(obj);
    for (const c of this.nodeCIDRs.get(name) ?? []) if (this.cidrOwner.get(c) === name) this.cidrOwner.delete(c);
    this.nodeCIDRs.delete(name);
    if (type === "DELETED") return;
    const cidrs = (obj.spec?.podCIDRs ?? []) as string[];
    this.nodeCIDRs.set(name, cidrs);
    for (const c of cidrs) {
      const other = this.cidrOwner.get(c);
      if (other !== undefined && other !== name && !this.fixture) this.podCIDRConflicts.push(`${c}: ${other} and ${name}`);
      this.cidrOwner.set(c, name);
    }
  }
}
