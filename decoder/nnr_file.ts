/**
 * Reads a complete NNR file: every data unit decoded to levels and values, and, in files we
 * wrote, the metadata and model units (docs/FORMAT.md), with each tensor's checksum verified.
 *
 * @module
 */
import {
  type ContainerMeta,
  fromSevenBitText,
  inflate,
  META_HEADER,
  MODEL_HEADER,
  parseMeta,
  tensorCheck,
} from "../core/container.ts";
import { crc32, levelsCrc32 } from "../core/crc32.ts";
import { DecodeError } from "../core/errors.ts";
import type { PayloadParams } from "../core/syntax.ts";
import type { Dtype } from "../core/model_tensor.ts";
import { elementCount } from "../model/dtypes.ts";
import { type DecodeLimits, decodePayload } from "./decode_payload.ts";
import { unitEntryPoints, unitParams } from "./unit_decoder.ts";
import { NNR_UNIT_TYPES, type NnrFieldValue, type NnrUnit, readNnrUnit } from "./nnr_units.ts";

/** A decoded tensor. */
export interface DecodedTensor {
  /** `topology_elem_id`. */
  readonly name: string;
  /** The model's dtype for it (from our metadata), else F32 for float and I32 for int payloads. */
  readonly dtype: Dtype;
  /** Shape (the signalled tensor dimensions). */
  readonly shape: readonly number[];
  /** Where it goes in the model (from our metadata), if anywhere in particular. */
  readonly slot?: number;
  /** The payload parameters it was decoded with. */
  readonly params: PayloadParams;
  /** The signalled qp (float payloads), else null. */
  readonly qp: number | null;
  /** The step size (float payloads), else null. */
  readonly step: number | null;
  /** Reconstruction indices (float) or the integers themselves. */
  readonly levels: Int32Array<ArrayBuffer>;
  /**
   * Reconstructed float32 values (float payloads) or the integers; null for float payloads read
   * with `reconstruct: false`.
   */
  readonly values: Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> | null;
  /** Size of its data unit in the file. */
  readonly unitBytes: number;
  /** Size of its CABAC payload. */
  readonly payloadBytes: number;
}

/** A read NNR file. */
export interface NnrFile {
  /** All units, as `readNnrUnits()` returns them. */
  readonly units: readonly NnrUnit[];
  /** Our metadata unit, or null in files that lack it (e.g. from the reference encoder). */
  readonly meta: ContainerMeta | null;
  /** The model skeleton, if the file carries one. */
  readonly model: { readonly format: "onnx" | "safetensors"; readonly skeleton: Uint8Array } | null;
  /** The tensors in data-unit order. */
  readonly tensors: readonly DecodedTensor[];
}

/** Limits on what a file may make the reader allocate. */
export interface NnrFileLimits extends DecodeLimits {
  /** Largest model skeleton, inflated (default 1 GiB). */
  readonly maxModelBytes?: number;
}

/** What an NNR file says about its model, known once its topology units have been read. */
export interface NnrHeader {
  /** Our metadata unit, or null in files that lack it. */
  readonly meta: ContainerMeta | null;
  /** The model skeleton, if the file carries one. */
  readonly model: { readonly format: "onnx" | "safetensors"; readonly skeleton: Uint8Array } | null;
}

/**
 * Reads an NNR file unit by unit, in order, checking the unit order and decoding each data unit
 * as it comes. It holds no bytes between units: a streaming reader hands it each complete unit,
 * the one-shot reader the whole file with each unit's offset.
 */
export class NnrUnitReader {
  readonly #limits: NnrFileLimits;
  readonly #reconstruct: boolean;
  /** The units read so far, in file order. */
  readonly units: NnrUnit[] = [];
  #profile: 0 | 1 = 0;

  /** `general_profile_idc` of the file, once its NNR_STR unit is read (0 before). */
  get profile(): 0 | 1 {
    return this.#profile;
  }
  #mps: NnrUnit | null = null;
  #meta: ContainerMeta | null = null;
  /** Weights in the tensors the metadata declares, summed once it is read (asked per unit). */
  #declaredWeights = 0;
  #model: { text: string; offset: number } | null = null;
  #tensors = 0;

  /**
   * Starts reading a file.
   *
   * @param limits Allocation limits.
   * @param options `reconstruct: false` decodes levels only (no float32 values).
   */
  constructor(limits: NnrFileLimits = {}, options: { readonly reconstruct?: boolean } = {}) {
    this.#limits = limits;
    this.#reconstruct = options.reconstruct ?? true;
  }

