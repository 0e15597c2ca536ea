/**
 * Quantisers: nearest-neighbour uniform reconstruction, the rate-distortion assignment of the
 * DeepCABAC paper (eq. 9) with code lengths from the live context states, and the dependent
 * quantisation trellis.
 *
 * @module
 */
import { binCost, ContextStates, updateContext } from "../core/context_model.ts";
import { DQ_NEXT_STATE, dqReconstructionIndex } from "../core/dependent_quantization.ts";
import { scanPlan } from "../core/scan.ts";
import { type LevelBinVisitor, visitLevelBins } from "./_level_bins.ts";
import {
  type ContextLayout,
  contextLayout,
  neighbourClass,
  type PayloadParams,
} from "../core/syntax.ts";

/** `ln 2 / 6`: the reference's conversion of bits into the squared-error units of its RD cost. */
export const LAMBDA_UNIT = Math.LN2 / 6;

/**
 * Nearest-neighbour uniform quantisation: `sign(w) · ⌊(|w| + Δ/2) / Δ⌋`, evaluated in float32.
 *
 * @param weights The weights.
 * @param step The step size Δ.
 * @returns The levels.
 *
 * @example
 * ```ts
 * import { quantizeUniform } from "./quantize.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(quantizeUniform(Float32Array.of(0.26, -0.74, 0.1), 0.25), Int32Array.of(1, -3, 0));
 * ```
 */
export function quantizeUniform(weights: Float32Array, step: number): Int32Array<ArrayBuffer> {
  const out = new Int32Array(weights.length);
  const s = Math.fround(step);
  const half = Math.fround(s / 2);
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]!;
    const q = Math.floor(Math.fround(Math.fround(Math.abs(w) + half) / s));
    if (q > 2 ** 31 - 1) {
      throw new RangeError(`Weight ${w} overflows a 32-bit level at step ${step}`);
    }
    out[i] = w < 0 ? -q : q;
  }
  return out;
}

/** Options of the rate-distortion quantisers. */
export interface RdOptions {
  /** Lagrange multiplier in the reference's convention (`lambda_scale`); 0 gives nearest. */
  readonly lambdaScale: number;
  /** Per-weight importance F_i (DC-v1), same length as the weights; 1 everywhere if absent. */
  readonly importance?: Float32Array;
}

/** Sums the estimated bits of a level's bins without touching the contexts. */
class CostVisitor implements LevelBinVisitor {
  bits = 0;
  constructor(readonly ctx: ContextStates) {}
  bin(c: number, b: number): void {
    this.bits += binCost(this.ctx, c, b);
  }
  bypass(_value: number, bits: number): void {
    this.bits += bits;
  }
}

/** Adapts the contexts as coding a level's bins would. */
class AdaptVisitor implements LevelBinVisitor {
  constructor(readonly ctx: ContextStates) {}
  bin(c: number, b: number): void {
    updateContext(this.ctx, c, b);
  }
  bypass(): void {}
}

/** Bit cost of coding level `k` with the given contexts (estimates only; contexts untouched). */
function levelCost(
  rate: CostVisitor,
  layout: ContextLayout,
  numGtx: number,
  sigCtx: number,
  cls: number,
  k: number,
): number {
  rate.bits = 0;
  visitLevelBins(k, layout, numGtx, sigCtx, cls, rate);
  return rate.bits;
}

