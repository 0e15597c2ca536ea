// The DeepCABAC binarisation of one level, shared by the payload encoder, the rate estimates of
// the quantisers and the DeepCABAC-2020 encoder.
import type { ContextLayout } from "../core/syntax.ts";

/** Receives the bins of a level in coding order. */
export interface LevelBinVisitor {
  /** A context-coded bin. */
  bin(ctx: number, bin: number): void;
  /** `bits` bypass bins holding `value`, most significant first. */
  bypass(value: number, bits: number): void;
}

/**
 * Emits the bins of level `k`: significance flag, sign flag, up to `numGtx` greater-than flags
 * and, beyond them, the Exp-Golomb remainder with a context-coded prefix.
 */
export function visitLevelBins(
  k: number,
  layout: ContextLayout,
  numGtx: number,
  sigCtx: number,
  cls: number,
  v: LevelBinVisitor,
): void {
  v.bin(sigCtx, k !== 0 ? 1 : 0);
  if (k === 0) return;
  const negative = k < 0 ? 1 : 0;
  v.bin(layout.sign + cls, negative);
  const magnitude = Math.abs(k);
  for (let i = 0; i < numGtx; i++) {
    const more = magnitude > i + 1 ? 1 : 0;
    v.bin(layout.gtx + 2 * i + negative, more);
    if (!more) return;
  }
  const lastRem = layout.remCount - 1;
  let rest = magnitude - numGtx - 1;
  let prefix = 0;
  while (rest >= 2 ** prefix) {
    v.bin(layout.rem + (prefix < lastRem ? prefix : lastRem), 1);
    rest -= 2 ** prefix;
    prefix++;
  }
  v.bin(layout.rem + (prefix < lastRem ? prefix : lastRem), 0);
  v.bypass(rest, prefix);
}
