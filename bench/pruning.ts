// Does magnitude pruning pay inside the RD search? Takes a sweep's chosen setting (its
// .sweep.json) and codes the model again with the smallest p % of every weight tensor's magnitudes
// set to zero first (no retraining), at the chosen λ and at λ = 0, reporting size and accuracy.
//
// Run: npx deno run -A cli.ts sweep ../shared/zoo/lenet300_mnist.onnx \
//        --data ../shared/zoo/mnist_test.safetensors -o /tmp/l300.nnr
//      npx deno run -A bench/pruning.ts /tmp/l300.sweep.json
import { joinModel, splitModel } from "../model/model_file.ts";
import { toFloat32 } from "../model/dtypes.ts";
import { compressModel } from "../encoder/compress_model.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { evaluateModel } from "../runtime/evaluate.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { pointRules, type SweepPoint } from "../runtime/sweep.ts";

const record = JSON.parse(await Deno.readTextFile(Deno.args[0]!));
const best: SweepPoint = record.best;
const model = await Deno.readFile(record.model);
const data = readSafetensors(await Deno.readFile(record.data)).tensors;
for (const fraction of [0, 0.3, 0.5, 0.7]) {
  const split = await splitModel(model, "onnx", { select: () => true });
  const tensors = split.tensors.map((t) => {
    if (t.shape.length < 2 || fraction === 0) return t;
    const w = toFloat32(t).slice();
    const cut = Float32Array.from(w, Math.abs).sort()[Math.floor(fraction * w.length)]!;
    for (let i = 0; i < w.length; i++) if (Math.abs(w[i]!) < cut) w[i] = 0;
    return { ...t, dtype: "F32" as const, data: new Uint8Array(w.buffer) };
  });
  const pruned = joinModel("onnx", split.skeleton, tensors);
  for (const lambda of [best.lambdaScale, 0]) {
    // At λ = 0 every tensor's λ is 0 too (nearest, or the trellis without rates).
    const rules = pointRules({
      ...best,
      lambdaScale: lambda,
      tensorLambdas: lambda ? best.tensorLambdas : {},
    });
    const { bytes } = await compressModel(pruned, "onnx", {
      qp: best.qp,
      lambdaScale: lambda,
      dq: best.dq,
      rules,
    });
    const decoded = (await decompressModel(bytes, { format: "onnx" })).bytes;
    const accuracy = (await evaluateModel(decoded, data)).accuracy!;
    console.log(
      `pruned ${100 * fraction} %, λ ${lambda}: ${bytes.length} B, ${
        (100 * accuracy).toFixed(2)
      } %`,
    );
  }
}
