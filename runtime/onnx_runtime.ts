/**
 * Model evaluation with ONNX Runtime: open a session from model bytes, run a classifier over a
 * whole data set in batches, and score its top-1 accuracy. Used by the encoder toolkit, the tests
 * and the command line to measure what compression costs in accuracy.
 *
 * Two backends with one API: WebAssembly (`onnxruntime-web/wasm`, single-threaded, everywhere;
 * the default) and, for the encoder side where it loads, the native CPU library
 * (`onnxruntime-node`, multi-threaded), loaded only when asked for. The decoder never imports
 * this module.
 *
 * The wasm-only entry point `onnxruntime-web/wasm` carries no WebGPU or WebGL code, and finds its
 * `ort-wasm-simd-threaded.wasm` beside itself in `node_modules`. Where that file cannot be found
 * (a bundle, a Worker), set `env.wasm.wasmBinary` (imported from `onnxruntime-web/wasm`) to its
 * bytes before the first {@linkcode createSession}.
 *
 * @module
 */
import * as ort from "onnxruntime-web/wasm";

export { Tensor } from "onnxruntime-web/wasm";
export type { InferenceSession } from "onnxruntime-web/wasm";

/**
 * Which ONNX Runtime runs a model: `"wasm"` (onnxruntime-web, one thread), `"native"`
 * (onnxruntime-node's CPU library, multi-threaded) or `"auto"`: native where it loads, else wasm.
 */
export type Backend = "auto" | "native" | "wasm";

type NativeOrt = typeof import("onnxruntime-node");
let nativeOrt: Promise<NativeOrt | null> | undefined;

/**
 * Loads onnxruntime-node once; null where it cannot load (not installed, no native addons, a
 * browser or edge runtime).
 *
 * @returns The module, or null.
 */
export function loadNativeRuntime(): Promise<NativeOrt | null> {
  nativeOrt ??= import("onnxruntime-node").then((m) => m, () => null);
  return nativeOrt;
}

/**
 * The backend that `backend` resolves to here: `"auto"` is native where it loads.
 *
 * @param backend The requested backend.
 * @returns `"native"` or `"wasm"`.
 * @throws {Error} If `"native"` is requested and cannot load.
 */
export async function resolveBackend(backend: Backend): Promise<"native" | "wasm"> {
  if (backend === "wasm") return "wasm";
  const native = await loadNativeRuntime();
  if (native) return "native";
  if (backend === "native") throw new Error("onnxruntime-node cannot be loaded here");
  return "wasm";
}

/** Samples per `session.run()` call when {@linkcode RunBatchedOptions.batchSize} is not given. */
const DEFAULT_BATCH_SIZE = 256;

/**
 * Opens an ONNX model, by default on the WebAssembly backend, single-threaded.
 *
 * On wasm the thread count is set to 1 so that the same code runs where `SharedArrayBuffer` is missing
 * (pages that are not cross-origin isolated, some edge runtimes); ONNX Runtime reads it when the
 * first session is created, so later changes have no effect.
 *
 * @param model The model file's bytes (an ONNX `ModelProto`).
 * @param options Session options passed on to ONNX Runtime; `executionProviders` defaults to
 * `["wasm"]` (`["cpu"]` with all cores on the native backend).
 * @param backend Which runtime (default `"wasm"`).
 * @returns The open session; call `release()` on it when done.
 *
 * @example Open a one-node model (y = x, float32 [N, 3]) and read its input and output names
 * ```ts
 * import assert from "node:assert/strict";
 * import { createSession } from "./onnx_runtime.ts";
 *
 * const identity = Uint8Array.from(
 *   atob(
 *     "CAhCAhANOkEKEAoBeBIBeSIISWRlbnRpdHkSAWdaFAoBeBIPCg0IARIJCgMSAU4KAggDYhQKAXkSDwoNCAESCQoDEgFOCgIIAw==",
 *   ),
 *   (c) => c.charCodeAt(0),
 * );
 * const session = await createSession(identity);
 * assert.deepEqual(session.inputNames, ["x"]);
 * assert.deepEqual(session.outputNames, ["y"]);
 * await session.release();
 * ```
 */
export async function createSession(
  model: Uint8Array,
  options: ort.InferenceSession.SessionOptions = {},
  backend: Backend = "wasm",
): Promise<ort.InferenceSession> {
  if (!(model instanceof Uint8Array)) {
    throw new TypeError("Cannot open model: expected a Uint8Array");
  }
  if ((await resolveBackend(backend)) === "native") {
    const native = (await loadNativeRuntime())!;
    // Both packages share onnxruntime-common's Tensor and session interfaces.
    return await native.InferenceSession.create(model, {
      executionProviders: ["cpu"],
      intraOpNumThreads: navigator.hardwareConcurrency,
      ...options,
    }) as unknown as ort.InferenceSession;
  }
  ort.env.wasm.numThreads = 1;
  return await ort.InferenceSession.create(model, { executionProviders: ["wasm"], ...options });
}

