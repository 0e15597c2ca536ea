/**
 * The conformance runner: checks a test-vector suite in the layout of the shared suite's
 * FORMAT.md (a `manifest.json` plus content-addressed raw files), decoding every vector in scope
 * and comparing levels and reconstructions bit-exactly, and re-encoding the deterministic ones.
 * File access is injected, so the runner itself is portable.
 *
 * @module
 */
import { sha256Hex } from "../core/sha256.ts";
import { readNnrFile } from "../decoder/nnr_file.ts";
import { decodeBlockRow, decodePayload } from "../decoder/decode_payload.ts";
import { decodeDc2020 } from "../decoder/decode_dc2020.ts";
import { encodePayload } from "../encoder/encode_payload.ts";
import { encodeDc2020 } from "../encoder/encode_dc2020.ts";
import {
  LAMBDA_UNIT,
  quantizeDqTrellis,
  quantizeUniform,
  quantizeUrqRd,
} from "../encoder/quantize.ts";
import { stepSize } from "../core/step_size.ts";
import type { PayloadParams } from "../core/syntax.ts";

/** Reads files of a suite by their path relative to the suite root. */
export interface SuiteReader {
  /** Returns the bytes of a file. */
  read(path: string): Promise<Uint8Array>;
}

/** Outcome of one vector. */
export interface VectorResult {
  /** The vector's id. */
  readonly id: string;
  /** `passed`, `failed`, or `skipped` (with the reason in `detail`). */
  readonly status: "passed" | "failed" | "skipped";
  /** What failed, what was skipped and why, or what was checked. */
  readonly detail: string;
}

/**
 * Our rate-distortion search against the reference's on the vectors where the quantiser is a
 * search (URQ with λ > 0, every DQ vector), in the reference's cost convention.
 */
export interface RdComparison {
  /** Number of vectors compared. */
  vectors: number;
  /** Sum of the reference's costs. */
  referenceCost: number;
  /** Sum of our costs. */
  ourCost: number;
  /** Total payload bytes of the reference and ours. */
  referenceBytes: number;
  /** Our total payload bytes. */
  ourBytes: number;
}

/** Outcome of a suite. */
export interface ConformanceReport {
  /** Counts. */
  readonly summary: { passed: number; failed: number; skipped: number; total: number };
  /** Our RD search against the reference's. */
  readonly rd: RdComparison;
  /** One result per vector, in manifest order. */
  readonly vectors: VectorResult[];
}

// deno-lint-ignore no-explicit-any
type Json = any;

class Mismatch extends Error {}

/** Loads a file descriptor, checking its size and SHA-256. */
async function load(reader: SuiteReader, fd: Json): Promise<Uint8Array> {
  const bytes = await reader.read(fd.path);
  if (bytes.length !== fd.bytes) {
    throw new Mismatch(`${fd.path}: ${bytes.length} bytes, manifest says ${fd.bytes}`);
  }
  if (await sha256Hex(bytes) !== fd.sha256) {
    throw new Mismatch(`${fd.path}: SHA-256 differs from the manifest`);
  }
  return bytes;
}

function asInt32(bytes: Uint8Array): Int32Array<ArrayBuffer> {
  const copy = bytes.slice();
  return new Int32Array(copy.buffer, 0, copy.length / 4);
}

function asFloat32(bytes: Uint8Array): Float32Array<ArrayBuffer> {
  const copy = bytes.slice();
  return new Float32Array(copy.buffer, 0, copy.length / 4);
}

function expectEqualInts(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  if (got.length !== want.length) {
    throw new Mismatch(`${what}: ${got.length} elements, expected ${want.length}`);
  }
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) throw new Mismatch(`${what}[${i}] is ${got[i]}, expected ${want[i]}`);
  }
}

function expectSameFloatBits(what: string, got: Float32Array, want: Float32Array): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  if (g.length !== w.length) {
    throw new Mismatch(`${what}: ${g.length} elements, expected ${w.length}`);
  }
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i]) throw new Mismatch(`${what}[${i}] is ${got[i]}, expected ${want[i]}`);
  }
}

