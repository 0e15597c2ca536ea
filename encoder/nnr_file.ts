/**
 * Assembles a complete NNR file from coded tensors: the units the reference writes (start unit,
 * model parameter set, empty topology unit, one data unit per tensor) plus our metadata and model
 * units in between (docs/FORMAT.md).
 *
 * @module
 */
import {
  CONTAINER_STORAGE_FORMAT,
  type ContainerTensor,
  deflate,
  formatMeta,
  MODEL_HEADER,
  toBase64,
} from "../core/container.ts";
import { concatBytes } from "../core/bytes.ts";
import { crc32 } from "../core/crc32.ts";
import { writeNnrUnits } from "./nnr_writer.ts";
import type { NnrUnitSpec } from "./nnr_writer.ts";

/** A coded tensor as it goes into the file. */
export interface FileTensor extends ContainerTensor {
  /** Its complete NNR_NDU unit (from `encodeTensor()`). */
  readonly unit: Uint8Array;
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
 * Writes an NNR file. Without a model and with `metadata: false` the result is exactly what the
 * reference encoder writes for the same data units.
 *
 * @param contents The tensors and model.
 * @param options `metadata: false` leaves out our metadata and model units.
 * @returns The file.
 *
 * @example
 * ```ts
 * import { writeNnrFile } from "./nnr_file.ts";
 * import { readNnrUnits } from "../decoder/nnr_units.ts";
 * import assert from "node:assert/strict";
 *
 * const file = await writeNnrFile({ qpDensity: 2, model: null, tensors: [] });
 * const types = readNnrUnits(file).map((u) => u.type);
 * assert.deepEqual(types, [0, 1, 3, 3]);
 * ```
 */
export async function writeNnrFile(
  contents: NnrFileContents,
  options: { readonly metadata?: boolean } = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const units: NnrUnitSpec[] = [
    { type: 0, fields: { general_profile_idc: 0 } },
    {
      type: 1,
      fields: {
        topology_carriage_flag: 1,
        mps_quantization_method_flags: 1,
        mps_qp_density: contents.qpDensity,
        mps_quantization_parameter: 0,
      },
    },
    topologyUnit(""),
  ];
  if (options.metadata !== false) {
    const model = contents.model;
    const tensors = contents.tensors.map(({ name, dtype, shape, slot, crc32 }) => ({
      name,
      dtype,
      shape,
      ...(slot === undefined ? {} : { slot }),
      crc32,
    }));
    units.push(topologyUnit(formatMeta({
      model: model && {
        format: model.format,
        bytes: model.skeleton.length,
        crc32: crc32(model.skeleton),
      },
      tensors,
    })));
    if (model) {
      const packed = await deflate(new Uint8Array(model.skeleton));
      units.push(topologyUnit(MODEL_HEADER + toBase64(packed)));
    }
  }
  return concatBytes([writeNnrUnits(units), ...contents.tensors.map((t) => t.unit)]);
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
