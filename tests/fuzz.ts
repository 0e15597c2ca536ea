// A seeded fuzzer for everything that reads untrusted bytes: NNR files (ours, with and without
// block scans and DQ, and the reference suite's) through `readNnrFile()`, `decode()` and
// `DecoderStream` with random chunking; ONNX and safetensors models through the model readers and
// `compressModel()`; and the CLI's `decompress` and `inspect` on corrupt files.
//
// Every case must end in a correct decode or a `DecodeError`. A file that carries our metadata must
// decode to exactly its original tensors or fail; one without metadata (reference format) may decode
// to other values, counted as `undetectable`. Every case must finish within
// `CASE_MS + CASE_MS_PER_KB · size` milliseconds. Failing inputs are written to `--out`.
//
//   npx deno task fuzz [--seed N] [--iters N] [--seconds S] [--targets nnr,model,cli] [--out DIR]
import { parseArgs } from "node:util";
import { join } from "node:path";
import { DecodeError } from "../core/errors.ts";
import { laplaceTensor, seededRandom } from "../core/fixtures.ts";
import { concatBytes } from "../core/bytes.ts";
import { sha256Hex } from "../core/sha256.ts";
import type { ModelTensor } from "../core/model_tensor.ts";
import { decode, DecoderStream, type TensorOutput } from "../decoder/decode_stream.ts";
import { readNnrFile } from "../decoder/nnr_file.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { compressModel } from "../encoder/compress_model.ts";
import type { ModelFormat } from "../model/model_file.ts";
import { writeSafetensors } from "../model/safetensors.ts";
import { allDtypesModel, encodeTensor, nestedIfModel, toExternalData } from "./_onnx_fixtures.ts";
import { ProtoWriter } from "../model/_protobuf.ts";

/** Base time allowed per case, and per KiB of input on top. */
export const CASE_MS = 250;
export const CASE_MS_PER_KB = 50;

/** Limits the fuzzed readers run with (a real decoder picks its own). */
const LIMITS = { maxElements: 2 ** 22, maxModelBytes: 2 ** 24, maxUnitBytes: 2 ** 24 };

