// Golden vectors: small streams made from seeded inputs by the encoder that the conformance suite
// verifies, pinned in tests/testdata/ so that our own encoder's choices (RD quantisers, estimator
// sets, entry points, DQ, row skipping, the DeepCABAC-2020 stream, the container around a model)
// cannot drift silently. Regenerate after a deliberate change with
//   npx deno run -A tests/_golden.ts
// and say in the commit why the bytes changed.
import { laplaceTensor, seededRandom } from "../core/fixtures.ts";
import { stepSize } from "../core/step_size.ts";
import { type PayloadParams, payloadParams } from "../core/syntax.ts";
import { compressModel } from "../encoder/compress_model.ts";
import { encodeDc2020 } from "../encoder/encode_dc2020.ts";
import { encodePayload } from "../encoder/encode_payload.ts";
import { quantizeDqTrellis, quantizeUrqRd } from "../encoder/quantize.ts";
import { writeSafetensors } from "../model/safetensors.ts";

/** One golden vector: how it is made and what decoding it must give back. */
export interface GoldenCase {
  /** File name in tests/testdata/. */
  readonly file: string;
  /** What it covers. */
  readonly what: string;
  /** Makes the bytes. */
  make(): Promise<Uint8Array>;
}

/** A payload golden: the levels, the parameters and the qp it was coded with. */
export interface PayloadGolden {
  readonly params: PayloadParams;
  readonly qp: number | null;
  readonly levels: Int32Array;
}

/** The payload goldens' inputs, shared by the maker and the test that decodes them. */
export function payloadGoldens(): Record<string, PayloadGolden> {
  const urq = payloadParams([96, 80], { dqFlag: 0, scanOrder: 2 });
  const dq = payloadParams([64, 72], { numGtxFlags: 4 });
  const nnc2 = payloadParams([40, 24], { scanOrder: 1, syntax: "nnc2", profileIdc: 1 });
  const sparse = laplaceTensor(40 * 24, 0.02, 3);
  for (const row of [0, 7, 8, 9, 33]) sparse.fill(0, row * 24, row * 24 + 24);
  const ints = seededRandom(4);
  return {
    "urq_lambda1_scan2.bin": {
      params: urq,
      qp: -30,
      levels: quantizeUrqRd(laplaceTensor(96 * 80, 0.02, 1), stepSize(-30, 2), urq, {
        lambdaScale: 1,
      }),
    },
    "dq_lambda2_n4.bin": {
      params: dq,
      qp: -34,
      levels: quantizeDqTrellis(laplaceTensor(64 * 72, 0.03, 2), stepSize(-34, 2), dq, {
        lambdaScale: 2,
      }),
    },
    "nnc2_rowskip_dq_scan1.bin": {
      params: nnc2,
      qp: -32,
      levels: quantizeDqTrellis(sparse, stepSize(-32, 2), nnc2, { lambdaScale: 0 }),
    },
    "int16.bin": {
      params: payloadParams([50], { payloadType: "int", dqFlag: 0, qpDensity: 0 }),
      qp: null,
      levels: Int32Array.from({ length: 50 }, () => Math.round((ints() - 0.5) * 65535)),
    },
  };
}

/** Every golden vector. */
export function goldenCases(): GoldenCase[] {
  const payloads = Object.entries(payloadGoldens()).map(([file, g]) => ({
    file,
    what: `payload ${file}`,
    make: () =>
      Promise.resolve(
        encodePayload(g.levels, {
          ...g.params,
          ...(g.qp === null ? {} : { qp: g.qp }),
          rowSkip: g.params.syntax === "nnc2",
        }).bytes,
      ),
  }));
  return [
    ...payloads,
    {
      file: "dc2020_two_tensors.bin",
      what: "DeepCABAC-2020 stream, λ > 0, per-weight intervals",
      make: () => {
        const w = laplaceTensor(30 * 20, 0.05, 5);
        const interval = Float32Array.from(w, (x) => 0.01 + Math.abs(x) / 4);
        return Promise.resolve(
          encodeDc2020([
            { shape: [30, 20], weights: w, step: 0.01, lambda: 0.05, interval },
            {
              shape: [20],
              weights: laplaceTensor(20, 0.05, 6),
              step: 0.02,
              lambda: 0,
              interval: 0.02,
            },
          ]).bytes,
        );
      },
    },
    {
      file: "model.nnr",
      what: "compressModel() of a small safetensors model at the reference defaults",
      make: async () => {
        const f32 = (shape: number[], seed: number) => ({
          name: `t${seed}`,
          dtype: "F32" as const,
          shape,
          data: new Uint8Array(laplaceTensor(shape.reduce((a, b) => a * b), 0.05, seed).buffer),
        });
        const model = writeSafetensors([
          { ...f32([24, 3, 3, 3], 7), name: "conv.weight" },
          { ...f32([24], 8), name: "conv.bias" },
          { ...f32([10, 216], 9), name: "fc.weight" },
          {
            name: "steps",
            dtype: "I32",
            shape: [6],
            data: new Uint8Array(Int32Array.of(1, 2, 3, 5, 8, -13).buffer),
          },
        ]);
        return (await compressModel(model, "safetensors")).bytes;
      },
    },
  ];
}

if (import.meta.main) {
  for (const c of goldenCases()) {
    const bytes = await c.make();
    await Deno.writeFile(new URL(`testdata/${c.file}`, import.meta.url), bytes);
    console.log(`${c.file}: ${bytes.length} bytes (${c.what})`);
  }
}
