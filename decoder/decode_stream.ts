/**
 * Streaming decode: NNR file bytes in, typed arrays out, one tensor at a time, buffering only the
 * unit being received. Web-platform APIs only, so it runs in Deno, Deno Deploy, Cloudflare
 * Workers, browsers and Node.
 *
 * @module
 */
import type { Dtype } from "../core/model_tensor.ts";
import { crc32Combine } from "../core/crc32.ts";
import { blockRowElements, scanPlan } from "../core/scan.ts";
import { levelBytes } from "../core/syntax.ts";
import { fromFloat32, fromInt32 } from "../model/dtypes.ts";
import { UnitSplitter } from "./_unit_splitter.ts";
import { validatePayloadParams } from "./decode_payload.ts";
import {
  type DataUnitJob,
  type DecodedTensor,
  type NnrFileLimits,
  type NnrHeader,
  NnrUnitReader,
} from "./nnr_file.ts";
import { readNnrUnit } from "./nnr_units.ts";
import {
  type SinkArray,
  type SinkKind,
  sinkKind,
  UnitDecoder,
  unitEntryPoints,
  unitParams,
} from "./unit_decoder.ts";
import { HAS_WEB_WORKERS, WorkerPool } from "../core/worker_pool.ts";
import type { RowsJob, RowsResult } from "./_decode_worker.ts";
import { type NnrSource, readTensors } from "./_source.ts";

