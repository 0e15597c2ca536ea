/**
 * Reader and writer for the safetensors model format: an 8-byte little-endian header length
 * `N`, `N` bytes of UTF-8 JSON mapping each tensor name to its `dtype`, `shape` and
 * `data_offsets` (`[begin, end)`, relative to the byte buffer that follows the header) plus an
 * optional `__metadata__` object of strings, then the byte buffer itself.
 *
 * The reader treats its input as untrusted: it checks the header length against a limit before
 * decoding it, checks every field of every entry, and requires the tensors to cover the byte
 * buffer exactly, without overlaps or holes. Tensor data are views of the input, not copies.
 *
 * @module
 */
import { DecodeError } from "../core/errors.ts";
import { type Dtype, DTYPE_BYTES, type ModelTensor } from "../core/model_tensor.ts";

/** Limits on what {@linkcode readSafetensors} accepts. */
export interface SafetensorsLimits {
  /** Largest accepted JSON header, in bytes; default 100 MiB. */
  readonly maxHeaderBytes?: number;
}

/** The content of a safetensors file. */
export interface Safetensors {
  /** The tensors, in the order of their data in the file. */
  readonly tensors: ModelTensor[];
  /** The `__metadata__` entries; empty when the file has none. */
  readonly metadata: Readonly<Record<string, string>>;
}

const DEFAULT_MAX_HEADER_BYTES = 100 * 1024 * 1024;
const METADATA_KEY = "__metadata__";
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** A tensor entry of the header, checked field by field. */
interface Entry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isIndex(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Checks one tensor entry of the header; `dataLength` is the size of the byte buffer. */
function parseEntry(name: string, value: unknown, dataLength: number): Entry {
  const fail = (code: "corrupt" | "unsupported" | "truncated", detail: string): never => {
    throw new DecodeError(
      code,
      `Cannot read safetensors tensor ${JSON.stringify(name)}: ${detail}`,
      8,
    );
  };
  if (!isPlainObject(value)) return fail("corrupt", "entry is not an object");
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string") return fail("corrupt", "dtype is not a string");
  if (!Object.hasOwn(DTYPE_BYTES, dtype)) {
    return fail("unsupported", `dtype ${JSON.stringify(dtype)} is not supported`);
  }
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    return fail("corrupt", "shape is not an array of non-negative integers");
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
    return fail("corrupt", "data_offsets is not a pair of non-negative integers");
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) return fail("corrupt", `data_offsets [${begin}, ${end}] are reversed`);
  if (end > dataLength) {
    return fail(
      "truncated",
      `data_offsets [${begin}, ${end}] run past the ${dataLength}-byte data buffer`,
    );
  }
  // Every factor is a safe integer; once the product passes the span it can never match it.
  const span = end - begin;
  let bytes = shape.includes(0) ? 0 : DTYPE_BYTES[dtype as Dtype];
  for (const dim of shape) if (bytes <= span) bytes *= dim;
  if (bytes !== span) {
    return fail(
      "corrupt",
      `shape [${shape.join(", ")}] of ${dtype} does not fit data_offsets [${begin}, ${end}]`,
    );
  }
  return { name, dtype: dtype as Dtype, shape: shape as number[], begin, end };
}

/**
 * Reads a safetensors file.
 *
 * @param bytes The whole file.
 * @param limits Limits on the header size.
 * @returns The tensors, in data order, with `data` as views of `bytes`, and the metadata.
 * @throws {DecodeError} If the file is truncated (`"truncated"`), malformed (`"corrupt"`), has a
 * header larger than the limit (`"limit"`) or a dtype this project does not know, such as
 * `F8_E4M3` (`"unsupported"`).
 * @throws {RangeError} If `limits.maxHeaderBytes` is not a non-negative integer.
 *
 * @example Reading a file with one tensor
 * ```ts
 * import { readSafetensors } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const header = '{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}';
 * const file = new Uint8Array([header.length, 0, 0, 0, 0, 0, 0, 0]);
 * const bytes = new Uint8Array([...file, ...new TextEncoder().encode(header), 7, 9]);
 * const { tensors, metadata } = readSafetensors(bytes);
 * assert.equal(tensors.length, 1);
 * assert.equal(tensors[0]!.name, "x");
 * assert.deepEqual(tensors[0]!.shape, [2]);
 * assert.deepEqual([...tensors[0]!.data], [7, 9]);
 * assert.deepEqual(metadata, {});
 * ```
 */
