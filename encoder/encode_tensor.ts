/**
 * One tensor to one NNR compressed data unit: quantisation, the CABAC payload, the unit header
 * with its entry points, and a check that the unit decodes to the levels it was made from.
 *
 * @module
 */
import { levelsCrc32 } from "../core/crc32.ts";
import { autoScanOrder, effectiveScanOrder, matrixView } from "../core/scan.ts";
import { levelBytes, packEntryPoint, payloadParams } from "../core/syntax.ts";
import { type DecodedPayload, decodePayload } from "../decoder/decode_payload.ts";
import { encodePayload, type EncodePayloadParams } from "./encode_payload.ts";
import { writeNnrUnit } from "./nnr_writer.ts";
import { quantizeTensor } from "./quantize.ts";

/** How a float tensor is quantised. */
export interface FloatCoding {
  /** Quantised floats (NNR_PT_FLOAT). */
  readonly kind: "float";
  /** Quantisation parameter; the step is derived from it and `qpDensity`. */
  readonly qp: number;
  /** qp_density, 0..7: 2^d qp steps per octave of step size. */
  readonly qpDensity: number;
  /** Dependent (trellis-coded) quantisation. */
  readonly dq: boolean;
  /** Rate-distortion weight in the reference's `lambda_scale` convention; 0 is nearest. */
  readonly lambdaScale: number;
  /**
   * Per-weight importance F_i (DeepCABAC DC-v1: distortion is weighted by it in the RD
   * decision), same length as the values; 1 everywhere if absent. Matters only with λ > 0.
   */
  readonly importance?: Float32Array;
}

/** How an integer tensor is coded: losslessly (NNR_PT_INT). */
export interface IntCoding {
  /** Integers coded as they are. */
  readonly kind: "int";
}

/** Coding parameters common to both payload types. */
export interface UnitCoding {
  /**
   * Requested scan order 0..4 (forced to 0 where the shape needs it, as the reference does), or
   * `"auto"`: the block scan of `autoScanOrder()` where a trial on one block row says it costs
   * at most {@linkcode AUTO_SCAN_MAX_COST} of the size, else 0.
   */
  readonly scanOrder: number | "auto";
  /** Number of greater-than flags minus one (`cabac_unary_length_minus1`). */
  readonly cabacUnaryLengthMinus1: number;
}

/** A tensor to code: row-major values and how to code them. */
export interface TensorJob {
  /** `topology_elem_id` of the unit. */
  readonly name: string;
  /** Shape, at least one dimension, no zero dimension. */
  readonly shape: readonly number[];
  /** Float32 values for float coding, int32 values for integer coding. */
  readonly values: Float32Array | Int32Array;
  /** The coding. */
  readonly coding: (FloatCoding | IntCoding) & UnitCoding;
}

/** The coded unit. */
export interface EncodedTensor {
  /** The complete NNR_NDU unit. */
  readonly unit: Uint8Array<ArrayBuffer>;
  /** Length of its CABAC payload. */
  readonly payloadBytes: number;
  /** The qp used (raised if the requested one would overflow the levels), or null for integers. */
  readonly qp: number | null;
  /** The step size, or null for integers. */
  readonly step: number | null;
  /** CRC-32 of the levels as little-endian int32 (what the decoder checks). */
  readonly levelsCrc32: number;
  /** Sum of squared reconstruction errors (0 for integers). */
  readonly squaredError: number;
  /** The scan order used. */
  readonly scanOrder: number;
  /** Bytes of the smallest signed integer holding every level: 1, 2 or 4. */
  readonly levelBytes: 1 | 2 | 4;
}

/**
 * The largest share of a tensor's size that `scanOrder: "auto"` gives up for entry points. A
 * block scan interleaves the rows of a block (64 filters of a convolution at a time), which costs
 * next to nothing where rows are alike and up to 15 % where their magnitudes differ (IS-Net):
 * measured, not assumed.
 */
export const AUTO_SCAN_MAX_COST = 0.0025;

/**
 * Quantises and codes one tensor into an NNR compressed data unit (first-edition syntax,
 * `general_profile_idc` 0, base qp 0), then decodes the unit's payload to take the entry points
 * from it and to check it reproduces the levels.
 *
 * @param job The tensor and its coding.
 * @returns The unit and what the container records about it.
 * @throws {RangeError} If the qp cannot be signalled or the shape is not codable.
 *
 * @example
 * ```ts
 * import { encodeTensor } from "./encode_tensor.ts";
 * import { readNnrUnits } from "../decoder/nnr_units.ts";
 * import assert from "node:assert/strict";
 *
 * const out = encodeTensor({
 *   name: "fc.weight",
 *   shape: [2, 3],
 *   values: Float32Array.of(0.1, -0.2, 0.3, 0, 0.05, -0.01),
 *   coding: {
 *     kind: "float", qp: -38, qpDensity: 2, dq: true, lambdaScale: 0,
 *     scanOrder: 0, cabacUnaryLengthMinus1: 10,
 *   },
 * });
 * const [unit] = readNnrUnits(out.unit);
 * assert.equal(unit!.fields.topology_elem_id, "fc.weight");
 * assert.deepEqual(unit!.fields.tensor_dimensions, [2, 3]);
 * ```
 */