/**
 * Rate-distortion uniform quantisation (paper eq. 9): each weight, in scan order, takes the
 * level `k` minimising `F_i (|w|/Δ − k)² + λ · (ln 2 / 6) · L_k`, where `L_k` is the code length
 * of `k` estimated from the live context states, which then adapt as the coder's will.
 *
 * @param weights Weights in tensor layout.
 * @param step Step size Δ.
 * @param params Payload parameters (shape, scan order, number of flags, syntax).
 * @param options λ and optional importance.
 * @returns The levels in tensor layout.
 *
 * @example λ = 0 is nearest-neighbour
 * ```ts
 * import { quantizeUniform, quantizeUrqRd } from "./quantize.ts";
 * import assert from "node:assert/strict";
 *
 * const w = Float32Array.of(0.1, -0.3, 0.02, 0.5);
 * const params = {
 *   shape: [4], payloadType: "float", dqFlag: 0, numGtxFlags: 11, scanOrder: 0,
 *   qpDensity: 2, mpsQp: 0, syntax: "nnc1", profileIdc: 0,
 * } as const;
 * assert.deepEqual(quantizeUrqRd(w, 0.125, params, { lambdaScale: 0 }), quantizeUniform(w, 0.125));
 * ```
 */
export function quantizeUrqRd(
  weights: Float32Array,
  step: number,
  params: PayloadParams,
  options: RdOptions,
): Int32Array<ArrayBuffer> {
  const nearest = quantizeUniform(weights, step);
  if (options.lambdaScale === 0) return nearest;
  const plan = scanPlan(params.shape, params.scanOrder);
  const layout = contextLayout(params.numGtxFlags, false, params.syntax);
  const ctx = new ContextStates(layout.total);
  const rate = new CostVisitor(ctx);
  const adapt = new AdaptVisitor(ctx);
  const lambda = options.lambdaScale * LAMBDA_UNIT;
  const out = new Int32Array(weights.length);
  const starts = plan.blockRowStarts;
  let nextRow = 1;
  let previous = 0;
  for (let p = 0; p < plan.order.length; p++) {
    if (nextRow < starts.length && p === starts[nextRow]) {
      ctx.reset();
      previous = 0;
      nextRow++;
    }
    const i = plan.order[p]!;
    const x = Math.abs(weights[i]!) / step;
    const f = options.importance?.[i] ?? 1;
    const sign = weights[i]! < 0 ? -1 : 1;
    const cls = neighbourClass(previous);
    const sigCtx = layout.sig + cls;
    const hi = Math.abs(nearest[i]!);
    let best = 0;
    let bestCost = f * x * x + lambda * levelCost(rate, layout, params.numGtxFlags, sigCtx, cls, 0);
    for (let m = Math.max(1, hi - 1); m <= hi; m++) {
      const d = x - m;
      const cost = f * d * d +
        lambda * levelCost(rate, layout, params.numGtxFlags, sigCtx, cls, sign * m);
      if (cost < bestCost) {
        bestCost = cost;
        best = sign * m;
      }
    }
    out[i] = best;
    visitLevelBins(best, layout, params.numGtxFlags, sigCtx, cls, adapt);
    previous = best;
  }
  return out;
}

/**
 * Dependent quantisation by a Viterbi search over the 8-state trellis. Each state's survivor
 * keeps its own path; rates come from the context states adapted along the committed prefix
 * (refreshed at every row), with the significance context of each state.
 *
 * @param weights Weights in tensor layout.
 * @param step Step size Δ (the DQ reconstruction grid is index × Δ).
 * @param params Payload parameters (with `dqFlag: 1`).
 * @param options λ (≥ 0) and optional importance.
 * @returns Reconstruction indices in tensor layout.
 *
 * @example The result is always a valid DQ path
 * ```ts
 * import { quantizeDqTrellis } from "./quantize.ts";
 * import { encodePayload } from "./encode_payload.ts";
 * import assert from "node:assert/strict";
 *
 * const w = Float32Array.of(0.1, -0.3, 0.02, 0.5, 0.33, -0.01);
 * const params = {
 *   shape: [2, 3], payloadType: "float", dqFlag: 1, numGtxFlags: 11, scanOrder: 0,
 *   qpDensity: 2, mpsQp: 0, syntax: "nnc1", profileIdc: 0,
 * } as const;
 * const idx = quantizeDqTrellis(w, 0.0625, params, { lambdaScale: 1 });
 * assert.doesNotThrow(() => encodePayload(idx, { ...params, qp: -36 }));
 * ```
 */
