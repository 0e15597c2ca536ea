/**
 * NNR file to model file: decode every tensor, restore its dtype, and put it back into the model
 * skeleton the file carries (or write the tensors as safetensors).
 *
 * @module
 */
import { DecodeError } from "../core/errors.ts";
import { joinModel, type ModelFormat, type SlottedTensor } from "../model/model_file.ts";
import { writeSafetensors } from "../model/safetensors.ts";
import { type NnrFile, type NnrFileLimits, readNnrFile } from "./nnr_file.ts";
import { modelBytes, toStreamTensor } from "./decode_stream.ts";

/** Options of {@linkcode decompressModel}. */
export interface DecompressOptions {
  /**
   * Output format. Default: the format of the model the file carries, or safetensors for files
   * without one (e.g. from the reference encoder). ONNX needs a file that carries an ONNX model.
   */
  readonly format?: ModelFormat;
  /** Allocation limits for untrusted files. */
  readonly limits?: NnrFileLimits;
}

/** The result of {@linkcode decompressModel}. */
export interface DecompressResult {
  /** The output format. */
  readonly format: ModelFormat;
  /** The model file. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The decoded file, for reports. */
  readonly file: NnrFile;
}

/**
 * Decodes an NNR file back into a model file.
 *
 * @param bytes The NNR file.
 * @param options Output format and limits.
 * @returns The model file and the decoded NNR file.
 * @throws {DecodeError} If the file is corrupt, or ONNX is asked of a file without an ONNX model.
 *
 * @example
 * ```ts
 * import { decompressModel } from "./decompress_model.ts";
 * import { compressModel } from "../encoder/compress_model.ts";
 * import { readSafetensors, writeSafetensors } from "../model/safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const ids = new Uint8Array(new Int32Array([3, 1, 4, 1, 5]).buffer);
 * const model = writeSafetensors([{ name: "ids", dtype: "I32", shape: [5], data: ids }]);
 * const { bytes } = await compressModel(model, "safetensors");
 * const out = await decompressModel(bytes);
 * assert.deepEqual(readSafetensors(out.bytes).tensors[0]!.data, ids);
 * ```
 */
export async function decompressModel(
  bytes: Uint8Array,
  options: DecompressOptions = {},
): Promise<DecompressResult> {
  const file = await readNnrFile(bytes, options.limits);
  const format = options.format ?? file.model?.format ?? "safetensors";
  const tensors: SlottedTensor[] = file.tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    data: modelBytes(toStreamTensor(t, "float32")),
    ...(t.slot === undefined ? {} : { slot: t.slot }),
  }));
  if (file.model?.format === format) {
    return { format, bytes: joinModel(format, file.model.skeleton, tensors), file };
  }
  if (format === "onnx") {
    throw new DecodeError(
      "unsupported",
      "This file carries no ONNX model: decode to safetensors",
      0,
    );
  }
  return { format, bytes: writeSafetensors(tensors.map(({ slot: _, ...t }) => t)), file };
}
