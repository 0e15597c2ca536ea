// What our files detect (docs/FORMAT.md 3): each class of defect the fuzzer found is pinned here on
// a small model file — truncation at every unit boundary, a changed base qp or qp density, a
// changed raw tensor in the skeleton, damaged metadata and model units (text, deflate, JSON),
// and units that are not ours where ours should be.
import assert from "node:assert/strict";
import {
  type ContainerMeta,
  formatMeta,
  META_HEADER,
  MODEL_HEADER,
  toSevenBitText,
} from "../core/container.ts";
import { crc32 } from "../core/crc32.ts";
import { DecodeError } from "../core/errors.ts";
import { decode, DecoderStream } from "../decoder/decode_stream.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { readNnrFile } from "../decoder/nnr_file.ts";
import { type NnrUnit, readNnrUnits } from "../decoder/nnr_units.ts";
import { compressModel } from "../encoder/compress_model.ts";
import { deflateSkeleton } from "../encoder/nnr_file.ts";
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

/** The file's metadata and model units' text. */
function ourUnits(bytes: Uint8Array) {
  const units = readNnrUnits(bytes);
  const at = (header: string) =>
    units.findIndex((u) => (u.fields.topology_data as string)?.startsWith(header));
  const metaText = units[at(META_HEADER)]!.fields.topology_data as string;
  const meta: ContainerMeta = JSON.parse(
    metaText.slice(META_HEADER.length, metaText.lastIndexOf("\n")),
  );
  return { units, at, meta, metaText };
}

/** The file with the model unit's text replaced, and the metadata stating `deflatedBytes`. */
function withModelText(bytes: Uint8Array, text: string, deflatedBytes: number): Uint8Array {
  const { units, at, meta } = ourUnits(bytes);
  const model = { ...meta.model!, deflatedBytes };
  const patched = replaceUnit(
    bytes,
    units,
    at(META_HEADER),
    topology(formatMeta({ ...meta, model })),
  );
  const again = ourUnits(patched);
  return replaceUnit(patched, again.units, again.at(MODEL_HEADER), topology(MODEL_HEADER + text));
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
  const packed = deflateSkeleton(skeleton);
  const bad = withModelText(bytes, toSevenBitText(packed), packed.length);
  await assert.rejects(readNnrFile(bad), /Model unit fails its checksum/);
  await rejectsEverywhere(bad, "corrupt", "raw tensor");
});

Deno.test("malformed text, deflate and JSON in our units are DecodeErrors", async () => {
  const bytes = await ourFile();
  const { units, at, meta, metaText } = ourUnits(bytes);
  const modelText = units[at(MODEL_HEADER)]!.fields.topology_data as string;
  const size = meta.model!.deflatedBytes;
  const huge = deflateSkeleton(new Uint8Array(1 << 20));
  const cases: [string, Uint8Array][] = [
    [
      "a character outside the 7-bit text",
      withModelText(bytes, modelText.slice(MODEL_HEADER.length, 40) + "\u0100", size),
    ],
    [
      "text of a wrong length",
      withModelText(bytes, modelText.slice(MODEL_HEADER.length) + "A", size),
    ],
    [
      "a stated length that is not the text's",
      withModelText(bytes, modelText.slice(MODEL_HEADER.length), size + 1),
    ],
    [
      "bytes that do not inflate",
      withModelText(bytes, toSevenBitText(new Uint8Array(size).fill(0xff)), size),
    ],
    ["deflate of too many bytes", withModelText(bytes, toSevenBitText(huge), huge.length)],
    ...([
      ["metadata whose check fails", metaText.replace('"tensors"', '"tensorz"')],
      ["metadata that is not JSON, with a right check", withCheck('{"tensors":[')],
      ["metadata JSON of the wrong shape", withCheck('{"tensors":[{"name":7}]}')],
      ["a damaged header line", metaText.replace("DEEPCABAC", "DEEPCABAD")],
    ] as const).map(([what, text]): [string, Uint8Array] => [
      what,
      replaceUnit(bytes, units, at(META_HEADER), topology(text)),
    ]),
    [
      "a damaged model header line",
      replaceUnit(bytes, units, at(MODEL_HEADER), topology(modelText.replace("model", "modal"))),
    ],
  ];
  for (const [what, bad] of cases) await rejectsEverywhere(bad, "corrupt", what);
  // A metadata unit written correctly by another writer is accepted.
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