/** Options of {@linkcode runBatched}. */
export interface RunBatchedOptions {
  /** Samples per `session.run()` call; default 256. */
  readonly batchSize?: number;
  /** The output to collect; default the session's first output. */
  readonly outputName?: string;
  /** Called after each batch with the samples done so far and the total. */
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Called after each batch with the outputs of the samples done so far (row-major, `classes`
   * values each); returning false stops the run there (an early verdict).
   */
  readonly onBatch?: (outputs: Float32Array, done: number, classes: number) => boolean | void;
}

/** What {@linkcode runBatched} returns. */
export interface BatchedOutputs {
  /** The outputs of all samples, row-major `[N, classes]`. */
  readonly outputs: Float32Array<ArrayBuffer>;
  /** Output values per sample (for a classifier, the number of classes). */
  readonly classes: number;
  /** Samples run: all of them unless `onBatch` stopped the run. */
  readonly samples: number;
}

/**
 * Runs a model with one float32 input over a batch-major data set `[N, ...sampleShape]`, a slice
 * of samples at a time, and gathers one float32 output per sample (for a classifier, its logits).
 *
 * @param session An open session, from {@linkcode createSession}.
 * @param inputName The input to feed, e.g. `session.inputNames[0]`.
 * @param x The samples, row-major, `N · product(sampleShape)` values.
 * @param sampleShape The shape of one sample, without the batch dimension, e.g. `[784]`.
 * @param options Batch size, output name and progress callback.
 * @returns The outputs `[N, classes]` and `classes`, the output values per sample.
 * @throws {RangeError} If `x` is empty or does not hold a whole number of samples, or the batch
 * size is not a positive integer.
 * @throws {TypeError} If the output is not float32 or its size per sample changes between batches.
 *
 * @example Run a one-node model (y = x) over 5 samples of 3 values, 2 samples at a time
 * ```ts
 * import assert from "node:assert/strict";
 * import { createSession, runBatched } from "./onnx_runtime.ts";
 *
 * const identity = Uint8Array.from(
 *   atob(
 *     "CAhCAhANOkEKEAoBeBIBeSIISWRlbnRpdHkSAWdaFAoBeBIPCg0IARIJCgMSAU4KAggDYhQKAXkSDwoNCAESCQoDEgFOCgIIAw==",
 *   ),
 *   (c) => c.charCodeAt(0),
 * );
 * const session = await createSession(identity);
 * const x = Float32Array.from({ length: 15 }, (_, i) => i);
 * const seen: number[] = [];
 * const { outputs, classes } = await runBatched(session, "x", x, [3], {
 *   batchSize: 2,
 *   onProgress: (done) => seen.push(done),
 * });
 * assert.equal(classes, 3);
 * assert.deepEqual(outputs, x);
 * assert.deepEqual(seen, [2, 4, 5]);
 * await session.release();
 * ```
 */
export async function runBatched(
  session: ort.InferenceSession,
  inputName: string,
  x: Float32Array,
  sampleShape: readonly number[],
  options: RunBatchedOptions = {},
): Promise<BatchedOutputs> {
  let sampleSize = 1;
  for (const d of sampleShape) {
    if (!Number.isSafeInteger(d) || d <= 0) {
      throw new RangeError(`Cannot run the model: sample shape [${sampleShape}] is not positive`);
    }
    sampleSize *= d;
  }
  if (x.length === 0 || x.length % sampleSize !== 0) {
    throw new RangeError(
      `Cannot run the model: ${x.length} values are not a whole, non-zero number of samples of ${sampleSize}`,
    );
  }
  return await runBatchedInputs(
    session,
    [{ name: inputName, data: x, sampleShape }],
    options,
  );
}

/** One input of {@linkcode runBatchedInputs}: batch-major values `[N, ...sampleShape]`. */
export interface BatchInput {
  /** The model input it feeds. */
  readonly name: string;
  /** The values, of the input's element type. */
  readonly data: Float32Array | Int32Array | BigInt64Array;
  /** The shape of one sample. */
  readonly sampleShape: readonly number[];
}

/**
 * Like {@linkcode runBatched}, for models with several inputs (or non-float ones): every input
 * is sliced along its first axis in step.
 *
 * @param session An open session.
 * @param inputs One entry per model input, all with the same number of samples.
 * @param options Batch size, output, progress.
 * @returns The chosen output of every sample, row-major, and its length per sample.
 * @throws {RangeError} If the inputs disagree on the number of samples.
 *
 * @example
 * ```ts ignore
 * import { runBatchedInputs } from "./onnx_runtime.ts";
 * const { outputs } = await runBatchedInputs(session, [
 *   { name: "ids", data: BigInt64Array.of(1n, 2n), sampleShape: [1] },
 * ]);
 * ```
 */
