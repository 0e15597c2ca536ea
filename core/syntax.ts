/**
 * Parameters of a DeepCABAC payload and the layout of its contexts.
 *
 * @module
 */

/**
 * Which syntax variant a payload follows. `"nnc1"` is the first-edition NNC (reference software
 * 0.3.1); `"nnc2"` is the second edition (NNCodec 2.0), which has one remainder context less,
 * optional row skipping under profile 1, and sets the range to 256 before the first block row
 * only when there are several block rows.
 */
export type SyntaxVariant = "nnc1" | "nnc2";

/** Everything that determines how a tensor's payload is parsed. */
export interface PayloadParams {
  /** Tensor shape (the coder sees shape[0] rows of product(shape[1:]) columns). */
  readonly shape: readonly number[];
  /** `"float"`: quantised levels with a qp offset; `"int"`: integers coded losslessly. */
  readonly payloadType: "float" | "int";
  /** Dependent quantisation on (1) or off (0). Always 0 for integer payloads. */
  readonly dqFlag: 0 | 1;
  /** Number of "greater than" flags: cabac_unary_length_minus1 + 1. */
  readonly numGtxFlags: number;
  /** Scan order as signalled, 0..4 (forced to 0 by the shape where needed). */
  readonly scanOrder: number;
  /** qp_density, 0..7 (float payloads). */
  readonly qpDensity: number;
  /** The base qp that the signalled offset is relative to (mps_quantization_parameter). */
  readonly mpsQp: number;
  /** Syntax variant. */
  readonly syntax: SyntaxVariant;
  /** general_profile_idc of an nnc2 stream (1 adds the row-skip syntax). */
  readonly profileIdc: 0 | 1;
}

/**
 * Returns payload parameters for a float tensor with the reference encoder's defaults
 * (first-edition syntax, dependent quantisation on, 11 greater-than flags, qp density 2, row-major
 * scan, base qp 0), overridden by `options`.
 *
 * @param shape Tensor shape.
 * @param options Fields to override.
 * @returns The parameters.
 *
 * @example
 * ```ts
 * import { payloadParams } from "./syntax.ts";
 * import assert from "node:assert/strict";
 *
 * const p = payloadParams([64, 64], { dqFlag: 0 });
 * assert.equal(p.numGtxFlags, 11);
 * assert.equal(p.dqFlag, 0);
 * ```
 */
export function payloadParams(
  shape: readonly number[],
  options: Partial<PayloadParams> = {},
): PayloadParams {
  return {
    shape,
    payloadType: "float",
    dqFlag: 1,
    numGtxFlags: 11,
    scanOrder: 0,
    qpDensity: 2,
    mpsQp: 0,
    syntax: "nnc1",
    profileIdc: 0,
    ...options,
  };
}

/** Largest cabac_unary_length_minus1 (an 8-bit field, but more than 32 flags is pointless). */
export const MAX_GTX_FLAGS = 256;

/** Index ranges of the contexts of one payload, in eco-flag order. */
export interface ContextLayout {
  /** First significance context. */
  readonly sig: number;
  /** First sign context. */
  readonly sign: number;
  /** First "greater than" context (two per flag: positive, negative). */
  readonly gtx: number;
  /** First remainder-prefix context. */
  readonly rem: number;
  /** Number of remainder-prefix contexts. */
  readonly remCount: number;
  /** Number of greater-than flags. */
  readonly numGtx: number;
  /** Contexts that carry eco flags (all of the above). */
  readonly total: number;
}

/**
 * Returns the context layout for a payload: 3 significance contexts (times 8 DQ states with
 * DQ), 3 sign contexts, 2 per "greater than" flag, and 32 (nnc1) or 31 (nnc2) remainder-prefix
 * contexts. The eco flags follow this order.
 *
 * @param numGtxFlags Number of "greater than" flags.
 * @param dq Whether dependent quantisation is on.
 * @param syntax Syntax variant.
 * @returns The layout.
 *
 * @example
 * ```ts
 * import { contextLayout } from "./syntax.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(contextLayout(11, false, "nnc1").total, 60);
 * assert.equal(contextLayout(11, true, "nnc1").total, 81);
 * assert.equal(contextLayout(11, true, "nnc2").total, 80);
 * ```
 */
