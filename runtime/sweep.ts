/**
 * The DeepCABAC search for the smallest model within an accuracy tolerance (paper §III-C, DC-v2):
 * a grid of global step sizes with nearest-neighbour quantisation to bracket the usable range,
 * then rate-distortion quantisation over (qp, λ) inside it, URQ and DQ; then, beyond the paper,
 * each tensor's qp raised on its own, largest tensors first, while the metric holds, and then its
 * λ: the damage of each step is measured, not predicted.
 *
 * @module
 */
import type { ModelTensor } from "../core/model_tensor.ts";
import {
  compressModel,
  type CompressOptions,
  type TensorReport,
  type TensorRule,
} from "../encoder/compress_model.ts";
import { decompressModel } from "../decoder/decompress_model.ts";
import { type DataMetric, evaluateModel, metricValue } from "./evaluate.ts";

export type { DataMetric };
import type { Backend } from "./onnx_runtime.ts";

/** What the search keeps within tolerance: a metric on data, or one of the caller's own. */
export type SweepMetric = DataMetric | "custom";

/** One evaluated setting. */
export interface SweepPoint {
  /** Which pass produced it: `grid` (λ = 0), `rd` (qp × λ), `refine` (per-tensor qps). */
  readonly pass: "grid" | "rd" | "refine";
  /** Weight qp. */
  readonly qp: number;
  /** λ (`lambda_scale`). */
  readonly lambdaScale: number;
  /** Dependent quantisation. */
  readonly dq: boolean;
  /** Per-tensor qps that differ from `qp`. */
  readonly tensorQps: Readonly<Record<string, number>>;
  /** Per-tensor λ that differ from `lambdaScale`. */
  readonly tensorLambdas: Readonly<Record<string, number>>;
  /** NNR file size. */
  readonly bytes: number;
  /** The metric's value (accuracy and agreement as fractions, SNR in dB). */
  readonly metric: number;
  /** Whether it is within tolerance of the original. */
  readonly ok: boolean;
}

/** The metric and tolerance a sweep keeps, for both searches. */
export interface SweepTolerance {
  /** The metric (default: accuracy when the data has labels `y`, else agreement). */
  readonly metric?: DataMetric;
  /** Allowed loss in percentage points, for accuracy and agreement (default 0.5). */
  readonly maxDrop?: number;
  /** For the SNR metric: the lowest acceptable output SNR in dB (default 30). */
  readonly minSnrDb?: number;
}

/** Options of {@linkcode sweep}. */
export interface SweepOptions extends SweepTolerance {
  /**
   * A metric of one's own instead (`"custom"`): a model's score as a fraction, higher is better
   * (e.g. the agreement of a stateful model's decisions over a signal); the original model's
   * score is the baseline and `maxDrop` the tolerance. `data` is then not used.
   */
  readonly score?: (model: Uint8Array) => Promise<number>;
  /** Weight qps of the first pass (default −40, −38, …, −8). */
  readonly qpGrid?: readonly number[];
  /** λ values of the second pass (default 0.5, 1, 2). */
  readonly lambdas?: readonly number[];
  /** Run the per-tensor refinement (default true). */
  readonly refine?: boolean;
  /** Compression options kept fixed (qp density, non-weight qp, workers' `encode`, …). */
  readonly compress?: CompressOptions;
  /** Evaluation batch size. */
  readonly batchSize?: number;
  /** ONNX Runtime backend of the evaluations (default `"wasm"`). */
  readonly backend?: Backend;
  /**
   * Settings measured at once in the grid and RD passes (default 1); pair it with a worker pool
   * in `compress.encode` so that compression runs beside evaluation.
   */
  readonly parallel?: number;
  /** Called after each evaluated point. */
  readonly onPoint?: (p: SweepPoint, index: number) => void;
}

