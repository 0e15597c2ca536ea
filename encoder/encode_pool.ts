/**
 * A pool of Web Workers that code tensors in parallel, largest waiting tensor first.
 *
 * @module
 */
import { WorkerPool } from "../core/worker_pool.ts";
import type { EncodedTensor, TensorJob } from "./encode_tensor.ts";

/**
 * Codes tensors in `size` module workers. Pass {@linkcode EncodePool.encode} as the `encode`
 * option of `compressModel()`, and {@linkcode EncodePool.close} the pool when done.
 *
 * @example
 * ```ts
 * import { EncodePool } from "./encode_pool.ts";
 * import assert from "node:assert/strict";
 *
 * const pool = new EncodePool(2);
 * try {
 *   const out = await pool.encode({
 *     name: "b",
 *     shape: [3],
 *     values: Int32Array.of(1, 2, 3),
 *     coding: { kind: "int", scanOrder: 0, cabacUnaryLengthMinus1: 10 },
 *   });
 *   assert.ok(out.unit.length > 0);
 * } finally {
 *   pool.close();
 * }
 * ```
 */
export class EncodePool {
  readonly #pool: WorkerPool<TensorJob, EncodedTensor>;

  /**
   * Starts the workers.
   *
   * @param size Number of workers, at least 1.
   */
  constructor(size: number) {
    this.#pool = new WorkerPool(new URL("./_encode_worker.ts", import.meta.url), size, {
      weight: (job) => job.values.length,
      describe: (job) => `coding of tensor "${job.name}"`,
    });
  }

  /**
   * Codes one tensor in a worker. The job's values are copied, not transferred.
   *
   * @param job The tensor.
   * @returns Its coded unit.
   */
  encode = (job: TensorJob): Promise<EncodedTensor> => this.#pool.run(job);

  /** Terminates the workers; pending tasks are rejected. */
  close(): void {
    this.#pool.close();
  }
}
