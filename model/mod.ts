/**
 * Model files: ONNX (initializers, `Constant` nodes, subgraphs, external data) and safetensors,
 * read into named tensors and written back with every other byte kept, plus the dtype
 * conversions the codec needs. Bytes in, bytes out; file access is injected.
 *
 * @example
 * ```ts
 * import { readSafetensors, toFloat32, writeSafetensors } from "@deepcabac/deepcabac/model";
 * import assert from "node:assert/strict";
 *
 * const data = new Uint8Array(Float32Array.of(1.5, -2).buffer);
 * const file = writeSafetensors([{ name: "w", dtype: "F32", shape: [2], data }]);
 * assert.deepEqual(toFloat32(readSafetensors(file).tensors[0]!), Float32Array.of(1.5, -2));
 * ```
 *
 * @module
 */
export * from "../core/model_tensor.ts";
export * from "./dtypes.ts";
export * from "./model_file.ts";
export * from "./onnx.ts";
export * from "./safetensors.ts";