/** What {@linkcode sweep} found. */
export interface SweepResult {
  /** The metric. */
  readonly metric: SweepMetric;
  /** The original model's value of it (1 for agreement, Infinity for SNR). */
  readonly baseline: number;
  /** Original model size. */
  readonly originalBytes: number;
  /** Every evaluated point, in order. */
  readonly points: readonly SweepPoint[];
  /** Points no other point beats in both size and metric, smallest first. */
  readonly pareto: readonly SweepPoint[];
  /** The smallest point within tolerance, or null if none is. */
  readonly best: SweepPoint | null;
  /** The NNR file of `best`. */
  readonly file: Uint8Array | null;
  /** Models evaluated (the points, and the original when the metric is accuracy). */
  readonly evaluations: number;
  /** Wall-clock seconds of the search. */
  readonly seconds: number;
}

const DEFAULT_GRID = Array.from({ length: 17 }, (_, i) => -40 + 2 * i);

/**
 * Searches step sizes, λ and per-tensor qps for the smallest compressed model whose metric stays
 * within tolerance of the original's.
 *
 * @param model The ONNX model.
 * @param data The evaluation data (`x` or the input's name, optional labels `y`).
 * @param options Metric, tolerance, grids and fixed compression options.
 * @returns Every point, the Pareto front and the best file.
 *
 * @example
 * ```ts ignore
 * import { sweep } from "./sweep.ts";
 * const result = await sweep(model, data, { maxDrop: 0.5 });
 * console.log(result.best?.bytes, result.best?.metric);
 * ```
 */