function expectSameBytes(what: string, got: Uint8Array, want: Uint8Array): void {
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) {
    if (got[i] !== want[i]) {
      throw new Mismatch(`${what}: byte ${i} is ${got[i]}, expected ${want[i]}`);
    }
  }
  if (got.length !== want.length) {
    throw new Mismatch(`${what}: ${got.length} bytes, expected ${want.length}`);
  }
}

/** The payload parameters of a payload vector. */
export function vectorPayloadParams(v: Json): PayloadParams {
  const c = v.coding;
  const nnc2 = v.producer === "nncodec2-beta";
  return {
    shape: v.files.input.shape,
    payloadType: c.payload_type === "NNR_PT_INT" ? "int" : "float",
    dqFlag: c.dq_flag,
    numGtxFlags: c.cabac_unary_length_minus1 + 1,
    scanOrder: c.scan_order,
    qpDensity: c.qp_density ?? 0,
    mpsQp: c.mps_qp ?? 0,
    syntax: nnc2 ? "nnc2" : "nnc1",
    profileIdc: nnc2 ? (c.general_profile_idc ?? 0) : 0,
  };
}

/** RD cost in the reference's convention: squared error in steps plus λ-weighted bits. */
function rdCost(
  weights: Float32Array,
  step: number,
  indices: Int32Array,
  bytes: number,
  lambda: number,
): {
  cost: number;
  mse: number;
} {
  let sq = 0;
  let mse = 0;
  for (let i = 0; i < weights.length; i++) {
    const d = weights[i]! / step - indices[i]!;
    sq += d * d;
    const e = weights[i]! - Math.fround(indices[i]!) * step;
    mse += e * e;
  }
  return { cost: sq + lambda * 8 * bytes, mse: mse / weights.length };
}

/** Runs our quantiser where the reference's is an RD search, and compares costs. */
async function compareRdSearch(reader: SuiteReader, v: Json, rd: RdComparison): Promise<string> {
  const params = vectorPayloadParams(v);
  const c = v.coding;
  const weights = asFloat32(await load(reader, v.files.input));
  const refLevels = asInt32(await load(reader, v.files.levels));
  const step = Math.fround(c.step);
  const lambda = c.lambda_scale * LAMBDA_UNIT * (c.dq_flag ? 4 * 0.7 : 1);
  const ours = c.dq_flag
    ? quantizeDqTrellis(weights, step, params, { lambdaScale: c.lambda_scale })
    : quantizeUrqRd(weights, step, params, { lambdaScale: c.lambda_scale });
  const { bytes } = encodePayload(ours, { ...params, qp: c.qp });
  const check = decodePayload(bytes, params);
  expectEqualInts("our RD output, decoded", check.levels, ours);
  const a = rdCost(weights, step, ours, bytes.length, lambda);
  const b = rdCost(weights, step, refLevels, v.payload.length, lambda);
  rd.vectors++;
  rd.ourCost += a.cost;
  rd.referenceCost += b.cost;
  rd.ourBytes += bytes.length;
  rd.referenceBytes += v.payload.length;
  return `RD search: ours ${bytes.length} B, MSE ${a.mse.toExponential(3)}, cost ${
    a.cost.toFixed(1)
  }; ` +
    `reference ${v.payload.length} B, MSE ${b.mse.toExponential(3)}, cost ${b.cost.toFixed(1)}`;
}

