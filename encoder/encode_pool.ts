/**
 * A pool of Web Workers that code tensors in parallel, largest waiting tensor first.
 *
 * @module
 */
import type { EncodedTensor, TensorJob } from "./encode_tensor.ts";

interface Task {
  readonly job: TensorJob;
  readonly resolve: (r: EncodedTensor) => void;
  readonly reject: (e: Error) => void;
}

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
  readonly #idle: Worker[] = [];
  readonly #all: Worker[] = [];
  readonly #waiting: Task[] = [];
  readonly #running = new Map<number, Task>();
  readonly #busy = new Map<Worker, number>();
  #nextId = 0;

  /**
   * Starts the workers.
   *
   * @param size Number of workers, at least 1.
   */
  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`Bad worker count ${size}`);
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL("./_encode_worker.ts", import.meta.url), {
        type: "module",
      });
      worker.onmessage = (event) => this.#finished(worker, event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        this.#finished(worker, { id: this.#busy.get(worker)!, error: event.message });
      };
      this.#all.push(worker);
      this.#idle.push(worker);
    }
  }

  /**
   * Codes one tensor in a worker. The job's values are copied, not transferred.
   *
   * @param job The tensor.
   * @returns Its coded unit.
   */
  encode = (job: TensorJob): Promise<EncodedTensor> =>
    new Promise((resolve, reject) => {
      this.#waiting.push({ job, resolve, reject });
      this.#dispatch();
    });

  /** Terminates the workers; pending tasks are rejected. */
  close(): void {
    for (const w of this.#all) w.terminate();
    for (const t of [...this.#waiting, ...this.#running.values()]) {
      t.reject(new Error("Encoder pool closed"));
    }
    this.#waiting.length = 0;
    this.#running.clear();
  }

  #dispatch(): void {
    while (this.#idle.length > 0 && this.#waiting.length > 0) {
      let pick = 0;
      this.#waiting.forEach((t, i) => {
        if (t.job.values.length > this.#waiting[pick]!.job.values.length) pick = i;
      });
      const task = this.#waiting.splice(pick, 1)[0]!;
      const worker = this.#idle.pop()!;
      const id = this.#nextId++;
      this.#running.set(id, task);
      this.#busy.set(worker, id);
      worker.postMessage({ id, job: task.job });
    }
  }

  #finished(worker: Worker, msg: { id: number; result?: EncodedTensor; error?: string }): void {
    const task = this.#running.get(msg.id);
    this.#running.delete(msg.id);
    this.#busy.delete(worker);
    this.#idle.push(worker);
    if (task) {
      if (msg.result) task.resolve(msg.result);
      else task.reject(new Error(`Cannot code tensor "${task.job.name}": ${msg.error}`));
    }
    this.#dispatch();
  }
}
