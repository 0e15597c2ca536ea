/**
 * The request handling both edge examples share (`deno_deploy.ts`, `cloudflare/worker.ts`): load
 * a compressed MNIST classifier once, streaming, into an onnxruntime-web session and into the
 * per-tensor digests, then answer:
 *
 * - `POST /` with `{ "input": number[784] }` (pixels in [0, 1]):
 *   `{ "logits": number[10], "class": n }`;
 * - `GET /tensors`: `[{ "name", "dtype", "shape", "sha256" }]`, the hex SHA-256 of each decoded
 *   tensor's float32 values (little-endian bytes), in file order, to compare with another decoder;
 * - `GET /`: a short description once the model is loaded (503 if it cannot be).
 *
 * @module
 */
import type * as Ort from "onnxruntime-web/wasm";
import { decode, loadModel, type OrtModule } from "../decoder/mod.ts";
import { sha256Hex } from "../core/sha256.ts";

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
  readonly session: Ort.InferenceSession;
  readonly inputName: string;
  readonly outputName: string;
  readonly tensors: readonly TensorDigest[];
}

/** What a runtime supplies. */
export interface MnistServiceOptions {
  /** Opens the NNR file as a byte stream. */
  readonly open: () => Promise<ReadableStream<Uint8Array>>;
  /** The onnxruntime module (or a shim of its `InferenceSession`) for `loadModel()`. */
  readonly ort: OrtModule<Ort.InferenceSession>;
  /** onnxruntime's `Tensor` class, from the same module instance as the sessions. */
  readonly Tensor: typeof Ort.Tensor;
  /** What `GET /` calls the service. */
  readonly title: string;
}

/** Float32 values as little-endian bytes, whatever the platform's byte order. */
function float32LE(values: ArrayLike<number>): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return bytes;
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

/**
 * Creates the service. Loading starts on the first call of `model()` (the first request, or an
 * early call by a runtime that allows work outside requests); a failed load is forgotten, so the
 * next request tries again.
 *
 * @param options Where the model comes from and the onnxruntime to run it.
 * @returns `fetch`, the request handler, and `model`, which starts or awaits loading.
 */
export function mnistService(options: MnistServiceOptions): {
  fetch: (request: Request) => Promise<Response>;
  model: () => Promise<unknown>;
} {
  async function load(): Promise<Loaded> {
    const [forSession, forDigests] = (await options.open()).tee();
    const [session, decoded] = await Promise.all([
      loadModel(forSession, { ort: options.ort }),
      decode(forDigests),
    ]);
    const tensors: TensorDigest[] = [];
    for (const t of decoded.tensors) {
      const hash = await sha256Hex(float32LE(t.data));
      tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, sha256: hash });
    }
    const inputName = session.inputNames[0];
    const outputName = session.outputNames[0];
    if (inputName === undefined || outputName === undefined) {
      throw new Error("Cannot serve the model: it needs an input and an output");
    }
    return { session, inputName, outputName, tensors };
  }

  let loading: Promise<Loaded> | null = null;
  function model(): Promise<Loaded> {
    loading ??= load().catch((e) => {
      loading = null;
      throw e;
    });
    return loading;
  }

  // One session runs one inference at a time; concurrent requests queue here.
  let queue: Promise<unknown> = Promise.resolve();
  function serialized<T>(task: () => Promise<T>): Promise<T> {
    const result = queue.then(task, task);
    queue = result.catch(() => {});
    return result;
  }

  async function classify(m: Loaded, x: Float32Array<ArrayBuffer>): Promise<Response> {
    const feeds = { [m.inputName]: new options.Tensor("float32", x, [1, INPUT_SIZE]) };
    const outputs = await serialized(() => m.session.run(feeds));
    const out = outputs[m.outputName];
    if (out?.type !== "float32") return error(500, `Output "${m.outputName}" is not float32`);
    const logits = Array.from(out.data as Float32Array);
    out.dispose();
    let best = 0;
    for (let c = 1; c < logits.length; c++) if (logits[c]! > logits[best]!) best = c;
    return json({ logits, class: best });
  }

  async function fetch(request: Request): Promise<Response> {
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
        model: options.title,
        tensors: m.tensors.length,
        usage: `POST / {"input": number[${INPUT_SIZE}]} -> {"logits", "class"}; GET /tensors`,
      });
    }
    if (request.method !== "POST") return error(405, "Use GET or POST");
    const x = await readInput(request);
    return typeof x === "string" ? error(400, x) : await classify(m, x);
  }

  return { fetch, model };
}
