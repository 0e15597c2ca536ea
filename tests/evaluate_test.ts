// evaluateModel() on a model with two inputs of different element types, built here from the
// ONNX schema with the project's protobuf writer.
import assert from "node:assert/strict";
import { ProtoWriter } from "../model/_protobuf.ts";
import { evaluateModel } from "../runtime/evaluate.ts";
import type { ModelTensor } from "../core/model_tensor.ts";

const msg = (build: (w: ProtoWriter) => ProtoWriter) => build(new ProtoWriter()).finish();

/** ValueInfoProto of a [N, 3] tensor of element type `elem`. */
function valueInfo(name: string, elem: number): Uint8Array {
  const dims = [msg((w) => w.stringField(2, "N")), msg((w) => w.intField(1, 3))];
  const shape = msg((w) => dims.reduce((acc, d) => acc.bytesField(1, d), w));
  const tensor = msg((w) => w.intField(1, elem).bytesField(2, shape));
  const type = msg((w) => w.bytesField(1, tensor));
  return msg((w) => w.stringField(1, name).bytesField(2, type));
}

/** out = a + float(ids): a float32 [N, 3], ids int64 [N, 3]. */
function twoInputModel(): Uint8Array {
  const to = msg((w) => w.stringField(1, "to").intField(3, 1).intField(20, 2));
  const cast = msg((w) =>
    w.stringField(1, "ids").stringField(2, "c").stringField(3, "cast").stringField(4, "Cast")
      .bytesField(5, to)
  );
  const add = msg((w) =>
    w.stringField(1, "a").stringField(1, "c").stringField(2, "out").stringField(3, "add")
      .stringField(4, "Add")
  );
  const graph = msg((w) =>
    w.bytesField(1, cast).bytesField(1, add).stringField(2, "g")
      .bytesField(11, valueInfo("a", 1)).bytesField(11, valueInfo("ids", 7))
      .bytesField(12, valueInfo("out", 1))
  );
  const opset = msg((w) => w.intField(2, 13));
  return msg((w) => w.intField(1, 8).bytesField(8, opset).bytesField(7, graph));
}

Deno.test("evaluateModel() feeds every input by name, each in its own element type", async () => {
  const n = 50;
  const a = new Float32Array(n * 3).map((_, i) => ((i * 7) % 5) / 10);
  const ids = new BigInt64Array(n * 3).map((_, i) => BigInt(i % 3 === i % 2 ? 1 : 0));
  const labels = new Uint8Array(n).map((_, s) => {
    const row = [0, 1, 2].map((c) => a[s * 3 + c]! + Number(ids[s * 3 + c]!));
    return row.indexOf(Math.max(...row));
  });
  const data: ModelTensor[] = [
    { name: "a", dtype: "F32", shape: [n, 3], data: new Uint8Array(a.buffer) },
    { name: "ids", dtype: "I64", shape: [n, 3], data: new Uint8Array(ids.buffer) },
    { name: "y", dtype: "U8", shape: [n], data: labels },
  ];
  const result = await evaluateModel(twoInputModel(), data, { batchSize: 16 });
  assert.equal(result.samples, n);
  assert.equal(result.classes, 3);
  assert.equal(result.accuracy, 1);
  await assert.rejects(evaluateModel(twoInputModel(), data.slice(0, 1)), RangeError);
});
