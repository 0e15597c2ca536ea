/**
 * Conversions between the element bytes of a {@linkcode ModelTensor} and the `Float32Array` /
 * `Int32Array` values the codec works on.
 *
 * Element bytes are little-endian whatever the host's byte order: they are read and written with
 * `DataView` or byte operations. Float results are assembled as bit patterns through a
 * `Uint32Array` view of the output, so NaN payloads survive the trip.
 *
 * @module
 */
import { type Dtype, DTYPE_BYTES, type ModelTensor } from "../core/model_tensor.ts";

/**
 * Whether a dtype holds floating-point values (`F64`, `F32`, `F16`, `BF16`).
 *
 * @param d The dtype.
 * @returns `true` for the four float dtypes.
 *
 * @example
 * ```ts
 * import { isFloatDtype } from "./dtypes.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isFloatDtype("BF16"), true);
 * assert.equal(isFloatDtype("I8"), false);
 * ```
 */
export function isFloatDtype(d: Dtype): boolean {
  return d === "F64" || d === "F32" || d === "F16" || d === "BF16";
}

/**
 * The number of elements of a tensor of the given shape: the product of its dimensions, `1` for
 * a scalar (`[]`).
 *
 * @param shape Dimensions, each a non-negative safe integer.
 * @returns The element count.
 * @throws {RangeError} If a dimension is not a non-negative safe integer or the product is not a
 * safe integer.
 *
 * @example
 * ```ts
 * import { elementCount } from "./dtypes.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(elementCount([3, 4]), 12);
 * assert.equal(elementCount([]), 1);
 * assert.equal(elementCount([5, 0, 7]), 0);
 * ```
 */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new RangeError(`Cannot count elements: dimension ${dim} is not a non-negative integer`);
    }
    count *= dim;
  }
  if (!Number.isSafeInteger(count)) {
    throw new RangeError(`Cannot count elements: shape [${shape.join(", ")}] is too large`);
  }
  return count;
}

/** Element count of `t`, checked against the length of its data. */
function tensorLength(t: ModelTensor): number {
  const size = DTYPE_BYTES[t.dtype];
  if (size === undefined) {
    throw new TypeError(`Cannot convert tensor "${t.name}": unknown dtype ${t.dtype}`);
  }
  const count = elementCount(t.shape);
  if (t.data.length !== count * size) {
    throw new RangeError(
      `Cannot convert tensor "${t.name}": data has ${t.data.length} bytes, shape and dtype need ${
        count * size
      }`,
    );
  }
  return count;
}

/** IEEE 754 binary16 bit pattern to binary32 bit pattern; exact, NaN payloads kept. */
function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal: move the leading one to the implicit bit; each shift lowers the exponent by one.
  const shift = Math.clz32(mantissa) - 21;
  mantissa = (mantissa << shift) & 0x3ff;
  return (sign | ((113 - shift) << 23) | (mantissa << 13)) >>> 0;
}

/** Binary32 bit pattern to binary16 bit pattern, rounding to nearest, ties to even. */
function floatBitsToHalf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs === 0x7f800000) return sign | 0x7c00;
    // NaN: keep the top of the payload, and keep it a NaN when only low payload bits were set.
    const payload = (abs >> 13) & 0x3ff;
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload);
  }
  // 65520 = 0x477ff000 is halfway between 65504 (odd mantissa) and 2^16: ties go to infinity.
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs >= 0x38800000) {
    // Normal half. A carry out of the mantissa correctly bumps the exponent.
    let h = (abs >> 13) - (112 << 10);
    const rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++;
    return sign | h;
  }
  // 2^-25 is halfway between zero and the smallest subnormal: ties go to zero.
  if (abs <= 0x33000000) return sign;
  // Subnormal half: significand × 2^(exponent − 150) in units of 2^-24.
  const shift = 126 - (abs >> 23);
  const significand = (abs & 0x7fffff) | 0x800000;
  let m = significand >> shift;
  const rest = significand & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (m & 1) !== 0)) m++;
  return sign | m;
}