export function readSafetensors(bytes: Uint8Array, limits: SafetensorsLimits = {}): Safetensors {
  const maxHeaderBytes = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (!isIndex(maxHeaderBytes)) {
    throw new RangeError(`Cannot read safetensors: maxHeaderBytes ${maxHeaderBytes} is invalid`);
  }
  if (bytes.length < 8) {
    throw new DecodeError(
      "truncated",
      "Cannot read safetensors: file is shorter than the 8-byte header length",
      bytes.length,
    );
  }
  const prefix = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const low = prefix.getUint32(0, true);
  const high = prefix.getUint32(4, true);
  if (high !== 0 || low > maxHeaderBytes) {
    const headerLength = (BigInt(high) << 32n) | BigInt(low);
    throw new DecodeError(
      "limit",
      `Cannot read safetensors: header length ${headerLength} exceeds the limit of ${maxHeaderBytes} bytes`,
      0,
    );
  }
  const dataStart = 8 + low;
  if (dataStart > bytes.length) {
    throw new DecodeError(
      "truncated",
      `Cannot read safetensors: header of ${low} bytes runs past the end of the file`,
      bytes.length,
    );
  }
  if (bytes[8] !== 0x7b) {
    throw new DecodeError("corrupt", 'Cannot read safetensors: header does not start with "{"', 8);
  }
  let text: string;
  try {
    text = utf8Decoder.decode(bytes.subarray(8, dataStart));
  } catch {
    throw new DecodeError("corrupt", "Cannot read safetensors: header is not valid UTF-8", 8);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new DecodeError("corrupt", `Cannot read safetensors: header is not JSON: ${reason}`, 8);
  }
  if (!isPlainObject(header)) {
    throw new DecodeError("corrupt", "Cannot read safetensors: header is not a JSON object", 8);
  }

  const dataLength = bytes.length - dataStart;
  const entries: Entry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === "string")) {
        throw new DecodeError(
          "corrupt",
          "Cannot read safetensors: __metadata__ is not an object of strings",
          8,
        );
      }
      // fromEntries defines keys as own properties, so a "__proto__" key stays a plain key.
      metadata = Object.fromEntries(Object.entries(value as Record<string, string>));
    } else {
      entries.push(parseEntry(name, value, dataLength));
    }
  }

  // Sorting by [begin, end) puts empty tensors before a tensor that starts where they sit.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const { name, begin, end } of entries) {
    if (begin !== covered) {
      const problem = begin < covered
        ? `overlaps the tensor before it, which ends at data offset ${covered}`
        : `leaves data offsets ${covered} to ${begin} uncovered`;
      throw new DecodeError(
        "corrupt",
        `Cannot read safetensors tensor ${JSON.stringify(name)}: ${problem}`,
        dataStart + begin,
      );
    }
    covered = end;
  }
  if (covered !== dataLength) {
    throw new DecodeError(
      "corrupt",
      `Cannot read safetensors: data offsets ${covered} to ${dataLength} are not covered by a tensor`,
      dataStart + covered,
    );
  }

  const tensors = entries.map(({ name, dtype, shape, begin, end }): ModelTensor => ({
    name,
    dtype,
    shape,
    data: bytes.subarray(dataStart + begin, dataStart + end),
  }));
  return { tensors, metadata };
}

/** Throws unless `s` encodes to UTF-8 unchanged (no lone surrogates). */
function checkText(s: unknown, what: string): asserts s is string {
  if (typeof s !== "string") {
    throw new TypeError(`Cannot write safetensors: ${what} is not a string`);
  }
  if (!s.isWellFormed()) {
    throw new TypeError(
      `Cannot write safetensors: ${what} ${JSON.stringify(s)} has a lone surrogate`,
    );
  }
}

