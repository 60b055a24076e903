// Keeps every CPU out of idle while a latency is measured. On this VM an idle vCPU halts, and
// waking it costs ~50 µs (the hypervisor's wake-up, past haltpoll's polling window): a
// request/response p50 then reads ~9 µs or ~60 µs from one run to the next, depending on
// whether the two ends happened to keep their CPUs busy, and that bimodality hides any
// difference of a few per cent between two paths. One spinner per CPU at nice 19 (a CFS weight
// of 15 against 1024: ~1.5 % of a CPU next to a busy task) keeps the CPUs running without
// taking time from what is measured, like a node under some load (or `idle=poll`).
// The spinners are this process's children, ended by PID.
import { cpus } from "node:os";

const spinners: Bun.Subprocess[] = [];

export function startBusyCpus(): void {
  if (spinners.length) return;
  for (let i = 0; i < cpus().length; i++) spinners.push(Bun.spawn(["nice", "-n", "19", "sh", "-c", "while :; do :; done"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" }));
}

export function stopBusyCpus(): void {
  for (const p of spinners.splice(0)) if (p.exitCode === null) p.kill("SIGKILL");
}

/** fn with the CPUs kept busy when `on`; the spinners end with it, also when it throws. */
export function withBusyCpus<T>(on: boolean, fn: () => T): T {
  if (!on) return fn();
  startBusyCpus();
  try {
    return fn();
  } finally {
    stopBusyCpus();
  }
}
