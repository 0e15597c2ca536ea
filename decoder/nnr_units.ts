/**
 * Reader for the NNR unit layer of an NNC bitstream: unit framing and the syntax of the start
 * unit, model parameter set, topology unit and the header of each compressed data unit, as the
 * NNC reference software writes them (FORMAT.md §8). Units of other types are skipped by their
 * size. The CABAC payload of each data unit is located, not decoded.
 *
 * @module
 */
import { DecodeError } from "../core/errors.ts";
import { packEntryPoint } from "../core/syntax.ts";

/** Unit type numbers (`nnr_unit_type`). */
export const NNR_UNIT_TYPES = [
  "NNR_STR",
  "NNR_MPS",
  "NNR_LPS",
  "NNR_TPL",
  "NNR_QNT",
  "NNR_NDU",
  "NNR_AGG",
];

/** A syntax element value as parsed. */
export type NnrFieldValue = number | string | number[];

/** One NNR unit. */
export interface NnrUnit {
  /** Byte offset of the unit in the bitstream. */
  readonly offset: number;
  /** `nnr_unit_size`: the whole unit in bytes, size field included. */
  readonly size: number;
  /** 2 or 4: the size of the `nnr_unit_size_flag` + `nnr_unit_size` field. */
  readonly sizeFieldBytes: number;
  /** `nnr_unit_type`. */
  readonly type: number;
  /** Every syntax element read, under the reference's element names. */
  readonly fields: Readonly<Record<string, NnrFieldValue>>;
  /** For data units: bytes from the unit start to the payload (header incl. alignment). */
  readonly headerBytes?: number;
  /** For data units: where the CABAC payload starts in the bitstream. */
  readonly payloadOffset?: number;
  /** For data units: payload length in bytes. */
  readonly payloadLength?: number;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** MSB-first bit reader over one unit, bounded by the unit's end. */
class UnitBits {
  private bit: number;
  constructor(private readonly bytes: Uint8Array, start: number, private readonly end: number) {
    this.bit = start * 8;
  }
  get bytePosition(): number {
    return this.bit >> 3;
  }
  u(n: number): number {
    if (this.bit + n > this.end * 8) {
      throw new DecodeError("corrupt", "NNR unit syntax runs past nnr_unit_size", this.end);
    }
    let x = 0;
    for (let i = 0; i < n; i++, this.bit++) {
      x = x * 2 + ((this.bytes[this.bit >> 3]! >> (7 - (this.bit & 7))) & 1);
    }
    return x;
  }
  /** Two's-complement signed integer of n bits. */
  i(n: number): number {
    const x = this.u(n);
    return x >= 2 ** (n - 1) ? x - 2 ** n : x;
  }
  /** k-th order Exp-Golomb code (FORMAT.md §8.2). */
  ue(k: number): number {
    let x = 0;
    while (this.u(1) === 0) {
      x += 2 ** k;
      k++;
      if (k > 32) throw new DecodeError("corrupt", "Exp-Golomb code too long", this.bytePosition);
    }
    return x + this.u(k);
  }
  /** Signed Exp-Golomb: 2x − 1 for x > 0, −2x for x ≤ 0. */
  ie(k: number): number {
    const v = this.ue(k);
    return v & 1 ? (v + 1) / 2 : -v / 2;
  }
  /** NUL-terminated UTF-8 string starting at a byte boundary. */
  string(): string {
    const start = this.bit >> 3;
    const nul = this.bytes.subarray(start, this.end).indexOf(0);
    if ((this.bit & 7) !== 0 || nul < 0) {
      throw new DecodeError("corrupt", "unterminated string in NNR unit", start);
    }
    this.bit = (start + nul + 1) * 8;
    try {
      return UTF8.decode(this.bytes.subarray(start, start + nul));
    } catch {
      throw new DecodeError("corrupt", "string in NNR unit is not UTF-8", start);
    }
  }
  /** byte_alignment(): a 1 bit, then 0 bits up to the byte boundary. */
  byteAlignment(): void {
    if (this.u(1) !== 1) {
      throw new DecodeError("corrupt", "bad byte_alignment()", this.bytePosition);
    }
    while (this.bit & 7) {
      if (this.u(1) !== 0) {
        throw new DecodeError("corrupt", "bad byte_alignment()", this.bytePosition);
      }
    }
  }
}

/**
 * Splits an NNR bitstream into its units and parses the syntax of each start, model parameter
 * set, topology and compressed data unit. Profile 1 (NNCodec 2.0) syntax is used after a start
 * unit with `general_profile_idc` 1.
 *
 * @param bytes The whole bitstream.
 * @returns The units in bitstream order.
 * @throws {DecodeError} On truncated units or syntax that does not fit its unit.
 *
 * @example
 * ```ts
 * import { readNnrUnits } from "./nnr_units.ts";
 * import assert from "node:assert/strict";
 *
 * // A start unit: size 4, type 0, independently decodable, general_profile_idc 0.
 * const units = readNnrUnits(new Uint8Array([0x00, 0x04, 0x02, 0x00]));
 * assert.equal(units[0]!.fields.general_profile_idc, 0);
 * ```
 */
export function readNnrUnits(bytes: Uint8Array): NnrUnit[] {
  const units: NnrUnit[] = [];
  let profile = 0;
  for (let offset = 0; offset < bytes.length;) {
    const unit = readNnrUnit(bytes, offset, profile);
    if (unit.type === 0) profile = unit.fields.general_profile_idc as number;
    units.push(unit);
    offset += unit.size;
  }
  return units;
}

/**
 * The size of the unit starting at `offset` (`nnr_unit_size`), or `null` if fewer bytes than its
 * size field are available yet. Lets a streaming reader know how much to buffer.
 *
 * @param bytes Bytes available.
 * @param offset Where the unit starts.
 * @returns The unit's size in bytes, or null.
 * @throws {DecodeError} If the size is smaller than a unit header.
 *
 * @example
 * ```ts
 * import { nnrUnitSize } from "./nnr_units.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(nnrUnitSize(new Uint8Array([0x00, 0x04]), 0), 4);
 * assert.equal(nnrUnitSize(new Uint8Array([0x80, 0x00]), 0), null);
 * ```
 */
export function nnrUnitSize(bytes: Uint8Array, offset: number): number | null {
  if (offset + 2 > bytes.length) return null;
  const long = bytes[offset]! >> 7;
  if (long && offset + 4 > bytes.length) return null;
  const size = long
    ? ((bytes[offset]! & 0x7f) * 2 ** 24) + (bytes[offset + 1]! << 16) +
      (bytes[offset + 2]! << 8) + bytes[offset + 3]!
    : ((bytes[offset]! & 0x7f) << 8) + bytes[offset + 1]!;
  if (size < (long ? 5 : 3)) {
    throw new DecodeError("corrupt", `nnr_unit_size ${size} is too small`, offset);
  }
  return size;
}

/**
 * Parses the one unit that starts at `offset`.
 *
 * @param bytes The bitstream (or at least the whole unit).
 * @param offset Where the unit starts.
 * @param profile `general_profile_idc` of the stream so far (1 selects NNCodec 2.0 syntax).
 * @returns The unit.
 * @throws {DecodeError} On a truncated unit or syntax that does not fit it.
 *
 * @example
 * ```ts
 * import { readNnrUnit } from "./nnr_units.ts";
 * import assert from "node:assert/strict";
 *
 * const unit = readNnrUnit(new Uint8Array([0xff, 0x00, 0x04, 0x02, 0x01]), 1, 0);
 * assert.equal(unit.fields.general_profile_idc, 1);
 * ```
 */
export function readNnrUnit(bytes: Uint8Array, offset: number, profile: number): NnrUnit {
  const size = nnrUnitSize(bytes, offset);
  if (size === null) throw new DecodeError("truncated", "NNR unit header is cut off", offset);
  const sizeFieldBytes = bytes[offset]! >> 7 ? 4 : 2;
  if (offset + size > bytes.length) {
    throw new DecodeError("truncated", `NNR unit of ${size} bytes runs past the end`, offset);
  }
  const fields: Record<string, NnrFieldValue> = {};
  fields.nnr_unit_size_flag = sizeFieldBytes === 4 ? 1 : 0;
  fields.nnr_unit_size = size;
  const b = new UnitBits(bytes, offset + sizeFieldBytes, offset + size);
  const type = fields.nnr_unit_type = b.u(6);
  fields.independently_decodable_flag = b.u(1);
  fields.partial_data_counter_present_flag = b.u(1);
  if (fields.partial_data_counter_present_flag) fields.partial_data_counter = b.u(8);
  const unit: NnrUnit = { offset, size, sizeFieldBytes, type, fields };
  if (type === 0) {
    fields.general_profile_idc = b.u(8);
  } else if (type === 1) {
    readModelParameterSet(b, fields, profile);
  } else if (type === 3) {
    fields.topology_storage_format = b.u(8);
    fields.topology_compression_format = b.u(8);
    fields.topology_data = b.string();
  } else if (type === 5) {
    readDataUnitHeader(b, fields, profile);
    const headerBytes = b.bytePosition - offset;
    return {
      ...unit,
      headerBytes,
      payloadOffset: offset + headerBytes,
      payloadLength: size - headerBytes,
    };
  }
  if ((type === 0 || type === 1 || type === 3) && b.bytePosition !== offset + size) {
    // The reference decoders assert this for the units they parse (FORMAT.md 8.3).
    throw new DecodeError(
      "corrupt",
      `NNR unit has ${offset + size - b.bytePosition} bytes after its syntax`,
      b.bytePosition,
    );
  }
  return unit;
}

function readModelParameterSet(b: UnitBits, f: Record<string, NnrFieldValue>, profile: number) {
  for (
    const name of [
      "topology_carriage_flag",
      "mps_sparsification_flag",
      "mps_pruning_flag",
      "mps_unification_flag",
      "mps_decomposition_performance_map_flag",
    ]
  ) f[name] = b.u(1);
  f.mps_quantization_method_flags = b.u(3);
  f.mps_topology_indexed_reference_flag = b.u(1);
  if (profile === 1) {
    f.base_model_id_present_flag = b.u(1);
    f.validation_set_performance_present_flag = b.u(1);
    f.metric_type_performance_map_valid_flag = b.u(1);
    f.mps_parent_signalling_enabled_flag = b.u(1);
    f.nnr_reserved_zero_1bit = b.u(1);
    f.nnr_reserved_zero_2bits = b.u(2);
  } else {
    f.nnr_reserved_zero_7bits = b.u(7);
  }
  f.mps_qp_density = b.u(3);
  f.mps_quantization_parameter = b.i(13);
  b.byteAlignment();
}

function readDataUnitHeader(b: UnitBits, f: Record<string, NnrFieldValue>, profile: number) {
  const payloadType = f.nnr_compressed_data_unit_payload_type = b.u(5);
  f.nnr_multiple_topology_elements_present_flag = b.u(1);
  f.nnr_decompressed_data_format_present_flag = b.u(1);
  const inputParameters = f.input_parameters_present_flag = b.u(1);
  if (
    f.nnr_multiple_topology_elements_present_flag || f.nnr_decompressed_data_format_present_flag
  ) {
    throw new DecodeError(
      "unsupported",
      "NDU with several topology elements or a decompressed data format",
      b.bytePosition,
    );
  }
  f.topology_elem_id = b.string();
  if (profile === 1) {
    f.node_id_present_flag = b.u(1);
    if (f.node_id_present_flag) {
      f.device_id = b.ue(1);
      f.parameter_id = b.ue(5);
      f.put_node_depth = b.ue(4);
    }
  }
  if (payloadType === 1 || payloadType === 3) f.codebook_present_flag = b.u(1);
  if (f.codebook_present_flag) {
    throw new DecodeError("unsupported", "NDU with a codebook", b.bytePosition);
  }
  const dq = payloadType <= 1 || payloadType === 3 ? (f.dq_flag = b.u(1)) : 0;
  if (!inputParameters) {
    throw new DecodeError("unsupported", "NDU without input parameters", b.bytePosition);
  }
  f.tensor_dimensions_flag = b.u(1);
  f.cabac_unary_length_flag = b.u(1);
  f.compressed_parameter_types = b.u(4);
  if (!f.tensor_dimensions_flag || !f.cabac_unary_length_flag || f.compressed_parameter_types) {
    throw new DecodeError(
      "unsupported",
      "NDU input parameters of a kind not written by NNCodec",
      b.bytePosition,
    );
  }
  const count = f.count_tensor_dimensions = b.ue(1);
  if (count < 1 || count > 8) {
    throw new DecodeError(
      "corrupt",
      `count_tensor_dimensions ${count} is out of range`,
      b.bytePosition,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < count; i++) dims.push(b.ue(7));
  f.tensor_dimensions = dims;
  f.cabac_unary_length_minus1 = b.u(8);
  if (count > 1) {
    if (profile === 1) {
      f.first_tensor_dimension_shift = b.ue(1);
      if (f.first_tensor_dimension_shift) {
        throw new DecodeError("unsupported", "first_tensor_dimension_shift > 0", b.bytePosition);
      }
    }
    const scan = f.scan_order = b.u(4);
    if (scan > 4) {
      throw new DecodeError("corrupt", `scan_order ${scan} is not in 0..4`, b.bytePosition);
    }
    if (scan > 0) f.cabac_entry_point_list = readEntryPoints(b, dims[0]!, scan, dq);
  }
  b.byteAlignment();
}

/** The entry points of the block rows 1..R−1, packed as (delta << 11) | (value8 << 3) | dqState. */
function readEntryPoints(b: UnitBits, height: number, scan: number, dq: number): number[] {
  const count = Math.ceil(height / (4 << scan)) - 1;
  const list: number[] = [];
  let delta = 0;
  for (let j = 0; j < count; j++) {
    const value8 = b.u(8);
    const dqState = dq ? b.u(3) : 0;
    delta = j === 0 ? b.ue(11) : delta + b.ie(7);
    if (delta < 0) throw new DecodeError("corrupt", "negative entry-point offset", b.bytePosition);
    list.push(packEntryPoint({ bitOffsetDelta: delta, value8, dqState }));
  }
  return list;
}
