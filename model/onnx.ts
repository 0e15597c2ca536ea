/**
 * Reads and writes the tensors of an ONNX model while keeping every other byte of it.
 *
 * {@linkcode splitOnnx} lists every tensor of a model (initializers and the values of `Constant`
 * nodes, in the main graph and in every subgraph) and takes the selected ones out, leaving a
 * skeleton; {@linkcode joinOnnx} puts tensor data back into a skeleton. Only the `TensorProto`
 * messages that change are re-encoded, together with the length prefixes of the messages that
 * enclose them; all other fields are copied byte for byte in their original order.
 *
 * Tensors are numbered in traversal order: depth first, in the order their fields appear in the
 * file. In a graph, a node's tensors (a `Constant` node's `value`, the tensors of the subgraphs
 * its attributes hold, attribute by attribute) come where the node stands among the graph's
 * nodes and initializers; PyTorch, for one, writes all nodes before all initializers.
 * The skeleton keeps that order, so an index from {@linkcode splitOnnx} names the same tensor in
 * {@linkcode joinOnnx}.
 *
 * Not covered: sparse initializers, `sparse_value` and the scalar/list value attributes of
 * `Constant` nodes, tensors in attributes of other operators, functions
 * (`ModelProto.functions`) and training graphs (`ModelProto.training_info`); their bytes are
 * kept as they are, external-data references included.
 *
 * Portable: bytes in, bytes out; external data is read through a callback.
 *
 * @module
 */
import { concatBytes } from "../core/bytes.ts";
import { DecodeError } from "../core/errors.ts";
import { type Dtype, DTYPE_BYTES, type ModelTensor } from "../core/model_tensor.ts";
import {
  encodeTag,
  encodeVarint,
  ProtoReader,
  ProtoWriter,
  WIRE_I32,
  WIRE_I64,
  WIRE_LEN,
  WIRE_VARINT,
} from "./_protobuf.ts";

/** Where a tensor stands in an ONNX model. */
export interface OnnxTensorOrigin {
  /**
   * Initializer name, or the `Constant` node's first output. Subgraphs may reuse a name; the
   * `index` is what identifies a tensor.
   */
  readonly name: string;
  /** Position in traversal order over the whole model. */
  readonly index: number;
  /** `"initializer"` (`GraphProto.initializer`) or `"constant"` (a `Constant` node's `value`). */
  readonly kind: "initializer" | "constant";
  /**
   * Path of the graph it lives in: `""` for the main graph, else the node (its name, or `#` and
   * its index in its graph) and attribute of each subgraph on the way, e.g. `"If_0/then_branch"`
   * or `"Loop_3/body/#2/else_branch"`; an element of a `graphs` list gets `[i]`.
   */
  readonly graph: string;
  /** The `TensorProto.DataType` number. */
  readonly dataType: number;
}

/** A tensor of an ONNX model whose element type is supported, with its data. */
export interface OnnxTensor extends OnnxTensorOrigin, ModelTensor {
  /** Initializer name, or the `Constant` node's first output. */
  readonly name: string;
}

/**
 * A tensor whose element type (string, complex, float8, 4-bit, …) or layout (segments) is not
 * supported: listed, never decoded, never selectable.
 */
export interface OnnxUnsupportedTensor extends OnnxTensorOrigin {
  /** Always `null`. */
  readonly dtype: null;
  /** The tensor's `dims`. */
  readonly shape: readonly number[];
  /** Always empty. */
  readonly data: Uint8Array<ArrayBuffer>;
}

/** Any tensor listed by {@linkcode splitOnnx}. */
export type OnnxTensorInfo = OnnxTensor | OnnxUnsupportedTensor;

/** Where a tensor's bytes are in an external-data file. */
export interface OnnxExternalRef {
  /** The file's path relative to the model, as ONNX `location`. */
  readonly location: string;
  /** Byte offset in the file. */
  readonly offset: number;
  /** Byte length. */
  readonly length: number;
}

/** Options of {@linkcode splitOnnx}. */
export interface SplitOnnxOptions {
  /** Which tensors to take out of the model; the others stay in the skeleton. Default: none. */
  readonly select?: (t: OnnxTensor) => boolean;
  /**
   * Reads the external-data file named by a tensor's `location`, a relative path as written in
   * the model (absolute paths and `..` segments are rejected before this is called). Each
   * location is read once. Required only if the model uses external data.
   */
  readonly readExternal?: (location: string) => Uint8Array | Promise<Uint8Array>;
  /** Largest model accepted, in bytes. Default 2 GiB, the protobuf limit. */
  readonly maxModelBytes?: number;
  /** Largest total of decoded tensor bytes (external data included). Default 4 GiB. */
  readonly maxTensorBytes?: number;
}

/** The result of {@linkcode splitOnnx}. */
export interface SplitOnnx {
  /**
   * The model with the selected tensors' data removed (name, dims, data type and doc string
   * kept) and every other external-data tensor inlined as `raw_data`; every other byte as in the
   * input.
   */
  readonly skeleton: Uint8Array<ArrayBuffer>;
  /** Every tensor, in traversal order (`tensors[i].index === i`), with its data. */
  readonly tensors: OnnxTensorInfo[];
}

