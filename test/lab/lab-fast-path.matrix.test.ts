// The eBPF fast path in a lab, routed mode on the Kubernetes source (the suite: lab-fast-path-suite.ts;
// bridge mode on the directory source: lab-fast-path.e2e.test.ts, in make test).
import { setDefaultTimeout } from "bun:test";
import { fastPathSuite } from "./lab-fast-path-suite.ts";

setDefaultTimeout(180_000);
fastPathSuite({ mode: "routed", source: "kubernetes" });
