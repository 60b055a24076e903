import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAgentArgs, agentHelp } from "../../src/agent/config.ts";
import { AgentMetrics } from "../../src/agent/metrics.ts";

const dir = mkdtempSync(`/tmp/mna-config-${process.pid}-`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const req = ["--node-name", "n1", "--source", "dir:/m"];

describe("parseAgentArgs", () => {
  test("defaults", () => {
    const c = parseAgentArgs(req, {});
    expect(c).toMatchObject({
      nodeName: "n1", source: "dir:/m", cniConfDir: "/etc/cni/net.d", cniBinDir: "/opt/cni/bin", mode: "bridge", routing: "auto", routingSettings: { vxlan: { vni: 1, port: 4789 } },
      clusterCidr: [], nonMasqueradeCidr: [], ipamDataDir: "/var/lib/cni/networks", cniLogFile: "/var/log/mncni/cni.log",
      metricsAddr: "127.0.0.1:9817", cniSocket: "/run/mncni/cni.sock", resync: 10, uninstall: false, once: false,
    });
    // No --mtu: the agent computes it from the underlay.
    expect(c).toHaveProperty("mtu", undefined);
  });

  test("--service-proxy off by default; --nodeport-addresses normalised, a bad CIDR named", () => {
    expect(parseAgentArgs(req, {})).toMatchObject({ serviceProxy: false, nodeportAddresses: [] });
    expect(parseAgentArgs([...req, "--service-proxy", "--nodeport-addresses", "10.0.0.1/8,fd00::1/64"], {})).toMatchObject({ serviceProxy: true, nodeportAddresses: ["10.0.0.0/8", "fd00::/64"] });
    expect(() => parseAgentArgs([...req, "--nodeport-addresses", "x"], {})).toThrow('cannot use nodeportAddresses "x"');
  });

  test("--fast-path on|off: off by default, true/false in a config file, anything else and --uninstall with it refused", () => {
    expect(parseAgentArgs(req, {})).toMatchObject({ fastPath: false });
    expect(parseAgentArgs([...req, "--fast-path", "on"], {})).toMatchObject({ fastPath: true });
    expect(parseAgentArgs([...req, "--fast-path", "off"], {})).toMatchObject({ fastPath: false });
    expect(() => parseAgentArgs([...req, "--fast-path", "yes"], {})).toThrow('cannot use fastPath "yes": must be "on" or "off"');
    expect(() => parseAgentArgs(["--uninstall", "--fast-path", "on"], {})).toThrow("cannot use --fast-path on with --uninstall");
  });

  test("--routing, --vxlan-vni, --vxlan-port: checked, the flag named", () => {
    // The backend's own settings (declared in src/agent/routing/vxlan.ts), not agent fields.
    expect(parseAgentArgs([...req, "--routing", "vxlan", "--vxlan-vni", "42", "--vxlan-port", "8472"], {})).toMatchObject({ routing: "vxlan", routingSettings: { vxlan: { vni: 42, port: 8472 } } });
    expect(parseAgentArgs([...req, "--vxlan-vni", "42"], {})).not.toHaveProperty("vxlanVni");
    expect(() => parseAgentArgs([...req, "--routing", "ipip"], {})).toThrow('cannot use routing "ipip": must be one of auto, host-gw, vxlan, none');
    expect(() => parseAgentArgs([...req, "--vxlan-vni", "16777216"], {})).toThrow("cannot use vxlanVni");
    expect(() => parseAgentArgs([...req, "--vxlan-port", "70000"], {})).toThrow("cannot use vxlanPort");
    expect(() => parseAgentArgs([...req, "--vxlan-vni", "0"], {})).toThrow('cannot use vxlanVni "0": must be an integer between 1 and 16777215');
    expect(() => parseAgentArgs([...req, "--vxlan-port", "x"], {})).toThrow('cannot use vxlanPort "x"');
  });

  test("--cni-socket: a path, or off; relative or too long paths are refused", () => {
    expect(parseAgentArgs([...req, "--cni-socket", "off"], {})).toMatchObject({ cniSocket: "off" });
    expect(parseAgentArgs([...req, "--cni-socket=/run/x/cni.sock"], {})).toMatchObject({ cniSocket: "/run/x/cni.sock" });
    expect(() => parseAgentArgs([...req, "--cni-socket", "cni.sock"], {})).toThrow(/cniSocket "cni.sock": expected an absolute path/);
    expect(() => parseAgentArgs([...req, "--cni-socket", `/${"s".repeat(110)}`], {})).toThrow(/at most 107 bytes/);
  });

  test("lists: comma-separated and repeatable; non-masquerade defaults to the cluster CIDRs", () => {
    const c = parseAgentArgs([...req, "--cluster-cidr", "10.244.0.0/16,fd00::/48"], {}) as any;
    expect(c.clusterCidr).toEqual(["10.244.0.0/16", "fd00::/48"]);
    expect(c.nonMasqueradeCidr).toEqual(["10.244.0.0/16", "fd00::/48"]);
    const d = parseAgentArgs([...req, "--non-masquerade-cidr", "10.0.0.0/8", "--non-masquerade-cidr=192.168.0.0/16"], {}) as any;
    expect(d.nonMasqueradeCidr).toEqual(["10.0.0.0/8", "192.168.0.0/16"]);
  });

  test("config file in camelCase, flags override it; $NODE_NAME", () => {
    const f = join(dir, "c.json");
    writeFileSync(f, JSON.stringify({ source: "dir:/x", mode: "routed", resync: 3, clusterCidr: "10.244.0.0/16" }));
    const c = parseAgentArgs(["--config", f, "--resync", "5"], { NODE_NAME: "env-node" }) as any;
    expect(c).toMatchObject({ nodeName: "env-node", source: "dir:/x", mode: "routed", resync: 5, clusterCidr: ["10.244.0.0/16"] });
    // A backend's settings keep their config keys (vxlanVni, vxlanPort), numbers or strings.
    writeFileSync(f, JSON.stringify({ source: "dir:/x", vxlanVni: 7, vxlanPort: "8472" }));
    expect(parseAgentArgs(["--config", f, "--vxlan-vni", "9"], { NODE_NAME: "n" })).toMatchObject({ routingSettings: { vxlan: { vni: 9, port: 8472 } } });
    writeFileSync(f, JSON.stringify({ bogus: 1 }));
    expect(() => parseAgentArgs(["--config", f], {})).toThrow(/unknown key "bogus"/);
  });

  test("errors and help", () => {
    expect(parseAgentArgs(["--help"], {})).toBe("help");
    expect(agentHelp()).toContain("--non-masquerade-cidr CIDR");
    expect(agentHelp()).toContain("--vxlan-vni N");
    expect(() => parseAgentArgs(["--source", "dir:/m"], {})).toThrow(/--node-name is required/);
    expect(() => parseAgentArgs([...req, "--mode", "vxlan"], {})).toThrow(/must be one of bridge, routed/);
    expect(() => parseAgentArgs([...req, "--cluster-cidr", "10.244.0.0"], {})).toThrow(/no prefix length/);
    expect(() => parseAgentArgs([...req, "--bogus"], {})).toThrow(/unknown flag/);
    expect(() => parseAgentArgs([...req, "--resync", "0"], {})).toThrow(/positive number/);
    expect(parseAgentArgs(["--uninstall"], {})).toMatchObject({ uninstall: true });
  });

  test("--log-format, --cni-version, --force; the run record sits beside the CNI socket unless --state-file says otherwise", () => {
    expect(parseAgentArgs(req, {})).toMatchObject({ logFormat: undefined, cniVersion: undefined, force: false, stateFile: "/run/mncni/agent-run.json" });
    expect(parseAgentArgs([...req, "--cni-socket", "/x/y/cni.sock"], {})).toMatchObject({ stateFile: "/x/y/agent-run.json" });
    expect(parseAgentArgs([...req, "--cni-socket", "off"], {})).toMatchObject({ stateFile: "/run/mncni/agent-run.json" });
    expect(parseAgentArgs(["--uninstall", "--force", "--state-file", "/s.json", "--log-format", "text"], {})).toMatchObject({ force: true, stateFile: "/s.json", logFormat: "text" });
    expect(parseAgentArgs([...req, "--cni-version", "1.0.0"], {})).toMatchObject({ cniVersion: "1.0.0" });
    expect(() => parseAgentArgs([...req, "--log-format", "xml"], {})).toThrow('cannot use logFormat "xml": must be one of text, json');
    expect(() => parseAgentArgs([...req, "--cni-version", "0.2.0"], {})).toThrow('cannot use cniVersion "0.2.0": must be one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0');
  });
});

describe("AgentMetrics", () => {
  test("Prometheus text with gauges, counters and a histogram", async () => {
    const m = new AgentMetrics();
    m.nodesKnown = 3;
    m.observeRun(0.003);
    m.observeRun(0.2);
    m.count(m.runs, "routes");
    m.count(m.errors, "routes");
    expect(await m.render()).toContain("mncni_agent_cni_calls_served_total 0\n");
    m.cniServer = { served: 7 };
    const t = await m.render();
    expect(t).toContain("mncni_agent_cni_calls_served_total 7\n");
    expect(t).toContain("mncni_agent_nodes_known 3\n");
    expect(t).toContain('mncni_agent_reconcile_errors_total{reconciler="routes"} 1\n');
    expect(t).toContain('mncni_agent_reconcile_duration_seconds_bucket{le="0.005"} 1\n');
    expect(t).toContain('mncni_agent_reconcile_duration_seconds_bucket{le="0.25"} 2\n');
    expect(t).toContain("mncni_agent_reconcile_duration_seconds_count 2\n");
    for (const line of t.trim().split("\n")) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [0-9.e+-]+)$/);
  });

  test("docs/agent.md lists every metric the agent exports", async () => {
    const names = [...(await new AgentMetrics().render()).matchAll(/^# TYPE (\w+) /gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(10);
    const doc = readFileSync(resolve(import.meta.dir, "../../docs/agent.md"), "utf8");
    expect(names.filter((n) => !doc.includes(`\`${n}\``))).toEqual([]);
  });
});
