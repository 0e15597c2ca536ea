import assert from "node:assert/strict";
import {
  elementCount,
  fromFloat32,
  fromInt32,
  isFloatDtype,
  toFloat32,
  toInt32,
} from "../model/dtypes.ts";
import { type Dtype, DTYPE_BYTES, type ModelTensor } from "../core/model_tensor.ts";

const ALL_DTYPES = Object.keys(DTYPE_BYTES) as Dtype[];
const INT_DTYPES: Dtype[] = ["I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"];

function tensor(dtype: Dtype, data: Uint8Array, shape = [data.length / DTYPE_BYTES[dtype]]) {
  return { name: "t", dtype, shape, data } satisfies ModelTensor;
}

/** Float32 bit patterns of `values`. */
function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/** Float32 values with the given bit patterns. */
function floatsOf(bits: ArrayLike<number>): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

/** 16-bit patterns of little-endian 2-byte elements. */
function halves(bytes: Uint8Array): Uint16Array {
  const out = new Uint16Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
  return out;
}

/** Little-endian bytes of 16-bit patterns. */
function halfBytes(patterns: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(patterns.length * 2);
  for (let i = 0; i < patterns.length; i++) {
    out[2 * i] = patterns[i]! & 0xff;
    out[2 * i + 1] = patterns[i]! >> 8;
  }
  return out;
}

const ALL_PATTERNS = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** The value of a binary16 pattern, computed from the definition of the format. */
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * Reference rounding of a finite double to binary16 by search among all finite halves, ties to
 * the even pattern, overflowing to infinity where the format's rules say so.
 */
const POSITIVE_HALVES = Array.from({ length: 0x7c00 }, (_, h) => halfValue(h));
function nearestHalf(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  // The first value that rounds to infinity is 65520, halfway past the largest half, 65504.
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (POSITIVE_HALVES[mid]! <= a) lo = mid;
    else hi = mid - 1;
  }
  if (lo === 0x7bff) return sign | lo;
  const below = a - POSITIVE_HALVES[lo]!;
  const above = POSITIVE_HALVES[lo + 1]! - a;
  if (below < above || (below === above && (lo & 1) === 0)) return sign | lo;
  return sign | (lo + 1);
}

Deno.test("isFloatDtype() is true for the four float dtypes only", () => {
  assert.deepEqual(ALL_DTYPES.filter(isFloatDtype), ["F64", "F32", "F16", "BF16"]);
});

Deno.test("elementCount() multiplies the dimensions and rejects invalid shapes", () => {
  assert.equal(elementCount([]), 1);
  assert.equal(elementCount([7]), 7);
  assert.equal(elementCount([2, 3, 4]), 24);
  assert.equal(elementCount([2 ** 40, 0]), 0);
  for (const bad of [[-1], [1.5], [NaN], [Infinity], [2 ** 53]]) {
    assert.throws(() => elementCount(bad), RangeError);
  }
  assert.throws(() => elementCount([2 ** 30, 2 ** 30]), RangeError);
});

Deno.test("toFloat32() decodes every float16 pattern exactly", () => {
  const values = toFloat32(tensor("F16", halfBytes(ALL_PATTERNS)));
  let nans = 0;
  for (let h = 0; h < 65536; h++) {
    const expected = halfValue(h);
    if (Number.isNaN(expected)) {
      nans++;
      assert.ok(Number.isNaN(values[h]), `pattern ${h.toString(16)}`);
    } else {
      assert.ok(Object.is(values[h], expected), `pattern ${h.toString(16)}: ${values[h]}`);
    }
  }
  assert.equal(nans, 2 * 1023);
});

Deno.test("fromFloat32() restores every float16 pattern, NaN payloads included", () => {
  const bytes = halfBytes(ALL_PATTERNS);
  assert.deepEqual(fromFloat32(toFloat32(tensor("F16", bytes)), "F16"), bytes);
});

Deno.test("toFloat32() and fromFloat32() round-trip every bfloat16 pattern", () => {
  const bytes = halfBytes(ALL_PATTERNS);
  const values = toFloat32(tensor("BF16", bytes));
  assert.deepEqual(bitsOf(values), Uint32Array.from(ALL_PATTERNS, (h) => h * 65536));
  assert.deepEqual(fromFloat32(values, "BF16"), bytes);
});

