import assert from "node:assert/strict";
import { DecodeError } from "../core/errors.ts";
import { ProtoWriter } from "../model/_protobuf.ts";
import { fromFloat32, toFloat32 } from "../model/dtypes.ts";
import {
  joinOnnx,
  onnxGraphIO,
  type OnnxTensorData,
  type OnnxTensorInfo,
  splitOnnx,
  type SplitOnnxOptions,
} from "../model/onnx.ts";
import {
  ALL_DTYPE_TENSORS,
  allDtypesModel,
  constantNode,
  encodeTensor,
  nestedIfModel,
  readZooModel,
  toConstantNodes,
  toExternalData,
  toFloat16Weights,
  withIfSubgraphs,
  ZOO_MODELS,
} from "./_onnx_fixtures.ts";

const all = { select: () => true };

/** Every tensor's data by index, as joinOnnx takes it. */
function dataOf(tensors: OnnxTensorInfo[]): Map<number, Uint8Array> {
  return new Map(tensors.filter((t) => t.dtype !== null).map((t) => [t.index, t.data]));
}

/** Splits everything out, joins it back, splits again: the tensors must come back the same. */
async function assertRoundTrip(model: Uint8Array, options: SplitOnnxOptions = {}) {
  const first = await splitOnnx(model, { ...options, ...all });
  const joined = joinOnnx(first.skeleton, dataOf(first.tensors));
  const again = await splitOnnx(joined);
  assert.deepEqual(again.tensors, first.tensors);
  // The joined model holds no external references, so splitting it needs no reader.
  assert.deepEqual((await splitOnnx(joined, all)).skeleton, first.skeleton);
  return { first, joined };
}

