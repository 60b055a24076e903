// The verbs on stored objects: get, list, create, update, patch, delete, with the rules
// kube-apiserver applies to every write (resourceVersion preconditions, status subresource,
// server-set metadata, validation, finalizers).
import { randomUUID } from "node:crypto";
import { apiVersionOf, kindByPlural, KINDS, type Kind, type Obj } from "./kinds.ts";
import { jsonPatch, mergePatch, PatchError, strategicMergePatch } from "./patch.ts";
import { alreadyExists, badRequest, conflict, invalid, notFound, status } from "./status.ts";
import { keyOf, type Store } from "./store.ts";
import { validate } from "./validate.ts";

export interface Result {
  code: number;
  body: Obj;
}

const ok = (code: number, body: Obj): Result => ({ code, body });
const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export interface Target {
  kind: Kind;
  namespace?: string;
  name?: string;
  sub?: string;
}

/**
 * Mutating admission, as kube-apiserver's allocators (a Service's cluster IPs and node ports):
 * the object as it will be stored, given the others of its kind; throws to refuse (422).
 */
export type Admission = (kind: string, obj: Obj, others: Obj[]) => Obj;

export class Resources {
  constructor(readonly store: Store, private readonly admit?: Admission) {}

  /** The object after admission, or the 422 refusing it. */
  private admitted(k: Kind, o: Obj): Obj | Result {
    if (!this.admit) return o;
    try {
      return this.admit(k.kind, o, this.store.list(k.plural).filter((x) => keyOf(x) !== keyOf(o)));
    } catch (e) {
      return ok(422, invalid(k, o.metadata?.name ?? "", [{ field: "spec", message: (e as Error).message }]));
    }
  }

  private key(t: Target, name = t.name!): string {
    return t.kind.namespaced ? `${t.namespace}/${name}` : name;
  }

  get(t: Target): Result {
    const o = this.store.get(t.kind.plural, this.key(t));
    return o ? ok(200, o) : ok(404, notFound(t.kind, t.name!));
  }

  create(t: Target, body: any, dryRun = false): Result {
    const k = t.kind;
    if (body === null || typeof body !== "object" || Array.isArray(body)) return ok(400, badRequest("the body of the request is not a JSON object"));
    if ((body.kind && body.kind !== k.kind) || (body.apiVersion && body.apiVersion !== apiVersionOf(k))) {
      return ok(400, badRequest(`the API version in the data (${body.apiVersion}) does not match the expected API version (${apiVersionOf(k)})`));
    }
    let o: Obj = structuredClone(body);
    o.apiVersion = apiVersionOf(k);
    o.kind = k.kind;
    o.metadata ??= {};
    if (!o.metadata.name && o.metadata.generateName) o.metadata.name = `${o.metadata.generateName}${Math.random().toString(36).slice(2, 7)}`;
    if (k.namespaced) {
      if (o.metadata.namespace && o.metadata.namespace !== t.namespace) return ok(400, badRequest("the namespace of the provided object does not match the namespace sent on the request"));
      o.metadata.namespace = t.namespace;
      if (!this.store.get("namespaces", t.namespace!)) return ok(404, notFound(kindByPlural("namespaces"), t.namespace!));
    } else delete o.metadata.namespace;
    const causes = validate(k, undefined, o);
    if (causes.length) return ok(422, invalid(k, o.metadata.name ?? "", causes));
    if (this.store.get(k.plural, keyOf(o))) return ok(409, alreadyExists(k, o.metadata.name));
    const a = this.admitted(k, o);
    if ("code" in a && "body" in a) return a as Result;
    o = a as Obj;
    o.metadata ??= {};
    Object.assign(o.metadata, { uid: randomUUID(), creationTimestamp: now(), generation: 1 });
    delete o.metadata.resourceVersion;
    delete o.metadata.deletionTimestamp;
    if (k.kind === "Namespace") {
      o.metadata.labels = { ...o.metadata.labels, "kubernetes.io/metadata.name": o.metadata.name };
      o.status = { phase: "Active" };
    }
    if (k.kind === "Pod") o.status = { phase: "Pending", ...o.status };
    if (dryRun) return ok(201, o);
    return ok(201, this.store.commit(k.plural, "ADDED", o));
  }

  update(t: Target, body: any, dryRun = false): Result {
    const cur = this.store.get(t.kind.plural, this.key(t));
    if (!cur) return ok(404, notFound(t.kind, t.name!));
    if (body?.metadata?.name !== undefined && body.metadata.name !== t.name) return ok(400, badRequest(`the name of the object (${body.metadata.name}) does not match the name on the URL (${t.name})`));
    return this.write(t, cur, structuredClone(body), body?.metadata?.resourceVersion, dryRun);
  }

