/**
 * Reads a complete NNR file: every data unit decoded to levels and values, and, in files we
 * wrote, the metadata and model units (docs/FORMAT.md), with each tensor's checksum verified.
 *
 * @module
 */
import {
  type ContainerMeta,
  fromBase64,
  inflate,
  META_HEADER,
  MODEL_HEADER,
  parseMeta,
} from "../core/container.ts";
import { crc32, levelsCrc32 } from "../core/crc32.ts";
import { DecodeError } from "../core/errors.ts";
import type { PayloadParams } from "../core/syntax.ts";
import type { Dtype } from "../core/model_tensor.ts";
import { type DecodeLimits, decodePayload } from "./decode_payload.ts";
import { type NnrUnit, readNnrUnits } from "./nnr_units.ts";

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
  /** Reconstructed float32 values (float payloads) or the integers. */
  readonly values: Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer>;
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
  const units = readNnrUnits(bytes);
  const start = units[0];
  if (start?.type !== 0) throw new DecodeError("corrupt", "NNR file must start with NNR_STR", 0);
  const profile = start.fields.general_profile_idc === 1 ? 1 : 0;
  let mps: NnrUnit | undefined;
  let meta: ContainerMeta | null = null;
  let modelText: { text: string; offset: number } | null = null;
  const tensors: DecodedTensor[] = [];
  for (const u of units) {
    if (u.type === 1) {
      if (mps) throw new DecodeError("corrupt", "Second NNR_MPS", u.offset);
      mps = u;
    } else if (u.type === 3 && u.fields.topology_storage_format === 0) {
      const text = u.fields.topology_data as string;
      if (text.startsWith(META_HEADER)) meta = parseMeta(text, u.offset);
      else if (text.startsWith(MODEL_HEADER)) modelText = { text, offset: u.offset };
    } else if (u.type === 5) {
      if (!mps) throw new DecodeError("corrupt", "NNR_NDU before NNR_MPS", u.offset);
      tensors.push(decodeUnit(bytes, u, mps, profile, limits));
    }
  }
  let model: NnrFile["model"] = null;
  if (meta) {
    checkMeta(meta, tensors, units);
    if (meta.model && modelText) {
      const max = limits.maxModelBytes ?? 2 ** 30;
      if (meta.model.bytes > max) {
        throw new DecodeError("limit", `Model of ${meta.model.bytes} bytes exceeds ${max}`, 0);
      }
      const packed = fromBase64(modelText.text.slice(MODEL_HEADER.length), modelText.offset);
      const skeleton = await inflate(packed, meta.model.bytes, modelText.offset);
      if (crc32(skeleton) !== meta.model.crc32) {
        throw new DecodeError("corrupt", "Model unit fails its checksum", modelText.offset);
      }
      model = { format: meta.model.format, skeleton };
    } else if (meta.model) {
      throw new DecodeError("corrupt", "Metadata names a model but the model unit is missing", 0);
    }
    const described = meta.tensors;
    return {
      units,
      meta,
      model,
      tensors: tensors.map((t, i) => {
        const d = described[i]!;
        return { ...t, dtype: d.dtype, ...(d.slot === undefined ? {} : { slot: d.slot }) };
      }),
    };
  }
  return { units, meta, model, tensors };
}

function decodeUnit(
  bytes: Uint8Array,
  u: NnrUnit,
  mps: NnrUnit,
  profile: 0 | 1,
  limits: DecodeLimits,
): DecodedTensor {
  const f = u.fields;
  const name = f.topology_elem_id as string;
  const type = f.nnr_compressed_data_unit_payload_type;
  if (type !== 0 && type !== 1) {
    throw new DecodeError("unsupported", `Tensor "${name}": payload type ${type}`, u.offset);
  }
  const params: PayloadParams = {
    shape: f.tensor_dimensions as number[],
    payloadType: type === 1 ? "float" : "int",
    dqFlag: f.dq_flag === 1 ? 1 : 0,
    numGtxFlags: (f.cabac_unary_length_minus1 as number) + 1,
    scanOrder: (f.scan_order as number | undefined) ?? 0,
    qpDensity: mps.fields.mps_qp_density as number,
    mpsQp: mps.fields.mps_quantization_parameter as number,
    syntax: profile === 1 ? "nnc2" : "nnc1",
    profileIdc: profile,
  };
  const payload = bytes.subarray(u.payloadOffset!, u.offset + u.size);
  let d;
  try {
    d = decodePayload(payload, params, limits);
  } catch (e) {
    if (e instanceof DecodeError) {
      const why = e.message.replace(/: at byte \d+$/, "");
      throw new DecodeError(e.code, `Tensor "${name}": ${why}`, u.payloadOffset! + e.offset);
    }
    throw e;
  }
  const signalled = (f.cabac_entry_point_list as number[] | undefined) ?? [];
  const found = d.entryPoints.map((e) => e.bitOffsetDelta * 2048 + e.value8 * 8 + e.dqState);
  if (found.length !== signalled.length || found.some((p, i) => p !== signalled[i])) {
    throw new DecodeError("corrupt", `Tensor "${name}": entry points do not match`, u.offset);
  }
  return {
    name,
    dtype: params.payloadType === "float" ? "F32" : "I32",
    shape: params.shape,
    params,
    qp: d.qp,
    step: d.step,
    levels: d.levels,
    values: params.payloadType === "float" ? d.recon : d.levels,
    unitBytes: u.size,
    payloadBytes: u.payloadLength!,
  };
}

function checkMeta(meta: ContainerMeta, tensors: DecodedTensor[], units: readonly NnrUnit[]) {
  if (meta.tensors.length !== tensors.length) {
    throw new DecodeError(
      "corrupt",
      `Metadata lists ${meta.tensors.length} tensors, the file has ${tensors.length}`,
      0,
    );
  }
  const ndus = units.filter((u) => u.type === 5);
  tensors.forEach((t, i) => {
    const d = meta.tensors[i]!;
    const offset = ndus[i]!.offset;
    if (d.name !== t.name || d.shape.join() !== t.shape.join()) {
      throw new DecodeError("corrupt", `Tensor "${t.name}" does not match its metadata`, offset);
    }
    if (levelsCrc32(t.levels) !== d.crc32) {
      throw new DecodeError("corrupt", `Tensor "${t.name}" fails its checksum`, offset);
    }
  });
}
