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
export function levelsCrc32(levels: Int32Array): number {
  const le = new Uint8Array(4096);
  const view = new DataView(le.buffer);
  let crc = 0;
  for (let start = 0; start < levels.length; start += 1024) {
    const end = Math.min(levels.length, start + 1024);
    for (let i = start; i < end; i++) view.setInt32((i - start) * 4, levels[i]!, true);
    crc = crc32(le.subarray(0, (end - start) * 4), crc);
  }
  return crc;
}