async function checkPayload(reader: SuiteReader, v: Json, rd: RdComparison): Promise<string> {
  const f = v.files;
  const bitstream = await load(reader, f.bitstream);
  const levels = asInt32(await load(reader, f.levels));
  const params = vectorPayloadParams(v);
  const c = v.coding;
  const checks: string[] = [];
  const searched = params.payloadType === "float" && (c.dq_flag === 1 || c.lambda_scale > 0);
  if (searched) checks.push(await compareRdSearch(reader, v, rd));
  const out = decodePayload(bitstream, params);
  checks.push("decode");
  if (params.payloadType === "float") {
    if (out.qp !== v.coding.qp) throw new Mismatch(`qp is ${out.qp}, expected ${v.coding.qp}`);
    const want = stepSize(v.coding.qp, v.coding.qp_density);
    if (Math.fround(v.coding.step) !== want) {
      throw new Mismatch(`step of qp ${v.coding.qp} differs`);
    }
  }
  expectEqualInts("levels", out.levels, levels);
  if (f.coded_levels) {
    expectEqualInts(
      "coded_levels",
      out.codedLevels!,
      asInt32(await load(reader, f.coded_levels)),
    );
  }
  const recon = await load(reader, f.recon);
  if (params.payloadType === "float") {
    expectSameFloatBits(
      "recon",
      out.recon as Float32Array,
      asFloat32(recon),
    );
  } else {
    expectEqualInts("recon", out.recon!, asInt32(recon));
  }
  if (out.bytesConsumed !== v.payload.length) {
    throw new Mismatch(`decoder consumed ${out.bytesConsumed} bytes, expected ${v.payload.length}`);
  }
  const eps = v.payload.entry_points as Json[];
  if (out.entryPoints.length !== eps.length) {
    throw new Mismatch(`${out.entryPoints.length} entry points, expected ${eps.length}`);
  }
  eps.forEach((e, i) => {
    const g = out.entryPoints[i]!;
    if (
      g.bitOffsetDelta !== e.bit_offset_delta || g.value8 !== e.value8 || g.dqState !== e.dq_state
    ) {
      throw new Mismatch(`entry point ${i} is ${JSON.stringify(g)}, expected ${JSON.stringify(e)}`);
    }
  });
  // Random access: every block row decodes on its own from its entry point.
  if (eps.length > 0) {
    const entryPoints = eps.map((e) => ({
      bitOffsetDelta: e.bit_offset_delta,
      value8: e.value8,
      dqState: e.dq_state,
    }));
    for (let j = 0; j <= eps.length; j++) {
      const row = decodeBlockRow(bitstream, params, entryPoints, j);
      const w = levels.length / v.files.input.shape[0];
      expectEqualInts(
        `block row ${j} decoded from its entry point`,
        row.levels,
        levels.subarray(row.firstRow * w, (row.firstRow + row.rows) * w),
      );
    }
    checks.push("random access");
  }
  // Entropy re-encode: the levels with the decoded estimator sets must give the same bytes.
  const encoded = encodePayload(
    params.dqFlag ? out.codedLevels! : levels,
    {
      ...params,
      ...(out.qp === null ? {} : { qp: out.qp }),
      estimatorSets: v.coding.param_opt === 0 ? "default" : "optimize",
      rowSkip: v.payload.row_skip?.enabled === 1 || v.coding.row_skip_enabled_flag === 1,
      valuesAreCodedLevels: true,
    },
  );
  expectSameBytes("re-encoded payload", encoded.bytes, bitstream);
  checks.push("entropy re-encode");
  if (params.payloadType === "float" && !searched) {
    // Deterministic full encode: nearest-neighbour levels, then the estimator-set choice.
    const weights = asFloat32(await load(reader, f.input));
    const nearest = quantizeUniform(weights, Math.fround(c.step));
    expectEqualInts("nearest-neighbour levels", nearest, levels);
    const full = encodePayload(nearest, {
      ...params,
      qp: c.qp,
      estimatorSets: c.param_opt === 0 ? "default" : "optimize",
    });
    expectSameBytes("fully re-encoded payload", full.bytes, bitstream);
    checks.push("full re-encode");
  }
  return checks.join(", ");
}

