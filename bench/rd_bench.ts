// Tensor-level rate-distortion: our DQ search (rates of the bits really coded: N flags, block-row
// resets, each trellis state's own contexts; parameter sets chosen from the coded bins; choice of
// step and λ) against the reference-convention search (CODING.md 9.2/9.4, sets by 7.3) at
// qp −38, −32, −26 and λ = 0 and 1, on the weight tensors of real models. For each reference point
// (bytes, MSE) it finds the bytes our search needs for the same MSE: the lower convex hull of our
// (bytes, MSE) points over qp' ∈ qp−2..qp+2 and λ ∈ LAMBDAS, interpolated at the reference's MSE.
// Bytes are CABAC payload bytes, each side's encoder choosing its estimator sets its own way.
//
// Run: npx deno run -A bench/rd_bench.ts [--models lenet300,lenet5,silero,isnet]
//        [--max-weights 3000000] [--json] [--write]   (--write: the table into bench/RESULTS.md)
// IS-Net needs `npx deno run -A bench/fetch_isnet.ts` first (it is skipped otherwise). A model with
// more weights than --max-weights is measured on every k-th of its tensors of at most a quarter of
// that many weights, up to that many weights.
import { parseArgs } from "node:util";
import { payloadParams } from "../core/syntax.ts";
import { encodePayload } from "../encoder/encode_payload.ts";
import { quantizeTensor } from "../encoder/quantize.ts";
import { splitModel } from "../model/model_file.ts";
import { isFloatDtype, toFloat32 } from "../model/dtypes.ts";
import { SILERO_VAD_V5 } from "../examples/silero_vad_demo.ts";
import { writeResultsSection } from "./_results_section.ts";

const root = new URL("../", import.meta.url);
const MODELS: Record<string, URL> = {
  lenet300: new URL("../shared/zoo/lenet300_mnist.onnx", root),
  lenet5: new URL("../shared/zoo/lenet5_mnist.onnx", root),
  silero: SILERO_VAD_V5,
  isnet: new URL(".cache/isnet_fp16.onnx", root),
};
const REFERENCE_QPS = [-38, -32, -26];
const REFERENCE_LAMBDAS = [0, 1];
const QP_OFFSETS = [-2, 0, 2];
const LAMBDAS = [0, 0.5, 1, 2];

interface Point {
  readonly qp: number;
  readonly lambda: number;
  readonly bytes: number;
  readonly mse: number;
}

/** Quantises and codes one tensor with DQ: payload bytes and MSE of the reconstruction. */
function measure(
  w: Float32Array,
  shape: readonly number[],
  qp: number,
  lambda: number,
  rateModel: "coded" | "reference",
): Point {
  const params = payloadParams(shape, { dqFlag: 1 });
  const q = quantizeTensor(w, qp, params, { lambdaScale: lambda, rateModel });
  // Each side's encoder chooses the parameter sets its own way (CODING.md 7.3 for the reference).
  const estimatorSets = rateModel === "coded" ? "exact" : "optimize";
  const bytes = encodePayload(q.levels, { ...params, qp: q.qp, estimatorSets }).bytes.length;
  let se = 0;
  for (let i = 0; i < w.length; i++) se += (w[i]! - q.levels[i]! * q.step) ** 2;
  return { qp, lambda, bytes, mse: se / w.length };
}

/** Our fewest bytes at MSE ≤ `mse`: on the lower convex hull of `points`, linear in between. */
function bytesAtMse(points: readonly Point[], mse: number): number {
  const sorted = [...points].sort((a, b) => a.bytes - b.bytes || a.mse - b.mse);
  const hull: Point[] = [];
  for (const p of sorted) {
    if (hull.length > 0 && p.mse >= hull[hull.length - 1]!.mse) continue;
    while (hull.length >= 2) {
      const a = hull[hull.length - 2]!;
      const b = hull[hull.length - 1]!;
      // b lies on or above the segment a–p: not on the lower hull.
      if ((b.mse - a.mse) * (p.bytes - a.bytes) >= (p.mse - a.mse) * (b.bytes - a.bytes)) {
        hull.pop();
      } else break;
    }
    hull.push(p);
  }
  // hull: bytes increasing, MSE decreasing.
  for (let i = 0; i < hull.length; i++) {
    const p = hull[i]!;
    if (p.mse <= mse) {
      if (i === 0) return p.bytes;
      const a = hull[i - 1]!;
      return a.bytes + (p.bytes - a.bytes) * (a.mse - mse) / (a.mse - p.mse);
    }
  }
  return Infinity;
}

interface Row {
  readonly model: string;
  readonly tensors: number;
  readonly weights: number;
  readonly qp: number;
  readonly lambda: number;
  readonly referenceBytes: number;
  readonly referenceMse: number;
  /** Ours at the same qp and λ (rate model alone). */
  readonly sameSettingBytes: number;
  readonly sameSettingMse: number;
  /** Ours at the reference's MSE, per tensor, summed. */
  readonly equalMseBytes: number;
  readonly savedPercent: number;
  /** Mean over the tensors of each one's saving. */
  readonly meanTensorSavedPercent: number;
}

