// Cold start over a throttled link: from the request of a model to its first inference result,
// the original ONNX file against the `.nnr` (the reference defaults, and the sweep's output where
// the model has evaluation data), with onnxruntime-web (wasm, one thread) in Deno.
//
//   npx deno run -A bench/cold_start.ts [--runs 3] [--models lenet300,lenet5,silero,isnet]
//     [--rates 50,200,1000] [--workers 1,2] [--files onnx,nnr-default,nnr-sweep] [--resweep]
//     [--write]
//
// Files. The `.nnr` files are made fresh on every invocation by `cli.ts compress` at the defaults
// (so they follow the encoder of the checkout), into .cache/cold_start/ (git-ignored). The
// LeNets' sweep output (`cli.ts sweep --data`, 30–50 s per model) is made once and reused from
// there; `--resweep` makes it again. IS-Net's (a 14-minute sweep on six photographs) is made
// beforehand by `bench/sweep_bench.ts --models isnet --save .cache/cold_start` and left out
// without it. IS-Net needs .cache/isnet_fp16.onnx (bench/fetch_isnet.ts) and is skipped without
// it.
//
// The link. A server in a separate `deno run` process (not a worker of the measuring process: on
// a 2-core machine a decode that fills both cores would delay a pacing timer in the same process,
// and a separate process is what a real server is) listens on 127.0.0.1 at an ephemeral port and
// holds every file in memory. It sends a body in 16 KiB chunks through a token bucket filled at
// the nominal rate (Mbit/s = 10^6 bit/s) that starts empty and holds at most 5 ms of the rate,
// so a late timer is caught up without a burst larger than what a real link had in flight. No
// latency is added. The achieved rate is checked: a fresh process fetches 25 MB of random bytes,
// and each model file, at each rate and only reads the body ("link" in the table).
//
// A measurement. Each runs in a fresh process (no JIT warmth, no onnxruntime instance, no
// workers left from an earlier one) that loads its modules and prepares the model's input, then
// starts the clock and calls `fetch()`. ONNX: the whole body (`arrayBuffer()`), then
// `ort.InferenceSession.create(bytes)`, then one `session.run()`. `.nnr`: `loadModel(response,
// { ort, workers })`, which decodes while the body arrives, then one `session.run()`. The clock
// stops when `run()` resolves. Both include onnxruntime's wasm start (it happens at the first
// session). Reported: the median over `--runs` of the time to the first result (min–max), and
// the medians of the times to the body's last byte read, to the last tensor decoded (`.nnr`,
// from `onProgress`), to the session being ready, and of the inference itself. Runs are
// interleaved over all cases so that drift of the machine spreads over them.
//
// Inputs of the first inference: a test digit of the zoo's MNIST data for the LeNets, a 512-sample
// synthetic frame with zero state for silero VAD, the first image of .cache/isnet_images.safetensors
// for IS-Net (zeros when that file is missing).
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-web/wasm";
import { loadModel } from "../decoder/load_model.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { SILERO_VAD_V5 } from "../examples/silero_vad_demo.ts";
import { exists, median } from "./_common.ts";

const root = new URL("../", import.meta.url);
const cache = new URL(".cache/cold_start/", root);
const zoo = new URL("../shared/zoo/", root);
const self = new URL(import.meta.url).pathname;

/** Bytes per chunk of the paced body. */
const CHUNK_BYTES = 16 * 1024;
/** The token bucket holds at most this much of the rate. */
const BURST_MS = 5;

type ModelName = "lenet300" | "lenet5" | "silero" | "isnet";
type FileKind = "onnx" | "nnr-default" | "nnr-sweep";

/** A model of the bench. */
interface ModelSpec {
  readonly label: string;
  readonly onnx: URL;
  /** Evaluation data for a sweep; null where the model has none here. */
  readonly data: URL | null;
  /**
   * Where the sweep takes too long to run here (IS-Net: 14 minutes), the command that writes
   * its file into `.cache/cold_start/<model>.sweep.nnr` beforehand.
   */
  readonly sweptBy?: string;
  /** How to get the model when it is missing. */
  readonly missing: string;
}

