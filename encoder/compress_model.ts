/**
 * Model file to NNR file: choose how each tensor is coded, code them (in parallel when given a
 * worker pool), and write the file with the model skeleton and metadata.
 *
 * @module
 */
import { stepSize } from "../core/step_size.ts";
import { elementCount, isFloatDtype, toFloat32, toInt32 } from "../model/dtypes.ts";
import { type ModelFormat, type SlottedTensor, splitModel } from "../model/model_file.ts";
import type { ModelTensor } from "../core/model_tensor.ts";
import { type EncodedTensor, encodeTensor, type TensorJob } from "./encode_tensor.ts";
import { fittingQp } from "./quantize.ts";
import { writeNnrFile } from "./nnr_file.ts";

/**
 * How a tensor is coded: quantised at the weight or the non-weight qp, or at a qp of its own;
 * integers losslessly; or left uncompressed in the model skeleton.
 */
export type TensorMode = "weight" | "nonweight" | "int" | "raw";

/** A per-tensor override: the first rule whose pattern matches a tensor's name applies. */
export interface TensorRule {
  /** Glob over tensor names: `*` any run of characters, `?` one character. */
  readonly pattern: string;
  /** The mode, or a qp (float tensors quantised at that qp, with their own λ if given). */
  readonly mode: TensorMode | { readonly qp: number; readonly lambdaScale?: number };
}

/** Options of {@linkcode compressModel}; the defaults are the NNC reference encoder's. */
export interface CompressOptions {
  /** qp of float tensors with two or more dimensions (default −38). */
  readonly qp?: number;
  /** qp_density, 0..7 (default 2). */
  readonly qpDensity?: number;
  /** qp of one-dimensional float tensors (biases, norms; default −75). */
  readonly nonweightQp?: number;
  /** Dependent quantisation (default true). */
  readonly dq?: boolean;
  /** Rate-distortion weight, the reference's `lambda_scale` (default 0: nearest). */
  readonly lambdaScale?: number;
  /**
   * Scan order 0..4 for tensors of two or more dimensions, or `"auto"` (default): a block scan,
   * whose entry points let decoders decode a tensor in parallel and as it arrives, for tensors
   * large enough (`autoScanOrder()` in core/scan.ts) where a trial on one block row shows it
   * costs at most 0.25 % of the size (`encodeTensor()`), else 0.
   */
  readonly scanOrder?: number | "auto";
  /** `cabac_unary_length_minus1` (default 10). */
  readonly cabacUnaryLengthMinus1?: number;
  /** Per-tensor overrides. */
  readonly rules?: readonly TensorRule[];
  /**
   * Per-weight importance (DC-v1) by tensor name, in the tensor's shape (e.g. Fisher diagonals
   * or inverse variances); used by the RD quantisers when `lambdaScale` > 0.
   */
  readonly importance?: ReadonlyMap<string, Float32Array>;
  /** Reads an ONNX external-data file by its relative `location`. */
  readonly readExternal?: (location: string) => Uint8Array | Promise<Uint8Array>;
  /** Codes one tensor; default in this thread. A worker pool passes its own. */
  readonly encode?: (job: TensorJob) => Promise<EncodedTensor>;
  /** Called after each tensor is coded. */
  readonly onProgress?: (done: number, total: number, name: string) => void;
}

/** What happened to one tensor. */
export interface TensorReport {
  /** Tensor name. */
  readonly name: string;
  /** Its dtype in the model. */
  readonly dtype: string;
  /** Its shape. */
  readonly shape: readonly number[];
  /** How it was coded; `raw` tensors stay in the skeleton. */
  readonly mode: TensorMode;
  /** Why a tensor was left raw. */
  readonly why?: string;
  /** The qp used (float tensors). */
  readonly qp?: number;
  /** The step size (float tensors). */
  readonly step?: number;
  /** Bytes of its data in the model. */
  readonly originalBytes: number;
  /** Bytes of its data unit. */
  readonly codedBytes?: number;
  /** The scan order it was coded with (0: no entry points). */
  readonly scanOrder?: number;
  /** Root-mean-square reconstruction error (float tensors). */
  readonly rmse?: number;
}

/** The result of {@linkcode compressModel}. */
export interface CompressResult {
  /** The NNR file. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Per-tensor report, coded tensors first in file order, then those left raw. */
  readonly tensors: readonly TensorReport[];
  /** Size of the input model. */
  readonly inputBytes: number;
}