/** One input of the corpus. */
interface Seed {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** An NNR seed and how each reader decodes it unmutated. */
interface NnrSeed extends Seed {
  readonly hasMeta: boolean;
  readonly expected: Map<string, string>;
}

/** What the fuzzer found. */
export interface FuzzReport {
  readonly seed: number;
  readonly cases: number;
  readonly seconds: number;
  /** Cases per outcome: `ok`, `undetectable`, `DecodeError:<code>`, `FAIL:<what>`. */
  readonly outcomes: Record<string, number>;
  /** The same per target. */
  readonly byTarget: Record<string, Record<string, number>>;
  /** The failing cases (inputs written to `out` when given). */
  readonly failures: { target: string; index: number; seedName: string; detail: string }[];
  /** Slowest case in ms, and its input size. */
  readonly slowest: { ms: number; bytes: number };
  /** Largest resident set seen, in bytes. */
  readonly peakRss: number;
}

/** Options of {@linkcode fuzz}. */
export interface FuzzOptions {
  readonly seed: number;
  readonly iters?: number;
  readonly seconds?: number;
  readonly targets: readonly ("nnr" | "model" | "cli")[];
  /** Where to write failing inputs. */
  readonly out?: string;
  /** The conformance suite, for reference-format NNR seeds. */
  readonly conformanceDir?: string;
  readonly onProgress?: (done: number, outcomes: Record<string, number>) => void;
}

// ---------------------------------------------------------------- corpus

function smallSafetensors(): Uint8Array {
  const f32 = (name: string, shape: number[], seed: number): ModelTensor => ({
    name,
    dtype: "F32",
    shape,
    data: new Uint8Array(laplaceTensor(shape.reduce((a, b) => a * b), 0.05, seed).buffer),
  });
  return writeSafetensors([
    f32("conv.weight", [8, 3, 3, 3], 1),
    f32("conv.bias", [8], 2),
    f32("fc.weight", [40, 36], 3),
    {
      name: "fc.steps",
      dtype: "I32",
      shape: [5],
      data: new Uint8Array(Int32Array.of(3, -1, 4, 1, -5).buffer),
    },
  ], { origin: "fuzz" });
}

/** A small ONNX model: a float weight, a float16 weight and an int64 constant in initializers. */
function smallOnnx(): Uint8Array {
  const graph = new ProtoWriter().stringField(2, "fuzz");
  const w = laplaceTensor(24 * 20, 0.05, 4);
  graph.bytesField(
    5,
    encodeTensor(
      { name: "w", dtype: "F32", shape: [24, 20], data: new Uint8Array(w.buffer) },
      "raw",
    ),
  );
  graph.bytesField(
    5,
    encodeTensor({
      name: "b",
      dtype: "F32",
      shape: [20],
      data: new Uint8Array(laplaceTensor(20, 0.05, 5).buffer),
    }, "raw"),
  );
  graph.bytesField(
    5,
    encodeTensor({
      name: "k",
      dtype: "I64",
      shape: [2],
      data: new Uint8Array(BigInt64Array.of(3n, -7n).buffer),
    }, "raw"),
  );
  return new ProtoWriter().intField(1, 8).bytesField(7, graph.finish()).finish();
}

/** A model whose mutations go to the model readers and `compressModel`. */
interface ModelSeed extends Seed {
  readonly format: ModelFormat;
  /** The external-data files it references (unmutated). */
  readonly files?: ReadonlyMap<string, Uint8Array>;
}

/** The models whose mutations go to the model readers and `compressModel`. */
export function modelSeeds(): ModelSeed[] {
  const external = toExternalData(smallOnnx());
  return [
    { name: "small.safetensors", bytes: smallSafetensors(), format: "safetensors" },
    { name: "small.onnx", bytes: smallOnnx(), format: "onnx" },
    { name: "external-data.onnx", bytes: external.model, format: "onnx", files: external.files },
    { name: "all-dtypes-raw.onnx", bytes: allDtypesModel("raw"), format: "onnx" },
    { name: "all-dtypes-packed.onnx", bytes: allDtypesModel("packed"), format: "onnx" },
    { name: "nested-if.onnx", bytes: nestedIfModel(3), format: "onnx" },
  ];
}

/** Reference-format NNR files of the conformance suite that the fuzzer mutates (small ones). */
const REFERENCE_SEEDS = [
  "nnr-small-default",
  "nnr-small-dq0",
  "nnr-blockscan2-dq-qp-32",
  "nnr-mixed-int-width1-d3",
  "nnr2-small-default",
  "nnr2-rowskip-scan1-qp-32",
];

/** Our NNR files (with and without block scans and DQ) and, if found, reference files. */
export async function nnrSeeds(conformanceDir?: string): Promise<Seed[]> {
  const st = smallSafetensors();
  const onnx = smallOnnx();
  const seeds: Seed[] = [
    { name: "ours-dq", bytes: (await compressModel(st, "safetensors")).bytes },
    {
      name: "ours-urq-scan1",
      bytes: (await compressModel(st, "safetensors", { dq: false, scanOrder: 1, qp: -30 })).bytes,
    },
    {
      name: "ours-onnx-dq-scan2",
      bytes: (await compressModel(onnx, "onnx", { scanOrder: 2 })).bytes,
    },
  ];
  if (conformanceDir) {
    const manifest = JSON.parse(await Deno.readTextFile(join(conformanceDir, "manifest.json")));
    for (const v of manifest.vectors) {
      if (REFERENCE_SEEDS.includes(v.id)) {
        seeds.push({
          name: v.id,
          bytes: await Deno.readFile(join(conformanceDir, v.files.bitstream.path)),
        });
      }
    }
  }
  return seeds;
}

// ---------------------------------------------------------------- mutations

type Rng = () => number;
const int = (rnd: Rng, n: number) => Math.floor(rnd() * n);

/** One to three random edits of `bytes`. */
export function mutate(bytes: Uint8Array, rnd: Rng): Uint8Array<ArrayBuffer> {
  let b: Uint8Array<ArrayBuffer> = bytes.slice();
  const edits = 1 + int(rnd, 3);
  for (let e = 0; e < edits; e++) {
    const at = int(rnd, b.length + 1);
    switch (int(rnd, 9)) {
      case 0: // bit flip
        if (b.length) b[Math.min(at, b.length - 1)]! ^= 1 << int(rnd, 8);
        break;
      case 1: // byte overwrite
        if (b.length) b[Math.min(at, b.length - 1)] = int(rnd, 256);
        break;
      case 2: // truncation
        b = b.slice(0, at);
        break;
      case 3: { // insertion
        const n = 1 + int(rnd, 8);
        const ins = Uint8Array.from({ length: n }, () => int(rnd, 256));
        b = concatBytes([b.subarray(0, at), ins, b.subarray(at)]);
        break;
      }
      case 4: // deletion
        b = concatBytes([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(rnd, 8)))]);
        break;
      case 5: // a header byte (the first 48 bytes hold the unit headers, MPS and first NDU header)
        if (b.length) b[int(rnd, Math.min(48, b.length))] = int(rnd, 256);
        break;
      case 6: // a run of 0x00 or 0xFF
        b.fill(rnd() < 0.5 ? 0 : 0xff, at, Math.min(b.length, at + 1 + int(rnd, 16)));
        break;
      case 7: // an unsigned field pushed to an extreme value (sizes, counts)
        if (b.length >= 4) {
          const p = Math.min(at, b.length - 4);
          new DataView(b.buffer).setUint32(p, rnd() < 0.5 ? 0xffffffff : 0x7fffffff, rnd() < 0.5);
        }
        break;
      default: { // a copy of one stretch of the input over another
        const n = 1 + int(rnd, 32);
        const from = int(rnd, Math.max(1, b.length - n));
        b.copyWithin(Math.min(at, Math.max(0, b.length - 1)), from, from + n);
      }
    }
  }
  return b;
}