/** Data for {@linkcode joinOnnx}, optionally with a new element type or shape. */
export interface OnnxTensorData {
  /**
   * Element bytes, little-endian; or where they are in an external-data file (then the tensor
   * gets `data_location` EXTERNAL and `location`/`offset`/`length` entries instead of `raw_data`).
   */
  readonly data: Uint8Array | OnnxExternalRef;
  /** New element type; default: the skeleton's. */
  readonly dtype?: Dtype;
  /** New shape; default: the skeleton's `dims`. */
  readonly shape?: readonly number[];
}

/** A graph input or output. */
export interface OnnxValueInfo {
  /** Value name. */
  readonly name: string;
  /** `TensorProto.DataType` of its elements; 0 when it is not a tensor or has no type. */
  readonly dataType: number;
  /** The element type, or `null` when not supported or not a tensor. */
  readonly dtype: Dtype | null;
  /**
   * Dimensions: a number when fixed, a string when symbolic (`dim_param`), `null` when unknown;
   * `null` as a whole when no shape is given.
   */
  readonly shape: readonly (number | string | null)[] | null;
}

/** Graph inputs and outputs of a model's main graph. */
export interface OnnxGraphIO {
  /** Inputs to feed, without those that are initializers. */
  readonly inputs: OnnxValueInfo[];
  /** Outputs. */
  readonly outputs: OnnxValueInfo[];
}

/** `TensorProto.DataType` numbers of the supported element types. */
const DTYPE_OF: ReadonlyMap<number, Dtype> = new Map<number, Dtype>([
  [1, "F32"],
  [2, "U8"],
  [3, "I8"],
  [4, "U16"],
  [5, "I16"],
  [6, "I32"],
  [7, "I64"],
  [9, "BOOL"],
  [10, "F16"],
  [11, "F64"],
  [12, "U32"],
  [13, "U64"],
  [16, "BF16"],
]);

/** `TensorProto.DataType` number of each supported element type. */
const DATA_TYPE_OF: ReadonlyMap<Dtype, number> = new Map(
  [...DTYPE_OF].map(([number, dtype]) => [dtype, number]),
);

// Field numbers of onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const NODE_OUTPUT = 2;
const NODE_NAME = 3;
const NODE_OP_TYPE = 4;
const NODE_ATTRIBUTE = 5;
const NODE_DOMAIN = 7;
const ATTR_NAME = 1;
const ATTR_T = 5;
const ATTR_G = 6;
const ATTR_GRAPHS = 11;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_SEGMENT = 3;
const TENSOR_FLOAT_DATA = 4;
const TENSOR_INT32_DATA = 5;
const TENSOR_STRING_DATA = 6;
const TENSOR_INT64_DATA = 7;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
const TENSOR_DOUBLE_DATA = 10;
const TENSOR_UINT64_DATA = 11;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const DATA_LOCATION_EXTERNAL = 1;

/** `TensorProto` field that holds each element type's values when not in `raw_data`. */
const TYPED_FIELD: Readonly<Record<Dtype, number>> = {
  F32: TENSOR_FLOAT_DATA,
  F64: TENSOR_DOUBLE_DATA,
  I64: TENSOR_INT64_DATA,
  U32: TENSOR_UINT64_DATA,
  U64: TENSOR_UINT64_DATA,
  F16: TENSOR_INT32_DATA,
  BF16: TENSOR_INT32_DATA,
  I32: TENSOR_INT32_DATA,
  I16: TENSOR_INT32_DATA,
  I8: TENSOR_INT32_DATA,
  U16: TENSOR_INT32_DATA,
  U8: TENSOR_INT32_DATA,
  BOOL: TENSOR_INT32_DATA,
};

/** Wire type of one unpacked value of each typed data field. */
const UNPACKED_WIRE: Readonly<Record<number, number>> = {
  [TENSOR_FLOAT_DATA]: WIRE_I32,
  [TENSOR_INT32_DATA]: WIRE_VARINT,
  [TENSOR_INT64_DATA]: WIRE_VARINT,
  [TENSOR_DOUBLE_DATA]: WIRE_I64,
  [TENSOR_UINT64_DATA]: WIRE_VARINT,
};

/** Fields of a `TensorProto` that hold or locate its data. */
const DATA_FIELDS: ReadonlySet<number> = new Set([
  TENSOR_FLOAT_DATA,
  TENSOR_INT32_DATA,
  TENSOR_STRING_DATA,
  TENSOR_INT64_DATA,
  TENSOR_RAW_DATA,
  TENSOR_DOUBLE_DATA,
  TENSOR_UINT64_DATA,
  TENSOR_EXTERNAL_DATA,
  TENSOR_DATA_LOCATION,
]);

/** Deepest nesting of subgraphs accepted. */
const MAX_GRAPH_DEPTH = 64;
const DEFAULT_MAX_MODEL_BYTES = 2 ** 31;
const DEFAULT_MAX_TENSOR_BYTES = 2 ** 32;

/** A length-delimited field on the way from the model's root to a tensor. */
interface Span {
  readonly tagStart: number;
  readonly lengthStart: number;
  readonly bodyStart: number;
  readonly end: number;
  readonly children: Span[];
  site?: Site;
}

/** Where the values of a tensor lie: a packed run or a single unpacked value. */
interface Values {
  readonly field: number;
  readonly start: number;
  readonly end: number;
}