/**
 * Compresses a model file into an NNR file that also carries the model's skeleton, so
 * `decompressModel()` rebuilds a model of the same format.
 *
 * @param model The model file.
 * @param format Its format.
 * @param options Coding options.
 * @returns The NNR file and a per-tensor report.
 * @throws {DecodeError} If the model is malformed.
 * @throws {RangeError} If an option is out of range.
 *
 * @example
 * ```ts
 * import { compressModel } from "./compress_model.ts";
 * import { writeSafetensors } from "../model/safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new Uint8Array(new Float32Array(64 * 64).map((_, i) => Math.sin(i) / 10).buffer);
 * const model = writeSafetensors([{ name: "w", dtype: "F32", shape: [64, 64], data }]);
 * const out = await compressModel(model, "safetensors");
 * assert.ok(out.bytes.length * 4 < model.length);
 * assert.equal(out.tensors[0]!.mode, "weight");
 * ```
 */
export async function compressModel(
  model: Uint8Array,
  format: ModelFormat,
  options: CompressOptions = {},
): Promise<CompressResult> {
  const o = {
    qp: options.qp ?? -38,
    qpDensity: options.qpDensity ?? 2,
    nonweightQp: options.nonweightQp ?? -75,
    dq: options.dq ?? true,
    lambdaScale: options.lambdaScale ?? 0,
    scanOrder: options.scanOrder ?? "auto",
    cabacUnaryLengthMinus1: options.cabacUnaryLengthMinus1 ?? 10,
  };
  checkOptions(o);
  const choices = new Map<number | string, Choice>();
  const key = (t: SlottedTensor) => t.slot ?? t.name;
  // Tensors that came out no smaller coded than raw (tiny ones) and no rule asked to code.
  const notSmaller = new Set<number | string>();
  const split = () =>
    splitModel(model, format, {
      select: (t) => {
        if (notSmaller.has(key(t))) return "smaller uncompressed";
        // The second split (after dropping tensors not made smaller) reuses the first choice.
        const c = choices.get(key(t)) ?? chooseMode(t, options.rules ?? [], o);
        choices.set(key(t), c);
        return c.mode === "raw" ? c.why : true;
      },
      ...(options.readExternal ? { readExternal: options.readExternal } : {}),
    });
  let parts = await split();
  const encode = options.encode ?? ((job: TensorJob) => Promise.resolve(encodeTensor(job)));
  let done = 0;
  const coded = new Map<number | string, EncodedTensor>();
  await Promise.all(parts.tensors.map(async (t) => {
    const job = toJob(t, choices.get(key(t))!, o, options.importance?.get(t.name));
    coded.set(key(t), await encode(job));
    options.onProgress?.(++done, parts.tensors.length, job.name);
  }));
  for (const t of parts.tensors) {
    if (!choices.get(key(t))!.ruled && coded.get(key(t))!.unit.length >= t.data.length) {
      notSmaller.add(key(t));
    }
  }
  if (notSmaller.size > 0) parts = await split();
  const bytes = await writeNnrFile({
    qpDensity: o.qpDensity,
    model: { format, skeleton: parts.skeleton },
    tensors: parts.tensors.map((t) => {
      const { unit, levelsCrc32, qp, levelBytes } = coded.get(key(t))!;
      return {
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        ...(t.slot === undefined ? {} : { slot: t.slot }),
        unit,
        levelsCrc32,
        qp,
        levelBytes,
      };
    }),
  });
  const reports: TensorReport[] = parts.tensors.map((t) => {
    const e = coded.get(key(t))!;
    const n = elementCount(t.shape);
    return {
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      mode: choices.get(key(t))!.mode,
      ...(e.qp === null ? {} : { qp: e.qp, step: e.step!, rmse: Math.sqrt(e.squaredError / n) }),
      originalBytes: t.data.length,
      codedBytes: e.unit.length,
      scanOrder: e.scanOrder,
    };
  });
  for (const k of parts.kept) {
    const t = k.tensor;
    reports.push({
      name: k.name,
      dtype: t?.dtype ?? "?",
      shape: t?.shape ?? [],
      mode: "raw",
      why: k.why,
      originalBytes: t?.data.length ?? 0,
    });
  }
  return { bytes, tensors: reports, inputBytes: model.length };
}

type Settings = Required<
  Pick<
    CompressOptions,
    | "qp"
    | "qpDensity"
    | "nonweightQp"
    | "dq"
    | "lambdaScale"
    | "scanOrder"
    | "cabacUnaryLengthMinus1"
  >
>;

function checkOptions(o: Settings): void {
  const signalled = (qp: number) => {
    stepSize(qp, o.qpDensity);
    const half = 2 ** (5 + o.qpDensity);
    if (qp < -half || qp >= half) {
      throw new RangeError(`qp ${qp} is out of range: use ${-half}..${half - 1} at this density`);
    }
  };
  signalled(o.qp);
  signalled(o.nonweightQp);
  if (
    o.scanOrder !== "auto" && (!Number.isInteger(o.scanOrder) || o.scanOrder < 0 || o.scanOrder > 4)
  ) {
    throw new RangeError(`scan order ${o.scanOrder} is not in 0..4 or "auto"`);
  }
  if (!(o.lambdaScale >= 0)) throw new RangeError(`lambda ${o.lambdaScale} is negative`);
  const n = o.cabacUnaryLengthMinus1;
  if (!Number.isInteger(n) || n < 0 || n > 31) {
    throw new RangeError(`cabac_unary_length_minus1 ${n} is not in 0..31`);
  }
}

