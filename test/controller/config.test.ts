import { describe, expect, test } from "bun:test";
import { ConfigError, parseControllerArgs, parseDuration } from "../../src/controller/config.ts";

describe("controller flags", () => {
  test("defaults as kube-controller-manager", () => {
    const c = parseControllerArgs(["--cluster-cidr", "10.244.0.0/16,fd00:10:244::/56"], "h");
    if (c === "help") throw new Error("help");
    expect(c.pools).toEqual([
      { family: 4, clusterCIDR: "10.244.0.0/16", nodeMaskSize: 24 },
      { family: 6, clusterCIDR: "fd00:10:244::/56", nodeMaskSize: 64 },
    ]);
    expect([c.leaderElect, c.leaseNamespace, c.leaseName, c.leaseDurationMs, c.renewDeadlineMs, c.retryPeriodMs]).toEqual([false, "kube-system", "mncni-controller", 15000, 10000, 2000]);
    expect(c.identity).toMatch(/^h_/);
    expect(c.metricsAddr).toBe("127.0.0.1:9818");
    expect(c.maxEndpointsPerSlice).toBe(100);
  });

  test("flags with = and durations", () => {
    const c = parseControllerArgs(["--cluster-cidr=10.1.2.3/16", "--node-cidr-mask-size-ipv4=26", "--leader-elect", "--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline=2s", "--leader-elect-retry-period", "500ms", "--metrics-addr", "off"]);
    if (c === "help") throw new Error("help");
    expect(c.pools).toEqual([{ family: 4, clusterCIDR: "10.1.0.0/16", nodeMaskSize: 26 }]);
    expect([c.leaderElect, c.leaseDurationMs, c.renewDeadlineMs, c.retryPeriodMs, c.metricsAddr]).toEqual([true, 3000, 2000, 500, undefined]);
    expect(parseDuration("--x", "1.5s")).toBe(1500);
    expect(parseDuration("--x", "1m")).toBe(60000);
  });

  test("bad input names the flag and the value", () => {
    const bad: [string[], RegExp][] = [
      [[], /--cluster-cidr is required/],
      [["--cluster-cidr", "10.0.0.0"], /cannot parse --cluster-cidr "10.0.0.0"/],
      [["--cluster-cidr", "10.0.0.0/16,10.1.0.0/16"], /more than one IPv4 CIDR/],
      [["--cluster-cidr", "10.0.0.0/16", "--node-cidr-mask-size-ipv4", "8"], /--node-cidr-mask-size-ipv4 "8": shorter than the cluster CIDR/],
      [["--cluster-cidr", "10.0.0.0/8", "--node-cidr-mask-size-ipv4", "26"], /more than 2\^16/],
      [["--cluster-cidr", "10.0.0.0/16", "--leader-elect-retry-period", "soon"], /cannot use --leader-elect-retry-period "soon": expected a duration/],
      [["--cluster-cidr", "10.0.0.0/16", "--leader-elect-renew-deadline", "20s"], /retry period < renew deadline < lease duration/],
      [["--cluster-cidr", "10.0.0.0/16", "--bogus"], /unknown flag "--bogus"/],
      [["--cluster-cidr"], /--cluster-cidr needs a value/],
      [["--cluster-cidr", "10.0.0.0/16", "--workers", "0"], /cannot use --workers "0": must be 1..1000/],
      [["--cluster-cidr", "10.0.0.0/16", "--log-level", "loud"], /cannot use --log-level "loud"/],
      [["--cluster-cidr", "10.0.0.0/16", "--max-endpoints-per-slice", "1001"], /cannot use --max-endpoints-per-slice "1001": must be 1..1000/],
      [["--cluster-cidr", "10.0.0.0/16", "--max-endpoints-per-slice", "0"], /cannot use --max-endpoints-per-slice "0": must be 1..1000/],
    ];
    for (const [argv, re] of bad) expect(() => parseControllerArgs(argv)).toThrow(re);
    expect(() => parseControllerArgs([])).toThrow(ConfigError);
    expect(parseControllerArgs(["--help"])).toBe("help");
    // kube-controller-manager's spelling of the switch.
    const c = parseControllerArgs(["--cluster-cidr", "10.0.0.0/16", "--leader-elect=true"]);
    expect(c !== "help" && c.leaderElect).toBe(true);
  });
});
