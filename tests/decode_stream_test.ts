// The streaming decoder: output independent of chunking, the output forms, limits and bad input,
// and loadModel() into onnxruntime-web.
import assert from "node:assert/strict";
import { compressModel } from "../encoder/compress_model.ts";
import { decode, DecoderStream, readTensors, type StreamTensor } from "../decoder/decode_stream.ts";
import { loadModel } from "../decoder/load_model.ts";
import { NnrUnitReader, readNnrFile } from "../decoder/nnr_file.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { DecodeError } from "../core/errors.ts";
import { toFloat16Weights } from "./_onnx_fixtures.ts";
import { SILERO_VAD_V5 } from "../examples/silero_vad_demo.ts";
import * as ort from "onnxruntime-web/wasm";
import { createSession, Tensor } from "../runtime/onnx_runtime.ts";

const LENET300 = new URL("../../shared/zoo/lenet300_mnist.onnx", import.meta.url);

/** A byte stream delivering `bytes` in chunks of `size`. */
function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

/**
 * A byte stream (readable into the reader's own buffer) delivering `bytes` in reads of at most
 * `size`, after which it stalls for ever if `stall`; `reads.byob` counts reads into a buffer.
 */
function byteStream(
  bytes: Uint8Array,
  size: number,
  reads = { byob: 0 },
  stall = false,
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller): Promise<void> | void {
      const n = Math.min(size, bytes.length - at);
      if (n === 0) {
        if (stall) return new Promise(() => {});
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const request = controller.byobRequest;
      if (!request) {
        controller.enqueue(bytes.slice(at, at + n));
        at += n;
        return;
      }
      const view = request.view!;
      const m = Math.min(n, view.byteLength);
      new Uint8Array(view.buffer, view.byteOffset, m).set(bytes.subarray(at, at + m));
      at += m;
      reads.byob++;
      request.respond(m);
    },
  });
}

async function collect(stream: ReadableStream<StreamTensor>): Promise<StreamTensor[]> {
  const out: StreamTensor[] = [];
  for await (const t of stream) out.push(t);
  return out;
}

Deno.test("DecoderStream gives the same tensors for chunks of 1, 7, 1021 bytes and whole", async () => {
  const { bytes } = await compressModel(await Deno.readFile(LENET300), "onnx");
  const file = await readNnrFile(bytes);
  const whole = await decode(bytes);
  assert.equal(whole.tensors.length, file.tensors.length);
  whole.tensors.forEach((t, i) => {
    assert.equal(t.name, file.tensors[i]!.name);
    assert.deepEqual(t.data, file.tensors[i]!.values);
  });
  assert.deepEqual(whole.header.model?.skeleton, file.model?.skeleton);
  for (const size of [1, 7, 1021]) {
    const decoder = new DecoderStream();
    const tensors = await collect(chunked(bytes, size).pipeThrough(decoder));
    assert.deepEqual(tensors, whole.tensors, `chunks of ${size}`);
    assert.deepEqual((await decoder.header).meta, whole.header.meta);
  }
});

Deno.test("decode() reads a byte stream into one buffer, with the same tensors", async () => {
  const { bytes } = await compressModel(await Deno.readFile(LENET300), "onnx");
  for (const output of ["float32", "levels"] as const) {
    const whole = await decode(bytes, { output });
    for (const size of [1, 3, 1021, 2 ** 20]) {
      const reads = { byob: 0 };
      const got = await decode(byteStream(bytes, size, reads), { output });
      assert.deepEqual(got.tensors, whole.tensors, `${output}, reads of ${size}`);
      assert.ok(reads.byob > 0, "read into the decoder's buffer");
    }
  }
  await assert.rejects(decode(byteStream(bytes.subarray(0, 5000), 997)), DecodeError);
});

Deno.test("DecoderStream keeps no view of a written chunk in one thread (chunksReusable)", async () => {
  const { bytes } = await compressModel(await Deno.readFile(LENET300), "onnx");
  const whole = await decode(bytes);
  assert.equal(new DecoderStream({ workers: 2 }).chunksReusable, false);
  for (const size of [1, 2, 5, 4093]) {
    const decoder = new DecoderStream();
    assert.equal(decoder.chunksReusable, true);
    const tensors = collect(decoder.readable);
    const writer = decoder.writable.getWriter();
    // One buffer for every chunk, scribbled over after each write.
    const buffer = new Uint8Array(size);
    for (let at = 0; at < bytes.length; at += size) {
      const chunk = buffer.subarray(0, Math.min(size, bytes.length - at));
      chunk.set(bytes.subarray(at, at + chunk.length));
      await writer.write(chunk);
      buffer.fill(0xa5);
    }
    await writer.close();
    assert.deepEqual(await tensors, whole.tensors, `chunks of ${size}`);
  }
});

Deno.test("a consumer that stops early does not wait for a stalled source", async () => {
  const { bytes } = await compressModel(await Deno.readFile(LENET300), "onnx");
  const first = (await decode(bytes)).tensors[0]!;
  // The source sends the file but its last byte, then never ends.
  const source = byteStream(bytes.subarray(0, bytes.length - 1), 4096, { byob: 0 }, true);
  for await (const t of readTensors(source, new DecoderStream())) {
    assert.deepEqual(t, first);
    break;
  }
});

