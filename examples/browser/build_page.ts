/**
 * Builds the browser example into a folder that any static file server can serve: the page and
 * its worker bundled by esbuild (`main.js`, `worker.js`), `index.html`, and onnxruntime-web's
 * WebAssembly binary. The model (`model.nnr`) and the digits (`digits.json`) are the caller's to
 * add.
 *
 * @module
 */
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";

const HERE = new URL("./", import.meta.url);

/** The onnxruntime-web binary that `onnxruntime-web/wasm` loads, from `npm ci`. */
export const ORT_WASM_FILE = "ort-wasm-simd-threaded.wasm";
const ORT_WASM = new URL(`../../node_modules/onnxruntime-web/dist/${ORT_WASM_FILE}`, HERE);

/**
 * Bundles the page and its worker and copies what they need into a folder.
 *
 * @param outDir An existing folder; files of the same names are overwritten.
 * @returns The names of the files written.
 * @throws {Error} If esbuild fails (its messages are printed) or a file is missing.
 */
export async function buildPage(outDir: string): Promise<string[]> {
  try {
    await esbuild.build({
      entryPoints: ["main.ts", "worker.ts"].map((f) => fileURLToPath(new URL(f, HERE))),
      bundle: true,
      format: "esm",
      platform: "browser",
      outdir: outDir,
      logLevel: "error",
    });
  } finally {
    // esbuild runs as a child process until stopped.
    await esbuild.stop();
  }
  await Deno.copyFile(new URL("index.html", HERE), `${outDir}/index.html`);
  await Deno.copyFile(ORT_WASM, `${outDir}/${ORT_WASM_FILE}`);
  return ["index.html", "main.js", "worker.js", ORT_WASM_FILE];
}
