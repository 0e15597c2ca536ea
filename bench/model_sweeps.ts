// Model-level results for bench/RESULTS.md: the sweep's smallest file within tolerance on the two
// zoo LeNets and on silero VAD v5 (npm @ricky0123/vad-web), against the reference encoder's best
// single qp, each chosen on search data and checked on data the search never saw.
//
// - LeNets: top-1 accuracy, 0.5 pp tolerance; the sweep searches on the first half of
//   ../shared/zoo/mnist_test.safetensors and the file is checked on the second half (and on all
//   10,000 images, as `cli.ts eval` does). The reference's figures are those of NNC 0.3.1 (DQ,
//   defaults) on the full test set, from the issue tracker (issue 12).
// - silero VAD: agreement of the speech decisions (probability > 0.5, 32 ms frames, state carried)
//   with the original model's, 0.5 pp tolerance, on speech made by espeak-ng (Debian package
//   `espeak-ng`) with pauses and low noise: search on one clip, check on another (other sentences,
//   another voice). The reference is emulated: our encoder at the reference's settings (DQ, λ = 0,
//   one qp for all weights, qp −38, −36, …, −8), counting only the units the reference writes.
//
// Sizes are whole files: ours include the metadata and model units (the skeleton).
// Run: npx deno run -A bench/model_sweeps.ts [--json] [--write]   (about 15 minutes on 2 cores;
// --write puts the table into bench/RESULTS.md)
import { parseArgs } from "node:util";
import { EncodePool } from "../encoder/encode_pool.ts";
import { compressModel } from "../encoder/compress_model.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { readNnrUnits } from "../decoder/nnr_units.ts";
import { META_HEADER, MODEL_HEADER } from "../core/container.ts";
import type { ModelTensor } from "../core/model_tensor.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { evaluateModel } from "../runtime/evaluate.ts";
import { createSession, Tensor } from "../runtime/onnx_runtime.ts";
import { sweep, type SweepResult } from "../runtime/sweep.ts";
import { SILERO_VAD_V5 } from "../examples/silero_vad_demo.ts";
import { selectSamples } from "../runtime/planned_sweep.ts";
import { writeResultsSection } from "./_results_section.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean", default: false },
    write: { type: "boolean", default: false },
  },
});
const zoo = new URL("../../shared/zoo/", import.meta.url);
const MAX_DROP = 0.5;
const workers = navigator.hardwareConcurrency;

interface Row {
  readonly model: string;
  readonly metric: string;
  readonly originalBytes: number;
  readonly referenceBytes: number;
  readonly referenceNote: string;
  readonly oursBytes: number;
  readonly ratioToReference: number;
  readonly baselineSearch: number;
  readonly oursSearch: number;
  readonly baselineCheck: number;
  readonly oursCheck: number;
  readonly evaluations: number;
  readonly seconds: number;
  readonly setting: string;
}
const rows: Row[] = [];

function describe(r: SweepResult): string {
  const b = r.best!;
  const qps = Object.keys(b.tensorQps).length;
  const lambdas = Object.keys(b.tensorLambdas).length;
  return `qp ${b.qp}, λ ${+b.lambdaScale.toPrecision(3)}, ${b.dq ? "DQ" : "URQ"}` +
    (qps ? `, ${qps} tensor qps` : "") + (lambdas ? `, ${lambdas} tensor λ` : "");
}

async function runSweep(
  model: Uint8Array,
  data: readonly ModelTensor[],
  score?: (m: Uint8Array) => Promise<number>,
): Promise<SweepResult> {
  const pool = new EncodePool(workers);
  try {
    return await sweep(model, data, {
      maxDrop: MAX_DROP,
      compress: { encode: pool.encode },
      parallel: workers,
      ...(score ? { score } : {}),
    });
  } finally {
    pool.close();
  }
}

