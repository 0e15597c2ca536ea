/**
 * ONNX test models: the zoo's models, variants of them that store their weights in other ways
 * (float16, `Constant` nodes with typed fields, external data, subgraphs) and a synthetic model
 * with a tensor of every supported element type. Built with the project's own protobuf writer,
 * independently of `model/onnx.ts`, so that the reader is checked against a second encoder.
 *
 * @module
 */
import { ProtoReader, ProtoWriter } from "../model/_protobuf.ts";
import { fromFloat32, toFloat32 } from "../model/dtypes.ts";
import { type Dtype, DTYPE_BYTES, type ModelTensor } from "../core/model_tensor.ts";

/** The zoo's models, by file name. */
export const ZOO_MODELS = ["lenet300_mnist.onnx", "lenet5_mnist.onnx"] as const;

/**
 * Reads a model of `shared/zoo`.
 *
 * @param name File name.
 * @returns Its bytes.
 */
export function readZooModel(name: (typeof ZOO_MODELS)[number]): Promise<Uint8Array> {
  return Deno.readFile(new URL(`../../shared/zoo/${name}`, import.meta.url));
}

// Field numbers of onnx.proto used here.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;

/** `TensorProto.DataType` of each dtype. */
export const DATA_TYPE: Readonly<Record<Dtype, number>> = {
  F32: 1,
  U8: 2,
  I8: 3,
  U16: 4,
  I16: 5,
  I32: 6,
  I64: 7,
  BOOL: 9,
  F16: 10,
  F64: 11,
  U32: 12,
  U64: 13,
  BF16: 16,
};

/** One field of a message: its number, its whole encoding and, if length-delimited, its value. */
interface Field {
  readonly field: number;
  readonly bytes: Uint8Array;
  readonly value: Uint8Array;
}

/** Splits a message into its fields. */
function fields(message: Uint8Array): Field[] {
  const out: Field[] = [];
  const r = new ProtoReader(message);
  while (r.next()) {
    const start = r.tagStart;
    let valueStart = r.pos;
    if (r.wire === 2) valueStart = r.delimited();
    else r.skip();
    out.push({
      field: r.field,
      bytes: message.subarray(start, r.pos),
      value: message.subarray(valueStart, r.pos),
    });
  }
  return out;
}

function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** What the fixtures need of a `TensorProto` that holds its data in `raw_data`. */
interface RawTensor extends ModelTensor {
  /** The message without its data fields. */
  readonly header: Uint8Array;
}

function readRawTensor(message: Uint8Array): RawTensor {
  let name = "";
  const shape: number[] = [];
  let dataType = 0;
  let data: Uint8Array = new Uint8Array();
  const header = new ProtoWriter();
  for (const f of fields(message)) {
    if (f.field === 9) {
      data = f.value;
      continue;
    }
    header.raw(f.bytes);
    if (f.field === 8) name = text(f.value);
    if (f.field === 2) dataType = new ProtoReader(f.bytes, 1).varint();
    if (f.field === 1) {
      const r = new ProtoReader(f.value);
      while (r.pos < r.end) shape.push(r.uint("dimension"));
    }
  }
  const dtype = (Object.keys(DATA_TYPE) as Dtype[]).find((d) => DATA_TYPE[d] === dataType);
  if (dtype === undefined) throw new TypeError(`Fixture tensor "${name}" has type ${dataType}`);
  return { name, dtype, shape, data, header: header.finish() };
}

/** Rebuilds a model with its main graph's fields replaced by `edit`'s. */
function editGraph(model: Uint8Array, edit: (graph: Field[]) => Uint8Array[]): Uint8Array {
  const out = new ProtoWriter();
  for (const f of fields(model)) {
    if (f.field !== MODEL_GRAPH) out.raw(f.bytes);
    else {
      const graph = new ProtoWriter();
      for (const part of edit(fields(f.value))) graph.raw(part);
      out.bytesField(MODEL_GRAPH, graph.finish());
    }
  }
  return out.finish();
}

