// Models through compressModel() and decompressModel(), then through onnxruntime-web: the zoo's
// MNIST classifiers keep their accuracy, a real npm model with Constant-node weights in If
// subgraphs still agrees, and safetensors files come back with their dtypes.
import assert from "node:assert/strict";
import { compressModel } from "../encoder/compress_model.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { readSafetensors, writeSafetensors } from "../model/safetensors.ts";
import { toFloat32 } from "../model/dtypes.ts";
import { splitOnnx } from "../model/onnx.ts";
import { toConstantNodes, toExternalData, toFloat16Weights } from "./_onnx_fixtures.ts";
import { accuracy, createSession, runBatched, top1 } from "../runtime/onnx_runtime.ts";
import { runDemo, SILERO_VAD_V5, vadProbabilities } from "../examples/silero_vad_demo.ts";

const ZOO = new URL("../../shared/zoo/", import.meta.url);

async function mnist(): Promise<{ x: Float32Array; y: Uint8Array }> {
  const { tensors } = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", ZOO)));
  return {
    x: toFloat32(tensors.find((t) => t.name === "x")!),
    y: tensors.find((t) => t.name === "y")!.data,
  };
}

async function top1Accuracy(model: Uint8Array, x: Float32Array, y: Uint8Array): Promise<number> {
  const session = await createSession(model);
  try {
    const { outputs, classes } = await runBatched(session, "input", x, [784], { batchSize: 512 });
    return accuracy(top1(outputs, classes), y);
  } finally {
    await session.release();
  }
}

for (const name of ["lenet300_mnist.onnx", "lenet5_mnist.onnx"]) {
  Deno.test(`${name} keeps its top-1 accuracy within 0.1 pp at the default qp`, async () => {
    const { x, y } = await mnist();
    const original = await Deno.readFile(new URL(name, ZOO));
    const compressed = await compressModel(original, "onnx");
    const { bytes, format } = await decompressModel(compressed.bytes);
    assert.equal(format, "onnx");
    const before = await top1Accuracy(original, x, y);
    const after = await top1Accuracy(bytes, x, y);
    assert.ok(Math.abs(after - before) <= 0.001, `${before} -> ${after}`);
    assert.ok(compressed.bytes.length * 4 < original.length, `${compressed.bytes.length} bytes`);
    // Every float weight matrix was coded at the weight qp, every bias at the non-weight qp.
    const coded = compressed.tensors.filter((t) => t.mode !== "raw");
    assert.ok(coded.some((t) => t.mode === "weight" && t.qp === -38));
    assert.ok(coded.every((t) => t.mode !== "nonweight" || t.qp === -75));
  });
}

Deno.test("float16 weights, Constant-node weights and external data round-trip and still run", async () => {
  const { x, y } = await mnist();
  const lenet = await Deno.readFile(new URL("lenet300_mnist.onnx", ZOO));
  const half = toFloat16Weights(lenet);
  const external = toExternalData(lenet);
  const variants: [string, Uint8Array, ((l: string) => Uint8Array) | undefined][] = [
    ["float16", half, undefined],
    ["Constant nodes", toConstantNodes(lenet), undefined],
    ["external data", external.model, (l) => external.files.get(l)!],
  ];
  for (const [what, model, readExternal] of variants) {
    const compressed = await compressModel(model, "onnx", readExternal ? { readExternal } : {});
    const coded = compressed.tensors.filter((t) => t.mode === "weight");
    assert.equal(coded.length, 3, what);
    const { bytes, file } = await decompressModel(compressed.bytes);
    // Coded tensors come back in their own dtype.
    const dtypes = new Set(file.tensors.filter((t) => t.shape.length === 2).map((t) => t.dtype));
    assert.deepEqual([...dtypes], [what === "float16" ? "F16" : "F32"], what);
    // The external-data model comes back self-contained; compare it with the inline original.
    const before = await top1Accuracy(readExternal ? lenet : model, x, y);
    const after = await top1Accuracy(bytes, x, y);
    assert.ok(Math.abs(after - before) <= 0.001, `${what}: ${before} -> ${after}`);
  }
  // The float16 model's weights really are stored as float16 after the round trip.
  const out = await splitOnnx(
    (await decompressModel((await compressModel(half, "onnx")).bytes)).bytes,
  );
  const weights = out.tensors.filter((t) => t.name.endsWith("weight_f16"));
  assert.equal(weights.length, 3);
  for (const t of weights) assert.equal(t.dtype, "F16");
});