// ---------------------------------------------------------------- targets

/** How a reader's result is compared: a digest of every tensor and the model skeleton. */
function digest(parts: (string | Uint8Array)[]): Promise<string> {
  const chunks = parts.map((p) => typeof p === "string" ? new TextEncoder().encode(p + "\0") : p);
  return sha256Hex(concatBytes(chunks));
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const OUTPUTS: TensorOutput[] = ["float32", "levels", "original"];

/** Reads `bytes` in one of the ways, returning the mode and a digest of what came out. */
async function readNnr(bytes: Uint8Array, mode: string, rnd: Rng): Promise<string> {
  if (mode === "decompress") {
    const m = await decompressModel(bytes, { limits: LIMITS });
    return digest([m.format, m.bytes]);
  }
  if (mode === "read") {
    const f = await readNnrFile(bytes, LIMITS);
    return digest([
      ...f.tensors.flatMap((
        t,
      ) => [
        t.name,
        t.dtype,
        t.shape.join(","),
        bytesOf(t.levels),
        bytesOf(t.values ?? new Uint8Array()),
      ]),
      f.model ? f.model.skeleton : "",
    ]);
  }
  const output = OUTPUTS[Number(mode.slice(-1))]!;
  let tensors;
  let model;
  if (mode.startsWith("decode")) {
    const r = await decode(bytes, { output, limits: LIMITS });
    tensors = r.tensors;
    model = r.header.model;
  } else {
    const stream = new DecoderStream({ output, limits: LIMITS });
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length;) {
      const n = rnd() < 0.3 ? 1 : 1 + int(rnd, 600);
      chunks.push(bytes.slice(at, at + n));
      at += n;
    }
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        const next = chunks.shift();
        if (next) c.enqueue(next);
        else c.close();
      },
    });
    tensors = await Array.fromAsync(source.pipeThrough(stream));
    model = (await stream.header).model;
  }
  return digest([
    ...tensors.flatMap((t) => [t.name, t.dtype, t.shape.join(","), `${t.step}`, bytesOf(t.data)]),
    model ? model.skeleton : "",
  ]);
}

