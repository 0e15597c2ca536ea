/**
 * Writer for the NNR unit layer: the mirror of `decoder/nnr_units.ts`. It takes the syntax
 * elements under the same (reference) names that the reader returns, so a unit read and written
 * again comes out byte for byte the same (docs/FORMAT.md).
 *
 * @module
 */
import { concatBytes } from "../core/bytes.ts";
import { unpackEntryPoint } from "../core/syntax.ts";
import type { NnrFieldValue } from "../decoder/nnr_units.ts";

/** One unit to write: its type, syntax elements and, for data units, the CABAC payload. */
export interface NnrUnitSpec {
  /** `nnr_unit_type` (0 start, 1 model parameter set, 3 topology, 5 compressed data). */
  readonly type: number;
  /**
   * The syntax elements of the unit body, under the names `readNnrUnits()` returns. Framing
   * fields (`nnr_unit_size*`, `nnr_unit_type`) are derived and ignored here.
   */
  readonly fields: Readonly<Record<string, NnrFieldValue>>;
  /** Bytes appended after the unit's syntax (the payload of a data unit). */
  readonly payload?: Uint8Array;
  /**
   * 2 or 4: force the size-field form. By default the 2-byte form is used whenever the unit fits
   * in 32767 bytes, as the reference encoder does.
   */
  readonly sizeFieldBytes?: 2 | 4;
}

/** Largest unit the 4-byte size form can describe. */
const MAX_UNIT_BYTES = 2 ** 31 - 1;

/** MSB-first bit writer with doubling growth. */
class BitWriter {
  private buf = new Uint8Array(64);
  private bit = 0;

  u(n: number, value: number): void {
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** n) {
      throw new RangeError(`Cannot write ${value} in ${n} bits`);
    }
    this.reserve(n);
    for (let i = n - 1; i >= 0; i--, this.bit++) {
      if (Math.floor(value / 2 ** i) & 1) this.buf[this.bit >> 3]! |= 0x80 >> (this.bit & 7);
    }
  }
  i(n: number, value: number): void {
    if (!Number.isInteger(value) || value < -(2 ** (n - 1)) || value >= 2 ** (n - 1)) {
      throw new RangeError(`Cannot write ${value} as a ${n}-bit signed integer`);
    }
    this.u(n, value < 0 ? value + 2 ** n : value);
  }
  /** k-th order Exp-Golomb code (FORMAT.md §8.2). */
  ue(k: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`Cannot write ${value} as an Exp-Golomb code`);
    }
    let x = value;
    while (x >= 2 ** k) {
      this.u(1, 0);
      x -= 2 ** k;
      k++;
    }
    this.u(1, 1);
    this.u(k, x);
  }
  /** Signed Exp-Golomb: x > 0 as 2x − 1, x ≤ 0 as −2x. */
  ie(k: number, value: number): void {
    this.ue(k, value > 0 ? 2 * value - 1 : -2 * value);
  }
  string(value: string): void {
    const bytes = new TextEncoder().encode(value);
    if (bytes.includes(0)) throw new RangeError(`Cannot write a string containing NUL: ${value}`);
    if (this.bit & 7) throw new RangeError("Cannot write a string off a byte boundary");
    this.bytes(bytes);
    this.u(8, 0);
  }
  bytes(bytes: Uint8Array): void {
    this.reserve(bytes.length * 8);
    this.buf.set(bytes, this.bit >> 3);
    this.bit += bytes.length * 8;
  }
  byteAlignment(): void {
    this.u(1, 1);
    while (this.bit & 7) this.u(1, 0);
  }
  finish(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, (this.bit + 7) >> 3);
  }
  private reserve(bits: number): void {
    const need = ((this.bit + bits) >> 3) + 1;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf);
    this.buf = grown;
  }
}

function num(f: Readonly<Record<string, NnrFieldValue>>, name: string, fallback?: number): number {
  const v = f[name] ?? fallback;
  if (typeof v !== "number") throw new TypeError(`NNR field ${name} must be a number`);
  return v;
}

