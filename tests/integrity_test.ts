// What our files detect (docs/FORMAT.md 3): each class of defect the fuzzer found is pinned here on
// a small model file — truncation at every unit boundary, a changed base qp or qp density, a
// changed raw tensor in the skeleton, damaged metadata and model units (base64, deflate, JSON),
// and units that are not ours where ours should be.
import assert from "node:assert/strict";
import { deflate, formatMeta, META_HEADER, MODEL_HEADER, toBase64 } from "../core/container.ts";
import { crc32 } from "../core/crc32.ts";
import { DecodeError } from "../core/errors.ts";
import { decode, DecoderStream } from "../decoder/decode_stream.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { readNnrFile } from "../decoder/nnr_file.ts";
import { type NnrUnit, readNnrUnits } from "../decoder/nnr_units.ts";
import { compressModel } from "../encoder/compress_model.ts";
import { writeNnrUnit } from "../encoder/nnr_writer.ts";
import { concatBytes } from "../core/bytes.ts";
import { modelSeeds } from "./fuzz.ts";

/** A small model file of ours: coded weights, an int tensor and a bias left raw in the skeleton. */
async function ourFile(): Promise<Uint8Array> {
  const model = modelSeeds().find((s) => s.name === "small.safetensors")!;
  return (await compressModel(model.bytes, "safetensors")).bytes;
}

/** The file with unit `i` replaced by `unit` (or removed). */
function replaceUnit(bytes: Uint8Array, units: NnrUnit[], i: number, unit?: Uint8Array) {
  const u = units[i]!;
  return concatBytes([
    bytes.subarray(0, u.offset),
    unit ?? new Uint8Array(),
    bytes.subarray(u.offset + u.size),
  ]);
}

function topology(text: string): Uint8Array {
  return writeNnrUnit({
    type: 3,
    fields: { topology_storage_format: 0, topology_compression_format: 0, topology_data: text },
  }, 0);
}

/** Every reader rejects `bytes` with a DecodeError of `code`. */
async function rejectsEverywhere(bytes: Uint8Array, code: string, what: string): Promise<void> {
  const is = (e: unknown) => e instanceof DecodeError && e.code === code;
  await assert.rejects(readNnrFile(bytes), is, `readNnrFile: ${what}`);
  await assert.rejects(decode(bytes), is, `decode: ${what}`);
  await assert.rejects(decompressModel(bytes), is, `decompressModel: ${what}`);
  const stream = new Blob([bytes.slice()]).stream().pipeThrough(new DecoderStream());
  await assert.rejects(Array.fromAsync(stream), is, `DecoderStream: ${what}`);
}

Deno.test("a file of ours cut at any unit boundary is reported truncated by every reader", async () => {
  const bytes = await ourFile();
  const units = readNnrUnits(bytes);
  assert.ok(units.length >= 7, "start, parameters, 3 topology units and data units");
  for (const u of units.slice(1)) {
    await rejectsEverywhere(bytes.subarray(0, u.offset), "truncated", `cut at ${u.offset}`);
  }
  // Cut inside a unit: truncated too.
  for (const u of units) {
    await rejectsEverywhere(
      bytes.subarray(0, u.offset + (u.size >> 1)),
      "truncated",
      `cut inside ${u.offset}`,
    );
  }
});

Deno.test("any single byte cut from the end of a file of ours is detected", async () => {
  const bytes = await ourFile();
  for (let n = 1; n < bytes.length; n++) {
    await assert.rejects(readNnrFile(bytes.subarray(0, n)), DecodeError, `${n} bytes`);
  }
});

Deno.test("a changed base qp or qp density fails the tensors' check", async () => {
  const bytes = await ourFile();
  const units = readNnrUnits(bytes);
  const mps = units.findIndex((u) => u.type === 1);
  for (
    const change of [{ mps_quantization_parameter: 1 }, { mps_quantization_parameter: -4 }, {
      mps_qp_density: 3,
    }]
  ) {
    const unit = writeNnrUnit({ type: 1, fields: { ...units[mps]!.fields, ...change } }, 0);
    const bad = replaceUnit(bytes, units, mps, unit);
    await rejectsEverywhere(bad, "corrupt", JSON.stringify(change));
    // The payloads still decode to the same levels; only the check sees the new base qp.
    if ("mps_quantization_parameter" in change) {
      await assert.rejects(readNnrFile(bad), /fails its checksum/, JSON.stringify(change));
    }
  }
});

