/**
 * Quantisers: nearest-neighbour uniform reconstruction, the rate-distortion assignment of the
 * DeepCABAC paper (eq. 9) and the dependent-quantisation trellis, with rates from the coder's own
 * estimator (`bin_cost_table`, CODING.md 3.7).
 *
 * Both RD searches follow the reference encoder's procedure (CODING.md 9.3–9.4) and can use its
 * rate model exactly (`rateModel: "reference"`, which reproduces the reference's levels), or, by
 * default, a model of the bits that will really be coded (`"coded"`): all N greater-than flags,
 * context and neighbour resets at block rows, the real sign of each level and, in the trellis,
 * each state's own contexts and neighbour.
 *
 * @module
 */
import { BIN_COST } from "../core/_tables.ts";
import { binCost, ContextStates } from "../core/context_model.ts";
import { DQ_NEXT_STATE } from "../core/dependent_quantization.ts";
import { scanPlan } from "../core/scan.ts";
import { stepSize } from "../core/step_size.ts";
import { contextLayout, neighbourClass, type PayloadParams } from "../core/syntax.ts";
import { adaptLevel, type LevelContexts, levelCost, remainderCost } from "./_level_bins.ts";
import { encodePayload } from "./encode_payload.ts";

/** `ln 2 / 6`: the reference's conversion of bits into the squared-error units of its RD cost. */
export const LAMBDA_UNIT = Math.LN2 / 6;

/** The factor of λ in the trellis (CODING.md 9.4): dependent quantisation halves the step. */
export const DQ_LAMBDA_FACTOR = 4 * 0.7;

/** One bit in the units of the estimator's costs. */
const BIT = 2 ** 15;

/** `round` half away from zero. */
function roundHalfAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/**
 * Nearest-neighbour uniform quantisation as the reference does it (CODING.md 9.3, λ = 0):
 * `round(float32(float32(1/Δ) · w))`, half away from zero.
 *
 * @param weights The weights.
 * @param step The step size Δ.
 * @returns The levels.
 * @throws {RangeError} If a level does not fit in 32 bits.
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
  const inverse = Math.fround(1 / Math.fround(step));
  for (let i = 0; i < weights.length; i++) {
    const q = roundHalfAway(Math.fround(inverse * weights[i]!));
    if (!(q >= -(2 ** 31) && q < 2 ** 31)) {
      throw new RangeError(`Weight ${weights[i]} overflows a 32-bit level at step ${step}`);
    }
    out[i] = q;
  }
  return out;
}

/**
 * The qp the reference encoder uses (CODING.md 9.1): the requested one, or, when the quantiser
 * would produce a level outside its range, the smallest qp of the step max|w| / (2^31 − 3).
 *
 * @param weights The weights.
 * @param qp The requested qp.
 * @param qpDensity qp_density, 0..7.
 * @param quantiser How the levels are made: DQ and λ.
 * @returns The qp to use.
 * @throws {RangeError} If a weight is not finite.
 *
 * @example A tensor too large for qp −40 gets a coarser step
 * ```ts
 * import { fittingQp } from "./quantize.ts";
 * import assert from "node:assert/strict";
 *
 * const quantiser = { dq: false, lambdaScale: 0 };
 * assert.equal(fittingQp(Float32Array.of(0.5, -1), -40, 2, quantiser), -40);
 * assert.equal(fittingQp(Float32Array.of(1e7), -40, 2, quantiser), -31);
 * ```
 */
