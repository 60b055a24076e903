// Where a CNI call spends its time: named marks on one clock, written to the invocation log
// as milliseconds per phase. The first mark is taken against the process start, so the
// runtime's own start-up shows as the "runtime" phase.
const marks: { name: string; at: number }[] = [];
let origin = 0;

/** Starts a new set of phases from now (a resident server, at each call). */
export function resetPhases(): void {
  marks.length = 0;
  origin = performance.now();
}

/** Ends the current phase under `name` (a phase runs from the previous mark to this one). */
export function phase(name: string): void {
  marks.push({ name, at: performance.now() });
}

/** Milliseconds per phase, in order, rounded to 10 µs; an empty object before any mark. */
export function phaseDurations(): Record<string, number> {
  const out: Record<string, number> = {};
  let prev = origin;
  for (const m of marks) {
    out[m.name] = Math.round((m.at - prev) * 100) / 100 + (out[m.name] ?? 0);
    prev = m.at;
  }
  return out;
}
