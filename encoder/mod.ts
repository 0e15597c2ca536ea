/**
 * The DeepCABAC encoder: quantisers (nearest, rate-distortion URQ, dependent-quantisation
 * trellis) and the payload encoder.
 *
 * @example
 * ```ts
 * import { encodePayload, quantizeUniform } from "@deepcabac/deepcabac/encoder";
 * import assert from "node:assert/strict";
 *
 * const levels = quantizeUniform(Float32Array.of(0.01, -0.02, 0.5), 2 ** -8);
 * const out = encodePayload(levels, {
 *   shape: [3], payloadType: "float", dqFlag: 0, numGtxFlags: 11, scanOrder: 0,
 *   qpDensity: 2, mpsQp: 0, syntax: "nnc1", profileIdc: 0, qp: -32,
 * });
 * assert.ok(out.bytes.length > 0);
 * ```
 *
 * @module
 */
export * from "./encode_payload.ts";
export * from "./quantize.ts";
export * from "./encode_dc2020.ts";
export * from "./encode_tensor.ts";
export * from "./nnr_writer.ts";
export * from "./nnr_file.ts";
export * from "./compress_model.ts";
export * from "./encode_pool.ts";
