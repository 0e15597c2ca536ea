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
import {
  blockRowElements,
  matrixView,
  rangeResetBeforeFirstRow,
  type ScanPlan,
  scanPlan,
} from "../core/scan.ts";
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
  /** The entry points the NDU header signals: each is checked where decoding crosses it. */
  readonly entryPoints?: readonly EntryPoint[];
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
  const rows = new BlockRowDecoder(data, params, {
    limits,
    ...(options.entryPoints ? { entryPoints: options.entryPoints } : {}),
  });
  // Without DQ the coded levels are the levels; with DQ, unless asked for, the coded level is
  // written and then overwritten by the level in the same array (each is read only once).
  const levels = new Int32Array(rows.elements);
  const keepCoded = options.codedLevels !== false && params.dqFlag === 1;
  const coded = keepCoded ? new Int32Array(rows.elements) : levels;
  while (rows.nextRow < rows.blockRows) {
    const [start, end] = rows.nextElements();
    rows.decodeNext(coded.subarray(start, end), levels.subarray(start, end));
  }
  return {
    qp: rows.qp,
    step: rows.step,
    levels,
    codedLevels: options.codedLevels === false ? null : keepCoded ? coded : levels,
    recon: options.reconstruct === false ? null : reconstruct(levels, rows.step),
    bytesConsumed: rows.finish(),
    entryPoints: rows.entryPoints,
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
  const rows = new BlockRowDecoder(data, params, { limits, entryPoints, from: j });
  const [start, end] = rows.nextElements();
  // As in decodePayload: with DQ each coded level is overwritten by its level in one array.
  const levels = new Int32Array(end - start);
  rows.decodeNext(levels, levels);
  const width = rows.plan.width;
  return {
    firstRow: start / Math.max(1, width),
    rows: (end - start) / Math.max(1, width),
    levels,
    recon: reconstruct(levels, rows.step),
  };
}

/** Options of {@linkcode BlockRowDecoder}. */
export interface BlockRowDecoderOptions {
  /** Size limits. */
  readonly limits?: DecodeLimits;
  /**
   * The signalled entry points (from the NDU header): needed to start past block row 0, and
   * checked against those the decoding derives at every block row it crosses.
   */
  readonly entryPoints?: readonly EntryPoint[];
  /** The first block row to decode (default 0); past 0 the decoder starts at its entry point. */
  readonly from?: number;
}

/**
 * Decodes a payload one block row at a time, from its start or from a block row's entry point
 * (CODING.md 6.1 and 6.4): the building block of whole-payload decoding, of decoding block rows
 * in parallel and of decoding as bytes arrive. Block row j of a tensor is the contiguous element
 * range {@linkcode BlockRowDecoder.rowElements}(j) of its row-major layout (scan 0: one block
 * row, the whole tensor).
 *
 * `data` may be a buffer that is still being filled: the head needs
 * {@linkcode BlockRowDecoder.headBytes} bytes, and block row j its
 * {@linkcode BlockRowDecoder.bytesBefore}(j + 1) bytes.
 *
 * @example Rows 2.. of a block-scanned payload from their entry point
 * ```ts
 * import { BlockRowDecoder, decodePayload } from "./decode_payload.ts";
 * import { encodePayload } from "../encoder/encode_payload.ts";
 * import assert from "node:assert/strict";
 *
 * const params = {
 *   shape: [40, 12], payloadType: "float", dqFlag: 1, numGtxFlags: 11, scanOrder: 1,
 *   qpDensity: 2, mpsQp: 0, syntax: "nnc1", profileIdc: 0,
 * } as const;
 * const k = Int32Array.from({ length: 480 }, (_, i) => (i * 7) % 11 - 5);
 * const { bytes } = encodePayload(k, { ...params, qp: -30, valuesAreCodedLevels: true });
 * const whole = decodePayload(bytes, params);
 * const rows = new BlockRowDecoder(bytes, params, { entryPoints: whole.entryPoints, from: 2 });
 * const levels = new Int32Array(480);
 * while (rows.nextRow < rows.blockRows) {
 *   const [start, end] = rows.nextElements();
 *   rows.decodeNext(levels.subarray(start, end), levels.subarray(start, end));
 * }
 * rows.finish();
 * assert.deepEqual(levels.subarray(16 * 12), whole.levels.subarray(16 * 12));
 * ```
 */
export class BlockRowDecoder {
  /** The scan geometry. */
  readonly plan: ScanPlan;
  /** Number of elements. */
  readonly elements: number;
  /** Number of block rows. */
  readonly blockRows: number;
  /** The signalled qp (float payloads), else null. */
  readonly qp: number | null;
  /** The float32 step size (float payloads), else null. */
  readonly step: number | null;
  /** Entry points derived so far (of the block rows this decoder crossed into). */
  readonly entryPoints: EntryPoint[] = [];
  readonly #params: PayloadParams;
  readonly #dec: BinDecoder;
  readonly #head: PayloadHead;
  readonly #signalled: readonly EntryPoint[] | undefined;
  /** Bit position of each block row's start, where known (from the head and entry points). */
  readonly #starts: number[];
  #next: number;
  /** The next matrix row to decode. */
  #row: number;
  #state = 0;
  #previous = 0;

