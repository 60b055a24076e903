// How a pod's sandbox is made: its network namespace, wired by the node's CNI chain. The lab's
// pod commands (pods.ts) decide which pod exists and keep its Pod object; a runtime only makes
// and unmakes the sandbox, as a container runtime does for kubelet. The direct runtime
// (runtime-direct.ts) is the lab running the chain itself, like libcni; the containerd runtime
// (runtime-containerd.ts) is one containerd per node driven over CRI, as kubelet does.
// runtimes.ts picks one by kind.
import type { LabState, NodeState, PodState, RuntimeKind } from "./state.ts";

/** The sandbox's network, filled into the pod by `create`. */
export type SandboxFields = Pick<PodState, "ns" | "containerId" | "ips" | "addMs" | "sandboxId">;

/**
 * A failed create whose own rollback failed too: the sandbox (and the address the chain
 * reserved) stays until `teardown` succeeds, which the lab tries again later.
 */
export class SandboxLeftError extends Error {
  constructor(
    cause: Error,
    /** The last error of the rollback's DEL. */
    readonly delError: string,
  ) {
    super(cause.message);
    this.name = "SandboxLeftError";
  }
}

export interface PodRuntime {
  readonly kind: RuntimeKind;
  /** Whatever the node needs to make sandboxes, once its CNI config is in place (a containerd). */
  startNode(s: LabState, node: NodeState): Promise<void>;
  /** Stops what startNode started; the node's sandboxes are gone or abandoned by then. */
  stopNode(s: LabState, node: NodeState): Promise<void>;
  /** Restarts the node's runtime process alone (the sandboxes keep running); its new PID. */
  restartNode(s: LabState, node: NodeState): Promise<number>;
  /**
   * Makes the pod's sandbox and fills in its namespace, container ID, addresses and ADD time.
   * On failure nothing is left (the error as it came), or SandboxLeftError when the rollback failed.
   */
  create(s: LabState, node: NodeState, pod: PodState): Promise<void>;
  /** Takes the sandbox's network down (CNI DEL): the pod's address is released. Throws when the DEL failed. */
  teardown(s: LabState, node: NodeState, pod: PodState): Promise<void>;
  /** Removes the sandbox itself (its namespace), whether or not teardown succeeded. */
  release(s: LabState, node: NodeState, pod: PodState): Promise<void>;
}
