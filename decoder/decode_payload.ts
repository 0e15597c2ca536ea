/**
 * Decoding of one tensor's DeepCABAC payload (the data of an NNR compressed data unit).
 *
 * @module
 */
import { BinDecoder, OVERRUN_SLACK } from "../core/_bin_decoder.ts";
import { runContexts } from "../core/_run_contexts.ts";
import {
  ContextStates,
  LPS_BY_STATE,
  MAX_BINS_PER_BYTE,
  NEXT_A,
  NEXT_B,
} from "../core/context_model.ts";
import { DQ_NEXT_STATE, dqReconstructionIndex } from "../core/dependent_quantization.ts";
import { DecodeError } from "../core/errors.ts";
import { matrixView, rangeResetBeforeFirstRow, type ScanPlan, scanPlan } from "../core/scan.ts";
import { stepSize } from "../core/step_size.ts";
import {
  type ContextLayout,
  contextLayout,
  type EntryPoint,
  MAX_GTX_FLAGS,
  neighbourClass,
  type PayloadParams,
} from "../core/syntax.ts";

/** Limits checked before anything is allocated. */
export interface DecodeLimits {
  /** Largest number of elements a tensor may have (default 2^28). */
  readonly maxElements?: number;
}

/** What {@linkcode decodePayload} returns besides the levels (both default to true). */
export interface DecodePayloadOptions {
  /** Also return the coded levels (DQ: costs a second array). */
  readonly codedLevels?: boolean;
  /** Also return the float32 reconstruction. */
  readonly reconstruct?: boolean;
}

/** A decoded tensor payload. */
export interface DecodedPayload {
  /** The qp signalled in the payload (float payloads), else `null`. */
  readonly qp: number | null;
  /** The float32 step size (float payloads), else `null`. */
  readonly step: number | null;
  /** Reconstruction indices (float) or the integers themselves (int), in tensor layout. */
  readonly levels: Int32Array<ArrayBuffer>;
  /**
   * The levels as coded by the binarisation (differs from `levels` only with DQ); null when
   * decoded with `codedLevels: false`.
   */
  readonly codedLevels: Int32Array<ArrayBuffer> | null;
  /**
   * The reconstructed tensor: `float32(level) × step` for float payloads, integers otherwise;
   * null when decoded with `reconstruct: false`.
   */
  readonly recon: Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> | null;
  /** Bytes the decoder consumed, up to and including the stop bit's byte. */
  readonly bytesConsumed: number;
  /** Entry points of block rows 1..R−1, as the reference derives them. */
  readonly entryPoints: EntryPoint[];
}

const DEFAULT_MAX_ELEMENTS = 2 ** 28;

/**
 * Checks payload parameters that come from an untrusted header, and, given the payload's length,
 * that it can hold the tensor at all (every coded element costs at least one bin, and a byte holds
 * at most {@linkcode MAX_BINS_PER_BYTE}; skipped rows cost one bin each), before anything is
 * allocated.
 *
 * @param params The parameters.
 * @param limits Size limits.
 * @param payloadBytes The payload's length, if known.
 * @returns The number of elements.
 * @throws {DecodeError} If the parameters are corrupt or exceed a limit.
 *
 * @example A header that claims more than its payload can hold
 * ```ts
 * import { validatePayloadParams } from "./decode_payload.ts";
 * import { payloadParams } from "../core/syntax.ts";
 * import { DecodeError } from "../core/errors.ts";
 * import assert from "node:assert/strict";
 *
 * const params = payloadParams([4096, 4096]);
 * assert.equal(validatePayloadParams(params), 4096 * 4096);
 * assert.throws(() => validatePayloadParams(params, {}, 100), DecodeError);
 * ```
 */
export function validatePayloadParams(
  params: PayloadParams,
  limits: DecodeLimits = {},
  payloadBytes?: number,
): number {
  const max = limits.maxElements ?? DEFAULT_MAX_ELEMENTS;
  let n = 1;
  for (const d of params.shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new DecodeError("corrupt", `Tensor dimension ${d} is not a non-negative integer`, 0);
    }
    n *= d;
  }
  if (n > max) {
    throw new DecodeError("limit", `Tensor has ${n} elements, more than the limit ${max}`, 0);
  }
  if (payloadBytes !== undefined) {
    const [height, width] = matrixView(params.shape);
    const rowsSkippable = params.syntax === "nnc2" && params.profileIdc === 1 && height > 1 &&
      width > 1;
    const coded = rowsSkippable ? height : n;
    if (coded > MAX_BINS_PER_BYTE * (payloadBytes + 1)) {
      throw new DecodeError(
        "corrupt",
        `Tensor of ${n} elements cannot be coded in ${payloadBytes} bytes`,
        0,
      );
    }
  }
  if (
    !Number.isInteger(params.numGtxFlags) || params.numGtxFlags < 1 ||
    params.numGtxFlags > MAX_GTX_FLAGS
  ) {
    throw new DecodeError(
      "corrupt",
      `Number of greater-than flags ${params.numGtxFlags} is out of range`,
      0,
    );
  }
  if (params.payloadType === "int" && params.dqFlag) {
    throw new DecodeError("corrupt", "Integer payloads cannot use dependent quantisation", 0);
  }
  return n;
}