const MODELS: Record<ModelName, ModelSpec> = {
  lenet300: {
    label: "LeNet-300-100",
    onnx: new URL("lenet300_mnist.onnx", zoo),
    data: new URL("mnist_test.safetensors", zoo),
    missing: "the zoo is not beside this checkout (../shared/zoo)",
  },
  lenet5: {
    label: "LeNet-5",
    onnx: new URL("lenet5_mnist.onnx", zoo),
    data: new URL("mnist_test.safetensors", zoo),
    missing: "the zoo is not beside this checkout (../shared/zoo)",
  },
  silero: {
    label: "silero VAD v5",
    onnx: SILERO_VAD_V5,
    data: null,
    missing: "run `npm ci`",
  },
  isnet: {
    label: "IS-Net (float16)",
    onnx: new URL(".cache/isnet_fp16.onnx", root),
    data: new URL(".cache/isnet_images.safetensors", root),
    sweptBy: "npx deno run -A bench/sweep_bench.ts --models isnet --save .cache/cold_start",
    missing: "run `npx deno run -A bench/fetch_isnet.ts`",
  },
};

const FILE_KINDS: readonly FileKind[] = ["onnx", "nnr-default", "nnr-sweep"];

/** What a client process measures; times in seconds from the start of `fetch()`. */
interface ClientResult {
  /** Response headers received. */
  readonly headers: number;
  /**
   * The body read to its end: by `arrayBuffer()` (ONNX, transfer only) or by `loadModel()`
   * (`.nnr`: that lags the link where decoding is slower than the link).
   */
  readonly bodyRead: number;
  /** `.nnr`: the last tensor decoded (null otherwise). */
  readonly decoded: number | null;
  /** Session ready (null for a transfer-only run). */
  readonly session: number | null;
  /** First inference result (null for a transfer-only run). */
  readonly first: number | null;
  /** Bytes of the body. */
  readonly bytes: number;
  /** Mean of the first output, to check that the models agree. */
  readonly output: number | null;
  /** 1-minute load average when the run started. */
  readonly load1: number;
}

/** What a client process is asked to do. */
interface ClientJob {
  readonly url: string;
  readonly mode: "transfer" | "onnx" | "nnr";
  readonly model: ModelName | null;
  readonly workers: number;
  /** Bytes of the body, to tell when `loadModel()` has read all of it. */
  readonly bytes: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// Server process

/** A body that leaves at `bitsPerSecond`, in chunks, through a token bucket. */
function pacedBody(bytes: Uint8Array, bitsPerSecond: number): ReadableStream<Uint8Array> {
  const bytesPerMs = bitsPerSecond / 8 / 1000;
  const capacity = Math.max(CHUNK_BYTES, bytesPerMs * BURST_MS);
  let tokens = 0;
  let last = performance.now();
  let at = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const n = Math.min(CHUNK_BYTES, bytes.length - at);
      for (;;) {
        const now = performance.now();
        tokens = Math.min(capacity, tokens + (now - last) * bytesPerMs);
        last = now;
        if (tokens >= n) break;
        await sleep(Math.max(1, Math.ceil((n - tokens) / bytesPerMs)));
      }
      tokens -= n;
      // A copy: the stream's consumer may keep or transfer the chunk.
      controller.enqueue(bytes.slice(at, at + n));
      at += n;
      if (at >= bytes.length) controller.close();
    },
  }, { highWaterMark: 0 });
}

/**
 * Serves `name=path` files at `/name?mbits=R`, and `probeBytes` random bytes at `/probe`; prints
 * `{"port": N}` once listening.
 */
async function serve(files: readonly string[], probeBytes: number): Promise<void> {
  const bodies = new Map<string, Uint8Array>();
  const probe = new Uint8Array(probeBytes);
  for (let at = 0; at < probe.length; at += 65536) {
    crypto.getRandomValues(probe.subarray(at, at + 65536));
  }
  bodies.set("probe", probe);
  for (const f of files) {
    const at = f.indexOf("=");
    if (at < 1) throw new TypeError(`Bad --file ${f}: expected name=path`);
    bodies.set(f.slice(0, at), await Deno.readFile(f.slice(at + 1)));
  }
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
  }, (request) => {
    const url = new URL(request.url);
    const bytes = bodies.get(url.pathname.slice(1));
    if (!bytes) return new Response("Not found", { status: 404 });
    const mbits = Number(url.searchParams.get("mbits"));
    if (!(mbits > 0)) return new Response("Bad mbits", { status: 400 });
    return new Response(pacedBody(bytes, mbits * 1e6), {
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(bytes.length),
      },
    });
  });
  await server.finished;
}

