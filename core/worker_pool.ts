/**
 * A small pool of module Web Workers that run jobs of one kind, heaviest waiting job first, and
 * the loop a worker script runs ({@linkcode answerJobs}). Workers answer `{ id, job }` messages
 * with `{ id, result }` or `{ id, error }`; a {@linkcode DecodeError} keeps its class, code and
 * offset across the thread boundary.
 *
 * @module
 */
import { DecodeError, type DecodeErrorCode } from "./errors.ts";

/** What a worker sends back for a job that threw. */
interface WorkerError {
  readonly error: string;
  /** Set when the job threw a DecodeError. */
  readonly code?: DecodeErrorCode;
  readonly offset?: number;
}

/**
 * The worker side: answers each job message with `run(job)`'s result, transferring the buffers
 * `transfer` names, or with the error it threw. Call it once at the top of a worker module.
 *
 * @param run Does one job.
 * @param transfer The result's buffers to transfer rather than copy.
 *
 * @example
 * ```ts ignore
 * // square_worker.ts
 * import { answerJobs } from "./worker_pool.ts";
 * answerJobs((x: number) => x * x, () => []);
 * ```
 */
export function answerJobs<J, R>(
  run: (job: J) => R,
  transfer: (result: R) => Transferable[],
): void {
  const scope = self as unknown as {
    onmessage: (event: MessageEvent<{ id: number; job: J }>) => void;
    postMessage(message: unknown, transfer?: Transferable[]): void;
  };
  scope.onmessage = ({ data: { id, job } }) => {
    try {
      const result = run(job);
      scope.postMessage({ id, result }, transfer(result));
    } catch (e) {
      const error: WorkerError = e instanceof DecodeError
        ? { error: e.reason, code: e.code, offset: e.offset }
        : { error: e instanceof Error ? e.message : String(e) };
      scope.postMessage({ id, ...error });
    }
  };
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
  /** Describes a job in error messages (other than a DecodeError, which is rethrown as is). */
  readonly describe?: (job: J) => string;
  /**
   * Jobs a worker is sent at once (default 1): one running and the rest waiting in its message
   * queue, so that it starts the next without waiting for this thread to hear it finished.
   */
  readonly queueDepth?: number;
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
  readonly #all: Worker[] = [];
  readonly #waiting: Task<J, R>[] = [];
  readonly #running = new Map<number, Task<J, R>>();
  /** The ids of the jobs each worker was sent and has not answered, oldest first. */
  readonly #sent = new Map<Worker, number[]>();
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
        this.#finished(worker, { id: this.#sent.get(worker)![0]!, error: event.message });
      };
      this.#all.push(worker);
      this.#sent.set(worker, []);
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
    const depth = this.#options.queueDepth ?? 1;
    for (let held = 0; held < depth && this.#waiting.length > 0; held++) {
      for (const worker of this.#all) {
        const sent = this.#sent.get(worker)!;
        if (sent.length > held || this.#waiting.length === 0) continue;
        let pick = 0;
        this.#waiting.forEach((t, i) => {
          if (weight(t.job) > weight(this.#waiting[pick]!.job)) pick = i;
        });
        const task = this.#waiting.splice(pick, 1)[0]!;
        const id = this.#nextId++;
        this.#running.set(id, task);
        sent.push(id);
        worker.postMessage({ id, job: task.job }, this.#options.transfer?.(task.job) ?? []);
      }
    }
  }

  #finished(worker: Worker, msg: { id: number; result?: R } & Partial<WorkerError>): void {
    const task = this.#running.get(msg.id);
    this.#running.delete(msg.id);
    const sent = this.#sent.get(worker)!;
    const at = sent.indexOf(msg.id);
    if (at >= 0) sent.splice(at, 1);
    if (task) {
      if (msg.error === undefined) task.resolve(msg.result!);
      else if (msg.code !== undefined) {
        task.reject(new DecodeError(msg.code, msg.error, msg.offset ?? 0));
      } else {
        const what = this.#options.describe?.(task.job) ?? "job";
        task.reject(new Error(`Cannot run ${what}: ${msg.error}`));
      }
    }
    this.#dispatch();
  }
}
