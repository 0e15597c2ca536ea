/**
 * Encoding of one tensor's DeepCABAC payload (the data of an NNR compressed data unit),
 * CODING.md section 7, including the reference encoder's choice of estimator parameter sets.
 *
 * @module
 */
import { BinEncoder } from "../core/_bin_encoder.ts";
import { runContexts } from "../core/_run_contexts.ts";
import { BIN_COST } from "../core/_tables.ts";
import {
  ContextStates,
  ESTIMATOR_SET_COUNT,
  LPS_BY_STATE,
  NEXT_A,
  NEXT_B,
} from "../core/context_model.ts";
import {
  DQ_NEXT_STATE,
  dqCodedLevel,
  dqReconstructionIndex,
} from "../core/dependent_quantization.ts";
import { rangeResetBeforeFirstRow, type ScanPlan, scanPlan } from "../core/scan.ts";
import { stepSize } from "../core/step_size.ts";
import {
  type ContextLayout,
  contextLayout,
  neighbourClass,
  type PayloadParams,
} from "../core/syntax.ts";

/** Encoder-side parameters of a payload. */
export interface EncodePayloadParams extends PayloadParams {
  /** The qp to signal (float payloads). */
  readonly qp?: number;
  /**
   * Estimator parameter set per context: `"optimize"` (default) chooses them as the reference
   * encoder does (`param_opt` = 1, CODING.md 7.3), `"exact"` by the same rule from the bins
   * really coded (with DQ those of the coded levels, not of the reconstruction indices: a few
   * tenths of a percent smaller), `"default"` signals set 0 everywhere (`param_opt` = 0), or give
   * the sets explicitly in eco-flag order.
   */
  readonly estimatorSets?: "optimize" | "exact" | "default" | Uint8Array;
  /** nnc2 profile 1: skip rows that are entirely zero (default false). */
  readonly rowSkip?: boolean;
  /** With DQ: the values are already the coded levels k rather than reconstruction indices. */
  readonly valuesAreCodedLevels?: boolean;
}

/** An encoded payload. */
export interface EncodedPayload {
  /** The payload bytes. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /**
   * Bit positions (decoder shifts) where block rows 1..R−1 start, relative to the previous one;
   * the rest of an entry point (`value8`) is the decoder's register there, so writers take the
   * complete entry points from decoding the payload.
   */
  readonly blockRowBitOffsets: number[];
  /** The estimator parameter set chosen for each context, in eco-flag order. */
  readonly estimatorSets: Uint8Array<ArrayBuffer>;
  /** The coded levels (equal to the input without DQ). */
  readonly codedLevels: Int32Array<ArrayBuffer>;
}

/**
 * Encodes one tensor payload.
 *
 * @param values Levels in tensor layout: reconstruction indices (or, with
 * `valuesAreCodedLevels`, the DQ coded levels), or the integers of an integer payload.
 * @param params How to code it.
 * @returns The payload bytes and what the header needs (entry points).
 * @throws {RangeError} If a parameter is out of range or a DQ index is unreachable.
 *
 * @example
 * ```ts
 * import { encodePayload } from "./encode_payload.ts";
 * import assert from "node:assert/strict";
 *
 * const out = encodePayload(Int32Array.of(1, 0, -2, 5), {
 *   shape: [4], payloadType: "int", dqFlag: 0, numGtxFlags: 1, scanOrder: 0,
 *   qpDensity: 0, mpsQp: 0, syntax: "nnc1", profileIdc: 0,
 * });
 * assert.ok(out.bytes.length > 0);
 * assert.deepEqual(out.codedLevels, Int32Array.of(1, 0, -2, 5));
 * ```
 */
