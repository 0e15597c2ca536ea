/**
 * The probability estimator of each context ("context model"), CODING.md section 3: a coarse
 * sub-state `a` and a fine sub-state `b` whose sum `s = b + 16·a` is a log-domain measure of how
 * probable a 1 is, moved after every bin by the table-driven steps of one of nine estimator
 * parameter sets. The LPS sub-range and the bin cost are read from tables indexed by `s`.
 *
 * Set 0 is the default; sets 1..8 are chosen per context by the encoder and signalled by the eco
 * flags at the start of a payload.
 *
 * @module
 */
import { ADAPTATION_STEP, BIN_COST, ESTIMATOR_PARAMETER_SETS, LPS_RANGE } from "./_tables.ts";

/** Number of estimator parameter sets (the default plus eight selectable ones). */
export const ESTIMATOR_SET_COUNT = 9;

/** Initial coarse sub-state `a0` of each parameter set. */
const A0 = Int16Array.from(ESTIMATOR_PARAMETER_SETS, (p) => p[2]);
/** Initial fine sub-state `b0` of each parameter set. */
const B0 = Int16Array.from(ESTIMATOR_PARAMETER_SETS, (p) => p[3]);

/** The adaptation shifts ka and kb of the parameter sets lie in 4..7. */
const MIN_SHIFT = 4;
const SHIFTS = 4;

/**
 * The update of the coarse sub-state as a table (CODING.md 3.4):
 * `NEXT_A[rowA + (bin << 8) + a]` is the new `a`, where `rowA` = {@linkcode ContextStates.rowA}
 * (256 entries per bin, offset so that `a` = −128..127 indexes them).
 */
export const NEXT_A: Readonly<Int16Array> = transitionTable(8, 3);

/** The update of the fine sub-state: `NEXT_B[rowB + (bin << 12) + b]`, `b` = −2048..2047. */
export const NEXT_B: Readonly<Int16Array> = transitionTable(12, 7);

/**
 * `x + d · (STEP[16 + ((d·x) >> shift)] >> k)` for d = ±1, every k of a parameter set and every x
 * of `bits` signed bits (CODING.md 3.6 bounds the reachable states well inside them).
 */
function transitionTable(bits: number, shift: number): Int16Array {
  const size = 1 << bits;
  const table = new Int16Array(SHIFTS * 2 * size);
  for (let k = 0; k < SHIFTS; k++) {
    for (let bin = 0; bin < 2; bin++) {
      const d = 2 * bin - 1;
      for (let x = -size / 2; x < size / 2; x++) {
        const step = ADAPTATION_STEP[16 + ((d * x) >> shift)] ?? 0;
        table[(2 * k + bin) * size + size / 2 + x] = x + d * (step >> (k + MIN_SHIFT));
      }
    }
  }
  return table;
}

/**
 * The LPS sub-range indexed without an absolute value or a mask (CODING.md 3.3):
 * `LPS_BY_STATE[((s >> 7) << 3) + (R >> 5) + 248]` = `lps_range_table[(R >> 5) & 7][|s >> 7|]`
 * for a combined state s (s >> 7 in −32..31) and a range R in 256..511.
 */
export const LPS_BY_STATE: Readonly<Uint16Array> = (() => {
  const table = new Uint16Array(64 * 8);
  for (let i = -32; i < 32; i++) {
    for (let q = 0; q < 8; q++) table[((i + 32) << 3) + q] = LPS_RANGE[(Math.abs(i) << 3) | q]!;
  }
  return table;
})();

/**
 * The most context-coded bins one payload byte can hold: a bin narrows the interval by at least
 * the factor (R − LPS) / R, whose smallest information over every range and state of the table
 * is about 0.0082 bits, and a payload of L bytes carries at most 8·L + 1 bits of such
 * narrowing. A decoder checks declared sizes against it before allocating.
 */
export const MAX_BINS_PER_BYTE: number = (() => {
  let least = Infinity;
  for (let range = 256; range < 511; range++) {
    for (let i = 0; i < 32; i++) {
      const lps = LPS_RANGE[(i << 3) | ((range >> 5) & 7)]!;
      least = Math.min(least, -Math.log2((range - lps) / range));
    }
  }
  return Math.ceil(8 / least);
})();

/** The cost of a bypass bin in the units of {@linkcode binCost} (one bit). */
export const BYPASS_COST = 1 << 15;

/**
 * The states of a group of contexts, in typed arrays so that coding loops touch no objects.
 *
 * @example A fresh context codes with p = ½ and MPS 1
 * ```ts
 * import { ContextStates, lpsRange, mostProbableSymbol } from "./context_model.ts";
 * import assert from "node:assert/strict";
 *
 * const ctx = new ContextStates(1);
 * assert.equal(mostProbableSymbol(ctx, 0), 1);
 * assert.equal(lpsRange(ctx, 0, 510), 228);
 * assert.equal(lpsRange(ctx, 0, 256), 128);
 * ```
 */
