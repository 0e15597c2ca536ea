// The binary arithmetic encoder (HEVC-style, 9-bit range, byte-wise carry propagation).
import { type ContextStates, lpsAndMps, updateContext } from "./context_model.ts";

/** The arithmetic encoder state, writing into a growable byte buffer. */
export class BinEncoder {
  private low = 0;
  range = 510;
  private bitsLeft = 23;
  private bufferedByte = 0xff;
  private numBufferedBytes = 0;
  private out: Uint8Array<ArrayBuffer>;
  private length = 0;
  /** Total renormalisation and bypass shifts so far: the decoder's bit position P. */
  shifts = 0;

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

  private writeOut(): void {
    const shift = 24 - this.bitsLeft;
    const leadByte = Math.floor(this.low / 2 ** shift);
    this.bitsLeft += 8;
    this.low %= 2 ** (32 - this.bitsLeft);
    if (leadByte === 0xff) {
      this.numBufferedBytes++;
    } else if (this.numBufferedBytes > 0) {
      const carry = leadByte >> 8;
      this.writeByte((this.bufferedByte + carry) & 0xff);
      const fill = (0xff + carry) & 0xff;
      while (this.numBufferedBytes > 1) {
        this.writeByte(fill);
        this.numBufferedBytes--;
      }
      this.bufferedByte = leadByte & 0xff;
    } else {
      this.numBufferedBytes = 1;
      this.bufferedByte = leadByte;
    }
  }

  private shiftLow(n: number): void {
    this.low *= 2 ** n;
    this.bitsLeft -= n;
    this.shifts += n;
    if (this.bitsLeft < 12) this.writeOut();
  }

  /** Encodes one context-coded bin and adapts the context. */
  encodeBin(s: ContextStates, ctx: number, bin: number): void {
    const lm = lpsAndMps(s, ctx, this.range);
    const lps = lm & 0x1ff;
    this.range -= lps;
    if (bin !== lm >> 9) {
      let n = 0;
      let r = lps;
      while (r < 256) {
        r <<= 1;
        n++;
      }
      this.low += this.range;
      this.range = r;
      this.shiftLow(n);
    } else if (this.range < 256) {
      this.range <<= 1;
      this.shiftLow(1);
    }
    updateContext(s, ctx, bin);
  }

  /** Encodes one bypass bin. */
  encodeBypass(bin: number): void {
    this.low = this.low * 2 + (bin ? this.range : 0);
    this.bitsLeft--;
    this.shifts++;
    if (this.bitsLeft < 12) this.writeOut();
  }

  /** Encodes the `n` (≤ 31) low bits of `x`, most significant first, as bypass bins. */
  encodeBypassBits(x: number, n: number): void {
    for (let i = n - 1; i >= 0; i--) this.encodeBypass(Math.floor(x / 2 ** i) & 1);
  }

  /** Encodes the terminating bin. */
  encodeTerminate(bin: number): void {
    this.range -= 2;
    if (bin) {
      this.low += this.range;
      this.low *= 2 ** 7;
      this.range = 2 << 7;
      this.bitsLeft -= 7;
    } else if (this.range < 256) {
      this.low *= 2;
      this.range <<= 1;
      this.bitsLeft--;
      this.shifts++;
    }
    if (this.bitsLeft < 12) this.writeOut();
  }

  /**
   * Flushes after a terminating bin of 1, writes the stop bit and zero padding, and returns the
   * payload.
   */
  finish(): Uint8Array<ArrayBuffer> {
    if (Math.floor(this.low / 2 ** (32 - this.bitsLeft)) > 0) {
      this.writeByte((this.bufferedByte + 1) & 0xff);
      while (this.numBufferedBytes > 1) {
        this.writeByte(0x00);
        this.numBufferedBytes--;
      }
      this.low -= 2 ** (32 - this.bitsLeft);
    } else {
      if (this.numBufferedBytes > 0) this.writeByte(this.bufferedByte);
      while (this.numBufferedBytes > 1) {
        this.writeByte(0xff);
        this.numBufferedBytes--;
      }
    }
    // The remaining 24 - bitsLeft bits of low (above bit 8), then the stop bit, then padding.
    const nBits = 24 - this.bitsLeft;
    let acc = Math.floor(this.low / 2 ** 8);
    let accBits = nBits;
    acc = acc * 2 + 1;
    accBits++;
    const pad = (8 - (accBits & 7)) & 7;
    acc *= 2 ** pad;
    accBits += pad;
    for (let i = accBits - 8; i >= 0; i -= 8) this.writeByte(Math.floor(acc / 2 ** i) & 0xff);
    return this.out.slice(0, this.length);
  }

  /** Sets the range register to 256 (at block-row starts; no flush). */
  resetRange(): void {
    this.range = 256;
  }
}
