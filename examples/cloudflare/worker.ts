/**
 * A Cloudflare Worker that serves an MNIST classifier from a DeepCABAC-compressed model (an NNR
 * file from `deno run -A cli.ts compress model.onnx -o model.nnr`), decoded inside the Worker.
 *
 * - `POST /` with `{ "input": number[784] }` (pixels in [0, 1]) answers
 *   `{ "logits": number[10], "class": n }`.
 * - `GET /tensors` answers `[{ "name", "dtype", "shape", "sha256" }]`: for each tensor the file
 *   codes, in file order, the hex SHA-256 of its decoded values as float32 little-endian, to
 *   compare with another decoder's output.
 * - `GET /` answers a short description once the model is loaded (503 if it cannot be).
 *
 * The NNR file is a data module (`./model.nnr`, a Wrangler `Data` rule). The first request
 * streams it through the decoder twice over (`loadModel()` into an onnxruntime-web session,
 * `decode()` into the digests); the result is kept for the life of the isolate, and a failed load
 * is retried by the next request. Inference runs in onnxruntime-web on its WebAssembly backend,
 * single-threaded. Workers cannot compile WebAssembly from bytes, so its `.wasm` is imported as a
 * module and handed over by {@linkcode precompiledOrt}.
 *
 * Bundle it for workerd with esbuild, web platform only; the `.wasm` (copied beside the bundle)
 * and the model stay separate modules:
 *
 * ```sh
 * esbuild examples/cloudflare/worker.ts --bundle --format=esm --platform=browser \
 *   --outdir=dist --loader:.wasm=copy --asset-names=[name] --external:./model.nnr
 * ```
 *
 * or let Wrangler bundle it (`examples/cloudflare/wrangler.toml`).
 *
 * @module
 */
import * as ort from "onnxruntime-web/wasm";
// @ts-types="./_wasm_module.d.ts"
import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
// @ts-types="./_data_module.d.ts"
import modelFile from "./model.nnr";
import { decode, loadModel } from "../../decoder/mod.ts";
import { precompiledOrt } from "./precompiled_ort.ts";

/** Pixels per MNIST digit (28 × 28). */
const INPUT_SIZE = 784;
/** Largest request body read, in bytes (784 numbers as JSON take about 16 kB). */
const MAX_BODY_BYTES = 1 << 20;

/** One decoded tensor, as `GET /tensors` lists it. */
interface TensorDigest {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly sha256: string;
}

/** What is kept once the model has been loaded. */
interface Loaded {
  readonly session: ort.InferenceSession;
  readonly inputName: string;
  readonly outputName: string;
  readonly tensors: readonly TensorDigest[];
}

const onnx = precompiledOrt(ort, ortWasm);

/** Float32 values as little-endian bytes, whatever the platform's byte order. */
function float32LE(values: Float32Array | Int8Array | Int16Array | Int32Array | Uint16Array) {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return bytes;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function load(): Promise<Loaded> {
  // The data module is already in memory; it is still fed as a stream, so that the decoder's
  // streaming path is what runs here.
  const [forSession, forDigests] = new Blob([modelFile]).stream().tee();
  const [session, decoded] = await Promise.all([
    loadModel(forSession, { ort: onnx }),
    decode(forDigests),
  ]);
  const tensors: TensorDigest[] = [];
  for (const t of decoded.tensors) {
    const hash = await sha256(float32LE(t.data));
    tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, sha256: hash });
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  if (inputName === undefined || outputName === undefined) {
    throw new Error("Cannot serve the model: it needs an input and an output");
  }
  return { session, inputName, outputName, tensors };
}

// Loading cannot start at global scope (a Worker may not run asynchronous work outside a
// request), so the first request starts it and later ones wait for the same promise.
let loading: Promise<Loaded> | null = null;
function model(): Promise<Loaded> {
  loading ??= load().catch((e) => {
    loading = null;
    throw e;
  });
  return loading;
}

// One session runs one inference at a time; concurrent requests to the isolate queue here.
let queue: Promise<unknown> = Promise.resolve();
function serialized<T>(task: () => Promise<T>): Promise<T> {
  const result = queue.then(task, task);
  queue = result.catch(() => {});
  return result;
}

function json(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: { "cache-control": "no-store" } });
}

function error(status: number, message: string): Response {
  return json({ error: message }, status);
}

/** Reads `{ "input": number[784] }`, or says what is wrong with it. */
async function readInput(request: Request): Promise<Float32Array<ArrayBuffer> | string> {
  if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) {
    return `Body exceeds ${MAX_BODY_BYTES} bytes`;
  }
  const text = await request.text();
  if (text.length > MAX_BODY_BYTES) return `Body exceeds ${MAX_BODY_BYTES} bytes`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return "Body is not JSON";
  }
  const input = (body as { input?: unknown } | null)?.input;
  if (!Array.isArray(input) || input.length !== INPUT_SIZE) {
    return `Body needs "input": an array of ${INPUT_SIZE} numbers`;
  }
  const x = new Float32Array(INPUT_SIZE);
  for (let i = 0; i < INPUT_SIZE; i++) {
    const v = input[i];
    if (typeof v !== "number" || !Number.isFinite(v)) return `input[${i}] is not a finite number`;
    x[i] = v;
  }
  return x;
}

async function classify(m: Loaded, x: Float32Array<ArrayBuffer>): Promise<Response> {
  const feeds = { [m.inputName]: new ort.Tensor("float32", x, [1, INPUT_SIZE]) };
  const outputs = await serialized(() => m.session.run(feeds));
  const out = outputs[m.outputName];
  if (out?.type !== "float32") return error(500, `Output "${m.outputName}" is not float32`);
  const logits = Array.from(out.data as Float32Array);
  out.dispose();
  let best = 0;
  for (let c = 1; c < logits.length; c++) if (logits[c]! > logits[best]!) best = c;
  return json({ logits, class: best });
}

async function handle(request: Request): Promise<Response> {
  const { pathname } = new URL(request.url);
  if (pathname !== "/" && pathname !== "/tensors") return error(404, "Not found");
  let m: Loaded;
  try {
    m = await model();
  } catch (e) {
    return error(503, `Model is not loaded: ${e instanceof Error ? e.message : e}`);
  }
  if (pathname === "/tensors") {
    return request.method === "GET" ? json(m.tensors) : error(405, "Use GET");
  }
  if (request.method === "GET") {
    return json({
      model: "MNIST classifier from an NNR file, in a Cloudflare Worker",
      tensors: m.tensors.length,
      usage: `POST / {"input": number[${INPUT_SIZE}]} -> {"logits", "class"}; GET /tensors`,
    });
  }
  if (request.method !== "POST") return error(405, "Use GET or POST");
  const x = await readInput(request);
  return typeof x === "string" ? error(400, x) : await classify(m, x);
}

/** The Worker: module syntax, no bindings. */
export default { fetch: handle };