function checkedImportance(name: string, f: Float32Array, values: Float32Array): Float32Array {
  if (f.length !== values.length) {
    throw new RangeError(
      `Importance of "${name}" has ${f.length} values, the tensor ${values.length}`,
    );
  }
  if (!f.every((x) => x >= 0 && Number.isFinite(x))) {
    throw new RangeError(`Importance of "${name}" must be finite and non-negative`);
  }
  return f;
}

/** Glob to RegExp: `*` and `?` are wildcards, everything else literal. */
function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(
    /\?/g,
    ".",
  );
  return new RegExp(`^${body}$`);
}

/** How one tensor is coded, with its values converted once. */
type Choice =
  & (
    | { readonly mode: "raw"; readonly why: string }
    | { readonly mode: "int"; readonly values: Int32Array }
    | {
      readonly mode: "weight" | "nonweight";
      readonly qp: number;
      readonly lambdaScale: number;
      readonly values: Float32Array;
    }
  )
  & {
    /** Whether a rule chose it (then it is coded even if that does not save bytes). */
    readonly ruled?: boolean;
  };

function chooseMode(t: ModelTensor, rules: readonly TensorRule[], o: Settings): Choice {
  const rule = rules.find((r) => globToRegExp(r.pattern).test(t.name));
  const c = chooseByType(t, rule, o);
  return rule ? { ...c, ruled: true } : c;
}

function chooseByType(t: ModelTensor, rule: TensorRule | undefined, o: Settings): Choice {
  const n = elementCount(t.shape);
  const float = isFloatDtype(t.dtype);
  if (rule?.mode === "raw") return { mode: "raw", why: `rule ${rule.pattern}=raw` };
  // A data unit names its tensor with a NUL-terminated string.
  if (t.name.includes("\0")) return { mode: "raw", why: "name contains NUL" };
  if (n === 0 || t.shape.length === 0 || t.shape.length > 8) {
    return { mode: "raw", why: n === 0 ? "empty" : `${t.shape.length}-d` };
  }
  if (!float) {
    if (rule && rule.mode !== "int") return { mode: "raw", why: "integer tensor" };
    const values = toInt32(t);
    return values ? { mode: "int", values } : { mode: "raw", why: "integers beyond 32 bits" };
  }
  if (rule?.mode === "int") return { mode: "raw", why: "float tensor" };
  const values = toFloat32(t);
  if (!values.every(Number.isFinite)) return { mode: "raw", why: "non-finite values" };
  const ruledQp = rule && typeof rule.mode === "object" ? rule.mode.qp : null;
  const mode = ruledQp !== null
    ? "weight"
    : rule?.mode === "weight" || rule?.mode === "nonweight"
    ? rule.mode
    : t.shape.length >= 2
    ? "weight"
    : "nonweight";
  const qp = ruledQp ?? (mode === "weight" ? o.qp : o.nonweightQp);
  const lambdaScale = (rule && typeof rule.mode === "object" ? rule.mode.lambdaScale : undefined) ??
    o.lambdaScale;
  if (!(lambdaScale >= 0)) throw new RangeError(`lambda ${lambdaScale} of ${t.name} is negative`);
  // Magnitudes so large that the qp they need cannot be signalled stay as they are.
  const used = fittingQp(values, qp, o.qpDensity, { dq: o.dq, lambdaScale });
  if (used >= 2 ** (5 + o.qpDensity)) return { mode: "raw", why: "values too large to quantise" };
  return { mode, qp, lambdaScale, values };
}

function toJob(
  t: SlottedTensor,
  c: Choice,
  o: Settings,
  importance: Float32Array | undefined,
): TensorJob {
  const common = {
    scanOrder: t.shape.length < 2 ? 0 : o.scanOrder,
    cabacUnaryLengthMinus1: o.cabacUnaryLengthMinus1,
  };
  if (c.mode === "raw") throw new Error(`Internal error: raw tensor "${t.name}" was taken`);
  if (c.mode === "int") {
    return { name: t.name, shape: t.shape, values: c.values, coding: { kind: "int", ...common } };
  }
  return {
    name: t.name,
    shape: t.shape,
    values: c.values,
    coding: {
      kind: "float",
      qp: c.qp,
      qpDensity: o.qpDensity,
      dq: o.dq,
      lambdaScale: c.lambdaScale,
      ...(importance ? { importance: checkedImportance(t.name, importance, c.values) } : {}),
      ...common,
    },
  };
}
