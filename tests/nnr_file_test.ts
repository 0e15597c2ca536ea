// Our NNR files: tensors coded into data units, the metadata and model units, and what the reader
// does with corrupt, truncated and foreign files.
import assert from "node:assert/strict";
import { laplaceTensor } from "../core/fixtures.ts";
import { DecodeError } from "../core/errors.ts";
import { fromSevenBitText, META_HEADER, MODEL_HEADER, toSevenBitText } from "../core/container.ts";
import {
  type DataUnitJob,
  decodeDataUnit,
  NnrUnitReader,
  readNnrFile,
} from "../decoder/nnr_file.ts";
import { readNnrUnits } from "../decoder/nnr_units.ts";
import { encodeTensor, type TensorJob } from "../encoder/encode_tensor.ts";
import { type FileTensor, writeBareNnrFile, writeNnrFile } from "../encoder/nnr_file.ts";

const float = (qp: number, dq: boolean, scanOrder = 0, lambdaScale = 0) => ({
  kind: "float" as const,
  qp,
  qpDensity: 2,
  dq,
  lambdaScale,
  scanOrder,
  cabacUnaryLengthMinus1: 10,
});

const JOBS: TensorJob[] = [
  {
    name: "conv.weight",
    shape: [16, 3, 3, 3],
    values: laplaceTensor(432, 0.05, 1),
    coding: float(-38, true),
  },
  {
    name: "fc.weight",
    shape: [70, 40],
    values: laplaceTensor(2800, 0.02, 2),
    coding: float(-32, false, 2, 1),
  },
  {
    name: "fc2.weight",
    shape: [100, 33],
    values: laplaceTensor(3300, 0.02, 3),
    coding: float(-30, true, 1),
  },
  { name: "fc.bias", shape: [70], values: laplaceTensor(70, 0.1, 4), coding: float(-75, true) },
  {
    name: "ids",
    shape: [6],
    values: Int32Array.of(0, -1, 2 ** 31 - 1, -(2 ** 31), 5, 0),
    coding: { kind: "int", scanOrder: 0, cabacUnaryLengthMinus1: 10 },
  },
];

async function ourFile(): Promise<{ bytes: Uint8Array; tensors: FileTensor[] }> {
  const tensors = JOBS.map((job, i): FileTensor => {
    const e = encodeTensor(job);
    return {
      name: job.name,
      dtype: job.coding.kind === "int" ? "I64" : i === 0 ? "F16" : "F32",
      shape: job.shape,
      slot: i * 2,
      levelsCrc32: e.levelsCrc32,
      qp: e.qp,
      unit: e.unit,
    };
  });
  const skeleton = new TextEncoder().encode("not really a model, but bytes to carry ".repeat(20));
  return {
    bytes: await writeNnrFile({ qpDensity: 2, model: { format: "onnx", skeleton }, tensors }),
    tensors,
  };
}

Deno.test("readNnrFile() decodes what encodeTensor() and writeNnrFile() wrote", async () => {
  const { bytes } = await ourFile();
  const file = await readNnrFile(bytes);
  assert.equal(file.model?.format, "onnx");
  assert.equal(new TextDecoder().decode(file.model!.skeleton).slice(0, 11), "not really ");
  assert.deepEqual(file.tensors.map((t) => [t.name, t.dtype, t.slot]), [
    ["conv.weight", "F16", 0],
    ["fc.weight", "F32", 2],
    ["fc2.weight", "F32", 4],
    ["fc.bias", "F32", 6],
    ["ids", "I64", 8],
  ]);
  for (const [i, job] of JOBS.entries()) {
    const t = file.tensors[i]!;
    assert.deepEqual(t.shape, job.shape);
    if (job.coding.kind === "int") {
      assert.deepEqual(t.values, job.values);
      continue;
    }
    assert.equal(t.qp, job.coding.qp);
    assert.equal(t.params.dqFlag, job.coding.dq ? 1 : 0);
    // Nearest levels are within Δ/2. RD quantisation may round one level towards zero, and the
    // DQ trellis (two interleaved 2Δ lattices) trades errors between weights: RMSE about Δ/2.
    const w = job.values as Float32Array;
    const bound = (job.coding.dq || job.coding.lambdaScale > 0 ? 2 : 0.5) * t.step! + 1e-9;
    let worst = 0;
    let squares = 0;
    for (let k = 0; k < w.length; k++) {
      const e = Math.abs(w[k]! - t.values![k]!);
      worst = Math.max(worst, e);
      squares += e * e;
    }
    assert.ok(worst <= bound, `${job.name}: error ${worst} > ${bound}`);
    assert.ok(Math.sqrt(squares / w.length) < 0.6 * t.step!, `${job.name}: RMSE`);
  }
  // Block scans signal entry points, which the reader checks against the payload.
  const fc = file.units.find((u) => u.fields.topology_elem_id === "fc.weight")!;
  assert.equal((fc.fields.cabac_entry_point_list as number[]).length, Math.ceil(70 / 16) - 1);
});

