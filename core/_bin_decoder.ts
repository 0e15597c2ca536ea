// The binary arithmetic decoder of CODING.md section 1 (9-bit range). Shared by every payload
// decoder; the payload decoder's hot loop inlines the same steps.
import { DecodeError } from "./errors.ts";
import {
  type ContextStates,
  lpsRange,
  mostProbableSymbol,
  updateContext,
} from "./context_model.ts";

/**
 * Bytes that may be read past the end of the payload (as zeros) before it counts as truncated:
 * a conforming payload never reads past its end, and two bytes cover the largest look-ahead.
 */
export const OVERRUN_SLACK = 2;

/** The arithmetic decoder state over one payload. */
export class BinDecoder {
  readonly data: Uint8Array;
  readonly start: number;
  readonly end: number;
  /** Next byte to read. */
  pos: number;
  /** V: the stream bits not yet consumed, compared with R·2^7. */
  value = 0;
  /** R: the range, 256..510. */
  range = 510;
  /** B: −8..−1; B + 8 low bits of V still wait for the next byte. */
  bitsNeeded = -8;

  /**
   * Starts decoding `data[start, end)`.
   *
   * @param data Bytes holding the payload.
   * @param start First byte of the payload.
   * @param end One past the last byte of the payload.
   */
  constructor(data: Uint8Array, start = 0, end = data.length) {
    this.data = data;
    this.start = start;
    this.end = end;
    this.pos = start;
    if (end - start < 2) throw new DecodeError("truncated", "Payload is shorter than 2 bytes", end);
    this.value = (this.readByte() << 8) | this.readByte();
  }

  /** Reads the next byte, or 0 past the end (bounded: far past the end is truncation). */
  readByte(): number {
    const p = this.pos++;
    if (p < this.end) return this.data[p]!;
    if (p >= this.end + OVERRUN_SLACK) {
      throw new DecodeError("truncated", "Payload is truncated", this.end);
    }
    return 0;
  }

  /** Decodes one context-coded bin and adapts the context (CODING.md 1.3). */
  decodeBin(st: ContextStates, ctx: number): number {
    const lps = lpsRange(st, ctx, this.range);
    const mps = this.range - lps;
    let bin = mostProbableSymbol(st, ctx);
    if (this.value >= mps << 7) {
      bin ^= 1;
      this.value -= mps << 7;
      this.range = lps;
    } else {
      this.range = mps;
    }
    const t = Math.clz32(this.range) - 23;
    if (t > 0) {
      this.range <<= t;
      this.value <<= t;
      this.bitsNeeded += t;
      if (this.bitsNeeded >= 0) {
        this.value += this.readByte() << this.bitsNeeded;
        this.bitsNeeded -= 8;
      }
    }
    updateContext(st, ctx, bin);
    return bin;
  }

  /** Decodes one bypass bin (CODING.md 1.4). */
  decodeBypass(): number {
    this.value <<= 1;
    if (++this.bitsNeeded >= 0) {
      this.bitsNeeded = -8;
      this.value += this.readByte();
    }
    const scaled = this.range << 7;
    if (this.value >= scaled) {
      this.value -= scaled;
      return 1;
    }
    return 0;
  }

  /** Decodes `n` (≤ 31) bypass bins, most significant first, as an unsigned number. */
  decodeBypassBits(n: number): number {
    let x = 0;
    for (let i = 0; i < n; i++) x = x * 2 + this.decodeBypass();
    return x;
  }

  /** Decodes the terminating bin (CODING.md 1.6). */
  decodeTerminate(): number {
    this.range -= 2;
    if (this.value >= this.range << 7) return 1;
    if (this.range < 256) {
      this.range <<= 1;
      this.value <<= 1;
      if (++this.bitsNeeded === 0) {
        this.bitsNeeded = -8;
        this.value += this.readByte();
      }
    }
    return 0;
  }

  /**
   * After a terminating bin of 1: checks the stop bit and padding (CODING.md 1.7), and returns
   * the number of payload bytes consumed.
   */
  finish(): number {
    const consumed = this.pos - this.start;
    if (consumed > this.end - this.start) {
      throw new DecodeError("truncated", "Payload is truncated before its stop bit", this.end);
    }
    const last = this.data[this.pos - 1]!;
    if (((last << (8 + this.bitsNeeded)) & 0xff) !== 0x80) {
      throw new DecodeError(
        "corrupt",
        "Payload has no stop bit after the terminating bin",
        this.pos - 1,
      );
    }
    return consumed;
  }

  /** Bit position P of the decoder (CODING.md 1.8: 0 after initialisation, +1 per shift). */
  bitPosition(): number {
    return 8 * (this.pos - this.start) - 8 + this.bitsNeeded;
  }

  /**
   * Restarts the decoder at bit position `p` with an entry point's `value8` and range 256, for
   * random access to a block row (CODING.md 1.9).
   */
  seek(p: number, value8: number): void {
    const b = p + 9;
    let bytesRead: number;
    if ((b & 7) !== 0) {
      bytesRead = (b >> 3) + 1;
      this.bitsNeeded = (b & 7) - 9;
    } else {
      bytesRead = b >> 3;
      this.bitsNeeded = -1;
    }
    if (!(bytesRead >= 2 && bytesRead <= this.end - this.start) || !(value8 >= 0 && value8 < 256)) {
      throw new DecodeError(
        "corrupt",
        "Entry point lies outside the payload",
        this.start + Math.max(0, Math.min(bytesRead, this.end - this.start)),
      );
    }
    this.pos = this.start + bytesRead;
    const lastByte = this.data[this.pos - 1]!;
    this.value = (value8 << 7) + ((lastByte << (8 + this.bitsNeeded)) & 127);
    this.range = 256;
  }
}