  /**
   * Reads the unit at `offset` of `bytes`.
   *
   * @param bytes A buffer holding the whole unit.
   * @param offset Where the unit starts in `bytes`.
   * @param base Position of `bytes[0]` in the file, for unit offsets and errors.
   * @returns The decoded tensor if it was a data unit.
   * @throws {DecodeError} If the unit is corrupt, out of order, or fails its checksum.
   */
  read(bytes: Uint8Array, offset: number, base = 0): DecodedTensor | null {
    const job = this.parse(bytes, offset, base);
    return job && this.check(job, decodeDataUnit(job));
  }

  /**
   * Reads the unit at `offset` of `bytes` like {@linkcode NnrUnitReader.read}, but leaves a data
   * unit's payload undecoded: it returns the job for {@linkcode decodeDataUnit} (which may run in
   * another thread), whose result then goes through {@linkcode NnrUnitReader.check}.
   *
   * @param bytes A buffer holding the whole unit.
   * @param offset Where the unit starts in `bytes`.
   * @param base Position of `bytes[0]` in the file, for unit offsets and errors.
   * @returns The data-unit job, or null for other units.
   * @throws {DecodeError} If the unit is corrupt or out of order.
   */
  parse(bytes: Uint8Array, offset: number, base = 0): DataUnitJob | null {
    let u: NnrUnit;
    try {
      u = readNnrUnit(bytes, offset, this.#profile);
    } catch (e) {
      throw e instanceof DecodeError ? moved(e, base) : e;
    }
    const at = base + offset;
    this.units.push(base === 0 ? u : { ...u, offset: at, ...payloadAt(u, base) });
    if (this.units.length === 1 && u.type !== 0) {
      throw new DecodeError("corrupt", "NNR file must start with NNR_STR", at);
    }
    if (u.type === 0) {
      if (this.units.length > 1) throw new DecodeError("corrupt", "Second NNR_STR", at);
      const profile = u.fields.general_profile_idc;
      if (profile !== 0 && profile !== 1) {
        throw new DecodeError("unsupported", `general_profile_idc ${profile}`, at);
      }
      this.#profile = profile;
    } else if (u.type === 1) {
      if (this.#mps) throw new DecodeError("corrupt", "Second NNR_MPS", at);
      this.#mps = u;
    } else if (u.type === 3) {
      this.#topology(u.fields.topology_data as string, at);
    } else if (u.type === 5) {
      if (!this.#mps) throw new DecodeError("corrupt", "NNR_NDU before NNR_MPS", at);
      this.#expectMeta(at);
      return {
        index: this.#tensors++,
        fields: u.fields,
        payload: bytes.subarray(u.payloadOffset!, offset + u.size),
        payloadOffset: base + u.payloadOffset!,
        unitBytes: u.size,
        mps: this.#mps.fields,
        profile: this.#profile,
        limits: this.#limits,
        reconstruct: this.#reconstruct,
      };
    } else {
      // The reference decoders reject these too (FORMAT.md 8.3).
      const name = NNR_UNIT_TYPES[u.type];
      throw name
        ? new DecodeError("unsupported", `${name} units are not supported`, at)
        : new DecodeError("corrupt", `NNR unit type ${u.type} is not defined`, at);
    }
    return null;
  }

  /**
   * A topology unit. Before the data units, one with text must be our metadata or model unit
   * (the reference encoder writes an empty one): so a damaged unit of ours is an error rather
   * than a file that looks as if it had none.
   */
  #topology(text: string, at: number): void {
    const meta = text.startsWith(META_HEADER);
    const model = text.startsWith(MODEL_HEADER);
    if (meta || model) {
      if (this.#tensors > 0 || (meta ? this.#meta : this.#model)) {
        throw new DecodeError("corrupt", "Metadata or model unit out of place", at);
      }
      if (meta) {
        this.#meta = parseMeta(text, at);
        for (const t of this.#meta.tensors) this.#declaredWeights += elementCount(t.shape);
      } else this.#model = { text, offset: at };
    } else if (text !== "" && this.#tensors === 0) {
      throw new DecodeError("corrupt", "Unrecognised topology unit before the data units", at);
    }
  }

  /** A model unit is only ever written with a metadata unit before the data units. */
  #expectMeta(at: number): void {
    if (this.#model && !this.#meta) {
      throw new DecodeError("corrupt", "Model unit without its metadata unit", at);
    }
  }

  /**
   * Checks a decoded data unit against the metadata (name, shape and the check of everything
   * that decides its values) and gives it the model dtype and slot the metadata records.
   *
   * @param job The job from {@linkcode NnrUnitReader.parse}.
   * @param t Its decoded tensor.
   * @returns The tensor with dtype and slot.
   * @throws {DecodeError} If it does not match the metadata or fails its checksum.
   */
  check(job: DataUnitJob, t: DecodedTensor): DecodedTensor {
    return { ...t, ...this.verify(job, { ...t, crc: levelsCrc32(t.levels) }) };
  }

  /**
   * Checks a data unit decoded without keeping its levels, from the CRC-32 of its levels: like
   * {@linkcode NnrUnitReader.check}.
   *
   * @param job The job from {@linkcode NnrUnitReader.parse}.
   * @param t What was decoded: name, shape, qp, the CRC of the levels.
   * @returns The model dtype and slot the metadata records (F32 / I32 without metadata).
   * @throws {DecodeError} If it does not match the metadata or fails its checksum.
   */
  verify(
    job: DataUnitJob,
    t: {
      readonly name: string;
      readonly shape: readonly number[];
      readonly qp: number | null;
      readonly crc: number;
    },
  ): { readonly dtype: Dtype; readonly slot?: number } {
    if (!this.#meta) return { dtype: t.qp === null ? "I32" : "F32" };
    const d = this.#meta.tensors[job.index];
    const at = job.payloadOffset;
    if (!d || d.name !== t.name || d.shape.join() !== t.shape.join()) {
      throw new DecodeError("corrupt", `Tensor "${t.name}" does not match its metadata`, at);
    }
    const check = tensorCheck(t.crc, {
      name: t.name,
      dtype: d.dtype,
      shape: t.shape,
      qp: t.qp,
      qpDensity: job.mps.mps_qp_density as number,
      mpsQp: job.mps.mps_quantization_parameter as number,
    });
    if (check !== d.crc32) {
      throw new DecodeError("corrupt", `Tensor "${t.name}" fails its checksum`, at);
    }
    return { dtype: d.dtype, ...(d.slot === undefined ? {} : { slot: d.slot }) };
  }

  /**
   * The model dtype the metadata records for a data unit (F32 without metadata).
   *
   * @param job The job from {@linkcode NnrUnitReader.parse}.
   * @returns Its dtype.
   */
  dtypeOf(job: DataUnitJob): Dtype {
    return this.#meta?.tensors[job.index]?.dtype ?? "F32";
  }

  /**
   * The number of weights in all the tensors the metadata declares (0 before it is read, or
   * without it).
   *
   * @returns A count.
   */
  declaredWeights(): number {
    return this.#declaredWeights;
  }

  /**
   * The bytes per level the metadata records for a data unit, if it does.
   *
   * @param job The job from {@linkcode NnrUnitReader.parse}.
   * @returns 1, 2 or 4, or undefined.
   */
  levelBytesOf(job: DataUnitJob): 1 | 2 | 4 | undefined {
    return this.#meta?.tensors[job.index]?.levelBytes;
  }

  /**
   * The metadata and model, once the units before the first data unit have been read.
   *
   * @returns The header.
   * @throws {DecodeError} If the model unit is missing, too large or corrupt.
   */
  async header(): Promise<NnrHeader> {
    const meta = this.#meta;
    if (!meta?.model) return { meta, model: null };
    const text = this.#model;
    if (!text) {
      throw new DecodeError("corrupt", "Metadata names a model but the model unit is missing", 0);
    }
    const max = this.#limits.maxModelBytes ?? 2 ** 30;
    if (meta.model.bytes > max) {
      throw new DecodeError(
        "limit",
        `Model of ${meta.model.bytes} bytes exceeds ${max}`,
        text.offset,
      );
    }
    const packed = fromSevenBitText(
      text.text.slice(MODEL_HEADER.length),
      meta.model.deflatedBytes,
      text.offset,
    );
    const skeleton = await inflate(packed, meta.model.bytes, text.offset);
    if (crc32(skeleton) !== meta.model.crc32) {
      throw new DecodeError("corrupt", "Model unit fails its checksum", text.offset);
    }
    return { meta, model: { format: meta.model.format, skeleton } };
  }

  /**
   * Checks that the file was complete: it had a start unit and as many data units as the
   * metadata lists, or, without metadata, at least one data unit (the reference encoder writes no
   * file without one, so a file of headers only was cut short).
   *
   * @throws {DecodeError} If not.
   */
  finish(): void {
    if (this.units.length === 0) throw new DecodeError("truncated", "Empty NNR file", 0);
    this.#expectMeta(0);
    if (!this.#meta && this.#tensors === 0) {
      throw new DecodeError("truncated", "NNR file has no data units", 0);
    }
    const listed = this.#meta?.tensors.length;
    if (listed !== undefined && listed !== this.#tensors) {
      throw new DecodeError(
        "truncated",
        `Metadata lists ${listed} tensors, the file has ${this.#tensors}`,
        0,
      );
    }
  }
}

function moved(e: DecodeError, base: number): DecodeError {
  if (base === 0) return e;
  return new DecodeError(e.code, e.reason, e.offset + base);
}

function payloadAt(u: NnrUnit, base: number) {
  return u.payloadOffset === undefined ? {} : { payloadOffset: u.payloadOffset + base };
}

/**
 * Reads and decodes an NNR file.
 *
 * @param bytes The whole file.
 * @param limits Allocation limits.
 * @returns The units, our metadata and model if present, and the decoded tensors.
 * @throws {DecodeError} If the file is truncated, corrupt, fails a checksum or exceeds a limit.
 *
 * @example
 * ```ts
 * import { readNnrFile } from "./nnr_file.ts";
 * import { DecodeError } from "../core/errors.ts";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(readNnrFile(new Uint8Array([0x00, 0x09, 0x02])), DecodeError);
 * ```
 */
export async function readNnrFile(bytes: Uint8Array, limits: NnrFileLimits = {}): Promise<NnrFile> {
  const reader = new NnrUnitReader(limits);
  const tensors: DecodedTensor[] = [];
  for (let offset = 0; offset < bytes.length;) {
    const t = reader.read(bytes, offset);
    if (t) tensors.push(t);
    offset += reader.units.at(-1)!.size;
  }
  reader.finish();
  const { meta, model } = await reader.header();
  return { units: reader.units, meta, model, tensors };
}

/** A data unit whose payload is still to be decoded: plain data, so it can go to a worker. */
export interface DataUnitJob {
  /** Position among the file's data units. */
  readonly index: number;
  /** The unit's syntax elements. */
  readonly fields: Readonly<Record<string, NnrFieldValue>>;
  /** Its CABAC payload. */
  readonly payload: Uint8Array;
  /** Where the payload starts in the file, for errors. */
  readonly payloadOffset: number;
  /** Size of the whole unit. */
  readonly unitBytes: number;
  /** The model parameter set's syntax elements. */
  readonly mps: Readonly<Record<string, NnrFieldValue>>;
  /** `general_profile_idc`. */
  readonly profile: 0 | 1;
  /** Allocation limits. */
  readonly limits: DecodeLimits;
  /** Whether to reconstruct float values (false: levels only). */
  readonly reconstruct: boolean;
}

/**
 * Decodes the payload of a data unit.
 *
 * @param job The unit, from `NnrUnitReader.parse()`.
 * @returns The decoded tensor (dtype F32 or I32 until `NnrUnitReader.check()` applies the
 * metadata).
 * @throws {DecodeError} If the payload is corrupt or its entry points do not match the header.
 *
 * @example
 * ```ts
 * import { decodeDataUnit, NnrUnitReader } from "./nnr_file.ts";
 * import { encodeTensor } from "../encoder/encode_tensor.ts";
 * import { writeNnrUnits } from "../encoder/nnr_writer.ts";
 * import assert from "node:assert/strict";
 *
 * const head = writeNnrUnits([
 *   { type: 0, fields: { general_profile_idc: 0 } },
 *   { type: 1, fields: { mps_qp_density: 2 } },
 * ]);
 * const { unit } = encodeTensor({
 *   name: "ids", shape: [3], values: Int32Array.of(4, 0, -4),
 *   coding: { kind: "int", scanOrder: 0, cabacUnaryLengthMinus1: 10 },
 * });
 * const reader = new NnrUnitReader();
 * reader.parse(head, 0);
 * reader.parse(head, 4);
 * const job = reader.parse(unit, 0, head.length)!;
 * assert.deepEqual(decodeDataUnit(job).values, Int32Array.of(4, 0, -4));
 * ```
 */
export function decodeDataUnit(job: DataUnitJob): DecodedTensor {
  const f = job.fields;
  const name = f.topology_elem_id as string;
  const params = unitParams(job);
  let d;
  try {
    d = decodePayload(job.payload, params, job.limits, {
      codedLevels: false,
      reconstruct: job.reconstruct,
      entryPoints: unitEntryPoints(job),
    });
  } catch (e) {
    if (e instanceof DecodeError) {
      throw new DecodeError(e.code, `Tensor "${name}": ${e.reason}`, job.payloadOffset + e.offset);
    }
    throw e;
  }
  return {
    name,
    dtype: params.payloadType === "float" ? "F32" : "I32",
    shape: params.shape,
    params,
    qp: d.qp,
    step: d.step,
    levels: d.levels,
    values: params.payloadType === "int" ? d.levels : d.recon,
    unitBytes: job.unitBytes,
    payloadBytes: job.payload.length,
  };
}