Deno.test("fromFloat32() rounds to float16 at every tie and on both sides of it", () => {
  // For each pair of adjacent finite halves: the midpoint and the float32 values just around it.
  const bits: number[] = [];
  for (let h = 0; h < 0x7bff; h++) {
    const mid = (POSITIVE_HALVES[h]! + POSITIVE_HALVES[h + 1]!) / 2;
    const midBits = bitsOf(Float32Array.of(mid))[0]!;
    assert.equal(floatsOf([midBits])[0], mid, "midpoints are exact in float32");
    bits.push(midBits - 1, midBits, midBits + 1);
  }
  // Around the overflow threshold 65520 and the underflow threshold 2^-25.
  for (const edge of [65520, 2 ** -25]) {
    const b = bitsOf(Float32Array.of(edge))[0]!;
    bits.push(b - 1, b, b + 1);
  }
  const positive = floatsOf(bits);
  const values = new Float32Array([...positive, ...positive.map((v) => -v)]);
  const got = halves(fromFloat32(values, "F16"));
  for (let i = 0; i < values.length; i++) {
    assert.equal(got[i], nearestHalf(values[i]!), `value ${values[i]}`);
  }
});

Deno.test("fromFloat32() rounds random float32 values to the nearest float16", () => {
  let seed = 12345;
  const bits = Uint32Array.from({ length: 200_000 }, () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed;
  });
  // Keep finite values, with a bias towards magnitudes a float16 can hold.
  for (let i = 0; i < bits.length; i += 2) bits[i] = (bits[i]! & 0x87ffffff) | 0x30000000;
  const values = floatsOf(bits);
  const got = halves(fromFloat32(values, "F16"));
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) {
      assert.equal(got[i]! & 0x7c00, 0x7c00);
      assert.notEqual(got[i]! & 0x3ff, 0);
    } else {
      assert.equal(got[i], nearestHalf(v), `value ${v}`);
    }
  }
});

Deno.test("fromFloat32() handles float16 special cases", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [1 + 2 ** -11, 0x3c00], // tie, down to the even mantissa
    [1 + 3 * 2 ** -11, 0x3c02], // tie, up to the even mantissa
    [65504, 0x7bff],
    [65519.99609375, 0x7bff],
    [65520, 0x7c00], // tie between the largest half and 2^16: overflows
    [1e10, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -25, 0x0400], // tie between largest subnormal (odd) and smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie with zero
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 units: even
    [-(2 ** -26), 0x8000],
    [2 ** -149, 0x0000],
  ];
  const got = halves(fromFloat32(Float32Array.from(cases, ([v]) => v), "F16"));
  cases.forEach(([value, expected], i) => {
    assert.equal(got[i], expected, `${value} → ${got[i]!.toString(16)}`);
  });
  const nans = halves(fromFloat32(floatsOf([0x7fc00000, 0xff800001, 0x7f801fff]), "F16"));
  for (const h of nans) assert.ok((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
  assert.equal(nans[0], 0x7e00);
  assert.equal(nans[1]! & 0x8000, 0x8000);
});

Deno.test("fromFloat32() rounds to bfloat16 at every tie and on both sides of it", () => {
  for (let h = 0; h < 0x7f80; h++) {
    const mid = h * 65536 + 0x8000;
    const got = halves(fromFloat32(floatsOf([mid - 1, mid, mid + 1, mid + 0x80000000]), "BF16"));
    const even = h & 1 ? h + 1 : h;
    assert.deepEqual([...got], [h, even, h + 1, even | 0x8000], `pattern ${h.toString(16)}`);
  }
  // The tie past the largest finite bfloat16 rounds to infinity; NaN stays NaN.
  const special = halves(fromFloat32(floatsOf([0x7f7f8000, 0x7f800000, 0x7f800001]), "BF16"));
  assert.deepEqual([...special], [0x7f80, 0x7f80, 0x7fc0]);
});

Deno.test("toFloat32() and fromFloat32() convert F32 exactly, NaN bits included", () => {
  const bits = Uint32Array.of(0, 0x80000000, 0x3f800000, 0x7f800000, 0x7fa00001, 0xffc12345, 1);
  const values = floatsOf(bits);
  const bytes = fromFloat32(values, "F32");
  assert.deepEqual([...bytes.subarray(8, 12)], [0x00, 0x00, 0x80, 0x3f]);
  assert.deepEqual(bitsOf(toFloat32(tensor("F32", bytes))), bits);
});

