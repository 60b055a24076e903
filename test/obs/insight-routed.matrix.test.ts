// The insight commands against a lab (insight-suite.ts) in routed mode, on the default
// (kubernetes) source: the combination `make test` leaves out. Run by `make test-matrix`.
import { insightSuite } from "./insight-suite.ts";

insightSuite("routed");
