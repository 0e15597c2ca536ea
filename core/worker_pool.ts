/**
 * A small pool of module Web Workers that run jobs of one kind, heaviest waiting job first.
 * Worker scripts answer `{ id, job }` messages with `{ id, result }` or `{ id, error }`.
 *
 * @module
 */

/** What a worker sends back for a job that threw: the message and any details it adds. */
export interface WorkerError {
  /** The error message. */
  readonly error: string;
  /** Further fields the worker script chose to send (e.g. an error code). */
  readonly [detail: string]: unknown;
}

// The web platform's Worker, taken when this module loads: onnxruntime-web replaces
// globalThis.Worker with Node's worker_threads class once it initialises under Deno, and those
// workers have no `self`.
const WebWorker: typeof Worker | undefined = globalThis.Worker;

/** Whether this runtime has Web Workers (Deno, browsers; not Cloudflare Workers). */
export const HAS_WEB_WORKERS: boolean = WebWorker !== undefined;

interface Task<J, R> {
  readonly job: J;
  readonly resolve: (r: R) => void;
  readonly reject: (e: Error) => void;
}

/** Options of {@linkcode WorkerPool}. */
export interface WorkerPoolOptions<J> {
  /** How heavy a job is; the heaviest waiting job goes first (default: in order). */
  readonly weight?: (job: J) => number;
  /** Buffers to transfer rather than copy when sending a job. */
  readonly transfer?: (job: J) => Transferable[];
  /** Describes a job in error messages. */
  readonly describe?: (job: J) => string;
  /** Rebuilds a worker's error (its `{ error, ...detail }` message) as an exception. */
  readonly error?: (message: WorkerError) => Error;
}

/**
 * Runs jobs in `size` module workers started from `url`.
 *
 * @example
 * ```ts ignore
 * import { WorkerPool } from "./worker_pool.ts";
 *
 * const pool = new WorkerPool<number, number>(new URL("./square_worker.ts", import.meta.url), 2);
 * console.log(await Promise.all([1, 2, 3].map(pool.run)));
 * pool.close();
 * ```
 */
export class WorkerPool<J, R> {
  readonly #idle: Worker[] = [];
  readonly #all: Worker[] = [];
  readonly #waiting: Task<J, R>[] = [];
  readonly #running = new Map<number, Task<J, R>>();
  readonly #busy = new Map<Worker, number>();
  readonly #options: WorkerPoolOptions<J>;
  #nextId = 0;

  /**
   * Starts the workers.
   *
   * @param url The worker module.
   * @param size Number of workers, at least 1.
   * @param options Scheduling and transfer.
   */
  constructor(url: URL, size: number, options: WorkerPoolOptions<J> = {}) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`Bad worker count ${size}`);
    if (!WebWorker) throw new TypeError("This runtime has no Web Workers");
    this.#options = options;
    for (let i = 0; i < size; i++) {
      const worker = new WebWorker(url, { type: "module" });
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
   * Runs one job in a worker.
   *
   * @param job The job.
   * @returns Its result.
   */
  run = (job: J): Promise<R> =>
    new Promise((resolve, reject) => {
      this.#waiting.push({ job, resolve, reject });
      this.#dispatch();
    });

  /** Terminates the workers; pending jobs are rejected. */
  close(): void {
    for (const w of this.#all) w.terminate();
    for (const t of [...this.#waiting, ...this.#running.values()]) {
      t.reject(new Error("Worker pool closed"));
    }
    this.#waiting.length = 0;
    this.#running.clear();
  }

  #dispatch(): void {
    const weight = this.#options.weight ?? (() => 0);
    while (this.#idle.length > 0 && this.#waiting.length > 0) {
      let pick = 0;
      this.#waiting.forEach((t, i) => {
        if (weight(t.job) > weight(this.#waiting[pick]!.job)) pick = i;
      });
      const task = this.#waiting.splice(pick, 1)[0]!;
      const worker = this.#idle.pop()!;
      const id = this.#nextId++;
      this.#running.set(id, task);
      this.#busy.set(worker, id);
      worker.postMessage({ id, job: task.job }, this.#options.transfer?.(task.job) ?? []);
    }
  }

  #finished(worker: Worker, msg: { id: number; result?: R; error?: string }): void {
    const task = this.#running.get(msg.id);
    this.#running.delete(msg.id);
    this.#busy.delete(worker);
    this.#idle.push(worker);
    if (task) {
      if (msg.error === undefined) task.resolve(msg.result!);
      else if (this.#options.error) task.reject(this.#options.error(msg as WorkerError));
      else {
        const what = this.#options.describe?.(task.job) ?? "job";
        task.reject(new Error(`Cannot run ${what}: ${msg.error}`));
      }
    }
    this.#dispatch();
  }
}