export async function sweep(
  model: Uint8Array,
  data: readonly ModelTensor[],
  options: SweepOptions = {},
): Promise<SweepResult> {
  const metric: SweepMetric = options.score
    ? "custom"
    : options.metric ?? (data.some((t) => t.name === "y") ? "accuracy" : "agreement");
  if (metric === "accuracy" && !data.some((t) => t.name === "y")) {
    throw new RangeError('The accuracy metric needs labels "y" in the data');
  }
  const started = performance.now();
  const maxDrop = (options.maxDrop ?? 0.5) / 100;
  const minSnr = options.minSnrDb ?? 30;
  const batch = {
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.backend ? { backend: options.backend } : {}),
  };
  const score = options.score ?? (async (m: Uint8Array) =>
    metricValue(
      await evaluateModel(m, data, {
        ...batch,
        ...(metric === "accuracy" ? {} : { reference: model }),
      }),
      metric as DataMetric,
    ));
  const baseline = metric === "accuracy" || metric === "custom"
    ? await score(model)
    : metric === "agreement"
    ? 1
    : Infinity;
  const within = (v: number) => metric === "snr" ? v >= minSnr : v >= baseline - maxDrop;

  const points: SweepPoint[] = [];
  const files = new Map<SweepPoint, Uint8Array>();
  // Each point's per-tensor report, so the refinement knows the weight tensors without coding
  // its starting point again.
  const reports = new Map<SweepPoint, readonly TensorReport[]>();
  let best: SweepPoint | null = null;
  type Spec = [
    SweepPoint["pass"],
    number,
    number,
    boolean,
    Record<string, number>?,
    Record<string, number>?,
  ];
  /** Compresses, decodes and scores one setting (no shared state: several may run at once). */
  const measure = async ([pass, qp, lambdaScale, dq, tensorQps = {}, tensorLambdas = {}]: Spec) => {
    const rules = pointRules({ qp, lambdaScale, tensorQps, tensorLambdas });
    const { bytes, tensors } = await compressModel(model, "onnx", {
      ...options.compress,
      qp,
      lambdaScale,
      dq,
      rules: [...rules, ...(options.compress?.rules ?? [])],
    });
    const v = await score((await decompressModel(bytes, { format: "onnx" })).bytes);
    const point: SweepPoint = {
      pass,
      qp,
      lambdaScale,
      dq,
      tensorQps,
      tensorLambdas,
      bytes: bytes.length,
      metric: v,
      ok: within(v),
    };
    return { point, bytes, tensors };
  };
  /** Records measured points in order, keeping the file of the best. */
  const record = (
    { point, bytes, tensors }: Awaited<ReturnType<typeof measure>>,
  ) => {
    reports.set(point, tensors);
    points.push(point);
    options.onPoint?.(point, points.length - 1);
    if (point.ok && (!best || point.bytes < best.bytes)) {
      if (best) files.delete(best);
      best = point;
      files.set(point, bytes);
    }
    return point;
  };
  /** Measures independent settings, `parallel` at a time (compression in the workers of
   * `compress.encode` overlaps with evaluation), and records them in the given order. */
  const measureAll = async (specs: Spec[]): Promise<SweepPoint[]> => {
    const results = new Array<Awaited<ReturnType<typeof measure>>>(specs.length);
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < specs.length; i = next++) results[i] = await measure(specs[i]!);
    };
    await Promise.all(Array.from({ length: Math.max(1, options.parallel ?? 1) }, lane));
    return results.map(record);
  };
  const tryPoint = async (...spec: Spec): Promise<SweepPoint> => record(await measure(spec));

  // Pass 1 (DC-v2): nearest-neighbour quantisation over global step sizes.
  let coarsest: number | null = null;
  const grid = await measureAll(
    (options.qpGrid ?? DEFAULT_GRID).map((qp): Spec => ["grid", qp, 0, false]),
  );
  for (const p of grid) if (p.ok) coarsest = Math.max(coarsest ?? p.qp, p.qp);
  // Pass 2: RD quantisation over (qp, λ), URQ and DQ, around the coarsest usable step.
  if (coarsest !== null) {
    // DQ at a given qp reconstructs on a coarser lattice than URQ, so finer qps are tried too.
    const specs: Spec[] = [];
    for (const qp of [coarsest - 6, coarsest - 4, coarsest - 2, coarsest, coarsest + 2]) {
      for (const lambdaScale of options.lambdas ?? [0.5, 1, 2]) {
        for (const dq of [false, true]) specs.push(["rd", qp, lambdaScale, dq]);
      }
    }
    const rd = await measureAll(specs);
    // The λ grid is coarse where size changes fast: between the largest λ within tolerance and
    // the next one, bisect (geometric mean) for the two qps whose best points are smallest.
    const bracket = (qp: number, dq: boolean) => {
      const line = rd.filter((p) => p.qp === qp && p.dq === dq);
      const ok = line.filter((p) => p.ok).sort((a, b) => b.lambdaScale - a.lambdaScale)[0];
      const fail = ok && line.filter((p) => !p.ok && p.lambdaScale > ok.lambdaScale)
        .sort((a, b) => a.lambdaScale - b.lambdaScale)[0];
      return ok && fail ? { ok, fail } : null;
    };
    const brackets = rd.filter((p) => p.ok).sort((a, b) => a.bytes - b.bytes)
      .map((p) => bracket(p.qp, p.dq)).filter((b) => b !== null)
      .filter((b, i, all) => all.findIndex((c) => c.ok === b.ok) === i).slice(0, 2);
    for (let { ok, fail } of brackets) {
      for (let step = 0; step < 3; step++) {
        const lambda = Math.sqrt(ok.lambdaScale * fail.lambdaScale);
        const p = await tryPoint("rd", ok.qp, lambda, ok.dq);
        if (p.ok) ok = p;
        else fail = p;
      }
    }
  }
  // Pass 3: per-tensor qps, largest weight tensors first, each raised a qp at a time while the
  // metric holds, then its λ; from the best global-step point (to beat any single step), from the
  // smallest point that spends at most half the tolerance (slack for the tensors, where the
  // smallest points keep little) and from the best point so far.
  if (options.refine !== false) {
    const halfSlack = (v: number) =>
      metric === "snr" ? v >= minSnr + 1 : v >= baseline - maxDrop / 2;
    const smallest = (keep: (p: SweepPoint) => boolean) =>
      points.filter(keep).sort((a, b) => a.bytes - b.bytes)[0];
    const starts = [
      smallest((p) => p.pass === "grid" && p.ok),
      smallest((p) => halfSlack(p.metric)),
      best,
    ].filter((p, i, all): p is SweepPoint => p !== undefined && p !== null && all.indexOf(p) === i);
    for (const start of starts) await refine(start);
  }
  async function refine(start: SweepPoint): Promise<void> {
    const weights = reports.get(start)!
      .filter((t) => t.mode === "weight" && !/[*?]/.test(t.name))
      .sort((a, b) => b.originalBytes - a.originalBytes);
    let current = start;
    const at = (qps: Record<string, number>, lambdas: Record<string, number>) =>
      tryPoint("refine", current.qp, current.lambdaScale, current.dq, qps, lambdas);
    for (const t of weights) {
      for (let step = 1; step <= 6; step++) {
        const qps = {
          ...current.tensorQps,
          [t.name]: (current.tensorQps[t.name] ?? current.qp) + 1,
        };
        const p = await at(qps, current.tensorLambdas);
        if (!p.ok) break;
        current = p;
      }
      // Then a larger λ for this tensor alone: fewer bits at the step the metric allows.
      for (let step = 1; step <= 3; step++) {
        const lambda = current.tensorLambdas[t.name] ?? current.lambdaScale;
        const lambdas = { ...current.tensorLambdas, [t.name]: Math.max(0.25, Math.SQRT2 * lambda) };
        const p = await at(current.tensorQps, lambdas);
        if (!p.ok || p.bytes >= current.bytes) break;
        current = p;
      }
    }
  }
  const pareto = points
    .filter((p) =>
      !points.some((q) =>
        q.bytes <= p.bytes && q.metric > p.metric || q.bytes < p.bytes && q.metric >= p.metric
      )
    )
    .sort((a, b) => a.bytes - b.bytes);
  const chosen = best as SweepPoint | null;
  return {
    evaluations: points.length + (metric === "accuracy" || metric === "custom" ? 1 : 0),
    seconds: (performance.now() - started) / 1000,
    metric,
    baseline,
    originalBytes: model.length,
    points,
    pareto,
    best: chosen,
    file: chosen ? files.get(chosen)! : null,
  };
}

