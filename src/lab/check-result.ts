// What one `lab check` probe found: the pod-network checks (check.ts) and the Service checks
// (service-check.ts) report the same record, so the renderer and --json see one shape.
export type ServiceCheckKind = "svc-cluster-ip" | "svc-node-port" | "svc-ext-node-port" | "svc-lb" | "svc-hairpin" | "svc-affinity";
export const SERVICE_CHECK_KINDS: readonly ServiceCheckKind[] = ["svc-cluster-ip", "svc-node-port", "svc-ext-node-port", "svc-lb", "svc-hairpin", "svc-affinity"];

export type CheckKind = "pod-pod" | "node-pod" | "pod-ext" | "pod-mtu" | ServiceCheckKind;

export interface CheckResult {
  kind: CheckKind;
  from: string;
  to: string;
  /** host:port probed; in a dual-stack lab each pair is probed once per family. */
  target: string;
  family: 4 | 6;
  ok: boolean;
  reachable: boolean;
  seen?: string;
  /** Through a Service: the backend that answered. */
  by?: string;
  /** Through a Service, no answer: what the connection met (the kernel's error, a timeout). */
  failure?: string;
  /** The source address the server must see; absent when any address will do. */
  expected?: string;
  /** The policy that denies this pair: the probe must not get through. */
  deniedBy?: string;
  error?: string;
  /** The kernel's errno name when the connect failed with one; ENETUNREACH and the like are not retried. */
  errno?: string;
  /** A first-pass failure not tried again: the kernel refused at once, or no source reached the target, or the source reached nothing. */
  final?: boolean;
  ms: number;
}

/** A Service check's result: a CheckResult of a Service kind. */
export type ServiceCheckResult = CheckResult & { kind: ServiceCheckKind };