// ---------------------------------------------------------------------------------------------
// Client process

type Feeds = Record<string, ort.Tensor>;

/** The first inference's inputs, prepared before the clock starts. */
async function prepareFeeds(model: ModelName): Promise<(inputNames: readonly string[]) => Feeds> {
  if (model === "lenet300" || model === "lenet5") {
    const data = readSafetensors(await Deno.readFile(MODELS[model].data!)).tensors;
    const x = data.find((t) => t.name === "x");
    if (!x || x.dtype !== "F32") throw new TypeError("The MNIST data has no float32 x");
    const pixels = new Float32Array(x.data.slice(0, 784 * 4).buffer);
    return (names) => ({ [names[0]!]: new ort.Tensor("float32", pixels, [1, 784]) });
  }
  if (model === "silero") {
    const audio = new Float32Array(512).map((_, i) =>
      0.3 * Math.sin(2 * Math.PI * 220 * i / 16000)
    );
    return () => ({
      input: new ort.Tensor("float32", audio, [1, 512]),
      state: new ort.Tensor("float32", new Float32Array(2 * 128), [2, 1, 128]),
      sr: new ort.Tensor("int64", BigInt64Array.of(16000n), []),
    });
  }
  const size = 3 * 1024 * 1024;
  let image = new Float32Array(size);
  const images = new URL(".cache/isnet_images.safetensors", root);
  if (await exists(images)) {
    const t = readSafetensors(await Deno.readFile(images)).tensors.find((t) => t.name === "input");
    if (t?.dtype === "F32") image = new Float32Array(t.data.slice(0, size * 4).buffer);
  }
  return (names) => ({ [names[0]!]: new ort.Tensor("float32", image, [1, 3, 1024, 1024]) });
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

/** One measurement in this (fresh) process. */
async function client(job: ClientJob): Promise<ClientResult> {
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  const feeds = job.mode === "transfer" || !job.model ? null : await prepareFeeds(job.model);
  const load1 = Deno.loadavg()[0] ?? 0;
  const started = performance.now();
  const since = () => (performance.now() - started) / 1000;
  const response = await fetch(job.url);
  if (!response.ok || !response.body) throw new Error(`${job.url}: HTTP ${response.status}`);
  const headers = since();
  let bodyRead = NaN;
  let decoded: number | null = null;
  let bytes = 0;
  let session: ort.InferenceSession | null = null;
  if (job.mode === "transfer") {
    for await (const chunk of response.body) bytes += chunk.length;
    bodyRead = since();
  } else if (job.mode === "onnx") {
    const body = new Uint8Array(await response.arrayBuffer());
    bodyRead = since();
    bytes = body.length;
    session = await ort.InferenceSession.create(body);
  } else {
    session = await loadModel(response, {
      ort,
      workers: job.workers,
      onProgress: (p) => {
        bytes = p.bytes;
        if (p.bytes === job.bytes && Number.isNaN(bodyRead)) bodyRead = since();
        if (p.tensors === p.totalTensors) decoded ??= since();
      },
    });
  }
  if (!session) {
    return { headers, bodyRead, decoded, session: null, first: null, bytes, output: null, load1 };
  }
  const ready = since();
  const outputs = await session.run(feeds!(session.inputNames));
  const first = since();
  const out = outputs[session.outputNames[0]!]!.data as Float32Array;
  return { headers, bodyRead, decoded, session: ready, first, bytes, output: mean(out), load1 };
}

// ---------------------------------------------------------------------------------------------
// Orchestration

/** One served body. */
interface Served {
  /** Its path on the server. */
  readonly name: string;
  /** Null for the random probe. */
  readonly model: ModelName | null;
  readonly kind: FileKind | "probe";
  /** On disk; null for the probe. */
  readonly path: string | null;
  readonly bytes: number;
}

/** Random bytes that check the link's rate apart from the model files' fixed overheads. */
const PROBE: Served = { name: "probe", model: null, kind: "probe", path: null, bytes: 25_000_000 };

/** One case of the tables. */
interface Case {
  readonly file: Served;
  readonly mode: ClientJob["mode"];
  readonly mbits: number;
  readonly workers: number | null;
}

function fileLabel(f: Served): string {
  return f.model === null ? "random bytes" : `${MODELS[f.model].label} ${f.kind}`;
}

function caseLabel(c: Case): string {
  const w = c.workers === null ? "" : `, ${c.workers} worker${c.workers > 1 ? "s" : ""}`;
  return `${c.mode === "transfer" ? "transfer of " : ""}${fileLabel(c.file)} at ${c.mbits}${w}`;
}

async function command(args: string[], what: string): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    console.error(new TextDecoder().decode(stderr));
    throw new Error(`${what} failed with exit code ${code}`);
  }
}

