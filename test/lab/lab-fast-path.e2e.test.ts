// The eBPF fast path in a lab, bridge mode on the directory source (the suite: lab-fast-path-suite.ts;
// routed mode on the Kubernetes source: lab-fast-path.matrix.test.ts).
import { setDefaultTimeout } from "bun:test";
import { fastPathSuite } from "./lab-fast-path-suite.ts";

setDefaultTimeout(180_000);
fastPathSuite({ mode: "bridge", source: "dir" });