async function assertDecodeError(
  run: () => unknown,
  code?: DecodeError["code"],
): Promise<DecodeError> {
  try {
    await run();
  } catch (error) {
    assert.ok(error instanceof DecodeError, `expected a DecodeError, got ${error}`);
    if (code !== undefined) assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail("expected a DecodeError, nothing was thrown");
}

Deno.test("splitOnnx() lists the tensors of lenet300 in traversal order", async () => {
  const { tensors } = await splitOnnx(await readZooModel("lenet300_mnist.onnx"));
  assert.deepEqual(tensors.map((t) => [t.index, t.kind, t.graph, t.name, t.dtype, t.shape]), [
    [0, "constant", "", "/Constant_output_0", "I64", []],
    [1, "constant", "", "onnx::Unsqueeze_11", "I64", [1]],
    [2, "constant", "", "/Constant_1_output_0", "I64", [1]],
    [3, "initializer", "", "fc1.weight", "F32", [300, 784]],
    [4, "initializer", "", "fc1.bias", "F32", [300]],
    [5, "initializer", "", "fc2.weight", "F32", [100, 300]],
    [6, "initializer", "", "fc2.bias", "F32", [100]],
    [7, "initializer", "", "fc3.weight", "F32", [10, 100]],
    [8, "initializer", "", "fc3.bias", "F32", [10]],
  ]);
  const params = tensors.filter((t) => t.kind === "initializer")
    .reduce((n, t) => n + t.data.length / 4, 0);
  assert.equal(params, 266_610);
  assert.deepEqual([...tensors[1]!.data], [0, 0, 0, 0, 0, 0, 0, 0]);
});

for (const name of ZOO_MODELS) {
  Deno.test(`splitOnnx() and joinOnnx() restore ${name} byte for byte`, async () => {
    const model = await readZooModel(name);
    assert.deepEqual((await splitOnnx(model)).skeleton, model);
    const { first, joined } = await assertRoundTrip(model);
    // Each stripped tensor loses only its raw_data field (tag, length, bytes).
    assert.ok(first.skeleton.length < 2000, `${first.skeleton.length} bytes`);
    // PyTorch writes raw_data last, where joinOnnx puts it.
    assert.deepEqual(joined, model);
  });
}

Deno.test("splitOnnx() takes out only the selected tensors", async () => {
  const model = await readZooModel("lenet5_mnist.onnx");
  const { skeleton, tensors } = await splitOnnx(model, {
    select: (t) => t.name.endsWith("weight"),
  });
  const left = await assertDecodeError(() => splitOnnx(skeleton), "corrupt");
  assert.match(left.message, /Tensor "c1.weight" has no data/);
  const weights = tensors.filter((t) => t.name.endsWith("weight"));
  assert.equal(weights.length, 4);
  const joined = joinOnnx(skeleton, dataOf(weights));
  assert.deepEqual(joined, model);
});

Deno.test("splitOnnx() reads typed fields, packed and not, like raw_data", async () => {
  for (const storage of ["raw", "packed", "unpacked"] as const) {
    const { tensors } = await splitOnnx(allDtypesModel(storage));
    const supported = tensors.filter((t) => t.dtype !== null);
    assert.deepEqual(
      supported.map(({ name, dtype, shape, data }) => ({ name, dtype, shape, data })),
      ALL_DTYPE_TENSORS.map(({ name, dtype, shape, data }) => ({ name, dtype, shape, data })),
      storage,
    );
    assert.deepEqual(
      tensors.filter((t) => t.dtype === null).map((t) => [t.name, t.dataType, t.shape, t.data]),
      [["t_string", 8, [2], new Uint8Array()], ["t_float8", 17, [3], new Uint8Array()]],
    );
    await assertRoundTrip(allDtypesModel(storage));
  }
});

Deno.test("splitOnnx() never offers unsupported tensors to select", async () => {
  const seen: string[] = [];
  const model = allDtypesModel("raw");
  const { skeleton } = await splitOnnx(model, {
    select: (t) => {
      seen.push(t.name);
      return false;
    },
  });
  assert.equal(seen.length, ALL_DTYPE_TENSORS.length);
  assert.deepEqual(skeleton, model);
  await assertDecodeError(() => joinOnnx(model, new Map([[13, new Uint8Array(2)]])), "unsupported");
});

Deno.test("splitOnnx() reads Constant nodes with float_data like initializers", async () => {
  for (const name of ZOO_MODELS) {
    const model = await readZooModel(name);
    const constants = toConstantNodes(model);
    const want = (await splitOnnx(model)).tensors;
    const got = (await splitOnnx(constants)).tensors;
    assert.equal(got.length, want.length);
    for (const t of want) {
      const c = got.find((g) => g.name === t.name)!;
      assert.equal(c.kind, "constant");
      assert.deepEqual([c.dtype, c.shape, c.data], [t.dtype, t.shape, t.data], t.name);
    }
    assert.deepEqual((await splitOnnx(constants)).skeleton, constants);
    const { joined } = await assertRoundTrip(constants);
    // raw_data is more compact than packed float_data only by its tag; the sizes stay close.
    assert.ok(Math.abs(joined.length - constants.length) < 100);
  }
});

Deno.test("splitOnnx() reads float16 initializers", async () => {
  const model = await readZooModel("lenet300_mnist.onnx");
  const f16 = toFloat16Weights(model);
  const want = (await splitOnnx(model)).tensors.filter((t) => t.dtype === "F32");
  const { tensors, skeleton } = await splitOnnx(f16);
  assert.deepEqual(skeleton, f16);
  for (const t of want) {
    const h = tensors.find((g) => g.name === `${t.name}_f16`)!;
    assert.equal(h.dtype, "F16");
    assert.deepEqual(h.shape, t.shape);
    assert.deepEqual(h.data, fromFloat32(toFloat32(t as typeof h & { dtype: "F32" }), "F16"));
  }
  await assertRoundTrip(f16);
});

Deno.test("splitOnnx() inlines external data and reads it like raw_data", async () => {
  const model = await readZooModel("lenet300_mnist.onnx");
  const { model: external, files } = toExternalData(model);
  const reads: string[] = [];
  const readExternal = (location: string) => {
    reads.push(location);
    return Promise.resolve(files.get(location)!);
  };
  const inlined = await splitOnnx(external, { readExternal });
  assert.deepEqual(reads, ["weights.bin"]);
  // The fixture kept every other field in place, so inlining gives back the original.
  assert.deepEqual(inlined.skeleton, model);
  assert.deepEqual(inlined.tensors, (await splitOnnx(model)).tensors);
  const stripped = await splitOnnx(external, { readExternal, ...all });
  assert.deepEqual(stripped.skeleton, (await splitOnnx(model, all)).skeleton);
  await assertRoundTrip(external, { readExternal });
});

Deno.test("splitOnnx() rejects missing or out-of-range external data", async () => {
  const model = await readZooModel("lenet300_mnist.onnx");
  const { model: external, files } = toExternalData(model);
  const file = files.get("weights.bin")!;
  await assertDecodeError(() => splitOnnx(external), "unsupported");
  await assertDecodeError(
    () =>
      splitOnnx(external, {
        readExternal: () => {
          throw new Error("not found");
        },
      }),
    "truncated",
  );
  const short = await assertDecodeError(
    () => splitOnnx(external, { readExternal: () => file.subarray(0, file.length - 1) }),
    "truncated",
  );
  assert.match(short.message, /fc3.bias/);
  const outside = toExternalData(model, "../weights.bin");
  await assertDecodeError(
    () => splitOnnx(outside.model, { readExternal: () => file }),
    "unsupported",
  );
  // A length entry that disagrees with dims × type.
  const tensor = new ProtoWriter().bytesField(1, Uint8Array.of(2)).intField(2, 1)
    .stringField(8, "w").bytesField(13, entry("location", "w.bin"))
    .bytesField(13, entry("length", "4")).intField(14, 1).finish();
  await assertDecodeError(
    () => splitOnnx(modelOf([tensor]), { readExternal: () => new Uint8Array(8) }),
    "corrupt",
  );
});

function entry(key: string, value: string): Uint8Array {
  return new ProtoWriter().stringField(1, key).stringField(2, value).finish();
}

/** A model whose main graph holds these `TensorProto`s as initializers. */
function modelOf(initializers: Uint8Array[], nodes: Uint8Array[] = []): Uint8Array<ArrayBuffer> {
  const graph = new ProtoWriter();
  for (const n of nodes) graph.bytesField(1, n);
  for (const t of initializers) graph.bytesField(5, t);
  const opset = new ProtoWriter().stringField(1, "").intField(2, 13).finish();
  return new ProtoWriter().intField(1, 8).bytesField(7, graph.finish()).bytesField(8, opset)
    .finish();
}

Deno.test("splitOnnx() walks nested If subgraphs in document order", async () => {
  const model = await readZooModel("lenet300_mnist.onnx");
  const { model: nested, bias } = withIfSubgraphs(model);
  const { tensors, skeleton } = await splitOnnx(nested);
  assert.deepEqual(skeleton, nested);
  assert.deepEqual(tensors.slice(0, 4).map((t) => [t.index, t.kind, t.graph, t.name]), [
    [0, "constant", "If_bias/then_branch/If_inner/then_branch", "inner_then_out"],
    [1, "constant", "If_bias/then_branch/If_inner/else_branch", "inner_else_out"],
    [2, "constant", "If_bias/else_branch", "else_out"],
    [3, "constant", "", "/Constant_output_0"],
  ]);
  assert.deepEqual(tensors.at(-1)?.name, "if_cond");
  const original = (await splitOnnx(model)).tensors.find((t) => t.name === bias)!;
  assert.deepEqual(tensors[0]!.data, original.data);
  assert.deepEqual(tensors[1]!.data, new Uint8Array(original.data.length));

  // Taking out only the subgraphs' tensors touches only the messages that enclose them.
  const inBranches = await splitOnnx(nested, { select: (t) => t.graph !== "" });
  // Three tensors lose 1,203 bytes of data each; some length prefixes get shorter.
  const removed = nested.length - inBranches.skeleton.length;
  assert.ok(removed >= 3 * 1203 && removed < 3 * 1203 + 30, `${removed} bytes removed`);
  const joined = joinOnnx(inBranches.skeleton, dataOf(inBranches.tensors.slice(0, 3)));
  assert.deepEqual((await splitOnnx(joined)).tensors, tensors);
  await assertRoundTrip(nested);
});

Deno.test("splitOnnx() limits the nesting of subgraphs", async () => {
  const { tensors } = await splitOnnx(nestedIfModel(64));
  assert.equal(tensors[0]?.graph.split("/").length, 2 * 64);
  await assertDecodeError(() => splitOnnx(nestedIfModel(65)), "limit");
});

Deno.test("joinOnnx() writes a new dtype and shape when given", async () => {
  const model = await readZooModel("lenet300_mnist.onnx");
  const { skeleton, tensors } = await splitOnnx(model, all);
  const w = tensors[5]!;
  const half = fromFloat32(toFloat32(w as typeof w & { dtype: "F32" }), "F16");
  const data = new Map<number, Uint8Array | OnnxTensorData>(dataOf(tensors));
  data.set(5, { data: half, dtype: "F16", shape: [300, 100] });
  const joined = joinOnnx(skeleton, data);
  const got = (await splitOnnx(joined, all)).tensors[5]!;
  assert.deepEqual([got.name, got.dtype, got.dataType, got.shape], ["fc2.weight", "F16", 10, [
    300,
    100,
  ]]);
  assert.deepEqual(got.data, half);
});

Deno.test("joinOnnx() rejects unknown indices and wrong byte lengths", async () => {
  const model = await readZooModel("lenet300_mnist.onnx");
  const { skeleton } = await splitOnnx(model, all);
  await assertDecodeError(() => joinOnnx(skeleton, new Map([[9, new Uint8Array()]])), "corrupt");
  await assertDecodeError(() => joinOnnx(skeleton, new Map([[-1, new Uint8Array()]])), "corrupt");
  const wrong = await assertDecodeError(
    () => joinOnnx(skeleton, new Map([[8, new Uint8Array(39)]])),
    "corrupt",
  );
  assert.match(wrong.message, /"fc3.bias" is given 39 bytes/);
  assert.throws(
    () => joinOnnx(skeleton, new Map([[8, { data: new Uint8Array(), shape: [-1] }]])),
    RangeError,
  );
});

Deno.test("onnxGraphIO() reads the zoo models' inputs and outputs", async () => {
  for (const name of ZOO_MODELS) {
    const io = onnxGraphIO(await readZooModel(name));
    assert.deepEqual(io, {
      inputs: [{ name: "input", dataType: 1, dtype: "F32", shape: ["batch", 784] }],
      outputs: [{ name: "logits", dataType: 1, dtype: "F32", shape: ["batch", 10] }],
    });
  }
});

Deno.test("splitOnnx(), joinOnnx() and onnxGraphIO() reject truncated models", async () => {
  const model = await readZooModel("lenet300_mnist.onnx");
  // Cut points inside fields: the graph's length prefix, a node, weights, the last byte.
  for (const cut of [1, 21, 30, 100, 5000, model.length >> 1, model.length - 1]) {
    const part = model.subarray(0, cut);
    const error = await assertDecodeError(() => splitOnnx(part), "truncated");
    assert.ok(error.offset <= cut, `${error.offset} > ${cut}`);
    await assertDecodeError(() => joinOnnx(part, new Map()), "truncated");
    await assertDecodeError(() => onnxGraphIO(part), "truncated");
  }
});

Deno.test("splitOnnx() rejects malformed protobuf", async () => {
  const w = encodeTensor({ name: "w", dtype: "F32", shape: [2], data: new Uint8Array(8) });
  const good = modelOf([w]);
  assert.equal((await splitOnnx(good)).tensors.length, 1);

  // A length prefix past the end of its enclosing message (tensor length 21 → 22).
  const long = good.slice();
  assert.equal(long[4], 0x2a);
  long[5]! += 1;
  await assertDecodeError(() => splitOnnx(long), "corrupt");

  // A varint of 11 bytes, and a known field with the wrong wire type.
  await assertDecodeError(() => splitOnnx(new Uint8Array(12).fill(0xff)), "corrupt");
  const rawAsVarint = new ProtoWriter().intField(2, 1).intField(9, 5).finish();
  await assertDecodeError(() => splitOnnx(modelOf([rawAsVarint])), "corrupt");
  const graphAsVarint = new ProtoWriter().intField(7, 1).finish();
  await assertDecodeError(() => splitOnnx(graphAsVarint), "corrupt");
  await assertDecodeError(() => splitOnnx(Uint8Array.of(0x0b, 0x00)), "unsupported"); // a group
  await assertDecodeError(() => splitOnnx(Uint8Array.of(0x00, 0x00)), "corrupt"); // field 0

  // Garbage: must be rejected with a DecodeError or parsed, never crash otherwise.
  let rejected = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const bytes = new Uint8Array(64 + seed * 7);
    let x = seed * 2654435761;
    for (let i = 0; i < bytes.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      bytes[i] = x >>> 24;
    }
    try {
      await splitOnnx(bytes);
    } catch (error) {
      assert.ok(error instanceof DecodeError, `seed ${seed}: ${error}`);
      rejected++;
    }
  }
  assert.ok(rejected > 150, `${rejected} of 200 rejected`);
});

