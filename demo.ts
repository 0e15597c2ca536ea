/**
 * The built-in demonstration: quantise and code a seeded Laplace(0, 0.02) weight tensor at a few
 * step sizes, decode it again and report size, bits per weight and error.
 *
 * @module
 */
import { decodePayload } from "./decoder/decode_payload.ts";
import { encodePayload } from "./encoder/encode_payload.ts";
import { laplaceTensor } from "./core/fixtures.ts";
import { stepSize } from "./core/step_size.ts";
import { payloadParams } from "./core/syntax.ts";
import { quantizeUniform } from "./encoder/quantize.ts";

/** Result of {@linkcode runDemo}. */
export interface DemoResult {
  /** Whether every decode reproduced the encoder's levels. */
  readonly ok: boolean;
  /** One row per qp. */
  readonly rows: { qp: number; bytes: number; bitsPerWeight: number; mse: number }[];
  /** Human-readable table. */
  readonly text: string;
}

/**
 * Runs the demonstration on a 256 × 256 tensor.
 *
 * @returns Sizes and errors per qp.
 */
export function runDemo(): DemoResult {
  const shape = [256, 256];
  const weights = laplaceTensor(shape[0]! * shape[1]!, 0.02, 1);
  const rows: DemoResult["rows"] = [];
  let ok = true;
  for (const qp of [-40, -32, -24]) {
    const step = stepSize(qp, 2);
    const levels = quantizeUniform(weights, step);
    const params = payloadParams(shape, { dqFlag: 0 });
    const { bytes } = encodePayload(levels, { ...params, qp });
    const out = decodePayload(bytes, params);
    let mse = 0;
    for (let i = 0; i < weights.length; i++) {
      if (out.levels[i] !== levels[i]) ok = false;
      const d = weights[i]! - out.recon[i]!;
      mse += d * d;
    }
    mse /= weights.length;
    rows.push({ qp, bytes: bytes.length, bitsPerWeight: (8 * bytes.length) / weights.length, mse });
  }
  const text = [
    `DeepCABAC demo: ${shape.join("x")} Laplace(0, 0.02) weights, 32-bit floats = ${
      4 * 65536
    } bytes`,
    ...rows.map((r) =>
      `qp ${r.qp}: ${r.bytes} bytes, ${r.bitsPerWeight.toFixed(3)} bits/weight, ` +
      `ratio ${(4 * 65536 / r.bytes).toFixed(1)}x, MSE ${r.mse.toExponential(3)}`
    ),
    ok ? "decoded levels match the encoder's" : "DECODE MISMATCH",
  ].join("\n");
  return { ok, rows, text };
}
