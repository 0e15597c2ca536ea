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
import { encodePayload, type EncodePayloadParams } from "../encoder/encode_payload.ts";
import { encodeDc2020 } from "../encoder/encode_dc2020.ts";
import { encodeDataUnit } from "../encoder/encode_tensor.ts";
import { writeBareNnrFile } from "../encoder/nnr_file.ts";
import { DQ_LAMBDA_FACTOR, LAMBDA_UNIT, quantizeTensor } from "../encoder/quantize.ts";
import { packEntryPoint, type PayloadParams } from "../core/syntax.ts";

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
  /** Where the reference's quantiser is an RD search: ours beside it. */
  readonly rd?: RdResult;
}

/** One side of an RD comparison on one vector. */
export interface RdSide {
  /** Payload bytes. */
  readonly bytes: number;
  /** Mean squared reconstruction error. */
  readonly mse: number;
  /** Σ(|w|/Δ − |qidx|)² + c·λ·(ln 2/6)·(payload bits), c = 1 (URQ) or 4·0.7 (DQ). */
  readonly cost: number;
}

/** Our RD search and the reference's on one vector. */
export interface RdResult {
  /** Our search, coded. */
  readonly ours: RdSide;
  /** The reference's levels and payload. */
  readonly reference: RdSide;
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
  /** Whether our total cost is at most the reference's. */
  noWorse: boolean;
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

/** The RD cost of CODING.md 9.3–9.4 in bits: squared error in steps plus λ-weighted bits. */
function rdCost(
  weights: Float32Array,
  step: number,
  indices: Int32Array,
  bits: number,
  lambda: number,
): { cost: number; mse: number } {
  let sq = 0;
  let mse = 0;
  for (let i = 0; i < weights.length; i++) {
    const d = Math.abs(weights[i]!) / step - Math.abs(indices[i]!);
    sq += d * d;
    const e = weights[i]! - Math.fround(indices[i]!) * step;
    mse += e * e;
  }
  return { cost: sq + lambda * bits, mse: mse / weights.length };
}

/**
 * Where the reference's quantiser is an RD search (URQ with λ > 0, every DQ vector): our own
 * search on the same input and step, coded, compared in the reference's cost with the real
 * payload sizes.
 */
function compareRdSearch(
  v: Json,
  params: PayloadParams,
  weights: Float32Array,
  refLevels: Int32Array,
  rd: RdComparison,
): RdResult {
  const c = v.coding;
  const ours = quantizeTensor(weights, c.qp, params, { lambdaScale: c.lambda_scale });
  const { bytes } = encodePayload(ours.levels, { ...params, qp: ours.qp });
  expectEqualInts("our RD output, decoded", decodePayload(bytes, params).levels, ours.levels);
  const lambda = c.lambda_scale * LAMBDA_UNIT * (c.dq_flag ? DQ_LAMBDA_FACTOR : 1);
  const a = rdCost(weights, ours.step, ours.levels, 8 * bytes.length, lambda);
  const b = rdCost(weights, ours.step, refLevels, 8 * v.payload.length, lambda);
  rd.vectors++;
  rd.ourCost += a.cost;
  rd.referenceCost += b.cost;
  rd.ourBytes += bytes.length;
  rd.referenceBytes += v.payload.length;
  return {
    ours: { bytes: bytes.length, ...a },
    reference: { bytes: v.payload.length, ...b },
  };
}

/** The encoder parameters of a payload vector's payload. */
function vectorEncodeParams(v: Json, qp: number | null): EncodePayloadParams {
  const c = v.coding;
  return {
    ...vectorPayloadParams(v),
    ...(qp === null ? {} : { qp }),
    estimatorSets: c.param_opt === 0 ? "default" : "optimize",
    rowSkip: c.row_skip_enabled_flag === 1,
  };
}

async function checkPayload(
  reader: SuiteReader,
  v: Json,
  rd: RdComparison,
): Promise<{ detail: string; rd?: RdResult }> {
  const f = v.files;
  const c = v.coding;
  const bitstream = await load(reader, f.bitstream);
  const levels = asInt32(await load(reader, f.levels));
  const params = vectorPayloadParams(v);
  const float = params.payloadType === "float";
  const checks: string[] = [];
  let result: RdResult | undefined;

  // Decode: qp and step, levels, coded levels, reconstruction bits, bytes, entry points.
  const out = decodePayload(bitstream, params);
  if (float) {
    if (out.qp !== c.qp) throw new Mismatch(`qp is ${out.qp}, expected ${c.qp}`);
    if (out.step !== Math.fround(c.step)) throw new Mismatch(`step is ${out.step}`);
  }
  expectEqualInts("levels", out.levels, levels);
  if (f.coded_levels) {
    expectEqualInts("coded_levels", out.codedLevels!, asInt32(await load(reader, f.coded_levels)));
  }
  const recon = await load(reader, f.recon);
  if (float) expectSameFloatBits("recon", out.recon as Float32Array, asFloat32(recon));
  else expectEqualInts("recon", out.recon!, asInt32(recon));
  if (out.bytesConsumed !== v.payload.length) {
    throw new Mismatch(`decoder consumed ${out.bytesConsumed} bytes, expected ${v.payload.length}`);
  }
  const entryPoints = (v.payload.entry_points as Json[]).map((e) => ({
    bitOffsetDelta: e.bit_offset_delta,
    value8: e.value8,
    dqState: e.dq_state,
  }));
  expectEqualInts(
    "entry points",
    out.entryPoints.map(packEntryPoint),
    entryPoints.map(packEntryPoint),
  );
  checks.push("decode");

  // Random access: every block row decodes on its own from its entry point.
  if (entryPoints.length > 0) {
    expectBlockRows("payload", bitstream, params, v.payload.entry_points, levels);
    checks.push(`random access to ${entryPoints.length + 1} block rows`);
  }

  // Re-encode: the levels, with the estimator sets chosen as the reference does, give the bytes.
  const encodeParams = vectorEncodeParams(v, out.qp);
  expectSameBytes("re-encoded payload", encodePayload(levels, encodeParams).bytes, bitstream);
  checks.push("re-encode");

  if (float) {
    // Full encode: the input through the reference's quantiser and qp rule gives the levels.
    const weights = asFloat32(await load(reader, f.input));
    const full = quantizeTensor(weights, c.qp_requested, params, {
      lambdaScale: c.lambda_scale,
      rateModel: "reference",
    });
    if (full.qp !== c.qp) throw new Mismatch(`full encode chose qp ${full.qp}, expected ${c.qp}`);
    expectEqualInts("levels quantised from the input", full.levels, levels);
    checks.push("full encode");
    if (c.dq_flag === 1 || c.lambda_scale > 0) {
      result = compareRdSearch(v, params, weights, levels, rd);
      checks.push("RD search");
    }
  }

  const container = v.nnr_container;
  if (container) {
    const file = await load(reader, container.file);
    const payload = file.subarray(
      container.payload_offset,
      container.payload_offset + container.payload_length,
    );
    expectSameBytes("payload inside nnr_container", payload, bitstream);
    const ours = referenceFile(
      [{ name: container.tensor_name, levels, params: encodeParams }],
      container.compress_args,
    );
    expectSameBytes("nnr_container written from the levels", ours, file);
    checks.push("container");
  }
  return { detail: checks.join(", "), ...(result ? { rd: result } : {}) };
}

/** Every block row of a payload decodes on its own from its entry point to the right levels. */
function expectBlockRows(
  what: string,
  payload: Uint8Array,
  params: PayloadParams,
  entries: Json[],
  levels: Int32Array,
): void {
  const entryPoints = entries.map((e) => ({
    bitOffsetDelta: e.bit_offset_delta,
    value8: e.value8,
    dqState: e.dq_state,
  }));
  const width = levels.length / params.shape[0]!;
  for (let j = 0; j <= entryPoints.length; j++) {
    const row = decodeBlockRow(payload, params, entryPoints, j);
    expectEqualInts(
      `${what}: block row ${j} decoded from its entry point`,
      row.levels,
      levels.subarray(row.firstRow * width, (row.firstRow + row.rows) * width),
    );
  }
}

/** The NNR bitstream the reference's `compress()` writes for these levels and arguments. */
function referenceFile(
  tensors: readonly { name: string; levels: Int32Array; params: EncodePayloadParams }[],
  args: Json,
): Uint8Array {
  return writeBareNnrFile(
    tensors.map((t, i) => encodeDataUnit(t.name, t.levels, t.params, i).unit),
    args.qp_density ?? 2,
    tensors[0]?.params.syntax === "nnc2" ? 1 : 0,
  );
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
 * A complete NNR bitstream: every tensor's names, shapes, levels and reconstruction in bitstream
 * order; the levels from the inputs with the reference's quantiser; and, except for a modified
 * (`derived`) stream, our writer reproducing the file from the levels and `compress()` arguments.
 */
async function checkNnr(reader: SuiteReader, v: Json): Promise<string> {
  const bitstream = await load(reader, v.files.bitstream);
  const file = await readNnrFile(bitstream);
  const names = file.tensors.map((t) => t.name);
  const wanted = (v.tensors as Json[]).map((t) => t.name);
  if (names.join("\0") !== wanted.join("\0")) {
    throw new Mismatch(`tensors ${JSON.stringify(names)}, expected ${JSON.stringify(wanted)}`);
  }
  const args = v.compress_args;
  const nnc2 = v.producer === "nncodec2-beta";
  const tensors = [];
  let blockRows = 0;
  for (const [i, want] of (v.tensors as Json[]).entries()) {
    const got = file.tensors[i]!;
    expectEqualInts(`${want.name} shape`, got.shape, want.decoded_shape);
    const levels = asInt32(await load(reader, want.files.levels));
    expectEqualInts(`${want.name} levels`, got.levels, levels);
    const recon = await load(reader, want.files.recon);
    if (want.decoded_dtype === "float32") {
      if (!(got.values instanceof Float32Array)) throw new Mismatch(`${want.name}: not float`);
      expectSameFloatBits(`${want.name} recon`, got.values, asFloat32(recon));
    } else {
      expectEqualInts(`${want.name} values`, got.values!, asInt32(recon));
    }
    const float = want.payload_type === "NNR_PT_FLOAT";
    const params: EncodePayloadParams = {
      shape: want.tensor_dimensions,
      payloadType: float ? "float" : "int",
      dqFlag: want.dq_flag,
      numGtxFlags: want.cabac_unary_length_minus1 + 1,
      scanOrder: want.scan_order,
      qpDensity: want.qp_density ?? args.qp_density ?? 2,
      mpsQp: 0,
      syntax: nnc2 ? "nnc2" : "nnc1",
      profileIdc: nnc2 ? 1 : 0,
      ...(float ? { qp: want.qp } : {}),
      estimatorSets: args.param_opt === false ? "default" : "optimize",
      rowSkip: args.row_skipping === true,
    };
    if (float) {
      const weights = asFloat32(await load(reader, want.files.input));
      const full = quantizeTensor(weights, want.qp, params, {
        lambdaScale: args.lambda_scale ?? 0,
        rateModel: "reference",
      });
      expectEqualInts(`${want.name} levels quantised from the input`, full.levels, levels);
    }
    if (want.entry_points.length > 0) {
      const payload = bitstream.subarray(
        want.payload_offset,
        want.payload_offset + want.payload_length,
      );
      expectBlockRows(want.name, payload, params, want.entry_points, levels);
      blockRows += want.entry_points.length + 1;
    }
    tensors.push({ name: want.name, levels, params });
  }
  const checks = [`${file.tensors.length} tensors decoded`, "full encode"];
  if (blockRows > 0) checks.push(`random access to ${blockRows} block rows`);
  if (!v.derived) {
    expectSameBytes("file written from the levels", referenceFile(tensors, args), bitstream);
    checks.push("file written again");
  }
  return checks.join(", ");
}

/**
 * Runs every vector of a suite.
 *
 * @param reader Access to the suite's files.
 * @param onVector Called after each vector (progress).
 * @returns The report.
 */
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
    noWorse: true,
  };
  const total = manifest.vectors.length;
  for (const v of manifest.vectors as Json[]) {
    let result: VectorResult;
    try {
      if (v.level === "payload") {
        result = { id: v.id, status: "passed", ...await checkPayload(reader, v, rd) };
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
  rd.noWorse = rd.ourCost <= rd.referenceCost;
  const count = (s: VectorResult["status"]) => vectors.filter((r) => r.status === s).length;
  return {
    summary: { passed: count("passed"), failed: count("failed"), skipped: count("skipped"), total },
    rd,
    vectors,
  };
}
