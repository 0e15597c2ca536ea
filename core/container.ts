/**
 * What our NNR files carry beyond the tensors, in extra NNR_TPL units that the reference decoder
 * accepts and ignores (docs/FORMAT.md): a metadata unit (the complete tensor list with original
 * dtypes and shapes, where each tensor goes in the model, and a check of everything that decides
 * each tensor's values; the unit checks itself) and a model unit (the model file with the coded
 * tensors' data taken out, deflated and written as 7-bit text).
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
export const META_HEADER = "DEEPCABAC-NNR/3 meta\n";
/**
 * First line of the model unit's `topology_data`; the deflated skeleton follows as
 * {@linkcode toSevenBitText}.
 */
export const MODEL_HEADER = "DEEPCABAC-NNR/3 model\n";
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
  /**
   * Bytes of the smallest signed integer that holds every level (1, 2 or 4), so that a decoder
   * delivering levels allocates their array once; absent in files written before it.
   */
  readonly levelBytes?: 1 | 2 | 4;
}

/** The model the tensors belong to. */
export interface ContainerModel {
  /** File format of the skeleton: an ONNX model, or a safetensors file of uncoded tensors. */
  readonly format: "onnx" | "safetensors";
  /** Length of the skeleton. */
  readonly bytes: number;
  /** Length of the deflated skeleton that the model unit's text holds. */
  readonly deflatedBytes: number;
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
 * assert.throws(() => parseMeta("DEEPCABAC-NNR/3 meta\n{\ncrc32 00000000", 0), DecodeError);
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
      !t.shape.every(isCount) || !isCrc(t.crc32) || (t.slot !== undefined && !isCount(t.slot)) ||
      (t.levelBytes !== undefined && ![1, 2, 4].includes(t.levelBytes))
    ) throw bad(`bad tensor entry ${JSON.stringify(t)?.slice(0, 80)}`);
  }
  if (model !== null) {
    const m = model as Record<string, unknown>;
    if (
      typeof m !== "object" || (m.format !== "onnx" && m.format !== "safetensors") ||
      !isCount(m.bytes) || !isCount(m.deflatedBytes) || !isCrc(m.crc32)
    ) throw bad("bad model entry");
  }
  return json as ContainerMeta;
}

/**
 * Encodes bytes as NUL-free UTF-8 text at 7 bits per byte of text (8/7 of the input, about 14 %
 * more; base64 adds 33 %, and no UTF-8 text can carry more than about 7.2 bits per byte). The
 * input is read as a bit string, most significant bit first, in groups of 7 bits (the last one
 * padded with zeros). A group g ≠ 0 is the character g (U+0001..U+007F, one byte); a zero group
 * and the group h after it (a zero if there is none) are together the character U+0080 + h (two
 * bytes). The reference decoders read `topology_data` as text, so it must be NUL-free UTF-8.
 *
 * @param bytes The bytes.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { fromSevenBitText, toSevenBitText } from "./container.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = Uint8Array.of(0, 0, 0, 255, 1, 2, 3);
 * const text = toSevenBitText(bytes);
 * assert.ok(!text.includes("\0"));
 * assert.deepEqual(fromSevenBitText(text, bytes.length, 0), bytes);
 * ```
 */
export function toSevenBitText(bytes: Uint8Array): string {
  const groups = Math.ceil((8 * bytes.length) / 7);
  const codes = new Uint16Array(groups);
  let n = 0;
  let acc = 0;
  let bits = 0;
  let i = 0;
  let zero = false;
  for (let g = 0; g < groups; g++) {
    if (bits < 7) {
      acc = ((acc << 8) | (bytes[i++] ?? 0)) & 0x7fff;
      bits += 8;
    }
    bits -= 7;
    const v = (acc >> bits) & 0x7f;
    if (zero) {
      codes[n++] = 0x80 + v;
      zero = false;
    } else if (v === 0) zero = true;
    else codes[n++] = v;
  }
  if (zero) codes[n++] = 0x80;
  const parts: string[] = [];
  for (let at = 0; at < n; at += 8192) {
    parts.push(String.fromCharCode(...codes.subarray(at, Math.min(n, at + 8192))));
  }
  return parts.join("");
}

/**
 * Decodes text made by {@linkcode toSevenBitText}.
 *
 * @param text The text.
 * @param size The number of bytes it holds.
 * @param offset Byte offset of the text in its file, for errors.
 * @returns The bytes.
 * @throws {DecodeError} If the text has another character or does not hold `size` bytes.
 *
 * @example
 * ```ts
 * import { fromSevenBitText } from "./container.ts";
 * import { DecodeError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(fromSevenBitText("\u0080 ", 2, 0), Uint8Array.of(0, 1));
 * assert.throws(() => fromSevenBitText("\u0100", 1, 0), DecodeError);
 * ```
 */
export function fromSevenBitText(
  text: string,
  size: number,
  offset: number,
): Uint8Array<ArrayBuffer> {
  const groups = Math.ceil((8 * size) / 7);
  let found = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0 || c > 0xff) {
      throw new DecodeError("corrupt", "Bad character in the model unit's text", offset + i);
    }
    found += c < 0x80 ? 1 : 2;
  }
  // A last zero group takes a zero pad group with it.
  const padded = found === groups + 1 && text.charCodeAt(text.length - 1) === 0x80;
  if (found !== groups && !padded) {
    throw new DecodeError("corrupt", `Model unit's text does not hold ${size} bytes`, offset);
  }
  const out = new Uint8Array(size);
  let o = 0;
  let acc = 0;
  let bits = 0;
  const push = (v: number) => {
    acc = ((acc << 7) | v) & 0x7fff;
    bits += 7;
    if (bits >= 8) {
      bits -= 8;
      if (o < size) out[o++] = (acc >> bits) & 0xff;
    }
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) push(c);
    else {
      push(0);
      push(c - 0x80);
    }
  }
  return out;
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
 * import { inflate } from "./container.ts";
 * import { DecodeError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * // A stored deflate block of 100 zero bytes.
 * const packed = new Uint8Array([1, 100, 0, 155, 255, ...new Uint8Array(100)]);
 * assert.equal((await inflate(packed, 100, 0)).length, 100);
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
