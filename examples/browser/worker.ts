/**
 * The page's decoder worker: downloads the NNR file, decodes each tensor as soon as its bytes
 * have arrived (the project's `DecoderStream`), rebuilds the ONNX model from the skeleton the
 * file carries, and classifies the page's digits with onnxruntime-web (WebAssembly, one thread).
 * It reports progress, every decoded tensor (with a SHA-256 of its data) and the result to the
 * page by `postMessage` (`_messages.ts`).
 *
 * @module
 */
import { sha256Hex } from "../../core/sha256.ts";
import * as ort from "onnxruntime-web/wasm";
import { DecoderStream, modelBytes } from "../../decoder/mod.ts";
import { joinOnnx } from "../../model/mod.ts";
import type { StartMessage, WorkerMessage } from "./_messages.ts";

// The part of the worker global scope used here. Declared locally because the DOM and WebWorker
// libraries cannot both be in the one program that `deno check .` builds, and the page needs DOM.
interface WorkerScope {
  postMessage(message: WorkerMessage, transfer?: ArrayBuffer[]): void;
  addEventListener(
    type: "message",
    listener: (event: MessageEvent<StartMessage>) => void,
    options?: { once?: boolean },
  ): void;
}
const scope = globalThis as unknown as WorkerScope;

scope.addEventListener("message", (event) => {
  run(event.data).catch((e: unknown) => {
    scope.postMessage({ type: "error", message: e instanceof Error ? e.message : String(e) });
  });
}, { once: true });

async function run(start: StartMessage): Promise<void> {
  const t0 = performance.now();
  const response = await fetch(start.modelUrl);
  if (!response.ok || response.body === null) {
    throw new Error(`Cannot download ${start.modelUrl}: HTTP ${response.status}`);
  }
  const length = response.headers.get("content-length");
  const total = length === null ? null : Number(length);
  let received = 0;
  const counted = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        received += chunk.length;
        scope.postMessage({ type: "progress", received, total });
        controller.enqueue(chunk);
      },
    }),
  );

  // Each tensor goes into the model in its original dtype as soon as it is decoded, so no more
  // than one tensor is held in float32 at a time.
  const decoder = new DecoderStream();
  const slots = new Map<number, Uint8Array>();
  // A reader rather than `for await`: not every browser can iterate a ReadableStream yet.
  const tensors = counted.pipeThrough(decoder).getReader();
  for (;;) {
    const { done, value: t } = await tensors.read();
    if (done) break;
    const receivedAt = received;
    if (t.slot === undefined) throw new Error(`Tensor "${t.name}" has no place in the model`);
    const bytes = modelBytes(t);
    slots.set(t.slot, bytes);
    scope.postMessage({
      type: "tensor",
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      sha256: await sha256Hex(bytes),
      receivedAt,
    });
  }
  const { model } = await decoder.header;
  const t1 = performance.now();
  if (model?.format !== "onnx") throw new Error("The file carries no ONNX model");

  const onnx = joinOnnx(model.skeleton, slots);
  slots.clear();
  // Both are read when the first session is created. One thread: a page that is not
  // cross-origin isolated has no SharedArrayBuffer for more. Only the .wasm file is named: the
  // JavaScript glue that loads it is part of the bundle (a prefix here would fetch that too).
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = { wasm: start.wasmUrl };
  const session = await ort.InferenceSession.create(onnx, { executionProviders: ["wasm"] });
  const t2 = performance.now();
  try {
    const inputName = session.inputNames[0];
    const outputName = session.outputNames[0];
    if (inputName === undefined || outputName === undefined) {
      throw new Error("The model has no input or no output");
    }
    const features = start.pixels.length / start.count;
    const input = new ort.Tensor("float32", start.pixels, [start.count, features]);
    const output = (await session.run({ [inputName]: input }))[outputName];
    const t3 = performance.now();
    if (output?.type !== "float32") throw new Error(`Output "${outputName}" is not float32`);
    const logits = Float32Array.from(output.data as Float32Array);
    scope.postMessage({
      type: "done",
      bytes: received,
      modelBytes: onnx.length,
      logits,
      classes: logits.length / start.count,
      timings: { downloadAndDecode: t1 - t0, session: t2 - t1, inference: t3 - t2 },
    }, [logits.buffer]);
  } finally {
    await session.release();
  }
}
