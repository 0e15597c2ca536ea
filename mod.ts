/**
 * DeepCABAC for Deno: a TypeScript implementation of the DeepCABAC weight codec of MPEG NNC
 * (ISO/IEC 15938-17, neural network coding).
 *
 * This root entry point re-exports both halves of the codec. Import
 * `@deepcabac/deepcabac/decoder` or `@deepcabac/deepcabac/encoder` instead to pull in only one
 * of them.
 *
 * @module
 */

export * from "./decoder/mod.ts";
export * from "./encoder/mod.ts";
export * from "./model/mod.ts";
