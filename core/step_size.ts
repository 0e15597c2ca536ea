/**
 * Quantisation step size from the NNC quantisation parameter.
 *
 * @module
 */

/** Largest supported `qp_density` (it is a 3-bit field). */
export const MAX_QP_DENSITY = 7;

/**
 * Returns the float32 step size for a quantisation parameter `qp` and density `qpDensity`:
 * `(2^d + (qp & (2^d − 1))) · 2^((qp >> d) − d)` with two's-complement `&` and arithmetic `>>`.
 *
 * @param qp Quantisation parameter (signed integer).
 * @param qpDensity Density `d` in 0..7.
 * @returns The step as a number that is exactly representable as float32.
 * @throws {RangeError} If `qpDensity` is outside 0..7 or `qp` is not a safe 32-bit integer, or the
 * step over- or underflows float32.
 *
 * @example Step of qp −32 at density 2
 * ```ts
 * import { stepSize } from "./step_size.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(stepSize(-32, 2), 2 ** -8);
 * assert.equal(stepSize(-35, 2), 1.25 * 2 ** -9);
 * ```
 */
export function stepSize(qp: number, qpDensity: number): number {
  if (!Number.isInteger(qpDensity) || qpDensity < 0 || qpDensity > MAX_QP_DENSITY) {
    throw new RangeError(`Cannot compute step size: qp_density ${qpDensity} is not in 0..7`);
  }
  if (!Number.isInteger(qp) || qp < -(2 ** 31) || qp >= 2 ** 31) {
    throw new RangeError(`Cannot compute step size: qp ${qp} is not a 32-bit integer`);
  }
  const mantissa = (1 << qpDensity) + (qp & ((1 << qpDensity) - 1));
  const exponent = (qp >> qpDensity) - qpDensity;
  const step = Math.fround(mantissa * 2 ** exponent);
  if (step === 0 || !Number.isFinite(step)) {
    throw new RangeError(`Cannot compute step size: qp ${qp} gives a step outside float32`);
  }
  return step;
}

/**
 * Returns the smallest qp whose step at `qpDensity` is at least `step`, so that a requested step
 * can be expressed in the bitstream.
 *
 * @param step Desired positive step.
 * @param qpDensity Density in 0..7.
 * @returns The qp.
 * @throws {RangeError} If `step` is not a positive finite number.
 *
 * @example
 * ```ts
 * import { qpForStep, stepSize } from "./step_size.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(qpForStep(2 ** -8, 2), -32);
 * assert.ok(stepSize(qpForStep(0.003, 2), 2) >= 0.003);
 * ```
 */
export function qpForStep(step: number, qpDensity: number): number {
  if (!(step > 0) || !Number.isFinite(step)) {
    throw new RangeError(`Cannot find qp: step ${step} is not a positive finite number`);
  }
  let qp = Math.floor(Math.log2(step) * (1 << qpDensity)) - 2;
  while (stepSize(qp, qpDensity) < step) qp++;
  while (qp > -(2 ** 31) && stepSize(qp - 1, qpDensity) >= step) qp--;
  return qp;
}
