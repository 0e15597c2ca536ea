// DC-v1 importances estimated from activations: laid out like the weights, zero where the input
// never moves (MNIST's empty corner pixels), scaled to mean 1.
import assert from "node:assert/strict";
import { estimateImportance } from "../runtime/importance.ts";
import { readSafetensors } from "../model/safetensors.ts";

const ZOO = new URL("../../shared/zoo/", import.meta.url);

Deno.test("estimateImportance() gives each Gemm/Conv weight its input channel's mean square", async () => {
  const data = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", ZOO))).tensors;
  const mlp = await estimateImportance(
    await Deno.readFile(new URL("lenet300_mnist.onnx", ZOO)),
    data,
    { samples: 300 },
  );
  assert.deepEqual([...mlp.keys()], ["fc1.weight", "fc2.weight", "fc3.weight"]);
  const fc1 = mlp.get("fc1.weight")!;
  assert.equal(fc1.length, 300 * 784);
  // fc1 is a Gemm with transB: W [300, 784], the input pixel is the column. Pixel 0 is always 0.
  for (let row = 0; row < 300; row += 37) assert.equal(fc1[row * 784], 0);
  // A centre pixel (row 14, column 14) is often inked: the same importance down its column.
  const centre = 14 * 28 + 14;
  assert.ok(fc1[centre]! > 0);
  assert.equal(fc1[5 * 784 + centre], fc1[centre]);
  let total = 0;
  let n = 0;
  for (const f of mlp.values()) {
    for (const x of f) total += x;
    n += f.length;
  }
  assert.ok(Math.abs(total / n - 1) < 1e-3, `mean ${total / n}`);

  const cnn = await estimateImportance(
    await Deno.readFile(new URL("lenet5_mnist.onnx", ZOO)),
    data,
    { samples: 100 },
  );
  // The first convolution has one input channel: one importance for all its weights.
  const c1 = cnn.get("c1.weight")!;
  assert.ok(c1.every((x) => x === c1[0]) && c1[0]! > 0);
  assert.equal(cnn.get("f1.weight")!.length, 400000);
});