  /**
   * Decodes the payload head and, for `from` > 0, moves to that block row's entry point.
   *
   * @param data The payload (its first {@linkcode BlockRowDecoder.headBytes} bytes at least).
   * @param params How it was coded.
   * @param options Limits, signalled entry points, first block row.
   * @throws {DecodeError} If the parameters, head or entry points are corrupt.
   * @throws {RangeError} If `from` is not a block row.
   */
  constructor(data: Uint8Array, params: PayloadParams, options: BlockRowDecoderOptions = {}) {
    this.elements = validatePayloadParams(params, options.limits, data.length);
    this.#params = params;
    this.plan = scanPlan(params.shape, params.scanOrder, false);
    this.blockRows = this.plan.blockRowStarts.length;
    const from = options.from ?? 0;
    if (!Number.isInteger(from) || from < 0 || from >= this.blockRows) {
      throw new RangeError(`Block row ${from} is not in 0..${this.blockRows - 1}`);
    }
    const signalled = options.entryPoints;
    if (signalled && signalled.length !== this.blockRows - 1) {
      throw new DecodeError(
        "corrupt",
        `Payload has ${this.blockRows} block rows but ${signalled.length} entry points`,
        0,
      );
    }
    if (from > 0 && !signalled) {
      throw new RangeError("Starting past block row 0 needs entry points");
    }
    this.#signalled = signalled;
    this.#dec = new BinDecoder(data);
    this.#head = readPayloadHead(this.#dec, params, this.plan);
    this.qp = this.#head.qp;
    this.step = this.#head.step;
    this.#starts = [this.#dec.bitPosition()];
    if (signalled) {
      for (const e of signalled) this.#starts.push(this.#starts.at(-1)! + e.bitOffsetDelta);
    }
    this.#next = from;
    this.#row = this.rowElements(from)[0] / Math.max(1, this.plan.width);
    if (from > 0) {
      const entry = signalled![from - 1]!;
      this.#dec.seek(this.#starts[from]!, entry.value8);
      this.#state = entry.dqState;
    }
  }

  /**
   * An upper bound on the bytes the head of a payload reads, from its parameters alone: the qp
   * offset, the row-skip flags, then per context an eco flag and its 3-bit set, a context-coded
   * bin shifting at most 8 bits.
   *
   * @param params How the payload was coded.
   * @returns The bytes to have before constructing a decoder.
   */
  static headBytes(params: PayloadParams): number {
    const [height] = matrixView(params.shape);
    const layout = contextLayout(params.numGtxFlags, params.dqFlag === 1, params.syntax);
    const bits = 16 + (params.payloadType === "float" ? 6 + params.qpDensity : 0) +
      (params.syntax === "nnc2" ? 1 + 8 * height : 0) + 11 * layout.total;
    return Math.ceil(bits / 8) + OVERRUN_SLACK + 1;
  }

