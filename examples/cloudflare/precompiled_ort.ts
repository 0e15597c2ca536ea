/**
 * ONNX Runtime Web on a precompiled WebAssembly module, for runtimes that refuse to compile
 * WebAssembly from bytes (Cloudflare Workers / workerd: `WebAssembly.instantiate(bytes)` fails
 * with "Wasm code generation disallowed by embedder"). There, a `.wasm` file can only arrive as a
 * module import, which the runtime compiles at deploy time and hands over as a
 * `WebAssembly.Module`.
 *
 * onnxruntime-web has no option that takes a `WebAssembly.Module`: `env.wasm.wasmBinary` takes
 * bytes, which its Emscripten loader passes to `WebAssembly.instantiate(bytes, imports)`. So
 * `env.wasm.wasmBinary` is set to a marker buffer, and while a session is being created
 * `WebAssembly.instantiate` is wrapped: a call on the marker's bytes instantiates the
 * precompiled module with the loader's imports instead (instantiating a `Module` is allowed);
 * every other call goes to the original. The wrapper is removed as soon as no session creation
 * is pending. If a future onnxruntime-web stops handing the marker to `WebAssembly.instantiate`,
 * the runtime gets an empty buffer and fails loudly ("BufferSource argument is empty"), never
 * silently compiles something else.
 *
 * The module must be the `ort-wasm-simd-threaded.wasm` of the same onnxruntime-web version as
 * the JavaScript (its imports change between versions). The threaded build runs with one thread
 * here, but still needs shared WebAssembly memory, which workerd provides.
 *
 * @module
 */
import type * as Ort from "onnxruntime-web/wasm";

/** The part of onnxruntime-web that {@linkcode precompiledOrt} needs and returns. */
export interface OrtSessionFactory {
  /** Opens an ONNX model. */
  readonly InferenceSession: {
    create(
      model: Uint8Array,
      options?: Ort.InferenceSession.SessionOptions,
    ): Promise<Ort.InferenceSession>;
  };
}

type Instantiate = typeof WebAssembly.instantiate;

/**
 * Makes onnxruntime-web take its WebAssembly from an already compiled module.
 *
 * Sets `env.wasm.numThreads` to 1, turns the proxy worker off and points `env.wasm.wasmBinary`
 * at a marker, so call it before the first session is created and do not change those settings
 * afterwards.
 *
 * @param ort The onnxruntime-web module (`import * as ort from "onnxruntime-web/wasm"`).
 * @param wasm The compiled `ort-wasm-simd-threaded.wasm` of the same version (in a Worker:
 * `import wasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm"`).
 * @returns An object whose `InferenceSession.create()` opens sessions on the wasm backend with
 * that module, as `loadModel()` expects of its `ort` option.
 */
export function precompiledOrt(
  ort: Pick<typeof Ort, "env" | "InferenceSession">,
  wasm: WebAssembly.Module,
): OrtSessionFactory {
  if (!(wasm instanceof WebAssembly.Module)) {
    throw new TypeError("Cannot set up ONNX Runtime: expected a WebAssembly.Module");
  }
  const marker = new ArrayBuffer(0);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = marker;

  let pending = 0;
  let original: Instantiate | null = null;
  const hooked = (source: unknown, imports?: WebAssembly.Imports): Promise<unknown> => {
    const buffer = ArrayBuffer.isView(source) ? source.buffer : source;
    const instantiate = original ?? WebAssembly.instantiate;
    if (buffer === marker) {
      return instantiate(wasm, imports).then((instance) => ({ module: wasm, instance }));
    }
    return (instantiate as (s: unknown, i?: WebAssembly.Imports) => Promise<unknown>)(
      source,
      imports,
    );
  };

  return {
    InferenceSession: {
      async create(model, options = {}) {
        if (pending++ === 0) {
          original = WebAssembly.instantiate;
          Reflect.set(WebAssembly, "instantiate", hooked);
        }
        try {
          return await ort.InferenceSession.create(model, {
            executionProviders: ["wasm"],
            ...options,
          });
        } finally {
          if (--pending === 0 && original !== null) {
            Reflect.set(WebAssembly, "instantiate", original);
            original = null;
          }
        }
      },
    },
  };
}
