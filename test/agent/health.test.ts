// /readyz answers and the two log formats, on the agent's own types (no kernel involved).
import { describe, expect, test } from "bun:test";
import { readinessReasons, readinessWarnings, readyzResponse } from "../../src/agent/health-server.ts";
import { defaultLogFormat, fileLogger, jsonLogger, textLogger } from "../../src/base/log.ts";
import { AgentMetrics } from "../../src/agent/metrics.ts";
import { uninstallTargets } from "../../src/agent/uninstall.ts";
import { buildClusterState, policyInputs } from "../../src/cluster/index.ts";

describe("/readyz", () => {
  const req = (q = "", accept?: string) => new Request(`http://x/readyz${q}`, accept ? { headers: { accept } } : {});

  test("before the first pass: not ready, and says so", async () => {
    const r = readyzResponse(req(), new AgentMetrics());
    expect(r.status).toBe(503);
    expect(await r.text()).toBe("not ready:\n- no reconcile pass has finished yet\n");
  });

  test("reasons: step errors, problems, a conflist not written yet; JSON with Accept or ?format=json", async () => {
    const m = new AgentMetrics();
    m.notReady = readinessReasons({ errors: [{ step: "routes", message: "cannot add route: EPERM" }], problems: ['node "n1" has no pod CIDR yet'], conflistWritten: false });
    expect(await readyzResponse(req(), m).text()).toBe('not ready:\n- routes: cannot add route: EPERM\n- node "n1" has no pod CIDR yet\n- conflist not written yet\n');
    for (const r of [readyzResponse(req("", "application/json"), m), readyzResponse(req("?format=json"), m)]) {
      expect(r.status).toBe(503);
      expect(await r.json()).toEqual({ ready: false, reasons: ["routes: cannot add route: EPERM", 'node "n1" has no pod CIDR yet', "conflist not written yet"], warnings: [] });
    }
    m.ready = true;
    m.notReady = readinessReasons({ errors: [], problems: [], conflistWritten: true });
    expect(m.notReady).toEqual([]);
    expect(await readyzResponse(req(), m).text()).toBe("ready\n");
    expect(await readyzResponse(req("?format=json"), m).json()).toEqual({ ready: true, reasons: [], warnings: [] });
  });

  test("JSON carries the fingerprint of what the policies in force were programmed from, once a pass has (lab check waits for it)", async () => {
    const m = new AgentMetrics();
    expect(((await readyzResponse(req("?format=json"), m).json()) as { policy?: unknown }).policy).toBeUndefined();
    const state = buildClusterState([{ kind: "NetworkPolicy", metadata: { name: "d", namespace: "x" }, spec: { podSelector: {} } }]);
    m.policyProgrammedFrom = state;
    expect(((await readyzResponse(req("?format=json"), m).json()) as { policy?: unknown }).policy).toEqual({ inputs: policyInputs(state) });
    // The text answer is unchanged.
    expect(await readyzResponse(req(), m).text()).toBe("not ready:\n- no reconcile pass has finished yet\n");
  });

  test("JSON carries the pod MTU and why once the conflist is written (mncni status and inspect show it)", async () => {
    const m = new AgentMetrics();
    m.ready = true;
    m.notReady = [];
    m.podMTU = 1450;
    m.podMTUWhy = "1450 = 1500 underlay − 50 VXLAN headroom kept by auto (one pod MTU for direct and tunnelled peers)";
    expect(await readyzResponse(req("?format=json"), m).json()).toEqual({ ready: true, reasons: [], warnings: [], podMTU: { mtu: 1450, why: m.podMTUWhy } });
  });

  test("a peer's other pod MTU is a warning: listed, still ready (200)", async () => {
    const m = new AgentMetrics();
    m.ready = true;
    m.notReady = [];
    m.warnings = readinessWarnings({ podMTU: 1450, podMTUMismatch: new Map([["n2", 1400]]) });
    const want = 'node "n2" publishes pod MTU 1400, this node\'s is 1450: packets larger than the smaller one may be dropped between their pods';
    const r = readyzResponse(req(), m);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe(`ready\nwarnings:\n- ${want}\n`);
    expect(await readyzResponse(req("?format=json"), m).json()).toEqual({ ready: true, reasons: [], warnings: [want] });
    // Not ready for another reason: both lists.
    m.ready = false;
    m.notReady = ["conflist not written yet"];
    expect(await readyzResponse(req(), m).text()).toBe(`not ready:\n- conflist not written yet\nwarnings:\n- ${want}\n`);
  });
});

describe("log formats", () => {
  const capture = (make: typeof jsonLogger) => {
    const lines: string[] = [];
    const log = make((l) => lines.push(l), "info", { component: "agent", node: undefined });
    log.debug("hidden");
    log.warn("skipping invalid manifest", { file: "/m/a b.yaml", error: 'bad "x"', n: 3, ok: true });
    return lines;
  };

  test("json: one object per line with time, level, msg and the fields", () => {
    const [line, ...rest] = capture(jsonLogger);
    expect(rest).toEqual([]);
    const o = JSON.parse(line!);
    expect(o).toMatchObject({ level: "warn", msg: "skipping invalid manifest", component: "agent", file: "/m/a b.yaml", error: 'bad "x"', n: 3, ok: true });
    expect(Number.isNaN(Date.parse(o.time))).toBe(false);
  });

  test("text: time, level, message, then key=value (quoted when needed), undefined fields left out", () => {
    const [line] = capture(textLogger);
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN  skipping invalid manifest component=agent file="\/m\/a b.yaml" error="bad \\"x\\"" n=3 ok=true\n$/);
  });

  test("the default: text only for stderr on a terminal", () => {
    expect(defaultLogFormat(undefined, true)).toBe("text");
    expect(defaultLogFormat(undefined, false)).toBe("json");
    expect(defaultLogFormat("/var/log/mncni/agent.log", true)).toBe("json");
    expect(typeof fileLogger(undefined, "info", {}, "text").info).toBe("function");
  });
});

describe("--uninstall targets", () => {
  const cfg = { cniConfDir: "/etc/cni/net.d", cniBinDir: "/opt/cni/bin", bridge: "cbr0", force: false };

  test("without a run record: the given (or default) directories", () => {
    expect(uninstallTargets(cfg, undefined)).toEqual({ confDirs: ["/etc/cni/net.d"], binDirs: ["/opt/cni/bin"], bridges: ["cbr0"], force: false });
  });

  test("with one: the recorded run's directories and bridge too", () => {
    const rec = { version: 1 as const, cniConfDir: "/x/conf", cniBinDir: "/opt/cni/bin", mode: "bridge" as const, bridge: "mnbr0" };
    expect(uninstallTargets({ ...cfg, force: true }, rec)).toEqual({ confDirs: ["/x/conf", "/etc/cni/net.d"], binDirs: ["/opt/cni/bin"], bridges: ["mnbr0", "cbr0"], force: true });
  });
});
