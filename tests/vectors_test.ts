// Checks against the shared reference suite (FORMAT.md layout) that do not depend on the
// probability estimator: file integrity, step sizes, reconstruction, the DQ state machine, scan
// rules, bypass-coded fields, and that the conformance runner reports every vector.
import assert from "node:assert/strict";
import { join } from "node:path";
import { BinDecoder } from "../core/_bin_decoder.ts";
import { ContextStates, lpsAndMps } from "../core/context_model.ts";
import { DQ_NEXT_STATE, dqReconstructionIndex } from "../core/dependent_quantization.ts";
import { effectiveScanOrder, matrixView } from "../core/scan.ts";
import { contextLayout } from "../core/syntax.ts";
import { visitLevelBins } from "../encoder/_level_bins.ts";
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

// The context-coded bins of one level in coding order, from our binarisation. Every context of
// one level's binarisation is distinct, so in a fresh block row all of them are in their initial
// state.
function firstLevelBins(k: number, numGtx: number, limit: number): number[] {
  const bins: number[] = [];
  const layout = contextLayout(numGtx, false, "nnc1");
  visitLevelBins(k, layout, numGtx, layout.sig, 0, {
    bin: (_, bin) => bins.push(bin),
    bypass() {},
  });
  return bins.slice(0, limit);
}

Deno.test({
  name: "default-set contexts start at p = ½: LPS 128 at range 256, MPS 1 (block-row starts)",
  ignore: absent,
  async fn() {
    // At a block-row start the range is 256 and every context is in its initial state. If that
    // state codes with LPS 128 and MPS 1, each bin of the first level takes exactly one bit and
    // is the inverse of the next bit of value8. Checked on every vector that has all-default
    // estimator sets (param_opt 0) and entry points.
    const m = await manifest();
    let rows = 0;
    for (const v of m.vectors) {
      if (v.level !== "payload" || v.coding.param_opt !== 0) continue;
      if (v.payload.entry_points.length === 0) continue;
      const shape = v.files.input.shape;
      const [, w] = matrixView(shape);
      const b = 4 << v.coding.scan_order_effective;
      const levels = await int32(v.coding.dq_flag ? v.files.coded_levels : v.files.levels);
      v.payload.entry_points.forEach((ep: Json, i: number) => {
        const bins = firstLevelBins(levels[(i + 1) * b * w]!, v.coding.num_gtx_flags, 8);
        const value8Bits = bins.map((_, n) => (ep.value8 >> (7 - n)) & 1);
        assert.deepEqual(bins.map((x) => 1 - x), value8Bits, `${v.id} block row ${i + 1}`);
        rows++;
      });
    }
    assert.ok(rows >= 8);
    // Our estimator's initial state must code the same way.
    const fresh = new ContextStates(4);
    for (let ctx = 0; ctx < 4; ctx++) assert.equal(lpsAndMps(fresh, ctx, 256), (1 << 9) | 128);
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
