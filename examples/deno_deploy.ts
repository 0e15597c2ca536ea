/**
 * An MNIST classifier served from a compressed model, for `deno serve` and Deno Deploy.
 *
 * The NNR file is read once, streaming, from `MODEL_URL` (fetched) or `MODEL_PATH` (a local
 * file): one branch of the byte stream goes through `loadModel()` into an onnxruntime-web
 * session, the other through `decode()` to the SHA-256 digest of each decoded tensor.
 *
 * ```sh
 * deno run -A cli.ts compress ../shared/zoo/lenet300_mnist.onnx -o /tmp/lenet300.nnr
 * MODEL_PATH=/tmp/lenet300.nnr deno serve -A examples/deno_deploy.ts
 * curl -s localhost:8000/tensors
 * curl -s localhost:8000 -d "$(deno eval 'console.log(JSON.stringify({ input: Array(784).fill(0) }))')"
 * ```
 *
 * - `POST /` with `{ "input": number[784] }` (pixels in [0, 1]) answers
 *   `{ "logits": number[10], "class": n }`.
 * - `GET /tensors` answers `[{ "name", "dtype", "shape", "sha256" }]`: the hex SHA-256 of each
 *   decoded tensor's float32 values (little-endian bytes), in file order.
 * - `GET /` answers a short description once the model is loaded (503 if it cannot be), so it
 *   serves as a readiness check.
 *
 * onnxruntime-web runs single-threaded here: Deno Deploy offers no threads to its WebAssembly.
 *
 * @module
 */
import * as ort from "onnxruntime-web/wasm";
import { decode, loadModel } from "../decoder/mod.ts";

/** Pixels per MNIST digit (28 × 28). */
const INPUT_SIZE = 784;

/** What is kept once the model has been loaded. */
interface Loaded {
  readonly session: ort.InferenceSession;
  readonly inputName: string;
  readonly outputName: string;
  readonly tensors: readonly TensorDigest[];
}

/** One decoded tensor, as `GET /tensors` lists it. */
interface TensorDigest {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly sha256: string;
}

/** The NNR file as a byte stream, from `MODEL_URL` or `MODEL_PATH`. */
async function openModel(): Promise<ReadableStream<Uint8Array>> {
  const url = Deno.env.get("MODEL_URL");
  const path = Deno.env.get("MODEL_PATH");
  if (url) {
    const response = await fetch(url);
    if (!response.ok || !response.body) {
      throw new Error(`Cannot fetch the model: ${url} answered ${response.status}`);
    }
    return response.body;
  }
  if (path) return (await Deno.open(path)).readable;
  throw new Error("Cannot load the model: set MODEL_URL or MODEL_PATH to an NNR file");
}

function hex(digest: ArrayBuffer): string {
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function load(): Promise<Loaded> {
  const started = performance.now();
  const [forSession, forDigests] = (await openModel()).tee();
  ort.env.wasm.numThreads = 1;
  const [session, decoded] = await Promise.all([
    loadModel(forSession, { ort, sessionOptions: { executionProviders: ["wasm"] } }),
    decode(forDigests),
  ]);
  const tensors = await Promise.all(decoded.tensors.map(async (t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    sha256: hex(
      await crypto.subtle.digest(
        "SHA-256",
        new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      ),
    ),
  })));
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  if (inputName === undefined || outputName === undefined) {
    throw new Error("Cannot serve the model: it needs an input and an output");
  }
  const ms = (performance.now() - started).toFixed(0);
  console.error(`model loaded in ${ms} ms: ${tensors.length} tensors, input "${inputName}"`);
  return { session, inputName, outputName, tensors };
}

// Loading starts with the isolate, so the first request does not pay for all of it; a failed
// load is forgotten, so the next request tries again.
let loading: Promise<Loaded> | null = null;
function model(): Promise<Loaded> {
  loading ??= load().catch((e) => {
    loading = null;
    throw e;
  });
  return loading;
}
model().catch((e) => console.error(`model failed to load: ${e instanceof Error ? e.message : e}`));

// onnxruntime-web runs one inference at a time per session; requests queue here.
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
  let body: unknown;
  try {
    body = await request.json();
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
      model: "MNIST classifier from an NNR file",
      tensors: m.tensors.length,
      usage: `POST / {"input": number[${INPUT_SIZE}]} -> {"logits", "class"}; GET /tensors`,
    });
  }
  if (request.method !== "POST") return error(405, "Use GET or POST");
  const x = await readInput(request);
  return typeof x === "string" ? error(400, x) : await classify(m, x);
}

export default { fetch: handle } satisfies Deno.ServeDefaultExport;