/** The graph's fields with `nodes` (encoded `NodeProto`s) inserted before its first node. */
function withNodesFirst(graph: Field[], nodes: Uint8Array[]): Uint8Array[] {
  const first = graph.findIndex((f) => f.field === GRAPH_NODE);
  const bytes = graph.map((f) => f.bytes);
  const wrapped = nodes.map((n) => new ProtoWriter().bytesField(GRAPH_NODE, n).finish());
  bytes.splice(first < 0 ? 0 : first, 0, ...wrapped);
  return bytes;
}

/**
 * Encodes a `TensorProto`.
 *
 * @param t The tensor; its name is written as the tensor's name.
 * @param storage `"raw"` (`raw_data`), `"packed"` or `"unpacked"` (the typed field of its dtype).
 * @returns The message.
 */
export function encodeTensor(
  t: ModelTensor,
  storage: "raw" | "packed" | "unpacked" = "raw",
): Uint8Array {
  const w = new ProtoWriter();
  const dims = new ProtoWriter();
  for (const d of t.shape) dims.int(d);
  w.bytesField(1, dims.finish()).intField(2, DATA_TYPE[t.dtype]).stringField(8, t.name);
  if (storage === "raw") return w.bytesField(9, t.data).finish();
  const size = DTYPE_BYTES[t.dtype];
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const n = t.data.length / size;
  const float = t.dtype === "F32" || t.dtype === "F64";
  const field = t.dtype === "F32"
    ? 4
    : t.dtype === "F64"
    ? 10
    : t.dtype === "I64"
    ? 7
    : t.dtype === "U32" || t.dtype === "U64"
    ? 11
    : 5;
  const values = new ProtoWriter();
  for (let i = 0; i < n; i++) {
    if (storage === "unpacked") values.int(field * 8 + (float ? (size === 4 ? 5 : 1) : 0));
    if (float) values.raw(t.data.subarray(i * size, (i + 1) * size));
    else if (size === 8) {
      values.varint64(view.getUint32(8 * i, true), view.getUint32(8 * i + 4, true));
    } else if (t.dtype === "U32") values.int(view.getUint32(4 * i, true));
    else if (t.dtype === "I32") values.int(view.getInt32(4 * i, true));
    else if (t.dtype === "I16") values.int(view.getInt16(2 * i, true));
    else if (t.dtype === "I8") values.int(view.getInt8(i));
    else values.int(size === 2 ? view.getUint16(2 * i, true) : view.getUint8(i));
  }
  if (storage === "unpacked") return w.raw(values.finish()).finish();
  return w.bytesField(field, values.finish()).finish();
}

function attribute(name: string, type: number, field: number, value: Uint8Array | number) {
  const w = new ProtoWriter().stringField(1, name);
  if (typeof value === "number") w.intField(field, value);
  else w.bytesField(field, value);
  return w.intField(20, type).finish();
}

/**
 * Encodes a `NodeProto`.
 *
 * @param opType Operator.
 * @param inputs Input names.
 * @param outputs Output names.
 * @param name Node name.
 * @param attributes Encoded `AttributeProto`s.
 * @returns The message.
 */
function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  name: string,
  attributes: Uint8Array[],
): Uint8Array {
  const w = new ProtoWriter();
  for (const i of inputs) w.stringField(1, i);
  for (const o of outputs) w.stringField(2, o);
  w.stringField(3, name).stringField(4, opType);
  for (const a of attributes) w.bytesField(5, a);
  return w.finish();
}

/**
 * Encodes a `Constant` node whose `value` attribute holds `tensor`.
 *
 * @param output Output name.
 * @param tensor Encoded `TensorProto`.
 * @returns The message.
 */
export function constantNode(output: string, tensor: Uint8Array): Uint8Array {
  return node("Constant", [], [output], `${output}_constant`, [attribute("value", 4, 5, tensor)]);
}

/** A `ValueInfoProto` of a float tensor. */
function floatValueInfo(name: string, shape: readonly number[]): Uint8Array {
  const s = new ProtoWriter();
  for (const d of shape) s.bytesField(1, new ProtoWriter().intField(1, d).finish());
  const tensorType = new ProtoWriter().intField(1, 1).bytesField(2, s.finish()).finish();
  const type = new ProtoWriter().bytesField(1, tensorType).finish();
  return new ProtoWriter().stringField(1, name).bytesField(2, type).finish();
}