async function main(): Promise<void> {
  const args = parseArgs({
    args: Deno.args,
    options: {
      models: { type: "string", default: Object.keys(MODELS).join(",") },
      "max-weights": { type: "string", default: "3000000" },
      json: { type: "boolean", default: false },
      write: { type: "boolean", default: false },
    },
  });
  const maxWeights = Number(args.values["max-weights"]);

  const rows: Row[] = [];
  for (const name of args.values.models.split(",")) {
    const url = MODELS[name];
    if (!url) throw new Error(`Unknown model ${name}: one of ${Object.keys(MODELS)}`);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(url);
    } catch {
      console.error(`${name}: ${url.pathname} missing, skipped`);
      continue;
    }
    const split = await splitModel(bytes, "onnx", {
      select: (t) =>
        isFloatDtype(t.dtype) && t.shape.length >= 2 && t.shape.reduce((a, b) => a * b, 1) >= 256 ||
        "not a weight",
    });
    let tensors = split.tensors.map((t) => ({ name: t.name, shape: t.shape, w: toFloat32(t) }));
    const total = tensors.reduce((s, t) => s + t.w.length, 0);
    if (total > maxWeights) {
      // Every k-th tensor of those up to a quarter of the budget, so that early, middle and late
      // layers are all represented.
      const small = tensors.filter((t) => t.w.length <= maxWeights / 4);
      const k = Math.max(1, Math.ceil(small.reduce((s, t) => s + t.w.length, 0) / maxWeights));
      const picked: typeof tensors = [];
      let sum = 0;
      for (let i = 0; i < small.length && sum < maxWeights; i += k) {
        picked.push(small[i]!);
        sum += small[i]!.w.length;
      }
      tensors = picked;
    }
    const weights = tensors.reduce((s, t) => s + t.w.length, 0);
    console.error(`${name}: ${tensors.length} tensors, ${weights} weights (of ${total})`);
    const started = performance.now();
    for (const qp of REFERENCE_QPS) {
      // Our points per tensor, shared by both reference λ.
      const ours = tensors.map((t) =>
        QP_OFFSETS.flatMap((o) => LAMBDAS.map((l) => measure(t.w, t.shape, qp + o, l, "coded")))
      );
      for (const lambda of REFERENCE_LAMBDAS) {
        let referenceBytes = 0;
        let referenceSe = 0;
        let sameBytes = 0;
        let sameSe = 0;
        let equalBytes = 0;
        let savedSum = 0;
        tensors.forEach((t, i) => {
          const ref = measure(t.w, t.shape, qp, lambda, "reference");
          const same = ours[i]!.find((p) => p.qp === qp && p.lambda === lambda)!;
          const equal = bytesAtMse(ours[i]!, ref.mse);
          referenceBytes += ref.bytes;
          referenceSe += ref.mse * t.w.length;
          sameBytes += same.bytes;
          sameSe += same.mse * t.w.length;
          equalBytes += equal;
          savedSum += 1 - equal / ref.bytes;
        });
        rows.push({
          model: name,
          tensors: tensors.length,
          weights,
          qp,
          lambda,
          referenceBytes,
          referenceMse: referenceSe / weights,
          sameSettingBytes: sameBytes,
          sameSettingMse: sameSe / weights,
          equalMseBytes: Math.round(equalBytes),
          savedPercent: 100 * (1 - equalBytes / referenceBytes),
          meanTensorSavedPercent: 100 * savedSum / tensors.length,
        });
      }
      console.error(`${name} qp ${qp}: ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
  }

  const lines = [
    "| model (tensors, weights) | qp | ref λ | reference B | reference MSE | ours same qp, λ: B | MSE | ours at equal MSE: B | saved | mean per tensor |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.model} (${r.tensors}, ${r.weights}) | ${r.qp} | ${r.lambda} | ${r.referenceBytes} | ${
        r.referenceMse.toExponential(3)
      } | ${r.sameSettingBytes} | ${r.sameSettingMse.toExponential(3)} | ${r.equalMseBytes} | ${
        r.savedPercent.toFixed(2)
      } % | ${r.meanTensorSavedPercent.toFixed(2)} % |`
    ),
    "",
    ...[...Map.groupBy(rows, (r) => r.model)].map(([model, rs]) =>
      `- ${model}: mean saving over the ${rs.length} reference points ${
        (rs.reduce((s, r) => s + r.savedPercent, 0) / rs.length).toFixed(2)
      } %`
    ),
  ].join("\n");
  if (args.values.json) console.log(JSON.stringify(rows, null, 2));
  else console.log(lines);
  if (args.values.write) {
    await writeResultsSection(
      "## Tensor level: our RD search against the reference convention at equal MSE",
      `Generated by \`npx deno run -A bench/rd_bench.ts --models ${args.values.models} --write\`; the
method is in the header of bench/rd_bench.ts.\n\n${lines}`,
    );
  }
}

// `deno task bench` (deno bench) loads every *_bench.ts file: run only when started directly.
if (import.meta.main) await main();