/**
 * Writes NNR units one after the other. A start unit with `general_profile_idc` 1 switches the
 * following units to profile 1 (NNCodec 2.0) syntax, as in the reader.
 *
 * @param units The units in bitstream order.
 * @returns The bitstream.
 * @throws {RangeError} If a field does not fit its syntax element or a unit is too large.
 *
 * @example A start unit, as the reference writes it
 * ```ts
 * import { writeNnrUnits } from "./nnr_writer.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = writeNnrUnits([
 *   { type: 0, fields: { independently_decodable_flag: 1, general_profile_idc: 0 } },
 * ]);
 * assert.deepEqual(bytes, new Uint8Array([0x00, 0x04, 0x02, 0x00]));
 * ```
 */
export function writeNnrUnits(units: readonly NnrUnitSpec[]): Uint8Array<ArrayBuffer> {
  let profile = 0;
  const parts: Uint8Array[] = [];
  for (const unit of units) {
    if (unit.type === 0) profile = num(unit.fields, "general_profile_idc");
    parts.push(writeNnrUnit(unit, profile));
  }
  return concatBytes(parts);
}

/**
 * Writes one NNR unit: framing, the syntax of its type, then its payload.
 *
 * @param unit The unit.
 * @param profile `general_profile_idc` of the stream (1 selects NNCodec 2.0 syntax).
 * @returns The unit's bytes.
 * @throws {RangeError} If a field does not fit its syntax element or the unit is too large.
 *
 * @example A topology unit with no topology data
 * ```ts
 * import { writeNnrUnit } from "./nnr_writer.ts";
 * import assert from "node:assert/strict";
 *
 * const tpl = writeNnrUnit({
 *   type: 3,
 *   fields: { topology_storage_format: 0, topology_compression_format: 0, topology_data: "" },
 * }, 0);
 * assert.deepEqual(tpl, new Uint8Array([0x00, 0x06, 0x0e, 0x00, 0x00, 0x00]));
 * ```
 */
export function writeNnrUnit(unit: NnrUnitSpec, profile: number): Uint8Array<ArrayBuffer> {
  const f = unit.fields;
  const w = new BitWriter();
  w.u(6, unit.type);
  w.u(1, num(f, "independently_decodable_flag", 1));
  const partial = num(f, "partial_data_counter_present_flag", 0);
  w.u(1, partial);
  if (partial) w.u(8, num(f, "partial_data_counter"));
  if (unit.type === 0) {
    w.u(8, num(f, "general_profile_idc"));
  } else if (unit.type === 1) {
    writeModelParameterSet(w, f, profile);
  } else if (unit.type === 3) {
    w.u(8, num(f, "topology_storage_format"));
    w.u(8, num(f, "topology_compression_format"));
    const data = f.topology_data ?? "";
    if (typeof data !== "string") throw new TypeError("topology_data must be a string");
    w.string(data);
  } else if (unit.type === 5) {
    writeDataUnitHeader(w, f, profile);
  } else {
    throw new RangeError(`Cannot write NNR unit type ${unit.type}`);
  }
  if (unit.payload) w.bytes(unit.payload);
  const body = w.finish();
  const sizeFieldBytes = unit.sizeFieldBytes ?? (body.length + 2 <= 0x7fff ? 2 : 4);
  const size = body.length + sizeFieldBytes;
  if (size > (sizeFieldBytes === 2 ? 0x7fff : MAX_UNIT_BYTES)) {
    throw new RangeError(`Cannot write an NNR unit of ${size} bytes`);
  }
  const out = new Uint8Array(size);
  if (sizeFieldBytes === 2) {
    out[0] = size >> 8;
    out[1] = size & 0xff;
  } else {
    new DataView(out.buffer).setUint32(0, (0x80000000 | size) >>> 0);
  }
  out.set(body, sizeFieldBytes);
  return out;
}

