// The planned sweep on the zoo's LeNet-300: its file holds the tolerance on samples the search
// never saw (checked here through the ordinary evaluation path), no tensor is coded twice, and a
// time budget is respected.
import assert from "node:assert/strict";
import { plannedSweep } from "../runtime/planned_sweep.ts";
import { evaluateModel } from "../runtime/evaluate.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { readSafetensors } from "../model/safetensors.ts";
import type { ModelTensor } from "../core/model_tensor.ts";

const ZOO = new URL("../../shared/zoo/", import.meta.url);
const LADDER = { qps: [-30, -26, -22, -18, -16, -14], lambdas: [0, 1] } as const;

/** Every second sample from `first`: the split of `holdout: 0.5`. */
function everyOther(data: readonly ModelTensor[], first: number): ModelTensor[] {
  return data.map((t) => {
    const n = t.shape[0]!;
    const per = t.data.length / n;
    const rows = Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === first);
    const out = new Uint8Array(rows.length * per);
    rows.forEach((r, k) => out.set(t.data.subarray(r * per, (r + 1) * per), k * per));
    return { ...t, shape: [rows.length, ...t.shape.slice(1)], data: out };
  });
}

Deno.test("plannedSweep() keeps 0.5 pp on held-out samples, coding each tensor setting once", async () => {
  const model = await Deno.readFile(new URL("lenet300_mnist.onnx", ZOO));
  const data = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", ZOO))).tensors;
  const r = await plannedSweep(model, data, { maxDrop: 0.5, ...LADDER });
  const best = r.best!;
  assert.equal(r.metric, "accuracy");
  assert.equal(r.file!.length, best.bytes);
  assert.ok(best.bytes * 10 < model.length, `${best.bytes} bytes`);
  // Held out: odd samples (the search ran on the even ones). Checked independently.
  const heldOut = everyOther(data, 1);
  const original = (await evaluateModel(model, heldOut)).accuracy!;
  const decoded = (await decompressModel(r.file!, { format: "onnx" })).bytes;
  const measured = (await evaluateModel(decoded, heldOut)).accuracy!;
  assert.equal(original, r.baseline.holdout);
  assert.equal(measured, best.holdout);
  assert.ok(measured >= original - 0.005, `${measured} vs ${original}`);
  // The search data's baseline is the even samples'.
  assert.equal(r.baseline.search, (await evaluateModel(model, everyOther(data, 0))).accuracy);
  // 3 weight tensors at 12 settings, the 3 biases at each λ (their qp is fixed), the 2 integer
  // shape constants once, and each setting off the ladder that a candidate used (the finer λ):
  // nothing twice.
  const lambdas = LADDER.lambdas.length;
  const offLadder = new Set(
    r.candidates.flatMap((c) =>
      Object.entries(c.settings)
        .filter(([, s]) => !(LADDER.lambdas as readonly number[]).includes(s.lambdaScale))
        .map(([name, s]) => `${name} ${s.qp} ${s.lambdaScale}`)
    ),
  );
  assert.equal(
    r.work.codedTensors,
    3 * LADDER.qps.length * lambdas + 3 * lambdas + 2 + offLadder.size,
  );
  assert.equal(r.work.sensitivityRuns, 3);
  assert.ok(r.work.holdoutEvaluations >= 1 && r.work.holdoutEvaluations <= 5);
  // Candidates out of tolerance were cut short or complete; the chosen one ran to the end.
  assert.ok(best.complete && best.ok);
  assert.ok(r.candidates.some((c) => !c.ok));
});

Deno.test("plannedSweep() respects a time budget", async () => {
  const model = await Deno.readFile(new URL("lenet300_mnist.onnx", ZOO));
  const data = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", ZOO))).tensors;
  const r = await plannedSweep(model, data, { ...LADDER, budgetSeconds: 0.5 });
  // Two ladder qps, one sensitivity run, the first search candidate, its confirmation.
  assert.equal(r.work.codedTensors, (3 * 2 + 3) * LADDER.lambdas.length + 2);
  assert.equal(r.work.sensitivityRuns, 1);
  assert.ok(r.work.searchEvaluations <= 2, `${r.work.searchEvaluations}`);
  await assert.rejects(plannedSweep(model, data, { holdout: 1 }), RangeError);
});
