/**
 * DeepCABAC decoder: turns an NNC (ISO/IEC 15938-17) bitstream back into weight tensors.
 *
 * This entry point is importable on its own (`@deepcabac/deepcabac/decoder`) so that a
 * decode-only bundle pulls in only the decoder's module graph.
 *
 * @example Read the decoder's version
 * ```ts
 * import { DECODER_VERSION } from "@deepcabac/deepcabac/decoder";
 * import assert from "node:assert/strict";
 *
 * assert.match(DECODER_VERSION, /^\d+\.\d+\.\d+$/);
 * ```
 *
 * @module
 */

/**
 * Version of the decoder, kept equal to the package version in `deno.json`.
 *
 * @example Check the version string
 * ```ts
 * import { DECODER_VERSION } from "@deepcabac/deepcabac/decoder";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DECODER_VERSION, "0.1.0");
 * ```
 */
export const DECODER_VERSION = "0.1.0";