Deno.test("a changed raw tensor in the model skeleton fails the model's check", async () => {
  const bytes = await ourFile();
  const file = await readNnrFile(bytes);
  const skeleton = file.model!.skeleton.slice();
  // The skeleton is a safetensors file holding the tensors left raw (the biases): change the last
  // byte of its data.
  skeleton[skeleton.length - 1]! ^= 0x40;
  const units = readNnrUnits(bytes);
  const model = units.findIndex((u) =>
    (u.fields.topology_data as string)?.startsWith(MODEL_HEADER)
  );
  const unit = topology(MODEL_HEADER + toBase64(await deflate(skeleton)));
  const bad = replaceUnit(bytes, units, model, unit);
  await assert.rejects(readNnrFile(bad), /Model unit fails its checksum/);
  await rejectsEverywhere(bad, "corrupt", "raw tensor");
});

Deno.test("malformed base64, deflate and JSON in our units are DecodeErrors", async () => {
  const bytes = await ourFile();
  const units = readNnrUnits(bytes);
  const at = (header: string) =>
    units.findIndex((u) => (u.fields.topology_data as string)?.startsWith(header));
  const modelText = units[at(MODEL_HEADER)]!.fields.topology_data as string;
  const metaText = units[at(META_HEADER)]!.fields.topology_data as string;
  const cases: [string, number, string][] = [
    [
      "a base64 character that is not one",
      at(MODEL_HEADER),
      modelText.slice(0, 40) + "*" + modelText.slice(41),
    ],
    ["base64 of a wrong length", at(MODEL_HEADER), modelText + "A"],
    [
      "base64 of bytes that do not inflate",
      at(MODEL_HEADER),
      MODEL_HEADER + toBase64(Uint8Array.of(0xff, 0xfe, 0xfd, 0xfc)),
    ],
    [
      "deflate of too many bytes",
      at(MODEL_HEADER),
      MODEL_HEADER + toBase64(await deflate(new Uint8Array(1 << 20))),
    ],
    ["metadata whose check fails", at(META_HEADER), metaText.replace('"tensors"', '"tensorz"')],
    ["metadata that is not JSON, with a right check", at(META_HEADER), withCheck('{"tensors":[')],
    ["metadata JSON of the wrong shape", at(META_HEADER), withCheck('{"tensors":[{"name":7}]}')],
    ["a damaged header line", at(META_HEADER), metaText.replace("DEEPCABAC", "DEEPCABAD")],
    ["a damaged model header line", at(MODEL_HEADER), modelText.replace("model", "modal")],
  ];
  for (const [what, i, text] of cases) {
    const bad = replaceUnit(bytes, units, i, topology(text));
    await rejectsEverywhere(bad, "corrupt", what);
  }
  // A metadata unit written correctly by another writer is accepted.
  const meta = JSON.parse(metaText.slice(META_HEADER.length, metaText.lastIndexOf("\n")));
  const same = replaceUnit(bytes, units, at(META_HEADER), topology(formatMeta(meta)));
  assert.deepEqual(same, bytes);
});

function withCheck(json: string): string {
  const hex = crc32(new TextEncoder().encode(json)).toString(16).padStart(8, "0");
  return `${META_HEADER}${json}\ncrc32 ${hex}`;
}

Deno.test("a file of ours whose metadata unit is removed or turned into another unit is rejected", async () => {
  const bytes = await ourFile();
  const units = readNnrUnits(bytes);
  const meta = units.findIndex((u) => (u.fields.topology_data as string)?.startsWith(META_HEADER));
  await rejectsEverywhere(replaceUnit(bytes, units, meta), "corrupt", "metadata removed");
  // Its type byte changed to an undefined unit type, or to NNR_QNT (which no decoder supports).
  for (const [type, code] of [[54, "corrupt"], [4, "unsupported"]] as const) {
    const bad = bytes.slice();
    bad[units[meta]!.offset + 2] = (type << 2) | (bad[units[meta]!.offset + 2]! & 3);
    await rejectsEverywhere(bad, code, `type ${type}`);
  }
});
