// The import rules of src/, checked by `make depcheck` (part of `make test`) with
// dependency-cruiser (tools/depcruise/check.mjs). docs/architecture.md ("Layers") says why.
//
// FLOORS lists src/ from the bottom up: a module imports from its own folder or from a floor
// below it, never from a floor above, and never from another folder of its own floor (the
// folders of one floor are independent of each other).
const FLOORS = [
  ["base", "sys", "net"],
  ["kernel", "kube"],
  ["cni", "firewall"],
  ["ipam", "cluster"],
  ["plugin"],
  ["serve", "plugin-specs.ts"],
  ["agent", "controller"],
  ["obs"],
  ["deploy"],
  // The lab serves the Kubernetes API with what deploy/ installs (RBAC, the CRD).
  ["lab"],
  // The web page's server reads the lab and obs/ (src/ui/page/ is the browser's side).
  ["ui"],
  ["cli"],
  ["main.ts"],
];

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** A folder of src/ (everything under it) or a file at the top of src/. */
const where = (entry) => (entry.endsWith(".ts") ? `^src/${esc(entry)}$` : `^src/${esc(entry)}/`);
const any = (entries) => entries.map(where).join("|");

const upward = FLOORS.slice(0, -1).map((floor, i) => ({
  name: `upward-from-${floor.join("+").replace(/\.ts$/, "")}`,
  comment: `${floor.join(", ")} may import only from floors below it: ${FLOORS.slice(0, i).flat().join(", ") || "(none)"}`,
  severity: "error",
  from: { path: any(floor) },
  to: { path: any(FLOORS.slice(i + 1).flat()) },
}));

const sideways = FLOORS.filter((floor) => floor.length > 1).flatMap((floor) =>
  floor.map((entry) => ({
    name: `sideways-from-${entry.replace(/\.ts$/, "")}`,
    comment: `${entry} must not import from the other folders of its floor (${floor.filter((e) => e !== entry).join(", ")})`,
    severity: "error",
    from: { path: where(entry) },
    to: { path: any(floor.filter((e) => e !== entry)) },
  })),
);

const placed = any(FLOORS.flat());
const unplacedComment = "every module of src/ is on a floor: a new folder (or top-level file) gets its place in FLOORS, so the rules above see it";

module.exports = {
  forbidden: [
    ...upward,
    ...sideways,
    { name: "unplaced", comment: unplacedComment, severity: "error", from: { path: "^src/", pathNot: placed }, to: {} },
    { name: "to-unplaced", comment: unplacedComment, severity: "error", from: { path: "^src/" }, to: { path: "^src/", pathNot: placed } },
    {
      name: "no-circular",
      comment: "no import circle, type-only imports included (a circle through types still ties the modules together)",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "policy-one-way-in",
      comment: "outside src/agent/policy/, its values come through its barrel (index.ts); a type-only import may name the defining file",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/agent/policy/" },
      to: { path: "^src/agent/policy/", pathNot: "^src/agent/policy/index\\.ts$", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "plugin-path-no-node-fs",
      comment:
        "what a plugin process loads for a CNI call uses src/sys/files.ts and src/sys/paths.ts, not node:fs, node:path or node:os: their first use costs each call ~1.5 ms of CPU (docs/benchmarks.md)",
      severity: "error",
      from: { path: "^src/(cni/process|serve/hand-off|cni/run|plugin/handlers|ipam/index)\\.ts$" },
      to: { path: "^(node:)?(fs|path|os)$", reachable: true },
    },
    {
      name: "plugin-path-no-static-bpf",
      comment:
        "eBPF (src/kernel/bpf/) and the fast path's objects (src/plugin/fast-path.ts) are evaluated by a plugin process only when its config turns the fast path on: below the agent, only a dynamic import reaches them (src/plugin/features/fast-path.ts), a type-only import is free",
      severity: "error",
      from: { path: any(FLOORS.slice(0, FLOORS.findIndex((f) => f.includes("serve")) + 1).flat()), pathNot: "^src/(kernel/bpf/|plugin/fast-path\\.ts$)" },
      to: { path: "^src/(kernel/bpf/|plugin/fast-path\\.ts$)", dependencyTypesNot: ["dynamic-import", "type-only"] },
    },
    {
      name: "bpf-one-way-in",
      comment: "outside src/kernel/bpf/, its values come through its entry (index.ts), which src/kernel/index.ts does not re-export",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/kernel/bpf/" },
      to: { path: "^src/kernel/bpf/", pathNot: "^src/kernel/bpf/index\\.ts$", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "not-to-unresolvable",
      comment: "an import that does not resolve is not checked by any rule above",
      severity: "error",
      from: { path: "^src/" },
      to: { couldNotResolve: true, pathNot: "^(bun|bun:.*|node:.*)$" },
    },
  ],
  options: {
    // Type-only imports count: the circles were all through types.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    exclude: { path: "node_modules" },
    // Bun's own modules are not files.
    builtInModules: { add: ["bun", "bun:ffi", "bun:test", "bun:sqlite"] },
  },
};