export { type NnrSource, readTensors, sourceStream } from "./_source.ts";

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
  /**
   * Decode in this many Web Workers where the runtime has them (default 1: this thread, as the
   * bytes arrive). Large block-scanned tensors are split between the workers by block rows.
   */
  readonly workers?: number;
  /**
   * With workers, the data units before the first whose payload has at least this many bytes are
   * decoded in this thread, and the workers start at that one (default 256 KiB: a worker's start
   * costs more than decoding smaller ones; LeNet-300's largest, 182 kB, decodes in ~30 ms),
   * unless the file's metadata declares at least 2^22 weights: then they start at once.
   */
  readonly minWorkerPayload?: number;
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
  readonly data: SinkArray;
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
 * @param t A tensor delivered as `"float32"` or `"original"` output.
 * @returns The bytes (a view of a 16-bit tensor's patterns).
 * @throws {TypeError} For levels.
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
export function modelBytes(t: StreamTensor): Uint8Array {
  if (t.data instanceof Float32Array) return fromFloat32(t.data, t.dtype);
  if (t.data instanceof Int32Array) return fromInt32(t.data, t.dtype);
  if (t.data instanceof Uint16Array && (t.dtype === "F16" || t.dtype === "BF16")) {
    return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  throw new TypeError(`Tensor "${t.name}": ${t.data.constructor.name} is not a model's values`);
}

function smallestInts(levels: Int32Array): SinkArray {
  const width = levelBytes(levels);
  return width === 1 ? Int8Array.from(levels) : width === 2 ? Int16Array.from(levels) : levels;
}

/**
 * A model of this many weights has the workers start at its first data unit (decoding it in one
 * thread takes ~0.5 s, a worker's start ~0.05 s).
 */
const WORKERS_WORTH_WEIGHTS = 2 ** 22;

/** Bytes of payload handed to workers and not decoded yet before the input waits. */
const MAX_IN_FLIGHT_BYTES = 32 * 2 ** 20;

/** A data unit's number of block rows: one more than its entry points. */
function blockRows(job: DataUnitJob): number {
  return ((job.fields.cabac_entry_point_list as number[] | undefined)?.length ?? 0) + 1;
}

/**
 * Block rows `[from, to)` for `parts` workers, balanced by their coded bits (the entry points
 * give each block row's size; the last one has the rest of the payload).
 */
function splitRows(job: DataUnitJob, parts: number): [number, number][] {
  const entries = unitEntryPoints(job);
  const rows = entries.length + 1;
  if (parts <= 1 || rows === 1) return [[0, rows]];
  const bits = entries.map((e) => e.bitOffsetDelta);
  bits.push(Math.max(0, 8 * job.payload.length - bits.reduce((a, b) => a + b, 0)));
  const total = bits.reduce((a, b) => a + b, 0);
  const ranges: [number, number][] = [];
  let from = 0;
  let sum = 0;
  for (let j = 0; j < rows; j++) {
    sum += bits[j]!;
    const left = rows - j - 1;
    const wanted = parts - ranges.length - 1;
    if (wanted > 0 && left >= wanted && sum >= (total * (ranges.length + 1)) / parts) {
      ranges.push([from, j + 1]);
      from = j + 1;
    }
  }
  ranges.push([from, rows]);
  return ranges;
}

/**
 * The decoding behind {@linkcode DecoderStream}: units are cut from the byte stream; in this
 * thread a large data unit is decoded block row by block row as its bytes arrive; with workers,
 * once they have started (see `#workersFor`), each data unit is decoded in parts (block rows from
 * their entry points), which are put together in its output array. Tensors come out in file order.
 */
class StreamDecoder {
  readonly reader: NnrUnitReader;
  readonly #splitter: UnitSplitter;
  readonly #output: TensorOutput;
  #pool: WorkerPool<RowsJob, RowsResult> | null = null;
  readonly #workers: number;
  readonly #minWorkerPayload: number;
  /** The data unit decoded while it arrives (in this thread). */
  #current: { offset: number; job: DataUnitJob; decoder: UnitDecoder; header: number } | null =
    null;
  /** Tensors not handed out yet, in file order, with the payload bytes they hold. */
  readonly #queue: { tensor: Promise<StreamTensor>; bytes: number; settled: boolean }[] = [];
  #inFlight = 0;
  /** Whether a data unit has been seen (so the header is complete). */
  sawData = false;

  constructor(options: DecodeOptions) {
    this.#output = options.output ?? "float32";
    this.reader = new NnrUnitReader(options.limits, { reconstruct: this.#output !== "levels" });
    this.#workers = HAS_WEB_WORKERS ? options.workers ?? 1 : 1;
    this.#minWorkerPayload = options.minWorkerPayload ?? 262144;
    // In this thread a unit is decoded before the next arrives: its buffer can be used again.
    this.#splitter = new UnitSplitter(options.limits?.maxUnitBytes ?? 2 ** 30, this.reusesBuffers);
  }

  /** Whether no view of a chunk outlives its push(), nor of a unit its decoding (one thread). */
  get reusesBuffers(): boolean {
    return this.#workers === 1;
  }

  /**
   * The workers, started at the first data unit if the metadata declares a model large enough to
   * be worth them, else at the first data unit that is; from then on they take every data unit,
   * so that this thread, which hands them out, never keeps them waiting.
   */
  #workersFor(job: DataUnitJob): WorkerPool<RowsJob, RowsResult> | null {
    if (
      this.#workers === 1 ||
      (!this.#pool && job.payload.length < this.#minWorkerPayload &&
        this.reader.declaredWeights() < WORKERS_WORTH_WEIGHTS)
    ) {
      return null;
    }
    this.#pool ??= new WorkerPool<RowsJob, RowsResult>(
      new URL("./_decode_worker.ts", import.meta.url),
      this.#workers,
      {
        // A part's share of its payload (block rows are balanced by their bits).
        weight: (r) => (r.job.payload.length * (r.to - r.from)) / blockRows(r.job),
        transfer: (r) => r.job.payload.buffer instanceof ArrayBuffer ? [r.job.payload.buffer] : [],
        queueDepth: 2,
      },
    );
    return this.#pool;
  }

  /** Takes a chunk; returns the tensors completed, in order, once they are decoded. */
  async push(chunk: Uint8Array): Promise<StreamTensor[]> {
    this.#splitter.push(chunk, {
      unit: (unit, offset) => this.#unit(unit, offset),
      ...(this.#workers > 1 ? {} : { partial: (b, filled, at) => this.#partial(b, filled, at) }),
    });
    // The tensors done, in order; and, for bounded memory, the oldest ones while too many
    // payload bytes are in flight.
    const out: StreamTensor[] = [];
    while (
      this.#queue.length > 0 && (this.#queue[0]!.settled || this.#inFlight > MAX_IN_FLIGHT_BYTES)
    ) {
      out.push(await this.#take());
    }
    return out;
  }

  /** The input ended: every remaining tensor. */
  async end(): Promise<StreamTensor[]> {
    this.#splitter.end();
    this.reader.finish();
    const out: StreamTensor[] = [];
    while (this.#queue.length > 0) out.push(await this.#take());
    return out;
  }

  close(): void {
    this.#pool?.close();
  }

  async #take(): Promise<StreamTensor> {
    const { tensor, bytes } = this.#queue.shift()!;
    try {
      return await tensor;
    } finally {
      this.#inFlight -= bytes;
    }
  }

  /** Queues a tensor: decoded already (in this thread), or by the workers. */
  #enqueue(tensor: StreamTensor | Promise<StreamTensor>, bytes: number): void {
    if (!(tensor instanceof Promise)) {
      this.#queue.push({ tensor: Promise.resolve(tensor), bytes, settled: true });
      return;
    }
    const entry = { tensor, bytes, settled: false };
    const settle = () => {
      entry.settled = true;
    };
    tensor.then(settle, settle); // its error surfaces when #take() awaits it, in order
    this.#queue.push(entry);
    this.#inFlight += bytes;
  }

  /** A large unit still arriving: once its header is in, decode what its bytes allow. */
  #partial(buffer: Uint8Array, filled: number, offset: number): void {
    const current = this.#current;
    if (current?.offset === offset) {
      current.decoder.advance(filled - current.header);
      return;
    }
    // Only a data unit is worth starting early (its type: the 6 bits after the size field).
    if (buffer[buffer[0]! >> 7 ? 4 : 2]! >> 2 !== 5) return;
    let u;
    try {
      u = readNnrUnit(buffer, 0, this.reader.profile);
    } catch {
      return; // the header is not in yet (or is corrupt: reported once the unit is whole)
    }
    if (u.type !== 5 || u.headerBytes! > filled) return;
    const job = this.reader.parse(buffer, 0, offset)!;
    this.sawData = true;
    const decoder = new UnitDecoder(job, this.#sinkOptions(job), filled - u.headerBytes!);
    this.#current = { offset, job, decoder, header: u.headerBytes! };
  }

  /** A whole unit. */
  #unit(unit: Uint8Array, offset: number): void {
    const current = this.#current;
    if (current?.offset === offset) {
      this.#current = null;
      this.#enqueue(this.#finished(current.job, current.decoder), 0);
      return;
    }
    const job = this.reader.parse(unit, 0, offset);
    if (!job) return;
    this.sawData = true;
    const pool = this.#workersFor(job);
    if (!pool) {
      const decoder = new UnitDecoder(job, this.#sinkOptions(job));
      this.#enqueue(this.#finished(job, decoder), 0);
      return;
    }
    this.#enqueue(this.#inWorkers(job, pool), job.payload.length);
  }

  #kind(job: DataUnitJob): SinkKind {
    return sinkKind(this.#output, unitParams(job), this.reader.dtypeOf(job));
  }

  /** The output kind, and for levels the width the metadata records (no widening later). */
  #sinkOptions(job: DataUnitJob): { kind: SinkKind; levelBytes?: 1 | 2 | 4 } {
    const kind = this.#kind(job);
    const levelBytes = kind === "levels" ? this.reader.levelBytesOf(job) : undefined;
    return levelBytes ? { kind, levelBytes } : { kind };
  }

  /** A unit decoded in this thread, checked and delivered. */
  #finished(job: DataUnitJob, decoder: UnitDecoder): StreamTensor {
    const { data, crc } = decoder.finish();
    return this.#deliver(job, data, crc, decoder.qp, decoder.step);
  }

  #deliver(
    job: DataUnitJob,
    data: SinkArray,
    crc: number,
    qp: number | null,
    step: number | null,
  ): StreamTensor {
    const params = unitParams(job);
    const name = job.fields.topology_elem_id as string;
    const { dtype, slot } = this.reader.verify(job, { name, shape: params.shape, qp, crc });
    return {
      name,
      shape: params.shape,
      dtype,
      ...(slot === undefined ? {} : { slot }),
      step,
      data: data as StreamTensor["data"],
    };
  }

  /** A unit decoded by the workers, in parts of its block rows, into one output array. */
  async #inWorkers(
    job: DataUnitJob,
    pool: WorkerPool<RowsJob, RowsResult>,
  ): Promise<StreamTensor> {
    const params = unitParams(job);
    const elements = validatePayloadParams(params, job.limits, job.payload.length);
    const ranges = splitRows(job, this.#workers);
    // Each part gets a copy of the payload and sends its rows back, both transferred. (One
    // SharedArrayBuffer for the output was measured and dropped: idle workers rarely collect
    // garbage, so the buffers of tensors long handed out stayed alive, 257 MB above the baseline
    // streaming IS-Net.)
    const sink = this.#sinkOptions(job);
    const parts = await Promise.all(
      ranges.map(([from, to]) =>
        pool.run({ job: { ...job, payload: job.payload.slice() }, ...sink, from, to })
      ),
    );
    if (parts.length === 1) {
      const p = parts[0]!;
      return this.#deliver(job, p.data, p.crc, p.qp, p.step);
    }
    // Levels come in the widest type a part needed (all alike with the metadata's width).
    const widest = parts.reduce(
      (a, p) => p.data.BYTES_PER_ELEMENT > a.BYTES_PER_ELEMENT ? p.data : a,
      parts[0]!.data,
    );
    const data = new (widest.constructor as Int32ArrayConstructor)(elements);
    const plan = scanPlan(params.shape, params.scanOrder, false);
    let crc = 0;
    for (const [i, p] of parts.entries()) {
      const [start, end] = blockRowElements(plan, ...ranges[i]!);
      data.set(p.data as Int32Array, start);
      crc = i === 0 ? p.crc : crc32Combine(crc, p.crc, 4 * (end - start));
    }
    return this.#deliver(job, data, crc, parts[0]!.qp, parts[0]!.step);
  }
}

