// The contexts of a level's bins after its sign, shared by the payload decoder and encoder.
import type { ContextLayout } from "./syntax.ts";

/** Longest remainder prefix of a 32-bit level (CODING.md 5.2: e ≤ 30). */
export const MAX_REMAINDER_PREFIX = 30;

/**
 * After the sign, a level is a run of 1 bins ended by a 0: the greater-than flags GTX[g][sign]
 * (g < N), then the remainder prefix REM[e]. Returns that run's contexts, the positive run first
 * and the negative run after it. A 32-bit level has at most N + 30 ones (CODING.md 5.2).
 */
export function runContexts(layout: ContextLayout): Int32Array<ArrayBuffer> {
  const numGtx = layout.numGtx;
  const length = numGtx + MAX_REMAINDER_PREFIX + 1;
  const run = new Int32Array(2 * length);
  for (let sign = 0; sign < 2; sign++) {
    for (let j = 0; j < length; j++) {
      run[sign * length + j] = j < numGtx ? layout.gtx + 2 * j + sign : layout.rem + j - numGtx;
    }
  }
  return run;
}