export function encodePayload(values: Int32Array, params: EncodePayloadParams): EncodedPayload {
  const plan = scanPlan(params.shape, params.scanOrder);
  const { height, width } = plan;
  if (values.length !== height * width) {
    throw new RangeError(
      `Cannot encode payload: ${values.length} values for shape [${params.shape}]`,
    );
  }
  const dq = params.dqFlag === 1;
  const layout = contextLayout(params.numGtxFlags, dq, params.syntax);
  const rowSkipUsable = params.syntax === "nnc2" && params.profileIdc === 1 && width > 1 &&
    height > 1;
  const rowSkip = rowSkipUsable && params.rowSkip === true ? zeroRows(values, height, width) : null;
  const { indices, coded } = dq
    ? dqLevelPair(values, params.valuesAreCodedLevels === true, plan, rowSkip)
    : { indices: values, coded: Int32Array.from(values) };

  const sets = params.estimatorSets instanceof Uint8Array
    ? params.estimatorSets
    : params.estimatorSets === "default"
    ? new Uint8Array(layout.total)
    : params.estimatorSets === "exact"
    ? chooseEstimatorSets(coded, coded, plan, rowSkip, params, layout)
    : chooseEstimatorSets(indices, coded, plan, rowSkip, params, layout);
  if (sets.length !== layout.total) {
    throw new RangeError(`Expected ${layout.total} estimator sets, got ${sets.length}`);
  }

  const enc = new BinEncoder(values.length + 64);
  if (params.payloadType === "float") {
    if (params.qp === undefined) throw new TypeError("Cannot encode a float payload without qp");
    stepSize(params.qp, params.qpDensity);
    const bits = 6 + params.qpDensity;
    const offset = params.qp - params.mpsQp;
    if (offset < -(2 ** (bits - 1)) || offset >= 2 ** (bits - 1)) {
      throw new RangeError(`Cannot signal qp ${params.qp}: offset does not fit in ${bits} bits`);
    }
    enc.encodeBypassBits(offset < 0 ? offset + 2 ** bits : offset, bits);
  }
  if (rowSkipUsable) {
    enc.encodeBypass(rowSkip === null ? 0 : 1);
    if (rowSkip !== null) {
      const rowCtx = new ContextStates(1);
      for (let r = 0; r < height; r++) enc.encodeBin(rowCtx, 0, rowSkip[r]!);
    }
  }
  const ctx = new ContextStates(layout.total);
  const ecoCtx = new ContextStates(1);
  for (let c = 0; c < layout.total; c++) {
    const set = sets[c]!;
    enc.encodeBin(ecoCtx, 0, set > 0 ? 1 : 0);
    if (set > 0) enc.encodeBypassBits(set - 1, 3);
    ctx.init(c, set);
  }
  if (rangeResetBeforeFirstRow(plan, params.syntax)) enc.resetRange();

  const blockRowBitOffsets: number[] = [];
  let lastP = enc.bitPosition();
  const run = runContexts(layout);
  let state = 0;
  let previous = 0;
  forEachSegment(plan, rowSkip, (from, to) => {
    if (from < 0) {
      // A skipped segment: DQ advances W times, the neighbour stays (CODING.md 6.3).
      for (let i = 0; i < width; i++) state = DQ_NEXT_STATE[2 * state]!;
      return;
    }
    state = encodeSegment(enc, ctx, layout, run, coded, from, to, previous, state, dq);
    previous = coded[to - 1]!;
  }, () => {
    ctx.reset();
    previous = 0;
    enc.resetRange();
    blockRowBitOffsets.push(enc.bitPosition() - lastP);
    lastP = enc.bitPosition();
  });
  enc.encodeTerminate(1);
  return {
    bytes: enc.finish(),
    blockRowBitOffsets,
    estimatorSets: Uint8Array.from(sets),
    codedLevels: coded,
  };
}

/**
 * Codes the levels of elements `[from, to)` (one row segment) with the binarisation of
 * CODING.md 5.2: the hot loop, with the coder registers in locals and the bin coding of
 * CODING.md 2.2 written out (without data-dependent branches) for the significance flag, the sign
 * and the run of greater-than flags and remainder prefix that follows. Returns the DQ state after
 * the segment (`state` unchanged without DQ).
 */
