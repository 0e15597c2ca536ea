/**
 * Encoding of DeepCABAC-2020 streams (the paper's original stream format) with its
 * rate-distortion quantiser.
 *
 * @module
 */
import { BinEncoder } from "../core/_bin_encoder.ts";
import { ContextStates } from "../core/context_model.ts";
import {
  type ContextLayout,
  contextLayout,
  DC2020_CONTEXTS,
  neighbourClass,
} from "../core/syntax.ts";
import { encodeLevel, levelCost } from "./_level_bins.ts";

/** One tensor to put in a DeepCABAC-2020 stream. */
export interface Dc2020TensorInput {
  /** Shape with 1, 2 or 4 dimensions, each at most 65535. */
  readonly shape: readonly number[];
  /** Weights, row-major. */
  readonly weights: Float32Array;
  /** Step size (signalled as float32). */
  readonly step: number;
  /** Lagrange multiplier of the RD rule; 0 gives nearest-neighbour quantisation. */
  readonly lambda: number;
  /** Distortion scale: one value, or one per weight. */
  readonly interval: number | Float32Array;
}

/** An encoded DeepCABAC-2020 stream. */
export interface Dc2020Encoded {
  /** The stream bytes. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The chosen levels of each tensor. */
  readonly levels: Int32Array<ArrayBuffer>[];
}

const DIM_CODE: Record<number, number> = { 1: 0, 2: 1, 4: 2 };

/**
 * Quantises and codes tensors into one DeepCABAC-2020 stream with the reference encoder's rule
 * (CODING.md 8.4–8.6): each weight, in row-major order, takes the q among q0, q0 − 1, … down to
 * w − 3·interval (q0 the nearest level) minimising `((w − q·Δ) / (interval / 2))² + λ · bits(q)`
 * in binary32, bits being estimated from the live contexts.
 *
 * @param tensors The tensors.
 * @param numGtxFlags Number of greater-than flags (4..19; the reference encoder uses 10).
 * @returns The stream and the levels.
 * @throws {RangeError} If a shape cannot be represented.
 *
 * @example
 * ```ts
 * import { encodeDc2020 } from "./encode_dc2020.ts";
 * import { decodeDc2020 } from "../decoder/decode_dc2020.ts";
 * import assert from "node:assert/strict";
 *
 * const weights = Float32Array.of(0.1, -0.2, 0.0, 0.05);
 * const { bytes, levels } = encodeDc2020([{ shape: [2, 2], weights, step: 0.0625, lambda: 0, interval: 0.0625 }]);
 * assert.deepEqual(decodeDc2020(bytes, 1).tensors[0]!.levels, levels[0]);
 * ```
 */
export function encodeDc2020(
  tensors: readonly Dc2020TensorInput[],
  numGtxFlags = 10,
): Dc2020Encoded {
  if (!Number.isInteger(numGtxFlags) || numGtxFlags < 4 || numGtxFlags > 19) {
    throw new RangeError(
      `DeepCABAC-2020 streams code 4..19 greater-than flags, not ${numGtxFlags}`,
    );
  }
  const layout = contextLayout(numGtxFlags, false, "nnc1");
  const ctx = new ContextStates(DC2020_CONTEXTS);
  const enc = new BinEncoder();
  const all: Int32Array<ArrayBuffer>[] = [];
  for (const t of tensors) {
    const code = DIM_CODE[t.shape.length];
    if (code === undefined || t.shape.some((d) => !Number.isInteger(d) || d < 0 || d > 65535)) {
      throw new RangeError(`DeepCABAC-2020 streams cannot represent shape [${t.shape}]`);
    }
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.weights.length !== n) {
      throw new RangeError(`Expected ${n} weights for shape [${t.shape}]`);
    }
    enc.encodeBypassBits(numGtxFlags - 4, 4);
    enc.encodeBypassBits(code, 2);
    for (const d of t.shape) enc.encodeBypassBits(d, 16);
    const view = new DataView(new ArrayBuffer(4));
    view.setFloat32(0, t.step);
    const stepBits = view.getUint32(0);
    enc.encodeBypassBits(stepBits & 0xffff, 16);
    enc.encodeBypassBits(stepBits >>> 16, 16);
    const step = view.getFloat32(0);
    const lambda = f32(t.lambda);
    const width = t.shape.length === 1 ? 1 : n / t.shape[0]!;
    const levels = new Int32Array(n);
    let previous = 0;
    for (let i = 0; i < n; i++) {
      if (i % width === 0) previous = 0;
      const cls = neighbourClass(previous);
      const interval = typeof t.interval === "number" ? t.interval : t.interval[i]!;
      const q = chooseLevel(t.weights[i]!, f32(interval), step, lambda, ctx, layout, cls);
      levels[i] = q;
      encodeLevel(enc, ctx, layout, layout.sig + cls, cls, q);
      previous = q;
    }
    all.push(levels);
  }
  enc.encodeTerminate(1);
  return { bytes: enc.finish(), levels: all };
}

const f32 = Math.fround;
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * The reference encoder's RD decision for one weight (CODING.md 8.6), in binary32 throughout
 * except the start value q0. Candidates go downwards only; the search stops early once the
 * distortion alone cannot beat the best cost (exact: the distortion only grows below w).
 */
function chooseLevel(
  w: number,
  interval: number,
  step: number,
  lambda: number,
  ctx: ContextStates,
  layout: ContextLayout,
  cls: number,
): number {
  const lower = f32(w - f32(3 * interval));
  let q0 = Math.trunc((Math.abs(w) + step * 0.5) / step);
  if (!(w >= 0)) q0 = -q0;
  const half = f32(interval * 0.5);
  let best = q0;
  let min = FLOAT32_MAX;
  for (let q = q0;; q--) {
    const rec = f32(f32(q) * step);
    if (rec < lower) break;
    const diff = f32(f32(w - rec) / half);
    const distortion = f32(diff * diff);
    if (rec <= w && !(distortion < min)) break;
    const rate = f32(levelCost(ctx, layout, layout.sig + cls, cls, q) * 2 ** -15);
    const cost = f32(distortion + f32(rate * lambda));
    if (cost < min) {
      best = q;
      min = cost;
    }
  }
  return best;
}
