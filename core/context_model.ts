/**
 * The adaptive probability estimator of each context ("context model"): two probability states
 * with different adaptation rates, the LPS sub-range they give for the current 9-bit range, and
 * the estimated cost of a bin for rate-distortion decisions.
 *
 * Every context starts at p = ½. Its adaptation rates come from one of nine estimator parameter
 * sets: set 0 is the default, sets 1..8 are selected per context by the encoder and signalled by
 * the eco flags at the start of a payload.
 *
 * @module
 */

/**
 * The nine estimator parameter sets, as `[shiftA, shiftB]` adaptation rates: a state moves
 * `1 / 2^shift` of the way towards each coded bin.
 */
export const ESTIMATOR_PARAMETER_SETS: readonly (readonly [number, number])[] = [
  [4, 7],
  [1, 4],
  [1, 5],
  [2, 5],
  [2, 6],
  [3, 6],
  [3, 7],
  [4, 8],
  [5, 8],
];

/** Number of estimator parameter sets (the default plus eight selectable ones). */
export const ESTIMATOR_SET_COUNT = ESTIMATOR_PARAMETER_SETS.length;

const HALF = 1 << 14;
const ONE = 0x7fff;

/**
 * The states of a group of contexts, stored in typed arrays so that coding loops touch no
 * objects. `stateA`/`stateB` are 15-bit probabilities that the bin is 1.
 */
export class ContextStates {
  /** Fast-adapting state per context. */
  readonly stateA: Uint16Array<ArrayBuffer>;
  /** Slow-adapting state per context. */
  readonly stateB: Uint16Array<ArrayBuffer>;
  /** Adaptation shift of `stateA` per context. */
  readonly shiftA: Uint8Array<ArrayBuffer>;
  /** Adaptation shift of `stateB` per context. */
  readonly shiftB: Uint8Array<ArrayBuffer>;
  /** Estimator parameter set index per context. */
  readonly parameterSet: Uint8Array<ArrayBuffer>;

  /**
   * Creates `count` contexts in their initial state with the default parameter set.
   *
   * @param count Number of contexts.
   */
  constructor(count: number) {
    this.stateA = new Uint16Array(count);
    this.stateB = new Uint16Array(count);
    this.shiftA = new Uint8Array(count);
    this.shiftB = new Uint8Array(count);
    this.parameterSet = new Uint8Array(count);
    for (let i = 0; i < count; i++) this.setParameterSet(i, 0);
    this.reset();
  }

  /** Number of contexts. */
  get count(): number {
    return this.stateA.length;
  }

  /**
   * Selects the estimator parameter set of one context.
   *
   * @param ctx Context index.
   * @param set Parameter set index in 0..8.
   */
  setParameterSet(ctx: number, set: number): void {
    const pair = ESTIMATOR_PARAMETER_SETS[set];
    if (pair === undefined) throw new RangeError(`Estimator parameter set ${set} is not in 0..8`);
    this.parameterSet[ctx] = set;
    this.shiftA[ctx] = pair[0];
    this.shiftB[ctx] = pair[1];
  }

  /** Returns every context to p = ½, keeping its parameter set. */
  reset(): void {
    this.stateA.fill(HALF);
    this.stateB.fill(HALF);
  }
}

/**
 * Returns the LPS sub-range of context `ctx` for the current range, and in bit 9 its MPS:
 * `(mps << 9) | lps`.
 *
 * @param s Context states.
 * @param ctx Context index.
 * @param range Current range (256..510).
 * @returns `(mps << 9) | lpsRange`.
 */
export function lpsAndMps(s: ContextStates, ctx: number, range: number): number {
  let q = ((s.stateA[ctx]! + s.stateB[ctx]!) >> 8) & 0xff;
  const mps = q >> 7;
  if (mps) q ^= 0xff;
  return (mps << 9) | lpsRange(q, range);
}

/**
 * LPS sub-range for the 7-bit LPS probability `q` (0..127) and the current range.
 *
 * @param q LPS probability in units of 1/256.
 * @param range Current range (256..510).
 * @returns The LPS sub-range.
 */
export function lpsRange(q: number, range: number): number {
  return (((q >> 2) * (range >> 5)) >> 1) + 4;
}

/** Renormalisation shift after an LPS, indexed by the LPS sub-range (1..511). */
export const RENORM_SHIFT: Readonly<Uint8Array> = (() => {
  const t = new Uint8Array(512);
  for (let i = 0; i < 512; i++) {
    let r = Math.max(i, 1);
    let n = 0;
    while (r < 256) {
      r <<= 1;
      n++;
    }
    t[i] = n;
  }
  return t;
})();

/**
 * One state of a context moved towards the coded bin by `1 / 2^shift`.
 *
 * @param state 15-bit probability of a 1.
 * @param shift Adaptation shift.
 * @param bin The coded bin.
 * @returns The new state.
 */
export function adapt(state: number, shift: number, bin: number): number {
  return state - (state >> shift) + ((ONE * bin) >> shift);
}

/**
 * Moves both states of context `ctx` towards the coded bin.
 *
 * @param s Context states.
 * @param ctx Context index.
 * @param bin The coded bin, 0 or 1.
 */
export function updateContext(s: ContextStates, ctx: number, bin: number): void {
  const a = s.stateA[ctx]!;
  const b = s.stateB[ctx]!;
  const shA = s.shiftA[ctx]!;
  const shB = s.shiftB[ctx]!;
  s.stateA[ctx] = adapt(a, shA, bin);
  s.stateB[ctx] = adapt(b, shB, bin);
}

/** Cost in bits of coding a bin whose probability (of the bin value) is `k / 256`. */
const COST_BITS: Float64Array = (() => {
  const t = new Float64Array(257);
  for (let k = 1; k <= 256; k++) t[k] = -Math.log2(k / 256);
  t[0] = t[1]!;
  return t;
})();

/**
 * Estimated cost in bits of coding `bin` with context `ctx` in its current state, as used by
 * the rate-distortion quantisers.
 *
 * @param s Context states.
 * @param ctx Context index.
 * @param bin The bin value.
 * @returns Estimated bits.
 */
export function binCost(s: ContextStates, ctx: number, bin: number): number {
  const p1 = (s.stateA[ctx]! + s.stateB[ctx]!) >> 8; // probability of 1, 8 bits
  return COST_BITS[bin ? p1 + 1 : 256 - p1]!;
}