export function fittingQp(
  weights: Float32Array,
  qp: number,
  qpDensity: number,
  quantiser: { readonly dq: boolean; readonly lambdaScale: number },
): number {
  let min = 0;
  let max = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]!;
    if (!Number.isFinite(w)) throw new RangeError("Cannot quantise non-finite values");
    if (w < min) min = w;
    if (w > max) max = w;
  }
  const maxAbs = Math.max(max, -min);
  const step = stepSize(qp, qpDensity);
  // RDOQ scales in binary64, the other quantisers in binary32.
  const binary64 = !quantiser.dq && quantiser.lambdaScale > 0;
  const inverse = Math.fround(1 / step);
  const level = (w: number) => roundHalfAway(binary64 ? w * (1 / step) : Math.fround(w * inverse));
  const low = level(min);
  const high = level(max);
  // With DQ the reference allows −2^31 − 2 (NNC1) or −2^31 + 2 (NNC2); the trellis's candidates
  // reach two past the weight, so only the second keeps every index within int32.
  const [lowest, highest] = !quantiser.dq
    ? [-(2 ** 31), 2 ** 31 - 1]
    : [-(2 ** 31) + 2, 2 ** 31 - 3];
  if (low >= lowest && high <= highest) return qp;
  const scale = 2 ** qpDensity;
  const minStep = maxAbs / (2 ** 31 - 3);
  const base = Math.fround(Math.floor(Math.log2(minStep)) * scale);
  const x = (minStep * scale) / 2 ** Math.fround(base / scale) - scale;
  return Math.ceil(Math.fround(base + x));
}

/** Options of the rate-distortion quantisers. */
export interface RdOptions {
  /** Lagrange multiplier in the reference's convention (`lambda_scale`); 0 gives nearest. */
  readonly lambdaScale: number;
  /** Per-weight importance F_i (DC-v1), same length as the weights; 1 everywhere if absent. */
  readonly importance?: Float32Array;
  /**
   * `"coded"` (default): rates of the bits that will be coded. `"reference"`: the reference
   * encoder's rate model (CODING.md 9.2), which reproduces its levels.
   */
  readonly rateModel?: "coded" | "reference";
  /**
   * With the coded rate model: the estimator parameter set of each context, in eco-flag order
   * (as {@linkcode EncodedPayload.estimatorSets} gives them); all default if absent.
   */
  readonly estimatorSets?: Uint8Array;
  /**
   * {@linkcode quantizeTensor} with the coded rate model and λ > 0: how many times at most to
   * quantise, each time with the parameter sets the coder chose for the previous levels, keeping
   * the last levels that lowered the coded RD cost (default 1: the default sets only; a second
   * pass changed the coded RD cost of the zoo and silero tensors by under 0.2 % for twice the
   * time).
   */
  readonly estimatorSetPasses?: number;
}

/** A quantised float tensor. */
export interface QuantizedTensor {
  /** The qp used: the requested one, raised if the levels would overflow. */
  readonly qp: number;
  /** Its step size. */
  readonly step: number;
  /** The levels (reconstruction indices) in tensor layout. */
  readonly levels: Int32Array<ArrayBuffer>;
}

/**
 * Quantises a float tensor as the encoder does: the qp of {@linkcode fittingQp}, then the DQ
 * trellis with `dqFlag`, else RD uniform quantisation (nearest at λ = 0).
 *
 * @param weights Weights in tensor layout.
 * @param qp The requested qp.
 * @param params Payload parameters (shape, scan, flags, DQ, qp density, syntax).
 * @param options λ, importance and rate model.
 * @returns The qp, step and levels.
 *
 * @example
 * ```ts
 * import { quantizeTensor } from "./quantize.ts";
 * import { payloadParams } from "../core/syntax.ts";
 * import assert from "node:assert/strict";
 *
 * const params = payloadParams([2, 2], { dqFlag: 0 });
 * const q = quantizeTensor(Float32Array.of(0.01, -0.02, 0, 0.5), -32, params, { lambdaScale: 0 });
 * assert.deepEqual(q.levels, Int32Array.of(3, -5, 0, 128));
 * ```
 */