/** Binary32 bit pattern to bfloat16 bit pattern, rounding to nearest, ties to even. */
function floatBitsToBfloat(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) {
    const h = x >>> 16;
    return (h & 0x7f) === 0 ? h | 0x40 : h;
  }
  // Below 2^32 for every non-NaN pattern, so no wrap-around; the carry handles overflow to inf.
  return ((x >>> 0) + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/**
 * Decodes a float tensor's element bytes into `Float32Array` values. `F32`, `F16` and `BF16`
 * convert exactly (NaN payloads kept); `F64` is rounded to the nearest float32.
 *
 * @param t A tensor of dtype `F64`, `F32`, `F16` or `BF16`.
 * @returns The values, one per element, row-major.
 * @throws {TypeError} If the dtype is not a float dtype.
 * @throws {RangeError} If the data length does not match the shape and dtype.
 *
 * @example Reading float16
 * ```ts
 * import { toFloat32 } from "./dtypes.ts";
 * import assert from "node:assert/strict";
 *
 * // 1.0 and -2.0 in float16, little-endian.
 * const data = new Uint8Array([0x00, 0x3c, 0x00, 0xc0]);
 * const values = toFloat32({ name: "w", dtype: "F16", shape: [2], data });
 * assert.deepEqual([...values], [1, -2]);
 * ```
 */
export function toFloat32(t: ModelTensor): Float32Array<ArrayBuffer> {
  const n = tensorLength(t);
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  const data = t.data;
  switch (t.dtype) {
    case "F32": {
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < n; i++) bits[i] = view.getUint32(4 * i, true);
      break;
    }
    case "F16":
      for (let i = 0; i < n; i++) bits[i] = halfToFloatBits(data[2 * i]! | (data[2 * i + 1]! << 8));
      break;
    case "BF16":
      for (let i = 0; i < n; i++) bits[i] = (data[2 * i]! << 16) | (data[2 * i + 1]! << 24);
      break;
    case "F64": {
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    }
    default:
      throw new TypeError(`Cannot convert tensor "${t.name}" to float32: dtype ${t.dtype}`);
  }
  return out;
}

/**
 * Encodes `Float32Array` values as little-endian element bytes of a float dtype. `F16` and
 * `BF16` round to nearest, ties to even, with overflow to infinity and gradual underflow to
 * subnormals; NaN stays NaN (with as much of its payload as fits). `F32` and `F64` are exact.
 *
 * @param values The values.
 * @param dtype `F64`, `F32`, `F16` or `BF16`.
 * @returns `values.length · DTYPE_BYTES[dtype]` bytes.
 * @throws {TypeError} If the dtype is not a float dtype.
 *
 * @example Writing bfloat16
 * ```ts
 * import { fromFloat32 } from "./dtypes.ts";
 * import assert from "node:assert/strict";
 *
 * // 1 + 2^-8 is halfway between two bfloat16 values and rounds to the even one, 1.0.
 * const bytes = fromFloat32(new Float32Array([1 + 2 ** -8, -2]), "BF16");
 * assert.deepEqual([...bytes], [0x80, 0x3f, 0x00, 0xc0]);
 * ```
 */
export function fromFloat32(values: Float32Array, dtype: Dtype): Uint8Array<ArrayBuffer> {
  const size = DTYPE_BYTES[dtype];
  if (!isFloatDtype(dtype)) {
    throw new TypeError(`Cannot convert float32 values to dtype ${dtype}: not a float dtype`);
  }
  const n = values.length;
  const out = new Uint8Array(n * size);
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  switch (dtype) {
    case "F32": {
      const view = new DataView(out.buffer);
      for (let i = 0; i < n; i++) view.setUint32(4 * i, bits[i]!, true);
      break;
    }
    case "F16":
    case "BF16": {
      const round = dtype === "F16" ? floatBitsToHalf : floatBitsToBfloat;
      for (let i = 0; i < n; i++) {
        const h = round(bits[i]!);
        out[2 * i] = h;
        out[2 * i + 1] = h >> 8;
      }
      break;
    }
    default: {
      const view = new DataView(out.buffer);
      for (let i = 0; i < n; i++) view.setFloat64(8 * i, values[i]!, true);
    }
  }
  return out;
}

/**
 * Decodes an integer or `BOOL` tensor's element bytes into `Int32Array` values.
 *
 * @param t A tensor of an integer dtype or `BOOL`.
 * @returns The values, or `null` when one of them has no int32 form: an `I64`, `U32` or `U64`
 * value outside [−2^31, 2^31 − 1], or a `BOOL` byte other than 0 and 1.
 * @throws {TypeError} If the dtype is a float dtype.
 * @throws {RangeError} If the data length does not match the shape and dtype.
 *
 * @example
 * ```ts
 * import { toInt32 } from "./dtypes.ts";
 * import assert from "node:assert/strict";
 *
 * const small = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]); // −1
 * assert.deepEqual(toInt32({ name: "a", dtype: "I64", shape: [], data: small }), Int32Array.of(-1));
 * const large = new Uint8Array([0, 0, 0, 0x80]); // 2^31
 * assert.equal(toInt32({ name: "b", dtype: "U32", shape: [1], data: large }), null);
 * ```
 */
