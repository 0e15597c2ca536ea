// The baseline coders of bench/paper_tables.ts: each decodes what it codes, Huffman codes are
// complete and within one bit per symbol of the first-order entropy, and the weighted Lloyd
// algorithm only ever lowers its objective.
import assert from "node:assert/strict";
import * as zlib from "node:zlib";
import {
  brotli,
  csrHuffmanDecode,
  csrHuffmanEncode,
  entropyBits,
  gzip,
  huffmanCodeLengths,
  huffmanDecode,
  huffmanEncode,
  levelBytes,
  lloydObjective,
  loadBzip2,
  quantizeUniform,
  weightedLloyd,
  zstd,
} from "../bench/_baselines.ts";
import { seededRandom as random } from "../core/fixtures.ts";

/** Laplace-distributed weights with scale `b`, a fraction `zeros` of them exactly 0. */
function laplace(n: number, b: number, zeros: number, seed: number): Float32Array {
  const u = random(seed);
  return Float32Array.from({ length: n }, () => {
    if (u() < zeros) return 0;
    const x = u() - 0.5;
    return -b * Math.sign(x) * Math.log(1 - 2 * Math.abs(x));
  });
}

Deno.test("huffmanEncode() round-trips, and its code is complete (Kraft equality)", () => {
  const levels = quantizeUniform(laplace(20_000, 0.05, 0.3, 1), 0.02);
  const code = huffmanEncode(levels);
  assert.deepEqual(huffmanDecode(code.bytes, levels.length), levels);
  const counts = new Map<number, number>();
  for (const v of levels) counts.set(v, (counts.get(v) ?? 0) + 1);
  assert.ok(counts.size > 10);
  const lengths = huffmanCodeLengths([...counts.values()]);
  // Every term is a multiple of 2^-31, so the float64 sum is exact.
  assert.equal([...lengths].reduce((s, l) => s + 2 ** -l, 0), 1);
  assert.equal(code.bytes.length, Math.ceil((code.tableBits + code.payloadBits) / 8));
});

Deno.test("huffmanEncode() spends between n·H and n·(H + 1) bits on the symbols", () => {
  for (const [b, zeros, seed] of [[0.05, 0, 2], [0.01, 0.8, 3], [0.2, 0.1, 4]] as const) {
    const levels = quantizeUniform(laplace(10_000, b, zeros, seed), 0.02);
    const code = huffmanEncode(levels);
    const h = entropyBits(levels);
    assert.ok(code.payloadBits >= h - 1e-6, `${code.payloadBits} < ${h}`);
    assert.ok(code.payloadBits < h + levels.length, `${code.payloadBits} ≥ ${h} + n`);
    // The table is small next to the payload: distinct symbols × (5 bits + a short gap).
    assert.ok(code.tableBits < 20 * new Set(levels).size + 64);
  }
});

Deno.test("huffmanEncode() handles one symbol, no symbols and 31-bit magnitudes", () => {
  const one = huffmanEncode(new Int32Array(1000).fill(-7));
  assert.equal(one.payloadBits, 0);
  assert.deepEqual(huffmanDecode(one.bytes, 1000), new Int32Array(1000).fill(-7));
  assert.equal(huffmanEncode(new Int32Array(0)).bytes.length, 0);
  const wide = Int32Array.of(2 ** 31 - 1, -(2 ** 31), 0, 0, 5, 2 ** 31 - 1);
  assert.deepEqual(huffmanDecode(huffmanEncode(wide).bytes, wide.length), wide);
  assert.deepEqual([...huffmanCodeLengths([5])], [0]);
  assert.throws(() => huffmanCodeLengths([1, 0]), RangeError);
});

Deno.test("csrHuffmanEncode() round-trips sparse, empty, dense and degenerate matrices", () => {
  const u = random(5);
  const sparse = new Int32Array(50 * 80);
  for (let r = 0; r < 50; r++) {
    if (r % 7 === 3) continue; // empty rows
    for (let c = 0; c < 80; c++) {
      if (r % 11 === 5 || u() < 0.1) sparse[r * 80 + c] = Math.floor(u() * 9) - 4 || 1;
    }
  }
  const cases: [Int32Array, number, number][] = [
    [sparse, 50, 80],
    [new Int32Array(30 * 20), 30, 20],
    [Int32Array.from({ length: 12 }, (_, i) => i - 20), 3, 4],
    [Int32Array.of(0), 1, 1],
    [Int32Array.of(9), 1, 1],
  ];
  for (const [levels, rows, cols] of cases) {
    const code = csrHuffmanEncode(levels, rows, cols);
    assert.deepEqual(csrHuffmanDecode(code.bytes, rows, cols), levels);
    assert.equal(
      code.bytes.length,
      Math.ceil((code.rowBits + code.indexBits + code.valueBits) / 8),
    );
  }
  assert.throws(() => csrHuffmanEncode(new Int32Array(5), 2, 2), RangeError);
});

