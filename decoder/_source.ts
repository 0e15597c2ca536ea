// Reading an NNR source into a DecoderStream: shared by decode() and loadModel().
import { DecodeError } from "../core/errors.ts";
import type { DecoderStream, StreamTensor } from "./decode_stream.ts";

/** Where {@linkcode decode} and `loadModel()` read from. */
export type NnrSource = Uint8Array | ReadableStream<Uint8Array> | Response;

/** Bytes asked of a byte stream per read. */
const READ_BYTES = 256 * 1024;

/**
 * Turns any {@linkcode NnrSource} into a byte stream.
 *
 * @param source The NNR file as bytes, a byte stream or a `Response`.
 * @returns A stream of its bytes.
 * @throws {DecodeError} If a `Response` has no body.
 */
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
 * Reads `source` through `decoder` and yields its tensors as they are decoded: what `decode()`
 * collects and `loadModel()` assembles, for a caller that handles one tensor at a time. Where the
 * decoder lets its writer fill a chunk's buffer again (in one thread) and the source is a byte
 * stream (a file's, a `fetch()` body), every read goes into one buffer (BYOB); piping the source
 * into the decoder instead leaves a fresh chunk per read as garbage until the runtime collects it
 * (IS-Net, int8 levels: output + 20 MB against + 15 MB). A consumer that stops early cancels the
 * source.
 *
 * @param source The NNR file as bytes, a byte stream or a `Response`.
 * @param decoder The decoder, with its options (its `header` resolves as for any stream).
 * @param onBytes Called with the size of each chunk read.
 * @returns The tensors, in file order.
 * @throws {DecodeError} If the file is truncated, corrupt or exceeds a limit.
 *
 * @example Tensors one at a time, with the file's metadata
 * ```ts
 * import { DecoderStream, readTensors } from "./decode_stream.ts";
 * import { compressModel } from "../encoder/compress_model.ts";
 * import { writeSafetensors } from "../model/safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new Uint8Array(new Float32Array(64).map((_, i) => Math.sin(i) / 8).buffer);
 * const model = writeSafetensors([{ name: "w", dtype: "F32", shape: [8, 8], data }]);
 * const { bytes } = await compressModel(model, "safetensors");
 * const decoder = new DecoderStream({ output: "levels" });
 * for await (const t of readTensors(new Blob([bytes]).stream(), decoder)) {
 *   assert.equal(t.name, "w");
 *   assert.ok(t.data instanceof Int8Array);
 * }
 * assert.equal((await decoder.header).meta?.tensors.length, 1);
 * ```
 */
export async function* readTensors(
  source: NnrSource,
  decoder: DecoderStream,
  onBytes: (n: number) => void = () => {},
): AsyncGenerator<StreamTensor> {
  const input = sourceStream(source);
  const writer = decoder.writable.getWriter();
  const byob = decoder.chunksReusable ? byobReader(input) : null;
  const reader = byob ?? input.getReader();
  const feed = async () => {
    try {
      let buffer = new ArrayBuffer(READ_BYTES);
      for (;;) {
        const { value, done } = byob
          ? await byob.read(new Uint8Array(buffer))
          : await (reader as ReadableStreamDefaultReader<Uint8Array>).read();
        if (done) break;
        onBytes(value.length);
        await writer.write(value);
        if (byob) buffer = value.buffer as ArrayBuffer;
      }
      await writer.close();
    } catch (e) {
      // The decoder failed (its readable side says why) or the source did: end both.
      await writer.abort(e).catch(() => {});
      await reader.cancel(e).catch(() => {});
    }
  };
  const fed = feed();
  let complete = false;
  try {
    yield* decoder.readable;
    complete = true;
  } finally {
    // A consumer that stops early must not wait for the source's next bytes.
    if (!complete) await reader.cancel().catch(() => {});
    await fed;
  }
}

/** A BYOB reader of `stream` if it is a byte stream, else null. */
function byobReader(stream: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | null {
  try {
    return stream.getReader({ mode: "byob" });
  } catch {
    return null;
  }
}
