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

/**
 * addressPods kept incrementally for a caller that sees one pod map after another (the policy
 * members, on every pass and served ADD): counting the claims on each address, it tells which
 * pods changed (by identity) without rebuilding the map of 5,000 pods each time (~1.4 ms).
 * While no address is shared, a pod's policy view is the pod itself when it owns addresses;
 * when one is shared (before or after a change) the caller recomputes with addressPods.
 */
export class AddressClaims {
  private pods?: ReadonlyMap<string, PodInfo>;
  private readonly claims = new Map<string, number>();
  private shared = 0;

  /**
   * The pods changed since the last call, each with what it is to policy now (undefined: gone
   * or owns no address); undefined when the caller must use addressPods (first call, or an
   * address shared before or after).
   */
  changes(pods: ReadonlyMap<string, PodInfo>): [string, PodInfo | undefined][] | undefined {
    const prev = this.pods;
    this.pods = pods;
    if (!prev) {
      for (const p of pods.values()) this.claim(p, 1);
      return undefined;
    }
    if (prev === pods) return this.shared ? undefined : [];
    const sharedBefore = this.shared;
    const changed: [string, PodInfo | undefined][] = [];
    let known = 0;
    for (const [k, p] of pods) {
      const o = prev.get(k);
      if (o) known++;
      if (o === p) continue;
      if (o) this.claim(o, -1);
      this.claim(p, 1);
      changed.push([k, ownsAddresses(p) ? p : undefined]);
    }
    if (known < prev.size) {
      for (const [k, o] of prev) {
        if (pods.has(k)) continue;
        this.claim(o, -1);
        changed.push([k, undefined]);
      }
    }
    return sharedBefore || this.shared ? undefined : changed;
  }

  private claim(p: PodInfo, by: 1 | -1): void {
    if (!ownsAddresses(p)) return;
    for (const ip of p.podIPs) {
      const n = this.claims.get(ip) ?? 0;
      const m = n + by;
      if (n <= 1 && m > 1) this.shared++;
      else if (n > 1 && m <= 1) this.shared--;
      if (m) this.claims.set(ip, m);
      else this.claims.delete(ip);
    }
  }
}