function encodeSegment(
  enc: BinEncoder,
  ctx: ContextStates,
  layout: ContextLayout,
  run: Int32Array,
  coded: Int32Array,
  from: number,
  to: number,
  previous: number,
  state: number,
  dq: boolean,
): number {
  const A = ctx.a;
  const B = ctx.b;
  const RA = ctx.rowA;
  const RB = ctx.rowB;
  const numGtx = layout.numGtx;
  const runLen = run.length >> 1;
  let low = enc.low;
  let range = enc.range;
  let free = enc.free;
  for (let idx = from; idx < to; idx++) {
    const k = coded[idx]!;
    const cls = neighbourClass(previous);
    const m = k < 0 ? -k : k;
    // After the sign: `ones` 1 bins then a 0 over the run's contexts, then the suffix bins.
    let ones = m - 1;
    let e = 0;
    if (m > numGtx) {
      e = 31 - Math.clz32(m - numGtx);
      ones = numGtx + e;
    }
    // --- significance, sign, then the run: one written-out bin coding each (CODING.md 2.2)
    let c = layout.sig + (dq ? 3 * state : 0) + cls;
    let bin = m === 0 ? 0 : 1;
    {
      const a = A[c]!;
      const b = B[c]!;
      const s = b + (a << 4);
      const lps = LPS_BY_STATE[((s >> 7) << 3) + (range >> 5) + 248]!;
      range -= lps;
      const isLps = -(bin ^ (~s >>> 31)); // −1 when the bin is the LPS
      low += range & isLps;
      range ^= (range ^ lps) & isLps;
      const t = Math.clz32(range) - 23;
      range <<= t;
      low <<= t;
      free -= t;
      if (free < 12) {
        enc.low = low;
        enc.free = free;
        enc.emitByte();
        low = enc.low;
        free = enc.free;
      }
      A[c] = NEXT_A[RA[c]! + (bin << 8) + a]!;
      B[c] = NEXT_B[RB[c]! + (bin << 12) + b]!;
    }
    if (m !== 0) {
      c = layout.sign + cls;
      bin = k < 0 ? 1 : 0;
      {
        const a = A[c]!;
        const b = B[c]!;
        const s = b + (a << 4);
        const lps = LPS_BY_STATE[((s >> 7) << 3) + (range >> 5) + 248]!;
        range -= lps;
        const isLps = -(bin ^ (~s >>> 31)); // −1 when the bin is the LPS
        low += range & isLps;
        range ^= (range ^ lps) & isLps;
        const t = Math.clz32(range) - 23;
        range <<= t;
        low <<= t;
        free -= t;
        if (free < 12) {
          enc.low = low;
          enc.free = free;
          enc.emitByte();
          low = enc.low;
          free = enc.free;
        }
        A[c] = NEXT_A[RA[c]! + (bin << 8) + a]!;
        B[c] = NEXT_B[RB[c]! + (bin << 12) + b]!;
      }
      const runBase = k < 0 ? runLen : 0;
      for (let j = 0; j <= ones; j++) {
        c = run[runBase + j]!;
        bin = j < ones ? 1 : 0;
        {
          const a = A[c]!;
          const b = B[c]!;
          const s = b + (a << 4);
          const lps = LPS_BY_STATE[((s >> 7) << 3) + (range >> 5) + 248]!;
          range -= lps;
          const isLps = -(bin ^ (~s >>> 31)); // −1 when the bin is the LPS
          low += range & isLps;
          range ^= (range ^ lps) & isLps;
          const t = Math.clz32(range) - 23;
          range <<= t;
          low <<= t;
          free -= t;
          if (free < 12) {
            enc.low = low;
            enc.free = free;
            enc.emitByte();
            low = enc.low;
            free = enc.free;
          }
          A[c] = NEXT_A[RA[c]! + (bin << 8) + a]!;
          B[c] = NEXT_B[RB[c]! + (bin << 12) + b]!;
        }
      }
    }
    if (e > 0) {
      // The remainder's suffix: e bypass bins (CODING.md 2.3).
      const suffix = m - numGtx - (1 << e);
      for (let j = e - 1; j >= 0; j--) {
        low = (low << 1) + (range & -((suffix >> j) & 1));
        if (--free < 12) {
          enc.low = low;
          enc.free = free;
          enc.emitByte();
          low = enc.low;
          free = enc.free;
        }
      }
    }
    if (dq) state = DQ_NEXT_STATE[2 * state + (k & 1)]!;
    previous = k;
  }
  enc.low = low;
  enc.range = range;
  enc.free = free;
  return state;
}

/** Rows whose values are all zero. */
function zeroRows(values: Int32Array, height: number, width: number): Uint8Array {
  const rows = new Uint8Array(height);
  for (let r = 0; r < height; r++) {
    let zero = 1;
    for (let c = 0; c < width; c++) {
      if (values[r * width + c] !== 0) {
        zero = 0;
        break;
      }
    }
    rows[r] = zero;
  }
  return rows;
}

/**
 * Calls `segment(from, to)` for each row segment in scan order (elements `[from, to)` of the
 * tensor; `from` = −1 for a skipped segment) and `blockRow()` before block rows 1..R−1.
 */
