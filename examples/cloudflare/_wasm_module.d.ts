// Type of a `.wasm` import in a Cloudflare Worker (a Wrangler `CompiledWasm` module): the module,
// compiled by the runtime before the Worker starts. Used through `// @ts-types` so that Deno
// type-checks the import without reading the binary.
declare const module: WebAssembly.Module;
export default module;
