// The bins of one level (CODING.md 5.2) as the encoders need them: coded, costed with the
// contexts' current states (the rate of the RD decisions), and applied to the states.
import type { BinEncoder } from "../core/_bin_encoder.ts";
import {
  binCost as cost,
  BYPASS_COST,
  type ContextStates,
  updateContext as update,
} from "../core/context_model.ts";
import type { ContextLayout } from "../core/syntax.ts";

/**
 * Where the contexts of a level's bins are (the significance context is chosen by the caller),
 * and how many greater-than flags it has.
 */
export type LevelContexts = Pick<ContextLayout, "sign" | "gtx" | "rem" | "numGtx">;

/**
 * Codes level `k`: significance with context `sig`, sign with `sign + cls`, the greater-than
 * flags, the context-coded remainder prefix and its bypass suffix.
 */
export function encodeLevel(
  enc: BinEncoder,
  st: ContextStates,
  lc: LevelContexts,
  sig: number,
  cls: number,
  k: number,
): void {
  enc.encodeBin(st, sig, k !== 0 ? 1 : 0);
  if (k === 0) return;
  const negative = k < 0 ? 1 : 0;
  enc.encodeBin(st, lc.sign + cls, negative);
  const m = Math.abs(k);
  for (let g = 0; g < lc.numGtx; g++) {
    const more = m > g + 1 ? 1 : 0;
    enc.encodeBin(st, lc.gtx + 2 * g + negative, more);
    if (!more) return;
  }
  const r = m - lc.numGtx - 1;
  const e = 31 - Math.clz32(r + 1);
  for (let j = 0; j < e; j++) enc.encodeBin(st, lc.rem + j, 1);
  enc.encodeBin(st, lc.rem + e, 0);
  enc.encodeBypassBits(r + 1 - 2 ** e, e);
}

/**
 * The cost of level `k` in 2^-15 bit: every context-coded bin at its context's current state
 * (no update between the bins) plus one bit per bypass bin.
 */
export function levelCost(
  st: ContextStates,
  lc: LevelContexts,
  sig: number,
  cls: number,
  k: number,
): number {
  if (k === 0) return cost(st, sig, 0);
  const negative = k < 0 ? 1 : 0;
  let bits = cost(st, sig, 1) + cost(st, lc.sign + cls, negative);
  const m = Math.abs(k);
  for (let g = 0; g < lc.numGtx; g++) {
    const more = m > g + 1 ? 1 : 0;
    bits += cost(st, lc.gtx + 2 * g + negative, more);
    if (!more) return bits;
  }
  return bits + remainderCost(st, lc, m - lc.numGtx);
}

/**
 * The cost of a level's Exp-Golomb remainder r, given as `r + 1` = |k| − N: its context-coded
 * prefix at the contexts' current states and one bit per bypass bin of its suffix.
 */
export function remainderCost(st: ContextStates, lc: LevelContexts, rest: number): number {
  const e = 31 - Math.clz32(rest);
  let bits = e * BYPASS_COST + cost(st, lc.rem + e, 0);
  for (let j = 0; j < e; j++) bits += cost(st, lc.rem + j, 1);
  return bits;
}

/** Adapts the contexts as coding level `k` would, bin after bin. */
export function adaptLevel(
  st: ContextStates,
  lc: LevelContexts,
  sig: number,
  cls: number,
  k: number,
): void {
  update(st, sig, k !== 0 ? 1 : 0);
  if (k === 0) return;
  const negative = k < 0 ? 1 : 0;
  update(st, lc.sign + cls, negative);
  const m = Math.abs(k);
  for (let g = 0; g < lc.numGtx; g++) {
    const more = m > g + 1 ? 1 : 0;
    update(st, lc.gtx + 2 * g + negative, more);
    if (!more) return;
  }
  const r = m - lc.numGtx - 1;
  const e = 31 - Math.clz32(r + 1);
  for (let j = 0; j < e; j++) update(st, lc.rem + j, 1);
  update(st, lc.rem + e, 0);
}