Deno.test("splitOnnx() rejects data that does not match dims and type", async () => {
  const f32 = (shape: number[], data: Uint8Array, storage: "raw" | "packed" = "raw") =>
    modelOf([encodeTensor({ name: "w", dtype: "F32", shape, data }, storage)]);
  await assertDecodeError(() => splitOnnx(f32([3], new Uint8Array(8))), "corrupt");
  await assertDecodeError(() => splitOnnx(f32([3], new Uint8Array(8), "packed")), "corrupt");
  await assertDecodeError(() => splitOnnx(f32([2 ** 40, 2 ** 40], new Uint8Array(8))), "limit");
  await assertDecodeError(() => splitOnnx(f32([2 ** 50], new Uint8Array(8))), "corrupt");
  await assertDecodeError(() => splitOnnx(f32([2], new Uint8Array())), "corrupt");
  // Negative dims are written as 10-byte varints.
  const negative = new ProtoWriter().intField(1, -1).intField(2, 1).bytesField(9, new Uint8Array())
    .finish();
  await assertDecodeError(() => splitOnnx(modelOf([negative])), "limit");
  // Values in the typed field of another type.
  const i32 = encodeTensor(
    { name: "i", dtype: "I32", shape: [1], data: new Uint8Array(4) },
    "packed",
  );
  const mislabeled = new ProtoWriter().raw(i32).intField(2, 1).finish(); // data_type FLOAT
  await assertDecodeError(() => splitOnnx(modelOf([mislabeled])), "corrupt");
  // Both raw_data and a typed field.
  const both = new ProtoWriter().raw(encodeTensor({ ...ALL_DTYPE_TENSORS[0]! }, "packed"))
    .bytesField(9, ALL_DTYPE_TENSORS[0]!.data).finish();
  await assertDecodeError(() => splitOnnx(modelOf([both])), "corrupt");
  // A packed varint run whose last varint is cut.
  const cut = new ProtoWriter().bytesField(1, Uint8Array.of(1)).intField(2, 6)
    .bytesField(5, Uint8Array.of(0x80)).finish();
  await assertDecodeError(() => splitOnnx(modelOf([cut])), "corrupt");
});