/** A tensor found in the model, with the positions of its data. */
interface Site {
  readonly index: number;
  readonly kind: "initializer" | "constant";
  readonly graph: string;
  readonly name: string;
  readonly span: Span;
  readonly dataType: number;
  readonly dims: number[];
  /** `null` for unsupported element types and segmented tensors. */
  readonly dtype: Dtype | null;
  readonly raw: Values | null;
  readonly typed: Values[];
  /** `external_data` entries when `data_location` is EXTERNAL, else `null`. */
  readonly external: ReadonlyMap<string, string> | null;
}

/** Byte chunks of a re-encoded message body. */
interface Chunks {
  readonly parts: Uint8Array[];
  length: number;
}

/** A parsed model: the spans that lead to tensors, and the tensors in traversal order. */
interface Parsed {
  readonly root: Span;
  readonly sites: Site[];
}

/** Reads the current field as a message on the way to tensors. */
function span(r: ProtoReader, what: string): Span {
  r.expect(WIRE_LEN, what);
  const tagStart = r.tagStart;
  const lengthStart = r.pos;
  const bodyStart = r.delimited();
  return { tagStart, lengthStart, bodyStart, end: r.pos, children: [] };
}

function parseModel(buf: Uint8Array): Parsed {
  const sites: Site[] = [];
  const root: Span = { tagStart: 0, lengthStart: 0, bodyStart: 0, end: buf.length, children: [] };
  for (const r = new ProtoReader(buf); r.next();) {
    if (r.field !== MODEL_GRAPH) {
      r.skip();
      continue;
    }
    const graph = span(r, "ModelProto.graph");
    parseGraph(buf, sites, graph, "", 0);
    if (graph.children.length > 0) root.children.push(graph);
  }
  return { root, sites };
}

function parseGraph(buf: Uint8Array, sites: Site[], graph: Span, path: string, depth: number) {
  if (depth > MAX_GRAPH_DEPTH) {
    throw new DecodeError("limit", `Subgraphs nest deeper than ${MAX_GRAPH_DEPTH}`, graph.tagStart);
  }
  let nodeIndex = 0;
  for (const r = new ProtoReader(buf, graph.bodyStart, graph.end); r.next();) {
    if (r.field === GRAPH_NODE) {
      const node = span(r, "GraphProto.node");
      parseNode(buf, sites, node, path, nodeIndex++, depth);
      if (node.children.length > 0) graph.children.push(node);
    } else if (r.field === GRAPH_INITIALIZER) {
      const tensor = span(r, "GraphProto.initializer");
      parseTensor(buf, sites, tensor, "initializer", path, null);
      graph.children.push(tensor);
    } else r.skip();
  }
}

function parseNode(
  buf: Uint8Array,
  sites: Site[],
  node: Span,
  path: string,
  nodeIndex: number,
  depth: number,
) {
  let output: string | undefined;
  let name = "";
  let opType = "";
  let domain = "";
  const attributes: Span[] = [];
  // Whether an attribute holds a constant depends on op_type, which may come after it.
  for (const r = new ProtoReader(buf, node.bodyStart, node.end); r.next();) {
    if (r.field === NODE_OUTPUT && output === undefined) output = r.text("NodeProto.output");
    else if (r.field === NODE_NAME) name = r.text("NodeProto.name");
    else if (r.field === NODE_OP_TYPE) opType = r.text("NodeProto.op_type");
    else if (r.field === NODE_DOMAIN) domain = r.text("NodeProto.domain");
    else if (r.field === NODE_ATTRIBUTE) attributes.push(span(r, "NodeProto.attribute"));
    else r.skip();
  }
  const constantOutput = opType === "Constant" && (domain === "" || domain === "ai.onnx")
    ? output ?? ""
    : null;
  const label = `${path === "" ? "" : `${path}/`}${name === "" ? `#${nodeIndex}` : name}`;
  for (const attribute of attributes) {
    parseAttribute(buf, sites, attribute, constantOutput, path, label, depth);
    if (attribute.children.length > 0) node.children.push(attribute);
  }
}

function parseAttribute(
  buf: Uint8Array,
  sites: Site[],
  attribute: Span,
  constantOutput: string | null,
  path: string,
  label: string,
  depth: number,
) {
  let name = "";
  const values: { span: Span; field: number }[] = [];
  for (const r = new ProtoReader(buf, attribute.bodyStart, attribute.end); r.next();) {
    const field = r.field;
    if (field === ATTR_NAME) name = r.text("AttributeProto.name");
    else if (field === ATTR_T && constantOutput !== null) {
      values.push({ span: span(r, "AttributeProto.t"), field });
    } else if (field === ATTR_G || field === ATTR_GRAPHS) {
      values.push({ span: span(r, "AttributeProto.g or graphs"), field });
    } else r.skip();
  }
  let listIndex = 0;
  for (const { span, field } of values) {
    if (field === ATTR_T) {
      if (name !== "value") continue;
      parseTensor(buf, sites, span, "constant", path, constantOutput);
    } else {
      const suffix = field === ATTR_GRAPHS ? `[${listIndex++}]` : "";
      parseGraph(buf, sites, span, `${label}/${name}${suffix}`, depth + 1);
      if (span.children.length === 0) continue;
    }
    attribute.children.push(span);
  }
}

