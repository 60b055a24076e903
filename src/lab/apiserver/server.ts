// The lab API server: HTTPS on one address, bearer tokens, RBAC per request, then discovery,
// OpenAPI, or the verbs on a resource (src/lab/apiserver/resources.ts); anything else 404.
import type { Server } from "bun";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withNetns } from "../../kernel/netns.ts";
import { ensureCerts, kubeconfigText, Tokens, type Certs } from "./credentials.ts";
import { discovery, OPENAPI_V2_PROTOBUF, OPENAPI_V3_INDEX, VERSION } from "./discovery.ts";
import { kindByPlural, kindOf, type Kind, type Obj } from "./kinds.ts";
import { decodeProtobuf, PROTOBUF, ProtobufError } from "./protobuf.ts";
import { Authorizer, forbiddenMessage, type Attributes, type User } from "./rbac.ts";
import { Resources, type Admission, type Result, type Target } from "./resources.ts";
import { fieldSelector, labelSelector, SelectorError } from "./selectors.ts";
import { badRequest, status, unknownPath } from "./status.ts";
import { keyOf, Store } from "./store.ts";
import { table, wantsTable } from "./tables.ts";
import { Watches } from "./watch.ts";

export interface ApiServerOptions {
  /** Where state.json, the CA, the server certificate and tokens.json live. */
  dir: string;
  hostname?: string;
  /** A network namespace (/run/netns/NAME) to listen in; the caller stays where it is. */
  netns?: string;
  /**
   * More sockets on the same port serving the same objects: e.g. an address inside the lab
   * for the nodes' agents, beside 127.0.0.1 of the machine for people.
   */
  also?: { hostname: string; netns?: string }[];
  /** 0: any free port. */
  port?: number;
  /** Changes kept for resuming watches (older: 410 Gone). */
  logSize?: number;
  bookmarkIntervalMs?: number;
  /** Keep objects in dir/state.json (default), or in memory only. */
  persist?: boolean;
  /** The RBAC objects (Roles, ClusterRoles, bindings) enforced; default: what deploy/ installs for the lab. */
  rbac?: Obj[];
  /** Admission of created and updated objects (the lab's Service allocators); see resources.ts. */
  admit?: Admission;
  /**
   * Seen before authentication: an answer here replaces the server's (tests inject faults:
   * 429, 500); `done` sees every resource request with its answer and who sent it.
   */
  intercept?: (req: Request, url: URL) => Response | undefined;
  done?: (req: Request, url: URL, body: unknown, result: Result, user?: User) => void;
}

/** Go's strconv.ParseBool, as the API server parses query booleans (python sends "True"). */
const truthy = (v: string | null) => v !== null && ["1", "t", "T", "true", "TRUE", "True"].includes(v);

const json = (code: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status: code, headers: { "Content-Type": "application/json", ...headers } });

interface Route extends Target {
  group: string;
}

/** The parts of a resource path: /api/v1/[namespaces/NS/]PLURAL[/NAME[/SUB]] and /apis/GROUP/VERSION/... */
interface PathParts {
  group: string;
  version: string;
  namespace?: string;
  plural?: string;
  name?: string;
  sub?: string;
  more: string[];
}

function pathParts(path: string): PathParts | undefined {
  const seg = path.split("/").filter(Boolean).map(decodeURIComponent);
  let group = "";
  let version: string;
  let rest: string[];
  if (seg[0] === "api" && seg[1] === "v1") [version, rest] = ["v1", seg.slice(2)];
  else if (seg[0] === "apis" && seg.length >= 4) [group, version, rest] = [seg[1]!, seg[2]!, seg.slice(3)];
  else return undefined;
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3 && rest[2] !== "status") [namespace, rest] = [rest[1], rest.slice(2)];
  const [plural, name, sub, ...more] = rest;
  return { group, version, namespace, plural, name, sub, more };
}

function verbOf(method: string, named: boolean, q: URLSearchParams): string | undefined {
  if (method === "GET") return named ? "get" : truthy(q.get("watch")) ? "watch" : "list";
  if (!named) return method === "POST" ? "create" : method === "DELETE" ? "deletecollection" : undefined;
  return ({ PUT: "update", PATCH: "patch", DELETE: "delete" } as Record<string, string>)[method];
}

