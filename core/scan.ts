/**
 * Scan orders: row-major, and the 8/16/32/64 block scans whose block rows start entry points.
 *
 * @module
 */
import type { SyntaxVariant } from "./syntax.ts";

/** A tensor's matrix view and the order in which the coder visits its elements. */
export interface ScanPlan {
  /** Rows of the matrix view (`shape[0]`). */
  readonly height: number;
  /** Columns of the matrix view (product of `shape[1:]`). */
  readonly width: number;
  /** The scan order really used (0 when forced by the shape). */
  readonly effectiveScanOrder: number;
  /** Block size B (0 for row-major). */
  readonly blockSize: number;
  /** Element index (row-major) of each scan position. */
  readonly order: Int32Array<ArrayBuffer>;
  /** Scan position where each block row starts (one entry, 0, for row-major). */
  readonly blockRowStarts: Int32Array<ArrayBuffer>;
}

/** Largest number of elements one tensor may have. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

/**
 * Returns the matrix view `[height, width]` of a tensor shape: H = shape[0] and W = the product
 * of the other dimensions (a 1-D tensor of length n is n rows of width 1; a scalar is 1 × 1).
 *
 * @param shape Tensor shape.
 * @returns `[height, width]`.
 * @throws {RangeError} If a dimension is negative or not an integer, or the tensor is too large.
 *
 * @example
 * ```ts
 * import { matrixView } from "./scan.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(matrixView([64, 32, 5, 5]), [64, 800]);
 * assert.deepEqual(matrixView([7]), [7, 1]);
 * ```
 */
export function matrixView(shape: readonly number[]): [number, number] {
  let width = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(`Cannot scan tensor: dimension ${i} is ${d}`);
    }
    if (i > 0) width *= d;
  }
  const height = shape.length === 0 ? 1 : shape[0]!;
  if (height * width > MAX_TENSOR_ELEMENTS) {
    throw new RangeError(`Cannot scan tensor: ${height * width} elements exceed the limit`);
  }
  return [height, width];
}

/**
 * Returns the scan order actually used: block scans are only used for tensors with at least two
 * dimensions whose matrix view has more than one row and more than one column.
 *
 * @param shape Tensor shape.
 * @param scanOrder Requested scan order, 0..4.
 * @returns The effective scan order.
 *
 * @example
 * ```ts
 * import { effectiveScanOrder } from "./scan.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(effectiveScanOrder([37, 1], 2), 0);
 * assert.equal(effectiveScanOrder([130, 72], 2), 2);
 * ```
 */
export function effectiveScanOrder(shape: readonly number[], scanOrder: number): number {
  if (!Number.isInteger(scanOrder) || scanOrder < 0 || scanOrder > 4) {
    throw new RangeError(`Scan order ${scanOrder} is not in 0..4`);
  }
  const [height, width] = matrixView(shape);
  if (shape.length < 2 || height <= 1 || width <= 1) return 0;
  return scanOrder;
}

/**
 * Elements a block row must have at least for the encoder's default to use a block scan: below
 * that the tensor decodes in milliseconds anyway, and the trial coding is not worth its time.
 */
export const AUTO_SCAN_MIN_ROW_ELEMENTS = 65536;

/**
 * The block scan the encoder's default (`scanOrder: "auto"`) proposes, so that the data unit
 * carries entry points for parallel and incremental decoding: the largest block size (64, 32, 16
 * or 8 rows) that still gives the tensor at least 4 block rows, as long as a block row holds at
 * least {@linkcode AUTO_SCAN_MIN_ROW_ELEMENTS} elements (the contexts restart at each block row:
 * too short a row costs bits); otherwise 0. The encoder keeps it only where a trial shows it costs
 * next to nothing (`encodeTensor()`; bench/scan_cost.ts).
 *
 * @param shape Tensor shape.
 * @returns A scan order, 0..4.
 *
 * @example
 * ```ts
 * import { autoScanOrder } from "./scan.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(autoScanOrder([512, 1024, 3, 3]), 4); // 8 block rows of 64 × 9216
 * assert.equal(autoScanOrder([2048, 1024]), 4); // 32 block rows of 64 × 1024
 * assert.equal(autoScanOrder([300, 784]), 0); // block rows of 64 × 784 are too small
 * ```
 */
