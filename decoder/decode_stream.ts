/**
 * Streaming decode: NNR file bytes in, typed arrays out, one tensor at a time, buffering only the
 * unit being received. Web-platform APIs only, so it runs in Deno, Deno Deploy, Cloudflare
 * Workers, browsers and Node.
 *
 * @module
 */
import type { Dtype } from "../core/model_tensor.ts";
import { DecodeError } from "../core/errors.ts";
import { fromFloat32, fromInt32 } from "../model/dtypes.ts";
import { UnitSplitter } from "./_unit_splitter.ts";
import {
  type DataUnitJob,
  decodeDataUnit,
  type DecodedTensor,
  type NnrFileLimits,
  type NnrHeader,
  NnrUnitReader,
} from "./nnr_file.ts";
import { HAS_WEB_WORKERS, WorkerPool } from "../core/worker_pool.ts";

/**
 * What each tensor is delivered as:
 * - `"float32"` (default): reconstructed values as `Float32Array`; integer tensors as
 *   `Int32Array`;
 * - `"levels"`: the integer levels in the smallest of `Int8Array`, `Int16Array`, `Int32Array`
 *   that holds them, with `step` to scale them (for integer inference);
 * - `"original"`: like `"float32"`, but tensors that were float16 or bfloat16 in the model come
 *   as their 16-bit patterns in a `Uint16Array`.
 */
export type TensorOutput = "float32" | "levels" | "original";

/** Options of {@linkcode DecoderStream} and {@linkcode decode}. */
export interface DecodeOptions {
  /** What each tensor is delivered as (default `"float32"`). */
  readonly output?: TensorOutput;
  /** Limits for untrusted input; `maxUnitBytes` (default 1 GiB) bounds what is buffered. */
  readonly limits?: NnrFileLimits & { readonly maxUnitBytes?: number };
}

/** A decoded tensor as the stream delivers it. */
export interface StreamTensor {
  /** `topology_elem_id`. */
  readonly name: string;
  /** Shape. */
  readonly shape: readonly number[];
  /** Its dtype in the model (F32 / I32 for files without our metadata). */
  readonly dtype: Dtype;
  /** Where it goes in the model (the ONNX tensor index), if the file says. */
  readonly slot?: number;
  /** Step size of float tensors (multiply levels by it), null for integer tensors. */
  readonly step: number | null;
  /** The values, per {@linkcode TensorOutput}. */
  readonly data:
    | Float32Array<ArrayBuffer>
    | Int8Array<ArrayBuffer>
    | Int16Array<ArrayBuffer>
    | Int32Array<ArrayBuffer>
    | Uint16Array<ArrayBuffer>;
}

/**
 * Converts a decoded tensor to the requested output form.
 *
 * @param t The decoded tensor.
 * @param output The form.
 * @returns The stream tensor.
 *
 * @example
 * ```ts
 * import { toStreamTensor } from "./decode_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const t = toStreamTensor({
 *   name: "w", dtype: "F32", shape: [2], qp: -32, step: 2 ** -8,
 *   levels: Int32Array.of(3, -4), values: Float32Array.of(3 / 256, -4 / 256),
 *   params: {
 *     shape: [2], payloadType: "float", dqFlag: 0, numGtxFlags: 11, scanOrder: 0,
 *     qpDensity: 2, mpsQp: 0, syntax: "nnc1", profileIdc: 0,
 *   },
 *   unitBytes: 0, payloadBytes: 0,
 * }, "levels");
 * assert.deepEqual(t.data, Int8Array.of(3, -4));
 * ```
 */
export function toStreamTensor(t: DecodedTensor, output: TensorOutput): StreamTensor {
  const base = {
    name: t.name,
    shape: t.shape,
    dtype: t.dtype,
    ...(t.slot === undefined ? {} : { slot: t.slot }),
    step: t.step,
  };
  if (output === "levels") return { ...base, data: smallestInts(t.levels) };
  if (output === "original" && (t.dtype === "F16" || t.dtype === "BF16") && t.step !== null) {
    // Little-endian element bytes viewed in host order: every platform we run on is little-endian.
    const bytes = fromFloat32(t.values as Float32Array, t.dtype);
    return { ...base, data: new Uint16Array(bytes.buffer, bytes.byteOffset, t.levels.length) };
  }
  if (!t.values) throw new TypeError(`Tensor "${t.name}" was decoded without its values`);
  return { ...base, data: t.values };
}