export class ContextStates {
  /** Both sub-states of every context: `a` in the first half, `b` in the second. */
  readonly states: Int16Array<ArrayBuffer>;
  /** Coarse sub-state per context. */
  readonly a: Int16Array<ArrayBuffer>;
  /** Fine sub-state per context. */
  readonly b: Int16Array<ArrayBuffer>;
  /** Where each context's update of `a` starts in {@linkcode NEXT_A} (from `ka` of its set). */
  readonly rowA: Int32Array<ArrayBuffer>;
  /** Where each context's update of `b` starts in {@linkcode NEXT_B} (from `kb` of its set). */
  readonly rowB: Int32Array<ArrayBuffer>;
  /** Estimator parameter set per context. */
  readonly parameterSet: Uint8Array<ArrayBuffer>;

  /**
   * Creates `count` contexts in the default set and state.
   *
   * @param count Number of contexts.
   */
  constructor(count: number) {
    this.states = new Int16Array(2 * count);
    this.a = this.states.subarray(0, count);
    this.b = this.states.subarray(count);
    this.rowA = new Int32Array(count).fill(rowA(ESTIMATOR_PARAMETER_SETS[0]![0]));
    this.rowB = new Int32Array(count).fill(rowB(ESTIMATOR_PARAMETER_SETS[0]![1]));
    this.parameterSet = new Uint8Array(count);
  }

  /** Number of contexts. */
  get count(): number {
    return this.a.length;
  }

  /**
   * Gives one context a parameter set and that set's initial state (`init` of CODING.md 3.2).
   *
   * @param ctx Context index.
   * @param set Parameter set index in 0..8.
   */
  init(ctx: number, set: number): void {
    const p = ESTIMATOR_PARAMETER_SETS[set];
    if (p === undefined) throw new RangeError(`Estimator parameter set ${set} is not in 0..8`);
    this.parameterSet[ctx] = set;
    this.rowA[ctx] = rowA(p[0]);
    this.rowB[ctx] = rowB(p[1]);
    this.a[ctx] = p[2];
    this.b[ctx] = p[3];
  }

  /**
   * Copies the sub-states of `other`, a group of as many contexts with the same parameter sets.
   *
   * @param other The contexts to copy.
   */
  copyStatesFrom(other: ContextStates): void {
    this.states.set(other.states);
  }

  /** Returns every context to the initial state of its parameter set (block-row starts). */
  reset(): void {
    const set = this.parameterSet;
    for (let c = 0; c < set.length; c++) {
      this.a[c] = A0[set[c]!]!;
      this.b[c] = B0[set[c]!]!;
    }
  }
}

function rowA(ka: number): number {
  return (ka - MIN_SHIFT) * 512 + 128;
}

function rowB(kb: number): number {
  return (kb - MIN_SHIFT) * 8192 + 2048;
}

/**
 * The combined state `s = b + 16·a` of a context.
 *
 * @param st Context states.
 * @param ctx Context index.
 * @returns The combined state.
 */
export function combinedState(st: ContextStates, ctx: number): number {
  return st.b[ctx]! + (st.a[ctx]! << 4);
}

/**
 * The most probable symbol of a context: 1 when `s ≥ 0`.
 *
 * @param st Context states.
 * @param ctx Context index.
 * @returns 0 or 1.
 */
export function mostProbableSymbol(st: ContextStates, ctx: number): number {
  return combinedState(st, ctx) >= 0 ? 1 : 0;
}

/**
 * The LPS sub-range of a context for the current range: `lps_range_table[(R >> 5) & 7][|s >> 7|]`.
 *
 * @param st Context states.
 * @param ctx Context index.
 * @param range Current range, 256..510.
 * @returns The LPS sub-range.
 */
export function lpsRange(st: ContextStates, ctx: number, range: number): number {
  return LPS_BY_STATE[((combinedState(st, ctx) >> 7) << 3) + (range >> 5) + 248]!;
}

/**
 * Moves a context's sub-states after coding `bin` (CODING.md 3.4).
 *
 * @param st Context states.
 * @param ctx Context index.
 * @param bin The coded bin, 0 or 1.
 */
export function updateContext(st: ContextStates, ctx: number, bin: number): void {
  st.a[ctx] = NEXT_A[st.rowA[ctx]! + (bin << 8) + st.a[ctx]!]!;
  st.b[ctx] = NEXT_B[st.rowB[ctx]! + (bin << 12) + st.b[ctx]!]!;
}

/**
 * The cost of coding `bin` with a context in its current state, in units of 2^-15 bit
 * (`bin_cost_table`, CODING.md 3.7): the rate measure of the encoders.
 *
 * @param st Context states.
 * @param ctx Context index.
 * @param bin The bin value.
 * @returns The cost, an integer.
 */
export function binCost(st: ContextStates, ctx: number, bin: number): number {
  return BIN_COST[((512 + (combinedState(st, ctx) >> 3)) << 1) | bin]!;
}
