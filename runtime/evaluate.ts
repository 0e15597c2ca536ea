/**
 * Measures a model on labelled or unlabelled data with onnxruntime-web: top-1 accuracy against
 * labels, and against a reference model (usually the uncompressed one) the agreement of top-1
 * predictions and the signal-to-noise ratio of the outputs.
 *
 * @module
 */
import type { ModelTensor } from "../core/model_tensor.ts";
import { isFloatDtype, toFloat32, toInt32 } from "../model/dtypes.ts";
import { onnxGraphIO } from "../model/onnx.ts";
import {
  accuracy,
  type Backend,
  type BatchInput,
  createSession,
  runBatchedInputs,
  top1,
} from "./onnx_runtime.ts";

/**
 * The model's inputs fed from the data: each tensor named as the input (or `x` for a model with
 * one input), batch-major, converted to the input's element type (float32, int32 or int64).
 *
 * @param model The ONNX model.
 * @param data The data set's tensors.
 * @returns One batch input per model input.
 * @throws {RangeError} If the data lacks an input or has the wrong element type.
 */
export function batchInputs(model: Uint8Array, data: readonly ModelTensor[]): BatchInput[] {
  const { inputs } = onnxGraphIO(model);
  return inputs.map((input) => {
    const t = data.find((d) => d.name === input.name) ??
      (inputs.length === 1 ? data.find((d) => d.name === "x") : undefined);
    if (!t || t.shape.length < 1) {
      throw new RangeError(`Cannot evaluate: the data has no tensor for input "${input.name}"`);
    }
    const sampleShape = t.shape.slice(1);
    if (input.dtype === "F32") {
      if (!isFloatDtype(t.dtype)) throw new RangeError(`Input "${input.name}" needs floats`);
      return { name: input.name, data: toFloat32(t), sampleShape };
    }
    const ints = toInt32(t);
    if (!ints || (input.dtype !== "I32" && input.dtype !== "I64")) {
      throw new RangeError(
        `Cannot evaluate: input "${input.name}" of type ${input.dtype} from ${t.dtype} data`,
      );
    }
    const values = input.dtype === "I32" ? ints : BigInt64Array.from(ints, (v) => BigInt(v));
    return { name: input.name, data: values, sampleShape };
  });
}

/** Options of {@linkcode evaluateModel}. */
export interface EvaluateOptions {
  /** A reference model to compare outputs with (agreement of top-1, output SNR). */
  readonly reference?: Uint8Array;
  /** Samples per inference call (default 256). */
  readonly batchSize?: number;
  /** Called after each batch with the samples done and the total (reference run included). */
  readonly onProgress?: (done: number, total: number) => void;
  /** Which ONNX Runtime (default `"wasm"`; `"auto"`: the native one where it loads). */
  readonly backend?: Backend;
}

/** What {@linkcode evaluateModel} measured. */
export interface Evaluation {
  /** Number of samples. */
  readonly samples: number;
  /** Output values per sample. */
  readonly classes: number;
  /** Top-1 accuracy against the labels `y`, or null without labels. */
  readonly accuracy: number | null;
  /** Fraction of samples whose top-1 equals the reference model's, or null without one. */
  readonly agreement: number | null;
  /** 10·log10(Σ reference² / Σ (output − reference)²) in dB, or null without a reference. */
  readonly snrDb: number | null;
}

/**
 * Runs a model over a data set and scores it. The data holds one tensor per model input, named
 * as the input (or `x` for a single-input model), batch-major, and optionally `y`, one integer
 * label per sample.
 *
 * @param model The ONNX model.
 * @param data The data set's tensors (e.g. from a safetensors file).
 * @param options Reference model, batch size, progress.
 * @returns The scores.
 * @throws {RangeError} If the data does not fit the model.
 *
 * @example
 * ```ts ignore
 * import { evaluateModel } from "./evaluate.ts";
 * import { readSafetensors } from "../model/safetensors.ts";
 *
 * const data = readSafetensors(await Deno.readFile("mnist_test.safetensors")).tensors;
 * const result = await evaluateModel(await Deno.readFile("lenet300.onnx"), data);
 * console.log(result.accuracy);
 * ```
 */
export async function evaluateModel(
  model: Uint8Array,
  data: readonly ModelTensor[],
  options: EvaluateOptions = {},
): Promise<Evaluation> {
  const run = async (bytes: Uint8Array, offset: number, total: number) => {
    const inputs = batchInputs(bytes, data);
    const session = await createSession(bytes, {}, options.backend);
    try {
      const out = await runBatchedInputs(session, inputs, {
        ...(options.batchSize ? { batchSize: options.batchSize } : {}),
        onProgress: (done) => options.onProgress?.(offset + done, total),
      });
      return { ...out, samples: out.outputs.length / out.classes };
    } finally {
      await session.release();
    }
  };
  const passes = options.reference ? 2 : 1;
  const probe = data.find((t) => t.name !== "y" && t.shape.length > 0);
  const n = probe?.shape[0] ?? 0;
  const evaluated = await run(model, 0, passes * n);
  const predicted = top1(evaluated.outputs, evaluated.classes);
  const labels = data.find((t) => t.name === "y");
  let labelValues: Int32Array | null = null;
  if (labels) {
    labelValues = toInt32(labels);
    if (!labelValues || labelValues.length !== evaluated.samples) {
      throw new RangeError(`Cannot evaluate: "y" must hold ${evaluated.samples} integer labels`);
    }
  }
  let agreement: number | null = null;
  let snrDb: number | null = null;
  if (options.reference) {
    const reference = await run(options.reference, evaluated.samples, passes * evaluated.samples);
    if (reference.outputs.length !== evaluated.outputs.length) {
      throw new RangeError("Cannot compare: the reference model's outputs have another shape");
    }
    agreement = accuracy(predicted, top1(reference.outputs, reference.classes));
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < reference.outputs.length; i++) {
      const r = reference.outputs[i]!;
      signal += r * r;
      noise += (evaluated.outputs[i]! - r) ** 2;
    }
    snrDb = noise === 0 ? Infinity : 10 * Math.log10(signal / noise);
  }
  return {
    samples: evaluated.samples,
    classes: evaluated.classes,
    accuracy: labelValues ? accuracy(predicted, labelValues) : null,
    agreement,
    snrDb,
  };
}

/** A metric measured on data: top-1 accuracy, agreement with the original, output SNR. */
export type DataMetric = "accuracy" | "agreement" | "snr";

/**
 * One metric of an evaluation: top-1 accuracy, top-1 agreement or output SNR in dB.
 *
 * @param e The evaluation (with labels for accuracy, a reference for the other two).
 * @param metric Which one.
 * @returns Its value.
 * @throws {RangeError} If the evaluation did not measure it.
 *
 * @example
 * ```ts
 * import { metricValue } from "./evaluate.ts";
 * import assert from "node:assert/strict";
 *
 * const e = { samples: 2, classes: 10, accuracy: 0.5, agreement: null, snrDb: null };
 * assert.equal(metricValue(e, "accuracy"), 0.5);
 * assert.throws(() => metricValue(e, "snr"), RangeError);
 * ```
 */
export function metricValue(e: Evaluation, metric: DataMetric): number {
  const v = metric === "accuracy" ? e.accuracy : metric === "agreement" ? e.agreement : e.snrDb;
  if (v === null) throw new RangeError(`The evaluation has no ${metric}`);
  return v;
}