Deno.test("splitOnnx() enforces its byte limits", async () => {
  const model = await readZooModel("lenet300_mnist.onnx");
  await assertDecodeError(() => splitOnnx(model, { maxModelBytes: 1_000_000 }), "limit");
  await assertDecodeError(() => splitOnnx(model, { maxTensorBytes: 1_000_000 }), "limit");
  const { tensors } = await splitOnnx(model, { maxTensorBytes: 1_066_464 });
  assert.equal(tensors.length, 9);
});

Deno.test("splitOnnx() names a Constant's tensor after the node's first output", async () => {
  const value = encodeTensor({ name: "inner", dtype: "U8", shape: [1], data: Uint8Array.of(5) });
  const { tensors } = await splitOnnx(modelOf([], [constantNode("out", value)]));
  assert.deepEqual(tensors.map((t) => [t.kind, t.name, [...t.data]]), [["constant", "out", [5]]]);
});

Deno.test("splitOnnx() finds constants in graph lists and only in Constant nodes", async () => {
  const u8 = (name: string, v: number) =>
    encodeTensor({ name, dtype: "U8", shape: [1], data: Uint8Array.of(v) });
  const graphOf = (nodes: Uint8Array[]) => {
    const g = new ProtoWriter();
    for (const n of nodes) g.bytesField(1, n);
    return g.finish();
  };
  // Attribute before op_type; a Constant of another domain; a tensor attribute of another op.
  const valueAttr = (t: Uint8Array) =>
    new ProtoWriter().stringField(1, "value").bytesField(5, t).intField(20, 4).finish();
  const late = new ProtoWriter().stringField(2, "late").bytesField(5, valueAttr(u8("x", 3)))
    .stringField(4, "Constant").finish();
  const custom = new ProtoWriter().stringField(2, "custom").stringField(4, "Constant")
    .stringField(7, "com.example").bytesField(5, valueAttr(u8("y", 4))).finish();
  const fill = new ProtoWriter().stringField(2, "fill").stringField(4, "ConstantOfShape")
    .bytesField(5, valueAttr(u8("z", 5))).finish();
  const bodies = new ProtoWriter().stringField(1, "bodies").intField(20, 10)
    .bytesField(11, graphOf([constantNode("a", u8("a", 1))]))
    .bytesField(11, graphOf([late, custom, fill])).finish();
  const holder = new ProtoWriter().stringField(4, "Custom").bytesField(5, bodies).finish();
  const model = modelOf([u8("b", 2)], [holder]);
  const { tensors, skeleton } = await splitOnnx(model, all);
  assert.deepEqual(tensors.map((t) => [t.graph, t.name, [...t.data]]), [
    ["#0/bodies[0]", "a", [1]],
    ["#0/bodies[1]", "late", [3]],
    ["", "b", [2]],
  ]);
  assert.deepEqual(joinOnnx(skeleton, dataOf(tensors)), model);
});
