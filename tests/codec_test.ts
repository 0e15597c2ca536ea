import assert from "node:assert/strict";
import { decodeBlockRow, decodePayload } from "../decoder/decode_payload.ts";
import { encodePayload } from "../encoder/encode_payload.ts";
import { DecodeError } from "../core/errors.ts";
import { laplaceTensor, seededRandom } from "../core/fixtures.ts";
import { encodeTensor } from "../encoder/encode_tensor.ts";
import { type PayloadParams, payloadParams } from "../core/syntax.ts";
import { dqReconstructionIndex } from "../core/dependent_quantization.ts";

function randomLevels(n: number, seed: number, zeroRow = -1, width = 1): Int32Array<ArrayBuffer> {
  const rnd = seededRandom(seed);
  const v = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rnd();
    v[i] = u < 0.3 ? 0 : Math.round((rnd() - 0.5) * Math.exp(rnd() * 7));
  }
  if (zeroRow >= 0) v.fill(0, zeroRow * width, (zeroRow + 1) * width);
  return v;
}

// Each case differs from the reference defaults of payloadParams() only where stated.
const CASES: (PayloadParams & { name: string })[] = [
  { name: "URQ row-major", ...payloadParams([64, 64], { dqFlag: 0 }) },
  { name: "DQ 16x16 blocks", ...payloadParams([130, 72], { scanOrder: 2 }) },
  {
    name: "nnc2 DQ row skip 32x32 blocks",
    ...payloadParams([130, 72], {
      numGtxFlags: 4,
      scanOrder: 3,
      qpDensity: 3,
      mpsQp: -8,
      syntax: "nnc2",
      profileIdc: 1,
    }),
  },
  {
    name: "nnc2 URQ one flag",
    ...payloadParams([37, 53], {
      dqFlag: 0,
      numGtxFlags: 1,
      scanOrder: 1,
      qpDensity: 0,
      syntax: "nnc2",
      profileIdc: 1,
    }),
  },
  {
    name: "integer 4-D",
    ...payloadParams([16, 8, 3, 3], { payloadType: "int", dqFlag: 0, qpDensity: 0 }),
  },
  {
    name: "1-D forced row-major",
    ...payloadParams([100], { numGtxFlags: 32, scanOrder: 4, qpDensity: 7 }),
  },
];

for (const [i, c] of CASES.entries()) {
  Deno.test(`decodePayload() inverts encodePayload(): ${c.name}`, () => {
    const n = c.shape.reduce((a, b) => a * b, 1);
    const width = n / c.shape[0]!;
    const coded = randomLevels(n, 100 + i, 5, width);
    const qp = c.payloadType === "float" ? -30 : undefined;
    const enc = encodePayload(coded, {
      ...c,
      ...(qp === undefined ? {} : { qp }),
      rowSkip: true,
      valuesAreCodedLevels: true,
    });
    const dec = decodePayload(enc.bytes, c);
    assert.deepEqual(dec.codedLevels!, coded);
    assert.equal(dec.bytesConsumed, enc.bytes.length);
    assert.equal(dec.qp, qp ?? null);
    assert.deepEqual(dec.entryPoints.map((e) => e.bitOffsetDelta), enc.blockRowBitOffsets);
    if (c.dqFlag === 0) assert.deepEqual(dec.levels, coded);
    for (let j = 0; j <= dec.entryPoints.length; j++) {
      const row = decodeBlockRow(enc.bytes, c, dec.entryPoints, j);
      const region = dec.levels.subarray(row.firstRow * width, (row.firstRow + row.rows) * width);
      assert.deepEqual(row.levels, region, `block row ${j}`);
    }
  });
}

Deno.test("encodePayload() maps DQ reconstruction indices to coded levels and back", () => {
  const params = CASES[1]!;
  const n = 130 * 72;
  const k = randomLevels(n, 7);
  // Build reachable reconstruction indices from coded levels in scan order via a first encode.
  const first = encodePayload(k, { ...params, qp: -32, valuesAreCodedLevels: true });
  const dec = decodePayload(first.bytes, params);
  const again = encodePayload(dec.levels, { ...params, qp: -32 });
  assert.deepEqual(again.codedLevels!, k);
  assert.deepEqual(again.bytes, first.bytes);
  assert.equal(dqReconstructionIndex(dec.codedLevels![0]!, 0), dec.levels[0]);
});

