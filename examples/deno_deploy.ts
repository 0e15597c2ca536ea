/**
 * An MNIST classifier served from a compressed model, for `deno serve` and Deno Deploy.
 *
 * The NNR file is read once, streaming, from `MODEL_URL` (fetched) or `MODEL_PATH` (a local
 * file): one branch of the byte stream goes through `loadModel()` into an onnxruntime-web
 * session, the other through `decode()` to the SHA-256 digest of each decoded tensor (the
 * handling shared with the Cloudflare example is in `_mnist_service.ts`).
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
import { mnistService } from "./_mnist_service.ts";

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

ort.env.wasm.numThreads = 1;
const service = mnistService({
  open: openModel,
  ort,
  Tensor: ort.Tensor,
  title: "MNIST classifier from an NNR file",
});

// Loading starts with the isolate, so the first request does not pay for all of it.
const started = performance.now();
service.model().then(
  () => console.error(`model loaded in ${(performance.now() - started).toFixed(0)} ms`),
  (e) => console.error(`model failed to load: ${e instanceof Error ? e.message : e}`),
);

export default { fetch: service.fetch } satisfies Deno.ServeDefaultExport;