export function autoScanOrder(shape: readonly number[]): number {
  if (shape.length < 2) return 0;
  const [height, width] = matrixView(shape);
  for (let s = 4; s >= 1; s--) {
    const rows = 4 << s;
    if (Math.ceil(height / rows) >= 4 && rows * width >= AUTO_SCAN_MIN_ROW_ELEMENTS) {
      return effectiveScanOrder(shape, s);
    }
  }
  return 0;
}

/**
 * Builds the scan plan of a tensor.
 *
 * @param shape Tensor shape.
 * @param scanOrder Requested scan order, 0..4 (0 row-major, s > 0 blocks of 4 << s).
 * @param withOrder Whether to fill `order` (false leaves it empty, for the decoder).
 * @returns The plan.
 *
 * @example A 3 × 5 matrix in 8 × 8 blocks is one block row, scanned row-major
 * ```ts
 * import { scanPlan } from "./scan.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = scanPlan([10, 10], 1);
 * assert.equal(plan.blockSize, 8);
 * assert.deepEqual([...plan.blockRowStarts], [0, 80]);
 * assert.deepEqual([...plan.order.subarray(0, 10)], [0, 1, 2, 3, 4, 5, 6, 7, 10, 11]);
 * ```
 */
export function scanPlan(
  shape: readonly number[],
  scanOrder: number,
  withOrder = true,
): ScanPlan {
  const [height, width] = matrixView(shape);
  const effective = effectiveScanOrder(shape, scanOrder);
  const n = height * width;
  // The decoder walks the geometry itself; only the encoder needs the element order, which
  // costs 4 bytes a weight.
  const order = new Int32Array(withOrder ? n : 0);
  if (effective === 0) {
    for (let i = 0; i < order.length; i++) order[i] = i;
    return {
      height,
      width,
      effectiveScanOrder: 0,
      blockSize: 0,
      order,
      blockRowStarts: Int32Array.of(0),
    };
  }
  const b = 4 << effective;
  const blockRows = Math.ceil(height / b);
  const blockRowStarts = new Int32Array(blockRows);
  let p = 0;
  for (let br = 0; br < blockRows; br++) {
    blockRowStarts[br] = p;
    const r0 = br * b;
    const r1 = Math.min(height, r0 + b);
    for (let c0 = 0; c0 < width; c0 += b) {
      const c1 = Math.min(width, c0 + b);
      for (let r = r0; r < r1; r++) {
        const rowBase = r * width;
        if (withOrder) { for (let c = c0; c < c1; c++) order[p++] = rowBase + c; }
        else p += c1 - c0;
      }
    }
  }
  return { height, width, effectiveScanOrder: effective, blockSize: b, order, blockRowStarts };
}

/**
 * Whether the range is set to 256 before block row 0 (CODING.md 6.1 step 5): for every block scan
 * in the first edition, only with more than one block row in the second.
 *
 * @param plan The scan plan.
 * @param syntax The syntax variant.
 * @returns True where the reset happens.
 */
export function rangeResetBeforeFirstRow(plan: ScanPlan, syntax: SyntaxVariant): boolean {
  return plan.effectiveScanOrder > 0 && (syntax === "nnc1" || plan.blockRowStarts.length > 1);
}

/**
 * The elements of block rows `[from, to)` in the tensor's row-major layout: a block row is
 * `blockSize` matrix rows (scan 0: all of them), so the range is contiguous.
 *
 * @param plan The scan plan.
 * @param from First block row.
 * @param to One past the last block row.
 * @returns `[start, end)`.
 *
 * @example
 * ```ts
 * import { blockRowElements, scanPlan } from "./scan.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(blockRowElements(scanPlan([20, 3], 1, false), 1, 3), [24, 60]);
 * ```
 */
export function blockRowElements(plan: ScanPlan, from: number, to: number): [number, number] {
  const bh = plan.blockSize === 0 ? plan.height : plan.blockSize;
  return [
    Math.min(plan.height, from * bh) * plan.width,
    Math.min(plan.height, to * bh) * plan.width,
  ];
}
