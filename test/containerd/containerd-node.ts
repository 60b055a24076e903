// containerd (Debian's 1.6) as a node's runtime, for tests and benchmarks: the lab's own
// (src/lab/cri/) behind a small class that keeps one containerd of a node namespace, with a
// CRI client (src/lab/cri/client.ts) calling RunPodSandbox / PodSandboxStatus /
// StopPodSandbox / RemovePodSandbox as kubelet does.
import { pidsMentioning } from "../../src/lab/sh.ts";
import { containerdPaths, importImage, startContainerd, stopContainerd, stopContainerdProcess, type RuntimeHandler } from "../../src/lab/cri/containerd.ts";

export { buildPauseImage, PAUSE_IMAGE, type RuntimeHandler } from "../../src/lab/cri/containerd.ts";
export { CriClient, type PodSandboxConfig, type PodSandboxStatus } from "../../src/lab/cri/client.ts";

export class Containerd {
  readonly socket: string;
  readonly log: string;
  /** containerd's --log-level (debug: the CRI plugin logs each sandbox's steps with times). */
  logLevel = "info";
  private pid?: number;

  constructor(
    readonly dir: string,
    readonly node: string,
    readonly cniBinDir: string,
    readonly cniConfDir: string,
    readonly handlers: RuntimeHandler[] = [],
  ) {
    this.socket = containerdPaths(dir).socket;
    this.log = containerdPaths(dir).log;
  }

  async start(): Promise<void> {
    this.pid = await startContainerd({ dir: this.dir, netns: this.node, cniBinDir: this.cniBinDir, cniConfDir: this.cniConfDir, handlers: this.handlers, logLevel: this.logLevel });
  }

  /** Stops the containerd process alone (its shims, and so the sandboxes, keep running) and starts it again. */
  async restart(): Promise<void> {
    await stopContainerdProcess(this.pid, this.dir);
    await this.start();
  }

  importImage(tar: string): void {
    importImage(this.dir, tar);
  }

  /** Stops containerd and every shim and sandbox process it left (by PID), then unmounts what they left under dir. */
  async stop(): Promise<void> {
    const pid = this.pid;
    this.pid = undefined;
    await stopContainerd(pid, this.dir);
  }

  /** PIDs of the shims serving this containerd (their command line names its socket). */
  shims(): number[] {
    return pidsMentioning(this.socket);
  }
}
