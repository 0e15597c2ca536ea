/**
 * CRC-32 (IEEE 802.3, the checksum of zip and PNG), used to detect corrupt decoded tensors.
 *
 * @module
 */

const TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/**
 * Slicing-by-8 tables: `SLICES[256·k + n]` is the CRC register after byte n followed by k zero
 * bytes, so eight bytes fold in with eight independent lookups instead of eight dependent ones.
 */
const SLICES = (() => {
  const t = new Int32Array(8 * 256);
  t.set(TABLE);
  for (let i = 256; i < t.length; i++) t[i] = (t[i - 256]! >>> 8) ^ TABLE[t[i - 256]! & 0xff]!;
  return t;
})();

/**
 * Returns the CRC-32 of `bytes`, continuing from `crc` when the data comes in pieces.
 *
 * @param bytes The data.
 * @param crc The CRC of the preceding data (0 to start).
 * @returns The CRC as an unsigned 32-bit integer.
 *
 * @example
 * ```ts
 * import { crc32 } from "./crc32.ts";
 * import assert from "node:assert/strict";
 *
 * const text = new TextEncoder().encode("123456789");
 * assert.equal(crc32(text), 0xcbf43926);
 * assert.equal(crc32(text.subarray(4), crc32(text.subarray(0, 4))), 0xcbf43926);
 * ```
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * CRC-32 of levels as little-endian int32: the per-tensor checksum of our NNR files
 * (docs/FORMAT.md), computed by the encoder and verified by the decoder.
 *
 * @param levels The levels.
 * @param crc The CRC of the preceding levels (0 to start).
 * @returns The CRC.
 *
 * @example
 * ```ts
 * import { crc32, levelsCrc32 } from "./crc32.ts";
 * import assert from "node:assert/strict";
 *
 * const le = Uint8Array.of(1, 0, 0, 0, 255, 255, 255, 255, 0, 1, 0, 128);
 * assert.equal(levelsCrc32(Int32Array.of(1, -1, -(2 ** 31) + 256)), crc32(le));
 * assert.equal(levelsCrc32(Int32Array.of(-(2 ** 31) + 256), levelsCrc32(Int32Array.of(1, -1))), crc32(le));
 * ```
 */
export function levelsCrc32(levels: Int32Array, crc = 0): number {
  // Each int32 is taken as a number, so its little-endian bytes are v & 0xff, (v >>> 8) & 0xff…
  // whatever the host's byte order; two of them are one slicing-by-8 step.
  const t = SLICES;
  let c = ~crc;
  const pairs = levels.length & ~1;
  for (let i = 0; i < pairs; i += 2) {
    const x = c ^ levels[i]!;
    const y = levels[i + 1]!;
    c = t[1792 + (x & 0xff)]! ^ t[1536 + ((x >>> 8) & 0xff)]! ^ t[1280 + ((x >>> 16) & 0xff)]! ^
      t[1024 + (x >>> 24)]! ^ t[768 + (y & 0xff)]! ^ t[512 + ((y >>> 8) & 0xff)]! ^
      t[256 + ((y >>> 16) & 0xff)]! ^ t[y >>> 24]!;
  }
  if (pairs < levels.length) {
    const x = c ^ levels[pairs]!;
    c = t[768 + (x & 0xff)]! ^ t[512 + ((x >>> 8) & 0xff)]! ^ t[256 + ((x >>> 16) & 0xff)]! ^
      t[x >>> 24]!;
  }
  return ~c >>> 0;
}

/** `a · b mod P` over GF(2), both in CRC-32's reflected bit order (bit 31 is x^0). */
function multiplyModP(a: number, b: number): number {
  let product = 0;
  for (let m = 0x80000000; m !== 0 && a !== 0; m >>>= 1) {
    if (a & m) {
      product ^= b;
      a ^= m;
    }
    b = b & 1 ? (b >>> 1) ^ 0xedb88320 : b >>> 1;
  }
  return product >>> 0;
}

/**
 * The CRC-32 of data A followed by data B from the CRCs of each, without the data: CRC-32 is
 * affine over GF(2), so appending B's bytes to A multiplies A's CRC by x^(8·|B|) modulo the
 * polynomial before B's CRC is added. Lets block rows decoded apart be checked as one tensor.
 *
 * @param crcA CRC of A.
 * @param crcB CRC of B.
 * @param bytesB Length of B in bytes.
 * @returns CRC of A followed by B.
 *
 * @example
 * ```ts
 * import { crc32, crc32Combine } from "./crc32.ts";
 * import assert from "node:assert/strict";
 *
 * const text = new TextEncoder().encode("123456789");
 * const a = crc32(text.subarray(0, 3));
 * const b = crc32(text.subarray(3));
 * assert.equal(crc32Combine(a, b, 6), 0xcbf43926);
 * ```
 */
export function crc32Combine(crcA: number, crcB: number, bytesB: number): number {
  let shift = 0x80000000; // x^0
  let power = 0x00800000; // x^8: one byte
  for (let n = bytesB; n > 0; n = Math.floor(n / 2)) {
    if (n % 2) shift = multiplyModP(shift, power);
    power = multiplyModP(power, power);
  }
  return (multiplyModP(shift, crcA) ^ crcB) >>> 0;
}
