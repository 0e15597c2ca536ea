// Decode throughput and peak memory (RSS) on a real 44 M-parameter model: the float16 IS-Net that
// bench/fetch_isnet.ts fetches and compresses into .cache/isnet.nnr. Each case runs in a fresh
// Deno process so that peaks do not mix, several times; the median of each figure is printed as
// JSON on stdout (one object per case) and as a table on stderr.
//
//   npx deno run -A bench/stream_rss.ts [--runs 5] [--case NAME ...] [--file .cache/isnet.nnr]
//
// Cases: one-shot `decode()` of the file in memory (all tensors kept, as a caller that needs them
// all would) versus streaming (`file.readable.pipeThrough(new DecoderStream())`, each tensor
// dropped once seen, or kept: `stream-keep-*`, whose peak is compared with the output it holds)
// versus `decode()` on the file's stream (`decode-*`: it reads a byte stream into one buffer, and
// keeps every tensor); float32 values versus int8 levels (`output: "levels"`) versus float16 bit
// patterns (`output: "original"`); 1 and 2 workers. `stream-levels-gc` and `decode-levels-gc` are
// diagnostics: they force a full GC after each tensor, so their peak is the decoder's working set
// without the garbage that V8 lets pile up between collections.
//
// After the table, each case's speed against the first case's, as medians of the ratios of runs
// made back to back (`--case stream-float32 --case stream-float32-2workers`: the workers' gain).
//
// Memory: the baseline is the child's RSS after its modules are loaded, the file is opened and a
// full GC has run, just before decoding. The peak is the kernel's high-water mark (VmHWM of
// /proc/self/status, reset to the baseline through /proc/self/clear_refs), so nothing between
// samples is missed; `sampledPeak` is the largest `Deno.memoryUsage().rss` seen after each tensor
// and every 5 ms, for systems without /proc. Both are reported above the baseline, in MB (10^6).
import { decode, type DecodeOptions, DecoderStream, loadModel } from "../decoder/mod.ts";
import * as ort from "onnxruntime-web/wasm";
import { median } from "./_common.ts";

const MB = 1e6;
const root = new URL("../", import.meta.url);

/** One way of decoding the file. */
interface Case {
  readonly name: string;
  readonly mode: "oneshot" | "stream" | "decode" | "load";
  /** For `load`: how loadModel() hands the weights to onnxruntime. */
  readonly weights?: "external" | "inline";
  readonly output: NonNullable<DecodeOptions["output"]>;
  readonly workers?: number;
  /** For `stream`: keep every tensor (as a caller that builds a model does). */
  readonly keep?: boolean;
  /** Diagnostic: a full GC after each tensor, to separate the working set from GC lag. */
  readonly gcEach?: boolean;
}

const CASES: readonly Case[] = [
  { name: "oneshot-float32", mode: "oneshot", output: "float32" },
  { name: "oneshot-levels", mode: "oneshot", output: "levels" },
  { name: "oneshot-float32-2workers", mode: "oneshot", output: "float32", workers: 2 },
  { name: "oneshot-levels-2workers", mode: "oneshot", output: "levels", workers: 2 },
  { name: "stream-float32", mode: "stream", output: "float32" },
  { name: "stream-original", mode: "stream", output: "original" },
  { name: "stream-levels", mode: "stream", output: "levels" },
  { name: "stream-levels-gc", mode: "stream", output: "levels", gcEach: true },
  { name: "stream-keep-float32", mode: "stream", output: "float32", keep: true },
  { name: "stream-keep-levels", mode: "stream", output: "levels", keep: true },
  { name: "decode-float32", mode: "decode", output: "float32" },
  { name: "decode-levels", mode: "decode", output: "levels" },
  { name: "decode-levels-gc", mode: "decode", output: "levels", gcEach: true },
  { name: "stream-float32-2workers", mode: "stream", output: "float32", workers: 2 },
  { name: "stream-levels-2workers", mode: "stream", output: "levels", workers: 2 },
  { name: "load-external", mode: "load", output: "float32", weights: "external" },
  { name: "load-inline", mode: "load", output: "float32", weights: "inline" },
];

/** What one run measures. */
interface Run {
  readonly case: string;
  readonly fileBytes: number;
  readonly tensors: number;
  readonly weights: number;
  /** Bytes of the decoded tensors, MB. */
  readonly outputMB: number;
  readonly seconds: number;
  /** Million weights per second. */
  readonly mWeightsPerS: number;
  /** File megabytes (10^6) per second. */
  readonly fileMBPerS: number;
  /** RSS before decoding, MB. */
  readonly baselineRss: number;
  /** Kernel peak RSS minus the baseline, MB; null without /proc. */
  readonly peakAboveBaseline: number | null;
  /** Largest sampled RSS minus the baseline, MB. */
  readonly sampledPeakAboveBaseline: number;
  /** RSS after the last tensor (before any GC), MB. */
  readonly endRss: number;
  /** The machine's 1-minute load average when the run started, to spot noisy runs. */
  readonly load1: number;
}

