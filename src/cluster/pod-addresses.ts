// Which pod an address belongs to, as policy sees it. The API can show one address on two
// pods: a finished pod (phase Succeeded or Failed, e.g. a Job's) keeps status.podIPs after
// the node's IPAM handed the address to the next pod, and a deleted pod can linger (in a
// cache, or laid over the state by the agent). An address has one owner, decided the same
// way everywhere (the policy members, the hold release, the evaluator the lab checks with):
// a finished or host-network pod owns none; of the others, a Running pod before one that is
// not, then the newer (creationTimestamp; unknown counts as oldest), then the pod key.
import type { PodInfo } from "./types.ts";

export const isTerminal = (p: PodInfo) => p.phase === "Succeeded" || p.phase === "Failed";

/** Whether a pod can own addresses for policy: not host-network, not finished, with an address. */
export const ownsAddresses = (p: PodInfo) => !p.hostNetwork && !isTerminal(p) && p.podIPs.length > 0;

/** Negative when pod a (key ka) owns a shared address rather than b. */
function ownerOrder([ka, a]: readonly [string, PodInfo], [kb, b]: readonly [string, PodInfo]): number {
  const running = Number(b.phase === "Running") - Number(a.phase === "Running");
  if (running) return running;
  const ca = a.created ?? "";
  const cb = b.created ?? "";
  if (ca !== cb) return ca > cb ? -1 : 1;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Address -> the key of the pod that owns it. */
export function addressOwners(pods: ReadonlyMap<string, PodInfo>): Map<string, string> {
  const owners = new Map<string, readonly [string, PodInfo]>();
  for (const e of pods) {
    if (!ownsAddresses(e[1])) continue;
    for (const ip of e[1].podIPs) {
      const o = owners.get(ip);
      if (!o || ownerOrder(e, o) < 0) owners.set(ip, e);
    }
  }
  return new Map([...owners].map(([ip, [k]]) => [ip, k]));
}

/**
 * The pods that own addresses, each with only the addresses it owns. A pod that shares none
 * is the same object (callers tell changes by identity); one that lost an address to another
 * pod is a copy without it, and one that lost them all is left out.
 */
export function addressPods(pods: ReadonlyMap<string, PodInfo>): Map<string, PodInfo> {
  const out = new Map<string, PodInfo>();
  const seen = new Set<string>();
  let shared = false;
  for (const [k, p] of pods) {
    if (!ownsAddresses(p)) continue;
    out.set(k, p);
    for (const ip of p.podIPs) {
      if (seen.has(ip)) shared = true;
      else seen.add(ip);
    }
  }
  if (!shared) return out;
  const owners = addressOwners(pods);
  for (const [k, p] of out) {
    if (p.podIPs.every((ip) => owners.get(ip) === k)) continue;
    const podIPs = p.podIPs.filter((ip) => owners.get(ip) === k);
    if (podIPs.length) out.set(k, { ...p, podIPs });
    else out.delete(k);
  }
  return out;
}
