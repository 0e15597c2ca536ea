/**
 * A minimal protobuf wire-format reader and writer: just what the ONNX model I/O needs.
 *
 * The reader walks one message at a time over a shared byte array with absolute positions, so
 * every error carries the byte offset in the whole input. Nothing is allocated from a length
 * read off the wire: lengths are checked against the end of the enclosing message first.
 *
 * @module
 */
import { concatBytes } from "../core/bytes.ts";
import { DecodeError } from "../core/errors.ts";

/** Wire type of varint fields (int32, int64, uint64, bool, enum). */
export const WIRE_VARINT = 0;
/** Wire type of 8-byte fields (fixed64, double). */
export const WIRE_I64 = 1;
/** Wire type of length-delimited fields (bytes, string, messages, packed repeated). */
export const WIRE_LEN = 2;
/** Wire type of 4-byte fields (fixed32, float). */
export const WIRE_I32 = 5;

/**
 * Reads the fields of one protobuf message in `buf[pos, end)`.
 *
 * After {@linkcode ProtoReader.next} returns `true`, `field` and `wire` describe the field, and a
 * call to one of `varint`, `uint`, `delimited`, `text`, `message` or `skip` consumes its value.
 */
export class ProtoReader {
  /** The whole input. */
  readonly buf: Uint8Array;
  /** Position of the next byte to read. */
  pos: number;
  /** End of this message (exclusive). */
  readonly end: number;
  /** Field number of the current field. */
  field = 0;
  /** Wire type of the current field. */
  wire = 0;
  /** Position of the current field's tag. */
  tagStart = 0;
  /** Low 32 bits (unsigned) of the last varint read. */
  lo = 0;
  /** High 32 bits (unsigned) of the last varint read. */
  hi = 0;

  /**
   * Creates a reader over `buf[start, end)`.
   *
   * @param buf The whole input.
   * @param start Start of the message.
   * @param end End of the message (exclusive).
   */
  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  /** Error for a value running past the end of this message at `at`. */
  #pastEnd(what: string, at: number): DecodeError {
    return this.end >= this.buf.length
      ? new DecodeError("truncated", `Protobuf ${what} is truncated`, at)
      : new DecodeError("corrupt", `Protobuf ${what} runs past the end of its message`, at);
  }

  /**
   * Reads the next field's tag.
   *
   * @returns `false` at the end of the message.
   */
  next(): boolean {
    if (this.pos >= this.end) return false;
    this.tagStart = this.pos;
    this.varint();
    const field = (this.lo >>> 3) + (this.hi & 0x1fffffff) * 0x20000000;
    if (field === 0 || field > 0x1fffffff) {
      throw new DecodeError("corrupt", `Protobuf field number ${field} is invalid`, this.tagStart);
    }
    this.field = field;
    this.wire = this.lo & 7;
    return true;
  }

  /** Reads a varint into `lo` and `hi` and returns `lo`. */
  varint(): number {
    const buf = this.buf;
    const start = this.pos;
    let pos = start;
    let lo = 0;
    let hi = 0;
    for (let shift = 0;; shift += 7) {
      if (pos >= this.end) throw this.#pastEnd("varint", start);
      if (shift === 70) throw new DecodeError("corrupt", "Protobuf varint is too long", start);
      const b = buf[pos++]!;
      const bits = b & 0x7f;
      if (shift < 28) lo |= bits << shift;
      else if (shift === 28) {
        lo |= bits << 28;
        hi = bits >>> 4;
      } else hi |= bits << (shift - 32);
      if (b < 0x80) break;
    }
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    return this.lo;
  }

  /**
   * Reads a varint that must be a non-negative safe integer (a length, a dimension, a count).
   *
   * @param what What the value is, for the error message.
   * @returns The value.
   */
  uint(what: string): number {
    const start = this.pos;
    this.varint();
    if (this.hi >= 0x200000) {
      throw new DecodeError("limit", `Protobuf ${what} is negative or too large`, start);
    }
    return this.hi * 0x100000000 + this.lo;
  }

  /**
   * Reads a length-delimited value and returns where its bytes start; they end at `pos`.
   *
   * @returns The position of the first byte of the value.
   */
  delimited(): number {
    const at = this.pos;
    const length = this.uint("length");
    const start = this.pos;
    if (length > this.end - start) throw this.#pastEnd("length-delimited field", at);
    this.pos = start + length;
    return start;
  }

  /**
   * Reads the current field, which must be length-delimited, as UTF-8 text.
   *
   * @param what The field's name, for the error message.
   * @returns The text.
   */
  text(what: string): string {
    this.expect(WIRE_LEN, what);
    const start = this.delimited();
    return UTF8.decode(this.buf.subarray(start, this.pos));
  }

  /**
   * Reads the current field, which must be length-delimited, as an embedded message.
   *
   * @param what The field's name, for the error message.
   * @returns A reader over the message.
   */
  message(what: string): ProtoReader {
    this.expect(WIRE_LEN, what);
    const start = this.delimited();
    return new ProtoReader(this.buf, start, this.pos);
  }

  /** Skips the current field's value. */
  skip(): void {
    switch (this.wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_LEN:
        this.delimited();
        return;
      case WIRE_I64:
      case WIRE_I32: {
        const size = this.wire === WIRE_I64 ? 8 : 4;
        if (size > this.end - this.pos) throw this.#pastEnd("fixed-size field", this.pos);
        this.pos += size;
        return;
      }
      case 3:
      case 4:
        throw new DecodeError("unsupported", "Protobuf groups are not supported", this.tagStart);
      default:
        throw new DecodeError(
          "corrupt",
          `Protobuf wire type ${this.wire} is invalid`,
          this.tagStart,
        );
    }
  }

  /**
   * Checks that the current field has the wire type its schema gives it.
   *
   * @param wire The expected wire type.
   * @param what The field's name, for the error message.
   */
  expect(wire: number, what: string): void {
    if (this.wire !== wire) {
      throw new DecodeError(
        "corrupt",
        `Protobuf field ${what} has wire type ${this.wire}, expected ${wire}`,
        this.tagStart,
      );
    }
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: false });
const UTF8_ENCODER = new TextEncoder();

