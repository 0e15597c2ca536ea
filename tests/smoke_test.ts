import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import * as root from "../mod.ts";
import * as decoder from "../decoder/mod.ts";
import * as encoder from "../encoder/mod.ts";
import * as model from "../model/mod.ts";

Deno.test("deno.json names the package and maps its entry points", () => {
  assert.equal(denoJson.name, "@deepcabac/deepcabac");
  assert.match(denoJson.version, /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/);
  assert.deepEqual(denoJson.exports, {
    ".": "./mod.ts",
    "./decoder": "./decoder/mod.ts",
    "./encoder": "./encoder/mod.ts",
    "./model": "./model/mod.ts",
  });
});

Deno.test("mod.ts re-exports everything the decoder, encoder and model modules export", () => {
  for (
    const [name, value] of [
      ...Object.entries(decoder),
      ...Object.entries(encoder),
      ...Object.entries(model),
    ]
  ) {
    assert.ok(name in root, `mod.ts is missing the export "${name}"`);
    assert.equal((root as Record<string, unknown>)[name], value);
  }
});