/** The main graph's initializers that hold their data in `raw_data`. */
function initializers(graph: Field[]): RawTensor[] {
  return graph.filter((f) => f.field === GRAPH_INITIALIZER).map((f) => readRawTensor(f.value));
}

/**
 * Turns every float32 initializer into a float16 one named `<name>_f16` (rounded to nearest,
 * ties to even), and inserts at the start of the graph a `Cast` node back to float32 under the
 * original name, so the model still runs.
 *
 * @param model A model whose initializers hold their data in `raw_data`.
 * @returns The new model.
 */
export function toFloat16Weights(model: Uint8Array): Uint8Array {
  return editGraph(model, (graph) => {
    const casts = initializers(graph).filter((t) => t.dtype === "F32").map((t) =>
      node("Cast", [`${t.name}_f16`], [t.name], `${t.name}_cast`, [attribute("to", 2, 3, 1)])
    );
    const out = withNodesFirst(graph, casts);
    return out.map((bytes) => {
      const f = fields(bytes)[0]!;
      if (f.field !== GRAPH_INITIALIZER) return bytes;
      const t = readRawTensor(f.value);
      if (t.dtype !== "F32") return bytes;
      const half = fromFloat32(toFloat32(t), "F16");
      const tensor = encodeTensor({
        name: `${t.name}_f16`,
        dtype: "F16",
        shape: t.shape,
        data: half,
      });
      return new ProtoWriter().bytesField(GRAPH_INITIALIZER, tensor).finish();
    });
  });
}

/**
 * Moves every initializer into a `Constant` node at the start of the graph, its output named as
 * the initializer, its data in the typed field of its type (`float_data`, `int64_data`, …) rather
 * than `raw_data`.
 *
 * @param model A model whose initializers hold their data in `raw_data`.
 * @returns The new model.
 */
export function toConstantNodes(model: Uint8Array): Uint8Array {
  return editGraph(model, (graph) => {
    const tensors = initializers(graph);
    const names = new Set(tensors.map((t) => t.name));
    const constants = tensors.map((t) => constantNode(t.name, encodeTensor(t, "packed")));
    const kept = graph.filter((f) =>
      f.field !== GRAPH_INITIALIZER &&
      !(f.field === GRAPH_INPUT && names.has(text(fields(f.value)[0]?.value ?? new Uint8Array())))
    );
    return withNodesFirst(kept, constants);
  });
}

/**
 * Moves the data of every initializer into one external file, each tensor at an offset aligned
 * to 4096 bytes, with `data_location` EXTERNAL and `location`/`offset`/`length` entries. The
 * tensors' other fields keep their bytes and order.
 *
 * @param model A model whose initializers hold their data in `raw_data`.
 * @param location The file's name.
 * @returns The new model and the file, by name.
 */
export function toExternalData(
  model: Uint8Array,
  location = "weights.bin",
): { model: Uint8Array; files: Map<string, Uint8Array> } {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const out = editGraph(model, (graph) =>
    graph.map((f) => {
      if (f.field !== GRAPH_INITIALIZER) return f.bytes;
      const t = readRawTensor(f.value);
      const offset = Math.ceil(size / 4096) * 4096;
      chunks.push(new Uint8Array(offset - size), t.data);
      size = offset + t.data.length;
      const w = new ProtoWriter().raw(t.header);
      const entries = { location, offset: `${offset}`, length: `${t.data.length}` };
      for (const [key, value] of Object.entries(entries)) {
        w.bytesField(13, new ProtoWriter().stringField(1, key).stringField(2, value).finish());
      }
      w.intField(14, 1);
      return new ProtoWriter().bytesField(GRAPH_INITIALIZER, w.finish()).finish();
    }));
  const file = new ProtoWriter();
  for (const c of chunks) file.raw(c);
  return { model: out, files: new Map([[location, file.finish()]]) };
}

