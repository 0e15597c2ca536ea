// The streaming decoder: output independent of chunking, the output forms, limits and bad input,
// and loadModel() into onnxruntime-web.
import assert from "node:assert/strict";
import { compressModel } from "../encoder/compress_model.ts";
import { decode, DecoderStream, type StreamTensor } from "../decoder/decode_stream.ts";
import { loadModel } from "../decoder/load_model.ts";
import { readNnrFile } from "../decoder/nnr_file.ts";
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