export function quantizeDqTrellis(
  weights: Float32Array,
  step: number,
  params: PayloadParams,
  options: RdOptions,
): Int32Array<ArrayBuffer> {
  const plan = scanPlan(params.shape, params.scanOrder);
  const layout = contextLayout(params.numGtxFlags, true, params.syntax);
  const ctx = new ContextStates(layout.total);
  const rate = new CostVisitor(ctx);
  const adapt = new AdaptVisitor(ctx);
  const lambda = options.lambdaScale * 4 * 0.7 * LAMBDA_UNIT;
  const n = plan.order.length;
  const STATES = 8;
  // Survivor bookkeeping: cost, previous coded level, and back-pointers per position.
  let cost = new Float64Array(STATES).fill(Infinity);
  let prevLevel = new Int32Array(STATES);
  let nextCost = new Float64Array(STATES);
  let nextPrev = new Int32Array(STATES);
  const fromState = new Uint8Array(n * STATES);
  const chosenK = new Int32Array(n * STATES);
  cost[0] = 0;
  const starts = plan.blockRowStarts;
  let nextRow = 1;
  const out = new Int32Array(weights.length);
  for (let p = 0; p < n; p++) {
    if (nextRow < starts.length && p === starts[nextRow]) {
      // Block rows reset the contexts and the neighbour, not the state.
      ctx.reset();
      prevLevel.fill(0);
      nextRow++;
    }
    const i = plan.order[p]!;
    const x = weights[i]! / step;
    const f = options.importance?.[i] ?? 1;
    nextCost.fill(Infinity);
    for (let s = 0; s < STATES; s++) {
      const base = cost[s]!;
      if (base === Infinity) continue;
      const cls = neighbourClass(prevLevel[s]!);
      const sigCtx = layout.sig + 3 * s + cls;
      // Candidate coded levels around the nearest reconstruction in this state's quantiser.
      const kNear = Math.round((Math.abs(x) + (s & 1)) / 2);
      const sign = x < 0 ? -1 : 1;
      for (let m = Math.max(0, kNear - 1); m <= kNear + 1; m++) {
        const k = sign * m;
        const q = dqReconstructionIndex(k, s);
        const d = x - q;
        const c = base + f * d * d +
          (lambda > 0 ? lambda * levelCost(rate, layout, params.numGtxFlags, sigCtx, cls, k) : 0);
        const t = DQ_NEXT_STATE[2 * s + (k & 1)]!;
        if (c < nextCost[t]!) {
          nextCost[t] = c;
          nextPrev[t] = k;
          fromState[p * STATES + t] = s;
          chosenK[p * STATES + t] = k;
        }
      }
    }
    [cost, nextCost] = [nextCost, cost];
    [prevLevel, nextPrev] = [nextPrev, prevLevel];
    // Adapt the contexts along the currently best survivor, so rates follow the data.
    let bestS = 0;
    for (let s = 1; s < STATES; s++) if (cost[s]! < cost[bestS]!) bestS = s;
    const kb = chosenK[p * STATES + bestS]!;
    const sPrev = fromState[p * STATES + bestS]!;
    const clsB = neighbourClass(p > 0 ? out[plan.order[p - 1]!]! : 0);
    visitLevelBins(kb, layout, params.numGtxFlags, layout.sig + 3 * sPrev + clsB, clsB, adapt);
    out[i] = kb; // provisional; replaced by the backtrack below
  }
  let s = 0;
  for (let t = 1; t < STATES; t++) if (cost[t]! < cost[s]!) s = t;
  const codedPath = new Int32Array(n);
  for (let p = n - 1; p >= 0; p--) {
    codedPath[p] = chosenK[p * STATES + s]!;
    s = fromState[p * STATES + s]!;
  }
  let state = 0;
  for (let p = 0; p < n; p++) {
    const k = codedPath[p]!;
    out[plan.order[p]!] = dqReconstructionIndex(k, state);
    state = DQ_NEXT_STATE[2 * state + (k & 1)]!;
  }
  return out;
}
