/**
 * Decoding of one tensor's DeepCABAC payload (the data of an NNR compressed data unit).
 *
 * @module
 */
import { BinDecoder } from "../core/_bin_decoder.ts";
import { adapt, ContextStates, lpsRange, RENORM_SHIFT } from "../core/context_model.ts";
import { DQ_NEXT_STATE } from "../core/dependent_quantization.ts";
import { DecodeError } from "../core/errors.ts";
import { type ScanPlan, scanPlan } from "../core/scan.ts";
import { stepSize } from "../core/step_size.ts";
import {
  type ContextLayout,
  contextLayout,
  type EntryPoint,
  MAX_GTX_FLAGS,
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
const MAX_REMAINDER_PREFIX = 31;

/** Checks payload parameters that come from an untrusted header. */
export function validatePayloadParams(params: PayloadParams, limits: DecodeLimits = {}): number {
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
  const n = validatePayloadParams(params, limits);
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
    state = decodeBlockRowLevels(dec, head, params, plan, br, state, coded, levels);
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
  validatePayloadParams(params, limits);
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
  const n = plan.height * plan.width;
  // As in decodePayload: with DQ each coded level is overwritten by its level in one array.
  const levels = new Int32Array(n);
  decodeBlockRowLevels(dec, head, params, plan, j, state, levels, levels);
  const region = levels.slice(
    firstRow * plan.width,
    (firstRow + rows) * plan.width,
  );
  return { firstRow, rows, levels: region, recon: reconstruct(region, head.step) };
}

/** What precedes the levels: the qp, the row-skip flags and the estimator sets. */
interface PayloadHead {
  readonly qp: number | null;
  readonly step: number | null;
  readonly rowSkip: Uint8Array | null;
  readonly layout: ContextLayout;
  readonly ctx: ContextStates;
}

/** Decodes the qp offset, the row-skip flags and the eco flags, up to the first level. */
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
    if (dec.decodeBin(ecoCtx, 0)) ctx.setParameterSet(c, dec.decodeBypassBits(3) + 1);
  }
  const blockRows = plan.blockRowStarts.length;
  if (plan.effectiveScanOrder > 0 && (params.syntax === "nnc1" || blockRows > 1)) dec.range = 256;
  return { qp, step, rowSkip, layout, ctx };
}

