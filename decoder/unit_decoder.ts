/**
 * Decoding one data unit block row by block row straight into the tensor's output array: as its
 * bytes arrive (a block row is decoded once the bytes up to the next entry point are in), or a
 * range of block rows from an entry point (in a worker, for parallel decoding inside a tensor).
 * The per-tensor checksum is computed row by row, so the levels are never held as a whole.
 *
 * @module
 */
import type { Dtype } from "../core/model_tensor.ts";
import { DecodeError } from "../core/errors.ts";
import { levelsCrc32 } from "../core/crc32.ts";
import {
  type EntryPoint,
  levelBytes,
  levelRange,
  type PayloadParams,
  unpackEntryPoint,
} from "../core/syntax.ts";
import { fromFloat32 } from "../model/dtypes.ts";
import { BlockRowDecoder, validatePayloadParams } from "./decode_payload.ts";
import type { DataUnitJob } from "./nnr_file.ts";

/**
 * What a tensor's elements are written as:
 * - `"float32"`: `float32(level) × step` (float payloads);
 * - `"int32"`: the levels (or the integers of an integer payload);
 * - `"levels"`: the levels in the smallest of int8, int16, int32 holding those seen so far (the
 *   array is widened, once, when a level does not fit);
 * - `"F16"` / `"BF16"`: the reconstruction rounded to that dtype, as 16-bit patterns.
 */
export type SinkKind = "float32" | "int32" | "levels" | "F16" | "BF16";

/** A tensor's output array. */
export type SinkArray =
  | Float32Array<ArrayBufferLike>
  | Int8Array<ArrayBufferLike>
  | Int16Array<ArrayBufferLike>
  | Int32Array<ArrayBufferLike>
  | Uint16Array<ArrayBufferLike>;

/**
 * The output array of a tensor being decoded, written block row by block row.
 *
 * @example
 * ```ts
 * import { TensorSink } from "./unit_decoder.ts";
 * import assert from "node:assert/strict";
 *
 * const sink = new TensorSink("levels", 4, null);
 * sink.write(0, Int32Array.of(1, -2));
 * assert.ok(sink.data instanceof Int8Array);
 * sink.write(2, Int32Array.of(300, 0));
 * assert.deepEqual(sink.data, Int16Array.of(1, -2, 300, 0));
 * ```
 */
export class TensorSink {
  /** The output array (replaced by a wider one when `"levels"` overflow). */
  data: SinkArray;
  readonly #kind: SinkKind;
  readonly #step: number;
  readonly #offset: number;
  #table = new Uint16Array(0);
  #tableMin = 0;

  /**
   * Allocates the output array.
   *
   * @param kind What the elements are written as.
   * @param elements Number of elements.
   * @param step The step size (float payloads), else null.
   * @param options `offset`: the tensor element that the array's first element holds (for a part
   * of it);
   * `levelBytes`: the width `"levels"` start with (default 1).
   */
  constructor(
    kind: SinkKind,
    elements: number,
    step: number | null,
    options: { readonly offset?: number; readonly levelBytes?: 1 | 2 | 4 } = {},
  ) {
    this.#kind = kind;
    this.#step = Math.fround(step ?? 1);
    this.#offset = options.offset ?? 0;
    const width = kind === "levels" ? options.levelBytes ?? 1 : 0;
    const memory = new ArrayBuffer(TensorSink.bytes(kind, elements, options.levelBytes));
    this.data = kind === "float32"
      ? new Float32Array(memory, 0, elements)
      : kind === "int32" || width === 4
      ? new Int32Array(memory, 0, elements)
      : width === 2
      ? new Int16Array(memory, 0, elements)
      : width === 1
      ? new Int8Array(memory, 0, elements)
      : new Uint16Array(memory, 0, elements);
  }

  /** The bytes an array of `elements` takes for `kind` (`"levels"`: of `levelBytes`, default 1). */
  static bytes(kind: SinkKind, elements: number, levelBytes: 1 | 2 | 4 = 1): number {
    const width = kind === "float32" || kind === "int32" ? 4 : kind === "levels" ? levelBytes : 2;
    return elements * width;
  }

