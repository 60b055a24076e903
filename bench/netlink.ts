// Benchmark: the CNI ADD+DEL kernel work for one pod — a veth pair with the peer in the pod
// namespace, addresses, routes, links up, then deletion — through src/kernel (rtnetlink over
// bun:ffi) vs. the equivalent `ip` commands. Run as root: `bun bench/netlink.ts [N]`.
// Everything happens in two throwaway namespaces ("node" and "pod"), removed at the end.
import "./help.ts";
import { spawnSync } from "bun";
import { Netlink, openNetnsFd } from "../src/kernel/index.ts";
import { closeFd } from "../src/sys/libc.ts";

const N = Number(process.argv[2] ?? 50);
const tag = `mnkb-${process.pid.toString(36)}`;
const NODE = `${tag}-n`;
const POD = `${tag}-p`;
const path = (ns: string) => `/run/netns/${ns}`;

function sh(argv: string[]): void {
  const p = spawnSync(argv, { stdout: "ignore", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`command failed: ${argv.join(" ")}: ${p.stderr.toString()}`);
}

// Each method is split in the CNI ADD part (create + configure) and the DEL part: deleting a
// veth waits for RCU grace periods in the kernel (~15 ms), which would hide the ADD numbers.
interface Method {
  add(): void;
  del(): void;
}

function library(): Method {
  let node: Netlink | undefined;
  return {
    add() {
      node = Netlink.open(path(NODE));
      const pod = Netlink.open(path(POD));
      const podFd = openNetnsFd(path(POD));
      try {
        node.addVeth({ name: "bv0", peerName: "eth0", peerNetnsFd: podFd, mtu: 1450 });
        const eth0 = pod.link("eth0")!.index;
        pod.addAddr(eth0, "10.77.0.2/24");
        pod.setLink(eth0, { up: true });
        pod.addRoute({ dst: "default", gw: "10.77.0.1", oif: eth0, onlink: true });
        const host = node.link("bv0")!.index;
        node.setLink(host, { up: true });
        node.addRoute({ dst: "10.77.0.2/32", oif: host });
      } finally {
        closeFd(podFd);
        pod.close();
        node.close();
      }
    },
    del() {
      node = Netlink.open(path(NODE));
      try {
        node.delLink("bv0");
      } finally {
        node.close();
      }
    },
  };
}

function ipCommands(): Method {
  return {
    add() {
      sh(["ip", "-n", NODE, "link", "add", "bv0", "mtu", "1450", "type", "veth", "peer", "name", "eth0", "netns", POD, "mtu", "1450"]);
      sh(["ip", "-n", POD, "addr", "add", "10.77.0.2/24", "dev", "eth0"]);
      sh(["ip", "-n", POD, "link", "set", "eth0", "up"]);
      sh(["ip", "-n", POD, "route", "add", "default", "via", "10.77.0.1", "dev", "eth0", "onlink"]);
      sh(["ip", "-n", NODE, "link", "set", "bv0", "up"]);
      sh(["ip", "-n", NODE, "route", "add", "10.77.0.2/32", "dev", "bv0"]);
    },
    del() {
      sh(["ip", "-n", NODE, "link", "del", "bv0"]);
    },
  };
}

interface Timings {
  add: number[];
  del: number[];
  total: number[];
}

function measure(m: Method): Timings {
  m.add(); // warm-up (JIT, page cache)
  m.del();
  const t: Timings = { add: [], del: [], total: [] };
  for (let i = 0; i < N; i++) {
    const s = Bun.nanoseconds();
    m.add();
    const mid = Bun.nanoseconds();
    m.del();
    const e = Bun.nanoseconds();
    t.add.push((mid - s) / 1e6);
    t.del.push((e - mid) / 1e6);
    t.total.push((e - s) / 1e6);
  }
  for (const k of ["add", "del", "total"] as const) t[k].sort((a, b) => a - b);
  return t;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Checks that one round of fn leaves the expected state halfway, so we time real work. */
function selfCheck(): void {
  const node = Netlink.open(path(NODE));
  const pod = Netlink.open(path(POD));
  const fd = openNetnsFd(path(POD));
  try {
    node.addVeth({ name: "bv0", peerName: "eth0", peerNetnsFd: fd });
    const eth0 = pod.link("eth0");
    if (!eth0 || eth0.kind !== "veth") throw new Error("self-check: peer not created in the pod namespace");
    node.delLink("bv0");
    if (pod.link("eth0")) throw new Error("self-check: peer not deleted with the host end");
  } finally {
    closeFd(fd);
    pod.close();
    node.close();
  }
}

try {
  sh(["ip", "netns", "add", NODE]);
  sh(["ip", "netns", "add", POD]);
  selfCheck();
  const lib = measure(library());
  const ip = measure(ipCommands());
  console.log(`one pod: veth into the pod ns + address + 2 routes + links up (add), then delete (del)`);
  console.log(`N=${N} iterations, ms per iteration\n`);
  const col = (v: string, w = 10) => v.padStart(w);
  console.log(`${"phase".padEnd(7)}${col("kernel p50", 12)}${col("p90")}${col("ip p50")}${col("p90")}${col("ratio p50", 11)}${col("p90")}`);
  for (const k of ["add", "del", "total"] as const) {
    const [a, b] = [lib[k], ip[k]];
    console.log(
      `${k.padEnd(7)}${col(pct(a, 50).toFixed(3), 12)}${col(pct(a, 90).toFixed(3))}${col(pct(b, 50).toFixed(3))}${col(pct(b, 90).toFixed(3))}` +
        `${col(`${(pct(b, 50) / pct(a, 50)).toFixed(1)}x`, 11)}${col(`${(pct(b, 90) / pct(a, 90)).toFixed(1)}x`)}`,
    );
  }
  console.log(`\nkernel = src/kernel over rtnetlink (sockets opened per phase, as one CNI call would); ip = 7 \`ip\` execs; ratio = ip / kernel`);
} finally {
  spawnSync(["ip", "netns", "del", NODE]);
  spawnSync(["ip", "netns", "del", POD]);
}