export async function runBatchedInputs(
  session: ort.InferenceSession,
  inputs: readonly BatchInput[],
  options: RunBatchedOptions = {},
): Promise<BatchedOutputs> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isSafeInteger(batchSize) || batchSize <= 0) {
    throw new RangeError(`Cannot run the model: batch size ${batchSize} is not a positive integer`);
  }
  const outputName = options.outputName ?? session.outputNames[0];
  if (outputName === undefined) throw new TypeError("Cannot run the model: it has no outputs");
  const sizes = inputs.map((i) => i.sampleShape.reduce((p, d) => p * d, 1));
  const counts = inputs.map((i, k) => i.data.length / sizes[k]!);
  const total = counts[0] ?? 0;
  if (total === 0 || counts.some((c) => c !== total || !Number.isInteger(c))) {
    throw new RangeError(`Cannot run the model: inputs hold ${counts.join(", ")} samples`);
  }

  let outputs = new Float32Array(0);
  let classes = 0;
  for (let start = 0; start < total; start += batchSize) {
    const count = Math.min(batchSize, total - start);
    const feeds: Record<string, ort.Tensor> = {};
    inputs.forEach((i, k) => {
      const size = sizes[k]!;
      const batch = i.data.subarray(start * size, (start + count) * size);
      const dims = [count, ...i.sampleShape];
      feeds[i.name] = batch instanceof Float32Array
        ? new ort.Tensor("float32", batch, dims)
        : batch instanceof Int32Array
        ? new ort.Tensor("int32", batch, dims)
        : new ort.Tensor("int64", batch, dims);
    });
    const result = (await session.run(feeds))[outputName];
    if (result === undefined || result.type !== "float32") {
      throw new TypeError(`Cannot run the model: output "${outputName}" is not a float32 tensor`);
    }
    const data = result.data as Float32Array;
    if (start === 0) {
      classes = data.length / count;
      if (!Number.isInteger(classes) || classes === 0) {
        throw new TypeError(
          `Cannot run the model: output "${outputName}" has ${data.length} values for ${count} samples`,
        );
      }
      outputs = new Float32Array(total * classes);
    } else if (data.length !== count * classes) {
      throw new TypeError(
        `Cannot run the model: output "${outputName}" has ${data.length} values for ${count} samples, expected ${
          count * classes
        }`,
      );
    }
    outputs.set(data, start * classes);
    result.dispose();
    options.onProgress?.(start + count, total);
    const done = start + count;
    if (options.onBatch?.(outputs.subarray(0, done * classes), done, classes) === false) {
      return { outputs: outputs.slice(0, done * classes), classes, samples: done };
    }
  }
  return { outputs, classes, samples: total };
}

/**
 * Picks the highest-scoring class of each row of `[N, classes]` logits; ties go to the lower
 * class index.
 *
 * @param logits The scores, row-major `[N, classes]`.
 * @param classes The number of classes (row length).
 * @returns The predicted class of each row.
 * @throws {RangeError} If `classes` is not a positive integer or does not divide `logits.length`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { top1 } from "./onnx_runtime.ts";
 *
 * const logits = Float32Array.of(0.1, 2, -1, 5, 5, 0);
 * assert.deepEqual(top1(logits, 3), Int32Array.of(1, 0));
 * ```
 */
export function top1(logits: Float32Array, classes: number): Int32Array<ArrayBuffer> {
  if (!Number.isSafeInteger(classes) || classes <= 0 || logits.length % classes !== 0) {
    throw new RangeError(
      `Cannot pick classes: ${logits.length} logits are not whole rows of ${classes} classes`,
    );
  }
  const n = logits.length / classes;
  const predicted = new Int32Array(n);
  for (let i = 0, row = 0; i < n; i++, row += classes) {
    let best = 0;
    let bestScore = logits[row]!;
    for (let c = 1; c < classes; c++) {
      const score = logits[row + c]!;
      if (score > bestScore) {
        bestScore = score;
        best = c;
      }
    }
    predicted[i] = best;
  }
  return predicted;
}

/**
 * The fraction of predictions that equal their labels.
 *
 * @param predicted Predicted classes, e.g. from {@linkcode top1}.
 * @param labels The true classes, as many as `predicted`.
 * @returns The accuracy, in [0, 1].
 * @throws {RangeError} If the lengths differ or are zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { accuracy } from "./onnx_runtime.ts";
 *
 * assert.equal(accuracy(Int32Array.of(3, 1, 4, 1), Uint8Array.of(3, 1, 4, 2)), 0.75);
 * ```
 */
export function accuracy(predicted: Int32Array, labels: ArrayLike<number>): number {
  if (predicted.length !== labels.length || predicted.length === 0) {
    throw new RangeError(
      `Cannot score predictions: ${predicted.length} predictions for ${labels.length} labels`,
    );
  }
  let correct = 0;
  for (let i = 0; i < predicted.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct / predicted.length;
}
