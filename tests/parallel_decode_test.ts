// Parallel decoding inside tensors (block rows in Web Workers, from their entry points) and
// incremental decoding (block rows as their bytes arrive) give exactly what sequential decoding
// gives: on every block-scanned payload of the conformance suite, wrapped in an NNR file, and on
// our own files, with 1, 2 and 4 workers and with the bytes in small chunks.
import assert from "node:assert/strict";
import { join } from "node:path";
import { compressModel } from "../encoder/compress_model.ts";
import { type NnrUnitSpec, writeNnrUnits } from "../encoder/nnr_writer.ts";
import { decode, type DecodeOptions, type StreamTensor } from "../decoder/decode_stream.ts";
import { readNnrFile } from "../decoder/nnr_file.ts";
import { DecodeError } from "../core/errors.ts";
import { packEntryPoint } from "../core/syntax.ts";
import { vectorPayloadParams } from "../conformance/run.ts";
import { BlockRowDecoder } from "../decoder/decode_payload.ts";

const dir = Deno.env.get("DEEPCABAC_CONFORMANCE_DIR");
const LENET300 = new URL("../../shared/zoo/lenet300_mnist.onnx", import.meta.url);

/** A byte stream delivering `bytes` in chunks of the sizes given, cyclically. */
function chunked(bytes: Uint8Array, sizes: readonly number[]): ReadableStream<Uint8Array> {
  let at = 0;
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      const size = sizes[i++ % sizes.length]!;
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

/** The ways of decoding compared: this thread whole, in chunks, and 2 or 4 workers. */
const WAYS: readonly { name: string; workers: number; chunks: number[] | null }[] = [
  { name: "whole, this thread", workers: 1, chunks: null },
  { name: "chunks of 1–61 bytes, this thread", workers: 1, chunks: [1, 7, 61, 3, 29] },
  { name: "2 workers", workers: 2, chunks: null },
  { name: "4 workers, chunks of 997 bytes", workers: 4, chunks: [997] },
];

async function decodeEach(
  file: Uint8Array,
  output: NonNullable<DecodeOptions["output"]>,
): Promise<Map<string, StreamTensor[]>> {
  const out = new Map<string, StreamTensor[]>();
  for (const way of WAYS) {
    const source = way.chunks ? chunked(file, way.chunks) : file;
    // Every data unit to the workers, however small.
    const options = { output, workers: way.workers, minWorkerPayload: 0 };
    out.set(way.name, (await decode(source, options)).tensors);
  }
  return out;
}

/** Element values as plain numbers (a shared and an unshared array compare equal). */
function values(t: StreamTensor): number[] {
  return Array.from(t.data as ArrayLike<number>);
}

/** A payload vector as a data unit of an NNR file. */
// deno-lint-ignore no-explicit-any
function dataUnit(v: any, payload: Uint8Array): NnrUnitSpec {
  const params = vectorPayloadParams(v);
  return {
    type: 5,
    fields: {
      nnr_compressed_data_unit_payload_type: params.payloadType === "float" ? 1 : 0,
      topology_elem_id: v.id,
      ...(params.profileIdc === 1
        ? { node_id_present_flag: 1, device_id: 0, parameter_id: 0, put_node_depth: 0 }
        : {}),
      dq_flag: params.dqFlag,
      tensor_dimensions: [...params.shape],
      cabac_unary_length_minus1: params.numGtxFlags - 1,
      scan_order: params.scanOrder,
      // deno-lint-ignore no-explicit-any
      cabac_entry_point_list: v.payload.entry_points.map((e: any) =>
        packEntryPoint({
          bitOffsetDelta: e.bit_offset_delta,
          value8: e.value8,
          dqState: e.dq_state,
        })
      ),
    },
    payload,
  };
}

Deno.test({
  name: "every block-scanned conformance payload decodes alike in parallel, in chunks and whole",
  ignore: dir === undefined,
  async fn() {
    const manifest = JSON.parse(await Deno.readTextFile(join(dir!, "manifest.json")));
    // deno-lint-ignore no-explicit-any
    const vectors: any[] = manifest.vectors.filter((v: any) =>
      v.level === "payload" && v.payload.entry_points.length > 0
    );
    assert.ok(vectors.length >= 20, `${vectors.length} block-scanned vectors`);
    // One NNR file per model parameter set and syntax, every payload a data unit of it. An NNR
    // file selects NNCodec 2's payload syntax with profile 1 only, so its profile-0 payloads are
    // checked at the block-row level below (the code the workers run on each part).
    const groups = new Map<string, typeof vectors>();
    for (const v of vectors) {
      const p = vectorPayloadParams(v);
      if (p.syntax === "nnc2" && p.profileIdc === 0) continue;
      const key = `${p.profileIdc} ${p.qpDensity} ${p.mpsQp}`;
      groups.set(key, [...(groups.get(key) ?? []), v]);
    }
    let checked = 0;
    for (const group of groups.values()) {
      const p = vectorPayloadParams(group[0]);
      const units = [];
      for (const v of group) {
        units.push(dataUnit(v, await Deno.readFile(join(dir!, v.files.bitstream.path))));
      }
      const file = writeNnrUnits([
        { type: 0, fields: { general_profile_idc: p.profileIdc } },
        { type: 1, fields: { mps_qp_density: p.qpDensity, mps_quantization_parameter: p.mpsQp } },
        ...units,
      ]);
      for (const output of ["levels", "float32"] as const) {
        for (const [way, tensors] of await decodeEach(file, output)) {
          assert.equal(tensors.length, group.length, way);
          for (const [i, v] of group.entries()) {
            const want = await Deno.readFile(
              join(dir!, (output === "levels" ? v.files.levels : v.files.recon).path),
            );
            const got = tensors[i]!.data;
            if (output === "levels") {
              assert.deepEqual(values(tensors[i]!), [...new Int32Array(want.buffer)], v.id);
            } else {
              const bits = new Uint8Array(got.buffer, got.byteOffset, got.byteLength);
              assert.deepEqual(bits, want, `${v.id}, ${way}: reconstruction bits`);
            }
          }
        }
      }
      checked += group.length;
    }
    // The rest: in 1, 2 and 4 parts from their entry points, as the workers decode them.
    for (const v of vectors) {
      const params = vectorPayloadParams(v);
      if (!(params.syntax === "nnc2" && params.profileIdc === 0)) continue;
      const payload = await Deno.readFile(join(dir!, v.files.bitstream.path));
      const want = new Int32Array((await Deno.readFile(join(dir!, v.files.levels.path))).buffer);
      // deno-lint-ignore no-explicit-any
      const entryPoints = v.payload.entry_points.map((e: any) => ({
        bitOffsetDelta: e.bit_offset_delta,
        value8: e.value8,
        dqState: e.dq_state,
      }));
      const rows = entryPoints.length + 1;
      for (const parts of [1, 2, 4]) {
        const got = new Int32Array(want.length);
        for (let k = 0; k < parts; k++) {
          const from = Math.floor((k * rows) / parts);
          const to = Math.floor(((k + 1) * rows) / parts);
          if (from === to) continue;
          const d = new BlockRowDecoder(payload, params, { entryPoints, from });
          while (d.nextRow < to) {
            const [start, end] = d.nextElements();
            d.decodeNext(got.subarray(start, end), got.subarray(start, end));
          }
          if (to === rows) d.finish();
        }
        assert.deepEqual(got, want, `${v.id} in ${parts} parts`);
      }
      checked++;
    }
    assert.equal(checked, vectors.length);
  },
});

Deno.test("our files decode alike in parallel, in chunks and whole", async () => {
  const model = await Deno.readFile(LENET300);
  // Block scans (every tensor split between workers), and scan 0 (fc1's 235,200 weights decoded
  // 65,536 at a time in this thread).
  for (const scanOrder of [2, 0]) {
    const { bytes } = await compressModel(model, "onnx", { scanOrder });
    const sequential = (await readNnrFile(bytes)).tensors;
    assert.equal(sequential.some((t) => t.params.scanOrder > 0), scanOrder > 0);
    const outputs = scanOrder > 0
      ? ["float32", "levels", "original"] as const
      : ["float32"] as const;
    for (const output of outputs) {
      for (const [way, tensors] of await decodeEach(bytes, output)) {
        assert.deepEqual(tensors.map((t) => t.name), sequential.map((t) => t.name), way);
        tensors.forEach((t, i) => {
          const want = output === "levels" ? sequential[i]!.levels : sequential[i]!.values!;
          assert.deepEqual(values(t), [...want], `scan ${scanOrder}, ${output}, ${way}: ${t.name}`);
        });
      }
    }
  }
});

Deno.test("a corrupt block row fails the same way in parallel and in chunks", async () => {
  const { bytes } = await compressModel(await Deno.readFile(LENET300), "onnx", { scanOrder: 1 });
  const file = await readNnrFile(bytes);
  const unit = file.units.find((u) => u.type === 5 && (u.payloadLength ?? 0) > 10000)!;
  // A byte in the middle of the largest payload: a later block row's entry point, or the
  // tensor's checksum, no longer matches.
  const damaged = bytes.slice();
  damaged[unit.payloadOffset! + (unit.payloadLength! >> 1)]! ^= 0x5a;
  for (const way of WAYS) {
    const source = way.chunks ? chunked(damaged, way.chunks) : damaged;
    await assert.rejects(
      decode(source, { workers: way.workers, minWorkerPayload: 0 }),
      DecodeError,
      way.name,
    );
  }
});