async function checkDc2020(reader: SuiteReader, v: Json): Promise<string> {
  const bitstream = await load(reader, v.files.bitstream);
  const out = decodeDc2020(bitstream, v.coding.tensor_count);
  v.tensors.forEach((t: Json, i: number) => {
    const got = out.tensors[i]!;
    if (JSON.stringify(got.shape) !== JSON.stringify(t.decoded_shape)) {
      throw new Mismatch(
        `tensor ${i} shape ${JSON.stringify(got.shape)}, expected ${
          JSON.stringify(t.decoded_shape)
        }`,
      );
    }
    if (got.step !== Math.fround(t.step)) {
      throw new Mismatch(`tensor ${i} step ${got.step}, expected ${t.step}`);
    }
  });
  for (let i = 0; i < v.tensors.length; i++) {
    const t = v.tensors[i];
    const got = out.tensors[i]!;
    expectEqualInts(
      `tensor ${i} levels`,
      got.levels,
      asInt32(await load(reader, t.files.levels)),
    );
    expectSameFloatBits(
      `tensor ${i} recon`,
      got.recon,
      asFloat32(await load(reader, t.files.recon)),
    );
  }
  if (out.bytesConsumed !== bitstream.length) {
    throw new Mismatch(`decoder consumed ${out.bytesConsumed} bytes, expected ${bitstream.length}`);
  }
  const inputs = [];
  for (const t of v.tensors) {
    inputs.push({
      shape: t.decoded_shape,
      weights: asFloat32(await load(reader, t.files.input)),
      step: t.step,
      lambda: t.lambda,
      interval: t.interval ?? asFloat32(await load(reader, t.files.interval)),
    });
  }
  expectSameBytes(
    "re-encoded stream",
    encodeDc2020(inputs, v.coding.num_gtx_flags).bytes,
    bitstream,
  );
  return "decode, re-encode";
}

/**
 * Runs every vector of a suite.
 *
 * @param reader Access to the suite's files.
 * @param onVector Called after each vector (progress).
 * @returns The report.
 */
/** A complete NNR bitstream: every tensor's levels and reconstruction, in bitstream order. */
async function checkNnr(reader: SuiteReader, v: Json): Promise<string> {
  const file = await readNnrFile(await load(reader, v.files.bitstream));
  expectEqualInts(
    "tensor names",
    file.tensors.map((t) => t.name).join("\0").split("").map((c) => c.charCodeAt(0)),
    v.tensors.map((t: Json) => t.name).join("\0").split("").map((c: string) => c.charCodeAt(0)),
  );
  for (const [i, want] of (v.tensors as Json[]).entries()) {
    const got = file.tensors[i]!;
    expectEqualInts(`${want.name} shape`, got.shape, want.decoded_shape);
    expectEqualInts(
      `${want.name} levels`,
      got.levels,
      asInt32(await load(reader, want.files.levels)),
    );
    const recon = await load(reader, want.files.recon);
    if (want.decoded_dtype === "float32") {
      if (!(got.values instanceof Float32Array)) throw new Mismatch(`${want.name}: not float`);
      expectSameFloatBits(`${want.name} recon`, got.values, asFloat32(recon));
    } else {
      expectEqualInts(`${want.name} values`, got.values!, asInt32(recon));
    }
  }
  return `${file.tensors.length} tensors decoded bit-exactly`;
}

export async function runConformance(
  reader: SuiteReader,
  onVector: (result: VectorResult, index: number, total: number) => void = () => {},
): Promise<ConformanceReport> {
  const manifest = JSON.parse(new TextDecoder().decode(await reader.read("manifest.json")));
  if (manifest.format !== 1 || !Array.isArray(manifest.vectors)) {
    throw new TypeError("Cannot run conformance: manifest.json is not a format-1 manifest");
  }
  const vectors: VectorResult[] = [];
  const rd: RdComparison = {
    vectors: 0,
    referenceCost: 0,
    ourCost: 0,
    referenceBytes: 0,
    ourBytes: 0,
  };
  const total = manifest.vectors.length;
  for (const v of manifest.vectors as Json[]) {
    let result: VectorResult;
    try {
      if (v.level === "payload") {
        result = { id: v.id, status: "passed", detail: await checkPayload(reader, v, rd) };
      } else if (v.level === "dc2020-stream") {
        result = { id: v.id, status: "passed", detail: await checkDc2020(reader, v) };
      } else if (v.level === "nnr") {
        result = { id: v.id, status: "passed", detail: await checkNnr(reader, v) };
      } else {
        result = {
          id: v.id,
          status: "skipped",
          detail: `unknown level ${JSON.stringify(v.level)}`,
        };
      }
    } catch (e) {
      result = { id: v.id, status: "failed", detail: (e as Error).message };
    }
    vectors.push(result);
    onVector(result, vectors.length, total);
  }
  const count = (s: VectorResult["status"]) => vectors.filter((r) => r.status === s).length;
  return {
    summary: { passed: count("passed"), failed: count("failed"), skipped: count("skipped"), total },
    rd,
    vectors,
  };
}