function parseTensor(
  buf: Uint8Array,
  sites: Site[],
  tensor: Span,
  kind: "initializer" | "constant",
  graph: string,
  outputName: string | null,
) {
  const dims: number[] = [];
  let dataType = 0;
  let segmented = false;
  let tensorName = "";
  let raw: Values | null = null;
  const typed: Values[] = [];
  let entries: Map<string, string> | null = null;
  let location = 0;
  for (const r = new ProtoReader(buf, tensor.bodyStart, tensor.end); r.next();) {
    const field = r.field;
    switch (field) {
      case TENSOR_DIMS:
        if (r.wire === WIRE_LEN) {
          const packed = r.message("TensorProto.dims");
          while (packed.pos < packed.end) dims.push(packed.uint("dimension"));
        } else {
          r.expect(WIRE_VARINT, "TensorProto.dims");
          dims.push(r.uint("dimension"));
        }
        break;
      case TENSOR_DATA_TYPE:
        r.expect(WIRE_VARINT, "TensorProto.data_type");
        dataType = r.varint() | 0;
        break;
      case TENSOR_SEGMENT:
        r.message("TensorProto.segment");
        segmented = true;
        break;
      case TENSOR_NAME:
        tensorName = r.text("TensorProto.name");
        break;
      case TENSOR_RAW_DATA: {
        const { pos, end } = r.message("TensorProto.raw_data");
        raw = { field, start: pos, end };
        break;
      }
      case TENSOR_EXTERNAL_DATA:
        entries ??= new Map();
        parseEntry(r.message("TensorProto.external_data"), entries);
        break;
      case TENSOR_DATA_LOCATION:
        r.expect(WIRE_VARINT, "TensorProto.data_location");
        location = r.varint();
        break;
      case TENSOR_STRING_DATA:
      case TENSOR_FLOAT_DATA:
      case TENSOR_INT32_DATA:
      case TENSOR_INT64_DATA:
      case TENSOR_DOUBLE_DATA:
      case TENSOR_UINT64_DATA: {
        // Packed (one length-delimited run) or not (one field per value).
        let start = r.pos;
        if (r.wire === WIRE_LEN) start = r.delimited();
        else {
          r.expect(UNPACKED_WIRE[field] ?? WIRE_LEN, `TensorProto field ${field}`);
          r.skip();
        }
        typed.push({ field, start, end: r.pos });
        break;
      }
      default:
        r.skip();
    }
  }
  const site: Site = {
    index: sites.length,
    kind,
    graph,
    name: outputName ?? tensorName,
    span: tensor,
    dataType,
    dims,
    dtype: segmented ? null : DTYPE_OF.get(dataType) ?? null,
    raw,
    typed,
    external: location === DATA_LOCATION_EXTERNAL ? entries ?? new Map() : null,
  };
  tensor.site = site;
  sites.push(site);
}

function parseEntry(r: ProtoReader, entries: Map<string, string>) {
  let key = "";
  let value = "";
  while (r.next()) {
    if (r.field === 1) key = r.text("StringStringEntryProto.key");
    else if (r.field === 2) value = r.text("StringStringEntryProto.value");
    else r.skip();
  }
  entries.set(key, value);
}

/** The element count of `site`, checked to be a safe integer. */
function elementCount(site: Site): number {
  let count = 1;
  for (const dim of site.dims) count *= dim;
  if (!Number.isSafeInteger(count)) {
    throw new DecodeError(
      "limit",
      `Tensor "${site.name}" has too many elements: [${site.dims.join(", ")}]`,
      site.span.tagStart,
    );
  }
  return count;
}

/** Number of values in a run of `site.typed`. */
function valueCount(buf: Uint8Array, site: Site, v: Values): number {
  const width = v.field === TENSOR_FLOAT_DATA ? 4 : v.field === TENSOR_DOUBLE_DATA ? 8 : 0;
  if (width !== 0) {
    if ((v.end - v.start) % width !== 0) {
      throw new DecodeError(
        "corrupt",
        `Tensor "${site.name}" has a packed field ${v.field} of ${v.end - v.start} bytes`,
        v.start,
      );
    }
    return (v.end - v.start) / width;
  }
  // Each varint ends with the one byte below 0x80; the reader checks the last one later.
  let n = 0;
  for (let i = v.start; i < v.end; i++) if (buf[i]! < 0x80) n++;
  return n;
}

