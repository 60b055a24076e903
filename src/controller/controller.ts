// The `mncni controller` process: config -> API client -> (leader election) -> node IPAM,
// with /healthz, /readyz and /metrics. Leadership lost means exit, as kube-controller-manager
// does: a replica that may have missed renewals must not keep writing, and a restart gives it
// a clean state (the allocation map is rebuilt from the Nodes anyway).
import type { Logger } from "../base/log.ts";
import { EventRecorder, Informer, KubeClient, KubeConfigError, KubeMetrics, LeaderElector, loadKubeConfig, RESOURCES, type KubeConfig, type V1Node } from "../kube/index.ts";
import { NodeCIDRAllocator } from "./cidr-allocator.ts";
import type { ControllerConfig } from "./config.ts";
import { EndpointSliceController } from "./endpoint-slices.ts";
import { ControllerMetrics } from "./metrics.ts";
import { NodeIpam } from "./node-ipam.ts";

/** Only what the controller reads of a Node: a 5,000-Node cache stays small. */
function trimNode(n: V1Node): V1Node {
  const m = n.metadata ?? {};
  return {
    metadata: { name: m.name, uid: m.uid, resourceVersion: m.resourceVersion },
    spec: n.spec?.podCIDRs || n.spec?.podCIDR ? { podCIDR: n.spec.podCIDR, podCIDRs: n.spec.podCIDRs } : {},
  };
}

function serveMetrics(addr: string, metrics: ControllerMetrics, ready: () => boolean, log: Logger) {
  const i = addr.lastIndexOf(":");
  const hostname = addr.slice(0, i).replace(/^\[|\]$/g, "") || "0.0.0.0";
  try {
    return Bun.serve({
      hostname,
      port: Number(addr.slice(i + 1)),
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/metrics") return metrics.render().then((text) => new Response(text, { headers: { "Content-Type": metrics.contentType } }));
        if (path === "/healthz") return new Response("ok\n");
        if (path === "/readyz") return ready() ? new Response("ok\n") : new Response("not ready\n", { status: 503 });
        return new Response("not found\n", { status: 404 });
      },
    });
  } catch (e) {
    log.error(`cannot listen on metrics address "${addr}": ${(e as Error).message}`);
    return undefined;
  }
}

export async function runController(cfg: ControllerConfig, log: Logger, signal: AbortSignal): Promise<number> {
  let kube: KubeConfig;
  try {
    kube = loadKubeConfig(cfg.kubeconfig);
  } catch (e) {
    if (!(e instanceof KubeConfigError)) throw e;
    log.error(e.message);
    return 1;
  }
  let allocator: NodeCIDRAllocator;
  try {
    allocator = new NodeCIDRAllocator(cfg.pools);
  } catch (e) {
    log.error((e as Error).message);
    return 2;
  }
  const kubeMetrics = new KubeMetrics("mncni_controller");
  const client = new KubeClient(kube, {
    userAgent: `mncni-controller/${cfg.identity}`,
    onRetry: ({ method, path, attempt, delayMs, error }) => {
      kubeMetrics.retry(method);
      log.debug(`retrying ${method} ${path} in ${Math.round(delayMs)} ms (attempt ${attempt}): ${(error as Error)?.message}`);
    },
  });
  const metrics = new ControllerMetrics(kubeMetrics, () => allocator);
  let ipam: NodeIpam | undefined;
  let slices: EndpointSliceController | undefined;
  let rebuilt = false;
  let standby = cfg.leaderElect;
  const nodes = new Informer<V1Node>(client, RESOURCES.nodes, { transform: trimNode, metrics: kubeMetrics, log });
  // Ready: a standby replica, or the leader once its allocation map is rebuilt.
  const server = cfg.metricsAddr ? serveMetrics(cfg.metricsAddr, metrics, () => standby || rebuilt, log) : undefined;
  log.info("controller starting", { server: kube.server, source: kube.source, clusterCIDRs: cfg.pools.map((p) => `${p.clusterCIDR}->/${p.nodeMaskSize}`), identity: cfg.identity, leaderElect: cfg.leaderElect, endpointSlices: cfg.endpointSlices });

  let elector: LeaderElector | undefined;
  try {
    if (cfg.leaderElect) {
      elector = new LeaderElector(client, {
        namespace: cfg.leaseNamespace,
        name: cfg.leaseName,
        identity: cfg.identity,
        leaseDurationMs: cfg.leaseDurationMs,
        renewDeadlineMs: cfg.renewDeadlineMs,
        retryPeriodMs: cfg.retryPeriodMs,
        log,
      });
      if (!(await elector.acquire(signal))) return 0;
      standby = false;
    }
    metrics.leader = true;
    const events = new EventRecorder(client, "mncni-controller", cfg.identity);
    // Registered before the informer starts, so it sees the initial list's Nodes too.
    ipam = new NodeIpam({ client, nodes, allocator, events, metrics, log, workers: cfg.workers });
    nodes.start();
    await nodes.waitForSync();
    if (signal.aborted) return 0;
    ipam.start();
    if (cfg.endpointSlices) {
      slices = new EndpointSliceController({ client, metrics: kubeMetrics, log, maxEndpointsPerSlice: cfg.maxEndpointsPerSlice });
      await slices.start();
      if (signal.aborted) return 0;
    }
    rebuilt = true;
    if (elector) {
      const end = await elector.hold(signal);
      if (end === "lost") {
        log.error("leadership lost: exiting so that only the new leader writes");
        return 1;
      }
    } else {
      await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
    }
    return 0;
  } finally {
    metrics.leader = false;
    ipam?.stop();
    await slices?.stop();
    await nodes.stop();
    server?.stop(true);
  }
}
