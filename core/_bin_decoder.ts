// The binary arithmetic decoder (HEVC-style, 9-bit range). Shared by every payload decoder.
import { DecodeError } from "./errors.ts";
import { type ContextStates, lpsAndMps, updateContext } from "./context_model.ts";

/** Bytes that may be read past the end of the payload (as zeros) before it counts as truncated. */
const OVERRUN_SLACK = 2;

/** The arithmetic decoder state over one payload. */
export class BinDecoder {
  readonly data: Uint8Array;
  readonly start: number;
  readonly end: number;
  /** Next byte to read. */
  pos: number;
  value = 0;
  range = 510;
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

  /** Decodes one context-coded bin and adapts the context. */
  decodeBin(s: ContextStates, ctx: number): number {
    const lm = lpsAndMps(s, ctx, this.range);
    const lps = lm & 0x1ff;
    let bin = lm >> 9;
    this.range -= lps;
    const scaled = this.range << 7;
    if (this.value < scaled) {
      if (this.range < 256) this.renormalizeOnce();
    } else {
      bin ^= 1;
      let shift = 0;
      let r = lps;
      while (r < 256) {
        r <<= 1;
        shift++;
      }
      this.value = (this.value - scaled) << shift;
      this.range = r;
      this.bitsNeeded += shift;
      if (this.bitsNeeded >= 0) {
        this.value += this.readByte() << this.bitsNeeded;
        this.bitsNeeded -= 8;
      }
    }
    updateContext(s, ctx, bin);
    return bin;
  }

  /** Decodes one bypass bin. */
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

  /** Decodes the terminating bin. */
  decodeTerminate(): number {
    this.range -= 2;
    const scaled = this.range << 7;
    if (this.value >= scaled) return 1;
    if (this.range < 256) this.renormalizeOnce();
    return 0;
  }

  /** One renormalisation step after an MPS: doubles range and value, reading a byte when due. */
  private renormalizeOnce(): void {
    this.range <<= 1;
    this.value <<= 1;
    if (++this.bitsNeeded === 0) {
      this.bitsNeeded = -8;
      this.value |= this.readByte();
    }
  }

  /**
   * After a terminating bin of 1: checks the stop bit and alignment, and returns the number of
   * payload bytes consumed.
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

  /** Bit position P of the decoder (0 right after initialisation, +1 per shift). */
  bitPosition(): number {
    return 8 * (this.pos - this.start) - 16 + 8 + this.bitsNeeded;
  }

  /**
   * Restarts the decoder at bit position `p` with the entry point's `value8` (range 256), as for
   * random access to a block row.
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
    if (bytesRead > this.end - this.start || bytesRead < 1) {
      throw new DecodeError(
        "corrupt",
        "Entry point lies outside the payload",
        this.start + bytesRead,
      );
    }
    this.pos = this.start + bytesRead;
    const lastByte = this.data[this.pos - 1]!;
    this.value = (value8 << 7) + ((lastByte << (8 + this.bitsNeeded)) & 127);
    this.range = 256;
  }
}
