// IPAM for the interface plugin: mncni-ipam runs in-process (no exec on the hot path);
// any other ipam.type is a delegated plugin run over the CNI protocol.
import { delegate } from "../cni/delegate.ts";
import type { CallContext } from "../cni/plugin-spec.ts";
import type { Result } from "../cni/types.ts";
import { ipamAllocate, ipamCheck, ipamDel, ipamFlowsForgotten, ipamGc, ipamStatus, parseIpamConfig, requestedIpsFrom, type IpamConfig } from "../ipam/index.ts";
import { addrOf } from "../net/ip.ts";

export interface IpamClient {
  /** The result, and the addresses given whose previous holder's conntrack flows may remain (every one, for a delegated IPAM). */
  add(): Promise<{ result: Result; flowsMayRemain: readonly string[] }>;
  /** The addresses released, when the IPAM tells (a delegated one does not). */
  del(): Promise<string[] | undefined>;
  /** DEL forgot the flows of these released addresses; undefined: this IPAM keeps no such record. */
  flowsForgotten?(addrs: readonly string[]): void;
  check(expected: string[]): Promise<void>;
  gc(): Promise<void>;
  status(): Promise<void>;
}

const IN_PROCESS_IPAM = "mncni-ipam";

/**
 * IPAM sections parsed, by their JSON text: a resident server sees the same few networks'
 * sections call after call, and parsing one cost ~0.15 ms of each served ADD. The parsed
 * config is a pure function of the section and frozen; a section that fails to parse is
 * never kept (it throws every time).
 */
const parsedIpam = new Map<string, IpamConfig>();
const PARSED_IPAM_KEPT = 16;

function ipamConfigOf(raw: unknown): IpamConfig {
  const text = JSON.stringify(raw);
  if (text === undefined) return parseIpamConfig(raw);
  let conf = parsedIpam.get(text);
  if (!conf) {
    conf = parseIpamConfig(raw);
    if (parsedIpam.size >= PARSED_IPAM_KEPT) parsedIpam.clear();
    parsedIpam.set(text, conf);
  }
  return conf;
}

function inProcess(ctx: CallContext): IpamClient {
  const conf = ipamConfigOf(ctx.conf.ipam);
  const key = { network: ctx.conf.name, containerId: ctx.env.containerId, ifname: ctx.env.ifname };
  return {
    add: async () => ipamAllocate(conf, { ...key, requestedIps: requestedIpsFrom(ctx.conf, ctx.env) }),
    del: async () => ipamDel(conf, key),
    flowsForgotten: (addrs) => ipamFlowsForgotten(conf, ctx.conf.name, addrs),
    check: async (expected) => ipamCheck(conf, key, expected),
    gc: async () => void ipamGc(conf, ctx.conf.name, ctx.conf["cni.dev/valid-attachments"] ?? []),
    status: async () => ipamStatus(conf, ctx.conf.name),
  };
}

function delegated(ctx: CallContext, type: string): IpamClient {
  const run = (command: "ADD" | "DEL" | "CHECK" | "GC" | "STATUS") => delegate({ type, command, env: ctx.env, stdin: ctx.stdin });
  return {
    add: async () => {
      const result = (await run("ADD"))!;
      // What the delegate's addresses were before is unknown: always forget.
      return { result, flowsMayRemain: (result.ips ?? []).map((i) => addrOf(i.address)) };
    },
    del: async () => void (await run("DEL")),
    check: async () => void (await run("CHECK")),
    gc: async () => void (await run("GC")),
    status: async () => void (await run("STATUS")),
  };
}

export function ipamClient(ctx: CallContext): IpamClient {
  const type = ctx.conf.ipam!.type;
  return type === IN_PROCESS_IPAM ? inProcess(ctx) : delegated(ctx, type);
}
