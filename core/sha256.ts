/**
 * SHA-256 as hex text, with the web platform's `crypto.subtle`: how the conformance runner checks
 * its files and how the examples and their tests compare decoded tensors.
 *
 * @module
 */

/**
 * The SHA-256 of `bytes` as 64 lowercase hex digits.
 *
 * @param bytes The data.
 * @returns The digest.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./sha256.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   await sha256Hex(new TextEncoder().encode("abc")),
 *   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 * );
 * ```
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice()));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