Deno.test("weightedLloyd() never raises its objective and beats its uniform start", () => {
  const w = laplace(30_000, 0.04, 0.2, 6);
  const step = 0.02;
  for (const lambda of [0, 0.05 * step ** 2, 0.2 * step ** 2, 1 * step ** 2]) {
    const r = weightedLloyd(w, { step, lambda });
    const history = r.objective;
    assert.ok(history.length >= 2);
    for (let t = 1; t < history.length; t++) {
      assert.ok(history[t]! <= history[t - 1]! * (1 + 1e-12), `λ ${lambda}: step ${t} went up`);
    }
    assert.equal(r.codebook[r.zeroIndex], 0);
    assert.deepEqual([...r.codebook], [...r.codebook].sort((a, b) => a - b));
    // The objective recomputed from the levels and the (float32) codebook agrees.
    const final = lloydObjective(w, r.levels, r.codebook, r.zeroIndex, lambda);
    assert.ok(Math.abs(final - history.at(-1)!) <= 1e-6 * history.at(-1)!, `${final}`);
    // The uniform quantiser at the same Δ is the starting point, and no better.
    const uniform = quantizeUniform(w, step);
    const lo = Math.min(...uniform);
    const grid = Float32Array.from(
      { length: Math.max(...uniform) - lo + 1 },
      (_, k) => (k + lo) * step,
    );
    assert.ok(final < lloydObjective(w, uniform, grid, -lo, lambda));
  }
  // Weights exactly 0 stay at level 0, and a larger λ buys a lower rate.
  const r0 = weightedLloyd(w, { step, lambda: 0 });
  const r1 = weightedLloyd(w, { step, lambda: step ** 2 });
  for (let i = 0; i < w.length; i++) if (w[i] === 0) assert.equal(r1.levels[i], 0);
  assert.ok(entropyBits(r1.levels) < entropyBits(r0.levels));
});

Deno.test("weightedLloyd() with importances weighs the distortion by F_i", () => {
  const w = laplace(5000, 0.04, 0, 7);
  const u = random(8);
  const f = Float32Array.from(w, () => (u() < 0.5 ? 0.1 : 10));
  const step = 0.03;
  const lambda = 0.3 * step ** 2;
  const r = weightedLloyd(w, { step, lambda, importance: f });
  for (let t = 1; t < r.objective.length; t++) {
    assert.ok(r.objective[t]! <= r.objective[t - 1]! * (1 + 1e-12));
  }
  const final = lloydObjective(w, r.levels, r.codebook, r.zeroIndex, lambda, f);
  assert.ok(Math.abs(final - r.objective.at(-1)!) <= 1e-6 * r.objective.at(-1)!);
  // Important weights are reconstructed more closely than unimportant ones.
  let [dHi, nHi, dLo, nLo] = [0, 0, 0, 0];
  for (let i = 0; i < w.length; i++) {
    const e = (w[i]! - r.codebook[r.zeroIndex + r.levels[i]!]!) ** 2;
    if (f[i]! > 1) [dHi, nHi] = [dHi + e, nHi + 1];
    else [dLo, nLo] = [dLo + e, nLo + 1];
  }
  assert.ok(dHi / nHi < dLo / nLo);
  assert.throws(() => weightedLloyd(w, { step: 0, lambda: 0 }), RangeError);
});

Deno.test("the general-purpose coders decode to the level bytes", async () => {
  const levels = quantizeUniform(laplace(20_000, 0.05, 0.3, 9), 0.01);
  const bytes = levelBytes(levels);
  assert.equal(bytes.length, levels.length);
  assert.deepEqual(new Uint8Array(zlib.gunzipSync(gzip(bytes))), bytes);
  assert.deepEqual(new Uint8Array(zlib.brotliDecompressSync(brotli(bytes))), bytes);
  assert.deepEqual(new Uint8Array(zlib.zstdDecompressSync(zstd(bytes))), bytes);
  const bz = await loadBzip2();
  const packed = bz.compress(bytes);
  assert.equal(new TextDecoder().decode(packed.subarray(0, 4)), "BZh9");
  assert.deepEqual(bz.decompress(packed), bytes);
  assert.equal(levelBytes(Int32Array.of(-129, 0)).length, 4);
  assert.equal(levelBytes(Int32Array.of(40_000)).length, 4);
  assert.equal(levelBytes(Int32Array.of(40_000, 1)).length, 8);
});
