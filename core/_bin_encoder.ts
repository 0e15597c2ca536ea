// The binary arithmetic encoder of CODING.md section 2 (9-bit range, byte output with carry
// propagation through held-back 0xFF bytes, HM-style flush). All registers fit in int32: L stays
// below 2^29 (CODING.md 2.1 keeps at least 5 free bits).
import {
  type ContextStates,
  lpsRange,
  mostProbableSymbol,
  updateContext,
} from "./context_model.ts";

/**
 * The arithmetic encoder state, writing into a growable byte buffer. Hot loops may keep `low`,
 * `range` and `free` in locals, write them back and call {@linkcode BinEncoder.emitByte} when
 * `free` drops below 12.
 */
export class BinEncoder {
  /** L: low end of the interval. */
  low = 0;
  /** R: range, 256..510. */
  range = 510;
  /** F: bit positions of L not yet occupied. */
  free = 23;
  /** Y: the first held-back byte. */
  private held = 0;
  /** C: number of held-back bytes. */
  private heldCount = 0;
  private out: Uint8Array<ArrayBuffer>;
  private length = 0;

  /** @param capacity Initial buffer size in bytes. */
  constructor(capacity = 1024) {
    this.out = new Uint8Array(Math.max(16, capacity));
  }

  private writeByte(b: number): void {
    if (this.length === this.out.length) {
      const grown = new Uint8Array(this.out.length * 2);
      grown.set(this.out);
      this.out = grown;
    }
    this.out[this.length++] = b;
  }

  /**
   * The decoder's bit position P at this point of the stream (CODING.md 1.8): every shift of L
   * is one, and the bits of L are either out (in bytes, held back or written) or pending.
   */
  bitPosition(): number {
    return 8 * (this.length + this.heldCount) + 23 - this.free;
  }

  /** emit_byte of CODING.md 2.4: moves the top byte of L out. */
  emitByte(): void {
    const lead = this.low >> (24 - this.free);
    this.free += 8;
    this.low &= (1 << (32 - this.free)) - 1;
    if (lead === 0xff) {
      this.heldCount++;
    } else if (this.heldCount > 0) {
      const carry = lead >> 8;
      this.writeByte((this.held + carry) & 0xff);
      const fill = (0xff + carry) & 0xff;
      for (; this.heldCount > 1; this.heldCount--) this.writeByte(fill);
      this.held = lead & 0xff;
    } else {
      this.held = lead;
      this.heldCount = 1;
    }
  }

  /** Encodes one context-coded bin and adapts the context (CODING.md 2.2). */
  encodeBin(st: ContextStates, ctx: number, bin: number): void {
    const lps = lpsRange(st, ctx, this.range);
    this.range -= lps;
    if (bin === mostProbableSymbol(st, ctx)) {
      if (this.range < 256) {
        this.range <<= 1;
        this.low <<= 1;
        this.free--;
        if (this.free < 12) this.emitByte();
      }
    } else {
      const t = Math.clz32(lps) - 23;
      this.low += this.range;
      this.range = lps << t;
      this.low <<= t;
      this.free -= t;
      if (this.free < 12) this.emitByte();
    }
    updateContext(st, ctx, bin);
  }

  /** Encodes one bypass bin (CODING.md 2.3). */
  encodeBypass(bin: number): void {
    this.low = (this.low << 1) + (bin ? this.range : 0);
    this.free--;
    if (this.free < 12) this.emitByte();
  }

  /** Encodes the `n` (≤ 31) low bits of `x`, most significant first, as bypass bins. */
  encodeBypassBits(x: number, n: number): void {
    for (let i = n - 1; i >= 0; i--) this.encodeBypass(Math.floor(x / 2 ** i) & 1);
  }

  /** Encodes the terminating bin (CODING.md 2.5). */
  encodeTerminate(bin: number): void {
    this.range -= 2;
    if (bin) {
      this.low = (this.low + this.range) << 7;
      this.range = 256;
      this.free -= 7;
    } else if (this.range >= 256) {
      return;
    } else {
      this.low <<= 1;
      this.range <<= 1;
      this.free--;
    }
    if (this.free < 12) this.emitByte();
  }

  /**
   * Flushes after a terminating bin of 1 (CODING.md 2.6): the stop bit and zero padding, and
   * returns the payload.
   */
  finish(): Uint8Array<ArrayBuffer> {
    if ((this.low >> (32 - this.free)) !== 0) {
      this.writeByte((this.held + 1) & 0xff);
      for (; this.heldCount > 1; this.heldCount--) this.writeByte(0x00);
      this.low -= 1 << (32 - this.free);
    } else {
      if (this.heldCount > 0) this.writeByte(this.held);
      for (; this.heldCount > 1; this.heldCount--) this.writeByte(0xff);
    }
    this.low = ((this.low >> 8) << 1) + 1;
    this.free--;
    const m = 24 - this.free;
    for (let i = 0; i < m; i += 8) this.writeByte(((this.low << (32 - m)) >>> (24 - i)) & 0xff);
    return this.out.slice(0, this.length);
  }

  /** Sets the range register to 256 (block-row starts; no flush, CODING.md 2.7). */
  resetRange(): void {
    this.range = 256;
  }
}