Deno.test("decodePayload() rejects truncated and corrupt payloads with DecodeError", () => {
  const c = CASES[0]!;
  const coded = randomLevels(64 * 64, 3);
  const { bytes } = encodePayload(coded, { ...c, qp: -30, valuesAreCodedLevels: true });
  for (const cut of [0, 1, 2, 10, bytes.length >> 1, bytes.length - 1]) {
    assert.throws(() => decodePayload(bytes.subarray(0, cut), c), DecodeError, `cut at ${cut}`);
  }
  const corrupt = bytes.slice();
  corrupt[corrupt.length >> 1] = corrupt[corrupt.length >> 1]! ^ 0x5a;
  assert.throws(() => decodePayload(corrupt, c), DecodeError);
  assert.throws(
    () => decodePayload(bytes, { ...c, shape: [1 << 16, 1 << 16] }),
    (e: unknown) => e instanceof DecodeError && e.code === "limit",
  );
});

Deno.test("estimator sets chosen from the coded bins: same levels, no more bytes on DQ tensors", async () => {
  const { laplaceTensor } = await import("../core/fixtures.ts");
  const { quantizeTensor } = await import("../encoder/quantize.ts");
  let optimized = 0;
  let exact = 0;
  for (const [seed, qp] of [[1, -38], [2, -30], [3, -22], [4, -16]]) {
    const params = payloadParams([64, 96], { dqFlag: 1 });
    const w = laplaceTensor(64 * 96, 0.05, seed!);
    const { levels, qp: used } = quantizeTensor(w, qp!, params, { lambdaScale: 1 });
    for (const sets of ["optimize", "exact"] as const) {
      const { bytes } = encodePayload(levels, { ...params, qp: used, estimatorSets: sets });
      assert.deepEqual(decodePayload(bytes, params).levels, levels);
      if (sets === "exact") exact += bytes.length;
      else optimized += bytes.length;
    }
  }
  assert.ok(exact <= optimized, `${exact} vs ${optimized}`);
});

Deno.test("quantizeTensor(): a second pass with the signalled sets never raises the coded RD cost", async () => {
  const { laplaceTensor } = await import("../core/fixtures.ts");
  const { DQ_LAMBDA_FACTOR, LAMBDA_UNIT, quantizeTensor } = await import("../encoder/quantize.ts");
  for (const dq of [0, 1] as const) {
    for (const lambdaScale of [0.5, 2]) {
      const params = payloadParams([48, 80], { dqFlag: dq });
      const w = laplaceTensor(48 * 80, 0.05, 7 + dq);
      const cost = (passes: number) => {
        const q = quantizeTensor(w, -30, params, { lambdaScale, estimatorSetPasses: passes });
        const { bytes } = encodePayload(q.levels, { ...params, qp: q.qp, estimatorSets: "exact" });
        let d = 0;
        for (let i = 0; i < w.length; i++) d += (w[i]! / q.step - q.levels[i]!) ** 2;
        return d + lambdaScale * LAMBDA_UNIT * (dq ? DQ_LAMBDA_FACTOR : 1) * 8 * bytes.length;
      };
      assert.ok(cost(2) <= cost(1), `dq ${dq} λ ${lambdaScale}`);
    }
  }
});

Deno.test('scanOrder "auto" keeps a block scan where rows are alike, not where they differ', () => {
  const [height, width] = [512, 1024];
  const code = (scale: (row: number) => number, scanOrder: number | "auto") =>
    encodeTensor({
      name: "w",
      shape: [height, width],
      values: Float32Array.from(
        laplaceTensor(height * width, 0.02, 5),
        (v, i) => v * scale(Math.floor(i / width)),
      ),
      coding: {
        kind: "float",
        qp: -38,
        qpDensity: 2,
        lambdaScale: 0,
        dq: true,
        scanOrder,
        cabacUnaryLengthMinus1: 10,
      },
    });
  // Rows alike: 64-row blocks (8 block rows, 7 entry points), at most 0.5 % larger.
  const alike = code(() => 1, "auto");
  assert.equal(alike.scanOrder, 4);
  assert.ok(alike.unit.length <= 1.005 * code(() => 1, 0).unit.length);
  // Rows of magnitudes 1/16..16 (filters of unlike norms): interleaving them costs, so scan 0.
  const unlike = code((r) => 2 ** ((r % 9) - 4), "auto");
  assert.equal(unlike.scanOrder, 0);
  assert.ok(code((r) => 2 ** ((r % 9) - 4), 4).unit.length > 1.005 * unlike.unit.length);
});