function writeModelParameterSet(
  w: BitWriter,
  f: Readonly<Record<string, NnrFieldValue>>,
  p: number,
) {
  w.u(1, num(f, "topology_carriage_flag", 0));
  w.u(1, num(f, "mps_sparsification_flag", 0));
  w.u(1, num(f, "mps_pruning_flag", 0));
  w.u(1, num(f, "mps_unification_flag", 0));
  w.u(1, num(f, "mps_decomposition_performance_map_flag", 0));
  w.u(3, num(f, "mps_quantization_method_flags", 1));
  w.u(1, num(f, "mps_topology_indexed_reference_flag", 0));
  if (p === 1) {
    for (
      const name of [
        "base_model_id_present_flag",
        "validation_set_performance_present_flag",
        "metric_type_performance_map_valid_flag",
        "mps_parent_signalling_enabled_flag",
        "nnr_reserved_zero_1bit",
      ]
    ) w.u(1, num(f, name, 0));
    w.u(2, num(f, "nnr_reserved_zero_2bits", 0));
  } else {
    w.u(7, num(f, "nnr_reserved_zero_7bits", 0));
  }
  w.u(3, num(f, "mps_qp_density"));
  w.i(13, num(f, "mps_quantization_parameter", 0));
  w.byteAlignment();
}

function writeDataUnitHeader(w: BitWriter, f: Readonly<Record<string, NnrFieldValue>>, p: number) {
  const payloadType = num(f, "nnr_compressed_data_unit_payload_type");
  w.u(5, payloadType);
  w.u(1, 0); // nnr_multiple_topology_elements_present_flag
  w.u(1, 0); // nnr_decompressed_data_format_present_flag
  w.u(1, 1); // input_parameters_present_flag
  const name = f.topology_elem_id;
  if (typeof name !== "string") throw new TypeError("topology_elem_id must be a string");
  w.string(name);
  if (p === 1) {
    const nodeId = num(f, "node_id_present_flag", 0);
    w.u(1, nodeId);
    if (nodeId) {
      w.ue(1, num(f, "device_id"));
      w.ue(5, num(f, "parameter_id"));
      w.ue(4, num(f, "put_node_depth"));
    }
  }
  if (payloadType === 1 || payloadType === 3) w.u(1, 0); // codebook_present_flag
  const dq = payloadType <= 1 || payloadType === 3 ? num(f, "dq_flag", 0) : 0;
  if (payloadType <= 1 || payloadType === 3) w.u(1, dq);
  w.u(1, 1); // tensor_dimensions_flag
  w.u(1, 1); // cabac_unary_length_flag
  w.u(4, 0); // compressed_parameter_types
  const dims = f.tensor_dimensions;
  if (!Array.isArray(dims) || dims.length < 1 || dims.length > 8) {
    throw new RangeError("tensor_dimensions must list 1 to 8 dimensions");
  }
  w.ue(1, dims.length);
  for (const d of dims) w.ue(7, d);
  w.u(8, num(f, "cabac_unary_length_minus1"));
  if (dims.length > 1) {
    if (p === 1) w.ue(1, 0); // first_tensor_dimension_shift
    const scan = num(f, "scan_order", 0);
    w.u(4, scan);
    if (scan > 0) {
      const list = f.cabac_entry_point_list ?? [];
      if (!Array.isArray(list)) throw new TypeError("cabac_entry_point_list must be an array");
      const expected = Math.ceil(dims[0]! / (4 << scan)) - 1;
      if (list.length !== expected) {
        throw new RangeError(`Expected ${expected} entry points, got ${list.length}`);
      }
      writeEntryPoints(w, list, dq);
    }
  }
  w.byteAlignment();
}

/** Entry points packed as (delta << 11) | (value8 << 3) | dqState, as the reader returns them. */
function writeEntryPoints(w: BitWriter, list: readonly number[], dq: number) {
  let previous = 0;
  list.forEach((packed, j) => {
    const { bitOffsetDelta: delta, value8, dqState } = unpackEntryPoint(packed);
    w.u(8, value8);
    if (dq) w.u(3, dqState);
    if (j === 0) w.ue(11, delta);
    else w.ie(7, delta - previous);
    previous = delta;
  });
}