/** Decodes the values of `site` held in typed fields into `count` little-endian elements. */
function decodeTyped(buf: Uint8Array, site: Site, dtype: Dtype, count: number) {
  const want = TYPED_FIELD[dtype];
  let n = 0;
  for (const v of site.typed) {
    if (v.field !== want) {
      throw new DecodeError(
        "corrupt",
        `Tensor "${site.name}" of data type ${site.dataType} has values in field ${v.field}`,
        v.start,
      );
    }
    n += valueCount(buf, site, v);
  }
  if (n !== count) {
    throw new DecodeError(
      "corrupt",
      `Tensor "${site.name}" has ${n} values, its dims [${site.dims.join(", ")}] need ${count}`,
      site.span.tagStart,
    );
  }
  const size = DTYPE_BYTES[dtype];
  const out = new Uint8Array(count * size);
  let o = 0;
  for (const v of site.typed) {
    if (want === TENSOR_FLOAT_DATA || want === TENSOR_DOUBLE_DATA) {
      // Protobuf stores fixed-width values little-endian, as ONNX's raw_data does.
      out.set(buf.subarray(v.start, v.end), o);
      o += v.end - v.start;
      continue;
    }
    const r = new ProtoReader(buf, v.start, v.end);
    while (r.pos < v.end) {
      const lo = r.varint();
      out[o] = lo;
      if (size > 1) out[o + 1] = lo >>> 8;
      if (size > 2) {
        out[o + 2] = lo >>> 16;
        out[o + 3] = lo >>> 24;
      }
      if (size > 4) {
        const hi = r.hi;
        out[o + 4] = hi;
        out[o + 5] = hi >>> 8;
        out[o + 6] = hi >>> 16;
        out[o + 7] = hi >>> 24;
      }
      o += size;
    }
  }
  return out;
}

/** Checks an external-data location: relative, inside the model's folder. */
function checkLocation(site: Site, location: string) {
  const parts = location.split(/[\\/]/);
  if (
    location === "" || /^[\\/]/.test(location) || /^[A-Za-z]:/.test(location) ||
    parts.includes("..")
  ) {
    throw new DecodeError(
      "unsupported",
      `Tensor "${site.name}" has external data at a location outside the model's folder: "${location}"`,
      site.span.tagStart,
    );
  }
}

/** Parses an `offset` or `length` entry of external data. */
function entryNumber(site: Site, key: string): number | undefined {
  const text = site.external?.get(key);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^[0-9]{1,16}$/.test(text) || !Number.isSafeInteger(value)) {
    throw new DecodeError(
      "corrupt",
      `Tensor "${site.name}" has an invalid external data ${key}: "${text}"`,
      site.span.tagStart,
    );
  }
  return value;
}

/** The bytes of an external-data tensor within its file. */
function externalBytes(site: Site, files: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const location = site.external?.get("location") ?? "";
  const file = files.get(location)!;
  const offset = entryNumber(site, "offset") ?? 0;
  const length = entryNumber(site, "length") ?? file.length - offset;
  if (offset > file.length || length < 0 || length > file.length - offset) {
    throw new DecodeError(
      "truncated",
      `Tensor "${site.name}" has external data past the end of "${location}" (${file.length} bytes): offset ${offset}, length ${length}`,
      site.span.tagStart,
    );
  }
  return file.subarray(offset, offset + length);
}

/** Decodes the data of a supported tensor into a fresh array of little-endian elements. */
function decodeData(
  buf: Uint8Array,
  site: Site,
  dtype: Dtype,
  external: Uint8Array | null,
  charge: (site: Site, bytes: number) => void,
): Uint8Array<ArrayBuffer> {
  const count = elementCount(site);
  const bytes = count * DTYPE_BYTES[dtype];
  const sources = (site.raw === null ? 0 : 1) + (site.typed.length === 0 ? 0 : 1) +
    (external === null ? 0 : 1);
  if (sources > 1) {
    throw new DecodeError(
      "corrupt",
      `Tensor "${site.name}" has data in more than one of raw_data, typed fields and external data`,
      site.span.tagStart,
    );
  }
  const held = external ?? (site.raw === null ? null : buf.subarray(site.raw.start, site.raw.end));
  if (held === null && site.typed.length === 0 && count > 0) {
    throw new DecodeError("corrupt", `Tensor "${site.name}" has no data`, site.span.tagStart);
  }
  if (held !== null && held.length !== bytes) {
    throw new DecodeError(
      "corrupt",
      `Tensor "${site.name}" has ${held.length} data bytes, its dims [${
        site.dims.join(", ")
      }] and type ${dtype} need ${bytes}`,
      site.raw?.start ?? site.span.tagStart,
    );
  }
  charge(site, bytes);
  if (held !== null) return held.slice();
  return decodeTyped(buf, site, dtype, count);
}

/**
 * Re-encodes a tensor's body without its data fields, then with `raw` as `raw_data`, and with
 * new dims and data type when given. Other fields keep their bytes and order.
 */
function rewriteTensor(
  buf: Uint8Array,
  site: Site,
  raw: Uint8Array | null,
  shape?: readonly number[],
  dataType?: number,
  external?: OnnxExternalRef,
): Chunks {
  const out: Chunks = { parts: [], length: 0 };
  const head = new ProtoWriter();
  if (shape !== undefined) {
    const dims = new ProtoWriter();
    for (const d of shape) dims.int(d);
    head.bytesField(TENSOR_DIMS, dims.finish());
  }
  if (dataType !== undefined) head.intField(TENSOR_DATA_TYPE, dataType);
  push(out, head.finish());
  const { bodyStart, end } = site.span;
  const r = new ProtoReader(buf, bodyStart, end);
  let keepFrom = bodyStart;
  while (r.next()) {
    const start = r.tagStart;
    r.skip();
    const field = r.field;
    if (
      DATA_FIELDS.has(field) || (shape !== undefined && field === TENSOR_DIMS) ||
      (dataType !== undefined && field === TENSOR_DATA_TYPE)
    ) {
      push(out, buf.subarray(keepFrom, start));
      keepFrom = r.pos;
    }
  }
  push(out, buf.subarray(keepFrom, end));
  if (raw !== null) {
    push(out, encodeTag(TENSOR_RAW_DATA, WIRE_LEN, raw.length));
    push(out, raw);
  }
  if (external) {
    const refs = new ProtoWriter();
    for (
      const [key, value] of [
        ["location", external.location],
        ["offset", String(external.offset)],
        ["length", String(external.length)],
      ]
    ) {
      const entry = new ProtoWriter().stringField(1, key!).stringField(2, value!).finish();
      refs.bytesField(TENSOR_EXTERNAL_DATA, entry);
    }
    refs.intField(TENSOR_DATA_LOCATION, 1);
    push(out, refs.finish());
  }
  return out;
}

