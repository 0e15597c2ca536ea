// The sweep at scale: time, evaluations and size of the planned sweep (runtime/planned_sweep.ts,
// the CLI's default) on the zoo LeNets, a small ViT and IS-Net, beside the grid sweep
// (runtime/sweep.ts, `--method grid`) where that is affordable.
//
// - LeNets: the zoo's 2,004 MNIST digits, 0.5 pp of top-1 accuracy; the planned sweep searches on
//   half and confirms on the other half; the grid sweep searches and judges on all of them.
// - ViT: 4 layers, width 96, trained by bench/train_vit.py (Fashion-MNIST, 10,000 test images), with
//   and without DC-v1 importances (`--importance data`); skipped if .cache/vit_fmnist.onnx is missing.
// - IS-Net (44 M weights, bench/fetch_isnet.ts): output SNR ≥ 20 dB of the mask on six real
//   photographs (bench/isnet_images.py: scikit-image's public-domain samples, 1024 × 1024), searched
//   on three and confirmed on the other three, with a coarser ladder and a 14-minute budget;
//   skipped if .cache/isnet_fp16.onnx or .cache/isnet_images.safetensors is missing.
//
// Every file is checked again through `evaluateModel()` on the held-out data.
// Run: npx deno run -A bench/sweep_bench.ts [--models lenet300,lenet5,vit,isnet] [--grid] [--write]
//   [--save DIR]
//   --grid: also run the grid sweep on the LeNets (and the ViT); --write: table into RESULTS.md;
//   --save: write each planned sweep's file to DIR/<model>.sweep.nnr (bench/cold_start.ts serves
//   .cache/cold_start/isnet.sweep.nnr).
import { parseArgs } from "node:util";
import type { ModelTensor } from "../core/model_tensor.ts";
import { EncodePool } from "../encoder/encode_pool.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { evaluateModel, metricValue } from "../runtime/evaluate.ts";
import { estimateImportance } from "../runtime/importance.ts";
import {
  heldOut,
  plannedSweep,
  type PlannedSweepOptions,
  selectSamples,
} from "../runtime/planned_sweep.ts";
import { sweep } from "../runtime/sweep.ts";
import { writeResultsSection } from "./_results_section.ts";
import { exists } from "./_common.ts";

const root = new URL("../", import.meta.url);
const zoo = new URL("../shared/zoo/", root);
const cache = new URL(".cache/", root);
const workers = navigator.hardwareConcurrency;

interface Row {
  readonly model: string;
  readonly method: string;
  readonly bytes: number;
  readonly originalBytes: number;
  readonly metric: string;
  readonly chosenOn: string;
  readonly unseen: string;
  readonly evaluations: string;
  readonly seconds: number;
}
const rows: Row[] = [];
/** `--save DIR`: where the plain planned sweep's files go, as `<model>.sweep.nnr`. */
let saveDir: string | null = null;
const pct = (v: number) => `${(100 * v).toFixed(2)} %`;

async function planned(
  name: string,
  model: Uint8Array,
  data: readonly ModelTensor[],
  options: PlannedSweepOptions,
  label = "planned",
): Promise<void> {
  const pool = new EncodePool(workers);
  try {
    const r = await plannedSweep(model, data, {
      ...options,
      compress: { ...options.compress, encode: pool.encode },
      onProgress: (t) => console.error(`  ${name}: ${t}`),
    });
    const b = r.best;
    if (!b || !r.file) {
      const confirmed = r.candidates.filter((c) => c.holdout !== undefined);
      console.error(
        `${name} ${label}: no file; held out ${confirmed.map((c) => c.holdout!.toFixed(2))} ` +
          `for ${confirmed.map((c) => c.bytes)} B, ${r.seconds.toFixed(0)} s`,
      );
      return;
    }
    // Independent check on the held-out samples (every second one with holdout 0.5).
    const share = options.holdout ?? 0.5;
    const unseen = selectSamples(data, (i) => heldOut(i, share));
    const decoded = (await decompressModel(r.file, { format: "onnx" })).bytes;
    const reference = r.metric === "accuracy" ? {} : { reference: model };
    const e = await evaluateModel(decoded, unseen, {
      backend: "auto",
      batchSize: options.batchSize ?? 256,
      ...reference,
    });
    const value = metricValue(e, r.metric);
    const show = (v: number) => (r.metric === "snr" ? `${v.toFixed(1)} dB` : pct(v));
    rows.push({
      model: name,
      method: label,
      bytes: b.bytes,
      originalBytes: r.originalBytes,
      metric: r.metric,
      chosenOn: `${show(r.baseline.search)} → ${show(b.search)}`,
      unseen: `${show(r.baseline.holdout)} → ${show(value)}`,
      evaluations:
        `${r.work.searchEvaluations} + ${r.work.holdoutEvaluations} (+ ${r.work.sensitivityRuns} sensitivity runs, ${r.work.codedTensors} tensors coded)`,
      seconds: r.seconds,
    });
    console.error(`${name} ${label}: ${b.bytes} B, ${r.seconds.toFixed(0)} s`);
    if (saveDir !== null && label === "planned") {
      await Deno.writeFile(`${saveDir}/${name}.sweep.nnr`, r.file);
    }
  } finally {
    pool.close();
  }
}