/**
 * Decodes one tensor payload.
 *
 * @param data The payload bytes (exactly one payload, or a view that starts with one).
 * @param params How the payload was coded.
 * @param limits Size limits.
 * @returns The decoded tensor, its levels and the entry points.
 * @throws {DecodeError} If the payload is truncated, corrupt or exceeds a limit.
 *
 * @example Decoding what the encoder wrote
 * ```ts
 * import { decodePayload } from "./decode_payload.ts";
 * import { encodePayload } from "../encoder/encode_payload.ts";
 * import assert from "node:assert/strict";
 *
 * const params = {
 *   shape: [2, 3], payloadType: "float", dqFlag: 0, numGtxFlags: 11, scanOrder: 0,
 *   qpDensity: 2, mpsQp: 0, syntax: "nnc1", profileIdc: 0,
 * } as const;
 * const levels = Int32Array.of(0, 3, -1, 40, 0, 2);
 * const bytes = encodePayload(levels, { ...params, qp: -32 }).bytes;
 * const out = decodePayload(bytes, params);
 * assert.deepEqual(out.levels, levels);
 * assert.equal(out.qp, -32);
 * assert.equal(out.recon![3], 40 * 2 ** -8);
 * ```
 */
export function decodePayload(
  data: Uint8Array,
  params: PayloadParams,
  limits: DecodeLimits = {},
  options: DecodePayloadOptions = {},
): DecodedPayload {
  const n = validatePayloadParams(params, limits, data.length);
  const plan = scanPlan(params.shape, params.scanOrder, false);
  const dec = new BinDecoder(data);
  const head = readPayloadHead(dec, params, plan);
  // Without DQ the coded levels are the levels; with DQ, unless asked for, the coded level is
  // written and then overwritten by the level in the same array (each is read only once).
  const levels = new Int32Array(n);
  const keepCoded = options.codedLevels !== false && params.dqFlag === 1;
  const coded = keepCoded ? new Int32Array(n) : levels;
  const entryPoints: EntryPoint[] = [];
  const blockRows = plan.blockRowStarts.length;
  let state = 0;
  let lastP = dec.bitPosition();
  for (let br = 0; br < blockRows; br++) {
    if (br > 0) {
      head.ctx.reset();
      dec.range = 256;
      const p = dec.bitPosition();
      entryPoints.push({ bitOffsetDelta: p - lastP, value8: dec.value >> 7, dqState: state });
      lastP = p;
    }
    state = decodeBlockRowLevels(dec, head, params, plan, br, state, coded, levels, 0);
  }
  finishPayload(dec);
  return {
    qp: head.qp,
    step: head.step,
    levels,
    codedLevels: options.codedLevels === false ? null : keepCoded ? coded : levels,
    recon: options.reconstruct === false ? null : reconstruct(levels, head.step),
    bytesConsumed: dec.finish(),
    entryPoints,
  };
}

/** One block row decoded on its own from its entry point. */
export interface DecodedBlockRow {
  /** First matrix row of the block row. */
  readonly firstRow: number;
  /** Number of matrix rows in it. */
  readonly rows: number;
  /** Reconstruction indices (or integers), rows × width, row-major. */
  readonly levels: Int32Array<ArrayBuffer>;
  /** The reconstruction of those rows. */
  readonly recon: Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer>;
}

