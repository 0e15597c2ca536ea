/**
 * Encoding of one tensor's DeepCABAC payload (the data of an NNR compressed data unit),
 * CODING.md section 7, including the reference encoder's choice of estimator parameter sets.
 *
 * @module
 */
import { BinEncoder } from "../core/_bin_encoder.ts";
import { ADAPTATION_STEP, BIN_COST, ESTIMATOR_PARAMETER_SETS } from "../core/_tables.ts";
import { ContextStates, ESTIMATOR_SET_COUNT } from "../core/context_model.ts";
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
import { encodeLevel } from "./_level_bins.ts";

/** Encoder-side parameters of a payload. */
export interface EncodePayloadParams extends PayloadParams {
  /** The qp to signal (float payloads). */
  readonly qp?: number;
  /**
   * Estimator parameter set per context: `"optimize"` (default) chooses them as the reference
   * encoder does (`param_opt` = 1, CODING.md 7.3), `"default"` signals set 0 everywhere
   * (`param_opt` = 0), or give the sets explicitly in eco-flag order.
   */
  readonly estimatorSets?: "optimize" | "default" | Uint8Array;
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
  let lastP = enc.shifts;
  let state = 0;
  let previous = 0;
  forEachSegment(plan, rowSkip, (from, to) => {
    if (from < 0) {
      // A skipped segment: DQ advances W times, the neighbour stays (CODING.md 6.3).
      for (let i = 0; i < width; i++) state = DQ_NEXT_STATE[2 * state]!;
      return;
    }
    for (let i = from; i < to; i++) {
      const k = coded[i]!;
      const cls = neighbourClass(previous);
      encodeLevel(enc, ctx, layout, layout.sig + 3 * state + cls, cls, k);
      if (dq) state = DQ_NEXT_STATE[2 * state + (k & 1)]!;
      previous = k;
    }
  }, () => {
    ctx.reset();
    previous = 0;
    enc.resetRange();
    blockRowBitOffsets.push(enc.shifts - lastP);
    lastP = enc.shifts;
  });
  enc.encodeTerminate(1);
  return {
    bytes: enc.finish(),
    blockRowBitOffsets,
    estimatorSets: Uint8Array.from(sets),
    codedLevels: coded,
  };
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
const SET_KA = Int32Array.from(ESTIMATOR_PARAMETER_SETS, (p) => p[0]);
const SET_KB = Int32Array.from(ESTIMATOR_PARAMETER_SETS, (p) => p[1]);
const SET_A0 = Int32Array.from(ESTIMATOR_PARAMETER_SETS, (p) => p[2]);
const SET_B0 = Int32Array.from(ESTIMATOR_PARAMETER_SETS, (p) => p[3]);
/** The flat penalty of a non-default set in the choice: 3 bits (CODING.md 7.3 step 4). */
const SET_PENALTY = 3 << 15;

/**
 * The reference encoder's choice of estimator parameter sets (CODING.md 7.3): every context of
 * the eco list runs its bins through all nine sets side by side and takes the cheapest, a
 * non-default set paying a flat 3 bits. The bins are those of the levels as given (with DQ the
 * reconstruction indices, although the coded levels are what is coded), without bypass bins;
 * states restart at block rows, accumulators do not.
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
  // Context X under set e lives at index X * SETS + e.
  const sa = new Int16Array(total * SETS);
  const sb = new Int16Array(total * SETS);
  const acc = new Float64Array(total * SETS);
  const restart = () => {
    for (let i = 0; i < sa.length; i++) {
      sa[i] = SET_A0[i % SETS]!;
      sb[i] = SET_B0[i % SETS]!;
    }
  };
  restart();
  const add = (x: number, bin: number) => {
    for (let i = x * SETS, e = 0; e < SETS; i++, e++) {
      const a = sa[i]!;
      const b = sb[i]!;
      acc[i]! += BIN_COST[((512 + ((b + (a << 4)) >> 3)) << 1) | bin]!;
      if (bin) {
        sa[i] = a + (ADAPTATION_STEP[16 + (a >> 3)]! >> SET_KA[e]!);
        sb[i] = b + (ADAPTATION_STEP[16 + (b >> 7)]! >> SET_KB[e]!);
      } else {
        sa[i] = a - (ADAPTATION_STEP[16 + (-a >> 3)]! >> SET_KA[e]!);
        sb[i] = b - (ADAPTATION_STEP[16 + (-b >> 7)]! >> SET_KB[e]!);
      }
    }
  };
  let state = 0;
  let previous = 0;
  forEachSegment(plan, rowSkip, (from, to) => {
    if (from < 0) {
      for (let i = 0; i < plan.width; i++) state = DQ_NEXT_STATE[2 * state]!;
      return;
    }
    for (let i = from; i < to; i++) {
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
    restart();
    if (params.syntax === "nnc1") previous = 0;
  });
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
