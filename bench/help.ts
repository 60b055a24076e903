// `--help` for a benchmark without its own: imported first (`import "./help.ts";`), so that
// it runs before the benchmark's own top-level code, it prints the benchmark's header comment
// (its usage, what it measures) and exits. Without it, `bun bench/X.ts --help` started a real
// run: minutes of load, labs and namespaces, on a machine that may be busy.
import { readFileSync } from "node:fs";

if (process.argv.slice(2).some((a) => a === "--help" || a === "-h")) {
  const lines = readFileSync(process.argv[1]!, "utf8").split("\n");
  const header = lines.slice(0, lines.findIndex((l) => !l.startsWith("//")));
  console.log(header.map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
  process.exit(0);
}