/**
 * Decodes block row `j` of a block-scanned payload on its own, starting at its entry point
 * (random access): the payload head (qp, estimator sets) is decoded, then the decoder restarts
 * at the entry point's bit position with its `value8`, fresh contexts and its DQ state.
 *
 * @param data The payload bytes.
 * @param params How the payload was coded (scan order > 0).
 * @param entryPoints The payload's entry points (from its NDU header or {@linkcode decodePayload}).
 * @param j The block row, 0..entryPoints.length.
 * @param limits Size limits.
 * @returns The block row's levels and reconstruction.
 * @throws {DecodeError} If the payload or the entry points are corrupt.
 * @throws {RangeError} If `j` is not a block row of the payload.
 *
 * @example Every block row decodes alone to what the whole payload decodes to
 * ```ts
 * import { decodeBlockRow, decodePayload } from "./decode_payload.ts";
 * import { encodePayload } from "../encoder/encode_payload.ts";
 * import assert from "node:assert/strict";
 *
 * const params = {
 *   shape: [20, 12], payloadType: "float", dqFlag: 1, numGtxFlags: 11, scanOrder: 1,
 *   qpDensity: 2, mpsQp: 0, syntax: "nnc1", profileIdc: 0,
 * } as const;
 * const k = Int32Array.from({ length: 240 }, (_, i) => (i * 7) % 11 - 5);
 * const { bytes } = encodePayload(k, { ...params, qp: -30, valuesAreCodedLevels: true });
 * const whole = decodePayload(bytes, params);
 * const row2 = decodeBlockRow(bytes, params, whole.entryPoints, 2);
 * assert.deepEqual(row2.levels, whole.levels.subarray(16 * 12, 20 * 12));
 * ```
 */
export function decodeBlockRow(
  data: Uint8Array,
  params: PayloadParams,
  entryPoints: readonly EntryPoint[],
  j: number,
  limits: DecodeLimits = {},
): DecodedBlockRow {
  validatePayloadParams(params, limits, data.length);
  const plan = scanPlan(params.shape, params.scanOrder, false);
  const blockRows = plan.blockRowStarts.length;
  if (!Number.isInteger(j) || j < 0 || j >= blockRows) {
    throw new RangeError(`Block row ${j} is not in 0..${blockRows - 1}`);
  }
  if (entryPoints.length !== blockRows - 1) {
    throw new DecodeError(
      "corrupt",
      `Payload has ${blockRows} block rows but ${entryPoints.length} entry points`,
      0,
    );
  }
  const dec = new BinDecoder(data);
  const head = readPayloadHead(dec, params, plan);
  let state = 0;
  if (j > 0) {
    let p = dec.bitPosition();
    for (let i = 0; i < j; i++) p += entryPoints[i]!.bitOffsetDelta;
    const entry = entryPoints[j - 1]!;
    dec.seek(p, entry.value8);
    state = entry.dqState;
  }
  const bh = plan.blockSize === 0 ? plan.height : plan.blockSize;
  const firstRow = j * bh;
  const rows = Math.min(plan.height, firstRow + bh) - firstRow;
  // As in decodePayload: with DQ each coded level is overwritten by its level in one array.
  const levels = new Int32Array(rows * plan.width);
  decodeBlockRowLevels(dec, head, params, plan, j, state, levels, levels, firstRow * plan.width);
  return { firstRow, rows, levels, recon: reconstruct(levels, head.step) };
}

/** What precedes the levels: the qp, the row-skip flags and the estimator sets. */
interface PayloadHead {
  readonly qp: number | null;
  readonly step: number | null;
  readonly rowSkip: Uint8Array | null;
  readonly layout: ContextLayout;
  readonly numGtx: number;
  readonly ctx: ContextStates;
}

/**
 * Decodes the qp offset, the row-skip flags and the eco flags, then applies the range reset
 * before block row 0 (CODING.md 6.1 steps 2–5).
 */
function readPayloadHead(dec: BinDecoder, params: PayloadParams, plan: ScanPlan): PayloadHead {
  let qp: number | null = null;
  let step: number | null = null;
  if (params.payloadType === "float") {
    const bits = 6 + params.qpDensity;
    const raw = dec.decodeBypassBits(bits);
    const offset = raw >= 2 ** (bits - 1) ? raw - 2 ** bits : raw;
    qp = params.mpsQp + offset;
    try {
      step = stepSize(qp, params.qpDensity);
    } catch (e) {
      throw new DecodeError(
        "corrupt",
        `Payload signals an unusable qp ${qp} (${(e as Error).message})`,
        0,
      );
    }
  }
  let rowSkip: Uint8Array | null = null;
  if (params.syntax === "nnc2" && params.profileIdc === 1 && plan.width > 1 && plan.height > 1) {
    if (dec.decodeBypass()) {
      rowSkip = new Uint8Array(plan.height);
      const rowCtx = new ContextStates(1);
      for (let r = 0; r < plan.height; r++) rowSkip[r] = dec.decodeBin(rowCtx, 0);
    }
  }
  const layout = contextLayout(params.numGtxFlags, params.dqFlag === 1, params.syntax);
  const ctx = new ContextStates(layout.total);
  const ecoCtx = new ContextStates(1);
  for (let c = 0; c < layout.total; c++) {
    if (dec.decodeBin(ecoCtx, 0)) ctx.init(c, dec.decodeBypassBits(3) + 1);
  }
  if (rangeResetBeforeFirstRow(plan, params.syntax)) dec.range = 256;
  return { qp, step, rowSkip, layout, numGtx: params.numGtxFlags, ctx };
}

