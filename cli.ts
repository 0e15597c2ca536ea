/**
 * Command-line interface. The only module that touches `Deno.*`.
 *
 * ```sh
 * deno run -A cli.ts compress <model.onnx|model.safetensors> -o <out.nnr> [options]
 * deno run -A cli.ts decompress <file.nnr> -o <model.onnx|model.safetensors>
 * deno run -A cli.ts inspect <file.nnr> [--json]
 * deno run -A cli.ts eval <model.onnx|file.nnr> --data <data.safetensors> [--reference <model>]
 * deno run -A cli.ts conformance <suite-dir> [--json]
 * deno run -A cli.ts demo [silero_vad_v5.onnx] [--json]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { basename, dirname, isAbsolute, join, normalize, resolve } from "node:path";
import { type RdSide, runConformance } from "./conformance/run.ts";
import { runDemo, SILERO_VAD_V5 } from "./examples/silero_vad_demo.ts";
import { DecodeError } from "./core/errors.ts";
import { qpForStep } from "./core/step_size.ts";
import { readNnrFile } from "./decoder/nnr_file.ts";
import { decompressModel } from "./decoder/decompress_model.ts";
import { compressModel, type TensorMode, type TensorRule } from "./encoder/compress_model.ts";
import { EncodePool } from "./encoder/encode_pool.ts";
import { detectModelFormat, type ModelFormat } from "./model/model_file.ts";
import { elementCount, toFloat32 } from "./model/dtypes.ts";
import { DTYPE_BYTES } from "./core/model_tensor.ts";
import { readSafetensors } from "./model/safetensors.ts";
import { evaluateModel, metricValue } from "./runtime/evaluate.ts";
import { type DataMetric, sweep, sweepSvg } from "./runtime/sweep.ts";
import { plannedSweep } from "./runtime/planned_sweep.ts";
import type { Backend } from "./runtime/onnx_runtime.ts";
import { estimateImportance } from "./runtime/importance.ts";

const USAGE = `Usage:
  deno run -A cli.ts compress <model.onnx|.safetensors> -o <out.nnr> [options]
      --qp N              qp of weights (default -38)      --step X      step size instead of --qp
      --qp-density D      0..7 (default 2)                 --nonweight-qp N   qp of 1-D tensors (-75)
      --dq | --no-dq      dependent quantization (on)      --lambda L    RD lambda_scale (0)
      --scan S            scan order 0..4, auto (auto)     --workers N   parallel encoders (cores)
      --rule PAT=MODE     per tensor: MODE weight|nonweight|int|raw|qp:N (first match wins)
      --importance F      safetensors of per-weight importances by tensor name (DC-v1; needs --lambda)
  deno run -A cli.ts decompress <file.nnr> -o <model.onnx|model.safetensors>
  deno run -A cli.ts inspect <file.nnr>
  deno run -A cli.ts eval <model.onnx|file.nnr> --data <data.safetensors> [--reference <model>]
      [--batch N]         top-1 accuracy with labels "y"; agreement and output SNR vs --reference
      [--backend auto|native|wasm]  onnxruntime-node where it loads (auto), else onnxruntime-web
  deno run -A cli.ts sweep <model.onnx> --data <data.safetensors> -o <out.nnr>
      [--max-drop 0.5] [--metric accuracy|agreement|snr] [--min-snr dB] [--workers N]
      [--holdout 0.5]     share of the data held out to confirm the result (planned method)
      [--budget-seconds S] [--backend auto|native|wasm] [--method planned|grid]
      [--importance data|F] DC-v1: importances estimated from the data's activations, or a file
                          smallest file within tolerance; writes <out>.sweep.json (and, grid, .svg)
  deno run -A cli.ts conformance <suite-dir>          check a test-vector suite bit-exactly
  deno run -A cli.ts demo [silero_vad_v5.onnx]        compress silero VAD, compare outputs
Common: --json (machine-readable stdout), --force (overwrite the output)`;

/** A user error: printed as one line, exit code 2. */
class UsageError extends Error {}

