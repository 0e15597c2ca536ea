/**
 * What our NNR files carry beyond the tensors, in extra NNR_TPL units that the reference decoder
 * accepts and ignores (docs/FORMAT.md): a metadata unit (the complete tensor list with original
 * dtypes and shapes, where each tensor goes in the model, and a check of everything that decides
 * each tensor's values; the unit checks itself) and a model unit (the model file with the coded
 * tensors' data taken out, deflated and base64-encoded).
 *
 * @module
 */
import { crc32 } from "./crc32.ts";
import { DecodeError } from "./errors.ts";
import type { Dtype } from "./model_tensor.ts";
import { DTYPE_BYTES } from "./model_tensor.ts";

/**
 * First line of the metadata unit's `topology_data`; a line of JSON follows, then a last line
 * `crc32 <8 hex digits>`: the CRC-32 of the JSON's UTF-8 bytes.
 */
export const META_HEADER = "DEEPCABAC-NNR/2 meta\n";
/** First line of the model unit's `topology_data`; base64 of the deflated model follows. */
export const MODEL_HEADER = "DEEPCABAC-NNR/2 model\n";
const META_CHECK = "\ncrc32 ";
/** `topology_storage_format` of our units: 0, which the reference decoders skip. */
export const CONTAINER_STORAGE_FORMAT = 0;

/** A coded tensor as the metadata unit describes it, in data-unit order. */
export interface ContainerTensor {
  /** `topology_elem_id` of its data unit. */
  readonly name: string;
  /** The dtype the tensor had in the model, and is restored to. */
  readonly dtype: Dtype;
  /** The shape it had in the model (equal to the signalled tensor dimensions). */
  readonly shape: readonly number[];
  /** Where it goes in the model (the ONNX tensor index), if the model needs that. */
  readonly slot?: number;
  /** {@linkcode tensorCheck}: the CRC-32 of everything that decides the tensor's values. */
  readonly crc32: number;
}

/** The model the tensors belong to. */
export interface ContainerModel {
  /** File format of the skeleton: an ONNX model, or a safetensors file of uncoded tensors. */
  readonly format: "onnx" | "safetensors";
  /** Length of the skeleton before deflate. */
  readonly bytes: number;
  /** CRC-32 of the skeleton. */
  readonly crc32: number;
}

/** Contents of the metadata unit. */
export interface ContainerMeta {
  /** The model, if the file carries one. */
  readonly model: ContainerModel | null;
  /** The coded tensors in data-unit order. */
  readonly tensors: readonly ContainerTensor[];
}

/**
 * Serialises the metadata as `topology_data` text.
 *
 * @param meta The metadata.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { formatMeta, parseMeta } from "./container.ts";
 * import assert from "node:assert/strict";
 *
 * const meta = { model: null, tensors: [{ name: "w", dtype: "F16", shape: [2, 3], crc32: 7 }] } as const;
 * assert.deepEqual(parseMeta(formatMeta(meta), 0), meta);
 * ```
 */
export function formatMeta(meta: ContainerMeta): string {
  const json = JSON.stringify(meta);
  return META_HEADER + json + META_CHECK + hex8(crc32(UTF8_ENCODER.encode(json)));
}

const UTF8_ENCODER = new TextEncoder();

function hex8(x: number): string {
  return x.toString(16).padStart(8, "0");
}

/**
 * The check of a tensor our metadata records: the CRC-32 of its levels (little-endian int32), then
 * of the UTF-8 JSON of `[name, dtype, shape, qp, qpDensity, mpsQp]` — everything that decides the
 * values a reader returns (the qp is null for integer tensors).
 *
 * @param levelsCrc The CRC-32 of the levels (`levelsCrc32()`).
 * @param t What else decides the values.
 * @returns The check.
 *
 * @example A different base qp gives a different check
 * ```ts
 * import { tensorCheck } from "./container.ts";
 * import assert from "node:assert/strict";
 *
 * const t = { name: "w", dtype: "F32", shape: [2], qp: -38, qpDensity: 2, mpsQp: 0 } as const;
 * assert.notEqual(tensorCheck(7, t), tensorCheck(7, { ...t, mpsQp: 1 }));
 * ```
 */
export function tensorCheck(
  levelsCrc: number,
  t: {
    readonly name: string;
    readonly dtype: Dtype;
    readonly shape: readonly number[];
    readonly qp: number | null;
    readonly qpDensity: number;
    readonly mpsQp: number;
  },
): number {
  const described = [t.name, t.dtype, t.shape, t.qp, t.qpDensity, t.mpsQp];
  return crc32(UTF8_ENCODER.encode(JSON.stringify(described)), levelsCrc);
}

/**
 * Parses and validates the metadata unit's text.
 *
 * @param text The unit's `topology_data` (starting with {@linkcode META_HEADER}).
 * @param offset The unit's byte offset, for errors.
 * @returns The metadata.
 * @throws {DecodeError} If the text is not valid metadata.
 *
 * @example
 * ```ts
 * import { parseMeta } from "./container.ts";
 * import { DecodeError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => parseMeta("DEEPCABAC-NNR/2 meta\n{\ncrc32 00000000", 0), DecodeError);
 * ```
 */