export function contextLayout(
  numGtxFlags: number,
  dq: boolean,
  syntax: SyntaxVariant,
): ContextLayout {
  const sigCount = dq ? 24 : 3;
  const sign = sigCount;
  const gtx = sign + 3;
  const rem = gtx + 2 * numGtxFlags;
  const remCount = syntax === "nnc1" ? 32 : 31;
  return { sig: 0, sign, gtx, rem, remCount, numGtx: numGtxFlags, total: rem + remCount };
}

/**
 * Contexts of a DeepCABAC-2020 stream: one pool for the whole stream, laid out as a first-edition
 * payload without DQ for each tensor's N; 6 + 2·19 + 32 covers N ≤ 19 (CODING.md 8.2).
 */
export const DC2020_CONTEXTS = 76;

/** Class of the previous level for context selection: 0 if zero, 1 if negative, 2 if positive. */
export function neighbourClass(previous: number): number {
  return previous > 0 ? 2 : previous >>> 31;
}

/** An entry point: where a block row starts in the payload, as the reference records it. */
export interface EntryPoint {
  /** Bit position difference to the previous block row's start. */
  readonly bitOffsetDelta: number;
  /** The decoder's value register >> 7 at the block-row start (range is 256 there). */
  readonly value8: number;
  /** The dependent-quantisation state before the block row's first element. */
  readonly dqState: number;
}

/**
 * An entry point packed as the reference passes it around and as the NDU header fields hold it:
 * `(bitOffsetDelta << 11) | (value8 << 3) | dqState` (without overflow for large offsets).
 *
 * @param e The entry point.
 * @returns The packed integer.
 *
 * @example
 * ```ts
 * import { packEntryPoint } from "./syntax.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(packEntryPoint({ bitOffsetDelta: 1, value8: 2, dqState: 3 }), 2048 + 16 + 3);
 * ```
 */
export function packEntryPoint(e: EntryPoint): number {
  return e.bitOffsetDelta * 2048 + e.value8 * 8 + e.dqState;
}

/**
 * The entry point a packed integer of {@linkcode packEntryPoint} holds.
 *
 * @param packed The packed integer.
 * @returns The entry point.
 *
 * @example
 * ```ts
 * import { packEntryPoint, unpackEntryPoint } from "./syntax.ts";
 * import assert from "node:assert/strict";
 *
 * const e = { bitOffsetDelta: 3_000_000, value8: 200, dqState: 5 };
 * assert.deepEqual(unpackEntryPoint(packEntryPoint(e)), e);
 * ```
 */
export function unpackEntryPoint(packed: number): EntryPoint {
  return {
    bitOffsetDelta: Math.floor(packed / 2048),
    value8: Math.floor(packed / 8) % 256,
    dqState: packed % 8,
  };
}

/**
 * The smallest and largest of some levels, 0 included.
 *
 * @param levels The levels.
 * @returns `[min, max]`.
 *
 * @example
 * ```ts
 * import { levelRange } from "./syntax.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(levelRange(Int32Array.of(3, -200, 7)), [-200, 7]);
 * ```
 */
export function levelRange(levels: Int32Array): [number, number] {
  let min = 0;
  let max = 0;
  for (let i = 0; i < levels.length; i++) {
    const v = levels[i]!;
    if (v < min) min = v;
    else if (v > max) max = v;
  }
  return [min, max];
}

/**
 * Bytes of the smallest signed integer type that holds every level: 1, 2 or 4.
 *
 * @param levels The levels.
 * @returns 1, 2 or 4.
 *
 * @example
 * ```ts
 * import { levelBytes } from "./syntax.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(levelBytes(Int32Array.of(3, -200, 7)), 2);
 * ```
 */
export function levelBytes(levels: Int32Array): 1 | 2 | 4 {
  const [min, max] = levelRange(levels);
  return min >= -128 && max <= 127 ? 1 : min >= -32768 && max <= 32767 ? 2 : 4;
}
