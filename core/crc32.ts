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

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

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
 * const le = Uint8Array.of(1, 0, 0, 0, 255, 255, 255, 255);
 * assert.equal(levelsCrc32(Int32Array.of(1, -1)), crc32(le));
 * ```
 */
export function levelsCrc32(levels: Int32Array, crc = 0): number {
  // On a little-endian host the array's own bytes are the little-endian ints.
  if (LITTLE_ENDIAN) {
    return crc32(new Uint8Array(levels.buffer, levels.byteOffset, levels.byteLength), crc);
  }
  const le = new Uint8Array(4096);
  const view = new DataView(le.buffer);
  for (let start = 0; start < levels.length; start += 1024) {
    const end = Math.min(levels.length, start + 1024);
    for (let i = start; i < end; i++) view.setInt32((i - start) * 4, levels[i]!, true);
    crc = crc32(le.subarray(0, (end - start) * 4), crc);
  }
  return crc;
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
