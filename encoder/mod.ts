/**
 * DeepCABAC encoder: quantizes weight tensors and codes them into an NNC
 * (ISO/IEC 15938-17) bitstream.
 *
 * This entry point is importable on its own (`@deepcabac/deepcabac/encoder`).
 *
 * @example Read the encoder's version
 * ```ts
 * import { ENCODER_VERSION } from "@deepcabac/deepcabac/encoder";
 * import assert from "node:assert/strict";
 *
 * assert.match(ENCODER_VERSION, /^\d+\.\d+\.\d+$/);
 * ```
 *
 * @module
 */

/**
 * Version of the encoder, kept equal to the package version in `deno.json`.
 *
 * @example Check the version string
 * ```ts
 * import { ENCODER_VERSION } from "@deepcabac/deepcabac/encoder";
 * import assert from "node:assert/strict";
 *
 * assert.equal(ENCODER_VERSION, "0.1.0");
 * ```
 */
export const ENCODER_VERSION = "0.1.0";
