import { type CIDR, type Family, formatCIDR, parseCIDR } from "../net/ip.ts";
import { maskCIDR } from "../net/cidr.ts";
// Node pod-CIDR allocation: a bitmap per family over the cluster CIDR, one bit per node-sized
// subnet. Pure (no I/O, no clock), so the controller and the lab share one implementation.

/** As kube-controller-manager's cidrset: more than 2^16 node subnets per family is refused. */
const MAX_SUBNET_BITS = 16;

export type OccupyResult = "ok" | "outside" | "overlap";

export interface FamilyPool {
  family: Family;
  clusterCIDR: string;
  nodeMaskSize: number;
}

class Pool {
  readonly family: Family;
  readonly cluster: CIDR;
  readonly nodeMaskSize: number;
  readonly size: number;
  private readonly used: Uint8Array;
  private usedCount = 0;
  /** Next-fit: a released subnet is handed out again only after the others (as cidrset does). */
  private cursor = 0;
  private readonly shift: bigint;
  private readonly base: bigint;

  constructor(spec: FamilyPool) {
    this.cluster = maskCIDR(parseCIDR(spec.clusterCIDR, spec.family));
    this.family = spec.family;
    this.nodeMaskSize = spec.nodeMaskSize;
    const bits = spec.family === 4 ? 32 : 128;
    const diff = spec.nodeMaskSize - this.cluster.prefixLen;
    if (!Number.isInteger(spec.nodeMaskSize) || spec.nodeMaskSize > bits || diff < 0) {
      throw new RangeError(`cannot split cluster CIDR "${spec.clusterCIDR}" into /${spec.nodeMaskSize}: node mask must lie between /${this.cluster.prefixLen} and /${bits}`);
    }
    if (diff > MAX_SUBNET_BITS) {
      throw new RangeError(`cannot split cluster CIDR "${spec.clusterCIDR}" into /${spec.nodeMaskSize}: more than 2^${MAX_SUBNET_BITS} node subnets`);
    }
    this.size = 2 ** diff;
    this.used = new Uint8Array(Math.ceil(this.size / 8));
    this.shift = BigInt(bits - spec.nodeMaskSize);
    this.base = toBig(this.cluster.bytes);
  }

  get allocated(): number {
    return this.usedCount;
  }

  private isSet(i: number): boolean {
    return (this.used[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  private set(i: number, on: boolean): void {
    if (this.isSet(i) === on) return;
    this.used[i >> 3]! ^= 1 << (i & 7);
    this.usedCount += on ? 1 : -1;
  }

  /** The bit range [first, last] a CIDR of this family covers, or undefined when it lies outside. */
  private range(c: CIDR): [number, number] | undefined {
    if (c.family !== this.family || c.prefixLen < this.cluster.prefixLen) return undefined;
    const off = toBig(maskCIDR(c).bytes) - this.base;
    if (off < 0n || off >> this.shift >= BigInt(this.size)) return undefined;
    const first = Number(off >> this.shift);
    // A CIDR larger than a node subnet covers several bits; a smaller one sits in one.
    const count = c.prefixLen >= this.nodeMaskSize ? 1 : 2 ** (this.nodeMaskSize - c.prefixLen);
    return [first, first + count - 1];
  }

  occupy(c: CIDR): OccupyResult {
    const r = this.range(c);
    if (!r) return "outside";
    for (let i = r[0]; i <= r[1]; i++) if (this.isSet(i)) return "overlap";
    for (let i = r[0]; i <= r[1]; i++) this.set(i, true);
    return "ok";
  }

  release(c: CIDR): void {
    const r = this.range(c);
    if (r) for (let i = r[0]; i <= r[1]; i++) this.set(i, false);
  }

  allocate(): string | undefined {
    if (this.usedCount >= this.size) return undefined;
    for (let n = 0; n < this.size; n++) {
      const i = (this.cursor + n) % this.size;
      if (this.isSet(i)) continue;
      this.set(i, true);
      this.cursor = (i + 1) % this.size;
      return this.format(i);
    }
    return undefined;
  }

  private format(i: number): string {
    const v = this.base + (BigInt(i) << this.shift);
    return formatCIDR(fromBig(v, this.cluster.bytes.length), this.nodeMaskSize, this.family);
  }
}

function toBig(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function fromBig(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

/**
 * One pool per configured family. CIDRs are text in and out (the form Node objects carry);
 * a CIDR of an unconfigured family counts as outside the cluster CIDR.
 */
export class NodeCIDRAllocator {
  private readonly pools: Pool[];

  constructor(pools: FamilyPool[]) {
    if (pools.length === 0) throw new RangeError("cannot create node CIDR allocator: no cluster CIDR");
    const families = new Set(pools.map((p) => p.family));
    if (families.size !== pools.length) throw new RangeError("cannot create node CIDR allocator: one cluster CIDR per family");
    this.pools = pools.map((p) => new Pool(p));
  }

  get families(): Family[] {
    return this.pools.map((p) => p.family);
  }

  private poolFor(c: CIDR): Pool | undefined {
    return this.pools.find((p) => p.family === c.family);
  }

  /** Marks an existing Node's CIDR as used. Nothing changes unless the result is "ok". */
  occupy(cidr: string): OccupyResult {
    const c = parseCIDR(cidr);
    return this.poolFor(c)?.occupy(c) ?? "outside";
  }

  release(cidr: string): void {
    const c = parseCIDR(cidr);
    this.poolFor(c)?.release(c);
  }

  /** One free CIDR per family in configuration order, or undefined (nothing taken) when any family is exhausted. */
  allocate(): string[] | undefined {
    const got: string[] = [];
    for (const p of this.pools) {
      const c = p.allocate();
      if (c === undefined) {
        for (const g of got) this.release(g);
        return undefined;
      }
      got.push(c);
    }
    return got;
  }

  /** Per family: how many node subnets exist and how many are in use. */
  usage(): { family: Family; clusterCIDR: string; size: number; allocated: number }[] {
    return this.pools.map((p) => ({ family: p.family, clusterCIDR: formatCIDR(p.cluster.bytes, p.cluster.prefixLen, p.family), size: p.size, allocated: p.allocated }));
  }
}
