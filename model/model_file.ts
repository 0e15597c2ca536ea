/**
 * One interface over the model formats: take the tensors to be coded out of a model file, leaving
 * a skeleton with everything else, and put decoded tensors back into a skeleton.
 *
 * - ONNX: the skeleton is the model with the coded tensors' data removed (every other byte kept);
 *   a tensor's `slot` is its ONNX tensor index.
 * - safetensors: the skeleton is a safetensors file of the uncoded tensors and the metadata.
 *
 * @module
 */
import { DecodeError } from "../core/errors.ts";
import { joinOnnx, splitOnnx } from "./onnx.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
import type { ModelTensor } from "../core/model_tensor.ts";

/** The model file formats. */
export type ModelFormat = "onnx" | "safetensors";

/** A tensor of a model, with where it goes back. */
export interface SlottedTensor extends ModelTensor {
  /** ONNX tensor index; absent for safetensors. */
  readonly slot?: number;
}

/** A tensor left in the skeleton, and why. */
export interface KeptTensor {
  /** Its name. */
  readonly name: string;
  /** Why it was not taken. */
  readonly why: string;
  /** The tensor, unless its element type is not supported. */
  readonly tensor?: SlottedTensor;
}

/** A model split into a skeleton and the tensors taken out of it. */
export interface SplitModel {
  /** The format. */
  readonly format: ModelFormat;
  /** Everything but the taken tensors' data. */
  readonly skeleton: Uint8Array<ArrayBuffer>;
  /** The taken tensors, in model order. */
  readonly tensors: readonly SlottedTensor[];
  /** Tensors left in the skeleton with their reason, for reports. */
  readonly kept: readonly KeptTensor[];
}

/** Options of {@linkcode splitModel}. */
export interface SplitModelOptions {
  /** Which tensors to take out; the reason is reported for those kept. */
  readonly select: (t: SlottedTensor) => true | string;
  /** Reads an ONNX external-data file by its relative `location`. */
  readonly readExternal?: (location: string) => Uint8Array | Promise<Uint8Array>;
}

/**
 * Guesses a model file's format from its first bytes: safetensors starts with an 8-byte header
 * length and `{`; anything else is taken for ONNX (a protobuf has no magic number).
 *
 * @param bytes The file.
 * @returns The format.
 *
 * @example
 * ```ts
 * import { detectModelFormat } from "./model_file.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(detectModelFormat(new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d])), "safetensors");
 * assert.equal(detectModelFormat(new Uint8Array([0x08, 0x07])), "onnx");
 * ```
 */
export function detectModelFormat(bytes: Uint8Array): ModelFormat {
  return bytes.length >= 9 && bytes[8] === 0x7b && bytes[6] === 0 && bytes[7] === 0
    ? "safetensors"
    : "onnx";
}

/**
 * Splits a model file into a skeleton and the tensors `select` takes.
 *
 * @param bytes The model file.
 * @param format Its format.
 * @param options Which tensors to take, and external-data access.
 * @returns The skeleton and tensors.
 * @throws {DecodeError} If the model is malformed.
 *
 * @example
 * ```ts
 * import { joinModel, splitModel } from "./model_file.ts";
 * import { writeSafetensors } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const file = writeSafetensors([
 *   { name: "w", dtype: "F32", shape: [1], data: new Uint8Array(4) },
 *   { name: "flag", dtype: "BOOL", shape: [1], data: new Uint8Array(1) },
 * ]);
 * const split = await splitModel(file, "safetensors", {
 *   select: (t) => t.dtype === "F32" || "not a float",
 * });
 * assert.deepEqual(split.tensors.map((t) => t.name), ["w"]);
 * assert.deepEqual(split.kept.map(({ name, why }) => ({ name, why })), [
 *   { name: "flag", why: "not a float" },
 * ]);
 * assert.equal(joinModel("safetensors", split.skeleton, split.tensors).length, file.length);
 * ```
 */
export async function splitModel(
  bytes: Uint8Array,
  format: ModelFormat,
  options: SplitModelOptions,
): Promise<SplitModel> {
  const kept: KeptTensor[] = [];
  const take = (t: SlottedTensor) => {
    const verdict = options.select(t);
    if (verdict !== true) kept.push({ name: t.name, why: verdict, tensor: t });
    return verdict === true;
  };
  if (format === "onnx") {
    const selected = new Set<number>();
    const split = await splitOnnx(bytes, {
      select: (t) => {
        const ok = take({
          name: t.name,
          dtype: t.dtype,
          shape: t.shape,
          data: t.data,
          slot: t.index,
        });
        if (ok) selected.add(t.index);
        return ok;
      },
      ...(options.readExternal ? { readExternal: options.readExternal } : {}),
    });
    const tensors: SlottedTensor[] = [];
    for (const t of split.tensors) {
      if (t.dtype === null) {
        kept.push({ name: t.name, why: "element type not supported" });
      } else if (selected.has(t.index)) {
        tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: t.data, slot: t.index });
      }
    }
    return { format, skeleton: split.skeleton, tensors, kept };
  }
  const { tensors: all, metadata } = readSafetensors(bytes);
  const tensors = all.filter(take);
  const rest = all.filter((t) => !tensors.includes(t));
  return { format, skeleton: writeSafetensors(rest, metadata), tensors, kept };
}

/**
 * Puts tensors back into a skeleton made by {@linkcode splitModel}.
 *
 * @param format The skeleton's format.
 * @param skeleton The skeleton.
 * @param tensors The tensors (with their ONNX slots).
 * @returns The model file.
 * @throws {DecodeError} If a tensor does not fit its slot.
 *
 * @example
 * ```ts
 * import { joinModel } from "./model_file.ts";
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const w = { name: "w", dtype: "F32", shape: [1], data: new Uint8Array(4) } as const;
 * const model = joinModel("safetensors", writeSafetensors([]), [w]);
 * assert.deepEqual(readSafetensors(model).tensors.map((t) => t.name), ["w"]);
 * ```
 */
export function joinModel(
  format: ModelFormat,
  skeleton: Uint8Array,
  tensors: readonly SlottedTensor[],
): Uint8Array<ArrayBuffer> {
  if (format === "onnx") {
    const data = new Map<number, Uint8Array>();
    for (const t of tensors) {
      if (t.slot === undefined) {
        throw new DecodeError("corrupt", `Tensor "${t.name}" has no place in the ONNX model`, 0);
      }
      data.set(t.slot, t.data);
    }
    return joinOnnx(skeleton, data);
  }
  const { tensors: rest, metadata } = readSafetensors(skeleton);
  return writeSafetensors([
    ...tensors.map(({ name, dtype, shape, data }) => ({
      name,
      dtype,
      shape,
      data,
    })),
    ...rest,
  ], metadata);
}
