// The fuzzer's short pass, as CI runs it, and the inputs earlier passes found failing
// (tests/testdata/fuzz/: mutated files that once ended in a TypeError or RangeError).
import assert from "node:assert/strict";
import { DecodeError } from "../core/errors.ts";
import { decode } from "../decoder/decode_stream.ts";
import { readNnrFile } from "../decoder/nnr_file.ts";
import { compressModel } from "../encoder/compress_model.ts";
import { fuzz } from "./fuzz.ts";

const conformanceDir = Deno.env.get("DEEPCABAC_CONFORMANCE_DIR");

Deno.test("fuzz: 20,000 seeded mutations of NNR files and models end in a correct decode or a DecodeError", async () => {
  const report = await fuzz({
    seed: 20261206,
    iters: 20_000,
    targets: ["nnr", "model"],
    ...(conformanceDir ? { conformanceDir } : {}),
  });
  assert.equal(report.cases, 20_000);
  assert.deepEqual(report.failures, []);
  // Most mutations are caught; some leave a file that still decodes to the same tensors.
  assert.ok((report.outcomes["DecodeError:corrupt"] ?? 0) > 5000, JSON.stringify(report.outcomes));
  assert.ok((report.outcomes["ok"] ?? 0) > 100, JSON.stringify(report.outcomes));
});

Deno.test("fuzz: the CLI's decompress and inspect fail cleanly on corrupt files, leaving no output", async () => {
  const report = await fuzz({ seed: 7, iters: 40, targets: ["cli"] });
  assert.deepEqual(report.failures, []);
  assert.ok((report.outcomes["cli error"] ?? 0) > 20, JSON.stringify(report.outcomes));
});

Deno.test("fuzz: inputs that once failed now end in a DecodeError or a decode", async () => {
  const dir = new URL("testdata/fuzz/", import.meta.url);
  let files = 0;
  for await (const entry of Deno.readDir(dir)) {
    const bytes = await Deno.readFile(new URL(entry.name, dir));
    const readers = entry.name.startsWith("nnr-")
      ? [() => readNnrFile(bytes), () => decode(bytes)]
      : [() => compressModel(bytes, entry.name.endsWith(".onnx") ? "onnx" : "safetensors")];
    for (const read of readers) {
      await read().catch((e) => assert.ok(e instanceof DecodeError, `${entry.name}: ${e}`));
    }
    files++;
  }
  assert.ok(files >= 5);
});