/**
 * Decodes the levels of block row `br` (the whole tensor for scan 0), starting with DQ state
 * `state`, into `coded` (and the reconstruction indices into `levels` with DQ); element i of the
 * tensor goes to index i − `base`. Returns the DQ state after the block row.
 */
function decodeBlockRowLevels(
  dec: BinDecoder,
  head: PayloadHead,
  params: PayloadParams,
  plan: ScanPlan,
  br: number,
  state: number,
  coded: Int32Array,
  levels: Int32Array,
  base: number,
): number {
  const { height, width, blockSize } = plan;
  const bw = blockSize === 0 ? width : blockSize;
  const bh = blockSize === 0 ? height : blockSize;
  const run = runContexts(head.layout);
  const dq = params.dqFlag === 1 ? levels : null;
  let previous = 0;
  const r0 = br * bh;
  const r1 = Math.min(height, r0 + bh);
  for (let c0 = 0; c0 < width; c0 += bw) {
    const c1 = Math.min(width, c0 + bw);
    for (let r = r0; r < r1; r++) {
      if (head.rowSkip !== null && head.rowSkip[r]) {
        // A skipped segment advances DQ W times and keeps the neighbour (CODING.md 6.3).
        for (let i = 0; i < width; i++) state = DQ_NEXT_STATE[2 * state]!;
        continue;
      }
      const from = r * width + c0 - base;
      state = decodeSegment(dec, head, run, coded, dq, from, from + c1 - c0, previous, state);
      previous = coded[from + c1 - c0 - 1]!;
    }
  }
  return state;
}

/** Checks the terminating bin after the last level. */
function finishPayload(dec: BinDecoder): void {
  if (dec.decodeTerminate() !== 1) {
    throw new DecodeError(
      "corrupt",
      "Payload has no terminating bin after the last level",
      dec.pos,
    );
  }
}

/** `float32(level) × step`, or the integers themselves when there is no step. */
function reconstruct(
  levels: Int32Array<ArrayBuffer>,
  step: number | null,
): Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> {
  if (step === null) return levels.slice();
  const f = new Float32Array(levels.length);
  const s = Math.fround(step);
  for (let i = 0; i < levels.length; i++) f[i] = Math.fround(levels[i]!) * s;
  return f;
}

/**
 * Decodes the levels of elements `[from, to)` of `coded` (one row segment, consecutive in
 * memory) with the binarisation of CODING.md 5.2. This is the hot loop: the coder registers live
 * in locals and one inlined copy of the bin decode (CODING.md 1.3 and 3.3–3.4) serves every
 * context-coded bin of a level: significance, sign, then the run of greater-than flags and
 * remainder prefix. Returns the DQ state after the segment.
 */