const NNR_MODES = [
  "decompress",
  "read",
  "decode0",
  "decode1",
  "decode2",
  "stream0",
  "stream1",
  "stream2",
];

// ---------------------------------------------------------------- the loop

/**
 * Runs the fuzzer.
 *
 * @param options Seed, budget, targets.
 * @returns The report.
 */
export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const nnr: NnrSeed[] = [];
  for (const s of await nnrSeeds(options.conformanceDir)) {
    const expected = new Map<string, string>();
    for (const mode of NNR_MODES) expected.set(mode, await readNnr(s.bytes, mode, seededRandom(1)));
    const hasMeta = new TextDecoder().decode(s.bytes).includes("DEEPCABAC-NNR/");
    nnr.push({ ...s, hasMeta, expected });
  }
  const models = modelSeeds();
  const outcomes: Record<string, number> = {};
  const byTarget: Record<string, Record<string, number>> = {};
  const failures: FuzzReport["failures"] = [];
  let slowest = { ms: 0, bytes: 0 };
  let peakRss = 0;
  const count = (target: string, k: string) => {
    outcomes[k] = (outcomes[k] ?? 0) + 1;
    const mine = byTarget[target] ??= {};
    mine[k] = (mine[k] ?? 0) + 1;
  };
  const targets = options.targets;
  const limitMs = options.seconds === undefined ? Infinity : started + options.seconds * 1000;
  let i = 0;
  for (; i < (options.iters ?? Infinity) && performance.now() < limitMs; i++) {
    const rnd = seededRandom((options.seed * 2654435761 + i * 40503) >>> 0);
    const target = targets[i % targets.length]!;
    let input: Uint8Array;
    let seedName: string;
    let outcome: string;
    const t0 = performance.now();
    if (target === "nnr") {
      const s = nnr[int(rnd, nnr.length)]!;
      seedName = s.name;
      input = mutate(s.bytes, rnd);
      const mode = NNR_MODES[int(rnd, NNR_MODES.length)]!;
      outcome = await classify(async () => {
        const got = await readNnr(input, mode, rnd);
        if (got === s.expected.get(mode)) return "ok";
        return s.hasMeta ? "FAIL:silent wrong decode" : "undetectable";
      });
    } else if (target === "model") {
      const s = models[int(rnd, models.length)]!;
      seedName = s.name;
      input = mutate(s.bytes, rnd);
      outcome = await classify(async () => {
        await compressModel(input, s.format, {
          qp: -30,
          readExternal: (location) => {
            const file = s.files?.get(location);
            if (!file) throw new Error(`No external file ${location}`);
            return file;
          },
        });
        return "ok";
      });
    } else {
      const s = nnr[int(rnd, nnr.length)]!;
      seedName = s.name;
      input = mutate(s.bytes, rnd);
      outcome = await runCli(input, rnd() < 0.5 ? "decompress" : "inspect");
    }
    const ms = performance.now() - t0;
    if (ms > slowest.ms) slowest = { ms, bytes: input.length };
    if (target !== "cli" && ms > CASE_MS + CASE_MS_PER_KB * input.length / 1024) {
      outcome = `FAIL:slow (${ms.toFixed(0)} ms)`;
    }
    count(target, outcome.startsWith("FAIL:slow") ? "FAIL:slow" : outcome);
    if (outcome.startsWith("FAIL")) {
      failures.push({ target, index: i, seedName, detail: outcome });
      if (options.out) {
        await Deno.mkdir(options.out, { recursive: true });
        await Deno.writeFile(
          join(options.out, `${target}-${options.seed}-${i}-${seedName}.bin`),
          input,
        );
      }
    }
    if (i % 1000 === 0) {
      peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
      options.onProgress?.(i, outcomes);
    }
  }
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  return {
    seed: options.seed,
    cases: i,
    seconds: (performance.now() - started) / 1000,
    outcomes,
    byTarget,
    failures,
    slowest,
    peakRss,
  };
}

