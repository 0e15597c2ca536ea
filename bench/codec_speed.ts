// Single-thread throughput on the seeded 2048 × 2048 Laplace(0, 0.02) tensor at qp −40, −32 and
// −24, URQ and DQ, as a table of medians over several runs (the issue's reference figures are
// for this tensor): decode plus reconstruction, entropy encode with the estimator-set choice, and
// the DQ trellis at λ = 0 (the levels coded here, as the reference's defaults give) and λ = 1.
// Run: npx deno run -A bench/codec_speed.ts [--runs N] [--json]
import { parseArgs } from "node:util";
import { decodePayload } from "../decoder/decode_payload.ts";
import { encodePayload } from "../encoder/encode_payload.ts";
import { quantizeDqTrellis } from "../encoder/quantize.ts";
import { codecPoint, SIDE, weights } from "./_codec_fixture.ts";
import { median } from "./_common.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "7" },
    json: { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const N = SIDE * SIDE;

/** Median seconds of `count` runs of `fn`. */
function seconds(count: number, fn: () => void): number {
  const times: number[] = [];
  for (let r = 0; r < count; r++) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/** Context-coded bins of levels coded with `numGtx` flags (CODING.md 5.2), and bypass bins. */
function countBins(coded: Int32Array, numGtx: number): number {
  let bins = 0;
  for (let i = 0; i < coded.length; i++) {
    const m = Math.abs(coded[i]!);
    bins++;
    if (m === 0) continue;
    bins += 1 + Math.min(m, numGtx);
    if (m > numGtx) bins += 2 * (31 - Math.clz32(m - numGtx)) + 1;
  }
  return bins;
}

const rows = [];
for (const dqFlag of [0, 1] as const) {
  for (const qp of [-40, -32, -24]) {
    const { params, step, levels, codedLevels, bytes } = codecPoint(dqFlag, qp);
    const bins = countBins(codedLevels, params.numGtxFlags);
    const decode = seconds(runs, () => decodePayload(bytes, params, {}, { codedLevels: false }));
    const encode = seconds(runs, () => encodePayload(levels, { ...params, qp }));
    const trellis = dqFlag
      ? [0, 1].map((lambdaScale) =>
        N / seconds(3, () => quantizeDqTrellis(weights, step, params, { lambdaScale })) / 1e6
      )
      : null;
    rows.push({
      quantiser: dqFlag ? "DQ" : "URQ",
      qp,
      bitsPerWeight: 8 * bytes.length / N,
      binsPerWeight: bins / N,
      decodeMWeightsPerSecond: N / decode / 1e6,
      decodeMBinsPerSecond: bins / decode / 1e6,
      encodeMWeightsPerSecond: N / encode / 1e6,
      encodeMBinsPerSecond: bins / encode / 1e6,
      trellisMWeightsPerSecond: trellis,
    });
  }
}
if (values.json) {
  console.log(JSON.stringify(rows));
} else {
  const f = (x: number) => x.toFixed(2);
  console.log(`${SIDE}×${SIDE} Laplace(0, 0.02), median of ${runs} runs (trellis: of 3)`);
  console.log(
    "| | qp | bits/weight | bins/weight | decode M weights/s | decode M bins/s | " +
      "encode M weights/s | encode M bins/s | trellis λ=0 / λ=1 M weights/s |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const t = r.trellisMWeightsPerSecond;
    console.log(
      `| ${r.quantiser} | ${r.qp} | ${f(r.bitsPerWeight)} | ${f(r.binsPerWeight)} | ` +
        `${f(r.decodeMWeightsPerSecond)} | ${r.decodeMBinsPerSecond.toFixed(1)} | ` +
        `${f(r.encodeMWeightsPerSecond)} | ${r.encodeMBinsPerSecond.toFixed(1)} | ` +
        `${t ? `${f(t[0]!)} / ${f(t[1]!)}` : "–"} |`,
    );
  }
}
