// The DC-v2 sweep on the zoo's LeNet-300: the chosen file is within tolerance when measured on
// its own, the per-tensor refinement beats the best single global step, and the report is sound.
import assert from "node:assert/strict";
import { sweep, sweepSvg } from "../runtime/sweep.ts";
import { evaluateModel } from "../runtime/evaluate.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { EncodePool } from "../encoder/encode_pool.ts";

const ZOO = new URL("../../shared/zoo/", import.meta.url);

Deno.test("sweep() finds a file within 0.5 pp, smaller than any global-step point", async () => {
  const model = await Deno.readFile(new URL("lenet300_mnist.onnx", ZOO));
  const data = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", ZOO))).tensors;
  const result = await sweep(model, data, {
    maxDrop: 0.5,
    qpGrid: [-24, -18, -14, -10],
    lambdas: [1],
  });
  assert.equal(result.metric, "accuracy");
  const best = result.best!;
  assert.ok(best.ok && result.file !== null);
  assert.equal(result.file.length, best.bytes);
  // Checked independently of the sweep's own bookkeeping.
  const decoded = (await decompressModel(result.file, { format: "onnx" })).bytes;
  const measured = (await evaluateModel(decoded, data)).accuracy!;
  assert.ok(measured >= result.baseline - 0.005, `${measured} vs ${result.baseline}`);
  assert.equal(measured, best.metric);
  // Smaller than every global-step point within tolerance, and several times smaller than the model.
  const grid = result.points.filter((p) => p.pass === "grid" && p.ok);
  assert.ok(grid.length > 0 && grid.every((p) => best.bytes <= p.bytes));
  assert.ok(result.points.some((p) => p.pass === "refine" && p.ok));
  assert.ok(best.bytes * 20 < model.length, `${best.bytes} bytes`);
  // The Pareto front is sorted by size and dominated by nothing.
  for (const p of result.pareto) {
    assert.ok(!result.points.some((q) => q.bytes < p.bytes && q.metric > p.metric));
  }
  const sizes = result.pareto.map((p) => p.bytes);
  assert.deepEqual(sizes, [...sizes].sort((a, b) => a - b));
  const svg = sweepSvg(result);
  assert.equal(svg.match(/<circle /g)!.length, result.points.length + 1);
});

Deno.test("sweep() measuring two settings at a time finds the same points", async () => {
  const model = await Deno.readFile(new URL("lenet300_mnist.onnx", ZOO));
  const data = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", ZOO))).tensors;
  const options = { qpGrid: [-20, -12], lambdas: [1], refine: false } as const;
  const one = await sweep(model, data, options);
  const pool = new EncodePool(2);
  try {
    const two = await sweep(model, data, {
      ...options,
      parallel: 2,
      compress: { encode: pool.encode },
    });
    assert.deepEqual(two.points, one.points);
    assert.deepEqual(two.file, one.file);
  } finally {
    pool.close();
  }
});

Deno.test("sweep() with a metric of one's own scores every point with it, the original first", async () => {
  const model = await Deno.readFile(new URL("lenet300_mnist.onnx", ZOO));
  const data = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", ZOO))).tensors;
  let calls = 0;
  // Accuracy on the first 500 images, through the custom path.
  const subset = data.map((t) => {
    const per = t.data.length / t.shape[0]!;
    return { ...t, shape: [500, ...t.shape.slice(1)], data: t.data.slice(0, 500 * per) };
  });
  const score = async (m: Uint8Array) => {
    calls++;
    return (await evaluateModel(m, subset)).accuracy!;
  };
  const result = await sweep(model, [], {
    score,
    maxDrop: 1,
    qpGrid: [-20, -12],
    lambdas: [1],
    refine: false,
  });
  assert.equal(result.metric, "custom");
  assert.equal(result.baseline, (await evaluateModel(model, subset)).accuracy);
  assert.equal(calls, result.points.length + 1);
  assert.equal(result.evaluations, calls);
  assert.ok(result.best!.metric >= result.baseline - 0.01);
});

Deno.test("compressModel() codes a tensor at the qp and λ of its rule, and only that tensor", async () => {
  const { compressModel } = await import("../encoder/compress_model.ts");
  const model = await Deno.readFile(new URL("lenet300_mnist.onnx", ZOO));
  const plain = await compressModel(model, "onnx", { qp: -20 });
  const ruled = await compressModel(model, "onnx", {
    qp: -20,
    rules: [{ pattern: "fc1.weight", mode: { qp: -20, lambdaScale: 2 } }],
  });
  const size = (r: typeof plain, name: string) =>
    r.tensors.find((t) => t.name === name)!.codedBytes!;
  assert.ok(size(ruled, "fc1.weight") < 0.9 * size(plain, "fc1.weight"));
  assert.equal(size(ruled, "fc2.weight"), size(plain, "fc2.weight"));
  await assert.rejects(
    compressModel(model, "onnx", {
      rules: [{ pattern: "fc1*", mode: { qp: -20, lambdaScale: -1 } }],
    }),
    RangeError,
  );
});