/** Makes (or reuses) the files of `model`. */
async function prepareFiles(
  model: ModelName,
  kinds: readonly FileKind[],
  resweep: boolean,
): Promise<Served[]> {
  const spec = MODELS[model];
  const files: Served[] = [];
  const add = async (kind: FileKind, url: URL) => {
    const bytes = (await Deno.stat(url)).size;
    files.push({ name: `${model}.${kind}`, model, kind, path: url.pathname, bytes });
  };
  if (kinds.includes("onnx")) await add("onnx", spec.onnx);
  if (kinds.includes("nnr-default")) {
    const out = new URL(`${model}.nnr`, cache);
    const started = performance.now();
    await command(
      ["run", "-A", "cli.ts", "compress", spec.onnx.pathname, "-o", out.pathname, "--force"],
      `cli.ts compress ${model}`,
    );
    console.error(
      `${model}: compressed at the defaults in ${s2((performance.now() - started) / 1000)} s`,
    );
    await add("nnr-default", out);
  }
  if (kinds.includes("nnr-sweep") && spec.data) {
    const out = new URL(`${model}.sweep.nnr`, cache);
    if (spec.sweptBy) {
      if (await exists(out)) await add("nnr-sweep", out);
      else console.error(`${model}: no sweep file; \`${spec.sweptBy}\` makes it`);
      return files;
    }
    if (resweep || !(await exists(out))) {
      console.error(`${model}: sweeping (once: ${out.pathname} is reused later)`);
      await command(
        ["run", "-A", "cli.ts", "sweep", spec.onnx.pathname, "--data", spec.data.pathname]
          .concat(["-o", out.pathname, "--force"]),
        `cli.ts sweep ${model}`,
      );
    }
    await add("nnr-sweep", out);
  }
  return files;
}

/** Starts the server process; returns its port and the process. */
async function startServer(
  files: readonly Served[],
): Promise<{ port: number; process: Deno.ChildProcess }> {
  const args = ["run", "-A", self, "--serve", "--probe", String(PROBE.bytes)];
  for (const f of files) args.push("--file", `${f.name}=${f.path}`);
  const process = new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("The server process ended before it listened");
    text += value;
  }
  const { port } = JSON.parse(text.slice(0, text.indexOf("\n"))) as { port: number };
  // Keep draining its stdout so that the process never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done);
  })();
  return { port, process };
}

async function runClient(job: ClientJob): Promise<ClientResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", self, "--client", JSON.stringify(job)],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (out.code !== 0) {
    console.error(new TextDecoder().decode(out.stderr));
    throw new Error(`Client ${JSON.stringify(job)} failed with exit code ${out.code}`);
  }
  return JSON.parse(stdout.slice(stdout.lastIndexOf("\n") + 1)) as ClientResult;
}

function list(value: string, name: string): string[] {
  const items = value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new RangeError(`--${name} needs at least one value`);
  return items;
}

function numbers(value: string, name: string): number[] {
  return list(value, name).map((s) => {
    const n = Number(s);
    if (!(n > 0)) throw new RangeError(`Bad --${name} value: ${s}`);
    return n;
  });
}

function s2(x: number): string {
  return x.toFixed(2);
}