function decodeSegment(
  dec: BinDecoder,
  head: PayloadHead,
  run: Int32Array,
  coded: Int32Array,
  dqLevels: Int32Array | null,
  from: number,
  to: number,
  previous: number,
  state: number,
): number {
  const A = head.ctx.a;
  const B = head.ctx.b;
  const RA = head.ctx.rowA;
  const RB = head.ctx.rowB;
  const sigBase = head.layout.sig;
  const signBase = head.layout.sign;
  const numGtx = head.numGtx;
  const runLen = run.length >> 1;
  const data = dec.data;
  const end = dec.end;
  let value = dec.value;
  let range = dec.range;
  let bitsNeeded = dec.bitsNeeded;
  let pos = dec.pos;
  for (let idx = from; idx < to; idx++) {
    const cls = neighbourClass(previous);
    let c = sigBase + (dqLevels === null ? 0 : 3 * state) + cls;
    let bin = 0;
    {
      const a = A[c]!;
      const b = B[c]!;
      const s = b + (a << 4);
      const lps = LPS_BY_STATE[((s >> 7) << 3) + (range >> 5) + 248]!;
      range -= lps;
      const scaled = range << 7;
      const isLps = (scaled - value - 1) >> 31; // −1 when value ≥ scaled
      value -= scaled & isLps;
      range ^= (range ^ lps) & isLps;
      bin = ((~s >>> 31) ^ isLps) & 1;
      const t = Math.clz32(range) - 23;
      range <<= t;
      value <<= t;
      bitsNeeded += t;
      if (bitsNeeded >= 0) {
        value += (pos < end ? data[pos]! : 0) << bitsNeeded;
        pos++;
        bitsNeeded -= 8;
      }
      A[c] = NEXT_A[RA[c]! + (bin << 8) + a]!;
      B[c] = NEXT_B[RB[c]! + (bin << 12) + b]!;
    }
    let k = 0;
    if (bin) {
      c = signBase + cls;
      {
        const a = A[c]!;
        const b = B[c]!;
        const s = b + (a << 4);
        const lps = LPS_BY_STATE[((s >> 7) << 3) + (range >> 5) + 248]!;
        range -= lps;
        const scaled = range << 7;
        const isLps = (scaled - value - 1) >> 31; // −1 when value ≥ scaled
        value -= scaled & isLps;
        range ^= (range ^ lps) & isLps;
        bin = ((~s >>> 31) ^ isLps) & 1;
        const t = Math.clz32(range) - 23;
        range <<= t;
        value <<= t;
        bitsNeeded += t;
        if (bitsNeeded >= 0) {
          value += (pos < end ? data[pos]! : 0) << bitsNeeded;
          pos++;
          bitsNeeded -= 8;
        }
        A[c] = NEXT_A[RA[c]! + (bin << 8) + a]!;
        B[c] = NEXT_B[RB[c]! + (bin << 12) + b]!;
      }
      const runBase = bin * runLen;
      let j = 0;
      for (;;) {
        c = run[runBase + j]!;
        {
          const a = A[c]!;
          const b = B[c]!;
          const s = b + (a << 4);
          const lps = LPS_BY_STATE[((s >> 7) << 3) + (range >> 5) + 248]!;
          range -= lps;
          const scaled = range << 7;
          if (value < scaled) {
            bin = ~s >>> 31;
            if (range < 256) {
              range <<= 1;
              value <<= 1;
              if (++bitsNeeded === 0) {
                bitsNeeded = -8;
                value += pos < end ? data[pos]! : 0;
                pos++;
              }
            }
          } else {
            bin = s >>> 31;
            const t = Math.clz32(lps) - 23;
            value = (value - scaled) << t;
            range = lps << t;
            bitsNeeded += t;
            if (bitsNeeded >= 0) {
              value += (pos < end ? data[pos]! : 0) << bitsNeeded;
              pos++;
              bitsNeeded -= 8;
            }
          }
          A[c] = NEXT_A[RA[c]! + (bin << 8) + a]!;
          B[c] = NEXT_B[RB[c]! + (bin << 12) + b]!;
        }
        if (bin === 0) break;
        if (++j === runLen) {
          throw new DecodeError("corrupt", "Level remainder prefix is too long", pos);
        }
      }
      let m = j + 1;
      if (j >= numGtx) {
        // Exp-Golomb remainder: e prefix ones, then e bypass bins (CODING.md 1.4).
        const e = j - numGtx;
        let suffix = 0;
        for (let t = 0; t < e; t++) {
          value <<= 1;
          if (++bitsNeeded >= 0) {
            bitsNeeded = -8;
            value += pos < end ? data[pos]! : 0;
            pos++;
          }
          const scaled = range << 7;
          suffix <<= 1;
          if (value >= scaled) {
            value -= scaled;
            suffix |= 1;
          }
        }
        m = numGtx + 2 ** e + suffix;
        if (m > (runBase === 0 ? 2 ** 31 - 1 : 2 ** 31)) {
          throw new DecodeError("corrupt", "Level does not fit in 32 bits", pos);
        }
      }
      k = runBase === 0 ? m : -m;
    }
    coded[idx] = k;
    if (dqLevels !== null) {
      dqLevels[idx] = dqReconstructionIndex(k, state);
      state = DQ_NEXT_STATE[2 * state + (k & 1)]!;
    }
    previous = k;
  }
  dec.value = value;
  dec.range = range;
  dec.bitsNeeded = bitsNeeded;
  dec.pos = pos;
  if (pos > end + OVERRUN_SLACK) throw new DecodeError("truncated", "Payload is truncated", end);
  return state;
}
