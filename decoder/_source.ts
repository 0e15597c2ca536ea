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
 * The tensors of `source` decoded by `decoder`. Where the decoder lets its writer fill a chunk's
 * buffer again and the source is a byte stream (a file's, a `fetch()` body), every read goes
 * into one buffer (BYOB): a fresh chunk per read, garbage the moment it is consumed, is what
 * otherwise sits in memory until the runtime collects it (~13 MB over IS-Net).
 *
 * @param source The NNR file.
 * @param decoder The decoder.
 * @param onBytes Called with the size of each chunk read.
 */
export async function* decodeSource(
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