/** Medians of one case's runs. */
interface Row {
  readonly c: Case;
  readonly first: number;
  readonly firstMin: number;
  readonly firstMax: number;
  readonly headers: number;
  readonly bodyRead: number;
  readonly bodyReadMin: number;
  readonly bodyReadMax: number;
  readonly decoded: number;
  readonly session: number;
  readonly sessionMin: number;
  readonly sessionMax: number;
  readonly inference: number;
}

function summarise(c: Case, runs: readonly ClientResult[]): Row {
  const firsts = runs.map((r) => r.first ?? NaN);
  const reads = runs.map((r) => r.bodyRead);
  const sessions = runs.map((r) => r.session ?? NaN);
  return {
    c,
    first: median(firsts),
    firstMin: Math.min(...firsts),
    firstMax: Math.max(...firsts),
    headers: median(runs.map((r) => r.headers)),
    bodyRead: median(reads),
    bodyReadMin: Math.min(...reads),
    bodyReadMax: Math.max(...reads),
    decoded: median(runs.map((r) => r.decoded ?? NaN)),
    session: median(sessions),
    sessionMin: Math.min(...sessions),
    sessionMax: Math.max(...sessions),
    inference: median(runs.map((r) => (r.first ?? NaN) - (r.session ?? NaN))),
  };
}

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** The transfer-only time of `file` at `mbits`. */
function linkSeconds(transfers: readonly Row[], file: Served, mbits: number): number {
  return transfers.find((t) => t.c.file.name === file.name && t.c.mbits === mbits)?.bodyRead ?? NaN;
}

/** Notes under the table: where the inference is most of the time to the first result. */
function notes(rows: readonly Row[]): string[] {
  const models = new Set(rows.map((r) => r.c.file.model!));
  return [...models].flatMap((m) => {
    const out: string[] = [];
    const own = rows.filter((r) => r.c.file.model === m);
    const inference = own.map((r) => r.inference);
    if (median(inference) > 0.5 * median(own.map((r) => r.first))) {
      out.push(
        `${MODELS[m].label}: the first inference alone takes ` +
          `${s2(Math.min(...inference))}–${s2(Math.max(...inference))} s (medians per case), ` +
          `the same graph from either file; its spread between runs can hide the difference ` +
          `in the first result, which "session ready" shows.`,
      );
    }
    return out;
  });
}

/** For each model and rate: the soonest `.nnr` against the ONNX, and why where it is later. */
function verdict(rows: readonly Row[], transfers: readonly Row[]): string {
  const lines: string[] = [];
  const which = (r: Row) =>
    `${r.c.file.kind}, ${r.c.workers} worker${r.c.workers === 1 ? "" : "s"}`;
  for (const model of Object.keys(MODELS) as ModelName[]) {
    for (const mbits of new Set(rows.map((r) => r.c.mbits))) {
      const here = rows.filter((r) => r.c.file.model === model && r.c.mbits === mbits);
      const onnx = here.find((r) => r.c.file.kind === "onnx");
      const nnrs = here.filter((r) => r.c.file.kind !== "onnx");
      if (!onnx || nnrs.length === 0) continue;
      const compare = (median: (r: Row) => number, range: (r: Row) => [number, number]) => {
        const best = nnrs.reduce((a, b) => (median(b) < median(a) ? b : a));
        const gain = median(onnx) - median(best);
        const [min, max] = range(best);
        const [onnxMin, onnxMax] = range(onnx);
        const overlap = min <= onnxMax && onnxMin <= max;
        return {
          best,
          gain,
          overlap,
          text: `${s2(median(best))} s (${which(best)}) against ${s2(median(onnx))} s, ` +
            `${s2(Math.abs(gain))} s ${gain > 0 ? "sooner" : "later"}` +
            (overlap ? " (the ranges overlap)" : ""),
        };
      };
      const first = compare((r) => r.first, (r) => [r.firstMin, r.firstMax]);
      const ready = compare((r) => r.session, (r) => [r.sessionMin, r.sessionMax]);
      let line = `- ${MODELS[model].label} at ${mbits} Mbit/s, the soonest .nnr against the ` +
        `ONNX: first result ${first.text}; session ready ${ready.text}.`;
      if (ready.gain < 0 && !ready.overlap) {
        // Split the loss: decoding that outlasts the ONNX's transfer, and the setup after it
        // (model assembly, onnxruntime's start, session creation) against the ONNX's setup.
        const best = ready.best;
        const decodeLate = best.decoded - onnx.bodyRead;
        const setup = best.session - best.decoded;
        const onnxSetup = onnx.session - onnx.bodyRead;
        line += ` The link delivers the .nnr in ${s2(linkSeconds(transfers, best.c.file, mbits))}` +
          ` s against the ONNX's ${s2(onnx.bodyRead)} s, but its last tensor is decoded at ` +
          `${s2(best.decoded)} s, ${s2(Math.abs(decodeLate))} s ` +
          `${decodeLate > 0 ? "after" : "before"} the ONNX's last byte; from there to a ready ` +
          `session takes ${s2(setup)} s against the ONNX's ${s2(onnxSetup)} s (onnxruntime's ` +
          `start and session creation; for the .nnr also the model's assembly). ` +
          (decodeLate > setup - onnxSetup
            ? "Decoding, slower than the link, sets its time."
            : "Most of the difference comes after decoding.");
      }
      lines.push(line);
    }
  }
  return lines.join("\n");
}

