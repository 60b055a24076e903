// Paced young-generation collections for a bulk build. A pass that builds long-lived state for
// thousands of objects (the Service proxy's first pass over 10,000 Services) makes several
// times as much short-lived garbage; Bun's collector lets the young generation grow by tens
// of MB between its own collections, so the survivors end up spread thinly over blocks the
// garbage filled, and those blocks stay with the process (docs/benchmarks.md: ~45 MB of RSS
// at 10,000 Services x 10 endpoints). An eden collection every few hundred objects frees the
// garbage while the blocks are being filled, so the next objects reuse its cells.
import { edenGC } from "bun:jsc";

export class GcPacer {
  private n = 0;

  /** `every`: objects built between collections. */
  constructor(private readonly every: number) {}

  /** One object built; every `every`th, a young-generation collection (a few ms). */
  tick(): void {
    if (++this.n % this.every === 0) edenGC();
  }
}