function vmHwmBytes(): number | null {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/^VmHWM:\s+(\d+) kB$/m);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function resetPeak(): boolean {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** Runs one case in this process. */
async function measure(c: Case, path: string): Promise<Run> {
  const fileBytes = (await Deno.stat(path)).size;
  const load1 = Deno.loadavg()[0] ?? 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("Run the child with --v8-flags=--expose-gc");
  const file = await Deno.open(path);
  gc();
  await new Promise((resolve) => setTimeout(resolve, 50));
  gc();
  const baseline = Deno.memoryUsage().rss;
  const canReset = resetPeak();
  let sampled = baseline;
  const sample = () => {
    const rss = Deno.memoryUsage().rss;
    if (rss > sampled) sampled = rss;
  };
  const timer = setInterval(sample, 5);

  const started = performance.now();
  let tensors = 0;
  let weights = 0;
  let outputBytes = 0;
  if (c.mode === "oneshot") {
    // The one-shot caller has the file in memory first, as `decode(bytes)` requires.
    const bytes = new Uint8Array(fileBytes);
    for (let at = 0; at < fileBytes;) {
      const n = await file.read(bytes.subarray(at));
      if (n === null) throw new Error(`${path} ended early`);
      at += n;
    }
    file.close();
    const options = { output: c.output, ...(c.workers ? { workers: c.workers } : {}) };
    const result = await decode(bytes, options);
    sample();
    tensors = result.tensors.length;
    for (const t of result.tensors) {
      weights += t.data.length;
      outputBytes += t.data.byteLength;
    }
  } else if (c.mode === "decode") {
    // decode() on the file's stream: read into one buffer, every tensor kept.
    const options = { output: c.output, ...(c.workers ? { workers: c.workers } : {}) };
    const onProgress = () => {
      sample();
      if (c.gcEach) gc();
    };
    const result = await decode(file.readable, { ...options, onProgress });
    sample();
    tensors = result.tensors.length;
    for (const t of result.tensors) {
      weights += t.data.length;
      outputBytes += t.data.byteLength;
    }
  } else if (c.mode === "load") {
    // Streaming into a ready onnxruntime-web session; weights counts the elements coded.
    ort.env.wasm.numThreads = 1;
    const session = await loadModel(file.readable, {
      ort,
      weights: c.weights!,
      onProgress: (p) => {
        tensors = p.tensors;
        sample();
      },
    });
    sample();
    weights = 44_003_520;
    await session.release();
  } else {
    const stream = file.readable.pipeThrough(
      new DecoderStream({ output: c.output, ...(c.workers ? { workers: c.workers } : {}) }),
    );
    const kept: unknown[] = [];
    for await (const t of stream) {
      tensors++;
      weights += t.data.length;
      outputBytes += t.data.byteLength;
      if (c.keep) kept.push(t);
      sample();
      if (c.gcEach) gc();
    }
    if (kept.length !== (c.keep ? tensors : 0)) throw new Error("Tensors were lost");
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  sample();
  const endRss = Deno.memoryUsage().rss;
  const hwm = canReset ? vmHwmBytes() : null;
  return {
    case: c.name,
    fileBytes,
    tensors,
    weights,
    outputMB: outputBytes / MB,
    seconds,
    mWeightsPerS: weights / seconds / 1e6,
    fileMBPerS: fileBytes / seconds / MB,
    baselineRss: baseline / MB,
    peakAboveBaseline: hwm === null ? null : (hwm - baseline) / MB,
    sampledPeakAboveBaseline: (sampled - baseline) / MB,
    endRss: endRss / MB,
    load1,
  };
}

function parse(args: string[]) {
  const out = {
    runs: 5,
    cases: [] as string[],
    file: ".cache/isnet.nnr",
    child: null as string | null,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = args[++i];
    if (value === undefined) throw new Error(`${a} needs a value`);
    if (a === "--runs") out.runs = Number(value);
    else if (a === "--case") out.cases.push(value);
    else if (a === "--file") out.file = value;
    else if (a === "--child") out.child = value;
    else throw new Error(`Unknown option ${a}`);
  }
  if (!(Number.isInteger(out.runs) && out.runs > 0)) throw new Error("--runs needs a count");
  return out;
}

const options = parse(Deno.args);
const path = new URL(options.file, root).pathname;

if (options.child !== null) {
  const c = CASES.find((c) => c.name === options.child);
  if (!c) throw new Error(`Unknown case ${options.child}`);
  console.log(JSON.stringify(await measure(c, path)));
} else {
  try {
    await Deno.stat(path);
  } catch {
    console.error(`${options.file} is missing: run \`npx deno run -A bench/fetch_isnet.ts\` first`);
    Deno.exit(0);
  }
  const chosen = options.cases.length
    ? options.cases.map((n) => {
      const c = CASES.find((c) => c.name === n);
      if (!c) throw new Error(`Unknown case ${n}; cases: ${CASES.map((c) => c.name).join(", ")}`);
      return c;
    })
    : CASES;
  // An empty program's RSS, for scale.
  const empty = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "console.log(Deno.memoryUsage().rss)"],
    stdout: "piped",
  }).output();
  const emptyRss = Number(new TextDecoder().decode(empty.stdout)) / MB;
  const runs = new Map<string, Run[]>(chosen.map((c) => [c.name, []]));
  // Interleave the cases so that drift of the machine spreads over all of them.
  for (let r = 0; r < options.runs; r++) {
    for (const c of chosen) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          new URL(import.meta.url).pathname,
          "--child",
          c.name,
          "--file",
          options.file,
        ],
        cwd: root,
        stdout: "piped",
        stderr: "inherit",
      }).output();
      if (out.code !== 0) throw new Error(`Case ${c.name} failed with exit code ${out.code}`);
      const run = JSON.parse(new TextDecoder().decode(out.stdout)) as Run;
      runs.get(c.name)!.push(run);
      console.error(
        `run ${r + 1}/${options.runs} ${c.name}: ${run.seconds.toFixed(2)} s, ` +
          `peak +${run.peakAboveBaseline?.toFixed(1)} MB, load ${run.load1.toFixed(2)}`,
      );
    }
  }
  const rows = chosen.map((c) => {
    const rs = runs.get(c.name)!;
    const m = (f: (r: Run) => number) => median(rs.map(f));
    const peaks = rs.map((r) => r.peakAboveBaseline).filter((p): p is number => p !== null);
    return {
      case: c.name,
      runs: rs.length,
      fileBytes: rs[0]!.fileBytes,
      tensors: rs[0]!.tensors,
      weights: rs[0]!.weights,
      outputMB: rs[0]!.outputMB,
      seconds: m((r) => r.seconds),
      secondsMin: Math.min(...rs.map((r) => r.seconds)),
      secondsMax: Math.max(...rs.map((r) => r.seconds)),
      mWeightsPerS: m((r) => r.mWeightsPerS),
      fileMBPerS: m((r) => r.fileMBPerS),
      baselineRss: m((r) => r.baselineRss),
      peakAboveBaseline: peaks.length ? median(peaks) : null,
      peakAboveBaselineMax: peaks.length ? Math.max(...peaks) : null,
      sampledPeakAboveBaseline: m((r) => r.sampledPeakAboveBaseline),
      load1: m((r) => r.load1),
      emptyProgramRss: emptyRss,
    };
  });
  for (const row of rows) console.log(JSON.stringify(row));
  console.error(
    "\ncase                       s (min-max)          Mw/s   MB/s  base MB  peak+ MB (max)  output MB",
  );
  for (const r of rows) {
    console.error(
      `${r.case.padEnd(26)} ${r.seconds.toFixed(2)} (${r.secondsMin.toFixed(2)}-${
        r.secondsMax.toFixed(2)
      })`.padEnd(48) +
        `${r.mWeightsPerS.toFixed(2).padStart(6)} ${r.fileMBPerS.toFixed(2).padStart(6)} ` +
        `${r.baselineRss.toFixed(1).padStart(8)} ${r.peakAboveBaseline?.toFixed(1).padStart(9)} ` +
        `(${r.peakAboveBaselineMax?.toFixed(1)}) ${r.outputMB.toFixed(1).padStart(9)}`,
    );
  }
  // Runs r of all cases ran back to back: their time ratios are what a drifting machine compares.
  const first = chosen[0]!.name;
  for (const c of chosen.slice(1)) {
    const ratios = runs.get(c.name)!.map((r, i) => runs.get(first)![i]!.seconds / r.seconds);
    console.error(
      `speed of ${c.name} / ${first}, paired runs: median ${median(ratios).toFixed(2)} ` +
        `(${ratios.map((x) => x.toFixed(2)).join(", ")})`,
    );
  }
}