/**
 * Encodes a non-negative safe integer as a varint.
 *
 * @param value The value.
 * @returns Its varint bytes.
 */
export function encodeVarint(value: number): Uint8Array<ArrayBuffer> {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/**
 * Encodes a field's tag followed, for a length-delimited field, by the length of its value.
 *
 * @param field Field number.
 * @param wire Wire type.
 * @param length Value length, only for {@linkcode WIRE_LEN}.
 * @returns The bytes that precede the value.
 */
export function encodeTag(field: number, wire: number, length?: number): Uint8Array<ArrayBuffer> {
  const tag = encodeVarint(field * 8 + wire);
  if (length === undefined) return tag;
  return concatBytes([tag, encodeVarint(length)]);
}

/** Builds a protobuf message field by field, growing its buffer by doubling. */
export class ProtoWriter {
  #buf = new Uint8Array(64);
  #len = 0;

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }

  /**
   * Appends bytes as they are (already encoded fields).
   *
   * @param bytes The bytes.
   * @returns This writer.
   */
  raw(bytes: Uint8Array): this {
    this.#room(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    return this;
  }

  /**
   * Appends a varint from its two 32-bit halves (two's complement for negative int64).
   *
   * @param lo Low 32 bits.
   * @param hi High 32 bits.
   * @returns This writer.
   */
  varint64(lo: number, hi: number): this {
    this.#room(10);
    let l = lo >>> 0;
    let h = hi >>> 0;
    while (h !== 0 || l >= 0x80) {
      this.#buf[this.#len++] = (l & 0x7f) | 0x80;
      l = ((l >>> 7) | (h << 25)) >>> 0;
      h >>>= 7;
    }
    this.#buf[this.#len++] = l;
    return this;
  }

  /**
   * Appends an integer as a varint; negative values as 64-bit two's complement (int32/int64).
   *
   * @param value A safe integer.
   * @returns This writer.
   */
  int(value: number): this {
    const hi = Math.floor(value / 0x100000000);
    return this.varint64(value - hi * 0x100000000, hi);
  }

  /**
   * Appends a varint field.
   *
   * @param field Field number.
   * @param value A safe integer.
   * @returns This writer.
   */
  intField(field: number, value: number): this {
    return this.int(field * 8 + WIRE_VARINT).int(value);
  }

  /**
   * Appends a length-delimited field (bytes, a packed array, or an encoded message).
   *
   * @param field Field number.
   * @param bytes The value.
   * @returns This writer.
   */
  bytesField(field: number, bytes: Uint8Array): this {
    return this.int(field * 8 + WIRE_LEN).int(bytes.length).raw(bytes);
  }

  /**
   * Appends a string field, UTF-8 encoded.
   *
   * @param field Field number.
   * @param text The string.
   * @returns This writer.
   */
  stringField(field: number, text: string): this {
    return this.bytesField(field, UTF8_ENCODER.encode(text));
  }

  /**
   * Returns the bytes written so far.
   *
   * @returns A copy of the message.
   */
  finish(): Uint8Array<ArrayBuffer> {
    return this.#buf.slice(0, this.#len);
  }
}
