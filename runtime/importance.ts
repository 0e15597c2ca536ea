/**
 * Per-weight importance for DeepCABAC's DC-v1, estimated from data: for each weight of a
 * `MatMul`, `Gemm` or `Conv` in the main graph, the mean squared activation of its input channel
 * (the diagonal of that layer's output-error Hessian, up to a constant). The layer inputs are
 * read by exposing them as extra outputs of the ONNX graph and running the evaluation data.
 *
 * @module
 */
import { concatBytes } from "../core/bytes.ts";
import type { ModelTensor } from "../core/model_tensor.ts";
import { encodeTag, ProtoReader, ProtoWriter, WIRE_LEN } from "../model/_protobuf.ts";
import { splitOnnx } from "../model/onnx.ts";
import { toFloat32 } from "../model/dtypes.ts";
import { createSession, Tensor } from "./onnx_runtime.ts";

const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_OUTPUT = 12;
const NODE_INPUT = 1;
const NODE_OP_TYPE = 4;
const NODE_ATTRIBUTE = 5;
const ATTRIBUTE_NAME = 1;
const ATTRIBUTE_I = 3;

/** A layer whose weight importance can be estimated. */
interface Layer {
  readonly op: "MatMul" | "Gemm" | "Conv";
  /** The activation input. */
  readonly input: string;
  /** The weight initializer. */
  readonly weight: string;
  /** Gemm's `transB`. */
  readonly transB: boolean;
}

/** The MatMul / Gemm / Conv nodes of the main graph, with their inputs. */
function layers(model: Uint8Array): Layer[] {
  const out: Layer[] = [];
  for (const m = new ProtoReader(model); m.next();) {
    if (m.field !== MODEL_GRAPH) {
      m.skip();
      continue;
    }
    for (const g = m.message("graph"); g.next();) {
      if (g.field !== GRAPH_NODE) {
        g.skip();
        continue;
      }
      const inputs: string[] = [];
      let op = "";
      let transB = false;
      for (const n = g.message("node"); n.next();) {
        if (n.field === NODE_INPUT) inputs.push(n.text("input"));
        else if (n.field === NODE_OP_TYPE) op = n.text("op_type");
        else if (n.field === NODE_ATTRIBUTE) {
          let name = "";
          let value = 0;
          for (const a = n.message("attribute"); a.next();) {
            if (a.field === ATTRIBUTE_NAME) name = a.text("name");
            else if (a.field === ATTRIBUTE_I) value = a.varint();
            else a.skip();
          }
          if (name === "transB") transB = value !== 0;
        } else n.skip();
      }
      if ((op === "MatMul" || op === "Gemm" || op === "Conv") && inputs.length >= 2) {
        out.push({ op, input: inputs[0]!, weight: inputs[1]!, transB });
      }
    }
  }
  return out;
}

/** The model with float tensors `names` added as graph outputs. */
function exposing(model: Uint8Array, names: readonly string[]): Uint8Array {
  const extra = names.map((name) => {
    const tensorType = new ProtoWriter().intField(1, 1).finish(); // elem_type FLOAT
    const type = new ProtoWriter().bytesField(1, tensorType).finish(); // tensor_type
    const info = new ProtoWriter().stringField(1, name).bytesField(2, type).finish();
    return new ProtoWriter().bytesField(GRAPH_OUTPUT, info).finish();
  });
  const parts: Uint8Array[] = [];
  for (const m = new ProtoReader(model); m.next();) {
    const start = m.tagStart;
    if (m.field !== MODEL_GRAPH) {
      m.skip();
      parts.push(model.subarray(start, m.pos));
      continue;
    }
    const body = m.buf.subarray(m.delimited(), m.pos);
    const length = body.length + extra.reduce((s, e) => s + e.length, 0);
    parts.push(encodeTag(MODEL_GRAPH, WIRE_LEN, length), body, ...extra);
  }
  return concatBytes(parts);
}

/**
 * Estimates the importance of every `MatMul` / `Gemm` / `Conv` weight of a single-input model
 * from evaluation data: each weight's importance is the mean squared activation of the input
 * channel it multiplies (over samples, and over positions for convolutions).
 *
 * @param model The ONNX model.
 * @param data The data set (the input named as the model's input, or `x`).
 * @param options Samples to use (default all) and the batch size.
 * @returns Importance per weight tensor name, in the weight's shape (row-major), scaled to a
 * mean of 1 over all of them.
 * @throws {RangeError} If the data does not fit the model.
 *
 * @example
 * ```ts ignore
 * import { estimateImportance } from "./importance.ts";
 * const importance = await estimateImportance(model, data);
 * const { bytes } = await compressModel(model, "onnx", { lambdaScale: 1, importance });
 * ```
 */