export function parseMeta(text: string, offset: number): ContainerMeta {
  const bad = (why: string) => new DecodeError("corrupt", `Bad metadata unit: ${why}`, offset);
  const end = text.lastIndexOf(META_CHECK);
  if (end < 0) throw bad("no check");
  const body = text.slice(META_HEADER.length, end);
  if (text.slice(end + META_CHECK.length) !== hex8(crc32(UTF8_ENCODER.encode(body)))) {
    throw bad("fails its check");
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw bad("not JSON");
  }
  if (typeof json !== "object" || json === null) throw bad("not an object");
  const { model, tensors } = json as Record<string, unknown>;
  if (!Array.isArray(tensors)) throw bad("no tensor list");
  const isCount = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  const isCrc = (x: unknown) => isCount(x) && (x as number) < 2 ** 32;
  for (const t of tensors) {
    if (
      typeof t !== "object" || t === null || typeof t.name !== "string" ||
      !Object.hasOwn(DTYPE_BYTES, t.dtype) || !Array.isArray(t.shape) ||
      !t.shape.every(isCount) || !isCrc(t.crc32) || (t.slot !== undefined && !isCount(t.slot))
    ) throw bad(`bad tensor entry ${JSON.stringify(t)?.slice(0, 80)}`);
  }
  if (model !== null) {
    const m = model as Record<string, unknown>;
    if (
      typeof m !== "object" || (m.format !== "onnx" && m.format !== "safetensors") ||
      !isCount(m.bytes) || !isCrc(m.crc32)
    ) throw bad("bad model entry");
  }
  return json as ContainerMeta;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ALPHABET_INDEX = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[ALPHABET.charCodeAt(i)] = i;
  return t;
})();

/**
 * Encodes bytes as padded base64 text.
 *
 * @param bytes The bytes.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { toBase64 } from "./container.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(toBase64(new TextEncoder().encode("hello")), "aGVsbG8=");
 * ```
 */
export function toBase64(bytes: Uint8Array): string {
  const parts: string[] = [];
  const chunk = 3 * 4096;
  for (let start = 0; start < bytes.length; start += chunk) {
    let s = "";
    const end = Math.min(bytes.length, start + chunk);
    for (let i = start; i < end; i += 3) {
      const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
      s += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! +
        (i + 1 < end ? ALPHABET[(n >> 6) & 63]! : "=") + (i + 2 < end ? ALPHABET[n & 63]! : "=");
    }
    parts.push(s);
  }
  return parts.join("");
}

/**
 * Decodes padded base64 text.
 *
 * @param text The text.
 * @param offset Byte offset of the text in its file, for errors.
 * @returns The bytes.
 * @throws {DecodeError} If the text is not padded base64.
 *
 * @example
 * ```ts
 * import { fromBase64 } from "./container.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new TextDecoder().decode(fromBase64("aGVsbG8=", 0)), "hello");
 * ```
 */
export function fromBase64(text: string, offset: number): Uint8Array<ArrayBuffer> {
  if (text.length % 4 !== 0) throw new DecodeError("corrupt", "Bad base64 length", offset);
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    for (let k = 0; k < 4; k++) {
      const c = text.charCodeAt(i + k);
      const v = c === 61 && i + k >= text.length - pad ? 0 : ALPHABET_INDEX[c] ?? -1;
      if (v < 0) throw new DecodeError("corrupt", "Bad base64 character", offset + i + k);
      n = (n << 6) | v;
    }
    out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 0xff;
    if (o < out.length) out[o++] = n & 0xff;
  }
  return out;
}

/**
 * Deflates bytes (raw deflate, RFC 1951) with the web platform's `CompressionStream`.
 *
 * @param bytes The bytes.
 * @returns The deflated bytes.
 *
 * @example
 * ```ts
 * import { deflate, inflate } from "./container.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new Uint8Array(1000).fill(7);
 * const packed = await deflate(data);
 * assert.ok(packed.length < 50);
 * assert.deepEqual(await inflate(packed, 1000, 0), data);
 * ```
 */
export async function deflate(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Inflates raw-deflate bytes that must come to exactly `size` bytes, stopping as soon as they
 * would exceed it (so a corrupt or hostile stream cannot make it allocate more).
 *
 * @param bytes The deflated bytes.
 * @param size The expected inflated size.
 * @param offset Byte offset of the data in its file, for errors.
 * @returns The inflated bytes.
 * @throws {DecodeError} If the data is corrupt or does not inflate to `size` bytes.
 *
 * @example
 * ```ts
 * import { deflate, inflate } from "./container.ts";
 * import { DecodeError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const packed = await deflate(new Uint8Array(100));
 * await assert.rejects(inflate(packed, 99, 0), DecodeError);
 * ```
 */
export async function inflate(
  bytes: Uint8Array<ArrayBuffer>,
  size: number,
  offset: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const out = new Uint8Array(size);
  let at = 0;
  const reader = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"))
    .getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.length > size) {
        throw new DecodeError("corrupt", `Model unit inflates to more than ${size} bytes`, offset);
      }
      out.set(value, at);
      at += value.length;
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    if (e instanceof DecodeError) throw e;
    throw new DecodeError(
      "corrupt",
      `Model unit does not inflate: ${(e as Error).message}`,
      offset,
    );
  }
  if (at !== size) {
    throw new DecodeError("corrupt", `Model unit inflates to ${at} bytes, not ${size}`, offset);
  }
  return out;
}