export function quantizeTensor(
  weights: Float32Array,
  qp: number,
  params: PayloadParams,
  options: RdOptions,
): QuantizedTensor {
  const dq = params.dqFlag === 1;
  const used = fittingQp(weights, qp, params.qpDensity, {
    dq,
    lambdaScale: options.lambdaScale,
  });
  const step = stepSize(used, params.qpDensity);
  const quantize = (o: RdOptions) =>
    dq ? quantizeDqTrellis(weights, step, params, o) : quantizeUrqRd(weights, step, params, o);
  let levels = quantize(options);
  const passes = options.rateModel === "reference" || !(options.lambdaScale > 0)
    ? 1
    : options.estimatorSetPasses ?? 1;
  if (passes > 1) {
    // The coder signals the sets that suit the levels, and the levels were chosen with rates of
    // other sets: quantise again with the signalled sets while the true RD cost falls.
    const bitWeight = options.lambdaScale * LAMBDA_UNIT * (dq ? DQ_LAMBDA_FACTOR : 1);
    const inverse = 1 / step;
    const rdCost = (lv: Int32Array) => {
      const coded = encodePayload(lv, { ...params, qp: used, estimatorSets: "exact" });
      let distortion = 0;
      for (let i = 0; i < lv.length; i++) {
        distortion += (options.importance?.[i] ?? 1) * (weights[i]! * inverse - lv[i]!) ** 2;
      }
      return { cost: distortion + bitWeight * 8 * coded.bytes.length, sets: coded.estimatorSets };
    };
    let current = rdCost(levels);
    for (let pass = 1; pass < passes; pass++) {
      const again = quantize({ ...options, estimatorSets: current.sets });
      const next = rdCost(again);
      if (!(next.cost < current.cost)) break;
      levels = again;
      current = next;
    }
  }
  return { qp: used, step, levels };
}

/** The contexts the rate model keeps, and how it differs from the real coding. */
interface RateModel {
  /** Where a level's contexts are; `sig` is the first significance context. */
  readonly contexts: LevelContexts & { readonly sig: number };
  /** The reference's model (CODING.md 9.2) rather than the coded bits. */
  readonly reference: boolean;
  /** Fresh contexts in their parameter sets. */
  states(): ContextStates;
}

function rateModel(params: PayloadParams, dq: boolean, options: RdOptions): RateModel {
  const n = params.numGtxFlags;
  if (options.rateModel === "reference") {
    // Laid out for N − 1 flags, but evaluating at least one: with N = 1 the first two remainder
    // contexts are those of the first flag (CODING.md 9.2).
    const layout = contextLayout(n - 1, dq, params.syntax);
    return {
      contexts: { ...layout, numGtx: Math.max(1, n - 1) },
      reference: true,
      states: () => new ContextStates(layout.total),
    };
  }
  const layout = contextLayout(n, dq, params.syntax);
  const sets = options.estimatorSets;
  if (sets !== undefined && sets.length !== layout.total) {
    throw new RangeError(`Expected ${layout.total} estimator sets, got ${sets.length}`);
  }
  const states = () => {
    const st = new ContextStates(layout.total);
    if (sets !== undefined) { for (let c = 0; c < sets.length; c++) st.init(c, sets[c]!); }
    return st;
  };
  return { contexts: layout, reference: false, states };
}