/** A subgraph: `Constant` nodes and other nodes, and its outputs (float tensors of `shape`). */
function subgraph(name: string, nodes: Uint8Array[], outputs: string[], shape: readonly number[]) {
  const w = new ProtoWriter();
  for (const n of nodes) w.bytesField(GRAPH_NODE, n);
  w.stringField(2, name);
  for (const o of outputs) w.bytesField(12, floatValueInfo(o, shape));
  return w.finish();
}

/** An `If` node on `cond` whose branches are `then` and `otherwise`. */
function ifNode(
  name: string,
  cond: string,
  output: string,
  then: Uint8Array,
  otherwise: Uint8Array,
) {
  return node("If", [cond], [output], name, [
    attribute("then_branch", 5, 6, then),
    attribute("else_branch", 5, 6, otherwise),
  ]);
}

/**
 * Moves the model's first 1-D float32 initializer (a bias) into nested `If` nodes: an outer
 * `If_bias` on a new BOOL initializer `if_cond` (true) whose `then_branch` holds an inner
 * `If_inner` on the same condition; the inner `then_branch` returns the bias from a `Constant`
 * node in `raw_data`; both `else_branch`es return zeros from a `Constant` in `float_data`. The
 * model computes what it did before.
 *
 * @param model A model whose initializers hold their data in `raw_data`.
 * @returns The new model, and the bias's name.
 */
export function withIfSubgraphs(model: Uint8Array): { model: Uint8Array; bias: string } {
  let bias = "";
  const out = editGraph(model, (graph) => {
    const t = initializers(graph).find((t) => t.dtype === "F32" && t.shape.length === 1);
    if (t === undefined) throw new TypeError("Fixture model has no 1-D float32 initializer");
    bias = t.name;
    const zeros = { ...t, data: new Uint8Array(t.data.length) };
    const zerosIn = (output: string) =>
      constantNode(output, encodeTensor({ ...zeros, name: output }, "packed"));
    const inner = ifNode(
      "If_inner",
      "if_cond",
      "then_out",
      subgraph("inner_then", [constantNode("inner_then_out", encodeTensor(t))], [
        "inner_then_out",
      ], t.shape),
      subgraph("inner_else", [zerosIn("inner_else_out")], ["inner_else_out"], t.shape),
    );
    const outer = ifNode(
      "If_bias",
      "if_cond",
      t.name,
      subgraph("outer_then", [inner], ["then_out"], t.shape),
      subgraph("outer_else", [zerosIn("else_out")], ["else_out"], t.shape),
    );
    const kept = graph.filter((f) =>
      !(f.field === GRAPH_INITIALIZER && readRawTensor(f.value).name === t.name)
    );
    const cond = encodeTensor({
      name: "if_cond",
      dtype: "BOOL",
      shape: [],
      data: Uint8Array.of(1),
    });
    const last = kept.findLastIndex((f) => f.field === GRAPH_INITIALIZER);
    const condField = new ProtoWriter().bytesField(GRAPH_INITIALIZER, cond).finish();
    kept.splice(last + 1, 0, fields(condField)[0]!);
    return withNodesFirst(kept, [outer]);
  });
  return { model: out, bias };
}

/** Writes little-endian element bytes from numbers (or bigints for 64-bit integers). */
function elementBytes(dtype: Dtype, values: readonly (number | bigint)[]): Uint8Array {
  const size = DTYPE_BYTES[dtype];
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    const at = i * size;
    switch (dtype) {
      case "F64":
        view.setFloat64(at, Number(v), true);
        break;
      case "I64":
        view.setBigInt64(at, BigInt(v), true);
        break;
      case "U64":
        view.setBigUint64(at, BigInt(v), true);
        break;
      case "I32":
        view.setInt32(at, Number(v), true);
        break;
      case "U32":
        view.setUint32(at, Number(v), true);
        break;
      case "I16":
        view.setInt16(at, Number(v), true);
        break;
      case "U16":
        view.setUint16(at, Number(v), true);
        break;
      case "I8":
        view.setInt8(at, Number(v));
        break;
      default:
        view.setUint8(at, Number(v));
    }
  });
  return out;
}

/**
 * One tensor of each supported dtype, shape [2, 3], with extreme values (sign bits, 2^63,
 * subnormals, …).
 */
