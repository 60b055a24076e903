// The overlay's suite (lab-overlay-suite.ts: auto/bridge and vxlan/routed over two
// segments) with the eBPF fast path on: the VXLAN peers take the stack, the pods of one node
// take the fast path. The list and why: fast-path-suites.matrix.test.ts.
import { fastPathLabs } from "./fast-path-labs.ts";

fastPathLabs();
const { overlaySuite } = await import("./lab-overlay-suite.ts");
overlaySuite();