// --- LeNets -----------------------------------------------------------------------------------
const mnist = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", zoo))).tensors;
const half = mnist[0]!.shape[0]! / 2;
const search = selectSamples(mnist, (i) => i < half);
const check = selectSamples(mnist, (i) => i >= half);
const REFERENCE = { lenet300_mnist: 54_538, lenet5_mnist: 64_350 } as const;
for (const name of ["lenet300_mnist", "lenet5_mnist"] as const) {
  const model = await Deno.readFile(new URL(`${name}.onnx`, zoo));
  const started = performance.now();
  const r = await runSweep(model, search);
  const seconds = (performance.now() - started) / 1000;
  const decoded = (await decompressModel(r.file!, { format: "onnx" })).bytes;
  const accuracy = async (m: Uint8Array, d: readonly ModelTensor[]) =>
    (await evaluateModel(m, d)).accuracy!;
  const full = [await accuracy(model, mnist), await accuracy(decoded, mnist)];
  console.error(`${name}: ${r.best!.bytes} B; full test set ${full.map((a) => a.toFixed(4))}`);
  rows.push({
    model: name,
    metric: "top-1 accuracy",
    originalBytes: model.length,
    referenceBytes: REFERENCE[name],
    referenceNote: "NNC 0.3.1, full test set",
    oursBytes: r.best!.bytes,
    ratioToReference: r.best!.bytes / REFERENCE[name],
    baselineSearch: r.baseline,
    oursSearch: r.best!.metric,
    baselineCheck: await accuracy(model, check),
    oursCheck: await accuracy(decoded, check),
    evaluations: r.evaluations,
    seconds,
    setting: describe(r),
  });
}

// --- silero VAD ---------------------------------------------------------------------------------
/** 16 kHz mono speech from espeak-ng: sentences with pauses and a little seeded noise. */
async function speech(sentences: readonly string[], voice: string, seed: number) {
  const rate = 16000;
  const parts: Float32Array[] = [];
  let state = seed;
  const noise = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
  const pause = (seconds: number) => new Float32Array(Math.round(seconds * rate));
  for (const [i, text] of sentences.entries()) {
    parts.push(pause(0.4 + 0.3 * (i % 4)));
    const { code, stdout } = await new Deno.Command("espeak-ng", {
      args: ["-v", voice, "-s", "155", "--stdout", text],
      stdout: "piped",
    }).output();
    if (code !== 0) throw new Error("espeak-ng failed (apt-get install espeak-ng)");
    parts.push(resample(wavSamples(stdout), rate));
  }
  parts.push(pause(0.8));
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  for (let i = 0; i < out.length; i++) out[i]! += 0.004 * noise();
  return out;
}
/** The samples of a 16-bit PCM mono WAV file (espeak-ng's output), with its sample rate. */
function wavSamples(wav: Uint8Array): { samples: Float32Array; rate: number } {
  const view = new DataView(wav.buffer, wav.byteOffset, wav.byteLength);
  const rate = view.getUint32(24, true);
  let at = 12;
  while (at + 8 <= wav.length) {
    const id = String.fromCharCode(...wav.subarray(at, at + 4));
    const size = view.getUint32(at + 4, true);
    if (id === "data") {
      // espeak-ng writing to a pipe cannot seek back to fill in the size.
      const end = Math.min(wav.length, at + 8 + size);
      const samples = new Float32Array((end - at - 8) >> 1);
      for (let i = 0; i < samples.length; i++) {
        samples[i] = view.getInt16(at + 8 + 2 * i, true) / 32768;
      }
      return { samples, rate };
    }
    at += 8 + size;
  }
  throw new Error("No data chunk in espeak-ng's WAV");
}
function resample({ samples, rate }: { samples: Float32Array; rate: number }, to: number) {
  const out = new Float32Array(Math.floor((samples.length * to) / rate));
  for (let i = 0; i < out.length; i++) {
    const x = (i * rate) / to;
    const j = Math.floor(x);
    out[i] = samples[j]! + (x - j) * ((samples[j + 1] ?? 0) - samples[j]!);
  }
  return out;
}
/** Speech decisions of silero VAD v5 over 512-sample frames, carrying its state. */
async function decisions(model: Uint8Array, audio: Float32Array): Promise<Uint8Array> {
  const session = await createSession(model);
  try {
    let state: Tensor = new Tensor("float32", new Float32Array(2 * 128), [2, 1, 128]);
    const sr = new Tensor("int64", BigInt64Array.of(16000n), []);
    const out = new Uint8Array(Math.floor(audio.length / 512));
    for (let f = 0; f < out.length; f++) {
      const input = new Tensor("float32", audio.slice(f * 512, (f + 1) * 512), [1, 512]);
      const r = await session.run({ input, state, sr });
      out[f] = (r.output!.data as Float32Array)[0]! > 0.5 ? 1 : 0;
      state = r.stateN as Tensor;
    }
    return out;
  } finally {
    await session.release();
  }
}
const SEARCH_SENTENCES = [
  "The quick brown fox jumps over the lazy dog.",
  "Compression of neural networks saves bandwidth at the edge.",
  "Please turn left at the next intersection and continue for two miles.",
  "It was a bright cold day in April, and the clocks were striking thirteen.",
  "Seven silent swans swam slowly south in the summer sun.",
  "Could you tell me the way to the railway station?",
  "The meeting has been moved to Thursday afternoon at three.",
  "Numbers like forty two and one thousand nine hundred sound different.",
];
const CHECK_SENTENCES = [
  "A journey of a thousand miles begins with a single step.",
  "The weather tomorrow will be cloudy with a chance of rain.",
  "She sells sea shells by the sea shore every morning.",
  "Arithmetic coding assigns shorter codes to more probable symbols.",
  "We will arrive at the airport about an hour before departure.",
  "Every context adapts its probability after each coded bin.",
  "The library closes at nine on weekdays and at noon on Sundays.",
  "Listen carefully, then repeat the sentence in your own words.",
];
{
  const model = await Deno.readFile(SILERO_VAD_V5);
  const searchAudio = await speech(SEARCH_SENTENCES, "en-us", 1);
  const checkAudio = await speech(CHECK_SENTENCES, "en+f3", 2);
  const originalSearch = await decisions(model, searchAudio);
  const originalCheck = await decisions(model, checkAudio);
  const speechShare = originalSearch.reduce((s, d) => s + d, 0) / originalSearch.length;
  console.error(
    `silero: ${originalSearch.length} + ${originalCheck.length} frames, ${
      (100 * speechShare).toFixed(1)
    } % speech`,
  );
  const agreement = (a: Uint8Array, b: Uint8Array) =>
    a.filter((d, i) => d === b[i]).length / a.length;
  const onSearch = async (m: Uint8Array) =>
    agreement(await decisions(m, searchAudio), originalSearch);
  const onCheck = async (m: Uint8Array) => agreement(await decisions(m, checkAudio), originalCheck);
  // The reference emulated: one qp, DQ, λ = 0; only the units the reference writes are counted.
  let reference = { bytes: Infinity, qp: 0 };
  for (let qp = -38; qp <= -8; qp += 2) {
    const { bytes } = await compressModel(model, "onnx", { qp });
    const ours = readNnrUnits(bytes).filter((u) => {
      const text = u.fields.topology_data;
      return typeof text === "string" &&
        (text.startsWith(META_HEADER) || text.startsWith(MODEL_HEADER));
    });
    const bare = bytes.length - ours.reduce((s, u) => s + u.size, 0);
    const decoded = (await decompressModel(bytes, { format: "onnx" })).bytes;
    if ((await onSearch(decoded)) >= 1 - MAX_DROP / 100 && bare < reference.bytes) {
      reference = { bytes: bare, qp };
    }
  }
  const started = performance.now();
  const r = await runSweep(model, [], onSearch);
  const seconds = (performance.now() - started) / 1000;
  const decoded = (await decompressModel(r.file!, { format: "onnx" })).bytes;
  rows.push({
    model: "silero_vad_v5",
    metric: "speech-decision agreement",
    originalBytes: model.length,
    referenceBytes: reference.bytes,
    referenceNote: `emulated, qp ${reference.qp}`,
    oursBytes: r.best!.bytes,
    ratioToReference: r.best!.bytes / reference.bytes,
    baselineSearch: 1,
    oursSearch: r.best!.metric,
    baselineCheck: 1,
    oursCheck: await onCheck(decoded),
    evaluations: r.evaluations,
    seconds,
    setting: describe(r),
  });
}

