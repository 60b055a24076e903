// Run by antispoof.test.ts under `ip netns exec NODE`, one process per CNI call as the
// plugin would be: `antispoof.ts MODE attach IFNAME MAC IP...`, `... detach IFNAME`,
// `... check IFNAME`. Exits 0 on success; prints the error message and exits 1 otherwise.
import { antiSpoofFor } from "../../../src/plugin/antispoof.ts";
import { MODES } from "../../../src/plugin/modes.ts";
import type { Mode } from "../../../src/plugin/netconf.ts";

const [mode, op, hostIfname, mac, ...ips] = process.argv.slice(2) as [Mode, string, string, string, ...string[]];
const guard = antiSpoofFor(MODES[mode].antiSpoof);
try {
  if (op === "attach") guard.attach({ hostIfname, mac, ips });
  else if (op === "detach") guard.detach(hostIfname);
  else if (op === "check") guard.check(hostIfname);
  else throw new Error(`unknown operation "${op}"`);
} catch (e) {
  console.log((e as Error).message);
  process.exit(1);
}