/** Decodes the levels of block row `br` into `coded` (and `levels` with DQ); returns the DQ state. */
function decodeBlockRowLevels(
  dec: BinDecoder,
  head: PayloadHead,
  params: PayloadParams,
  plan: ScanPlan,
  br: number,
  state: number,
  coded: Int32Array,
  levels: Int32Array,
): number {
  const { height, width, blockSize } = plan;
  const bw = blockSize === 0 ? width : blockSize;
  const bh = blockSize === 0 ? height : blockSize;
  const dq = params.dqFlag === 1;
  let previous = 0;
  const r0 = br * bh;
  const r1 = Math.min(height, r0 + bh);
  for (let c0 = 0; c0 < width; c0 += bw) {
    const c1 = Math.min(width, c0 + bw);
    for (let r = r0; r < r1; r++) {
      if (head.rowSkip !== null && head.rowSkip[r]) {
        for (let i = 0; i < width; i++) state = DQ_NEXT_STATE[2 * state]!;
        previous = 0;
        continue;
      }
      state = decodeSegment(
        dec,
        head.ctx,
        head.layout,
        params.numGtxFlags,
        coded,
        dq ? levels : null,
        r * width + c0,
        r * width + c1,
        previous,
        state,
      );
      previous = segmentPrevious;
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

/** The last coded level of the segment most recently decoded by {@linkcode decodeSegment}. */
let segmentPrevious = 0;

/**
 * Decodes the levels of elements `[from, to)` (one row segment, consecutive in memory) with the
 * DeepCABAC binarisation. This is the hot loop: the engine registers live in locals and the
 * context-coded bin decode is written out for each syntax element. Returns the DQ state after
 * the segment and leaves the last level in `segmentPrevious`.
 */
function decodeSegment(
  dec: BinDecoder,
  ctx: ContextStates,
  layout: ContextLayout,
  numGtx: number,
  coded: Int32Array,
  dqLevels: Int32Array | null,
  from: number,
  to: number,
  previous: number,
  state: number,
): number {
  const sA = ctx.stateA;
  const sB = ctx.stateB;
  const shA = ctx.shiftA;
  const shB = ctx.shiftB;
  const sigBase = layout.sig;
  const signBase = layout.sign;
  const gtxBase = layout.gtx;
  const remBase = layout.rem;
  const lastRem = layout.remCount - 1;
  let value = dec.value;
  let range = dec.range;
  let bitsNeeded = dec.bitsNeeded;
  const data = dec.data;
  const safeEnd = dec.end; // below this, bytes can be read without the overrun check
  let pos = dec.pos;
  let c = 0;
  let bin = 0;
  for (let idx = from; idx < to; idx++) {
    const cls = previous === 0 ? 0 : previous < 0 ? 1 : 2;
    // --- significance flag
    c = sigBase + (dqLevels === null ? 0 : 3 * state) + cls;
    {
      const sum = sA[c]! + sB[c]!;
      let q = (sum >> 8) & 0xff;
      bin = q >> 7;
      if (bin) q ^= 0xff;
      const lps = lpsRange(q, range);
      range -= lps;
      const scaled = range << 7;
      if (value < scaled) {
        if (range < 256) {
          range <<= 1;
          value <<= 1;
          if (++bitsNeeded === 0) {
            bitsNeeded = -8;
            value |= pos < safeEnd ? data[pos++]! : (dec.pos = pos, pos++, dec.readByte());
          }
        }
      } else {
        bin ^= 1;
        const n = RENORM_SHIFT[lps]!;
        value = (value - scaled) << n;
        range = lps << n;
        bitsNeeded += n;
        if (bitsNeeded >= 0) {
          value += (pos < safeEnd ? data[pos++]! : (dec.pos = pos, pos++, dec.readByte())) <<
            bitsNeeded;
          bitsNeeded -= 8;
        }
      }
      sA[c] = adapt(sA[c]!, shA[c]!, bin);
      sB[c] = adapt(sB[c]!, shB[c]!, bin);
    }
    let k = 0;
    if (bin) {
      // --- sign flag
      c = signBase + cls;
      {
        const sum = sA[c]! + sB[c]!;
        let q = (sum >> 8) & 0xff;
        bin = q >> 7;
        if (bin) q ^= 0xff;
        const lps = lpsRange(q, range);
        range -= lps;
        const scaled = range << 7;
        if (value < scaled) {
          if (range < 256) {
            range <<= 1;
            value <<= 1;
            if (++bitsNeeded === 0) {
              bitsNeeded = -8;
              value |= pos < safeEnd ? data[pos++]! : (dec.pos = pos, pos++, dec.readByte());
            }
          }
        } else {
          bin ^= 1;
          const n = RENORM_SHIFT[lps]!;
          value = (value - scaled) << n;
          range = lps << n;
          bitsNeeded += n;
          if (bitsNeeded >= 0) {
            value += (pos < safeEnd ? data[pos++]! : (dec.pos = pos, pos++, dec.readByte())) <<
              bitsNeeded;
            bitsNeeded -= 8;
          }
        }
        sA[c] = adapt(sA[c]!, shA[c]!, bin);
        sB[c] = adapt(sB[c]!, shB[c]!, bin);
      }
      const negative = bin;
      let magnitude = 1;
      let g = 0;
      // --- greater-than flags
      for (; g < numGtx; g++) {
        c = gtxBase + 2 * g + negative;
        const sum = sA[c]! + sB[c]!;
        let q = (sum >> 8) & 0xff;
        bin = q >> 7;
        if (bin) q ^= 0xff;
        const lps = lpsRange(q, range);
        range -= lps;
        const scaled = range << 7;
        if (value < scaled) {
          if (range < 256) {
            range <<= 1;
            value <<= 1;
            if (++bitsNeeded === 0) {
              bitsNeeded = -8;
              value |= pos < safeEnd ? data[pos++]! : (dec.pos = pos, pos++, dec.readByte());
            }
          }
        } else {
          bin ^= 1;
          const n = RENORM_SHIFT[lps]!;
          value = (value - scaled) << n;
          range = lps << n;
          bitsNeeded += n;
          if (bitsNeeded >= 0) {
            value += (pos < safeEnd ? data[pos++]! : (dec.pos = pos, pos++, dec.readByte())) <<
              bitsNeeded;
            bitsNeeded -= 8;
          }
        }
        sA[c] = adapt(sA[c]!, shA[c]!, bin);
        sB[c] = adapt(sB[c]!, shB[c]!, bin);
        if (!bin) break;
        magnitude++;
      }
      if (g === numGtx) {
        // --- Exp-Golomb remainder: context-coded prefix, bypass suffix
        let prefix = 0;
        for (;;) {
          c = remBase + (prefix < lastRem ? prefix : lastRem);
          const sum = sA[c]! + sB[c]!;
          let q = (sum >> 8) & 0xff;
          bin = q >> 7;
          if (bin) q ^= 0xff;
          const lps = lpsRange(q, range);
          range -= lps;
          const scaled = range << 7;
          if (value < scaled) {
            if (range < 256) {
              range <<= 1;
              value <<= 1;
              if (++bitsNeeded === 0) {
                bitsNeeded = -8;
                value |= pos < safeEnd ? data[pos++]! : (dec.pos = pos, pos++, dec.readByte());
              }
            }
          } else {
            bin ^= 1;
            const n = RENORM_SHIFT[lps]!;
            value = (value - scaled) << n;
            range = lps << n;
            bitsNeeded += n;
            if (bitsNeeded >= 0) {
              value += (pos < safeEnd ? data[pos++]! : (dec.pos = pos, pos++, dec.readByte())) <<
                bitsNeeded;
              bitsNeeded -= 8;
            }
          }
          sA[c] = adapt(sA[c]!, shA[c]!, bin);
          sB[c] = adapt(sB[c]!, shB[c]!, bin);
          if (!bin) break;
          if (++prefix > MAX_REMAINDER_PREFIX) {
            throw new DecodeError("corrupt", "Level remainder prefix is too long", pos);
          }
        }
        dec.value = value;
        dec.range = range;
        dec.bitsNeeded = bitsNeeded;
        dec.pos = pos;
        magnitude += 2 ** prefix - 1 + dec.decodeBypassBits(prefix);
        value = dec.value;
        bitsNeeded = dec.bitsNeeded;
        pos = dec.pos;
        if (magnitude > 2 ** 31 - (negative ? 0 : 1)) {
          throw new DecodeError("corrupt", "Level does not fit in 32 bits", pos);
        }
      }
      k = negative ? -magnitude : magnitude;
    }
    coded[idx] = k;
    if (dqLevels !== null) {
      dqLevels[idx] = k === 0 ? 0 : k > 0 ? 2 * k - (state & 1) : 2 * k + (state & 1);
      state = DQ_NEXT_STATE[2 * state + (k & 1)]!;
    }
    previous = k;
  }
  dec.value = value;
  dec.range = range;
  dec.bitsNeeded = bitsNeeded;
  dec.pos = pos;
  segmentPrevious = previous;
  return state;
}