Deno.test("DecoderStream delivers levels in the smallest integer type, or float16 bits", async () => {
  const lenet = await Deno.readFile(LENET300);
  const { bytes } = await compressModel(lenet, "onnx");
  const floats = (await decode(bytes)).tensors;
  const levels = (await decode(bytes, { output: "levels" })).tensors;
  for (const [i, t] of levels.entries()) {
    const f = floats[i]!;
    if (t.step === null) {
      assert.deepEqual(t.data, f.data);
      continue;
    }
    // Weights at qp −38 fit 8 or 16 bits; biases at the fine non-weight qp may need 32.
    if (t.shape.length > 1) assert.ok(!(t.data instanceof Int32Array), t.name);
    assert.ok(!(t.data instanceof Float32Array), t.name);
    // Without DQ a level times the step is the value; with DQ it is the reconstruction index.
    for (let k = 0; k < t.data.length; k += 97) {
      assert.ok(Math.abs(t.data[k]! * t.step - f.data[k]!) <= t.step, t.name);
    }
  }
  const half = await compressModel(toFloat16Weights(lenet), "onnx");
  const original = (await decode(half.bytes, { output: "original" })).tensors;
  const weights = original.filter((t) => t.dtype === "F16");
  assert.equal(weights.length, 3);
  for (const t of weights) assert.ok(t.data instanceof Uint16Array);
});

Deno.test("DecoderStream rejects truncated, corrupt and oversized input with DecodeError", async () => {
  const { bytes } = await compressModel(await Deno.readFile(LENET300), "onnx");
  const run = (b: Uint8Array, options = {}) =>
    collect(chunked(b, 4096).pipeThrough(new DecoderStream(options)));
  for (const cut of [1, 3, 100, bytes.length >> 1, bytes.length - 1]) {
    await assert.rejects(run(bytes.subarray(0, cut)), DecodeError, `cut at ${cut}`);
  }
  const bad = bytes.slice();
  bad[bytes.length - 5000]! ^= 0x40;
  await assert.rejects(run(bad), DecodeError);
  await assert.rejects(run(bytes, { limits: { maxUnitBytes: 10_000 } }), (e: DecodeError) => {
    assert.equal(e.code, "limit");
    return true;
  });
});

Deno.test("loadModel() streams a compressed model into a session equal to decompressModel()'s", async () => {
  const lenet = await Deno.readFile(LENET300);
  const { bytes } = await compressModel(lenet, "onnx");
  const reference = await createSession((await decompressModel(bytes)).bytes);
  const input = new Tensor("float32", new Float32Array(784).map((_, i) => (i % 29) / 29), [1, 784]);
  try {
    const want = (await reference.run({ input })).logits!.data as Float32Array;
    for (
      const [weights, workers] of [["external", 1], ["inline", 1], ["external", 2]] as const
    ) {
      const progress: number[] = [];
      const session = await loadModel(chunked(bytes, 8192), {
        ort,
        weights,
        workers,
        onProgress: (p) => progress.push(p.tensors),
      });
      try {
        const got = (await session.run({ input })).logits!.data as Float32Array;
        assert.deepEqual(got, want, `${weights}, ${workers} workers`);
        assert.equal(Math.max(...progress), (await readNnrFile(bytes)).tensors.length);
      } finally {
        await session.release();
      }
    }
  } finally {
    await reference.release();
  }
});

Deno.test("decode({ workers: 2 }) gives the same tensors and the same errors", async () => {
  const { bytes } = await compressModel(await Deno.readFile(LENET300), "onnx");
  const one = await decode(bytes);
  // 10,000: the units before the first that large decode in this thread, the rest in workers.
  for (const minWorkerPayload of [0, 10_000]) {
    const two = await decode(chunked(bytes, 10_000), { workers: 2, minWorkerPayload });
    assert.deepEqual(two.tensors, one.tensors);
    assert.deepEqual(two.header, one.header);
  }
  const bad = bytes.slice();
  bad[bytes.length - 5000]! ^= 0x40;
  await assert.rejects(decode(bad, { workers: 2, minWorkerPayload: 0 }), DecodeError);
});

Deno.test("the reader knows the model's size from the metadata before the first tensor", async () => {
  const { bytes } = await compressModel(await Deno.readFile(LENET300), "onnx");
  const reader = new NnrUnitReader();
  let offset = 0;
  while (!reader.parse(bytes, offset)) offset += reader.units.at(-1)!.size;
  // 784·300 + 300 + 300·100 + 100 + 100·10 (fc3 has no bias): what decides when workers start.
  assert.equal(reader.declaredWeights(), 266_600);
});

Deno.test("loadModel() keeps Constant and subgraph tensors inline (silero VAD), as onnxruntime needs", async () => {
  const { bytes } = await compressModel(await Deno.readFile(SILERO_VAD_V5), "onnx");
  const reference = await createSession((await decompressModel(bytes)).bytes);
  const session = await loadModel(bytes, { ort });
  try {
    const feeds = {
      input: new Tensor("float32", new Float32Array(512).map((_, i) => Math.sin(i / 7) / 4), [
        1,
        512,
      ]),
      state: new Tensor("float32", new Float32Array(256), [2, 1, 128]),
      sr: new Tensor("int64", BigInt64Array.of(16000n), []),
    };
    const want = (await reference.run(feeds)).output!.data as Float32Array;
    const got = (await session.run(feeds)).output!.data as Float32Array;
    assert.deepEqual(got, want);
  } finally {
    await session.release();
    await reference.release();
  }
});
