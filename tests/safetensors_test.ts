import assert from "node:assert/strict";
import { DecodeError, type DecodeErrorCode } from "../core/errors.ts";
import { readSafetensors, writeSafetensors } from "../model/safetensors.ts";
import { type Dtype, DTYPE_BYTES, type ModelTensor } from "../core/model_tensor.ts";

const encoder = new TextEncoder();

/** A file from a header text (padded as given) and data bytes, with the header length given. */
function file(header: string, data: ArrayLike<number> = [], declared?: number): Uint8Array {
  const text = encoder.encode(header);
  const out = new Uint8Array(8 + text.length + data.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(declared ?? text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

/** Asserts that reading `bytes` throws a DecodeError with the given code. */
function assertRejects(bytes: Uint8Array, code: DecodeErrorCode, pattern?: RegExp): DecodeError {
  let caught: unknown;
  try {
    readSafetensors(bytes);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof DecodeError, `expected a DecodeError, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

/** A seeded byte sequence. */
function bytesOf(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 17 + 5) & 0xff);
}

/** One tensor of every dtype, with assorted shapes, including a scalar and an empty tensor. */
function everyDtype(): ModelTensor[] {
  const shapes = [[2, 3], [], [4], [0, 5], [1, 2, 2]];
  return (Object.keys(DTYPE_BYTES) as Dtype[]).map((dtype, i) => {
    const shape = shapes[i % shapes.length]!;
    const count = shape.reduce((a, b) => a * b, 1);
    return {
      name: `layer${i}.${dtype}`,
      dtype,
      shape,
      data: bytesOf(count * DTYPE_BYTES[dtype], i),
    };
  });
}

/** The JSON text of one header entry. */
function entry(name: string, dtype: string, shape: unknown, offsets: unknown): string {
  return `${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: offsets })}`;
}

Deno.test("writeSafetensors() and readSafetensors() round-trip every dtype with metadata", () => {
  const tensors = everyDtype();
  const metadata = { format: "pt", "note ü": 'quoted "value"\n', __proto__x: "" };
  const bytes = writeSafetensors(tensors, metadata);
  const read = readSafetensors(bytes);
  assert.deepEqual(read.tensors, tensors);
  assert.deepEqual(read.metadata, metadata);
  for (const t of read.tensors) assert.equal(t.data.buffer, bytes.buffer, "data is a view");
  assert.deepEqual(writeSafetensors(read.tensors, read.metadata), bytes, "deterministic");
});

Deno.test("writeSafetensors() produces the documented bytes", () => {
  const a = Uint8Array.of(0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0); // F32 1, −2
  const bytes = writeSafetensors([
    { name: "a", dtype: "F32", shape: [2], data: a },
    { name: "b", dtype: "U8", shape: [], data: Uint8Array.of(5) },
  ], { k: "v" });
  const header = '{"__metadata__":{"k":"v"},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"U8","shape":[],"data_offsets":[8,9]}}';
  assert.equal(header.length, 130);
  const expected = [
    ...[136, 0, 0, 0, 0, 0, 0, 0], // 130 padded to 136, u64 little-endian
    ...encoder.encode(header),
    ...[0x20, 0x20, 0x20, 0x20, 0x20, 0x20],
    ...a,
    5,
  ];
  assert.deepEqual([...bytes], expected);
});

Deno.test("writeSafetensors() keeps the given order and writes an empty file", () => {
  const names = ["10", "2", "b", "a", "__proto__"];
  const tensors = names.map((name, i): ModelTensor => ({
    name,
    dtype: "I8",
    shape: [1],
    data: Uint8Array.of(i),
  }));
  const bytes = writeSafetensors(tensors);
  const text = new TextDecoder().decode(bytes.subarray(8, bytes.length - names.length));
  const positions = names.map((name) => text.indexOf(JSON.stringify(name) + ":"));
  assert.deepEqual(positions, [...positions].sort((x, y) => x - y));
  assert.deepEqual(readSafetensors(bytes).tensors.map((t) => t.name), names);
  assert.ok(!text.includes("__metadata__"));

  const empty = writeSafetensors([]);
  assert.deepEqual([...empty], [
    8,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0x7b,
    0x7d,
    0x20,
    0x20,
    0x20,
    0x20,
    0x20,
    0x20,
  ]);
  assert.deepEqual(readSafetensors(empty), { tensors: [], metadata: {} });
});

Deno.test("readSafetensors() accepts padding, any entry order and extra fields", () => {
  const header = `{ ${entry("late", "U8", [2], [3, 5])} ,\n` +
    `"early": {"dtype": "I16", "shape": [1, 1], "data_offsets": [1, 3], "extra": null},` +
    `"first": {"data_offsets": [0, 1], "shape": [], "dtype": "BOOL"},` +
    `"__metadata__": {"__proto__": "kept"}, ${entry("nothing", "F32", [0], [3, 3])}}\t   `;
  const outer = new Uint8Array(3 + 8 + header.length + 5);
  outer.set(file(header, [1, 0x34, 0x12, 7, 8]), 3);
  const { tensors, metadata } = readSafetensors(outer.subarray(3));
  assert.deepEqual(tensors.map((t) => [t.name, t.dtype, t.shape, [...t.data]]), [
    ["first", "BOOL", [], [1]],
    ["early", "I16", [1, 1], [0x34, 0x12]],
    ["nothing", "F32", [0], []],
    ["late", "U8", [2], [7, 8]],
  ]);
  assert.equal(Object.getPrototypeOf(metadata), Object.prototype);
  assert.deepEqual(Object.entries(metadata), [["__proto__", "kept"]]);
});

Deno.test("readSafetensors() rejects every truncation of a valid file", () => {
  const bytes = writeSafetensors(everyDtype(), { a: "b" });
  for (let length = 0; length < bytes.length; length++) {
    const error = assertRejects(bytes.slice(0, length), "truncated");
    if (length < 8) assert.equal(error.offset, length);
  }
});

Deno.test("readSafetensors() checks the header length before reading the header", () => {
  const tiny = file("{}");
  new DataView(tiny.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
  assertRejects(tiny, "limit", /18446744073709551615/);
  new DataView(tiny.buffer).setBigUint64(0, 2n ** 32n, true);
  assertRejects(tiny, "limit");
  assertRejects(file("{}", [], 100 * 1024 * 1024 + 1), "limit");
  assertRejects(file("{}", [], 100 * 1024 * 1024), "truncated");
  assertRejects(file("{}", [], 3), "truncated");
  const padded = file("{}      ");
  assert.deepEqual(readSafetensors(padded, { maxHeaderBytes: 8 }).tensors, []);
  assert.throws(() => readSafetensors(padded, { maxHeaderBytes: 7 }), DecodeError);
  assert.throws(() => readSafetensors(padded, { maxHeaderBytes: -1 }), RangeError);
  assert.throws(() => readSafetensors(padded, { maxHeaderBytes: 1.5 }), RangeError);
});

Deno.test("readSafetensors() rejects headers that are not a UTF-8 JSON object", () => {
  const invalidUtf8 = file('{"a":"x"}');
  invalidUtf8[12] = 0xff;
  assertRejects(invalidUtf8, "corrupt", /UTF-8/);
  assertRejects(file(""), "corrupt");
  assertRejects(file(' {"a":1}'), "corrupt", /start/);
  assertRejects(file("[1,2]"), "corrupt");
  assertRejects(file('{"a":'), "corrupt", /JSON/);
  assertRejects(file("{}x"), "corrupt", /JSON/);
  assertRejects(file("{}\0"), "corrupt", /JSON/);
  assertRejects(file("\uFEFF{}"), "corrupt");
});

Deno.test("readSafetensors() rejects malformed entries", () => {
  const cases: [string, DecodeErrorCode, RegExp][] = [
    ['{"a":1}', "corrupt", /not an object/],
    ['{"a":null}', "corrupt", /not an object/],
    ['{"a":{"shape":[1],"data_offsets":[0,1]}}', "corrupt", /dtype/],
    [`{${entry("a", "F8_E4M3", [1], [0, 1])}}`, "unsupported", /"F8_E4M3"/],
    [`{${entry("a", "toString", [1], [0, 1])}}`, "unsupported", /toString/],
    ['{"a":{"dtype":8,"shape":[1],"data_offsets":[0,1]}}', "corrupt", /dtype/],
    ['{"a":{"dtype":"U8","data_offsets":[0,1]}}', "corrupt", /shape/],
    [`{${entry("a", "U8", "1", [0, 1])}}`, "corrupt", /shape/],
    [`{${entry("a", "U8", [-1], [0, 1])}}`, "corrupt", /shape/],
    [`{${entry("a", "U8", [0.5], [0, 1])}}`, "corrupt", /shape/],
    [`{${entry("a", "U8", ["1"], [0, 1])}}`, "corrupt", /shape/],
    [`{${entry("a", "U8", [2 ** 53], [0, 1])}}`, "corrupt", /shape/],
    ['{"a":{"dtype":"U8","shape":[1]}}', "corrupt", /data_offsets/],
    [`{${entry("a", "U8", [1], [0, 1, 2])}}`, "corrupt", /data_offsets/],
    [`{${entry("a", "U8", [1], [-1, 0])}}`, "corrupt", /data_offsets/],
    [`{${entry("a", "U8", [1], [0, 1.5])}}`, "corrupt", /data_offsets/],
    [`{${entry("a", "U8", [1], { begin: 0, end: 1 })}}`, "corrupt", /data_offsets/],
    [`{${entry("a", "U8", [1], [1, 0])}}`, "corrupt", /reversed/],
    [`{${entry("a", "U8", [2], [0, 2])}}`, "truncated", /past/],
    [`{${entry("a", "U8", [1], [0, 2 ** 50])}}`, "truncated", /past/],
    [`{${entry("a", "U8", [1], [0, 2 ** 60])}}`, "corrupt", /data_offsets/],
    [`{${entry("a", "I16", [1], [0, 1])}}`, "corrupt", /does not fit/],
    [`{${entry("a", "U8", [], [0, 0])}}`, "corrupt", /does not fit/],
    [`{${entry("a", "U8", [2 ** 40, 2 ** 40, 0], [0, 1])}}`, "corrupt", /does not fit/],
    [`{${entry("a", "U8", [2 ** 52, 2 ** 52], [0, 1])}}`, "corrupt", /does not fit/],
    ['{"__metadata__":[]}', "corrupt", /__metadata__/],
    ['{"__metadata__":{"a":1}}', "corrupt", /__metadata__/],
    ['{"__metadata__":{"a":null}}', "corrupt", /__metadata__/],
  ];
  for (const [header, code, pattern] of cases) {
    const error = assertRejects(file(header, [9]), code, pattern);
    assert.equal(error.offset, 8, header);
  }
});

Deno.test("readSafetensors() requires the tensors to cover the data exactly", () => {
  const u8 = (name: string, begin: number, end: number) =>
    entry(name, "U8", [end - begin], [begin, end]);
  const data = [1, 2, 3, 4];
  const cases: [string, RegExp, number][] = [
    [`{${u8("a", 0, 2)},${u8("b", 1, 4)}}`, /"b": overlaps/, 1],
    [`{${u8("a", 0, 4)},${u8("b", 0, 4)}}`, /overlaps/, 0],
    [`{${u8("a", 0, 4)},${u8("b", 2, 2)}}`, /"b": overlaps/, 2],
    [`{${u8("a", 0, 1)},${u8("b", 2, 4)}}`, /"b": leaves data offsets 1 to 2 uncovered/, 2],
    [`{${u8("a", 1, 4)}}`, /"a": leaves data offsets 0 to 1/, 1],
    [`{${u8("a", 0, 3)}}`, /data offsets 3 to 4 are not covered/, 3],
    ["{}", /data offsets 0 to 4/, 0],
  ];
  for (const [header, pattern, dataOffset] of cases) {
    const error = assertRejects(file(header, data), "corrupt", pattern);
    assert.equal(error.offset, 8 + header.length + dataOffset, header);
  }
});

Deno.test("writeSafetensors() rejects names, dtypes, shapes and data that do not fit", () => {
  const ok = (overrides: Partial<ModelTensor>): ModelTensor => ({
    name: "x",
    dtype: "U8",
    shape: [2],
    data: new Uint8Array(2),
    ...overrides,
  });
  assert.throws(() => writeSafetensors([ok({}), ok({})]), RangeError);
  assert.throws(() => writeSafetensors([ok({ name: "__metadata__" })]), RangeError);
  assert.throws(() => writeSafetensors([ok({ data: new Uint8Array(3) })]), RangeError);
  assert.throws(() => writeSafetensors([ok({ dtype: "F16" })]), RangeError);
  assert.throws(() => writeSafetensors([ok({ shape: [-2] })]), RangeError);
  assert.throws(() => writeSafetensors([ok({ shape: [1.5] })]), RangeError);
  assert.throws(() => writeSafetensors([ok({ dtype: "F8_E4M3" as Dtype })]), TypeError);
  assert.throws(() => writeSafetensors([ok({ dtype: "toString" as Dtype })]), TypeError);
  assert.throws(() => writeSafetensors([ok({ data: [0, 0] as unknown as Uint8Array })]), TypeError);
  assert.throws(() => writeSafetensors([ok({ name: 7 as unknown as string })]), TypeError);
  assert.throws(() => writeSafetensors([ok({ name: "bad \uD800" })]), TypeError);
  assert.throws(() => writeSafetensors([], { a: 1 as unknown as string }), TypeError);
  assert.throws(() => writeSafetensors([], { "\uDC00": "x" }), TypeError);
});