Deno.test("silero VAD v5 (weights in Constant nodes inside If branches) still agrees", async () => {
  const original = await Deno.readFile(SILERO_VAD_V5);
  const inSubgraphs = (await splitOnnx(original)).tensors.filter((t) =>
    t.kind === "constant" && t.graph !== ""
  );
  assert.ok(inSubgraphs.length > 300);
  // The demo: reference defaults, then a finer step for the STFT basis only.
  const demo = await runDemo(original);
  const [defaults, tuned] = demo.rows;
  assert.ok(defaults!.ratio > 3.5 && tuned!.ratio > 3.5, demo.text);
  assert.ok(defaults!.maxDifference < 0.05, demo.text);
  assert.ok(tuned!.maxDifference < 0.01, demo.text);
  // The weights really were taken out of the Constant nodes and put back.
  const compressed = await compressModel(original, "onnx");
  assert.ok(compressed.tensors.filter((t) => t.mode === "weight").length >= 16);
  const { bytes } = await decompressModel(compressed.bytes);
  assert.deepEqual(await vadProbabilities(bytes), defaults!.probabilities);
});

Deno.test("safetensors files round-trip with their dtypes; integers are lossless", async () => {
  const original = await Deno.readFile(new URL("mnist_test.safetensors", ZOO));
  const compressed = await compressModel(original, "safetensors");
  const { bytes, format } = await decompressModel(compressed.bytes);
  assert.equal(format, "safetensors");
  const before = readSafetensors(original).tensors;
  const after = readSafetensors(bytes).tensors;
  const y0 = before.find((t) => t.name === "y")!;
  const y1 = after.find((t) => t.name === "y")!;
  assert.deepEqual([y1.dtype, y1.shape, y1.data], [y0.dtype, y0.shape, y0.data]);
  const x0 = toFloat32(before.find((t) => t.name === "x")!);
  const x1 = after.find((t) => t.name === "x")!;
  assert.deepEqual([x1.dtype, x1.shape], ["F32", [2004, 784]]);
  const x1v = toFloat32(x1);
  let worst = 0;
  for (let i = 0; i < x0.length; i++) worst = Math.max(worst, Math.abs(x0[i]! - x1v[i]!));
  assert.ok(worst < 0.01, `max error ${worst}`);
});

Deno.test("importance (DC-v1) steers the RD quantiser: unimportant weights go to zero", async () => {
  const rows = 64;
  const cols = 64;
  const w = new Float32Array(rows * cols).map((_, i) => 0.02 * Math.sin(i * 1.7));
  const model = writeSafetensors([
    { name: "w", dtype: "F32", shape: [rows, cols], data: new Uint8Array(w.buffer) },
  ]);
  // The first half of the rows does not matter, the second half matters a lot.
  const f = new Float32Array(rows * cols).map((_, i) => (i < (rows * cols) / 2 ? 0 : 100));
  const options = { qp: -32, dq: false, lambdaScale: 1 } as const;
  const plain = await compressModel(model, "safetensors", options);
  const weighted = await compressModel(model, "safetensors", {
    ...options,
    importance: new Map([["w", f]]),
  });
  assert.ok(weighted.bytes.length < plain.bytes.length, `${weighted.bytes.length}`);
  const decoded = toFloat32(
    readSafetensors((await decompressModel(weighted.bytes)).bytes).tensors[0]!,
  );
  const half = (rows * cols) / 2;
  const zeros = (from: number) => decoded.subarray(from, from + half).filter((x) => x === 0).length;
  assert.ok(zeros(0) > 0.9 * half, `${zeros(0)} zeros in the unimportant half`);
  assert.ok(zeros(half) < 0.1 * half, `${zeros(half)} zeros in the important half`);
  await assert.rejects(
    compressModel(model, "safetensors", {
      ...options,
      importance: new Map([["w", f.subarray(1)]]),
    }),
    RangeError,
  );
});
