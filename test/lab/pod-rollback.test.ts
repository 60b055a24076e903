// `lab pod add` whose ADD fails rolls the pod back with DEL (issue 24, item 17): a DEL that
// fails is retried, and one that keeps failing is reported and retried later, never dropped
// with the IPAM reservation leaked. A one-node lab with static wiring (bridge + host-local,
// the Go reference plugins), and a chained plugin written here that fails ADD, and DEL as many
// times as the test says, as a plugin whose server died fails. The reservations are read from
// host-local's data directory (a file per address holding the container ID).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nodePaths } from "../../src/lab/topology.ts";
import { downAll, lab, leftovers, newLabName } from "./lab-cli.ts";

setDefaultTimeout(60_000);

const name = newLabName();
let paths: ReturnType<typeof nodePaths>;
/** Control files of the failing plugin: ADD fails while fail-add exists; DEL fails while del-failures > 0 (counted down). */
const ctl = (f: string) => join(paths.dir, `flaky-${f}`);
const delCalls = () => (existsSync(ctl("del-calls")) ? readFileSync(ctl("del-calls"), "utf8").trim().split("\n").filter(Boolean).length : 0);

/** Container IDs holding an address in host-local's store (files named by address). */
function reservations(): string[] {
  const net = join(paths.ipamDir, "mncni-lab");
  if (!existsSync(net)) return [];
  return readdirSync(net).filter((f) => /^[0-9a-f.:]+$/.test(f)).map((f) => readFileSync(join(net, f), "utf8").split(/\r?\n/)[0]!).sort();
}

const FLAKY = (dir: string) => `#!/bin/sh
# A chained CNI plugin for this test: fails ADD while ${dir}/flaky-fail-add exists, and DEL
# while ${dir}/flaky-del-failures holds a count above 0 (counting it down).
conf=$(cat)
case "$CNI_COMMAND" in
ADD)
  if [ -e ${dir}/flaky-fail-add ]; then echo '{"cniVersion":"1.0.0","code":999,"msg":"flaky: ADD fails"}'; exit 1; fi
  printf '%s' "$conf" | /usr/bin/python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["prevResult"]))' ;;
DEL)
  echo "$CNI_CONTAINERID" >> ${dir}/flaky-del-calls
  n=$(cat ${dir}/flaky-del-failures 2>/dev/null || echo 0)
  if [ "$n" -gt 0 ]; then echo $((n - 1)) > ${dir}/flaky-del-failures; echo '{"cniVersion":"1.0.0","code":11,"msg":"flaky: DEL fails"}'; exit 1; fi ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}' ;;
esac
exit 0
`;

beforeAll(() => {
  lab(name, ["up", "-q", "--nodes", "1", "--pods-per-node", "0", "--mode", "bridge", "--wiring", "static"]);
  paths = nodePaths(name, "node1");
  const plugin = join(paths.binDir, "flaky");
  writeFileSync(plugin, FLAKY(paths.dir));
  chmodSync(plugin, 0o755);
  // The lab wrote the conflist once (static wiring): the flaky plugin is chained after the bridge.
  const file = join(paths.confDir, "10-mncni.conflist");
  const list = JSON.parse(readFileSync(file, "utf8"));
  list.plugins.push({ type: "flaky" });
  writeFileSync(file, JSON.stringify(list));
  writeFileSync(ctl("fail-add"), "");
});

afterAll(() => {
  downAll();
  expect(leftovers(name)).toEqual([]);
});

describe("lab pod add: the rollback DEL of a failed ADD", () => {
  test("a DEL that fails twice is retried, and the address is released", () => {
    writeFileSync(ctl("del-failures"), "2");
    const r = lab(name, ["pod", "add", "node1", "p1"], { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("flaky: ADD fails");
    expect(delCalls()).toBe(3);
    expect(reservations()).toEqual([]);
    expect(lab(name, ["status"]).stdout).not.toContain("p1");
  });

  test("a DEL that keeps failing is reported, and retried later: the address is released once it works", () => {
    writeFileSync(ctl("del-failures"), "1000");
    const r = lab(name, ["pod", "add", "node1", "p2"], { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("flaky: ADD fails");
    // Reported, not swallowed: the DEL's error, and that the address is still held.
    expect(r.stderr).toContain("flaky: DEL fails");
    expect(reservations()).toEqual([`${name}-node1-p2`]);
    expect(lab(name, ["status"]).stdout).toContain("pending DEL: node1/p2");
    // The plugin works again: the next pod added on the node retries the DEL first.
    writeFileSync(ctl("del-failures"), "0");
    rmSync(ctl("fail-add"));
    lab(name, ["pod", "add", "node1", "p3"]);
    expect(reservations()).toEqual([`${name}-node1-p3`]);
    expect(lab(name, ["status"]).stdout).not.toContain("pending DEL");
    lab(name, ["pod", "remove", "node1", "p3"]);
    expect(reservations()).toEqual([]);
  });
});