export function toInt32(t: ModelTensor): Int32Array<ArrayBuffer> | null {
  const n = tensorLength(t);
  const out = new Int32Array(n);
  const data = t.data;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  switch (t.dtype) {
    case "I8":
      for (let i = 0; i < n; i++) out[i] = (data[i]! << 24) >> 24;
      break;
    case "U8":
      for (let i = 0; i < n; i++) out[i] = data[i]!;
      break;
    case "BOOL":
      for (let i = 0; i < n; i++) {
        const b = data[i]!;
        if (b > 1) return null;
        out[i] = b;
      }
      break;
    case "I16":
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true);
      break;
    case "U16":
      for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, true);
      break;
    case "I32":
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      break;
    case "U32":
      for (let i = 0; i < n; i++) {
        const v = view.getInt32(4 * i, true);
        if (v < 0) return null;
        out[i] = v;
      }
      break;
    case "I64":
    case "U64": {
      // The high word must be the sign extension of the low one (only 0 for U64).
      const highForNegative = t.dtype === "I64" ? -1 : 1;
      for (let i = 0; i < n; i++) {
        const low = view.getInt32(8 * i, true);
        const high = view.getInt32(8 * i + 4, true);
        if (high !== (low < 0 ? highForNegative : 0)) return null;
        out[i] = low;
      }
      break;
    }
    default:
      throw new TypeError(`Cannot convert tensor "${t.name}" to int32: dtype ${t.dtype}`);
  }
  return out;
}

/** Inclusive int32 range of each integer dtype and `BOOL`. */
const INT_RANGES: Readonly<Partial<Record<Dtype, readonly [number, number]>>> = {
  I8: [-0x80, 0x7f],
  U8: [0, 0xff],
  BOOL: [0, 1],
  I16: [-0x8000, 0x7fff],
  U16: [0, 0xffff],
  I32: [-0x80000000, 0x7fffffff],
  U32: [0, 0x7fffffff],
  I64: [-0x80000000, 0x7fffffff],
  U64: [0, 0x7fffffff],
};

/**
 * Encodes `Int32Array` values as little-endian element bytes of an integer dtype or `BOOL`.
 *
 * @param values The values.
 * @param dtype An integer dtype or `BOOL`.
 * @returns `values.length · DTYPE_BYTES[dtype]` bytes.
 * @throws {TypeError} If the dtype is a float dtype.
 * @throws {RangeError} If a value is outside the dtype's range (`BOOL`: 0 and 1).
 *
 * @example
 * ```ts
 * import { fromInt32 } from "./dtypes.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...fromInt32(Int32Array.of(-2, 300), "I16")], [0xfe, 0xff, 0x2c, 0x01]);
 * assert.throws(() => fromInt32(Int32Array.of(300), "U8"), RangeError);
 * ```
 */
export function fromInt32(values: Int32Array, dtype: Dtype): Uint8Array<ArrayBuffer> {
  const range = INT_RANGES[dtype];
  if (range === undefined) {
    throw new TypeError(`Cannot convert int32 values to dtype ${dtype}: not an integer dtype`);
  }
  const [min, max] = range;
  const n = values.length;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v < min || v > max) {
      throw new RangeError(`Cannot convert int32 values to dtype ${dtype}: value ${v} at ${i}`);
    }
  }
  const size = DTYPE_BYTES[dtype];
  const out = new Uint8Array(n * size);
  const view = new DataView(out.buffer);
  switch (size) {
    case 1:
      out.set(values);
      break;
    case 2:
      for (let i = 0; i < n; i++) view.setInt16(2 * i, values[i]!, true);
      break;
    case 4:
      for (let i = 0; i < n; i++) view.setInt32(4 * i, values[i]!, true);
      break;
    default:
      for (let i = 0; i < n; i++) {
        const v = values[i]!;
        view.setInt32(8 * i, v, true);
        view.setInt32(8 * i + 4, v >> 31, true);
      }
  }
  return out;
}