/**
 * The per-tensor rules that code a point's tensors at their own qp and λ.
 *
 * @param p A sweep point (or its settings).
 * @returns Rules for `compressModel()`, one per tensor with its own qp or λ.
 *
 * @example
 * ```ts
 * import { pointRules } from "./sweep.ts";
 * import assert from "node:assert/strict";
 *
 * const rules = pointRules({ qp: -20, lambdaScale: 1, tensorQps: { w: -18 }, tensorLambdas: {} });
 * assert.deepEqual(rules, [{ pattern: "w", mode: { qp: -18, lambdaScale: 1 } }]);
 * ```
 */
export function pointRules(
  p: Pick<SweepPoint, "qp" | "lambdaScale" | "tensorQps" | "tensorLambdas">,
): TensorRule[] {
  const names = new Set([...Object.keys(p.tensorQps), ...Object.keys(p.tensorLambdas)]);
  return [...names].map((pattern) => ({
    pattern,
    mode: {
      qp: p.tensorQps[pattern] ?? p.qp,
      lambdaScale: p.tensorLambdas[pattern] ?? p.lambdaScale,
    },
  }));
}

/**
 * Draws size against metric for every point as an SVG, the Pareto front as a line and the
 * chosen point ringed.
 *
 * @param result A sweep result.
 * @returns The SVG document.
 *
 * @example
 * ```ts
 * import { sweepSvg } from "./sweep.ts";
 * import assert from "node:assert/strict";
 *
 * const p = { pass: "grid", qp: -30, lambdaScale: 0, dq: false, tensorQps: {}, tensorLambdas: {}, bytes: 1000, metric: 0.9, ok: true } as const;
 * const svg = sweepSvg({ metric: "accuracy", baseline: 0.9, originalBytes: 4000, points: [p], pareto: [p], best: p, file: null, evaluations: 2, seconds: 1 });
 * assert.match(svg, /^<svg/);
 * ```
 */
