// Throughput of the payload decoder and encoder on the seeded 2048 × 2048 Laplace(0, 0.02) tensor
// (URQ and DQ at qp −40, −32, −24), plus the bin-level primitives (the per-bin cost of the
// arithmetic coder alone). Run: npx deno bench -A bench/  — M weights/s = 4.194304 / (time per
// iteration in s); bench/codec_speed.ts prints the same points as a table of medians.
import { decodePayload } from "../decoder/decode_payload.ts";
import { encodePayload } from "../encoder/encode_payload.ts";
import { BinDecoder } from "../core/_bin_decoder.ts";
import { BinEncoder } from "../core/_bin_encoder.ts";
import { ContextStates } from "../core/context_model.ts";
import { codecPoint } from "./_codec_fixture.ts";

for (const dqFlag of [0, 1] as const) {
  for (const qp of [-40, -32, -24]) {
    const { params, levels, bytes } = codecPoint(dqFlag, qp);
    const name = `${dqFlag ? "DQ" : "URQ"} qp ${qp}`;
    Deno.bench({
      name: `decode ${name} (${(8 * bytes.length / levels.length).toFixed(2)} bits/weight)`,
      group: `decode ${dqFlag ? "DQ" : "URQ"}`,
      baseline: qp === -32,
      fn: () => {
        decodePayload(bytes, params);
      },
    });
    Deno.bench({
      name: `encode ${name} (entropy coding with estimator-set choice)`,
      group: `encode ${dqFlag ? "DQ" : "URQ"}`,
      baseline: qp === -32,
      fn: () => {
        encodePayload(levels, { ...params, qp });
      },
    });
  }
}

// Primitives: one million context-coded bins (p ≈ 0.2) and one million bypass bins.
const BINS = 1 << 20;
const binValues = new Uint8Array(BINS);
{
  let s = 1;
  for (let i = 0; i < BINS; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    binValues[i] = s / 2 ** 32 < 0.2 ? 1 : 0;
  }
}
function encodeBins(): Uint8Array {
  const enc = new BinEncoder(BINS / 4);
  const ctx = new ContextStates(4);
  for (let i = 0; i < BINS; i++) enc.encodeBin(ctx, i & 3, binValues[i]!);
  enc.encodeTerminate(1);
  return enc.finish();
}
const binBytes = encodeBins();
Deno.bench({
  name: "decodeBin ×1M",
  group: "primitives",
  fn: () => {
    const dec = new BinDecoder(binBytes);
    const ctx = new ContextStates(4);
    for (let i = 0; i < BINS; i++) dec.decodeBin(ctx, i & 3);
  },
});
Deno.bench({ name: "encodeBin ×1M", group: "primitives", fn: () => void encodeBins() });
const bypassBytes = (() => {
  const enc = new BinEncoder(BINS / 8);
  for (let i = 0; i < BINS; i++) enc.encodeBypass(binValues[i]!);
  enc.encodeTerminate(1);
  return enc.finish();
})();
Deno.bench({
  name: "decodeBypass ×1M",
  group: "primitives",
  fn: () => {
    const dec = new BinDecoder(bypassBytes);
    for (let i = 0; i < BINS; i++) dec.decodeBypass();
  },
});