const encoder = new TextEncoder();
/** Progress on stderr: rewritten in place on a terminal, else at most one line a second. */
function progress(): (text: string) => void {
  const tty = Deno.stderr.isTerminal();
  let last = 0;
  return (text) => {
    const now = Date.now();
    if (tty) Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${text}`));
    else if (now - last >= 1000) console.error(text);
    last = now;
  };
}
function endProgress(): void {
  if (Deno.stderr.isTerminal()) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
}

/** Writes `bytes` to `path` through a temporary file in the same folder and a rename. */
async function writeOutput(path: string, bytes: Uint8Array, force: boolean): Promise<void> {
  if (!force) {
    try {
      await Deno.lstat(path);
      throw new UsageError(`${path} exists: use --force to overwrite it`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const temp = join(dirname(path), `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  try {
    await Deno.writeFile(temp, bytes);
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
}

function formatFromName(path: string): ModelFormat {
  if (path.endsWith(".onnx")) return "onnx";
  if (path.endsWith(".safetensors")) return "safetensors";
  throw new UsageError(`Cannot tell the model format of ${path}: name it .onnx or .safetensors`);
}

/**
 * `--qp -24` as `--qp=-24`: parseArgs takes a value starting with "-" for an option, and qps are
 * usually negative.
 */
function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    if (a.startsWith("--") && !a.includes("=") && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function integer(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} needs an integer, got ${text}`);
  return n;
}

function parseRule(text: string): TensorRule {
  const at = text.lastIndexOf("=");
  const pattern = text.slice(0, at);
  const mode = text.slice(at + 1);
  if (at <= 0) throw new UsageError(`--rule needs PATTERN=MODE, got ${text}`);
  if (mode.startsWith("qp:")) return { pattern, mode: { qp: integer("rule qp", mode.slice(3))! } };
  if (!["weight", "nonweight", "int", "raw"].includes(mode)) {
    throw new UsageError(`--rule mode must be weight, nonweight, int, raw or qp:N, got ${mode}`);
  }
  return { pattern, mode: mode as TensorMode };
}

function size(n: number): string {
  return n >= 1e6
    ? `${(n / 1e6).toFixed(2)} MB`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(1)} kB`
    : `${n} B`;
}

async function compress(args: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args: joinNegativeValues(args),
    options: {
      output: { type: "string", short: "o" },
      qp: { type: "string" },
      step: { type: "string" },
      "qp-density": { type: "string" },
      "nonweight-qp": { type: "string" },
      dq: { type: "boolean" },
      "no-dq": { type: "boolean" },
      lambda: { type: "string" },
      scan: { type: "string" },
      workers: { type: "string" },
      rule: { type: "string", multiple: true },
      importance: { type: "string" },
      json: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  const input = positionals[0];
  if (input === undefined || v.output === undefined) {
    throw new UsageError("compress needs a model and -o <out.nnr>");
  }
  if (v.qp !== undefined && v.step !== undefined) throw new UsageError("Give --qp or --step");
  if (v.dq && v["no-dq"]) throw new UsageError("Give --dq or --no-dq, not both");
  const qpDensity = integer("qp-density", v["qp-density"]) ?? 2;
  let qp = integer("qp", v.qp);
  if (v.step !== undefined) {
    const step = Number(v.step);
    if (!(step > 0 && Number.isFinite(step))) throw new UsageError(`Bad --step ${v.step}`);
    qp = qpForStep(step, qpDensity);
  }
  const lambda = v.lambda === undefined ? undefined : Number(v.lambda);
  if (lambda !== undefined && !(lambda >= 0)) throw new UsageError(`Bad --lambda ${v.lambda}`);
  const workers = integer("workers", v.workers) ?? navigator.hardwareConcurrency;
  if (workers < 1) throw new UsageError(`--workers must be at least 1`);
  const model = await Deno.readFile(input);
  const folder = dirname(resolve(input));
  const importance = v.importance === undefined ? undefined : new Map(
    readSafetensors(await Deno.readFile(v.importance)).tensors.map((t) => [t.name, toFloat32(t)]),
  );
  const show = progress();
  const started = performance.now();
  const pool = workers > 1 ? new EncodePool(workers) : null;
  let result;
  try {
    result = await compressModel(model, detectModelFormat(model), {
      ...(qp === undefined ? {} : { qp }),
      qpDensity,
      ...(v["nonweight-qp"] === undefined
        ? {}
        : { nonweightQp: integer("nonweight-qp", v["nonweight-qp"])! }),
      ...(v["no-dq"] ? { dq: false } : {}),
      ...(lambda === undefined ? {} : { lambdaScale: lambda }),
      ...(v.scan === undefined
        ? {}
        : { scanOrder: v.scan === "auto" ? "auto" : integer("scan", v.scan)! }),
      rules: (v.rule ?? []).map(parseRule),
      ...(importance ? { importance } : {}),
      readExternal: (location) => {
        const path = normalize(location);
        if (isAbsolute(path) || path.startsWith("..")) {
          throw new DecodeError("corrupt", `External data path ${location} leaves the folder`, 0);
        }
        return Deno.readFile(join(folder, path));
      },
      ...(pool ? { encode: pool.encode } : {}),
      onProgress: (done, total, name) => show(`coding tensor ${done}/${total} ${name}`),
    });
  } finally {
    pool?.close();
    endProgress();
  }
  await writeOutput(v.output, result.bytes, v.force);
  const seconds = (performance.now() - started) / 1000;
  const ratio = result.inputBytes / result.bytes.length;
  if (v.json) {
    console.log(JSON.stringify({
      input: input,
      output: v.output,
      inputBytes: result.inputBytes,
      outputBytes: result.bytes.length,
      ratio,
      seconds,
      workers,
      tensors: result.tensors,
    }));
  } else {
    const coded = result.tensors.filter((t) => t.mode !== "raw").length;
    console.log(
      `${input} (${size(result.inputBytes)}) -> ${v.output} (${size(result.bytes.length)}): ` +
        `${ratio.toFixed(2)}x, ${coded} tensors coded, ${result.tensors.length - coded} left ` +
        `raw, ${seconds.toFixed(2)} s with ${workers} worker${workers > 1 ? "s" : ""}`,
    );
  }
  return 0;
}

async function decompress(args: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args,
    options: {
      output: { type: "string", short: "o" },
      json: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  const input = positionals[0];
  if (input === undefined || v.output === undefined) {
    throw new UsageError("decompress needs an NNR file and -o <model.onnx|model.safetensors>");
  }
  const format = formatFromName(v.output);
  const started = performance.now();
  const { bytes, file } = await decompressModel(await Deno.readFile(input), { format });
  await writeOutput(v.output, bytes, v.force);
  const seconds = (performance.now() - started) / 1000;
  if (v.json) {
    console.log(JSON.stringify({
      input,
      output: v.output,
      format,
      outputBytes: bytes.length,
      tensors: file.tensors.length,
      seconds,
    }));
  } else {
    console.log(
      `${input} -> ${v.output} (${format}, ${size(bytes.length)}): ${file.tensors.length} ` +
        `tensors decoded in ${seconds.toFixed(2)} s`,
    );
  }
  return 0;
}

async function inspect(args: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args,
    options: { json: { type: "boolean", default: false } },
    allowPositionals: true,
  });
  const input = positionals[0];
  if (input === undefined) throw new UsageError("inspect needs an NNR file");
  const bytes = await Deno.readFile(input);
  const file = await readNnrFile(bytes);
  const rows = file.tensors.map((t) => {
    const n = elementCount(t.shape);
    const original = n * DTYPE_BYTES[t.dtype];
    return {
      name: t.name,
      shape: t.shape,
      dtype: t.dtype,
      coding: t.params.payloadType === "int"
        ? "int"
        : `${t.params.dqFlag ? "dq" : "urq"} scan${t.params.scanOrder}`,
      qp: t.qp,
      step: t.step,
      bytes: t.unitBytes,
      bitsPerWeight: (8 * t.unitBytes) / n,
      ratio: original / t.unitBytes,
      originalBytes: original,
    };
  });
  const tensorBytes = rows.reduce((s, r) => s + r.bytes, 0);
  const originalTensorBytes = rows.reduce((s, r) => s + r.originalBytes, 0);
  const modelBytes = file.model?.skeleton.length ?? 0;
  const totals = {
    fileBytes: bytes.length,
    tensors: rows.length,
    weights: rows.reduce((s, r) => s + elementCount(r.shape), 0),
    tensorBytes,
    originalTensorBytes,
    model: file.model ? { format: file.model.format, skeletonBytes: modelBytes } : null,
    ratio: (originalTensorBytes + modelBytes) / bytes.length,
    tensorRatio: originalTensorBytes / tensorBytes,
  };
  if (v.json) {
    console.log(JSON.stringify({ file: input, tensors: rows, totals }));
    return 0;
  }
  const table = [
    ["name", "shape", "dtype", "coding", "qp", "step", "bytes", "bits/w", "ratio"],
    ...rows.map((r) => [
      r.name,
      r.shape.join("x"),
      r.dtype,
      r.coding,
      r.qp === null ? "-" : String(r.qp),
      r.step === null ? "-" : r.step.toPrecision(4),
      String(r.bytes),
      r.bitsPerWeight.toFixed(3),
      `${r.ratio.toFixed(2)}x`,
    ]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  for (const row of table) {
    console.log(
      row.map((cell, c) => c >= 4 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))
        .join("  ").trimEnd(),
    );
  }
  console.log(
    `total: ${totals.tensors} tensors, ${totals.weights} weights, ${size(tensorBytes)} coded ` +
      `from ${size(originalTensorBytes)} (${totals.tensorRatio.toFixed(2)}x)` +
      (file.model ? `; ${file.model.format} skeleton ${size(modelBytes)}` : "; no model") +
      `; file ${size(bytes.length)}, ratio ${totals.ratio.toFixed(2)}x`,
  );
  return 0;
}

/** Reads a model for evaluation: an ONNX file, or an NNR file that carries an ONNX model. */
async function readOnnxOrNnr(path: string): Promise<Uint8Array> {
  const bytes = await Deno.readFile(path);
  // An NNR file starts with a 4-byte start unit: size 4, type 0.
  const nnr = bytes.length > 4 && bytes[0] === 0 && bytes[1] === 4 && bytes[2]! >> 2 === 0;
  return nnr ? (await decompressModel(bytes, { format: "onnx" })).bytes : bytes;
}

function checkedBackend(text: string | undefined): Backend {
  if (text !== "auto" && text !== "native" && text !== "wasm") {
    throw new UsageError("--backend must be auto, native or wasm");
  }
  return text;
}

async function evaluate(args: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args,
    options: {
      data: { type: "string" },
      reference: { type: "string" },
      batch: { type: "string" },
      backend: { type: "string", default: "auto" },
      json: { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  const input = positionals[0];
  if (input === undefined || v.data === undefined) {
    throw new UsageError("eval needs a model (.onnx or .nnr) and --data <file.safetensors>");
  }
  const backend = checkedBackend(v.backend);
  const batchSize = integer("batch", v.batch);
  if (batchSize !== undefined && batchSize < 1) throw new UsageError("--batch must be positive");
  const model = await readOnnxOrNnr(input);
  const reference = v.reference === undefined ? undefined : await readOnnxOrNnr(v.reference);
  const data = readSafetensors(await Deno.readFile(v.data)).tensors;
  const show = progress();
  const started = performance.now();
  let result;
  try {
    result = await evaluateModel(model, data, {
      backend,
      ...(reference ? { reference } : {}),
      ...(batchSize ? { batchSize } : {}),
      onProgress: (done, total) => show(`evaluating ${done}/${total} samples`),
    });
  } finally {
    endProgress();
  }
  const seconds = (performance.now() - started) / 1000;
  if (v.json) {
    console.log(JSON.stringify({ model: input, data: v.data, ...result, backend, seconds }));
    return 0;
  }
  const parts = [`${result.samples} samples`];
  if (result.accuracy !== null) {
    parts.push(`top-1 accuracy ${(100 * result.accuracy).toFixed(2)} %`);
  }
  if (result.agreement !== null) {
    parts.push(`top-1 agreement ${(100 * result.agreement).toFixed(2)} %`);
    parts.push(`output SNR ${result.snrDb!.toFixed(1)} dB`);
  }
  if (result.accuracy === null && result.agreement === null) {
    parts.push('no labels ("y") and no --reference: nothing to score');
  }
  console.log(`${input}: ${parts.join(", ")} (${seconds.toFixed(2)} s)`);
  return 0;
}

async function sweepCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args: joinNegativeValues(args),
    options: {
      data: { type: "string" },
      output: { type: "string", short: "o" },
      "max-drop": { type: "string" },
      metric: { type: "string" },
      "min-snr": { type: "string" },
      importance: { type: "string" },
      workers: { type: "string" },
      method: { type: "string", default: "planned" },
      holdout: { type: "string" },
      "budget-seconds": { type: "string" },
      backend: { type: "string", default: "auto" },
      json: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  const input = positionals[0];
  if (input === undefined || v.data === undefined || v.output === undefined) {
    throw new UsageError("sweep needs a model, --data <file.safetensors> and -o <out.nnr>");
  }
  const metric = v.metric as DataMetric | undefined;
  if (metric !== undefined && !["accuracy", "agreement", "snr"].includes(metric)) {
    throw new UsageError("--metric must be accuracy, agreement or snr");
  }
  if (v.method !== "planned" && v.method !== "grid") {
    throw new UsageError("--method must be planned or grid");
  }
  const backend = checkedBackend(v.backend);
  const maxDrop = v["max-drop"] === undefined ? 0.5 : Number(v["max-drop"]);
  if (!(maxDrop >= 0)) throw new UsageError(`Bad --max-drop ${v["max-drop"]}`);
  const minSnr = v["min-snr"] === undefined ? undefined : Number(v["min-snr"]);
  const holdout = v.holdout === undefined ? undefined : Number(v.holdout);
  if (holdout !== undefined && !(holdout >= 0 && holdout < 1)) {
    throw new UsageError(`Bad --holdout ${v.holdout}: a fraction in [0, 1)`);
  }
  const budget = v["budget-seconds"] === undefined ? undefined : Number(v["budget-seconds"]);
  if (budget !== undefined && !(budget > 0)) {
    throw new UsageError(`Bad --budget-seconds ${v["budget-seconds"]}`);
  }
  const workers = integer("workers", v.workers) ?? navigator.hardwareConcurrency;
  const base = v.output.replace(/\.nnr$/, "");
  const outputs = [
    v.output,
    `${base}.sweep.json`,
    ...(v.method === "grid" ? [`${base}.sweep.svg`] : []),
  ];
  if (!v.force) {
    for (const path of outputs) {
      if (await Deno.lstat(path).then(() => true, () => false)) {
        throw new UsageError(`${path} exists: use --force to overwrite it`);
      }
    }
  }
  const model = await readOnnxOrNnr(input);
  const data = readSafetensors(await Deno.readFile(v.data)).tensors;
  // DC-v1: importances from a file, or estimated from the data's activations.
  const importance = v.importance === undefined
    ? undefined
    : v.importance === "data"
    ? await estimateImportance(model, data)
    : new Map(
      readSafetensors(await Deno.readFile(v.importance)).tensors.map((t) => [t.name, toFloat32(t)]),
    );
  const show = progress();
  const pool = workers > 1 ? new EncodePool(workers) : null;
  const compress = {
    ...(pool ? { encode: pool.encode } : {}),
    ...(importance ? { importance } : {}),
  };
  const started = performance.now();
  let outcome: {
    file: Uint8Array;
    metric: DataMetric;
    record: Record<string, unknown>;
    line: string;
  };
  try {
    outcome = v.method === "planned" ? await runPlanned() : await runGrid();
  } finally {
    pool?.close();
    endProgress();
  }
  async function runPlanned() {
    const r = await plannedSweep(model, data, {
      ...(metric ? { metric } : {}),
      maxDrop,
      ...(minSnr === undefined ? {} : { minSnrDb: minSnr }),
      ...(holdout === undefined ? {} : { holdout }),
      ...(budget === undefined ? {} : { budgetSeconds: budget }),
      backend,
      compress,
      onProgress: show,
    });
    if (!r.file || !r.best) {
      throw new RangeError(`No candidate keeps the ${r.metric} within tolerance on held-out data`);
    }
    const b = r.best;
    return {
      file: r.file,
      // No `score` was given, so the metric is one measured on the data.
      metric: r.metric as DataMetric,
      record: { ...r, file: undefined, ratio: r.originalBytes / b.bytes },
      line: `best ${b.bytes} B (${(r.originalBytes / b.bytes).toFixed(1)}x); ${r.metric} ` +
        `${b.search.toFixed(4)} on the search data (original ${r.baseline.search.toFixed(4)}), ` +
        `${b.holdout!.toFixed(4)} held out (original ${r.baseline.holdout.toFixed(4)}); ` +
        `${r.work.searchEvaluations} + ${r.work.holdoutEvaluations} evaluations, ` +
        `${r.work.sensitivityRuns} sensitivity runs, ${r.work.codedTensors} tensors coded, ` +
        `${r.backend} runtime, ${r.seconds.toFixed(1)} s`,
    };
  }
  async function runGrid() {
    const r = await sweep(model, data, {
      ...(metric ? { metric } : {}),
      maxDrop,
      ...(minSnr === undefined ? {} : { minSnrDb: minSnr }),
      backend,
      compress,
      ...(pool ? { parallel: workers } : {}),
      onPoint: (p, i) =>
        show(
          `point ${i + 1} (${p.pass} qp ${p.qp} λ ${p.lambdaScale} ${p.dq ? "DQ" : "URQ"}): ` +
            `${p.bytes} B, ${p.metric.toFixed(4)}${p.ok ? "" : " (out of tolerance)"}`,
        ),
    });
    if (!r.file || !r.best) {
      throw new RangeError(`No setting keeps the ${r.metric} within tolerance`);
    }
    await writeOutput(outputs[2]!, encoder.encode(sweepSvg(r)), true);
    const b = r.best;
    return {
      file: r.file,
      // No `score` was given, so the metric is one measured on the data.
      metric: r.metric as DataMetric,
      record: {
        metric: r.metric,
        baseline: r.baseline,
        originalBytes: r.originalBytes,
        best: b,
        ratio: r.originalBytes / b.bytes,
        evaluations: r.evaluations,
        pareto: r.pareto,
        points: r.points,
      },
      line: `best ${b.bytes} B (${(r.originalBytes / b.bytes).toFixed(1)}x) at qp ${b.qp}, ` +
        `λ ${b.lambdaScale}, ${b.dq ? "DQ" : "URQ"}${
          Object.keys(b.tensorQps).length ? ", per-tensor qps" : ""
        }; ${r.metric} ${b.metric.toFixed(4)} (original ${r.baseline.toFixed(4)}); ` +
        `${r.evaluations} evaluations on the data it chose on`,
    };
  }
  const seconds = (performance.now() - started) / 1000;
  await writeOutput(v.output, outcome.file, true);
  // The written file, read back and scored by the same path as `eval`, on all the data.
  const written = await Deno.readFile(v.output);
  const checked = await evaluateModel(
    (await decompressModel(written, { format: "onnx" })).bytes,
    data,
    { backend, ...(outcome.metric === "accuracy" ? {} : { reference: model }) },
  );
  const check = metricValue(checked, outcome.metric);
  const record = {
    model: input,
    data: v.data,
    method: v.method,
    maxDrop,
    ...outcome.record,
    checkOnAllData: check,
    seconds,
  };
  await writeOutput(outputs[1]!, encoder.encode(JSON.stringify(record, null, 1)), true);
  if (v.json) console.log(JSON.stringify(record));
  else {
    console.log(
      `${input}: ${outcome.line}; the written file on all the data: ${check.toFixed(4)}; ` +
        `${seconds.toFixed(1)} s -> ${outputs.join(", ")}`,
    );
  }
  return 0;
}

async function conformance(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: "boolean", default: false } },
    allowPositionals: true,
  });
  const dir = positionals[0];
  if (dir === undefined) throw new UsageError("conformance needs a suite directory");
  try {
    await Deno.stat(join(dir, "manifest.json"));
  } catch {
    throw new UsageError(`No manifest.json in ${dir}: the external conformance suite is absent`);
  }
  const show = progress();
  const report = await runConformance(
    { read: (path) => Deno.readFile(join(dir, path)) },
    (r, i, total) => {
      if (r.status === "failed" && !values.json) console.log(`FAIL ${r.id}: ${r.detail}`);
      show(`${i}/${total} vectors`);
    },
  );
  endProgress();
  const s = report.summary;
  const rd = report.rd;
  if (values.json) {
    console.log(JSON.stringify(report));
  } else {
    const searched = report.vectors.filter((r) => r.rd !== undefined);
    if (searched.length > 0) {
      console.log("RD search (ours | reference): bytes, MSE, cost in bits");
      for (const r of searched) {
        const side = (x: RdSide) => `${x.bytes} B ${x.mse.toExponential(3)} ${x.cost.toFixed(1)}`;
        console.log(`  ${r.id}: ${side(r.rd!.ours)} | ${side(r.rd!.reference)}`);
      }
      console.log(
        `RD search over ${rd.vectors} vectors (URQ λ > 0 and DQ): ours ${rd.ourBytes} bytes, ` +
          `cost ${rd.ourCost.toFixed(1)}; reference ${rd.referenceBytes} bytes, cost ` +
          `${rd.referenceCost.toFixed(1)} (${rd.noWorse ? "no worse" : "worse"})`,
      );
    }
    console.log(
      `${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped (${s.total} vectors)`,
    );
  }
  return s.failed > 0 || !rd.noWorse ? 1 : 0;
}

async function demo(args: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args,
    options: { json: { type: "boolean", default: false } },
    allowPositionals: true,
  });
  const path = positionals[0] ?? SILERO_VAD_V5;
  let model;
  try {
    model = await Deno.readFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new Error(`${path} is missing: run npm ci first`);
  }
  const result = await runDemo(model);
  console.log(v.json ? JSON.stringify(result) : result.text);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "compress":
        return await compress(rest);
      case "decompress":
        return await decompress(rest);
      case "inspect":
        return await inspect(rest);
      case "eval":
        return await evaluate(rest);
      case "sweep":
        return await sweepCommand(rest);
      case "conformance":
        return await conformance(rest);
      case "demo":
        return await demo(rest);
      case undefined:
      case "help":
      case "--help":
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`Unknown command ${JSON.stringify(command)}`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as Error).name === "TypeError" && "code" in (e as object)) {
      console.error(`error: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    // Bad input of any kind ends in one line; DEEPCABAC_DEBUG=1 shows the stack.
    if (Deno.env.get("DEEPCABAC_DEBUG")) console.error(e);
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
