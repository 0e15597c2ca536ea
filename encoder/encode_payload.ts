/**
 * Encoding of one tensor's DeepCABAC payload (the data of an NNR compressed data unit).
 *
 * @module
 */
import { BinEncoder } from "../core/_bin_encoder.ts";
import { type LevelBinVisitor, visitLevelBins } from "./_level_bins.ts";
import {
  binCost,
  ContextStates,
  ESTIMATOR_SET_COUNT,
  updateContext,
} from "../core/context_model.ts";
import { DQ_NEXT_STATE, dqCodedLevel } from "../core/dependent_quantization.ts";
import { scanPlan } from "../core/scan.ts";
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
   * Estimator parameter set per context: `"optimize"` (default) picks the cheapest set for each
   * context, `"default"` signals set 0 everywhere, or give the sets explicitly.
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
  /** The estimator parameter set chosen for each context. */
  readonly estimatorSets: Uint8Array<ArrayBuffer>;
  /** The coded levels (equal to the input without DQ). */
  readonly codedLevels: Int32Array<ArrayBuffer>;
}

/** Codes in {@linkcode BinList.ctx} above the context indices. */
const BYPASS = 0xff00; // + number of bits
const BLOCK_ROW = 0xffff;

/** Every level bin of a payload in coding order: context (or marker) and value. */
class BinList {
  ctx = new Uint16Array(1 << 12);
  value = new Int32Array(1 << 12);
  length = 0;

  push(ctx: number, value: number): void {
    if (this.length === this.ctx.length) {
      const c = new Uint16Array(this.length * 2);
      c.set(this.ctx);
      this.ctx = c;
      const v = new Int32Array(this.length * 2);
      v.set(this.value);
      this.value = v;
    }
    this.ctx[this.length] = ctx;
    this.value[this.length++] = value;
  }
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
  const coded = dq && !params.valuesAreCodedLevels
    ? toCodedLevels(values, plan.blockSize, height, width, rowSkip)
    : Int32Array.from(values);

  const list = new BinList();
  walkLevels(coded, plan.blockSize, height, width, dq, rowSkip, params.numGtxFlags, layout, list);
  const sets = params.estimatorSets instanceof Uint8Array
    ? params.estimatorSets
    : params.estimatorSets === "default"
    ? new Uint8Array(layout.total)
    : chooseEstimatorSets(list, layout);
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
    ctx.setParameterSet(c, set);
  }
  const blockRows = plan.blockRowStarts.length;
  if (plan.effectiveScanOrder > 0 && (params.syntax === "nnc1" || blockRows > 1)) enc.resetRange();

  const blockRowBitOffsets: number[] = [];
  let lastP = enc.shifts;
  for (let i = 0; i < list.length; i++) {
    const c = list.ctx[i]!;
    if (c < BYPASS) {
      enc.encodeBin(ctx, c, list.value[i]!);
    } else if (c === BLOCK_ROW) {
      ctx.reset();
      enc.resetRange();
      blockRowBitOffsets.push(enc.shifts - lastP);
      lastP = enc.shifts;
    } else {
      enc.encodeBypassBits(list.value[i]!, c - BYPASS);
    }
  }
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

/** Converts reconstruction indices to DQ coded levels by walking the scan with the state machine. */
function toCodedLevels(
  indices: Int32Array,
  blockSize: number,
  height: number,
  width: number,
  rowSkip: Uint8Array | null,
): Int32Array<ArrayBuffer> {
  const coded = new Int32Array(indices.length);
  let state = 0;
  forEachScanRow(blockSize, height, width, (r, c0, c1) => {
    if (rowSkip !== null && rowSkip[r]) {
      for (let i = 0; i < width; i++) state = DQ_NEXT_STATE[2 * state]!;
      return;
    }
    for (let c = c0; c < c1; c++) {
      const i = r * width + c;
      const k = dqCodedLevel(indices[i]!, state);
      coded[i] = k;
      state = DQ_NEXT_STATE[2 * state + (k & 1)]!;
    }
  }, () => {});
  return coded;
}