Deno.test("a data unit whose signalled entry points differ from its payload's is corrupt", async () => {
  const { bytes } = await ourFile();
  const reader = new NnrUnitReader();
  let job: DataUnitJob | null = null;
  for (let offset = 0; !job; offset += reader.units.at(-1)!.size) {
    const j = reader.parse(bytes, offset);
    if (j?.fields.topology_elem_id === "fc.weight") job = j;
  }
  decodeDataUnit(job);
  const list = job.fields.cabac_entry_point_list as number[];
  const signalling = (entries: number[]) => ({
    ...job,
    fields: { ...job.fields, cabac_entry_point_list: entries },
  });
  // value8 + 1, bit offset ± 1 (of block row 2's start), and one entry point too few.
  const wrong = [8, 2048, -2048].map((d) => list.map((p, i) => i === 1 ? p + d : p));
  for (const entries of [...wrong, list.slice(1)]) {
    assert.throws(
      () => decodeDataUnit(signalling(entries)),
      (e) => e instanceof DecodeError && e.code === "corrupt" && e.message.includes("fc.weight"),
      entries.join(),
    );
  }
});

Deno.test("writeNnrFile() puts only units the reference decoder accepts, in its order", async () => {
  const { bytes } = await ourFile();
  const units = readNnrUnits(bytes);
  // NNR_STR, NNR_MPS, the reference's empty NNR_TPL, our two NNR_TPL units, one NNR_NDU each.
  assert.deepEqual(units.map((u) => u.type), [0, 1, 3, 3, 3, 5, 5, 5, 5, 5]);
  for (const u of units.filter((u) => u.type === 3)) {
    // FORMAT.md §8.3: storage format 0 with NUL-terminated text is skipped by the reference.
    assert.equal(u.fields.topology_storage_format, 0);
    assert.equal(u.fields.topology_compression_format, 0);
  }
  assert.equal(units[2]!.fields.topology_data, "");
  assert.ok((units[3]!.fields.topology_data as string).startsWith(META_HEADER));
  assert.ok((units[4]!.fields.topology_data as string).startsWith(MODEL_HEADER));
  assert.equal(units[1]!.fields.mps_qp_density, 2);
  assert.equal(units[1]!.fields.mps_quantization_parameter, 0);
});

Deno.test("readNnrFile() reads files without our units as float32 and int32 tensors", async () => {
  const { tensors } = await ourFile();
  const bare = writeBareNnrFile(tensors.map((t) => t.unit), 2);
  assert.deepEqual(readNnrUnits(bare).map((u) => u.type), [0, 1, 3, 5, 5, 5, 5, 5]);
  const file = await readNnrFile(bare);
  assert.equal(file.meta, null);
  assert.equal(file.model, null);
  assert.deepEqual(file.tensors.map((t) => t.dtype), ["F32", "F32", "F32", "F32", "I32"]);
  assert.equal(file.tensors[0]!.slot, undefined);
});

Deno.test("readNnrFile() rejects corrupt and truncated files with DecodeError", async () => {
  const { bytes } = await ourFile();
  const units = readNnrUnits(bytes);
  const rejects = (b: Uint8Array, what: string) =>
    assert.rejects(readNnrFile(b), DecodeError, what);
  // Truncated anywhere: inside a unit header, a topology unit, a payload, or the last byte.
  for (const cut of [1, 5, units[3]!.offset + 10, units[6]!.offset + 40, bytes.length - 1]) {
    await rejects(bytes.subarray(0, cut), `cut at ${cut}`);
  }
  // Any flipped payload bit is caught: by the arithmetic decoder or by the tensor's CRC.
  for (const u of units.filter((u) => u.type === 5)) {
    for (const at of [u.payloadOffset!, u.payloadOffset! + (u.payloadLength! >> 1)]) {
      const bad = bytes.slice();
      bad[at]! ^= 0x10;
      await rejects(bad, `${u.fields.topology_elem_id} byte ${at}`);
    }
  }
  // A damaged model unit (base64 text) or metadata unit.
  for (const u of [units[3]!, units[4]!]) {
    const bad = bytes.slice();
    bad[u.offset + u.size - 12]! ^= 0x01;
    await rejects(bad, `topology unit at ${u.offset}`);
  }
  // Not an NNR file at all.
  await rejects(new TextEncoder().encode("PK\x03\x04 zip file"), "zip");
  await rejects(new Uint8Array([0x00, 0x04, 0x0a, 0x00]), "starts with a topology unit");
});

Deno.test("the model unit's 7-bit text: NUL-free UTF-8 of 8/7 the bytes, read back exactly", () => {
  let seed = 12345;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  for (let n = 0; n < 400; n++) {
    // Random bytes, and runs of zeros (the two-byte characters).
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i % 7 < 3 ? 0 : random()));
    const text = toSevenBitText(bytes);
    assert.ok(!text.includes("\0"));
    const utf8 = new TextEncoder().encode(text).length;
    assert.ok(utf8 <= Math.ceil((8 * n) / 7) + 1, `${n} bytes as ${utf8}`);
    assert.deepEqual(fromSevenBitText(text, n, 0), bytes);
    assert.throws(() => fromSevenBitText(text + "A", n, 0), DecodeError);
  }
});