  /**
   * The bytes of the payload that decoding up to the start of block row `j` reads (the whole
   * payload for `j` = {@linkcode BlockRowDecoder.blockRows}); needs the signalled entry points.
   *
   * @param j A block row, 1..blockRows.
   * @returns A byte count.
   */
  bytesBefore(j: number): number {
    if (j >= this.blockRows || !this.#signalled) return this.#dec.end - this.#dec.start;
    // At bit position P = 8·pos − 8 + B with B ≥ −8 (CODING.md 1.8) it has read ≤ P / 8 + 2 bytes.
    return Math.min(this.#dec.end - this.#dec.start, (this.#starts[j]! >> 3) + 3);
  }

  /**
   * The element range of block row `j` in the tensor's row-major layout.
   *
   * @param j A block row.
   * @returns `[start, end)`.
   */
  rowElements(j: number): [number, number] {
    return blockRowElements(this.plan, j, j + 1);
  }

  /** The block row being decoded next (`blockRows` once all are). */
  get nextRow(): number {
    return this.#next;
  }

  /**
   * The elements {@linkcode BlockRowDecoder.decodeNext} decodes next: the rest of the current
   * block row; in scan 0, whose one block row is the whole tensor, only as many matrix rows as
   * fit in `maxElements` (at least one).
   *
   * @param maxElements Most elements wanted (scan 0).
   * @returns `[start, end)` in the tensor's row-major layout.
   */
  nextElements(maxElements = Infinity): [number, number] {
    const { width, height } = this.plan;
    const [, blockEnd] = this.rowElements(this.#next);
    const rows = this.plan.blockSize === 0 ? Math.max(1, Math.floor(maxElements / width)) : height;
    return [this.#row * width, Math.min(blockEnd, (this.#row + rows) * width)];
  }

  /**
   * Decodes the elements {@linkcode BlockRowDecoder.nextElements}`(maxElements)` names into
   * `coded` (coded levels) and `levels` (reconstruction indices; with DQ may be the same array as
   * `coded`, without DQ it is not written), both of that length.
   *
   * @param coded Receives the coded levels.
   * @param levels Receives the levels (with DQ).
   * @param maxElements Most elements to decode (scan 0).
   * @throws {DecodeError} If the payload is corrupt or an entry point does not match.
   */
  decodeNext(coded: Int32Array, levels: Int32Array, maxElements = Infinity): void {
    if (this.#next >= this.blockRows) throw new RangeError("Every block row is decoded");
    const [start, end] = this.nextElements(maxElements);
    const width = this.plan.width;
    const after = decodeRowLevels(
      this.#dec,
      this.#head,
      this.#params,
      this.plan,
      this.#row,
      end / width,
      { state: this.#state, previous: this.#previous },
      coded,
      levels,
      start,
    );
    this.#state = after.state;
    this.#previous = after.previous;
    this.#row = end / width;
    if (end < this.rowElements(this.#next)[1]) return;
    // The block row is complete: the neighbour restarts, and the next block row is entered.
    this.#previous = 0;
    this.#next++;
    if (this.#next < this.blockRows) this.#cross(this.#next);
  }

  /**
   * After the last block row: checks the terminating bin and stop bit.
   *
   * @returns Bytes consumed.
   * @throws {DecodeError} If the payload does not end there.
   */
  finish(): number {
    if (this.#next !== this.blockRows) throw new RangeError("Block rows remain to be decoded");
    finishPayload(this.#dec);
    return this.#dec.finish();
  }

  /**
   * The transition into block row `j` (CODING.md 6.1 step 6): contexts reset, range 256; the
   * entry point it derives is recorded and checked against the signalled one.
   */
  #cross(j: number): void {
    this.#head.ctx.reset();
    this.#dec.range = 256;
    const p = this.#dec.bitPosition();
    const entry = {
      bitOffsetDelta: p - (this.#starts[j - 1] ?? p),
      value8: this.#dec.value >> 7,
      dqState: this.#state,
    };
    this.#starts[j] ??= p;
    this.entryPoints.push(entry);
    const s = this.#signalled?.[j - 1];
    if (
      s && (s.bitOffsetDelta !== entry.bitOffsetDelta || s.value8 !== entry.value8 ||
        s.dqState !== entry.dqState || this.#starts[j] !== p)
    ) {
      throw new DecodeError("corrupt", `Entry point of block row ${j} does not match`, 0);
    }
  }
}

/** What precedes the levels: the qp, the row-skip flags and the estimator sets. */
interface PayloadHead {
  readonly qp: number | null;
  readonly step: number | null;
  readonly rowSkip: Uint8Array | null;
  readonly layout: ContextLayout;
  readonly numGtx: number;
  readonly ctx: ContextStates;
  /** The contexts of a level's run of bins after its sign (`runContexts()`). */
  readonly run: Int32Array;
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
  return { qp, step, rowSkip, layout, numGtx: params.numGtxFlags, ctx, run: runContexts(layout) };
}

/**
 * Decodes the levels of matrix rows `[r0, r1)`: a whole block row, or (scan 0) any rows of the one
 * block row, starting with DQ state `state` and neighbour `previous`, into `coded` (and the
 * reconstruction indices into `levels` with DQ); element i of the tensor goes to index i − `base`.
 * Returns the DQ state and the neighbour after them.
 */
function decodeRowLevels(
  dec: BinDecoder,
  head: PayloadHead,
  params: PayloadParams,
  plan: ScanPlan,
  r0: number,
  r1: number,
  start: { state: number; previous: number },
  coded: Int32Array,
  levels: Int32Array,
  base: number,
): { state: number; previous: number } {
  const { width, blockSize } = plan;
  const bw = blockSize === 0 ? width : blockSize;
  const run = head.run;
  const dq = params.dqFlag === 1 ? levels : null;
  let { state, previous } = start;
  for (let c0 = 0; c0 < width; c0 += bw) {
    const c1 = Math.min(width, c0 + bw);
    for (let r = r0; r < r1; r++) {
      const from = r * width + c0 - base;
      if (head.rowSkip !== null && head.rowSkip[r]) {
        // A skipped segment is zeros; it advances DQ W times and keeps the neighbour (CODING.md
        // 6.3).
        coded.fill(0, from, from + c1 - c0);
        if (dq) dq.fill(0, from, from + c1 - c0);
        for (let i = 0; i < width; i++) state = DQ_NEXT_STATE[2 * state]!;
        continue;
      }
      state = decodeSegment(dec, head, run, coded, dq, from, from + c1 - c0, previous, state);
      previous = coded[from + c1 - c0 - 1]!;
    }
  }
  return { state, previous };
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