async function machine(): Promise<string> {
  let cpu = "unknown CPU";
  try {
    const m = (await Deno.readTextFile("/proc/cpuinfo")).match(/^model name\s*:\s*(.+)$/m);
    if (m) cpu = m[1]!.trim();
  } catch {
    // Not Linux: the CPU stays unnamed.
  }
  let commit = "?";
  try {
    const git = await new Deno.Command("git", {
      args: ["describe", "--always", "--dirty"],
      cwd: root,
      stdout: "piped",
      stderr: "null",
    }).output();
    commit = new TextDecoder().decode(git.stdout).trim() || "?";
  } catch {
    // No git: no commit.
  }
  return `${navigator.hardwareConcurrency}-core ${cpu}, Deno ${Deno.version.deno} (V8 ` +
    `${Deno.version.v8}), onnxruntime-web ${ort.env.versions.web ?? "?"}, checkout ${commit}, ` +
    `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function report(
  rows: readonly Row[],
  transfers: readonly Row[],
  options: { runs: number; environment: string; load: readonly number[]; args: string },
): string {
  const main = markdownTable(
    [
      "model",
      "file",
      "bytes",
      "Mbit/s",
      "workers",
      "first result, s (min–max)",
      "link, s",
      "body read, s",
      "decoded, s",
      "session ready, s",
      "inference, s",
      "vs ONNX",
    ],
    rows.map((r) => {
      const onnx = rows.find((o) =>
        o.c.file.model === r.c.file.model && o.c.mbits === r.c.mbits && o.c.file.kind === "onnx"
      );
      return [
        MODELS[r.c.file.model!].label,
        r.c.file.kind,
        r.c.file.bytes.toLocaleString("en-US"),
        String(r.c.mbits),
        r.c.workers === null ? "–" : String(r.c.workers),
        `${s2(r.first)} (${s2(r.firstMin)}–${s2(r.firstMax)})`,
        s2(linkSeconds(transfers, r.c.file, r.c.mbits)),
        s2(r.bodyRead),
        Number.isNaN(r.decoded) ? "–" : s2(r.decoded),
        s2(r.session),
        s2(r.inference),
        onnx && r !== onnx ? `${(r.first / onnx.first).toFixed(2)}×` : "",
      ];
    }),
  );
  const check = markdownTable(
    ["Mbit/s", "nominal, s", "measured, s (min–max)", "Mbit/s after the headers"],
    transfers.filter((t) => t.c.file.name === PROBE.name).map((t) => [
      String(t.c.mbits),
      s2(t.c.file.bytes * 8 / (t.c.mbits * 1e6)),
      `${s2(t.bodyRead)} (${s2(t.bodyReadMin)}–${s2(t.bodyReadMax)})`,
      (t.c.file.bytes * 8 / (t.bodyRead - t.headers) / 1e6).toFixed(1),
    ]),
  );
  const load = options.load.length
    ? `; load average ${Math.min(...options.load).toFixed(1)}–` +
      `${Math.max(...options.load).toFixed(1)} at the starts of the runs`
    : "";
  return [
    `\`npx deno run -A bench/cold_start.ts ${options.args}\`: from \`fetch()\` to the first ` +
    `inference result with onnxruntime-web (wasm, one thread), in a fresh Deno process per ` +
    `measurement, from a server process on 127.0.0.1 that paces each body through a token ` +
    `bucket (16 KiB chunks, at most ${BURST_MS} ms of the rate in the bucket, no added latency; ` +
    `Mbit/s = 10^6 bit/s). nnr-default: \`cli.ts compress\` at the defaults, made at the start ` +
    `of the run; nnr-sweep: \`cli.ts sweep --data\` on the zoo's MNIST test digits (LeNets), and ` +
    `for IS-Net the planned sweep of bench/sweep_bench.ts (SNR ≥ 20 dB of the mask on six ` +
    `photographs, confirmed on three it did not search on; silero VAD has no data here). ONNX: ` +
    `the whole body ` +
    `(\`arrayBuffer()\`), then \`InferenceSession.create(bytes)\`; \`.nnr\`: ` +
    `\`loadModel(response, { ort, workers })\`, which decodes as the body arrives. Then one ` +
    `\`session.run()\`. Both paths include onnxruntime's own start (its wasm is compiled at the ` +
    `first session). Medians of ${options.runs} runs per case, the cases interleaved.`,
    `Columns: "link" is the time the link takes to deliver the file to a process that only reads ` +
    `it (its own runs, from \`fetch()\` to the last byte). The other times count from ` +
    `\`fetch()\` in the measuring process: "body read" is when the last byte was read (for an ` +
    `\`.nnr\` by \`loadModel()\`, which reads no faster than it decodes), "decoded" when the ` +
    `last tensor was decoded, "session ready" when the session was created; "inference" is the ` +
    `\`run()\` alone; "vs ONNX" divides the first-result time by the ONNX's at the same rate.`,
    `${options.environment}${load}.`,
    main,
    ...notes(rows),
    `**The link.** ${PROBE.bytes / 1e6} MB of random bytes, fetched by a fresh process that only ` +
    `reads them, once per run ("measured": from \`fetch()\` to the last byte; the rate counts ` +
    `from the response headers, so it leaves out the process's first connection):`,
    check,
    `**Sooner or later than the ONNX.**`,
    verdict(rows, transfers),
  ].join("\n\n");
}