/**
 * Rate-distortion uniform quantisation (paper eq. 9, the reference's RDOQ of CODING.md 9.3):
 * each weight, in scan order, takes among 0 and the two levels below the rounded |w|/Δ the
 * level q minimising `F_i (|w|/Δ − q)² + λ · (ln 2 / 6) · bits(q)`, bits estimated from the live
 * context states, which then adapt as the coder's will.
 *
 * @param weights Weights in tensor layout.
 * @param step Step size Δ.
 * @param params Payload parameters (shape, scan order, number of flags, syntax).
 * @param options λ, optional importance and rate model.
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
  if (!(options.lambdaScale > 0)) return quantizeUniform(weights, step);
  const plan = scanPlan(params.shape, params.scanOrder);
  const model = rateModel(params, false, options);
  const lc = model.contexts;
  const st = model.states();
  const scale = BIT / (options.lambdaScale * LAMBDA_UNIT);
  const inverse = 1 / Math.fround(step);
  const out = new Int32Array(weights.length);
  const starts = plan.blockRowStarts;
  let nextRow = 1;
  let previous = 0;
  for (let p = 0; p < plan.order.length; p++) {
    if (!model.reference && nextRow < starts.length && p === starts[nextRow]) {
      st.reset();
      previous = 0;
      nextRow++;
    }
    const i = plan.order[p]!;
    const w = weights[i]!;
    const x = Math.abs(w) * inverse;
    const top = roundHalfAway(x);
    const d = scale * (options.importance?.[i] ?? 1);
    const sign = w < 0 ? -1 : 1;
    const cls = neighbourClass(previous);
    const sig = lc.sig + cls;
    let best = 0;
    let bestCost = d * (x * x) + levelCost(st, lc, sig, cls, 0);
    for (let q = Math.max(1, top - 1); q <= top; q++) {
      const e = x - q;
      // The reference costs the positive level whatever the sign of w.
      const cost = d * (e * e) + levelCost(st, lc, sig, cls, model.reference ? q : sign * q);
      if (cost < bestCost) {
        bestCost = cost;
        best = q;
      }
    }
    const k = sign * best;
    out[i] = k;
    adaptLevel(st, lc, sig, cls, k);
    previous = k;
  }
  return out;
}

const STATES = 8;
const ZERO_SLOT = 4;
const UNREACHED = 0.5 * Number.MAX_VALUE;

/**
 * Dependent quantisation by the reference's 8-state Viterbi search (CODING.md 9.4): per weight
 * five candidates (zero and the four reconstruction indices from max(1, ⌊|w|/Δ⌋ − 1)), each
 * state's survivor extended by the edges the state machine allows, cost
 * `F_i (|w|/Δ − qidx)² + λ · 4 · 0.7 · (ln 2 / 6) · bits`, rates from a model per state.
 *
 * @param weights Weights in tensor layout.
 * @param step Step size Δ (the DQ reconstruction grid is index × Δ).
 * @param params Payload parameters (with `dqFlag: 1`).
 * @param options λ (≥ 0), optional importance and rate model.
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
  const n = plan.order.length;
  const rated = options.lambdaScale > 0;
  const scale = rated ? BIT / (options.lambdaScale * DQ_LAMBDA_FACTOR * LAMBDA_UNIT) : 1;
  const model = rateModel(params, true, options);
  const lc = model.contexts;
  // A: each state's model after the previous element; B: the one before (CODING.md 9.4).
  let modelsA = Array.from({ length: STATES }, model.states);
  let modelsB = Array.from({ length: STATES }, model.states);
  let neighbourA = new Int32Array(STATES);
  let neighbourB = new Int32Array(STATES);
  // The path costs J of the eight states, now and after the element, in one array.
  const costs = new Float64Array(2 * STATES).fill(UNREACHED);
  costs[0] = 0;
  let now = 0;
  const fromState = new Int32Array(STATES);
  const fromK = new Int32Array(STATES);
  // Per element and state: the predecessor state (high bits) and the candidate slot (low 3).
  const trace = new Uint8Array(n * STATES);
  const dist = new Float64Array(5);
  const slotK = new Int32Array(5);
  const rates = new Float64Array(2);
  const inverse = 1 / Math.fround(step);
  const starts = plan.blockRowStarts;
  let nextRow = 1;
  for (let p = 0; p < n; p++) {
    if (rated && !model.reference && nextRow < starts.length && p === starts[nextRow]) {
      for (const m of modelsA) m.reset();
      neighbourA.fill(0);
      nextRow++;
    }
    const i = plan.order[p]!;
    const w = weights[i]!;
    const negative = w < 0 ? 1 : 0;
    const x = inverse * w * (negative ? -1 : 1);
    const qMin = Math.max(1, Math.trunc(x) - 1);
    const d = scale * (options.importance?.[i] ?? 1);
    dist[ZERO_SLOT] = d * (x * x);
    for (let q = qMin; q < qMin + 4; q++) {
      const e = x - q;
      dist[q & 3] = d * (e * e);
      slotK[q & 3] = (q + 1) >> 1;
    }
    const next = STATES - now;
    for (let t = next; t < next + STATES; t++) costs[t] = Infinity;
    const row = p * STATES;
    for (let s = 0; s < STATES; s++) {
      const base = costs[now + s]!;
      const odd = s & 1;
      // Parity 0: the slot 3·odd, then the zero level; parity 1: the slot 2 − odd.
      const even = 3 * odd;
      const oddSlot = 2 - odd;
      let rateZero = 0;
      if (rated) {
        const m = modelsA[s]!;
        const cls = neighbourClass(neighbourA[s]!);
        const sig = lc.sig + 3 * s + cls;
        rateZero = binCost(m, sig, 0);
        magnitudeCosts(m, lc, sig, cls, negative, slotK[even]!, slotK[oddSlot]!, rates);
      }
      const to0 = next + DQ_NEXT_STATE[2 * s]!;
      const to1 = next + DQ_NEXT_STATE[2 * s + 1]!;
      let c = base + dist[even]! + rates[0]!;
      if (c < costs[to0]!) {
        costs[to0] = c;
        trace[row + to0 - next] = (s << 3) | even;
      }
      c = base + dist[ZERO_SLOT]! + rateZero;
      if (c < costs[to0]!) {
        costs[to0] = c;
        trace[row + to0 - next] = (s << 3) | ZERO_SLOT;
      }
      c = base + dist[oddSlot]! + rates[1]!;
      if (c < costs[to1]!) {
        costs[to1] = c;
        trace[row + to1 - next] = (s << 3) | oddSlot;
      }
    }
    if (rated) {
      for (let t = 0; t < STATES; t++) {
        const step = trace[row + t]!;
        const s = step >> 3;
        const slot = step & 7;
        const k = slot === ZERO_SLOT ? 0 : negative ? -slotK[slot]! : slotK[slot]!;
        fromState[t] = s;
        fromK[t] = k;
      }
      for (let t = 0; t < STATES; t++) {
        const s = fromState[t]!;
        const k = fromK[t]!;
        const m = modelsB[t]!;
        m.copyStatesFrom(modelsA[s]!);
        // The reference adapts the copy with the destination's SIG and its own stale neighbour.
        const nb = model.reference ? neighbourB[t]! : neighbourA[s]!;
        const cls = neighbourClass(nb);
        adaptLevel(m, lc, lc.sig + 3 * (model.reference ? t : s) + cls, cls, k);
        neighbourB[t] = k;
      }
      [modelsA, modelsB] = [modelsB, modelsA];
      [neighbourA, neighbourB] = [neighbourB, neighbourA];
    }
    now = next;
  }
  let s = 0;
  for (let t = 1; t < STATES; t++) if (costs[now + t]! < costs[now + s]!) s = t;
  const out = new Int32Array(weights.length);
  for (let p = n - 1; p >= 0; p--) {
    const step = trace[p * STATES + s]!;
    const slot = step & 7;
    s = step >> 3;
    const i = plan.order[p]!;
    if (slot === ZERO_SLOT) continue;
    const w = weights[i]!;
    const qMin = Math.max(1, Math.trunc(inverse * w * (w < 0 ? -1 : 1)) - 1);
    const q = qMin + ((slot - qMin) & 3);
    out[i] = w < 0 ? -q : q;
  }
  return out;
}

/**
 * The costs of two nonzero magnitudes of one sign at once (they share the significance, sign and
 * greater-than prefix), as {@linkcode levelCost} gives them, into `out[0]` and `out[1]`.
 */