  patch(t: Target, contentType: string, body: any, dryRun = false): Result {
    const cur = this.store.get(t.kind.plural, this.key(t));
    if (!cur) return ok(404, notFound(t.kind, t.name!));
    let next: Obj;
    try {
      if (contentType.startsWith("application/merge-patch+json")) next = mergePatch(cur, body);
      else if (contentType.startsWith("application/json-patch+json")) next = jsonPatch(cur, body);
      else if (contentType.startsWith("application/strategic-merge-patch+json")) {
        if (t.kind.custom) return ok(415, status(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`));
        next = strategicMergePatch(t.kind.kind, cur, body);
      } else return ok(415, status(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`));
    } catch (e) {
      if (e instanceof PatchError) return ok(422, status(422, "Invalid", `cannot apply the patch: ${e.message}`));
      throw e;
    }
    // A patch carrying a resourceVersion is a precondition on it (kubectl's --resource-version).
    const want = Array.isArray(body) ? undefined : body?.metadata?.resourceVersion;
    return this.write(t, cur, next, want, dryRun);
  }

  private write(t: Target, cur: Obj, next: Obj, wantRv: string | undefined, dryRun: boolean): Result {
    const k = t.kind;
    if (wantRv !== undefined && wantRv !== cur.metadata!.resourceVersion) return ok(409, conflict(k, t.name!));
    if (next === null || typeof next !== "object") return ok(400, badRequest("the object is not a JSON object"));
    // The main resource does not change status, the status subresource changes only status.
    if (t.sub === "status") next = { ...structuredClone(cur), status: next.status };
    else if (k.status) next = { ...next, status: structuredClone(cur.status) };
    if (next.status === undefined) delete next.status;
    next.apiVersion = cur.apiVersion;
    next.kind = cur.kind;
    const m = cur.metadata!;
    next.metadata = {
      ...(t.sub === "status" ? m : next.metadata),
      name: m.name, uid: m.uid, creationTimestamp: m.creationTimestamp, resourceVersion: m.resourceVersion,
      ...(m.namespace ? { namespace: m.namespace } : {}),
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
    };
    if (t.sub !== "status") {
      const a = this.admitted(k, next);
      if ("code" in a && "body" in a) return a as Result;
      next = a as Obj;
    }
    next.metadata ??= {};
    next.metadata.generation = (m.generation ?? 1) + (t.sub !== "status" && !same(next.spec, cur.spec) ? 1 : 0);
    const causes = validate(k, cur, next);
    if (causes.length) return ok(422, invalid(k, t.name!, causes));
    if (same(next, cur) || dryRun) return ok(200, dryRun ? next : cur);
    // The last finalizer of an object being deleted removed: now it goes.
    if (m.deletionTimestamp && !next.metadata.finalizers?.length) return ok(200, this.store.commit(k.plural, "DELETED", next));
    return ok(200, this.store.commit(k.plural, "MODIFIED", next));
  }

  delete(t: Target, body: any, dryRun = false): Result {
    const k = t.kind;
    const cur = this.store.get(k.plural, this.key(t));
    if (!cur) return ok(404, notFound(k, t.name!));
    const pre = body?.preconditions;
    if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata!.resourceVersion) return ok(409, conflict(k, t.name!));
    if (pre?.uid && pre.uid !== cur.metadata!.uid) return ok(409, conflict(k, t.name!));
    if (dryRun) return ok(200, cur);
    if (cur.metadata!.finalizers?.length) {
      if (cur.metadata!.deletionTimestamp) return ok(200, cur);
      return ok(200, this.store.commit(k.plural, "MODIFIED", { ...structuredClone(cur), metadata: { ...structuredClone(cur.metadata), deletionTimestamp: now() } }));
    }
    // A namespace takes its objects with it (kube-controller-manager's namespace controller).
    if (k.kind === "Namespace") {
      for (const plural of this.namespacedPlurals()) {
        for (const o of this.store.list(plural)) if (o.metadata!.namespace === t.name) this.store.commit(plural, "DELETED", structuredClone(o));
      }
    }
    return ok(200, this.store.commit(k.plural, "DELETED", structuredClone(cur)));
  }

  private namespacedPlurals(): string[] {
    return KINDS.filter((x) => x.namespaced).map((x) => x.plural);
  }
}