/** Replaces the `## Cold start` section of bench/README.md, or appends it. */
async function writeSection(body: string): Promise<void> {
  const url = new URL("README.md", import.meta.url);
  const heading = "## Cold start";
  const section = `${heading}\n\n${body.trim()}\n`;
  let text = await Deno.readTextFile(url);
  const start = text.indexOf(`\n${heading}\n`);
  if (start < 0) {
    text = `${text.trimEnd()}\n\n${section}`;
  } else {
    const next = text.indexOf("\n## ", start + heading.length + 1);
    text = text.slice(0, start + 1) + section + (next >= 0 ? `\n${text.slice(next + 1)}` : "");
  }
  await Deno.writeTextFile(url, text);
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", url.pathname] }).output();
}

/** Everything a run measured, kept in .cache/cold_start/ so that `--report` can render it again. */
interface Saved {
  readonly runs: number;
  readonly environment: string;
  readonly load: readonly number[];
  readonly args: string;
  readonly measured: readonly { readonly c: Case; readonly results: readonly ClientResult[] }[];
}

const SAVED = new URL("last_run.json", cache);

function render(saved: Saved): string {
  const summary = (transfer: boolean) =>
    saved.measured.filter((m) => (m.c.mode === "transfer") === transfer)
      .map((m) => summarise(m.c, m.results));
  return report(summary(false), summary(true), saved);
}