/**
 * A `TransformStream` from NNR file bytes to decoded tensors, in file order. It buffers incoming
 * chunks only until a whole unit has arrived (checking the unit's declared size against
 * `maxUnitBytes` first); a large data unit is decoded block row by block row as its bytes arrive
 * (CODING.md 6.4: a block row once the bytes up to the next entry point are in), straight into
 * the tensor's output array. With `workers` > 1 (where the runtime has Web Workers) each data
 * unit is decoded by the workers in parts, from its entry points, and put together in one array.
 * The output does not depend on how the input is chunked, nor on the
 * number of workers. {@linkcode DecoderStream.header} resolves with the file's metadata and model
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
   * Whether the stream keeps no view of a chunk once writing it has completed (when it decodes
   * in this thread), so that a writer may fill the chunk's buffer again: {@linkcode decode} and
   * `loadModel()` read byte streams into one buffer that way.
   */
  readonly chunksReusable: boolean;

  /**
   * Creates the stream.
   *
   * @param options Output form, limits and workers.
   */
  constructor(options: DecodeOptions = {}) {
    const decoder = new StreamDecoder(options);
    let resolveHeader!: (h: Promise<NnrHeader>) => void;
    const header = new Promise<NnrHeader>((resolve) => resolveHeader = resolve);
    let headerGiven = false;
    const giveHeader = () => {
      if (!headerGiven) {
        headerGiven = true;
        resolveHeader(decoder.reader.header());
      }
    };
    const deliver = (
      tensors: StreamTensor[],
      controller: TransformStreamDefaultController<StreamTensor>,
    ) => {
      for (const t of tensors) {
        giveHeader();
        controller.enqueue(t);
      }
    };
    super({
      async transform(chunk, controller) {
        try {
          deliver(await decoder.push(chunk), controller);
          if (decoder.sawData) giveHeader();
        } catch (e) {
          decoder.close();
          throw e;
        }
      },
      async flush(controller) {
        try {
          deliver(await decoder.end(), controller);
        } finally {
          decoder.close();
        }
        giveHeader();
        // A damaged model or metadata unit fails the stream, not only its header.
        await header;
      },
    });
    this.header = header;
    this.chunksReusable = decoder.reusesBuffers;
    // A stream that fails before its header is known must not leave an unhandled rejection.
    header.catch(() => {});
  }
}

/**
 * Decodes a whole NNR file: {@linkcode DecoderStream}, collecting the tensors.
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
    /** Called after each tensor with the bytes received so far and the tensors decoded. */
    readonly onProgress?: (p: { bytes: number; tensors: number }) => void;
  } = {},
): Promise<{ header: NnrHeader; tensors: StreamTensor[] }> {
  let bytes = 0;
  const decoder = new DecoderStream(options);
  const tensors: StreamTensor[] = [];
  for await (const t of readTensors(source, decoder, (n) => bytes += n)) {
    tensors.push(t);
    options.onProgress?.({ bytes, tensors: tensors.length });
  }
  return { header: await decoder.header, tensors };
}
