// What `mncni manifests` is configured with: one validated, frozen object the builders read.
// Pure (no I/O), so the CLI, the tests and deploy/mncni.yaml share one set of defaults.
import { VERSION } from "../base/version.ts";
import { MODE_NAMES, type Mode } from "../plugin/netconf.ts";
import { formatCIDR, parseCIDR } from "../net/ip.ts";
import { maskCIDR } from "../net/cidr.ts";

/** The agent's --routing values (docs/routing.md). */
export type Routing = "auto" | "host-gw" | "vxlan" | "none";

export interface ManifestOptions {
  /** One CIDR per family, normalised, IPv4 first. */
  clusterCidr: readonly string[];
  mode: Mode;
  routing: Routing;
  image: string;
  namespace: string;
  /** Include the node IPAM controller (clusters whose kube-controller-manager does not allocate pod CIDRs). */
  controller: boolean;
  nodeCidrMaskSizeIPv4: number;
  nodeCidrMaskSizeIPv6: number;
  /** The runtime's CNI directories on the nodes (k3s and some distributions move them). */
  cniBinDir: string;
  cniConfDir: string;
  /** The agent proxies Services (`--service-proxy`): only where kube-proxy is removed (docs/services.md). */
  serviceProxy: boolean;
}

/**
 * What `make image` builds (podman names it localhost/...). In no registry: a node has it only
 * when it was loaded there by hand, so it is never a silent default (a node joining later would
 * hit ImagePullBackOff); `mncni manifests` asks for --image and names this one as an example.
 */
export const LOCAL_IMAGE = `localhost/mncni:${VERSION}`;

/** Defaults of every option but the image, which has none (no public registry to default to). */
export const DEFAULT_OPTIONS: Readonly<Omit<ManifestOptions, "image">> = Object.freeze({
  clusterCidr: Object.freeze(["10.244.0.0/16"]),
  mode: "bridge",
  routing: "auto",
  namespace: "kube-system",
  // Off unless asked for: a cluster whose kube-controller-manager allocates pod CIDRs (kubeadm
  // --pod-network-cidr, most managed clusters) must not run a second allocator, and a missing
  // allocator shows at once (no conflist, nodes NotReady) while two conflicting ones do not.
  controller: false,
  nodeCidrMaskSizeIPv4: 24,
  nodeCidrMaskSizeIPv6: 64,
  cniBinDir: "/opt/cni/bin",
  cniConfDir: "/etc/cni/net.d",
  // Off unless asked for: clusters already run kube-proxy, and two proxies would both DNAT.
  serviceProxy: false,
});

export class OptionError extends Error {}

