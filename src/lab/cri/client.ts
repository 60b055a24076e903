// kubelet's side of the CRI runtime service (runtime.v1), over a runtime's unix socket, with
// @grpc/grpc-js. The messages are runtime-v1.proto's, embedded as text (so the compiled
// executable needs no file beside it) and parsed with protobufjs.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import protoText from "./runtime-v1.proto" with { type: "text" };

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}

export interface PortMapping {
  protocol?: "TCP" | "UDP" | "SCTP";
  container_port: number;
  host_port: number;
  host_ip?: string;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  log_directory?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] };
  port_mappings?: PortMapping[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export type SandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";

export interface PodSandboxStatus {
  id: string;
  metadata?: PodSandboxMetadata;
  state: SandboxState;
  network?: { ip: string; additional_ips: { ip: string }[] };
}

export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata;
  state: SandboxState;
  labels: Record<string, string>;
}

type Method = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void;

let definition: protoLoader.PackageDefinition | undefined;

/** The runtime.v1 service definition, parsed once. */
function runtimeService(): grpc.ServiceClientConstructor {
  const opts = { keepCase: true, enums: String, longs: String, defaults: true };
  definition ??= protoLoader.fromJSON(protobuf.parse(protoText, { keepCase: true }).root.toJSON(), opts);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
  return pkg.runtime.v1.RuntimeService;
}

export class CriClient {
  private readonly client: grpc.Client;

  constructor(readonly socket: string) {
    const Service = runtimeService();
    this.client = new Service(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  private call<Res>(method: string, req: object, timeoutMs = 60_000): Promise<Res> {
    const fn = (this.client as unknown as Record<string, Method>)[method]!;
    return new Promise((ok, fail) => {
      fn.call(this.client, req, new grpc.Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (e, r) => (e ? fail(e) : ok(r as Res)));
    });
  }

  version(timeoutMs?: number): Promise<{ runtime_name: string; runtime_version: string; runtime_api_version: string }> {
    return this.call("Version", { version: "v1" }, timeoutMs);
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ""): Promise<string> {
    const r = await this.call<{ pod_sandbox_id: string }>("RunPodSandbox", { config, runtime_handler: runtimeHandler });
    return r.pod_sandbox_id;
  }

  /** The status, and (verbose) the runtime's info: containerd's names the sandbox's netns path. */
  async podSandboxStatus(id: string): Promise<{ status: PodSandboxStatus; netns?: string }> {
    const r = await this.call<{ status: PodSandboxStatus; info: Record<string, string> }>("PodSandboxStatus", { pod_sandbox_id: id, verbose: true });
    const info = r.info?.info ? (JSON.parse(r.info.info) as { runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } } }) : undefined;
    const netns = info?.runtimeSpec?.linux?.namespaces?.find((n) => n.type === "network")?.path;
    return { status: r.status, netns };
  }

  /** Sandboxes whose labels include every one given (all of them without). */
  async listPodSandbox(labelSelector: Record<string, string> = {}, timeoutMs?: number): Promise<PodSandbox[]> {
    const r = await this.call<{ items: PodSandbox[] }>("ListPodSandbox", { filter: { label_selector: labelSelector } }, timeoutMs);
    return r.items ?? [];
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call("StopPodSandbox", { pod_sandbox_id: id });
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call("RemovePodSandbox", { pod_sandbox_id: id });
  }

  close(): void {
    this.client.close();
  }
}