  /**
   * Writes the levels of tensor elements `[first, first + levels.length)`.
   *
   * @param first The first element.
   * @param levels Their levels.
   */
  write(first: number, levels: Int32Array): void {
    const out = this.data;
    const start = first - this.#offset;
    const n = levels.length;
    switch (this.#kind) {
      case "float32": {
        const s = this.#step;
        for (let i = 0; i < n; i++) out[start + i] = Math.fround(levels[i]!) * s;
        return;
      }
      case "int32":
        (out as Int32Array).set(levels, start);
        return;
      case "levels": {
        const width = levelBytes(levels);
        const wide = width === 4 ? Int32Array : width === 2 ? Int16Array : null;
        if (wide && wide.BYTES_PER_ELEMENT > out.BYTES_PER_ELEMENT) {
          this.data = wide.from(out as Int8Array | Int16Array);
        }
        (this.data as Int32Array).set(levels, start);
        return;
      }
      default: {
        // 16-bit patterns from a table of level → pattern over the levels seen: a tensor's
        // levels span a few hundred values, far fewer than its elements.
        const [min, max] = levelRange(levels);
        const tableMax = this.#tableMin + this.#table.length - 1;
        if (min < this.#tableMin || max > tableMax) {
          const from = Math.min(min, this.#tableMin);
          const to = Math.max(max, tableMax);
          if (to - from >= 2 ** 16) {
            // Levels too far apart for a table: each converted on its own.
            const recon = Float32Array.from(levels, (v) => Math.fround(v) * this.#step);
            (out as Uint16Array).set(
              new Uint16Array(fromFloat32(recon, this.#kind as "F16").buffer),
              start,
            );
            return;
          }
          this.#tabulate(from, to);
        }
        const table = this.#table;
        const base = this.#tableMin;
        const o = out as Uint16Array;
        for (let i = 0; i < n; i++) o[start + i] = table[levels[i]! - base]!;
      }
    }
  }

  /** The level → 16-bit pattern table over `[min, max]` (the reconstruction, then rounded). */
  #tabulate(min: number, max: number): void {
    const recon = new Float32Array(max - min + 1);
    for (let i = 0; i < recon.length; i++) recon[i] = Math.fround(min + i) * this.#step;
    const bits = fromFloat32(recon, this.#kind as "F16" | "BF16");
    this.#table = new Uint16Array(bits.buffer, 0, recon.length);
    this.#tableMin = min;
  }
}

/** The payload parameters of a data unit (CODING.md 6.6). */
export function unitParams(job: DataUnitJob): PayloadParams {
  const f = job.fields;
  const type = f.nnr_compressed_data_unit_payload_type;
  if (type !== 0 && type !== 1) {
    throw new DecodeError(
      "unsupported",
      `Tensor "${f.topology_elem_id}": payload type ${type}`,
      job.payloadOffset,
    );
  }
  return {
    shape: f.tensor_dimensions as number[],
    payloadType: type === 1 ? "float" : "int",
    dqFlag: f.dq_flag === 1 ? 1 : 0,
    numGtxFlags: (f.cabac_unary_length_minus1 as number) + 1,
    scanOrder: (f.scan_order as number | undefined) ?? 0,
    qpDensity: job.mps.mps_qp_density as number,
    mpsQp: job.mps.mps_quantization_parameter as number,
    syntax: job.profile === 1 ? "nnc2" : "nnc1",
    profileIdc: job.profile,
  };
}

/** The entry points a data unit's header signals. */
export function unitEntryPoints(job: DataUnitJob): EntryPoint[] {
  return ((job.fields.cabac_entry_point_list as number[] | undefined) ?? []).map(
    unpackEntryPoint,
  );
}

/** The sink kind for a tensor delivered as `output` whose model dtype is `dtype`. */
export function sinkKind(
  output: "float32" | "levels" | "original",
  params: PayloadParams,
  dtype: Dtype,
): SinkKind {
  if (output === "levels") return "levels";
  if (params.payloadType === "int") return "int32";
  return output === "original" && (dtype === "F16" || dtype === "BF16") ? dtype : "float32";
}

/** Elements decoded at a time where the scan allows (scan 0): the scratch stays 256 KiB. */
const SCRATCH_ELEMENTS = 65536;

/**
 * The levels of the piece being decoded, shared by every decoder of this thread (a piece is
 * decoded and written out synchronously), so that decoding a model leaves no garbage behind.
 */
let scratch = new Int32Array(SCRATCH_ELEMENTS);

/** Options of {@linkcode UnitDecoder}. */
export interface UnitDecoderOptions {
  /** What the elements are written as. */
  readonly kind: SinkKind;
  /** First block row (default 0). */
  readonly from?: number;
  /** One past the last block row (default: all). */
  readonly to?: number;
  /** For `"levels"`: the width to start with (from the file's metadata). */
  readonly levelBytes?: 1 | 2 | 4;
}

/**
 * Decodes block rows `[from, to)` of a data unit into a {@linkcode TensorSink}: all of them at
 * once ({@linkcode UnitDecoder.finish}), or those whose bytes have arrived
 * ({@linkcode UnitDecoder.advance}) while the payload buffer is still being filled. Errors carry
 * the tensor's name and file offsets.
 *
 * @example A data unit decoded as its bytes arrive, 100 at a time
 * ```ts
 * import { UnitDecoder } from "./unit_decoder.ts";
 * import { NnrUnitReader } from "./nnr_file.ts";
 * import { encodeTensor } from "../encoder/encode_tensor.ts";
 * import { writeNnrUnits } from "../encoder/nnr_writer.ts";
 * import assert from "node:assert/strict";
 *
 * const head = writeNnrUnits([
 *   { type: 0, fields: { general_profile_idc: 0 } },
 *   { type: 1, fields: { mps_qp_density: 2 } },
 * ]);
 * const values = Float32Array.from({ length: 64 * 32 }, (_, i) => Math.sin(i) / 10);
 * const { unit } = encodeTensor({
 *   name: "w", shape: [64, 32], values,
 *   coding: {
 *     kind: "float", qp: -32, qpDensity: 2, lambdaScale: 0, dq: true, scanOrder: 1,
 *     cabacUnaryLengthMinus1: 10,
 *   },
 * });
 * const reader = new NnrUnitReader();
 * reader.parse(head, 0);
 * reader.parse(head, 4);
 * const job = reader.parse(unit, 0, head.length)!;
 * const whole = new UnitDecoder(job, { kind: "float32" }).finish();
 *
 * const arriving = new Uint8Array(job.payload.length);
 * const d = new UnitDecoder({ ...job, payload: arriving }, { kind: "float32" }, 0);
 * for (let n = 0; n < arriving.length; n += 100) {
 *   arriving.set(job.payload.subarray(n, n + 100), n);
 *   d.advance(Math.min(arriving.length, n + 100));
 * }
 * const got = d.finish();
 * assert.deepEqual(got.data, whole.data);
 * assert.equal(got.crc, whole.crc);
 * ```
 */
export class UnitDecoder {
  /** The tensor's name. */
  readonly name: string;
  /** Its payload parameters. */
  readonly params: PayloadParams;
  readonly #job: DataUnitJob;
  readonly #options: UnitDecoderOptions;
  #rows: BlockRowDecoder | null = null;
  #sink: TensorSink | null = null;
  #to = 0;
  #crc = 0;

  /**
   * Starts decoding a data unit.
   *
   * @param job The data unit; its payload may still be arriving (see `available`).
   * @param options The output kind and the block rows to decode.
   * @param available Bytes of the payload already in (default: all).
   * @throws {DecodeError} If the header is corrupt or exceeds a limit.
   */
  constructor(job: DataUnitJob, options: UnitDecoderOptions, available = job.payload.length) {
    this.#job = job;
    this.#options = options;
    this.name = job.fields.topology_elem_id as string;
    this.params = unitParams(job);
    // The header's sizes are checked before anything is derived from them.
    this.#guard(() => validatePayloadParams(this.params, job.limits, job.payload.length));
    this.advance(available);
  }

  /** The step size (float payloads), once the payload head is decoded. */
  get step(): number | null {
    return this.#rows?.step ?? null;
  }

  /** The signalled qp (float payloads), once the payload head is decoded. */
  get qp(): number | null {
    return this.#rows?.qp ?? null;
  }

  /**
   * Decodes every block row of the range whose bytes are within the first `available` bytes of
   * the payload.
   *
   * @param available Bytes of the payload in so far.
   * @throws {DecodeError} If the payload is corrupt.
   */
  advance(available: number): void {
    this.#guard(() => {
      const payload = this.#job.payload;
      if (!this.#rows) {
        if (available < Math.min(payload.length, BlockRowDecoder.headBytes(this.params))) return;
        const rows = new BlockRowDecoder(payload, this.params, {
          limits: this.#job.limits,
          entryPoints: unitEntryPoints(this.#job),
          from: this.#options.from ?? 0,
        });
        this.#to = Math.min(rows.blockRows, this.#options.to ?? rows.blockRows);
        // An array for the range's elements (all of them unless decoding a part).
        const [first] = rows.rowElements(rows.nextRow);
        const [, last] = rows.rowElements(this.#to - 1);
        const levelBytes = this.#options.levelBytes ? { levelBytes: this.#options.levelBytes } : {};
        this.#sink = new TensorSink(this.#options.kind, last - first, rows.step, {
          offset: first,
          ...levelBytes,
        });
        this.#rows = rows;
      }
      const rows = this.#rows;
      // A block row at a time (scan 0: rows of the one block row), into a small scratch array.
      while (rows.nextRow < this.#to && rows.bytesBefore(rows.nextRow + 1) <= available) {
        const [start, end] = rows.nextElements(SCRATCH_ELEMENTS);
        if (scratch.length < end - start) scratch = new Int32Array(end - start);
        const levels = scratch.subarray(0, end - start);
        rows.decodeNext(levels, levels, SCRATCH_ELEMENTS);
        this.#sink!.write(start, levels);
        this.#crc = levelsCrc32(levels, this.#crc);
      }
    });
  }

  /**
   * Decodes what is left of the range (the whole payload is in) and checks where it ends: the
   * terminating bin after the last block row, or the entry point of the next one.
   *
   * @returns The output array and the CRC-32 of the range's levels (little-endian int32).
   * @throws {DecodeError} If the payload is corrupt.
   */
  finish(): { readonly data: SinkArray; readonly crc: number } {
    this.advance(this.#job.payload.length);
    return this.#guard(() => {
      const rows = this.#rows!;
      if (rows.nextRow === rows.blockRows) rows.finish();
      return { data: this.#sink!.data, crc: this.#crc };
    });
  }

  /** Runs `f`, giving a DecodeError the tensor's name and its offset in the file. */
  #guard<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      throw new DecodeError(
        e.code,
        `Tensor "${this.name}": ${e.reason}`,
        this.#job.payloadOffset + e.offset,
      );
    }
  }
}