export const ALL_DTYPE_TENSORS: readonly ModelTensor[] = (() => {
  const floats = new Float32Array([0, -1.5, 3.25, 1e-7, -65504, 2 ** -24]);
  const t = (dtype: Dtype, data: Uint8Array): ModelTensor => ({
    name: `t_${dtype.toLowerCase()}`,
    dtype,
    shape: [2, 3],
    data,
  });
  return [
    t("F32", new Uint8Array(floats.buffer)),
    t("F64", elementBytes("F64", [0, -1.5, 1e300, -5e-324, Math.PI, -0])),
    t("F16", fromFloat32(floats, "F16")),
    t("BF16", fromFloat32(floats, "BF16")),
    t("I64", elementBytes("I64", [-1n, 2n ** 40n, -(2n ** 63n), 0n, 2n ** 63n - 1n, -300n])),
    t("U64", elementBytes("U64", [0n, 1n, 2n ** 64n - 1n, 2n ** 32n, 2n ** 63n, 300n])),
    t("I32", elementBytes("I32", [-1, 2 ** 31 - 1, -(2 ** 31), 0, 7, -300])),
    t("U32", elementBytes("U32", [0, 2 ** 32 - 1, 2 ** 31, 1, 7, 300])),
    t("I16", elementBytes("I16", [-1, 32767, -32768, 0, 7, -300])),
    t("U16", elementBytes("U16", [0, 65535, 32768, 1, 7, 300])),
    t("I8", elementBytes("I8", [-1, 127, -128, 0, 7, -100])),
    t("U8", elementBytes("U8", [0, 255, 128, 1, 7, 200])),
    t("BOOL", elementBytes("BOOL", [1, 0, 0, 1, 1, 0])),
  ];
})();

/**
 * A model whose main graph holds {@linkcode ALL_DTYPE_TENSORS} as initializers stored as asked,
 * then two tensors of unsupported types: a STRING tensor `t_string` (`string_data`) and a
 * FLOAT8E4M3FN tensor `t_float8` (`raw_data`, type 17). Not runnable: it has no nodes.
 *
 * @param storage Where the supported tensors keep their data.
 * @returns The model.
 */
export function allDtypesModel(storage: "raw" | "packed" | "unpacked"): Uint8Array {
  const graph = new ProtoWriter().stringField(2, "all_dtypes");
  for (const t of ALL_DTYPE_TENSORS) graph.bytesField(GRAPH_INITIALIZER, encodeTensor(t, storage));
  const strings = new ProtoWriter().bytesField(1, Uint8Array.of(2)).intField(2, 8)
    .bytesField(6, new TextEncoder().encode("a")).bytesField(6, new TextEncoder().encode("bc"))
    .stringField(8, "t_string").finish();
  const float8 = new ProtoWriter().bytesField(1, Uint8Array.of(3)).intField(2, 17)
    .stringField(8, "t_float8").bytesField(9, Uint8Array.of(0x38, 0xb8, 0)).finish();
  graph.bytesField(GRAPH_INITIALIZER, strings).bytesField(GRAPH_INITIALIZER, float8);
  return new ProtoWriter().intField(1, 8).bytesField(MODEL_GRAPH, graph.finish()).finish();
}

/**
 * A model of `depth` `If` nodes, each nested in the `then_branch` of the one before, the
 * innermost holding one `Constant` node.
 *
 * @param depth Number of nested `If` nodes.
 * @returns The model.
 */
export function nestedIfModel(depth: number): Uint8Array {
  const value = encodeTensor({ name: "c", dtype: "F32", shape: [1], data: new Uint8Array(4) });
  let graph = subgraph("leaf", [constantNode("c", value)], ["c"], [1]);
  for (let i = depth - 1; i >= 0; i--) {
    const empty = subgraph("empty", [], [], []);
    graph = subgraph(`g${i}`, [ifNode(`If_${i}`, "cond", "c", graph, empty)], ["c"], [1]);
  }
  return new ProtoWriter().intField(1, 8).bytesField(MODEL_GRAPH, graph).finish();
}