function push(out: Chunks, part: Uint8Array) {
  if (part.length === 0) return;
  out.parts.push(part);
  out.length += part.length;
}

/** Re-encodes the body of `s` with the replaced tensors; `null` when nothing in it changed. */
function emitSpan(buf: Uint8Array, s: Span, replaced: ReadonlyMap<number, Chunks>): Chunks | null {
  if (s.site !== undefined) return replaced.get(s.site.index) ?? null;
  let out: Chunks | null = null;
  let pos = s.bodyStart;
  for (const child of s.children) {
    const body = emitSpan(buf, child, replaced);
    if (body === null) continue;
    out ??= { parts: [], length: 0 };
    push(out, buf.subarray(pos, child.lengthStart));
    push(out, encodeVarint(body.length));
    for (const part of body.parts) push(out, part);
    pos = child.end;
  }
  if (out !== null) push(out, buf.subarray(pos, s.end));
  return out;
}

/** The whole model with the replaced tensors. */
function emitModel(
  buf: Uint8Array,
  root: Span,
  replaced: ReadonlyMap<number, Chunks>,
): Uint8Array<ArrayBuffer> {
  const body = emitSpan(buf, root, replaced);
  return body === null ? buf.slice() : concatBytes(body.parts);
}

/** Calls the caller's reader for one external file, turning its failures into DecodeError. */
async function readFile(
  site: Site,
  location: string,
  read: SplitOnnxOptions["readExternal"],
): Promise<Uint8Array> {
  if (read === undefined) {
    throw new DecodeError(
      "unsupported",
      `Tensor "${site.name}" has external data in "${location}" and no readExternal was given`,
      site.span.tagStart,
    );
  }
  let file: unknown;
  try {
    file = await read(location);
  } catch (cause) {
    const error = new DecodeError(
      "truncated",
      `Cannot read external data file "${location}" of tensor "${site.name}"`,
      site.span.tagStart,
    );
    error.cause = cause;
    throw error;
  }
  if (!(file instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot read external data file "${location}": readExternal returned no bytes`,
    );
  }
  return file;
}

/**
 * Lists the tensors of an ONNX model and takes the selected ones out of it.
 *
 * Each tensor's data is decoded into little-endian element bytes, whichever field held it:
 * `raw_data`, the typed fields (`float_data`, `int32_data` — which also holds float16 and
 * bfloat16 bit patterns and 8/16-bit and bool values —, `int64_data`, `double_data`,
 * `uint64_data`) or external data.
 *
 * @param model The serialized `ModelProto`.
 * @param options Which tensors to take out, how to read external data, limits.
 * @returns The skeleton and every tensor in traversal order.
 * @throws {DecodeError} If the model is malformed, a tensor's data does not match its dims and
 * type, external data is missing or out of range, or a limit is exceeded.
 * @throws {TypeError} If `readExternal` returns something other than a `Uint8Array`.
 *
 * @example Taking every tensor out and putting it back
 * ```ts
 * import { joinOnnx, splitOnnx } from "./onnx.ts";
 * import assert from "node:assert/strict";
 *
 * // ModelProto { graph { initializer { dims: 2, data_type: FLOAT, name: "w", raw_data } } }
 * const model = new Uint8Array([
 *   0x3a, 0x13, 0x2a, 0x11, 0x08, 0x02, 0x10, 0x01, 0x42, 0x01, 0x77, 0x4a, 0x08,
 *   0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, // 1.0, 2.0
 * ]);
 * const { skeleton, tensors } = await splitOnnx(model, { select: () => true });
 * const [w] = tensors;
 * assert.equal(w?.name, "w");
 * assert.equal(w?.dtype, "F32");
 * assert.deepEqual(w?.shape, [2]);
 * assert.equal(skeleton.length, model.length - 10);
 * assert.deepEqual(joinOnnx(skeleton, new Map([[0, w!.data]])), model);
 * ```
 */
export async function splitOnnx(
  model: Uint8Array,
  options: SplitOnnxOptions = {},
): Promise<SplitOnnx> {
  const maxModelBytes = options.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES;
  if (model.length > maxModelBytes) {
    throw new DecodeError(
      "limit",
      `Model has ${model.length} bytes, more than the limit of ${maxModelBytes}`,
      0,
    );
  }
  const { root, sites } = parseModel(model);
  const files = new Map<string, Uint8Array>();
  for (const site of sites) {
    if (site.external === null) continue;
    const location = site.external.get("location") ?? "";
    checkLocation(site, location);
    if (!files.has(location)) {
      files.set(location, await readFile(site, location, options.readExternal));
    }
  }
  let budget = options.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES;
  const charge = (site: Site, bytes: number) => {
    if (bytes > budget) {
      throw new DecodeError(
        "limit",
        `Tensor "${site.name}" takes the decoded tensor bytes past the limit of ${
          options.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES
        }`,
        site.span.tagStart,
      );
    }
    budget -= bytes;
  };
  const tensors: OnnxTensorInfo[] = [];
  const replaced = new Map<number, Chunks>();
  for (const site of sites) {
    const external = site.external === null ? null : externalBytes(site, files);
    const { index, kind, graph, name, dataType, dtype } = site;
    const origin = { index, kind, graph, name, dataType, shape: site.dims };
    if (dtype === null) {
      tensors.push({ ...origin, dtype, data: new Uint8Array() });
      if (external !== null) {
        charge(site, external.length);
        replaced.set(index, rewriteTensor(model, site, external));
      }
      continue;
    }
    const tensor: OnnxTensor = {
      ...origin,
      dtype,
      data: decodeData(model, site, dtype, external, charge),
    };
    tensors.push(tensor);
    if (options.select?.(tensor)) replaced.set(index, rewriteTensor(model, site, null));
    else if (external !== null) replaced.set(index, rewriteTensor(model, site, tensor.data));
  }
  return { skeleton: emitModel(model, root, replaced), tensors };
}

/**
 * Where every tensor of a model (or skeleton) stands, in traversal order, without reading any
 * tensor's data.
 *
 * @param model A serialized `ModelProto`.
 * @returns Each tensor's name, index, kind, graph and data type.
 * @throws {DecodeError} If the model is malformed.
 *
 * @example
 * ```ts
 * import { onnxTensorOrigins } from "./onnx.ts";
 * import assert from "node:assert/strict";
 *
 * // ModelProto { graph { initializer { dims: 2, data_type: FLOAT, name: "w", raw_data } } }
 * const model = new Uint8Array([
 *   0x3a, 0x13, 0x2a, 0x11, 0x08, 0x02, 0x10, 0x01, 0x42, 0x01, 0x77, 0x4a, 0x08,
 *   0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40,
 * ]);
 * assert.deepEqual(onnxTensorOrigins(model), [
 *   { name: "w", index: 0, kind: "initializer", graph: "", dataType: 1 },
 * ]);
 * ```
 */
export function onnxTensorOrigins(model: Uint8Array): OnnxTensorOrigin[] {
  return parseModel(model).sites.map(({ name, index, kind, graph, dataType }) => ({
    name,
    index,
    kind,
    graph,
    dataType,
  }));
}

/**
 * Puts tensor data back into a skeleton from {@linkcode splitOnnx}: each entry of `data`
 * replaces the data of the tensor at that traversal index with `raw_data`, and its dims and
 * data type when given.
 *
 * @param skeleton A serialized `ModelProto`, usually a skeleton.
 * @param data Element bytes (little-endian) by traversal index, optionally with a new dtype
 * and shape.
 * @returns The model with the data in place; every other byte as in `skeleton`.
 * @throws {DecodeError} If the skeleton is malformed, an index names no tensor, the tensor's
 * type is not supported, or a byte length does not match the dims and type.
 * @throws {RangeError} If a given shape has a dimension that is not a non-negative safe integer.
 * @throws {TypeError} If a given dtype is not a {@linkcode Dtype}.
 *
 * @example
 * ```ts
 * import { joinOnnx } from "./onnx.ts";
 * import assert from "node:assert/strict";
 *
 * // ModelProto { graph { initializer { dims: 2, data_type: UINT8, name: "w" } } }
 * const skeleton = new Uint8Array([0x3a, 0x09, 0x2a, 0x07, 0x08, 0x02, 0x10, 0x02, 0x42, 0x01, 0x77]);
 * const model = joinOnnx(skeleton, new Map([[0, new Uint8Array([7, 9])]]));
 * // raw_data (field 9) is appended to the tensor; both length prefixes grow by 4.
 * assert.deepEqual([...model.subarray(0, 4)], [0x3a, 0x0d, 0x2a, 0x0b]);
 * assert.deepEqual([...model.subarray(11)], [0x4a, 0x02, 7, 9]);
 * assert.throws(() => joinOnnx(skeleton, new Map([[0, new Uint8Array(3)]])), SyntaxError);
 * ```
 */
export function joinOnnx(
  skeleton: Uint8Array,
  data: ReadonlyMap<number, Uint8Array | OnnxTensorData>,
): Uint8Array<ArrayBuffer> {
  const { root, sites } = parseModel(skeleton);
  const replaced = new Map<number, Chunks>();
  for (const [index, value] of data) {
    const site = sites[index];
    if (site === undefined) {
      throw new DecodeError(
        "corrupt",
        `No tensor has traversal index ${index}; the model has ${sites.length}`,
        0,
      );
    }
    const given = value instanceof Uint8Array ? { data: value } : value;
    if (given.dtype !== undefined && !DATA_TYPE_OF.has(given.dtype)) {
      throw new TypeError(`Cannot set tensor "${site.name}": unknown dtype ${given.dtype}`);
    }
    const dtype = given.dtype ?? site.dtype;
    if (dtype === null) {
      throw new DecodeError(
        "unsupported",
        `Tensor "${site.name}" has unsupported data type ${site.dataType}`,
        site.span.tagStart,
      );
    }
    const shape = given.shape;
    let count = 1;
    for (const d of shape ?? site.dims) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new RangeError(`Cannot set tensor "${site.name}": dimension ${d} is invalid`);
      }
      count *= d;
    }
    const bytes = count * DTYPE_BYTES[dtype];
    if (given.data.length !== bytes) {
      throw new DecodeError(
        "corrupt",
        `Tensor "${site.name}" is given ${given.data.length} bytes, its dims [${
          (shape ?? site.dims).join(", ")
        }] and type ${dtype} need ${bytes}`,
        site.span.tagStart,
      );
    }
    const dataType = given.dtype === undefined ? undefined : DATA_TYPE_OF.get(given.dtype);
    replaced.set(
      index,
      given.data instanceof Uint8Array
        ? rewriteTensor(skeleton, site, given.data, shape, dataType)
        : rewriteTensor(skeleton, site, null, shape, dataType, given.data),
    );
  }
  return emitModel(skeleton, root, replaced);
}

/** Reads a `ValueInfoProto`. */
function parseValueInfo(r: ProtoReader): OnnxValueInfo {
  let name = "";
  let dataType = 0;
  let shape: (number | string | null)[] | null = null;
  while (r.next()) {
    if (r.field === 1) name = r.text("ValueInfoProto.name");
    else if (r.field !== 2) r.skip();
    else {
      // TypeProto.tensor_type (1) { elem_type (1), shape (2) }
      for (const type = r.message("ValueInfoProto.type"); type.next();) {
        if (type.field !== 1) {
          type.skip();
          continue;
        }
        for (const tensor = type.message("TypeProto.tensor_type"); tensor.next();) {
          if (tensor.field === 1) {
            tensor.expect(WIRE_VARINT, "TypeProto.Tensor.elem_type");
            dataType = tensor.varint() | 0;
          } else if (tensor.field === 2) {
            shape = parseShape(tensor.message("TypeProto.Tensor.shape"));
          } else tensor.skip();
        }
      }
    }
  }
  return { name, dataType, dtype: DTYPE_OF.get(dataType) ?? null, shape };
}

/** Reads a `TensorShapeProto`: `dim` (1) { `dim_value` (1) or `dim_param` (2) }. */
function parseShape(r: ProtoReader): (number | string | null)[] {
  const shape: (number | string | null)[] = [];
  while (r.next()) {
    if (r.field !== 1) {
      r.skip();
      continue;
    }
    let dim: number | string | null = null;
    for (const d = r.message("TensorShapeProto.dim"); d.next();) {
      if (d.field === 1) {
        d.expect(WIRE_VARINT, "Dimension.dim_value");
        dim = d.uint("dimension");
      } else if (d.field === 2) dim = d.text("Dimension.dim_param");
      else d.skip();
    }
    shape.push(dim);
  }
  return shape;
}

/**
 * Reads the inputs and outputs of a model's main graph: names, element types and shapes.
 * Inputs that are also initializers (optional inputs, as older exporters wrote them) are left
 * out.
 *
 * @param model The serialized `ModelProto`.
 * @returns The inputs and outputs, in the model's order.
 * @throws {DecodeError} If the model is malformed.
 *
 * @example
 * ```ts
 * import { onnxGraphIO } from "./onnx.ts";
 * import assert from "node:assert/strict";
 *
 * // graph { input { name: "x", type { tensor_type { elem_type: FLOAT, shape [N, 4] } } } }
 * const model = new Uint8Array([
 *   0x3a, 0x16, 0x5a, 0x14, 0x0a, 0x01, 0x78, 0x12, 0x0f, 0x0a, 0x0d, 0x08, 0x01, 0x12, 0x09,
 *   0x0a, 0x03, 0x12, 0x01, 0x4e, 0x0a, 0x02, 0x08, 0x04,
 * ]);
 * const { inputs, outputs } = onnxGraphIO(model);
 * assert.deepEqual(inputs, [{ name: "x", dataType: 1, dtype: "F32", shape: ["N", 4] }]);
 * assert.deepEqual(outputs, []);
 * ```
 */
export function onnxGraphIO(model: Uint8Array): OnnxGraphIO {
  const inputs: OnnxValueInfo[] = [];
  const outputs: OnnxValueInfo[] = [];
  const initializers = new Set<string>();
  for (const r = new ProtoReader(model); r.next();) {
    if (r.field !== MODEL_GRAPH) {
      r.skip();
      continue;
    }
    for (const g = r.message("ModelProto.graph"); g.next();) {
      if (g.field === GRAPH_INPUT) inputs.push(parseValueInfo(g.message("GraphProto.input")));
      else if (g.field === GRAPH_OUTPUT) {
        outputs.push(parseValueInfo(g.message("GraphProto.output")));
      } else if (g.field === GRAPH_INITIALIZER) {
        for (const t = g.message("GraphProto.initializer"); t.next();) {
          if (t.field === TENSOR_NAME) initializers.add(t.text("TensorProto.name"));
          else t.skip();
        }
      } else g.skip();
    }
  }
  return { inputs: inputs.filter((v) => !initializers.has(v.name)), outputs };
}
