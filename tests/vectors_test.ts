// Checks against the shared reference suite (FORMAT.md layout) that do not depend on the
// probability estimator: file integrity, step sizes, reconstruction, the DQ state machine, scan
// rules, bypass-coded fields, and that the conformance runner reports every vector.
import assert from "node:assert/strict";
import { join } from "node:path";
import { BinDecoder } from "../core/_bin_decoder.ts";
import { DQ_NEXT_STATE, dqReconstructionIndex } from "../core/dependent_quantization.ts";
import { effectiveScanOrder, matrixView } from "../core/scan.ts";
import { stepSize } from "../core/step_size.ts";
import { runConformance } from "../conformance/run.ts";

const dir = Deno.env.get("DEEPCABAC_CONFORMANCE_DIR");
const absent = dir === undefined;
if (absent) {
  console.warn("DEEPCABAC_CONFORMANCE_DIR is not set: the external conformance suite is absent");
}

// deno-lint-ignore no-explicit-any
type Json = any;

async function manifest(): Promise<Json> {
  return JSON.parse(await Deno.readTextFile(join(dir!, "manifest.json")));
}
async function int32(fd: Json): Promise<Int32Array> {
  const b = await Deno.readFile(join(dir!, fd.path));
  return new Int32Array(b.buffer, b.byteOffset, b.length / 4);
}
async function float32(fd: Json): Promise<Float32Array> {
  const b = await Deno.readFile(join(dir!, fd.path));
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

Deno.test({
  name: "stepSize() gives every vector's float32 step bit-exactly",
  ignore: absent,
  async fn() {
    const m = await manifest();
    let n = 0;
    for (const v of m.vectors) {
      const items = v.level === "payload" ? [v.coding] : v.level === "nnr" ? v.tensors : [];
      for (const c of items) {
        if (c.step_f32_hex == null || c.qp == null) continue;
        const bits = new DataView(new ArrayBuffer(4));
        bits.setFloat32(0, stepSize(c.qp, c.qp_density));
        assert.equal(bits.getUint32(0).toString(16).padStart(8, "0"), c.step_f32_hex, v.id);
        n++;
      }
    }
    assert.ok(n > 150);
  },
});

Deno.test({
  name: "float32(level) × step reproduces every payload recon bit-exactly",
  ignore: absent,
  async fn() {
    const m = await manifest();
    for (const v of m.vectors) {
      if (v.level !== "payload" || v.coding.payload_type !== "NNR_PT_FLOAT") continue;
      const levels = await int32(v.files.levels);
      const recon = await float32(v.files.recon);
      const step = Math.fround(v.coding.step);
      const got = new Float32Array(levels.length);
      for (let i = 0; i < levels.length; i++) got[i] = Math.fround(levels[i]!) * step;
      assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(recon.slice().buffer), v.id);
    }
  },
});

Deno.test({
  name: "the DQ state machine maps every vector's coded_levels to its levels",
  ignore: absent,
  async fn() {
    const m = await manifest();
    let checked = 0;
    for (const v of m.vectors) {
      if (v.level !== "payload" || !v.files.coded_levels || v.payload.row_skip?.enabled) continue;
      const shape = v.files.input.shape;
      const [h, w] = matrixView(shape);
      const s = effectiveScanOrder(shape, v.coding.scan_order);
      const k = await int32(v.files.coded_levels);
      const levels = await int32(v.files.levels);
      const b = s === 0 ? 0 : 4 << s;
      const bw = b || w, bh = b || h;
      let state = 0;
      for (let r0 = 0; r0 < h; r0 += bh) {
        for (let c0 = 0; c0 < w; c0 += bw) {
          for (let r = r0; r < Math.min(h, r0 + bh); r++) {
            for (let c = c0; c < Math.min(w, c0 + bw); c++) {
              const i = r * w + c;
              assert.equal(dqReconstructionIndex(k[i]!, state), levels[i], `${v.id}[${i}]`);
              state = DQ_NEXT_STATE[2 * state + (k[i]! & 1)]!;
            }
          }
        }
      }
      checked++;
    }
    assert.ok(checked > 30);
  },
});