/** Calls `row(r, c0, c1)` for each row segment in scan order and `blockRow(j)` before rows j ≥ 1. */
function forEachScanRow(
  blockSize: number,
  height: number,
  width: number,
  row: (r: number, c0: number, c1: number) => void,
  blockRow: (j: number) => void,
): void {
  const bw = blockSize === 0 ? width : blockSize;
  const bh = blockSize === 0 ? height : blockSize;
  const blockRows = blockSize === 0 ? 1 : Math.ceil(height / blockSize);
  for (let br = 0; br < blockRows; br++) {
    if (br > 0) blockRow(br);
    const r0 = br * bh;
    const r1 = Math.min(height, r0 + bh);
    for (let c0 = 0; c0 < width; c0 += bw) {
      const c1 = Math.min(width, c0 + bw);
      for (let r = r0; r < r1; r++) row(r, c0, c1);
    }
  }
}

/** Emits the bins of every level, in scan order, into `list`. */
function walkLevels(
  coded: Int32Array,
  blockSize: number,
  height: number,
  width: number,
  dq: boolean,
  rowSkip: Uint8Array | null,
  numGtx: number,
  layout: ContextLayout,
  list: BinList,
): void {
  let state = 0;
  let previous = 0;
  const visitor: LevelBinVisitor = {
    bin: (c, b) => list.push(c, b),
    bypass: (value, bits) => list.push(BYPASS + bits, value),
  };
  forEachScanRow(blockSize, height, width, (r, c0, c1) => {
    if (rowSkip !== null && rowSkip[r]) {
      for (let i = 0; i < width; i++) state = DQ_NEXT_STATE[2 * state]!;
      previous = 0;
      return;
    }
    for (let c = c0; c < c1; c++) {
      const k = coded[r * width + c]!;
      const cls = neighbourClass(previous);
      visitLevelBins(k, layout, numGtx, layout.sig + (dq ? 3 * state : 0) + cls, cls, visitor);
      if (dq) state = DQ_NEXT_STATE[2 * state + (k & 1)]!;
      previous = k;
    }
  }, () => {
    list.push(BLOCK_ROW, 0);
    previous = 0;
  });
}

/**
 * Picks, for each context, the estimator parameter set that minimises the estimated bits of the
 * bins it will code (ties go to the lower set, so unused contexts keep the default).
 */
function chooseEstimatorSets(list: BinList, layout: ContextLayout): Uint8Array {
  // All nine candidate sets are simulated side by side in one pass over the bins: context c under
  // set k lives at index k * total + c.
  const total = layout.total;
  const ctx = new ContextStates(ESTIMATOR_SET_COUNT * total);
  for (let k = 0; k < ESTIMATOR_SET_COUNT; k++) {
    for (let c = 0; c < total; c++) ctx.setParameterSet(k * total + c, k);
  }
  const cost = new Float64Array(ESTIMATOR_SET_COUNT * total);
  for (let i = 0; i < list.length; i++) {
    const c = list.ctx[i]!;
    if (c < BYPASS) {
      const b = list.value[i]!;
      for (let j = c; j < cost.length; j += total) {
        cost[j]! += binCost(ctx, j, b);
        updateContext(ctx, j, b);
      }
    } else if (c === BLOCK_ROW) {
      ctx.reset();
    }
  }
  const choice = new Uint8Array(total);
  for (let c = 0; c < total; c++) {
    let best = cost[c]!;
    for (let k = 1; k < ESTIMATOR_SET_COUNT; k++) {
      // A non-default set costs its flag and 3 bypass bits, about 4 bits more.
      const candidate = cost[k * total + c]! + 4;
      if (candidate < best) {
        best = candidate;
        choice[c] = k;
      }
    }
  }
  return choice;
}
