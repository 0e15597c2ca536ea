/**
 * Seeded test fixtures shared by tests, benchmarks and the demo.
 *
 * @module
 */

/**
 * Returns a deterministic pseudo-random generator (mulberry32) yielding numbers in [0, 1).
 *
 * @param seed 32-bit seed.
 * @returns The generator.
 *
 * @example
 * ```ts
 * import { seededRandom } from "./fixtures.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(seededRandom(7)(), seededRandom(7)());
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Returns `n` seeded samples of a Laplace(0, b) distribution as float32.
 *
 * @param n Number of samples.
 * @param b Scale.
 * @param seed Seed.
 * @returns The samples.
 *
 * @example
 * ```ts
 * import { laplaceTensor } from "./fixtures.ts";
 * import assert from "node:assert/strict";
 *
 * const w = laplaceTensor(10000, 0.02, 1);
 * const meanAbs = w.reduce((s, x) => s + Math.abs(x), 0) / w.length;
 * assert.ok(Math.abs(meanAbs - 0.02) < 0.002);
 * ```
 */
export function laplaceTensor(n: number, b: number, seed: number): Float32Array<ArrayBuffer> {
  const rnd = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rnd() - 0.5;
    out[i] = -b * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  }
  return out;
}