/** Input as the CLI collects it: strings, before validation. */
export interface RawOptions {
  clusterCidr?: string[];
  mode?: string;
  routing?: string;
  image?: string;
  namespace?: string;
  controller?: boolean;
  nodeCidrMaskSizeIPv4?: string | number;
  nodeCidrMaskSizeIPv6?: string | number;
  cniBinDir?: string;
  cniConfDir?: string;
  serviceProxy?: boolean;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// An image reference: [registry[:port]/]path[:tag][@digest], no whitespace; Kubernetes does not
// validate it further, the runtime does when it pulls.
const IMAGE_REF = /^[a-z0-9][a-z0-9._\-/:]*(@sha256:[a-f0-9]{64})?$/i;

function oneOf<T extends string>(flag: string, value: string, options: readonly T[]): T {
  if (!options.includes(value as T)) throw new OptionError(`cannot use ${flag} "${value}": must be one of ${options.join(", ")}`);
  return value as T;
}

function clusterCidrs(list: readonly string[]): string[] {
  if (list.length === 0) throw new OptionError(`cannot use --cluster-cidr "": at least one CIDR is required`);
  const byFamily = new Map<4 | 6, string>();
  for (const text of list) {
    let normalised: string;
    let family: 4 | 6;
    try {
      if (!text.includes("/")) throw new Error("no prefix length");
      const c = maskCIDR(parseCIDR(text));
      normalised = formatCIDR(c.bytes, c.prefixLen, c.family);
      family = c.family;
    } catch (e) {
      throw new OptionError(`cannot use --cluster-cidr "${text}": ${(e as Error).message}`);
    }
    if (byFamily.has(family)) throw new OptionError(`cannot use --cluster-cidr "${text}": one CIDR per family (already have ${byFamily.get(family)})`);
    byFamily.set(family, normalised);
  }
  return [4, 6].flatMap((f) => (byFamily.has(f as 4 | 6) ? [byFamily.get(f as 4 | 6)!] : []));
}

// As kube-controller-manager and `mncni controller`: at most 2^16 node CIDRs per cluster CIDR.
const MAX_MASK_STEP = 16;

function maskSize(flag: string, value: string | number, family: 4 | 6, cidrs: readonly string[], controller: boolean): number {
  const n = Number(value);
  const max = family === 4 ? 32 : 128;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new OptionError(`cannot use ${flag} "${value}": must be an integer between 1 and ${max}`);
  const cidr = cidrs.find((c) => c.includes(":") === (family === 6));
  // Only the controller uses the mask sizes: without it they cannot make the manifests fail.
  if (!cidr || !controller) return n;
  const prefix = Number(cidr.split("/")[1]);
  if (n < prefix) throw new OptionError(`cannot use ${flag} "${value}": shorter than the cluster CIDR ${cidr}`);
  if (n - prefix > MAX_MASK_STEP) throw new OptionError(`cannot use ${flag} "${value}": more than 2^${MAX_MASK_STEP} node CIDRs in ${cidr} (the controller refuses it)`);
  return n;
}

function absoluteDir(flag: string, value: string): string {
  if (!/^\/[^\s]*$/.test(value)) throw new OptionError(`cannot use ${flag} "${value}": not an absolute path`);
  return value.length > 1 ? value.replace(/\/+$/, "") : value;
}

export const IMAGE_REQUIRED =
  `--image is required: the mncni image every node runs, from a registry every node can pull ` +
  `(nodes that join later pull it too). Build it with \`make image\`, push it, and pass its reference, ` +
  `e.g. --image registry.example.com/mncni:${VERSION}; --image ${LOCAL_IMAGE} only where that image ` +
  `was loaded into every node's container runtime by hand (docs/install.md, "The image")`;

/** Flags only the controller reads: an error without it, not silence. */
const CONTROLLER_ONLY: readonly [keyof RawOptions, string][] = [
  ["nodeCidrMaskSizeIPv4", "--node-cidr-mask-size-ipv4"],
  ["nodeCidrMaskSizeIPv6", "--node-cidr-mask-size-ipv6"],
];

/** Defaults applied, every field checked; throws OptionError naming the flag. */
export function resolveOptions(raw: RawOptions): Readonly<ManifestOptions> {
  const clusterCidr = clusterCidrs(raw.clusterCidr?.length ? raw.clusterCidr : DEFAULT_OPTIONS.clusterCidr);
  if (raw.image === undefined) throw new OptionError(IMAGE_REQUIRED);
  const image = raw.image;
  if (!IMAGE_REF.test(image)) throw new OptionError(`cannot use --image "${image}": not an image reference`);
  const namespace = raw.namespace ?? DEFAULT_OPTIONS.namespace;
  if (!DNS1123_LABEL.test(namespace)) throw new OptionError(`cannot use --namespace "${namespace}": not a DNS-1123 label`);
  const controller = raw.controller ?? DEFAULT_OPTIONS.controller;
  if (!controller) {
    for (const [key, flag] of CONTROLLER_ONLY) {
      if (raw[key] !== undefined) throw new OptionError(`cannot use ${flag} without --controller: only the node IPAM controller reads it (where kube-controller-manager allocates pod CIDRs, its --node-cidr-mask-size applies)`);
    }
  }
  return Object.freeze({
    clusterCidr: Object.freeze(clusterCidr),
    mode: oneOf("--mode", raw.mode ?? DEFAULT_OPTIONS.mode, MODE_NAMES),
    routing: oneOf("--routing", raw.routing ?? DEFAULT_OPTIONS.routing, ["auto", "host-gw", "vxlan", "none"] as const),
    image,
    namespace,
    controller,
    nodeCidrMaskSizeIPv4: maskSize("--node-cidr-mask-size-ipv4", raw.nodeCidrMaskSizeIPv4 ?? DEFAULT_OPTIONS.nodeCidrMaskSizeIPv4, 4, clusterCidr, controller),
    nodeCidrMaskSizeIPv6: maskSize("--node-cidr-mask-size-ipv6", raw.nodeCidrMaskSizeIPv6 ?? DEFAULT_OPTIONS.nodeCidrMaskSizeIPv6, 6, clusterCidr, controller),
    cniBinDir: absoluteDir("--cni-bin-dir", raw.cniBinDir ?? DEFAULT_OPTIONS.cniBinDir),
    cniConfDir: absoluteDir("--cni-conf-dir", raw.cniConfDir ?? DEFAULT_OPTIONS.cniConfDir),
    serviceProxy: raw.serviceProxy ?? DEFAULT_OPTIONS.serviceProxy,
  });
}