function forEachSegment(
  plan: ScanPlan,
  rowSkip: Uint8Array | null,
  segment: (from: number, to: number) => void,
  blockRow: () => void,
): void {
  const { height, width, blockSize } = plan;
  const bw = blockSize === 0 ? width : blockSize;
  const bh = blockSize === 0 ? height : blockSize;
  for (let r0 = 0; r0 < height; r0 += bh) {
    if (r0 > 0) blockRow();
    for (let c0 = 0; c0 < width; c0 += bw) {
      const c1 = Math.min(width, c0 + bw);
      for (let r = r0; r < Math.min(height, r0 + bh); r++) {
        if (rowSkip !== null && rowSkip[r]) segment(-1, -1);
        else segment(r * width + c0, r * width + c1);
      }
    }
  }
}

/**
 * The reconstruction indices and the coded levels of a DQ payload from either of them, by the
 * state walk of CODING.md 7.1 (no reset at block rows).
 */
function dqLevelPair(
  values: Int32Array,
  valuesAreCoded: boolean,
  plan: ScanPlan,
  rowSkip: Uint8Array | null,
): { indices: Int32Array; coded: Int32Array<ArrayBuffer> } {
  const other = new Int32Array(values.length);
  let state = 0;
  forEachSegment(plan, rowSkip, (from, to) => {
    if (from < 0) {
      for (let i = 0; i < plan.width; i++) state = DQ_NEXT_STATE[2 * state]!;
      return;
    }
    for (let i = from; i < to; i++) {
      const v = values[i]!;
      const k = valuesAreCoded ? v : dqCodedLevel(v, state);
      other[i] = valuesAreCoded ? dqReconstructionIndex(v, state) : k;
      state = DQ_NEXT_STATE[2 * state + (k & 1)]!;
    }
  }, () => {});
  return valuesAreCoded
    ? { indices: other, coded: Int32Array.from(values) }
    : { indices: values, coded: other };
}

const SETS = ESTIMATOR_SET_COUNT;
/** The flat penalty of a non-default set in the choice: 3 bits (CODING.md 7.3 step 4). */
const SET_PENALTY = 3 << 15;
/**
 * Elements whose bins are gathered per context before the nine sets run over them: a context codes
 * at most one bin per element, so a chunk's cost (≤ 2^18 per bin) fits an int32.
 */
const CHUNK = 1 << 12;

/**
 * The reference encoder's choice of estimator parameter sets (CODING.md 7.3): every context of
 * the eco list runs its bins through all nine sets side by side and takes the cheapest, a
 * non-default set paying a flat 3 bits. The bins are those of the levels as given (with DQ the
 * reconstruction indices, although the coded levels are what is coded), without bypass bins;
 * states restart at block rows, accumulators do not.
 *
 * For speed the bins of a chunk of elements are first gathered per context (a context codes at
 * most one bin per element), then each set runs over each context's bins with its state in
 * locals.
 */
