// Label selectors against the Kubernetes semantics (see the links in src/cluster/selector.ts):
// each case is what `kubectl get pods -l ...` / a NetworkPolicy would select, and each invalid
// selector is one the API server rejects.
import { describe, expect, test } from "bun:test";
import { compileSelector, labelsMatch, selectNames, SelectorError } from "../../src/cluster/selector.ts";
import type { LabelSelector } from "../../src/cluster/types.ts";

const web = { app: "web", tier: "frontend" };
const db = { app: "db", tier: "backend", "example.com/pci": "true" };
const bare = {};
const pick = (sel: LabelSelector | null | undefined) =>
  Object.entries({ web, db, bare }).filter(([, l]) => labelsMatch(sel, l)).map(([n]) => n);

describe("label selector semantics", () => {
  test("empty selector matches everything; null and undefined match nothing", () => {
    expect(pick({})).toEqual(["web", "db", "bare"]);
    expect(pick({ matchLabels: {}, matchExpressions: [] })).toEqual(["web", "db", "bare"]);
    expect(pick(null)).toEqual([]);
    expect(pick(undefined)).toEqual([]);
  });

  test("matchLabels: every pair must be present with that value", () => {
    expect(pick({ matchLabels: { app: "web" } })).toEqual(["web"]);
    expect(pick({ matchLabels: { app: "web", tier: "backend" } })).toEqual([]);
    expect(pick({ matchLabels: { "example.com/pci": "true" } })).toEqual(["db"]);
  });

  test("In needs the key with one of the values; NotIn also matches objects without the key", () => {
    expect(pick({ matchExpressions: [{ key: "app", operator: "In", values: ["web", "cache"] }] })).toEqual(["web"]);
    expect(pick({ matchExpressions: [{ key: "app", operator: "NotIn", values: ["web"] }] })).toEqual(["db", "bare"]);
  });

  test("Exists and DoesNotExist look at the key only", () => {
    expect(pick({ matchExpressions: [{ key: "tier", operator: "Exists" }] })).toEqual(["web", "db"]);
    expect(pick({ matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] })).toEqual(["bare"]);
    // An empty value is a value: the key exists.
    expect(labelsMatch({ matchExpressions: [{ key: "k", operator: "Exists" }] }, { k: "" })).toBe(true);
  });

  test("matchLabels and matchExpressions are ANDed", () => {
    const sel: LabelSelector = { matchLabels: { tier: "backend" }, matchExpressions: [{ key: "app", operator: "NotIn", values: ["web"] }] };
    expect(pick(sel)).toEqual(["db"]);
    expect(pick({ matchLabels: { tier: "frontend" }, matchExpressions: [{ key: "app", operator: "In", values: ["db"] }] })).toEqual([]);
  });

  test("labels as a Map work the same; inherited object properties are not labels", () => {
    expect(labelsMatch({ matchLabels: { app: "web" } }, new Map([["app", "web"]]))).toBe(true);
    expect(labelsMatch({ matchExpressions: [{ key: "constructor", operator: "Exists" }] }, {})).toBe(false);
    expect(labelsMatch({ matchExpressions: [{ key: "toString", operator: "DoesNotExist" }] }, new Map())).toBe(true);
  });

  test("selectNames gives a Set, e.g. the namespaces a namespaceSelector covers", () => {
    const namespaces: { name: string; labels: Record<string, string> }[] = [
      { name: "prod", labels: { env: "prod" } },
      { name: "dev", labels: { env: "dev" } },
      { name: "kube-system", labels: { "kubernetes.io/metadata.name": "kube-system" } },
    ];
    const set = selectNames({ matchExpressions: [{ key: "env", operator: "In", values: ["prod", "dev"] }] }, namespaces);
    expect([...set].sort()).toEqual(["dev", "prod"]);
    expect(selectNames({}, namespaces).size).toBe(3);
    expect(selectNames(null, namespaces).size).toBe(0);
  });
});

describe("label selector validation (what the API server rejects)", () => {
  const bad: [string, unknown, string][] = [
    ["unknown operator", { matchExpressions: [{ key: "a", operator: "Equals", values: ["x"] }] }, 'matchExpressions[0].operator "Equals": not a valid selector operator'],
    ["lower-case operator", { matchExpressions: [{ key: "a", operator: "in", values: ["x"] }] }, "matchExpressions[0].operator"],
    ["In without values", { matchExpressions: [{ key: "a", operator: "In", values: [] }] }, "matchExpressions[0].values []: must be specified when operator is In"],
    ["NotIn without values", { matchExpressions: [{ key: "a", operator: "NotIn" }] }, "must be specified when operator is NotIn"],
    ["Exists with values", { matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] }, "may not be specified when operator is Exists"],
    ["DoesNotExist with values", { matchExpressions: [{ key: "a", operator: "DoesNotExist", values: ["x"] }] }, "may not be specified when operator is DoesNotExist"],
    ["empty key", { matchExpressions: [{ key: "", operator: "Exists" }] }, "matchExpressions[0].key"],
    ["key with a space", { matchLabels: { "my app": "x" } }, 'matchLabels key "my app"'],
    ["key name of 64 characters", { matchLabels: { ["a".repeat(64)]: "x" } }, "at most 63 characters"],
    ["upper-case key prefix", { matchLabels: { "Example.com/a": "x" } }, "DNS subdomain"],
    ["empty key prefix", { matchLabels: { "/a": "x" } }, "DNS subdomain"],
    ["two slashes", { matchLabels: { "a.io/b/c": "x" } }, "the name must be"],
    ["value of 64 characters", { matchLabels: { a: "v".repeat(64) } }, 'matchLabels["a"]'],
    ["value ending with a dash", { matchExpressions: [{ key: "a", operator: "In", values: ["ok", "bad-"] }] }, "matchExpressions[0].values[1]"],
    ["value not a string", { matchLabels: { a: 1 } }, 'matchLabels["a"] 1: must be a string'],
  ];
  test.each(bad)("%s", (_, sel, message) => {
    expect(() => compileSelector(sel as LabelSelector)).toThrow(SelectorError);
    expect(() => compileSelector(sel as LabelSelector)).toThrow(message);
  });

  test("valid edge cases are accepted: prefixed keys, 63-character names, empty values", () => {
    const sel: LabelSelector = {
      matchLabels: { "app.kubernetes.io/name": "web", ["a".repeat(63)]: "", "x_y.z-1": "A.b_c-9" },
      matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: ["", "default"] }],
    };
    expect(() => compileSelector(sel)).not.toThrow();
    expect(labelsMatch(sel, { "app.kubernetes.io/name": "web", ["a".repeat(63)]: "", "x_y.z-1": "A.b_c-9", "kubernetes.io/metadata.name": "" })).toBe(true);
  });
});
