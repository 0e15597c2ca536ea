// The benchmarks' payload fixture: the seeded 2048 × 2048 Laplace(0, 0.02) tensor that the issue's
// reference figures were measured on, quantised at one qp as the reference encoder's defaults do
// (nearest for URQ, the trellis at λ = 0 for DQ) and coded.
import { encodePayload } from "../encoder/encode_payload.ts";
import { quantizeDqTrellis, quantizeUniform } from "../encoder/quantize.ts";
import { laplaceTensor } from "../core/fixtures.ts";
import { stepSize } from "../core/step_size.ts";
import { type PayloadParams, payloadParams } from "../core/syntax.ts";

/** Side of the square tensor. */
export const SIDE = 2048;

/** The seeded weights. */
export const weights: Float32Array<ArrayBuffer> = laplaceTensor(SIDE * SIDE, 0.02, 2020);

/** One coded point of the benchmark. */
export interface CodecPoint {
  readonly params: PayloadParams;
  readonly qp: number;
  readonly step: number;
  /** Reconstruction indices. */
  readonly levels: Int32Array;
  /** The coded levels (the DQ k). */
  readonly codedLevels: Int32Array;
  /** The payload. */
  readonly bytes: Uint8Array;
}

/** Quantises and codes the weights at `qp`, URQ or DQ. */
export function codecPoint(dqFlag: 0 | 1, qp: number): CodecPoint {
  const params = payloadParams([SIDE, SIDE], { dqFlag });
  const step = stepSize(qp, 2);
  const levels = dqFlag
    ? quantizeDqTrellis(weights, step, params, { lambdaScale: 0 })
    : quantizeUniform(weights, step);
  const { bytes, codedLevels } = encodePayload(levels, { ...params, qp });
  return { params, qp, step, levels, codedLevels, bytes };
}