function chooseEstimatorSets(
  indices: Int32Array,
  coded: Int32Array,
  plan: ScanPlan,
  rowSkip: Uint8Array | null,
  params: PayloadParams,
  layout: ContextLayout,
): Uint8Array {
  const total = layout.total;
  const numGtx = params.numGtxFlags;
  const dq = params.dqFlag === 1;
  // Set e's initial state and update rows, from the estimator itself.
  const initial = new ContextStates(SETS);
  for (let e = 0; e < SETS; e++) initial.init(e, e);
  // Context x under set e lives at index x * SETS + e.
  const states = new ContextStates(total * SETS);
  const acc = new Float64Array(total * SETS);
  const restart = () => {
    for (let i = 0; i < total * SETS; i++) {
      states.a[i] = initial.a[i % SETS]!;
      states.b[i] = initial.b[i % SETS]!;
    }
  };
  restart();
  const chunk = Math.min(CHUNK, indices.length);
  const bins = new Uint8Array(total * chunk);
  const count = new Int32Array(total);
  let elements = 0;
  // Sets with the same adaptation shifts whose states have met stay together for good (same bins,
  // same updates), so each chunk runs only the distinct states, three side by side (independent
  // dependency chains that the processor overlaps).
  const representative = new Int32Array(SETS);
  const distinct = new Int32Array(SETS + 2);
  const sums = new Float64Array(SETS);
  const flush = () => {
    for (let x = 0; x < total; x++) {
      const n = count[x]!;
      if (n === 0) continue;
      const base = x * SETS;
      let found = 0;
      for (let e = 0; e < SETS; e++) {
        let r = e;
        for (let f = 0; f < e; f++) {
          if (
            representative[f] === f && initial.rowA[f] === initial.rowA[e] &&
            initial.rowB[f] === initial.rowB[e] && states.a[base + f] === states.a[base + e] &&
            states.b[base + f] === states.b[base + e]
          ) {
            r = f;
            break;
          }
        }
        representative[e] = r;
        if (r === e) distinct[found++] = e;
      }
      // Pad to a multiple of three with repeats (their results are simply written twice).
      while (found % 3 !== 0) distinct[found] = distinct[found++ - 1]!;
      const from = x * chunk;
      for (let g = 0; g < found; g += 3) {
        const e0 = distinct[g]!, e1 = distinct[g + 1]!, e2 = distinct[g + 2]!;
        const rowA0 = initial.rowA[e0]!, rowB0 = initial.rowB[e0]!;
        const rowA1 = initial.rowA[e1]!, rowB1 = initial.rowB[e1]!;
        const rowA2 = initial.rowA[e2]!, rowB2 = initial.rowB[e2]!;
        let a0 = states.a[base + e0]!, b0 = states.b[base + e0]!, sum0 = 0;
        let a1 = states.a[base + e1]!, b1 = states.b[base + e1]!, sum1 = 0;
        let a2 = states.a[base + e2]!, b2 = states.b[base + e2]!, sum2 = 0;
        for (let j = from; j < from + n; j++) {
          const bin = bins[j]!;
          sum0 = (sum0 + BIN_COST[((512 + ((b0 + (a0 << 4)) >> 3)) << 1) | bin]!) | 0;
          sum1 = (sum1 + BIN_COST[((512 + ((b1 + (a1 << 4)) >> 3)) << 1) | bin]!) | 0;
          sum2 = (sum2 + BIN_COST[((512 + ((b2 + (a2 << 4)) >> 3)) << 1) | bin]!) | 0;
          a0 = NEXT_A[rowA0 + (bin << 8) + a0]!;
          a1 = NEXT_A[rowA1 + (bin << 8) + a1]!;
          a2 = NEXT_A[rowA2 + (bin << 8) + a2]!;
          b0 = NEXT_B[rowB0 + (bin << 12) + b0]!;
          b1 = NEXT_B[rowB1 + (bin << 12) + b1]!;
          b2 = NEXT_B[rowB2 + (bin << 12) + b2]!;
        }
        states.a[base + e0] = a0, states.b[base + e0] = b0, sums[e0] = sum0;
        states.a[base + e1] = a1, states.b[base + e1] = b1, sums[e1] = sum1;
        states.a[base + e2] = a2, states.b[base + e2] = b2, sums[e2] = sum2;
      }
      for (let e = 0; e < SETS; e++) {
        const r = representative[e]!;
        acc[base + e]! += sums[r]!;
        states.a[base + e] = states.a[base + r]!;
        states.b[base + e] = states.b[base + r]!;
      }
      count[x] = 0;
    }
    elements = 0;
  };
  const add = (x: number, bin: number) => {
    bins[x * chunk + count[x]!++] = bin;
  };
  let state = 0;
  let previous = 0;
  forEachSegment(plan, rowSkip, (from, to) => {
    if (from < 0) {
      for (let i = 0; i < plan.width; i++) state = DQ_NEXT_STATE[2 * state]!;
      return;
    }
    for (let i = from; i < to; i++) {
      if (elements === chunk) flush();
      elements++;
      const q = indices[i]!;
      const cls = neighbourClass(previous);
      add(layout.sig + 3 * state + cls, q !== 0 ? 1 : 0);
      if (q !== 0) {
        const negative = q < 0 ? 1 : 0;
        add(layout.sign + cls, negative);
        const m = Math.abs(q);
        let g = 0;
        for (; g < numGtx; g++) {
          const more = m > g + 1 ? 1 : 0;
          add(layout.gtx + 2 * g + negative, more);
          if (!more) break;
        }
        if (g === numGtx) {
          const e = 31 - Math.clz32(m - numGtx);
          for (let j = 0; j < e; j++) add(layout.rem + j, 1);
          add(layout.rem + e, 0);
        }
      }
      if (dq) state = DQ_NEXT_STATE[2 * state + (coded[i]! & 1)]!;
      previous = q;
    }
  }, () => {
    flush();
    restart();
    if (params.syntax === "nnc1") previous = 0;
  });
  flush();
  const choice = new Uint8Array(total);
  for (let x = 0; x < total; x++) {
    let min = acc[x * SETS]!;
    for (let e = 1; e < SETS; e++) {
      const cost = acc[x * SETS + e]! + SET_PENALTY;
      if (cost < min) {
        min = cost;
        choice[x] = e;
      }
    }
  }
  return choice;
}
