// The golden vectors of tests/testdata/ (made by tests/_golden.ts): the encoder still writes them
// byte for byte, and they decode to what they were made from.
import assert from "node:assert/strict";
import { decodePayload } from "../decoder/decode_payload.ts";
import { decodeDc2020 } from "../decoder/decode_dc2020.ts";
import { readNnrFile } from "../decoder/nnr_file.ts";
import { goldenCases, payloadGoldens } from "./_golden.ts";

const read = (file: string) => Deno.readFile(new URL(`testdata/${file}`, import.meta.url));

for (const c of goldenCases()) {
  Deno.test(`the encoder reproduces golden vector ${c.file} (${c.what})`, async () => {
    const want = await read(c.file);
    const got = await c.make();
    assert.equal(got.length, want.length, `${c.file}: length`);
    assert.deepEqual(got, want);
  });
}

Deno.test("golden payloads decode to their levels, with entry points for block scans", async () => {
  for (const [file, g] of Object.entries(payloadGoldens())) {
    const out = decodePayload(await read(file), g.params);
    assert.deepEqual(out.levels, g.levels, file);
    assert.equal(out.qp, g.qp, file);
    if (g.params.scanOrder > 0) assert.ok(out.entryPoints.length > 0, file);
  }
});

Deno.test("the golden DeepCABAC-2020 stream and model file decode", async () => {
  const dc = decodeDc2020(await read("dc2020_two_tensors.bin"), 2);
  assert.deepEqual(dc.tensors.map((t) => t.shape), [[30, 20], [20]]);
  assert.ok(dc.tensors[0]!.levels.some((q) => q !== 0));
  const file = await readNnrFile(await read("model.nnr"));
  // A tensor is coded only if its data unit is smaller than its raw bytes: at qp −75 the 24
  // biases just are (96 raw bytes), so nothing of the model stays raw in the skeleton.
  assert.deepEqual(file.tensors.map((t) => t.name), [
    "conv.weight",
    "conv.bias",
    "fc.weight",
    "steps",
  ]);
  assert.deepEqual([...file.tensors[3]!.values!], [1, 2, 3, 5, 8, -13]);
});