Deno.test({
  name: "scan rules: effective scan order and block-row count match every payload vector",
  ignore: absent,
  async fn() {
    const m = await manifest();
    for (const v of m.vectors) {
      if (v.level !== "payload") continue;
      const shape = v.files.input.shape;
      const s = effectiveScanOrder(shape, v.coding.scan_order);
      assert.equal(s, v.coding.scan_order_effective, v.id);
      if (s > 0) {
        assert.equal(Math.ceil(matrixView(shape)[0] / (4 << s)), v.payload.block_rows, v.id);
        assert.equal(v.payload.entry_points.length, v.payload.block_rows - 1, v.id);
      }
    }
  },
});

Deno.test({
  name: "BinDecoder decodes the bypass-coded qp offset of every float payload",
  ignore: absent,
  async fn() {
    const m = await manifest();
    for (const v of m.vectors) {
      if (v.level !== "payload" || v.coding.payload_type !== "NNR_PT_FLOAT") continue;
      const bytes = await Deno.readFile(join(dir!, v.files.bitstream.path));
      const bits = 6 + v.coding.qp_density;
      const raw = new BinDecoder(bytes).decodeBypassBits(bits);
      const offset = raw >= 2 ** (bits - 1) ? raw - 2 ** bits : raw;
      assert.equal(offset, v.payload.qp_offset.value, v.id);
    }
  },
});

Deno.test({
  name: "BinDecoder decodes the bypass-coded header of each dc2020 stream's first tensor",
  ignore: absent,
  async fn() {
    const m = await manifest();
    for (const v of m.vectors) {
      if (v.level !== "dc2020-stream") continue;
      const d = new BinDecoder(await Deno.readFile(join(dir!, v.files.bitstream.path)));
      const t = v.tensors[0];
      assert.equal(d.decodeBypassBits(4) + 4, v.coding.num_gtx_flags, v.id);
      const ndim = [1, 2, 4][d.decodeBypassBits(2)];
      const shape = Array.from({ length: ndim! }, () => d.decodeBypassBits(16));
      assert.deepEqual(shape, t.decoded_shape, v.id);
      const low = d.decodeBypassBits(16);
      const hex = (d.decodeBypassBits(16) * 65536 + low).toString(16).padStart(8, "0");
      assert.equal(hex, t.step_f32_hex, v.id);
    }
  },
});

Deno.test({
  name: "runConformance() reports every vector of the suite, skipped ones with a reason",
  ignore: absent,
  async fn() {
    const m = await manifest();
    const report = await runConformance({ read: (p) => Deno.readFile(join(dir!, p)) });
    assert.equal(report.summary.total, m.vectors.length);
    assert.deepEqual(report.vectors.map((r) => r.id), m.vectors.map((v: Json) => v.id));
    const s = report.summary;
    assert.equal(s.passed + s.failed + s.skipped, s.total);
    // Every URQ λ > 0 and DQ vector is run through our own RD search, whose output must decode.
    const searched = m.vectors.filter((v: Json) =>
      v.level === "payload" && v.coding.payload_type === "NNR_PT_FLOAT" &&
      (v.coding.dq_flag === 1 || v.coding.lambda_scale > 0)
    ).length;
    assert.equal(report.rd.vectors, searched);
    assert.ok(report.rd.ourBytes > 0 && report.rd.referenceBytes > 0);
    for (const r of report.vectors) {
      assert.ok(r.detail.length > 0, r.id);
      // No vector may fail on file integrity: the suite's files are checked before decoding.
      assert.ok(!/SHA-256|bytes, manifest says/.test(r.detail), `${r.id}: ${r.detail}`);
    }
  },
});