/**
 * A decoded tensor's element bytes in its model dtype (little-endian), as they go back into a
 * model file: float values rounded to the dtype (float16, bfloat16, …), integers converted.
 *
 * @param t A tensor delivered as `"float32"` output.
 * @returns The bytes.
 * @throws {TypeError} For levels or 16-bit patterns (the other output forms).
 *
 * @example
 * ```ts
 * import { modelBytes } from "./decode_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const t = { name: "b", dtype: "I8", shape: [2], step: null, data: Int32Array.of(-1, 2) } as const;
 * assert.deepEqual(modelBytes(t), Uint8Array.of(255, 2));
 * ```
 */
export function modelBytes(t: StreamTensor): Uint8Array<ArrayBuffer> {
  if (t.data instanceof Float32Array) return fromFloat32(t.data, t.dtype);
  if (t.data instanceof Int32Array) return fromInt32(t.data, t.dtype);
  throw new TypeError(`Tensor "${t.name}": ${t.data.constructor.name} is not a model's values`);
}

function smallestInts(levels: Int32Array<ArrayBuffer>) {
  let min = 0;
  let max = 0;
  for (let i = 0; i < levels.length; i++) {
    const v = levels[i]!;
    if (v < min) min = v;
    else if (v > max) max = v;
  }
  if (min >= -128 && max <= 127) return Int8Array.from(levels);
  if (min >= -32768 && max <= 32767) return Int16Array.from(levels);
  return levels;
}

/**
 * A `TransformStream` from NNR file bytes to decoded tensors. It buffers incoming chunks only
 * until a whole unit has arrived (checking the unit's declared size against `maxUnitBytes`
 * first), decodes it synchronously and enqueues its tensor. The output does not depend on how the
 * input is chunked. {@linkcode DecoderStream.header} resolves with the file's metadata and model
 * skeleton once the units before the first tensor have arrived.
 *
 * @example
 * ```ts
 * import { DecoderStream } from "./decode_stream.ts";
 * import { compressModel } from "../encoder/compress_model.ts";
 * import { writeSafetensors } from "../model/safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new Uint8Array(new Float32Array(256).map((_, i) => Math.cos(i) / 8).buffer);
 * const model = writeSafetensors([{ name: "w", dtype: "F32", shape: [16, 16], data }]);
 * const { bytes } = await compressModel(model, "safetensors");
 * const stream = new Blob([bytes]).stream().pipeThrough(new DecoderStream());
 * const names = [];
 * for await (const t of stream) names.push(t.name);
 * assert.deepEqual(names, ["w"]);
 * ```
 */
export class DecoderStream extends TransformStream<Uint8Array, StreamTensor> {
  /** The file's metadata and model skeleton. */
  readonly header: Promise<NnrHeader>;

  /**
   * Creates the stream.
   *
   * @param options Output form and limits.
   */
  constructor(options: DecodeOptions = {}) {
    const output = options.output ?? "float32";
    const reader = new NnrUnitReader(options.limits, { reconstruct: output !== "levels" });
    let resolveHeader!: (h: Promise<NnrHeader>) => void;
    const header = new Promise<NnrHeader>((resolve) => resolveHeader = resolve);
    let headerGiven = false;
    const giveHeader = () => {
      if (!headerGiven) {
        headerGiven = true;
        resolveHeader(reader.header());
      }
    };
    const splitter = new UnitSplitter(options.limits?.maxUnitBytes ?? 2 ** 30);
    super({
      transform(chunk, controller) {
        splitter.push(chunk, (unit, offset) => {
          const t = reader.read(unit, 0, offset);
          if (t) {
            giveHeader();
            controller.enqueue(toStreamTensor(t, output));
          }
        });
      },
      async flush() {
        splitter.end();
        reader.finish();
        giveHeader();
        // A damaged model or metadata unit fails the stream, not only its header.
        await header;
      },
    });
    this.header = header;
    // A stream that fails before its header is known must not leave an unhandled rejection.
    header.catch(() => {});
  }
}

