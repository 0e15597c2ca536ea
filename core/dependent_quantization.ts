/**
 * The 8-state machine of dependent quantisation (trellis-coded quantisation).
 *
 * @module
 */

/** Number of dependent-quantisation states. */
export const DQ_STATES = 8;

/**
 * State transition table, `DQ_NEXT_STATE[2 * state + (k & 1)]`, where `k & 1` is the parity of
 * the coded level.
 */
export const DQ_NEXT_STATE: Readonly<Int8Array> = Int8Array.from([
  0,
  2,
  7,
  5,
  1,
  3,
  6,
  4,
  2,
  0,
  5,
  7,
  3,
  1,
  4,
  6,
]);

/**
 * Returns the reconstruction index for coded level `k` in dependent-quantisation state `state`.
 *
 * @param k Coded level.
 * @param state DQ state in 0..7.
 * @returns The reconstruction index (recon = index × step).
 *
 * @example
 * ```ts
 * import { dqReconstructionIndex } from "./dependent_quantization.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(dqReconstructionIndex(3, 0), 6);
 * assert.equal(dqReconstructionIndex(3, 1), 5);
 * assert.equal(dqReconstructionIndex(-3, 1), -5);
 * assert.equal(dqReconstructionIndex(0, 5), 0);
 * ```
 */
export function dqReconstructionIndex(k: number, state: number): number {
  if (k === 0) return 0;
  return k > 0 ? 2 * k - (state & 1) : 2 * k + (state & 1);
}

/**
 * Returns the coded level whose reconstruction index in `state` is `index`. The index must be
 * reachable from that state: even in states 0..3 ... precisely, `|index| + (state & 1)` must be
 * even, or the index must be 0.
 *
 * @param index Reconstruction index.
 * @param state DQ state in 0..7.
 * @returns The coded level `k`.
 * @throws {RangeError} If the index cannot be reached from the state.
 *
 * @example
 * ```ts
 * import { dqCodedLevel, dqReconstructionIndex } from "./dependent_quantization.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(dqCodedLevel(5, 1), 3);
 * assert.equal(dqReconstructionIndex(dqCodedLevel(-6, 0), 0), -6);
 * ```
 */
export function dqCodedLevel(index: number, state: number): number {
  if (index === 0) return 0;
  const magnitude = Math.abs(index);
  if (((magnitude + (state & 1)) & 1) !== 0) {
    throw new RangeError(
      `Cannot code reconstruction index ${index}: it is not reachable from DQ state ${state}`,
    );
  }
  const k = (magnitude + (state & 1)) >>> 1; // unsigned: the sum can be 2^31
  return index < 0 ? -k : k;
}
