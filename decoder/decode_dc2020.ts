/**
 * Decoding of DeepCABAC-2020 streams: the format of the paper's original code, several tensors
 * in one arithmetic-coded stream with no container.
 *
 * @module
 */
import { BinDecoder } from "../core/_bin_decoder.ts";
import { MAX_REMAINDER_PREFIX } from "../core/_run_contexts.ts";
import { ContextStates, MAX_BINS_PER_BYTE } from "../core/context_model.ts";
import { DecodeError } from "../core/errors.ts";
import { contextLayout, DC2020_CONTEXTS, neighbourClass } from "../core/syntax.ts";

/** One tensor of a DeepCABAC-2020 stream. */
export interface Dc2020Tensor {
  /** Shape signalled in the stream (1, 2 or 4 dimensions). */
  readonly shape: number[];
  /** Float32 step size signalled in the stream. */
  readonly step: number;
  /** Integer levels, row-major. */
  readonly levels: Int32Array<ArrayBuffer>;
  /** `float32(level) × step`. */
  readonly recon: Float32Array<ArrayBuffer>;
}

/** Result of decoding a DeepCABAC-2020 stream. */
export interface Dc2020Stream {
  /** The tensors in stream order. */
  readonly tensors: Dc2020Tensor[];
  /** Bytes consumed, up to the stop bit. */
  readonly bytesConsumed: number;
}

const DIMS_BY_CODE = [1, 2, 4, -1] as const;
const DEFAULT_MAX_ELEMENTS = 2 ** 28;

/**
 * Decodes `tensorCount` tensors from a DeepCABAC-2020 stream. The stream does not carry the
 * count, so the caller must know it.
 *
 * @param data The stream bytes.
 * @param tensorCount How many tensors to decode.
 * @param maxElements Limit on the elements of each tensor (default 2^28).
 * @returns The tensors.
 * @throws {DecodeError} If the stream is truncated or corrupt.
 */
export function decodeDc2020(
  data: Uint8Array,
  tensorCount: number,
  maxElements = DEFAULT_MAX_ELEMENTS,
): Dc2020Stream {
  const dec = new BinDecoder(data);
  // One pool of contexts for the whole stream, never reset (CODING.md 8.2): its layout is that
  // of a first-edition payload without DQ for the current tensor's N, so REM moves with N.
  const ctx = new ContextStates(DC2020_CONTEXTS);
  const tensors: Dc2020Tensor[] = [];
  let elements = 0;
  for (let t = 0; t < tensorCount; t++) {
    const numGtx = dec.decodeBypassBits(4) + 4;
    const ndim = DIMS_BY_CODE[dec.decodeBypassBits(2)]!;
    if (ndim < 0) {
      throw new DecodeError("corrupt", `Tensor ${t} has an invalid dimension code`, dec.pos);
    }
    const shape: number[] = [];
    for (let i = 0; i < ndim; i++) shape.push(dec.decodeBypassBits(16));
    const low = dec.decodeBypassBits(16);
    const high = dec.decodeBypassBits(16);
    const bitsView = new DataView(new ArrayBuffer(4));
    bitsView.setUint32(0, high * 65536 + low);
    const step = bitsView.getFloat32(0);
    const n = shape.reduce((a, b) => a * b, 1);
    if (n > maxElements) {
      throw new DecodeError(
        "limit",
        `Tensor ${t} has ${n} elements, more than the limit ${maxElements}`,
        dec.pos,
      );
    }
    // Every element costs at least one context-coded bin.
    elements += n;
    if (elements > MAX_BINS_PER_BYTE * (data.length + 1)) {
      throw new DecodeError(
        "corrupt",
        `Tensor ${t} cannot be coded in a stream of ${data.length} bytes`,
        dec.pos,
      );
    }
    const layout = contextLayout(numGtx, false, "nnc1");
    const width = ndim === 1 ? 1 : n / shape[0]!;
    const levels = new Int32Array(n);
    let previous = 0;
    for (let i = 0; i < n; i++) {
      if (i % width === 0) previous = 0;
      const cls = neighbourClass(previous);
      let level = 0;
      if (dec.decodeBin(ctx, layout.sig + cls)) {
        const negative = dec.decodeBin(ctx, layout.sign + cls);
        let magnitude = 1;
        let g = 0;
        for (; g < numGtx; g++) {
          if (!dec.decodeBin(ctx, layout.gtx + 2 * g + negative)) break;
          magnitude++;
        }
        if (g === numGtx) {
          let e = 0;
          while (dec.decodeBin(ctx, layout.rem + e)) {
            if (++e > MAX_REMAINDER_PREFIX) {
              throw new DecodeError("corrupt", "Level remainder prefix is too long", dec.pos);
            }
          }
          magnitude += 2 ** e - 1 + dec.decodeBypassBits(e);
          if (magnitude > 2 ** 31 - 1 + negative) {
            throw new DecodeError("corrupt", "Level does not fit in 32 bits", dec.pos);
          }
        }
        level = negative ? -magnitude : magnitude;
      }
      levels[i] = level;
      previous = level;
    }
    const recon = new Float32Array(n);
    for (let i = 0; i < n; i++) recon[i] = Math.fround(levels[i]!) * step;
    tensors.push({ shape, step, levels, recon });
  }
  if (dec.decodeTerminate() !== 1) {
    throw new DecodeError(
      "corrupt",
      "Stream has no terminating bin after the last tensor",
      dec.pos,
    );
  }
  return { tensors, bytesConsumed: dec.finish() };
}