export function sweepSvg(result: SweepResult): string {
  const W = 640;
  const H = 400;
  const M = 56;
  // Sizes span decades: log scale. Accuracy near the original is what matters: the y axis shows
  // the 3 points below it, and worse points sit on the bottom edge.
  const xs = result.points.map((p) => Math.log10(p.bytes));
  const ys = result.points.map((p) => p.metric).filter(Number.isFinite);
  const x0 = Math.min(...xs, Infinity);
  const x1 = Math.max(...xs, -Infinity);
  const y1 = result.metric === "snr" ? Math.max(...ys, 0) : result.baseline;
  const y0 = result.metric === "snr" ? Math.min(...ys, 0) : y1 - 0.03;
  const sx = (b: number) => M + ((Math.log10(b) - x0) / (x1 - x0 || 1)) * (W - 2 * M);
  const sy = (v: number) =>
    H - M - ((Math.max(y0, Math.min(v, y1)) - y0) / (y1 - y0 || 1)) * (H - 2 * M);
  const color = { grid: "#888", rd: "#1f77b4", refine: "#2ca02c" };
  const label = result.metric === "snr" ? "output SNR (dB)" : `${result.metric} (%)`;
  const fmt = (v: number) => result.metric === "snr" ? v.toFixed(1) : (100 * v).toFixed(2);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<line x1="${M}" y1="${H - M}" x2="${W - M}" y2="${H - M}" stroke="black"/>`,
    `<line x1="${M}" y1="${M}" x2="${M}" y2="${H - M}" stroke="black"/>`,
    `<text x="${W / 2}" y="${H - 16}" text-anchor="middle">compressed size, bytes (log): ` +
    `${Math.round(10 ** x0)} … ${Math.round(10 ** x1)}</text>`,
    `<text x="${W - M}" y="${M - 24}" text-anchor="end"><tspan fill="#888">● grid λ=0</tspan> ` +
    `<tspan fill="#1f77b4">● RD (qp, λ)</tspan> <tspan fill="#2ca02c">● per-tensor</tspan> ` +
    `<tspan fill="#d62728">○ chosen</tspan></text>`,
    `<text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">${label}: ${
      fmt(y0)
    } … ${fmt(y1)}</text>`,
  ];
  if (result.metric !== "snr") {
    const y = sy(result.baseline).toFixed(1);
    parts.push(
      `<line x1="${M}" y1="${y}" x2="${W - M}" y2="${y}" stroke="#d62728" stroke-dasharray="4 3"/>`,
    );
  }
  const front = result.pareto.filter((p) => Number.isFinite(p.metric));
  if (front.length > 1) {
    const d = front.map((p) => `${sx(p.bytes).toFixed(1)},${sy(p.metric).toFixed(1)}`).join(" ");
    parts.push(`<polyline points="${d}" fill="none" stroke="#ff7f0e"/>`);
  }
  for (const p of result.points) {
    if (!Number.isFinite(p.metric)) continue;
    parts.push(
      `<circle cx="${sx(p.bytes).toFixed(1)}" cy="${sy(p.metric).toFixed(1)}" r="3" fill="${
        color[p.pass]
      }"><title>${p.pass} qp ${p.qp} λ ${p.lambdaScale} ${p.dq ? "DQ" : "URQ"}: ${p.bytes} B, ${
        fmt(p.metric)
      }</title></circle>`,
    );
  }
  if (result.best && Number.isFinite(result.best.metric)) {
    parts.push(
      `<circle cx="${sx(result.best.bytes).toFixed(1)}" cy="${
        sy(result.best.metric).toFixed(1)
      }" r="8" fill="none" stroke="#d62728" stroke-width="2"/>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}