export async function estimateImportance(
  model: Uint8Array,
  data: readonly ModelTensor[],
  options: { readonly samples?: number; readonly batchSize?: number } = {},
): Promise<Map<string, Float32Array>> {
  const found = layers(model);
  const weights = new Map(
    (await splitOnnx(model)).tensors.filter((t) => t.dtype !== null).map((t) => [t.name, t]),
  );
  const usable = found.filter((l) => weights.has(l.weight));
  const session = await createSession(exposing(model, [...new Set(usable.map((l) => l.input))]));
  const sums = new Map<string, Float64Array>();
  const terms = new Map<string, number>(); // values summed per channel, for the mean
  try {
    const inputName = session.inputNames[0]!;
    const x = data.find((t) => t.name === inputName) ?? data.find((t) => t.name === "x");
    if (!x || x.shape.length < 1) throw new RangeError(`The data has no "${inputName}" or "x"`);
    const values = toFloat32(x);
    const n = Math.min(x.shape[0]!, options.samples ?? Infinity);
    const size = values.length / x.shape[0]!;
    const batchSize = options.batchSize ?? 256;
    for (let start = 0; start < n; start += batchSize) {
      const count = Math.min(batchSize, n - start);
      const feed = new Tensor(
        "float32",
        values.slice(start * size, (start + count) * size),
        [count, ...x.shape.slice(1)],
      );
      const outputs = await session.run({ [inputName]: feed });
      for (const l of usable) {
        const a = outputs[l.input]!;
        const dims = a.dims;
        const act = a.data as Float32Array;
        // Channels: the last axis of a MatMul/Gemm input, axis 1 of a Conv input [N, C, ...].
        const channels = l.op === "Conv" ? dims[1]! : dims[dims.length - 1]!;
        const inner = l.op === "Conv" ? dims.slice(2).reduce((p, d) => p * d, 1) : 1;
        if (terms.has(l.input) && sums.get(l.input)!.length !== channels) {
          throw new RangeError(`Layer input "${l.input}" changes its channel count`);
        }
        const sum = sums.get(l.input) ?? new Float64Array(channels);
        sums.set(l.input, sum);
        terms.set(l.input, (terms.get(l.input) ?? 0) + act.length / channels);
        for (let i = 0; i < act.length; i++) {
          const c = l.op === "Conv" ? Math.floor(i / inner) % channels : i % channels;
          sum[c]! += act[i]! * act[i]!;
        }
      }
    }
  } finally {
    await session.release();
  }
  const out = new Map<string, Float32Array>();
  let total = 0;
  let weightCount = 0;
  for (const l of usable) {
    const w = weights.get(l.weight)!;
    const sum = sums.get(l.input)!;
    const count = terms.get(l.input)!;
    const mean = Float32Array.from(sum, (s) => s / count);
    const f = spread(mean, w.shape, l);
    out.set(l.weight, f);
    for (let i = 0; i < f.length; i++) total += f[i]!;
    weightCount += f.length;
  }
  // Scaled to a mean of 1 over all weights, so that λ means what it means without importance.
  const scale = total > 0 ? weightCount / total : 1;
  for (const f of out.values()) for (let i = 0; i < f.length; i++) f[i]! *= scale;
  return out;
}

/** Lays per-input-channel importances out in the weight's shape. */
function spread(channel: Float32Array, shape: readonly number[], l: Layer): Float32Array {
  const n = shape.reduce((p, d) => p * d, 1);
  const f = new Float32Array(n);
  if (l.op === "Conv") {
    // W [out, in, kh, kw]: the input channel is axis 1.
    const inner = shape.slice(2).reduce((p, d) => p * d, 1);
    for (let i = 0; i < n; i++) f[i] = channel[Math.floor(i / inner) % shape[1]!]!;
  } else if (l.op === "Gemm" && l.transB) {
    // W [out, in]: the input channel is the column.
    for (let i = 0; i < n; i++) f[i] = channel[i % shape[1]!]!;
  } else {
    // MatMul / Gemm W [in, out]: the input channel is the row.
    for (let i = 0; i < n; i++) f[i] = channel[Math.floor(i / shape[1]!)]!;
  }
  return f;
}
