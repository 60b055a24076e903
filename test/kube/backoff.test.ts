import { describe, expect, test } from "bun:test";
import { Backoff, retryAfterMs } from "../../src/kube/index.ts";

describe("backoff", () => {
  test("doubles from the initial delay up to the cap; jitter only adds, within its fraction", () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: () => 0 });
    expect(Array.from({ length: 6 }, () => low.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    const high = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: () => 0.999999 });
    const got = Array.from({ length: 6 }, () => high.next());
    expect(got.slice(0, 3).map(Math.round)).toEqual([150, 300, 600]);
    expect(got.slice(3)).toEqual([1000, 1000, 1000]);
  });

  test("jittered delays differ between clients and stay in [d, 1.5 d)", () => {
    const ds = Array.from({ length: 50 }, () => new Backoff({ initialMs: 1000, jitter: 0.5 }).next());
    for (const d of ds) expect(d >= 1000 && d < 1500).toBe(true);
    expect(new Set(ds).size).toBeGreaterThan(1);
  });

  test("reset starts over", () => {
    const b = new Backoff({ initialMs: 10, random: () => 0 });
    b.next();
    b.next();
    expect(b.attempts).toBe(2);
    b.reset();
    expect(b.next()).toBe(10);
  });

  test("Retry-After: seconds or an HTTP date", () => {
    expect(retryAfterMs("3")).toBe(3000);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterMs("Thu, 01 Jan 2026 00:00:05 GMT", now)).toBe(5000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs("soon")).toBeUndefined();
  });
});
