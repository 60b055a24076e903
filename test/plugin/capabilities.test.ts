// runtimeConfig capabilities as the plugin reads them: defaults, and bad values refused
// with code 7 naming the field (before anything is created: ADD parses the config first).
import { describe, expect, test } from "bun:test";
import { CniError } from "../../src/cni/errors.ts";
import { parseBandwidth, parsePortMappings } from "../../src/plugin/capabilities.ts";

function refusal(fn: () => unknown): { code: number; msg: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError) return { code: e.code, msg: e.message };
    throw e;
  }
  throw new Error("not refused");
}

describe("portMappings", () => {
  test("protocol defaults to tcp, case-insensitive; an empty hostIP means every address", () => {
    expect(parsePortMappings([{ hostPort: 80, containerPort: 8080 }, { hostPort: 53, containerPort: 53, protocol: "UDP", hostIP: "" }])).toEqual([
      { hostPort: 80, containerPort: 8080, protocol: "tcp" },
      { hostPort: 53, containerPort: 53, protocol: "udp" },
    ]);
    expect(parsePortMappings([{ hostPort: 1, containerPort: 2, protocol: "sctp", hostIP: "::" }])[0]!.hostIP).toBe("::");
    expect(parsePortMappings(undefined)).toEqual([]);
  });

  test("bad values name their field", () => {
    expect(refusal(() => parsePortMappings([{ hostPort: 80, containerPort: 80 }, { hostPort: 0, containerPort: 80 }]))).toEqual({
      code: 7,
      msg: "invalid network config: runtimeConfig.portMappings[1].hostPort: 0 is not a port (1-65535)",
    });
    expect(refusal(() => parsePortMappings([{ hostPort: 80, containerPort: 80, protocol: "icmp" }])).msg).toContain("runtimeConfig.portMappings[0].protocol");
    expect(refusal(() => parsePortMappings([{ hostPort: 80, containerPort: 80, hostIP: "nope" }])).msg).toContain("runtimeConfig.portMappings[0].hostIP");
    expect(refusal(() => parsePortMappings({ hostPort: 80 })).msg).toContain("runtimeConfig.portMappings: must be a list");
  });
});

describe("bandwidth", () => {
  test("zero rates mean no shaping; a rate needs its burst", () => {
    expect(parseBandwidth({ ingressRate: 0, ingressBurst: 0 })).toBeUndefined();
    expect(parseBandwidth({ ingressRate: 1000, ingressBurst: 100 })).toEqual({ ingressRate: 1000, ingressBurst: 100 });
    expect(refusal(() => parseBandwidth({ ingressRate: 1000 })).msg).toContain("runtimeConfig.bandwidth.ingressBurst: missing");
    expect(refusal(() => parseBandwidth({ egressRate: -1, egressBurst: 1 })).msg).toContain("runtimeConfig.bandwidth.egressRate");
    // A bucket of 4 GiB or more wraps in tbf's 32 bits: refused as the reference plugin does (burst/8 >= 2^32-1).
    expect(refusal(() => parseBandwidth({ ingressRate: 1000, ingressBurst: 0xffffffff * 8 })).msg).toContain("runtimeConfig.bandwidth.ingressBurst: 34359738360 bits is 4 GiB or more");
    expect(parseBandwidth({ egressRate: 1000, egressBurst: 0xffffffff * 8 - 1 })).toEqual({ egressRate: 1000, egressBurst: 0xffffffff * 8 - 1 });
  });
});

describe("keys as containerd sends them", () => {
  // containerd's go-cni marshals untagged Go structs ("HostPort", "IngressRate"); Go's
  // encoding/json, and so every reference plugin, matches keys ignoring case.
  test("portMappings and bandwidth with Go's field names", () => {
    expect(parsePortMappings([{ HostPort: 18090, ContainerPort: 8080, Protocol: "tcp", HostIP: "" }])).toEqual([{ hostPort: 18090, containerPort: 8080, protocol: "tcp" }]);
    expect(parseBandwidth({ IngressRate: 10_000_000, IngressBurst: 0xffffffff, EgressRate: 0, EgressBurst: 0 })).toEqual({ ingressRate: 10_000_000, ingressBurst: 0xffffffff });
    // The exact key wins over another casing; a bad value is named by the CNI field name.
    expect(parsePortMappings([{ hostPort: 80, HostPort: 81, containerPort: 80 }])[0]!.hostPort).toBe(80);
    expect(refusal(() => parsePortMappings([{ HostPort: 0, ContainerPort: 80 }])).msg).toContain("runtimeConfig.portMappings[0].hostPort: 0 is not a port");
  });
});
