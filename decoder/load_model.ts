/**
 * From a compressed model to a ready onnxruntime session. The onnxruntime module is passed in,
 * so the decoder itself imports nothing but the project's own files and runs wherever the caller
 * has onnxruntime-web (Deno, Deno Deploy, Cloudflare Workers, browsers).
 *
 * @module
 */
import { DecodeError } from "../core/errors.ts";
import { joinOnnx, type OnnxTensorData, onnxTensorOrigins } from "../model/onnx.ts";
import { elementCount } from "../model/dtypes.ts";
import { type ContainerTensor } from "../core/container.ts";
import { DTYPE_BYTES } from "../core/model_tensor.ts";
import { type DecodeOptions, DecoderStream, modelBytes } from "./decode_stream.ts";
import { type NnrSource, readTensors } from "./_source.ts";

/** The part of an onnxruntime module that {@linkcode loadModel} uses. */
export interface OrtModule<S> {
  /** `ort.InferenceSession`. */
  readonly InferenceSession: {
    create(model: Uint8Array, options?: never): Promise<S>;
  };
}

/** Progress of {@linkcode loadModel}. */
export interface LoadProgress {
  /** Bytes of the file received so far. */
  readonly bytes: number;
  /** Tensors decoded so far. */
  readonly tensors: number;
  /** Tensors in the file, once its metadata has arrived. */
  readonly totalTensors: number | null;
}

/** Options of {@linkcode loadModel}. */
export interface LoadModelOptions<S> {
  /** The onnxruntime module (e.g. `import * as ort from "onnxruntime-web"`). */
  readonly ort: OrtModule<S>;
  /** Passed to `InferenceSession.create`. */
  readonly sessionOptions?: object;
  /** Called as bytes arrive and as tensors are decoded. */
  readonly onProgress?: (p: LoadProgress) => void;
  /** Decoder limits. */
  readonly limits?: DecodeOptions["limits"];
  /**
   * How the weights reach onnxruntime: `"external"` (default) writes each tensor as it is decoded
   * into one preallocated buffer passed as the session's external data; `"inline"` rebuilds the
   * model with `raw_data` initializers. External has the lower peak (no second copy of the
   * weights while the model is assembled; see bench/README.md).
   */
  readonly weights?: "external" | "inline";
  /**
   * Decode in this many Web Workers where the runtime has them (default 1: this thread); large
   * block-scanned tensors are split between them by block rows.
   */
  readonly workers?: number;
}

/** Name of the external-data buffer handed to onnxruntime. */
const WEIGHTS_FILE = "deepcabac.weights";

/**
 * Decodes a compressed ONNX model as its bytes arrive, puts each tensor back into the model
 * graph the file carries (in its original dtype, as `raw_data`), and creates an inference
 * session from the result. Each tensor is converted as soon as it is decoded, so at most one
 * tensor is held in float32 at a time.
 *
 * @param source The NNR file as bytes, a byte stream or a `Response`.
 * @param options The onnxruntime module, session options and a progress callback.
 * @returns The session.
 * @throws {DecodeError} If the file is corrupt or carries no ONNX model.
 *
 * @example
 * ```ts ignore
 * import * as ort from "onnxruntime-web/wasm";
 * import { loadModel } from "@deepcabac/deepcabac/decoder";
 *
 * const session = await loadModel(await fetch("/model.nnr"), { ort });
 * ```
 */
export async function loadModel<S>(source: NnrSource, options: LoadModelOptions<S>): Promise<S> {
  // 16-bit tensors come as their patterns: no float32 copy of them on the way.
  const decoder = new DecoderStream({
    output: "original",
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.workers ? { workers: options.workers } : {}),
  });
  let bytes = 0;
  let tensors = 0;
  let totalTensors: number | null = null;
  const report = () => options.onProgress?.({ bytes, tensors, totalTensors });
  decoder.header.then((h) => totalTensors = h.meta?.tensors.length ?? null, () => {});
  const external = (options.weights ?? "external") === "external";
  const data = new Map<number, Uint8Array | OnnxTensorData>();
  let buffer: Uint8Array | null = null;
  const offsets = new Map<number, number>();
  for await (
    const t of readTensors(source, decoder, (n) => {
      bytes += n;
      report();
    })
  ) {
    if (t.slot === undefined) {
      throw new DecodeError("unsupported", `Tensor "${t.name}" has no place in a model`, 0);
    }
    const bytes = modelBytes(t);
    // onnxruntime takes external data for the main graph's initializers only (not for Constant
    // nodes or subgraphs, e.g. silero VAD's): the metadata and skeleton say which, and the
    // buffer is laid out for those on the first tensor.
    if (external && !buffer) {
      const header = await decoder.header;
      if (header.model?.format === "onnx") {
        const main = mainInitializers(header.model.skeleton);
        buffer = layOut(header.meta!.tensors.filter((d) => main.has(d.slot!)), offsets);
      }
    }
    if (!external || !offsets.has(t.slot)) {
      data.set(t.slot, bytes);
    } else {
      const offset = offsets.get(t.slot)!;
      buffer!.set(bytes, offset);
      data.set(t.slot, { data: { location: WEIGHTS_FILE, offset, length: bytes.length } });
    }
    tensors++;
    report();
  }
  const { model } = await decoder.header;
  if (model?.format !== "onnx") {
    throw new DecodeError("unsupported", "This file carries no ONNX model", 0);
  }
  const onnx = joinOnnx(model.skeleton, data);
  data.clear();
  const sessionOptions = external && buffer
    ? { ...options.sessionOptions, externalData: [{ path: WEIGHTS_FILE, data: buffer }] }
    : options.sessionOptions;
  return await options.ort.InferenceSession.create(onnx, sessionOptions as never);
}

/** The traversal indices of the main graph's initializers in an ONNX skeleton. */
function mainInitializers(skeleton: Uint8Array): Set<number> {
  return new Set(
    onnxTensorOrigins(skeleton).filter((t) => t.kind === "initializer" && t.graph === "")
      .map((t) => t.index),
  );
}

/** Places every tensor in one buffer, 64-byte aligned, recording each slot's offset. */
function layOut(tensors: readonly ContainerTensor[], offsets: Map<number, number>): Uint8Array {
  let size = 0;
  for (const t of tensors) {
    if (t.slot === undefined) continue;
    offsets.set(t.slot, size);
    size += Math.ceil((elementCount(t.shape) * DTYPE_BYTES[t.dtype]) / 64) * 64;
  }
  return new Uint8Array(size);
}
