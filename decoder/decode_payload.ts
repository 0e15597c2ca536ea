/**
 * Decoding of one tensor's DeepCABAC payload (the data of an NNR compressed data unit).
 *
 * @module
 */
import { BinDecoder } from "../core/_bin_decoder.ts";
import { adapt, ContextStates, lpsRange, RENORM_SHIFT } from "../core/context_model.ts";
import { DQ_NEXT_STATE } from "../core/dependent_quantization.ts";
import { DecodeError } from "../core/errors.ts";
import { scanPlan } from "../core/scan.ts";
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

/** A decoded tensor payload. */
export interface DecodedPayload {
  /** The qp signalled in the payload (float payloads), else `null`. */
  readonly qp: number | null;
  /** The float32 step size (float payloads), else `null`. */
  readonly step: number | null;
  /** Reconstruction indices (float) or the integers themselves (int), in tensor layout. */
  readonly levels: Int32Array<ArrayBuffer>;
  /** The levels as coded by the binarisation (differs from `levels` only with DQ). */
  readonly codedLevels: Int32Array<ArrayBuffer>;
  /** The reconstructed tensor: `float32(level) × step` for float payloads, integers otherwise. */
  readonly recon: Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer>;
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
 * assert.equal(out.recon[3], 40 * 2 ** -8);
 * ```
 */
export function decodePayload(
  data: Uint8Array,
  params: PayloadParams,
  limits: DecodeLimits = {},
): DecodedPayload {
  const n = validatePayloadParams(params, limits);
  const plan = scanPlan(params.shape, params.scanOrder);
  const { height, width, blockSize } = plan;
  const dq = params.dqFlag === 1;
  const dec = new BinDecoder(data);

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
  if (params.syntax === "nnc2" && params.profileIdc === 1 && width > 1 && height > 1) {
    if (dec.decodeBypass()) {
      rowSkip = new Uint8Array(height);
      const rowCtx = new ContextStates(1);
      for (let r = 0; r < height; r++) rowSkip[r] = dec.decodeBin(rowCtx, 0);
    }
  }

  const layout = contextLayout(params.numGtxFlags, dq, params.syntax);
  const ctx = new ContextStates(layout.total);
  const ecoCtx = new ContextStates(1);
  for (let c = 0; c < layout.total; c++) {
    if (dec.decodeBin(ecoCtx, 0)) ctx.setParameterSet(c, dec.decodeBypassBits(3) + 1);
  }

  const blockRows = plan.blockRowStarts.length;
  if (plan.effectiveScanOrder > 0 && (params.syntax === "nnc1" || blockRows > 1)) dec.range = 256;

  const coded = new Int32Array(n);
  const levels = new Int32Array(n);
  const entryPoints: EntryPoint[] = [];
  const bw = blockSize === 0 ? width : blockSize;
  const bh = blockSize === 0 ? height : blockSize;
  let state = 0;
  let lastP = dec.bitPosition();
  for (let br = 0; br < blockRows; br++) {
    if (br > 0) {
      ctx.reset();
      dec.range = 256;
      const p = dec.bitPosition();
      entryPoints.push({ bitOffsetDelta: p - lastP, value8: dec.value >> 7, dqState: state });
      lastP = p;
    }
    let previous = 0;
    const r0 = br * bh;
    const r1 = Math.min(height, r0 + bh);
    for (let c0 = 0; c0 < width; c0 += bw) {
      const c1 = Math.min(width, c0 + bw);
      for (let r = r0; r < r1; r++) {
        if (rowSkip !== null && rowSkip[r]) {
          for (let i = 0; i < width; i++) state = DQ_NEXT_STATE[2 * state]!;
          previous = 0;
          continue;
        }
        const packed = decodeSegment(
          dec,
          ctx,
          layout,
          params.numGtxFlags,
          coded,
          dq ? levels : null,
          r * width + c0,
          r * width + c1,
          previous,
          state,
        );
        previous = segmentPrevious;
        state = packed;
      }
    }
  }

  if (!dq) levels.set(coded);
  if (dec.decodeTerminate() !== 1) {
    throw new DecodeError(
      "corrupt",
      "Payload has no terminating bin after the last level",
      dec.pos,
    );
  }
  const bytesConsumed = dec.finish();

  let recon: Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer>;
  if (step === null) {
    recon = levels.slice();
  } else {
    const f = new Float32Array(n);
    const s = Math.fround(step);
    for (let i = 0; i < n; i++) f[i] = Math.fround(levels[i]!) * s;
    recon = f;
  }
  return { qp, step, levels, codedLevels: coded, recon, bytesConsumed, entryPoints };
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