Deno.test("toFloat32() rounds F64 to nearest and fromFloat32() writes F64 exactly", () => {
  const doubles = [1 + 2 ** -24, 1 + 3 * 2 ** -24, -0.1, 1e300, -1e-300, 0.5];
  const bytes = new Uint8Array(8 * doubles.length);
  const view = new DataView(bytes.buffer);
  doubles.forEach((d, i) => view.setFloat64(8 * i, d, true));
  const values = toFloat32(tensor("F64", bytes));
  assert.deepEqual([...values], [1, 1 + 2 ** -22, Math.fround(-0.1), Infinity, -0, 0.5]);
  const back = new DataView(fromFloat32(values, "F64").buffer);
  values.forEach((v, i) => assert.ok(Object.is(back.getFloat64(8 * i, true), v)));
  assert.deepEqual([...fromFloat32(Float32Array.of(1), "F64")], [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
});

Deno.test("toFloat32() reads data at any byte offset", () => {
  const backing = new Uint8Array(1 + 8 + 4);
  backing.set([0x00, 0x00, 0x80, 0x3f], 1);
  backing.set([0, 0, 0, 0, 0, 0, 0xf0, 0xbf], 5);
  assert.deepEqual([...toFloat32(tensor("F32", backing.subarray(1, 5)))], [1]);
  assert.deepEqual([...toFloat32(tensor("F64", backing.subarray(5, 13)))], [-1]);
});

Deno.test("toFloat32() and fromFloat32() reject other dtypes and mismatched data", () => {
  for (const dtype of INT_DTYPES) {
    assert.throws(() => toFloat32(tensor(dtype, new Uint8Array(DTYPE_BYTES[dtype]))), TypeError);
    assert.throws(() => fromFloat32(new Float32Array(1), dtype), TypeError);
  }
  assert.throws(() => toFloat32(tensor("F32", new Uint8Array(6), [2])), RangeError);
  assert.throws(() => toFloat32(tensor("F16", new Uint8Array(4), [3])), RangeError);
});

Deno.test("toInt32() and fromInt32() round-trip every integer dtype at its limits", () => {
  const ranges: Record<string, [number, number]> = {
    I8: [-128, 127],
    U8: [0, 255],
    BOOL: [0, 1],
    I16: [-32768, 32767],
    U16: [0, 65535],
    I32: [-(2 ** 31), 2 ** 31 - 1],
    U32: [0, 2 ** 31 - 1],
    I64: [-(2 ** 31), 2 ** 31 - 1],
    U64: [0, 2 ** 31 - 1],
  };
  for (const dtype of INT_DTYPES) {
    const [min, max] = ranges[dtype]!;
    const values = Int32Array.from(new Set([min, max, 0, 1, Math.max(min, -1), max >> 1]));
    const bytes = fromInt32(values, dtype);
    assert.equal(bytes.length, values.length * DTYPE_BYTES[dtype]);
    assert.deepEqual(toInt32(tensor(dtype, bytes)), values, dtype);
    for (const outside of [min - 1, max + 1]) {
      if (outside >= -(2 ** 31) && outside < 2 ** 31) {
        assert.throws(() => fromInt32(Int32Array.of(outside), dtype), RangeError, dtype);
      }
    }
  }
});

Deno.test("fromInt32() writes little-endian two's complement", () => {
  assert.deepEqual([...fromInt32(Int32Array.of(-2), "I8")], [0xfe]);
  assert.deepEqual([...fromInt32(Int32Array.of(-2), "I16")], [0xfe, 0xff]);
  assert.deepEqual([...fromInt32(Int32Array.of(0x01020304), "I32")], [4, 3, 2, 1]);
  assert.deepEqual([...fromInt32(Int32Array.of(-2), "I64")], [0xfe, ...Array(7).fill(0xff)]);
  assert.deepEqual([...fromInt32(Int32Array.of(0x7fffffff), "U64")], [
    0xff,
    0xff,
    0xff,
    0x7f,
    0,
    0,
    0,
    0,
  ]);
});

Deno.test("toInt32() returns null for values outside int32", () => {
  const cases: [Dtype, number[]][] = [
    ["U32", [0, 0, 0, 0x80]], // 2^31
    ["I64", [0, 0, 0, 0x80, 0, 0, 0, 0]], // 2^31
    ["I64", [0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff]], // −2^31 − 1
    ["I64", [0, 0, 0, 0, 1, 0, 0, 0]], // 2^32
    ["U64", [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]], // 2^64 − 1
    ["U64", [0, 0, 0, 0x80, 0, 0, 0, 0]], // 2^31
    ["BOOL", [2]],
  ];
  for (const [dtype, bytes] of cases) {
    assert.equal(toInt32(tensor(dtype, Uint8Array.from([0, ...bytes]).subarray(1))), null, dtype);
  }
  const minInt = Uint8Array.of(0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff);
  assert.deepEqual(toInt32(tensor("I64", minInt)), Int32Array.of(-(2 ** 31)));
});

Deno.test("toInt32() and fromInt32() reject float dtypes", () => {
  for (const dtype of ["F64", "F32", "F16", "BF16"] as const) {
    assert.throws(() => toInt32(tensor(dtype, new Uint8Array(DTYPE_BYTES[dtype]))), TypeError);
    assert.throws(() => fromInt32(new Int32Array(1), dtype), TypeError);
  }
});
