/**
 * The in-memory form of a model's tensors that every model format reader produces and every
 * writer consumes.
 *
 * @module
 */

/** Element types of model tensors, named as in safetensors. */
export type Dtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/** Bytes per element of each {@linkcode Dtype}. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

/** One named tensor: its element bytes, little-endian, row-major. */
export interface ModelTensor {
  /** The tensor's name in its model. */
  readonly name: string;
  /** Element type. */
  readonly dtype: Dtype;
  /** Shape; `[]` for a scalar. */
  readonly shape: readonly number[];
  /** `product(shape) · DTYPE_BYTES[dtype]` bytes, little-endian. */
  readonly data: Uint8Array;
}
