// Whole-model compression: one thread versus a pool of 1 and 2 Web Workers, on two real
// multi-tensor models (silero VAD v5 from npm: 345 tensors, 2.3 MB; the zoo's LeNet-5: 1.7 MB).
import { compressModel } from "../encoder/compress_model.ts";
import { EncodePool } from "../encoder/encode_pool.ts";
import { SILERO_VAD_V5 } from "../examples/silero_vad_demo.ts";

const models = {
  "silero VAD v5": await Deno.readFile(SILERO_VAD_V5),
  "LeNet-5": await Deno.readFile(new URL("../../shared/zoo/lenet5_mnist.onnx", import.meta.url)),
};
const pools = { 1: new EncodePool(1), 2: new EncodePool(2) };
// Let the workers load their modules before timing.
for (const pool of Object.values(pools)) {
  await compressModel(models["LeNet-5"], "onnx", { encode: pool.encode });
}

for (const [name, model] of Object.entries(models)) {
  Deno.bench({
    name: `compress ${name}, this thread`,
    group: name,
    baseline: true,
    fn: async () => void await compressModel(model, "onnx"),
  });
  for (const [n, pool] of Object.entries(pools)) {
    Deno.bench({
      name: `compress ${name}, ${n} worker${n === "1" ? "" : "s"}`,
      group: name,
      fn: async () => void await compressModel(model, "onnx", { encode: pool.encode }),
    });
  }
}

globalThis.addEventListener("unload", () => Object.values(pools).forEach((p) => p.close()));