async function grid(name: string, model: Uint8Array, data: readonly ModelTensor[]): Promise<void> {
  const pool = new EncodePool(workers);
  try {
    const r = await sweep(model, data, {
      compress: { encode: pool.encode },
      parallel: workers,
      backend: "auto",
    });
    const b = r.best!;
    rows.push({
      model: name,
      method: "grid (all data)",
      bytes: b.bytes,
      originalBytes: r.originalBytes,
      metric: r.metric,
      chosenOn: `${pct(r.baseline)} → ${pct(b.metric)}`,
      unseen: "none unseen",
      evaluations: `${r.evaluations}`,
      seconds: r.seconds,
    });
    console.error(`${name} grid: ${b.bytes} B, ${r.seconds.toFixed(0)} s`);
  } finally {
    pool.close();
  }
}

async function main(): Promise<void> {
  const args = parseArgs({
    args: Deno.args,
    options: {
      models: { type: "string", default: "lenet300,lenet5,vit,isnet" },
      grid: { type: "boolean", default: false },
      write: { type: "boolean", default: false },
      save: { type: "string" },
    },
  });
  saveDir = args.values.save ?? null;
  const want = new Set(args.values.models.split(","));
  const mnist =
    readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", zoo))).tensors;
  for (const name of ["lenet300", "lenet5"]) {
    if (!want.has(name)) continue;
    const model = await Deno.readFile(new URL(`${name}_mnist.onnx`, zoo));
    await planned(name, model, mnist, {});
    if (args.values.grid) await grid(name, model, mnist);
  }
  if (want.has("vit")) {
    const onnx = new URL("vit_fmnist.onnx", cache);
    if (!(await exists(onnx))) console.error("vit: run bench/train_vit.py first; skipped");
    else {
      const model = await Deno.readFile(onnx);
      const data = readSafetensors(await Deno.readFile(new URL("fmnist_test.safetensors", cache)))
        .tensors;
      await planned("vit", model, data, {});
      const started = performance.now();
      const importance = await estimateImportance(
        model,
        selectSamples(data, (i) => !heldOut(i, 0.5)),
      );
      console.error(`vit: importances in ${((performance.now() - started) / 1000).toFixed(0)} s`);
      await planned("vit", model, data, { compress: { importance } }, "planned, DC-v1 importances");
      if (args.values.grid) await grid("vit", model, data);
    }
  }
  if (want.has("isnet")) {
    const onnx = new URL("isnet_fp16.onnx", cache);
    const images = new URL("isnet_images.safetensors", cache);
    if (!(await exists(onnx)) || !(await exists(images))) {
      console.error("isnet: run bench/fetch_isnet.ts and bench/isnet_images.py first; skipped");
    } else {
      const data = readSafetensors(await Deno.readFile(images)).tensors;
      await planned("isnet", await Deno.readFile(onnx), data, {
        metric: "snr",
        minSnrDb: 20,
        batchSize: 1,
        sensitivitySamples: 1,
        qps: [-36, -32, -28, -24, -20, -16, -12],
        lambdas: [0],
        budgetSeconds: 840,
      });
    }
  }

  const table = [
    "| model | method | original | file | ratio | metric | chosen on: original → file | unseen: original → file | evaluations | time |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.model} | ${r.method} | ${r.originalBytes} | ${r.bytes} | ${
        (r.originalBytes / r.bytes).toFixed(1)
      }× | ${r.metric} | ${r.chosenOn} | ${r.unseen} | ${r.evaluations} | ${
        r.seconds.toFixed(0)
      } s |`
    ),
  ].join("\n");
  console.log(table);
  if (args.values.write) {
    await writeResultsSection(
      "## The sweep at scale",
      `Generated by \`npx deno run -A bench/sweep_bench.ts${
        args.values.grid ? " --grid" : ""
      } --write\` on ${
        new Date().toISOString().slice(0, 10)
      } (2-core VM, onnxruntime-node). The method is in the header of bench/sweep_bench.ts.\n\n${table}`,
    );
  }
}

// `deno task bench` (deno bench) loads every *_bench.ts file: run only when started directly.
if (import.meta.main) await main();