/**
 * Writes tensors and metadata as a safetensors file. The output is deterministic: the header
 * lists `__metadata__` (when non-empty) and then the tensors in the given order, as compact JSON
 * padded with spaces to a multiple of 8 bytes, and the tensors' data follow in the same order.
 *
 * @param tensors The tensors; names must be unique and not `__metadata__`.
 * @param metadata String entries for the header's `__metadata__` object.
 * @returns The file.
 * @throws {TypeError} If a name or metadata value is not a well-formed string, or a dtype is
 * unknown.
 * @throws {RangeError} If a name repeats, a shape is invalid or a tensor's data length does not
 * match its shape and dtype.
 *
 * @example Round trip
 * ```ts
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new Uint8Array([1, 0, 2, 0, 3, 0]);
 * const file = writeSafetensors([{ name: "b", dtype: "I16", shape: [3], data }], { step: "0.5" });
 * assert.equal((file.length - 6) % 8, 0);
 * const { tensors, metadata } = readSafetensors(file);
 * assert.deepEqual(tensors, [{ name: "b", dtype: "I16", shape: [3], data }]);
 * assert.deepEqual(metadata, { step: "0.5" });
 * ```
 */
export function writeSafetensors(
  tensors: readonly ModelTensor[],
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array<ArrayBuffer> {
  const fields: string[] = [];
  const metadataEntries = Object.entries(metadata);
  if (metadataEntries.length > 0) {
    const pairs = metadataEntries.map(([key, value]) => {
      checkText(key, "metadata key");
      checkText(value, `metadata value of ${JSON.stringify(key)}`);
      return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
    });
    fields.push(`"${METADATA_KEY}":{${pairs.join(",")}}`);
  }
  const names = new Set<string>();
  let dataLength = 0;
  for (const { name, dtype, shape, data } of tensors) {
    checkText(name, "tensor name");
    if (name === METADATA_KEY || names.has(name)) {
      throw new RangeError(
        `Cannot write safetensors: tensor name ${JSON.stringify(name)} is taken`,
      );
    }
    names.add(name);
    if (!Object.hasOwn(DTYPE_BYTES, dtype)) {
      throw new TypeError(
        `Cannot write safetensors tensor ${JSON.stringify(name)}: dtype ${dtype}`,
      );
    }
    let count = 1;
    for (const dim of shape) {
      if (!isIndex(dim)) {
        throw new RangeError(
          `Cannot write safetensors tensor ${JSON.stringify(name)}: dimension ${dim} is invalid`,
        );
      }
      count *= dim;
    }
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot write safetensors tensor ${JSON.stringify(name)}: data is not a Uint8Array`,
      );
    }
    if (data.length !== count * DTYPE_BYTES[dtype]) {
      throw new RangeError(
        `Cannot write safetensors tensor ${JSON.stringify(name)}: data is not ${
          count * DTYPE_BYTES[dtype]
        } bytes`,
      );
    }
    const end = dataLength + data.length;
    fields.push(
      `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape.join(",")}],` +
        `"data_offsets":[${dataLength},${end}]}`,
    );
    dataLength = end;
  }
  const header = utf8Encoder.encode(`{${fields.join(",")}}`);
  const headerLength = Math.ceil(header.length / 8) * 8;
  const dataStart = 8 + headerLength;
  const out = new Uint8Array(dataStart + dataLength);
  const prefix = new DataView(out.buffer, 0, 8);
  prefix.setUint32(0, headerLength % 2 ** 32, true);
  prefix.setUint32(4, Math.floor(headerLength / 2 ** 32), true);
  out.set(header, 8);
  out.fill(0x20, 8 + header.length, dataStart);
  let offset = dataStart;
  for (const { data } of tensors) {
    out.set(data, offset);
    offset += data.length;
  }
  return out;
}