function magnitudeCosts(
  st: ContextStates,
  lc: LevelContexts,
  sig: number,
  cls: number,
  negative: number,
  first: number,
  second: number,
  out: Float64Array,
): void {
  const prefix = binCost(st, sig, 1) + binCost(st, lc.sign + cls, negative);
  const low = first < second ? first : second;
  const high = first < second ? second : first;
  // Greater-than flags: `ones` costs the 1 flags before flag g.
  const flags = lc.numGtx;
  const last = high < flags ? high : flags;
  let ones = prefix;
  let lowCost = 0;
  let highCost = 0;
  for (let g = 0; g < last; g++) {
    const c = lc.gtx + 2 * g + negative;
    const s = st.b[c]! + (st.a[c]! << 4);
    const row = (512 + (s >> 3)) << 1;
    if (g + 1 === low) lowCost = ones + BIN_COST[row]!;
    if (g + 1 === high) highCost = ones + BIN_COST[row]!;
    ones += BIN_COST[row | 1]!;
  }
  // Beyond N: all flags were 1, then the Exp-Golomb remainder.
  if (low > flags) lowCost = ones + remainderCost(st, lc, low - flags);
  if (high > flags) highCost = ones + remainderCost(st, lc, high - flags);
  out[first < second ? 0 : 1] = lowCost;
  out[first < second ? 1 : 0] = highCost;
}