/** What RBAC sees of a request, from its path alone (RequestInfo): known kind or not. */
function requestAttributes(method: string, path: string, q: URLSearchParams): Attributes | undefined {
  const p = pathParts(path);
  if (!p?.plural) return undefined;
  return { verb: verbOf(method, !!p.name, q) ?? method.toLowerCase(), group: p.group, resource: p.sub ? `${p.plural}/${p.sub}` : p.plural, namespace: p.namespace, name: p.name };
}

/** A path of a kind this server serves, or undefined. */
function route(path: string, served: (k: Kind) => boolean): Route | undefined {
  const p = pathParts(path);
  const kind = p?.plural ? kindOf(p.group, p.version, p.plural) : undefined;
  if (!p || !kind || !served(kind) || p.more.length || (p.namespace !== undefined && !kind.namespaced)) return undefined;
  if (p.sub !== undefined && !(p.sub === "status" && kind.status)) return undefined;
  return { kind, group: p.group, namespace: p.namespace, name: p.name, sub: p.sub };
}

/** A request body as JSON (sent as JSON, or protobuf for the kinds decoded), or why not. */
async function readBody(req: Request): Promise<{ body?: unknown; refused?: Result }> {
  const type = req.headers.get("content-type") ?? "";
  const unsupported = (why: string): { refused: Result } => ({ refused: { code: 415, body: status(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json, ${PROTOBUF} (${why})`) } });
  if (type.startsWith(PROTOBUF)) {
    try {
      return { body: decodeProtobuf(new Uint8Array(await req.arrayBuffer())) };
    } catch (e) {
      if (e instanceof ProtobufError) return unsupported(e.message);
      throw e;
    }
  }
  if (type && !/json|yaml/.test(type)) return unsupported(type);
  const text = await req.text();
  try {
    return { body: text ? JSON.parse(text) : undefined };
  } catch {
    return { body: text, refused: { code: 400, body: badRequest("the body of the request is not JSON") } };
  }
}

export class ApiServer {
  readonly store: Store;
  readonly tokens: Tokens;
  readonly certs: Certs;
  readonly watches: Watches;
  private readonly resources: Resources;
  private readonly authz: Authorizer;
  /**
   * Kinds not served (plural names): 404 and absent from discovery, as on a cluster without
   * their CRD installed. Tests hide and show them while clients run.
   */
  readonly hidden = new Set<string>();
  private readonly served = (k: Kind): boolean => !this.hidden.has(k.plural);
  /** Paged lists: the rest of a list is served from the snapshot its first page was cut from. */
  private readonly snapshots = new Map<string, Obj[]>();
  private servers: Server<undefined>[] = [];
  private portNumber: number;

  constructor(private readonly o: ApiServerOptions) {
    mkdirSync(o.dir, { recursive: true });
    this.certs = ensureCerts(o.dir, [o.hostname ?? "127.0.0.1", ...(o.also ?? []).map((a) => a.hostname)]);
    this.tokens = new Tokens(o.dir);
    this.store = new Store(o.persist === false ? undefined : join(o.dir, "state.json"), o.logSize);
    this.resources = new Resources(this.store, o.admit);
    this.authz = new Authorizer(o.rbac);
    this.watches = new Watches(this.store);
    this.portNumber = o.port ?? 0;
  }

  get port(): number {
    return this.portNumber;
  }

  get url(): string {
    return `https://${this.o.hostname ?? "127.0.0.1"}:${this.portNumber}`;
  }

  listen(): this {
    for (const l of [{ hostname: this.o.hostname ?? "127.0.0.1", netns: this.o.netns }, ...(this.o.also ?? [])]) {
      if (l.netns) withNetns(l.netns, () => this.bind(l.hostname));
      else this.bind(l.hostname);
    }
    return this;
  }

  private bind(hostname: string): void {
    const server = Bun.serve({
      hostname,
      port: this.portNumber,
      // Watches stay open for minutes with only bookmarks on them.
      idleTimeout: 0,
      tls: { cert: Bun.file(this.certs.cert), key: Bun.file(this.certs.key) },
      fetch: (req) => this.handle(req),
    });
    this.portNumber = server.port!;
    this.servers.push(server);
  }

  /** Connections refused and open watches cut, until listen() again (same port). */
  stop(): void {
    this.watches.endAll();
    for (const s of this.servers) s.stop(true);
    this.servers = [];
    this.store.save();
  }

  /** Writes a kubeconfig for a component's token ("admin", "agent-node1", ...) naming one of the addresses; returns its path. */
  writeKubeconfig(component: string, path = join(this.o.dir, `${component}.kubeconfig`), namespace?: string, hostname = this.o.hostname ?? "127.0.0.1"): string {
    writeFileSync(path, kubeconfigText(`https://${hostname}:${this.portNumber}`, this.certs.ca, this.tokens.tokenOf(component), namespace), { mode: 0o600 });
    return path;
  }

  /** Stores an object as given (a test or lab fixture: no authorization, no validation). */
  put(plural: string, obj: Obj): Obj {
    const kind = kindByPlural(plural);
    const o: Obj = structuredClone(obj);
    o.apiVersion = kind.group ? `${kind.group}/${kind.version}` : kind.version;
    o.kind = kind.kind;
    o.metadata = { ...o.metadata };
    if (kind.namespaced) o.metadata.namespace ??= "default";
    const old = this.store.get(plural, keyOf(o));
    o.metadata.uid ??= old?.metadata?.uid ?? crypto.randomUUID();
    o.metadata.creationTimestamp ??= old?.metadata?.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, "Z");
    return structuredClone(this.store.commit(plural, old ? "MODIFIED" : "ADDED", o));
  }

  remove(plural: string, name: string, namespace?: string): boolean {
    const o = this.store.get(plural, namespace ? `${namespace}/${name}` : name);
    if (o) this.store.commit(plural, "DELETED", structuredClone(o));
    return !!o;
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const early = this.o.intercept?.(req, url);
    if (early) return early;
    // Read now (every answer's record names it), refused only once the path is known to serve:
    // an unknown resource is 404 whatever its body, as kube-apiserver answers.
    const { body, refused } = req.method === "GET" ? {} : await readBody(req);
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/$/, "") : url.pathname;
    // What kube-apiserver shows anyone (system:public-info-viewer).
    if (["/healthz", "/livez", "/readyz"].includes(path)) return new Response("ok");
    if (path === "/version") return json(200, VERSION);
    const user = this.tokens.userOf(req.headers.get("authorization"));
    if (!user) return this.answer(req, url, body, { code: 401, body: status(401, "Unauthorized", "Unauthorized") });
    if (path === "/openapi/v2") return new Response(new Uint8Array(0), { headers: { "Content-Type": OPENAPI_V2_PROTOBUF } });
    if (path === "/openapi/v3") return json(200, OPENAPI_V3_INDEX);
    const doc = req.method === "GET" ? discovery(path, this.served) : undefined;
    if (doc) return json(200, doc);
    const attrs = requestAttributes(req.method, path, url.searchParams);
    // Authorization comes before the resource is looked up (a hidden kind, a missing object:
    // 403 all the same), as in kube-apiserver's filter chain.
    if (attrs && !this.authz.allows(user, attrs)) {
      return this.answer(req, url, body, { code: 403, body: status(403, "Forbidden", forbiddenMessage(user, attrs), { ...(attrs.name ? { name: attrs.name } : {}), ...(attrs.group ? { group: attrs.group } : {}), kind: attrs.resource.split("/")[0] }) }, user);
    }
    const r = route(path, this.served);
    const verb = r && verbOf(req.method, !!r.name, url.searchParams);
    if (!r || !verb) return this.answer(req, url, body, { code: r ? 405 : 404, body: r ? status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource") : unknownPath() }, user);
    if (refused) return this.answer(req, url, body, refused, user);
    return this.serve(req, url, r, verb, body, user);
  }

  private answer(req: Request, url: URL, body: unknown, result: Result, user?: User): Response {
    this.o.done?.(req, url, body, result, user);
    return json(result.code, result.body);
  }

  private serve(req: Request, url: URL, r: Route, verb: string, body: unknown, user: User): Response {
    const q = url.searchParams;
    const dryRun = q.getAll("dryRun").includes("All");
    const asTable = wantsTable(req.headers.get("accept"));
    let match: (o: Obj) => boolean;
    try {
      const labels = labelSelector(q.get("labelSelector"));
      const fields = fieldSelector(q.get("fieldSelector"));
      match = (o) => (r.namespace === undefined || o.metadata?.namespace === r.namespace) && labels(o) && fields(o);
    } catch (e) {
      if (!(e instanceof SelectorError)) throw e;
      return this.answer(req, url, body, { code: 400, body: badRequest(e.message) }, user);
    }
    if (verb === "watch") {
      this.o.done?.(req, url, body, { code: 200, body: {} }, user);
      const from = q.get("resourceVersion");
      return this.watches.response({
        kind: r.kind, match, from: from && from !== "0" ? Number(from) : undefined,
        bookmarks: truthy(q.get("allowWatchBookmarks")), bookmarkIntervalMs: this.o.bookmarkIntervalMs ?? 10_000,
        timeoutSeconds: Number(q.get("timeoutSeconds") ?? 0),
        render: (o, first) => (asTable ? table(r.kind, [o], o.metadata?.resourceVersion ?? "", first) : o),
      });
    }
    let result: Result;
    switch (verb) {
      case "list": result = this.list(r.kind, match, q, asTable); break;
      case "get": {
        result = this.resources.get(r);
        if (asTable && result.code === 200) result = { code: 200, body: table(r.kind, [result.body], result.body.metadata?.resourceVersion ?? "") };
        break;
      }
      case "create": result = this.resources.create(r, body, dryRun); break;
      case "update": result = this.resources.update(r, body, dryRun); break;
      case "patch": result = this.resources.patch(r, req.headers.get("content-type") ?? "", body, dryRun); break;
      case "delete": result = this.resources.delete(r, body, dryRun); break;
      default: result = { code: 405, body: status(405, "MethodNotAllowed", `${verb} is not served by the lab API server`) };
    }
    return this.answer(req, url, body, result, user);
  }

  private list(k: Kind, match: (o: Obj) => boolean, q: URLSearchParams, asTable: boolean): Result {
    const limit = Number(q.get("limit") ?? 0);
    const cont = q.get("continue");
    let items: Obj[];
    let rv: string;
    let offset = 0;
    let id: string;
    if (cont) {
      let t: { id: string; offset: number; rv: string };
      try {
        t = JSON.parse(Buffer.from(cont, "base64").toString());
      } catch {
        return { code: 400, body: badRequest("invalid continue token") };
      }
      const snap = this.snapshots.get(t.id);
      if (!snap) return { code: 410, body: status(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.") };
      [items, offset, rv, id] = [snap, t.offset, t.rv, t.id];
    } else {
      items = this.store.list(k.plural).filter(match);
      rv = String(this.store.resourceVersion);
      id = crypto.randomUUID();
    }
    const page = limit > 0 ? items.slice(offset, offset + limit) : items.slice(offset);
    const end = offset + page.length;
    const meta: Record<string, unknown> = { resourceVersion: rv };
    if (end < items.length) {
      this.snapshots.set(id, items);
      // A client that stops paging leaves its snapshot: the oldest go (their continue: 410).
      for (const old of this.snapshots.keys()) if (this.snapshots.size > 64) this.snapshots.delete(old);
      meta.continue = Buffer.from(JSON.stringify({ id, offset: end, rv })).toString("base64");
      meta.remainingItemCount = items.length - end;
    } else this.snapshots.delete(id);
    if (asTable) {
      const t = table(k, page, rv);
      t.metadata = meta;
      return { code: 200, body: t };
    }
    return { code: 200, body: { kind: `${k.kind}List`, apiVersion: k.group ? `${k.group}/${k.version}` : k.version, metadata: meta, items: page } };
  }
}