/** Where {@linkcode decode} and `loadModel()` read from. */
export type NnrSource = Uint8Array | ReadableStream<Uint8Array> | Response;

/** Turns any {@linkcode NnrSource} into a byte stream. */
export function sourceStream(source: NnrSource): ReadableStream<Uint8Array> {
  if (source instanceof Uint8Array) {
    return new ReadableStream({
      start(controller) {
        controller.enqueue(source);
        controller.close();
      },
    });
  }
  if (source instanceof ReadableStream) return source;
  if (!source.body) throw new DecodeError("truncated", "Response has no body", 0);
  return source.body;
}

/**
 * Decodes a whole NNR file: the same code as {@linkcode DecoderStream}, collecting the tensors.
 * With `workers` > 1, where the runtime has Web Workers, data units are decoded in parallel
 * (same result); elsewhere (e.g. Cloudflare Workers) it decodes in this thread.
 *
 * @param source The file as bytes, a byte stream or a `Response`.
 * @param options Output form, limits, workers and a progress callback.
 * @returns The header (metadata, model skeleton) and the tensors in file order.
 * @throws {DecodeError} If the file is truncated, corrupt or exceeds a limit.
 *
 * @example
 * ```ts
 * import { decode } from "./decode_stream.ts";
 * import { DecodeError } from "../core/errors.ts";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(decode(new Uint8Array([0x00, 0x04, 0x02])), DecodeError);
 * ```
 */
export async function decode(
  source: NnrSource,
  options: DecodeOptions & {
    /** Decode data units in this many Web Workers (default 1: this thread). */
    readonly workers?: number;
    /** Called after each tensor with the bytes consumed so far and the tensors decoded. */
    readonly onProgress?: (p: { bytes: number; tensors: number }) => void;
  } = {},
): Promise<{ header: NnrHeader; tensors: StreamTensor[] }> {
  const output = options.output ?? "float32";
  const splitter = new UnitSplitter(options.limits?.maxUnitBytes ?? 2 ** 30);
  const reader = new NnrUnitReader(options.limits, { reconstruct: output !== "levels" });
  const workers = HAS_WEB_WORKERS ? options.workers ?? 1 : 1;
  const pool = workers > 1
    ? new WorkerPool<DataUnitJob, DecodedTensor>(
      new URL("./_decode_worker.ts", import.meta.url),
      workers,
      {
        weight: (job) => job.payload.length,
        transfer: (job) => [job.payload.buffer as ArrayBuffer],
      },
    )
    : null;
  let bytes = 0;
  const done: StreamTensor[] = [];
  const results: Promise<StreamTensor>[] = [];
  const finished = (t: DecodedTensor, job: DataUnitJob) => {
    const out = toStreamTensor(reader.check(job, t), output);
    done.push(out);
    options.onProgress?.({ bytes, tensors: done.length });
    return out;
  };
  try {
    for await (const chunk of sourceStream(source)) {
      bytes += chunk.length;
      splitter.push(chunk, (unit, offset) => {
        const job = reader.parse(unit, 0, offset);
        if (!job) return;
        if (!pool) {
          results.push(Promise.resolve(finished(decodeDataUnit(job), job)));
          return;
        }
        // The job goes to a worker with its own copy of the payload, transferred.
        const own = { ...job, payload: job.payload.slice() };
        const running = pool.run(own).then((t) => finished(t, job));
        running.catch(() => {});
        results.push(running);
      });
    }
    splitter.end();
    reader.finish();
    const tensors = await Promise.all(results);
    return { header: await reader.header(), tensors };
  } finally {
    pool?.close();
  }
}
