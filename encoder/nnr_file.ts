/**
 * Assembles a complete NNR file from coded tensors: the units the reference writes (start unit,
 * model parameter set, empty topology unit, one data unit per tensor) plus our metadata and model
 * units in between (docs/FORMAT.md).
 *
 * @module
 */
import { constants, deflateRawSync } from "node:zlib";
import {
  CONTAINER_STORAGE_FORMAT,
  type ContainerTensor,
  formatMeta,
  MODEL_HEADER,
  tensorCheck,
  toSevenBitText,
} from "../core/container.ts";
import { concatBytes } from "../core/bytes.ts";
import { crc32 } from "../core/crc32.ts";
import { writeNnrUnits } from "./nnr_writer.ts";
import type { NnrUnitSpec } from "./nnr_writer.ts";

/** A coded tensor as it goes into the file. */
export interface FileTensor extends Omit<ContainerTensor, "crc32"> {
  /** Its complete NNR_NDU unit (from `encodeTensor()`). */
  readonly unit: Uint8Array;
  /** CRC-32 of its levels (from `encodeTensor()`). */
  readonly levelsCrc32: number;
  /** The qp it was coded at, or null for an integer tensor. */
  readonly qp: number | null;
}

/** What goes into an NNR file. */
export interface NnrFileContents {
  /** qp_density of every float tensor (the payloads' qp fields depend on it). */
  readonly qpDensity: number;
  /** The model without the coded tensors' data, or null for a bare set of tensors. */
  readonly model: { readonly format: "onnx" | "safetensors"; readonly skeleton: Uint8Array } | null;
  /** The coded tensors in the order their units are written. */
  readonly tensors: readonly FileTensor[];
}

/**
 * Writes an NNR file: the units the reference writes, with our metadata unit (the tensor list with
 * CRCs) and, with a model, the model skeleton between the reference's topology unit and the data
 * units. The reference decoder skips our units.
 *
 * @param contents The tensors and model.
 * @returns The file.
 *
 * @example
 * ```ts
 * import { writeNnrFile } from "./nnr_file.ts";
 * import { readNnrUnits } from "../decoder/nnr_units.ts";
 * import assert from "node:assert/strict";
 *
 * const file = writeNnrFile({ qpDensity: 2, model: null, tensors: [] });
 * const types = readNnrUnits(file).map((u) => u.type);
 * assert.deepEqual(types, [0, 1, 3, 3]);
 * ```
 */
export function writeNnrFile(contents: NnrFileContents): Uint8Array<ArrayBuffer> {
  const model = contents.model;
  const tensors = contents.tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    ...(t.slot === undefined ? {} : { slot: t.slot }),
    crc32: tensorCheck(t.levelsCrc32, { ...t, qpDensity: contents.qpDensity, mpsQp: 0 }),
    ...(t.levelBytes === undefined ? {} : { levelBytes: t.levelBytes }),
  }));
  const packed = model && deflateSkeleton(model.skeleton);
  const ours = [topologyUnit(formatMeta({
    model: model && {
      format: model.format,
      bytes: model.skeleton.length,
      deflatedBytes: packed!.length,
      crc32: crc32(model.skeleton),
    },
    tensors,
  }))];
  if (packed) ours.push(topologyUnit(MODEL_HEADER + toSevenBitText(packed)));
  return concatBytes([
    writeNnrUnits([...headerUnits(contents.qpDensity, 0), ...ours]),
    ...contents.tensors.map((t) => t.unit),
  ]);
}

/**
 * Raw deflate (RFC 1951) at zlib's strongest settings: the strongest compression that every
 * runtime's `DecompressionStream` undoes (brotli is not in every browser's).
 *
 * @param skeleton The model skeleton.
 * @returns The deflated bytes.
 *
 * @example
 * ```ts
 * import { deflateSkeleton } from "./nnr_file.ts";
 * import { inflate } from "../core/container.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new Uint8Array(1000).fill(7);
 * const packed = deflateSkeleton(data);
 * assert.ok(packed.length < 20);
 * assert.deepEqual(await inflate(packed, 1000, 0), data);
 * ```
 */
export function deflateSkeleton(skeleton: Uint8Array): Uint8Array<ArrayBuffer> {
  const packed = deflateRawSync(skeleton, {
    level: constants.Z_BEST_COMPRESSION,
    memLevel: 9,
    windowBits: 15,
  });
  return new Uint8Array(packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.length));
}

/**
 * Writes an NNR file exactly as the reference encoder does around the given data units: start
 * unit, model parameter set, empty topology unit, then the data units.
 *
 * @param units The complete NNR_NDU units, in order.
 * @param qpDensity `mps_qp_density` (the float payloads' qp fields depend on it).
 * @param profileIdc `general_profile_idc`: 1 for NNCodec 2.0 syntax, whose data units must then
 * have been written for profile 1.
 * @returns The file.
 *
 * @example
 * ```ts
 * import { writeBareNnrFile } from "./nnr_file.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(writeBareNnrFile([], 2).length, 18);
 * ```
 */
export function writeBareNnrFile(
  units: readonly Uint8Array[],
  qpDensity: number,
  profileIdc: 0 | 1 = 0,
): Uint8Array<ArrayBuffer> {
  return concatBytes([writeNnrUnits(headerUnits(qpDensity, profileIdc)), ...units]);
}

/** Start unit, model parameter set (base qp 0) and the reference's empty topology unit. */
function headerUnits(qpDensity: number, profileIdc: 0 | 1): NnrUnitSpec[] {
  return [
    { type: 0, fields: { general_profile_idc: profileIdc } },
    {
      type: 1,
      fields: {
        topology_carriage_flag: 1,
        mps_quantization_method_flags: 1,
        mps_qp_density: qpDensity,
        mps_quantization_parameter: 0,
      },
    },
    topologyUnit(""),
  ];
}

function topologyUnit(text: string): NnrUnitSpec {
  return {
    type: 3,
    fields: {
      topology_storage_format: CONTAINER_STORAGE_FORMAT,
      topology_compression_format: 0,
      topology_data: text,
    },
  };
}