const pct = (v: number) => `${(100 * v).toFixed(2)} %`;
const table = [
  "| model | metric | original | reference's best single qp | ours | ours / reference | search: original → ours | held-out check: original → ours | evaluations | sweep time | chosen |",
  "|---|---|---|---|---|---|---|---|---|---|---|",
  ...rows.map((r) =>
    `| ${r.model} | ${r.metric} | ${r.originalBytes} | ${r.referenceBytes} (${r.referenceNote}) | ${r.oursBytes} | ${
      r.ratioToReference.toFixed(3)
    } | ${pct(r.baselineSearch)} → ${pct(r.oursSearch)} | ${pct(r.baselineCheck)} → ${
      pct(r.oursCheck)
    } | ${r.evaluations} | ${r.seconds.toFixed(0)} s | ${r.setting} |`
  ),
].join("\n");
if (args.values.json) console.log(JSON.stringify(rows, null, 1));
else console.log(table);
if (args.values.write) {
  await writeResultsSection(
    "## Model level: the sweep against the reference's best single qp",
    `Generated by \`npx deno run -A bench/model_sweeps.ts --write\` on ${
      new Date().toISOString().slice(0, 10)
    } (2-core VM). Each sweep chooses on search data and is checked on data it never saw (the
header of bench/model_sweeps.ts says which); sizes are whole files, the skeleton included.\n\n${table}`,
  );
}
