/**
 * The DeepCABAC decoder: payloads of NNC compressed data units and DeepCABAC-2020 streams, to
 * typed arrays. It imports nothing but the project's shared core.
 *
 * @example
 * ```ts
 * import { decodePayload } from "@deepcabac/deepcabac/decoder";
 * import { encodePayload } from "@deepcabac/deepcabac/encoder";
 * import assert from "node:assert/strict";
 *
 * const params = {
 *   shape: [3], payloadType: "int", dqFlag: 0, numGtxFlags: 11, scanOrder: 0,
 *   qpDensity: 0, mpsQp: 0, syntax: "nnc1", profileIdc: 0,
 * } as const;
 * const { bytes } = encodePayload(Int32Array.of(7, 0, -7), params);
 * assert.deepEqual(decodePayload(bytes, params).levels, Int32Array.of(7, 0, -7));
 * ```
 *
 * @module
 */
export * from "./decode_payload.ts";
export * from "./decode_dc2020.ts";
export * from "../core/errors.ts";
export * from "../core/step_size.ts";
export * from "../core/syntax.ts";
export * from "./nnr_units.ts";
export * from "../core/container.ts";
export * from "../core/model_tensor.ts";
export * from "./nnr_file.ts";
export * from "./decompress_model.ts";
export * from "./decode_stream.ts";
export type { SinkArray } from "./unit_decoder.ts";
export type { ScanPlan } from "../core/scan.ts";
export * from "./load_model.ts";
