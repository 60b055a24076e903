// The overlay's lab suite (lab-overlay-suite.ts): two segments, auto/bridge and vxlan/routed.
import { overlaySuite } from "./lab-overlay-suite.ts";

overlaySuite();
