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
import { mnistService } from "../_mnist_service.ts";
import { precompiledOrt } from "./precompiled_ort.ts";

// Loading cannot start at global scope (a Worker may not run asynchronous work outside a
// request), so the first request starts it and later ones wait for the same promise. The data
// module is already in memory; it is still fed as a stream, so that the decoder's streaming path
// is what runs here.
const service = mnistService({
  open: () => Promise.resolve(new Blob([modelFile]).stream()),
  ort: precompiledOrt(ort, ortWasm),
  Tensor: ort.Tensor,
  title: "MNIST classifier from an NNR file, in a Cloudflare Worker",
});

/** The Worker: module syntax, no bindings. */
export default { fetch: service.fetch };