async function main(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: {
      runs: { type: "string", default: "3" },
      models: { type: "string", default: "lenet300,lenet5,silero,isnet" },
      rates: { type: "string", default: "50,200,1000" },
      workers: { type: "string", default: "1,2" },
      files: { type: "string", default: FILE_KINDS.join(",") },
      resweep: { type: "boolean", default: false },
      write: { type: "boolean", default: false },
      report: { type: "boolean", default: false },
      // Internal: the server and client processes.
      serve: { type: "boolean", default: false },
      file: { type: "string", multiple: true, default: [] },
      probe: { type: "string", default: "0" },
      client: { type: "string" },
    },
  });
  if (v.serve) return await serve(v.file, Number(v.probe));
  if (v.client !== undefined) {
    console.log(JSON.stringify(await client(JSON.parse(v.client) as ClientJob)));
    // Workers that loadModel() started must not keep the process alive.
    Deno.exit(0);
  }
  if (v.report) {
    const text = render(JSON.parse(await Deno.readTextFile(SAVED)) as Saved);
    console.log(text);
    if (v.write) await writeSection(text);
    return;
  }
  const runs = Number(v.runs);
  if (!(Number.isInteger(runs) && runs > 0)) throw new RangeError(`Bad --runs ${v.runs}`);
  const models = list(v.models, "models").map((m) => {
    if (!(m in MODELS)) throw new RangeError(`Unknown model ${m}: ${Object.keys(MODELS)}`);
    return m as ModelName;
  });
  const kinds = list(v.files, "files").map((k) => {
    if (!FILE_KINDS.includes(k as FileKind)) throw new RangeError(`Unknown file ${k}`);
    return k as FileKind;
  });
  const rates = numbers(v.rates, "rates");
  const workerCounts = numbers(v.workers, "workers");

  await Deno.mkdir(cache, { recursive: true });
  const files: Served[] = [];
  for (const model of models) {
    const spec = MODELS[model];
    if (!(await exists(spec.onnx))) {
      console.error(`Skipping ${model}: ${spec.onnx.pathname} is missing (${spec.missing})`);
      continue;
    }
    files.push(...await prepareFiles(model, kinds, v.resweep));
  }
  if (files.length === 0) throw new Error("Nothing to measure");

  const cases: Case[] = [];
  for (const mbits of rates) cases.push({ file: PROBE, mode: "transfer", mbits, workers: null });
  for (const file of files) {
    for (const mbits of rates) {
      cases.push({ file, mode: "transfer", mbits, workers: null });
      if (file.kind === "onnx") cases.push({ file, mode: "onnx", mbits, workers: null });
      else for (const workers of workerCounts) cases.push({ file, mode: "nnr", mbits, workers });
    }
  }
  const environment = await machine();
  const server = await startServer(files);
  const results = new Map<Case, ClientResult[]>(cases.map((c) => [c, []]));
  const load: number[] = [];
  // Saved after every measurement, so that an interrupted run can still be reported
  // (`--report`): the cases of the last, incomplete round are left out.
  const save = async (complete: number): Promise<Saved> => {
    const saved: Saved = {
      runs: complete,
      environment,
      load,
      args: args.filter((a) => a !== "--write").join(" "),
      measured: cases.map((c) => ({ c, results: results.get(c)!.slice(0, complete) })),
    };
    await Deno.writeTextFile(SAVED, JSON.stringify(saved));
    return saved;
  };
  try {
    for (let r = 0; r < runs; r++) {
      for (const c of cases) {
        const result = await runClient({
          url: `http://127.0.0.1:${server.port}/${c.file.name}?mbits=${c.mbits}`,
          mode: c.mode,
          model: c.file.model,
          workers: c.workers ?? 1,
          bytes: c.file.bytes,
        });
        if (result.bytes !== c.file.bytes) {
          throw new Error(`${caseLabel(c)}: received ${result.bytes} of ${c.file.bytes} bytes`);
        }
        results.get(c)!.push(result);
        load.push(result.load1);
        await save(r);
        console.error(
          `run ${r + 1}/${runs}, ${caseLabel(c)}: body read ${s2(result.bodyRead)} s` +
            (result.first === null ? "" : `, session ${s2(result.session!)} s, first result ` +
              `${s2(result.first)} s, output mean ${result.output!.toPrecision(6)}`) +
            `, load ${result.load1.toFixed(2)}`,
        );
      }
      await save(r + 1);
    }
  } finally {
    server.process.kill("SIGTERM");
    await server.process.status;
  }
  const text = render(await save(runs));
  console.log(text);
  if (v.write) await writeSection(text);
}

if (import.meta.main) await main(Deno.args);
