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

export { ESTIMATOR_PARAMETER_SETS };

/** Number of estimator parameter sets (the default plus eight selectable ones). */
export const ESTIMATOR_SET_COUNT = 9;

/** Initial coarse sub-state `a0` of each parameter set. */
const A0 = Int16Array.from(ESTIMATOR_PARAMETER_SETS, (p) => p[2]);
/** Initial fine sub-state `b0` of each parameter set. */
const B0 = Int16Array.from(ESTIMATOR_PARAMETER_SETS, (p) => p[3]);

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
  /** Adaptation shift of `a` per context (`ka` of its parameter set). */
  readonly ka: Uint8Array<ArrayBuffer>;
  /** Adaptation shift of `b` per context (`kb` of its parameter set). */
  readonly kb: Uint8Array<ArrayBuffer>;
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
    this.ka = new Uint8Array(count).fill(ESTIMATOR_PARAMETER_SETS[0]![0]);
    this.kb = new Uint8Array(count).fill(ESTIMATOR_PARAMETER_SETS[0]![1]);
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
    this.ka[ctx] = p[0];
    this.kb[ctx] = p[1];
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
  const i = combinedState(st, ctx) >> 7;
  return LPS_RANGE[((i < 0 ? -i : i) << 3) | ((range >> 5) & 7)]!;
}

/**
 * Moves a context's sub-states after coding `bin` (CODING.md 3.4).
 *
 * @param st Context states.
 * @param ctx Context index.
 * @param bin The coded bin, 0 or 1.
 */
export function updateContext(st: ContextStates, ctx: number, bin: number): void {
  const a = st.a[ctx]!;
  const b = st.b[ctx]!;
  if (bin) {
    st.a[ctx] = a + (ADAPTATION_STEP[16 + (a >> 3)]! >> st.ka[ctx]!);
    st.b[ctx] = b + (ADAPTATION_STEP[16 + (b >> 7)]! >> st.kb[ctx]!);
  } else {
    st.a[ctx] = a - (ADAPTATION_STEP[16 + (-a >> 3)]! >> st.ka[ctx]!);
    st.b[ctx] = b - (ADAPTATION_STEP[16 + (-b >> 7)]! >> st.kb[ctx]!);
  }
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