export function encodeTensor(job: TensorJob): EncodedTensor {
  const { shape, coding } = job;
  if (shape.length < 1 || shape.length > 8 || shape.some((d) => !(d >= 1))) {
    throw new RangeError(`Cannot code tensor "${job.name}" of shape [${shape}]`);
  }
  const scanOrder = coding.scanOrder === "auto"
    ? trialScanOrder(job)
    : effectiveScanOrder(shape, coding.scanOrder);
  const params = payloadParams(shape, {
    payloadType: coding.kind,
    dqFlag: coding.kind === "float" && coding.dq ? 1 : 0,
    numGtxFlags: coding.cabacUnaryLengthMinus1 + 1,
    scanOrder,
    qpDensity: coding.kind === "float" ? coding.qpDensity : 0,
  });
  let levels: Int32Array;
  let qp: number | null = null;
  let step: number | null = null;
  if (coding.kind === "float") {
    if (!(job.values instanceof Float32Array)) throw new TypeError("Float coding needs floats");
    ({ qp, step, levels } = quantizeTensor(job.values, coding.qp, params, {
      lambdaScale: coding.lambdaScale,
      ...(coding.importance ? { importance: coding.importance } : {}),
    }));
  } else {
    if (!(job.values instanceof Int32Array)) throw new TypeError("Integer coding needs int32");
    levels = job.values;
  }
  const { unit, payloadBytes, decoded } = encodeDataUnit(job.name, levels, {
    ...params,
    ...(qp === null ? {} : { qp }),
    estimatorSets: "exact",
  });
  let squaredError = 0;
  if (step !== null) {
    const w = job.values;
    for (let i = 0; i < w.length; i++) squaredError += (w[i]! - decoded.recon![i]!) ** 2;
  }
  return {
    unit,
    payloadBytes,
    qp,
    step,
    levelsCrc32: levelsCrc32(decoded.levels),
    squaredError,
    scanOrder,
    levelBytes: levelBytes(decoded.levels),
  };
}

/**
 * `scanOrder: "auto"`: the block scan `autoScanOrder()` proposes, if coding the middle block row
 * with it costs at most {@linkcode AUTO_SCAN_MAX_COST} more than row-major (the context resets
 * and entry points that the rest adds are a few bytes), else 0.
 */
function trialScanOrder(job: TensorJob): number {
  const s = autoScanOrder(job.shape);
  if (s === 0) return 0;
  const [height, width] = matrixView(job.shape);
  const rows = 4 << s;
  const first = Math.floor(Math.ceil(height / rows) / 2) * rows;
  const count = Math.min(height, first + rows) - first;
  const part = (values: Float32Array | Int32Array) =>
    values.subarray(first * width, (first + count) * width);
  const trial = (scanOrder: number) =>
    encodeTensor({
      name: job.name,
      shape: [count, width],
      values: part(job.values),
      coding: job.coding.kind === "float" && job.coding.importance
        ? { ...job.coding, scanOrder, importance: part(job.coding.importance) as Float32Array }
        : { ...job.coding, scanOrder },
    }).payloadBytes;
  return trial(s) <= (1 + AUTO_SCAN_MAX_COST) * trial(0) ? s : 0;
}

/** A data unit coded from its levels. */
export interface EncodedDataUnit {
  /** The complete NNR_NDU unit. */
  readonly unit: Uint8Array<ArrayBuffer>;
  /** Length of its CABAC payload. */
  readonly payloadBytes: number;
  /** The payload decoded again (levels and reconstruction; no coded levels). */
  readonly decoded: DecodedPayload;
}

/**
 * Codes levels into an NNR compressed data unit: the payload, then the unit header with the
 * entry points that decoding the payload gives (as the reference encoder does), checking that the
 * payload decodes to the levels. With `syntax: "nnc2"` and `profileIdc: 1` the header carries the
 * profile-1 elements the NNCodec 2.0 encoder writes (`parameter_id` = `parameterId`).
 *
 * @param name `topology_elem_id` of the unit.
 * @param levels The levels (reconstruction indices) in tensor layout.
 * @param params How to code them (the scan order as signalled; a shape that forces row-major
 * signals 0).
 * @param parameterId Profile 1: the tensor's index in the stream.
 * @returns The unit.
 * @throws {RangeError} If the qp cannot be signalled or the shape is not codable.
 *
 * @example
 * ```ts
 * import { encodeDataUnit } from "./encode_tensor.ts";
 * import { levelBytes, packEntryPoint, payloadParams } from "../core/syntax.ts";
 * import { readNnrUnits } from "../decoder/nnr_units.ts";
 * import assert from "node:assert/strict";
 *
 * const params = { ...payloadParams([2, 2], { dqFlag: 0 }), qp: -32 };
 * const { unit } = encodeDataUnit("w", Int32Array.of(1, 0, -3, 2), params);
 * assert.deepEqual(readNnrUnits(unit)[0]!.fields.tensor_dimensions, [2, 2]);
 * ```
 */
export function encodeDataUnit(
  name: string,
  levels: Int32Array,
  params: EncodePayloadParams,
  parameterId = 0,
): EncodedDataUnit {
  const encoded = encodePayload(levels, params);
  const decoded = decodePayload(encoded.bytes, params, {}, { codedLevels: false });
  for (let i = 0; i < levels.length; i++) {
    if (decoded.levels[i] !== levels[i]) {
      throw new Error(`Internal error: tensor "${name}" does not decode to its levels`);
    }
  }
  const profile1 = params.syntax === "nnc2" && params.profileIdc === 1;
  const fields = {
    nnr_compressed_data_unit_payload_type: params.payloadType === "float" ? 1 : 0,
    topology_elem_id: name,
    ...(profile1
      ? { node_id_present_flag: 1, device_id: 0, parameter_id: parameterId, put_node_depth: 0 }
      : {}),
    dq_flag: params.dqFlag,
    tensor_dimensions: [...params.shape],
    cabac_unary_length_minus1: params.numGtxFlags - 1,
    scan_order: params.scanOrder,
    cabac_entry_point_list: decoded.entryPoints.map(packEntryPoint),
  };
  const unit = writeNnrUnit({ type: 5, fields, payload: encoded.bytes }, profile1 ? 1 : 0);
  return { unit, payloadBytes: encoded.bytes.length, decoded };
}