/** Runs a case: its own outcome, `DecodeError:<code>`, or `FAIL:<error>`. */
async function classify(run: () => Promise<string>): Promise<string> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof DecodeError) return `DecodeError:${e.code}`;
    const name = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return `FAIL:${name.slice(0, 120)}`;
  }
}

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** Runs the CLI on a corrupt file: exit 0, or 1 with one `error:` line and no file left behind. */
async function runCli(input: Uint8Array, command: "decompress" | "inspect"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "fuzz_cli_" });
  try {
    const file = join(dir, "in.nnr");
    await Deno.writeFile(file, input);
    const args = command === "decompress"
      ? ["run", "-A", CLI, "decompress", file, "-o", join(dir, "out.safetensors")]
      : ["run", "-A", CLI, "inspect", file];
    const r = await new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "piped" })
      .output();
    const stderr = new TextDecoder().decode(r.stderr);
    const left = [];
    for await (const e of Deno.readDir(dir)) if (e.name !== "in.nnr") left.push(e.name);
    if (r.code === 0) {
      return command === "decompress" && left.length !== 1 ? "FAIL:no output" : "ok";
    }
    if (r.code !== 1 || !/^error: /m.test(stderr)) {
      return `FAIL:exit ${r.code}: ${stderr.slice(0, 100)}`;
    }
    if (left.length > 0) return `FAIL:left ${left.join(", ")}`;
    return "cli error";
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      seed: { type: "string", default: "1" },
      iters: { type: "string" },
      seconds: { type: "string" },
      targets: { type: "string", default: "nnr,model" },
      out: { type: "string", default: "fuzz-failures" },
      json: { type: "boolean", default: false },
    },
  });
  const dir = Deno.env.get("DEEPCABAC_CONFORMANCE_DIR") ??
    new URL("../../shared/conformance", import.meta.url).pathname;
  let conformanceDir: string | undefined = dir;
  try {
    await Deno.stat(join(dir, "manifest.json"));
  } catch {
    conformanceDir = undefined;
    console.error("fuzz: no conformance suite found, reference-format seeds left out");
  }
  const report = await fuzz({
    seed: Number(values.seed),
    ...(values.iters ? { iters: Number(values.iters) } : {}),
    ...(values.seconds ? { seconds: Number(values.seconds) } : {}),
    targets: values.targets.split(",") as FuzzOptions["targets"],
    out: values.out,
    ...(conformanceDir ? { conformanceDir } : {}),
    onProgress: (done, outcomes) =>
      Deno.stderr.writeSync(
        new TextEncoder().encode(`\r${done} cases ${JSON.stringify(outcomes)}`),
      ),
  });
  Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  if (values.json) console.log(JSON.stringify(report));
  else {
    console.log(`${report.cases} cases in ${report.seconds.toFixed(1)} s (seed ${report.seed})`);
    for (const [target, counts] of Object.entries(report.byTarget)) {
      console.log(`  ${target}:`);
      for (const [k, n] of Object.entries(counts).sort()) console.log(`    ${k}: ${n}`);
    }
    console.log(
      `slowest ${report.slowest.ms.toFixed(1)} ms (${report.slowest.bytes} bytes), peak RSS ${
        (report.peakRss / 1e6).toFixed(0)
      } MB`,
    );
    for (const f of report.failures.slice(0, 20)) {
      console.log(`  FAIL ${f.target} #${f.index} (${f.seedName}): ${f.detail}`);
    }
  }
  Deno.exit(report.failures.length > 0 ? 1 : 0);
}
