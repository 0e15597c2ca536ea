// Decode and entropy-encode throughput on the seeded 2048 × 2048 Laplace(0, 0.02) tensor at qp
// −40, −32 and −24, URQ and DQ (levels: nearest for URQ, the trellis at λ = 0 for DQ, as the
// reference encoder's defaults give), as a table of medians over several runs.
// Run: npx deno run -A bench/codec_speed.ts [--runs N] [--json]
import { parseArgs } from "node:util";
import { decodePayload } from "../decoder/decode_payload.ts";
import { encodePayload } from "../encoder/encode_payload.ts";
import { quantizeDqTrellis, quantizeUniform } from "../encoder/quantize.ts";
import { laplaceTensor } from "../core/fixtures.ts";
import { stepSize } from "../core/step_size.ts";
import { payloadParams } from "../core/syntax.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "7" },
    json: { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const SIDE = 2048;
const weights = laplaceTensor(SIDE * SIDE, 0.02, 2020);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

const rows = [];
for (const dqFlag of [0, 1] as const) {
  for (const qp of [-40, -32, -24]) {
    const params = payloadParams([SIDE, SIDE], { dqFlag });
    const step = stepSize(qp, 2);
    let levels: Int32Array = new Int32Array(0);
    const quantizeSeconds = time(() => {
      levels = dqFlag
        ? quantizeDqTrellis(weights, step, params, { lambdaScale: 0 })
        : quantizeUniform(weights, step);
    });
    const { bytes } = encodePayload(levels, { ...params, qp });
    const decode: number[] = [];
    const encode: number[] = [];
    for (let r = 0; r < runs; r++) {
      decode.push(time(() => decodePayload(bytes, params, {}, { codedLevels: false })));
      encode.push(time(() => encodePayload(levels, { ...params, qp })));
    }
    const n = levels.length;
    rows.push({
      quantiser: dqFlag ? "DQ" : "URQ",
      qp,
      bitsPerWeight: 8 * bytes.length / n,
      decodeMWeightsPerSecond: n / median(decode) / 1e6,
      encodeMWeightsPerSecond: n / median(encode) / 1e6,
      quantizeSeconds,
    });
  }
}
if (values.json) {
  console.log(JSON.stringify(rows));
} else {
  console.log(`median of ${runs} runs, ${SIDE}×${SIDE} weights`);
  console.log(
    "| quantiser | qp | bits/weight | decode M weights/s | encode M weights/s | quantise s |",
  );
  console.log("|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.quantiser} | ${r.qp} | ${r.bitsPerWeight.toFixed(2)} | ` +
        `${r.decodeMWeightsPerSecond.toFixed(2)} | ${r.encodeMWeightsPerSecond.toFixed(2)} | ` +
        `${r.quantizeSeconds.toFixed(2)} |`,
    );
  }
}
