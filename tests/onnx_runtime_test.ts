import assert from "node:assert/strict";
import {
  accuracy,
  type BatchedOutputs,
  createSession,
  resolveBackend,
  runBatched,
  Tensor,
  top1,
} from "../runtime/onnx_runtime.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { toFloat32 } from "../model/dtypes.ts";

const ZOO = new URL("../../shared/zoo/", import.meta.url);
const SILERO_V5 = new URL(
  "../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx",
  import.meta.url,
);

/** The 2,004 held-out MNIST digits of the zoo: pixels [N, 784] in [0, 1] and labels [N]. */
async function mnistTest(): Promise<{ x: Float32Array; y: Uint8Array }> {
  const { tensors } = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", ZOO)));
  const x = tensors.find((t) => t.name === "x");
  const y = tensors.find((t) => t.name === "y");
  assert.ok(x !== undefined && y !== undefined, "mnist_test.safetensors lacks x or y");
  assert.deepEqual(x.shape, [2004, 784]);
  assert.deepEqual([y.dtype, ...y.shape], ["U8", 2004]);
  return { x: toFloat32(x), y: y.data };
}

// Top-1 accuracies stated in shared/zoo/README.md (onnxruntime, 2,004 test digits).
const STATED_ACCURACY = { "lenet300_mnist.onnx": 0.9456, "lenet5_mnist.onnx": 0.9711 };

for (const [file, expected] of Object.entries(STATED_ACCURACY)) {
  Deno.test(`runBatched() and top1() reproduce the stated accuracy of ${file}`, async () => {
    const { x, y } = await mnistTest();
    const session = await createSession(await Deno.readFile(new URL(file, ZOO)));
    try {
      assert.deepEqual(session.inputNames, ["input"]);
      const done: number[] = [];
      const { outputs, classes } = await runBatched(session, "input", x, [784], {
        batchSize: 500,
        onProgress: (n, total) => {
          assert.equal(total, 2004);
          done.push(n);
        },
      });
      assert.equal(classes, 10);
      assert.equal(outputs.length, 2004 * 10);
      assert.deepEqual(done, [500, 1000, 1500, 2000, 2004]);
      const acc = accuracy(top1(outputs, classes), y);
      assert.ok(Math.abs(acc - expected) <= 0.0001, `accuracy ${acc}, expected ${expected}`);

      // The batch size must not change the outputs.
      const whole = await runBatched(session, "input", x.subarray(0, 784 * 300), [784], {
        batchSize: 300,
      });
      assert.deepEqual(whole.outputs, outputs.subarray(0, 300 * 10));
    } finally {
      await session.release();
    }
  });
}

Deno.test("createSession() runs silero VAD v5 from node_modules on a 512-sample frame", async () => {
  const session = await createSession(await Deno.readFile(SILERO_V5));
  try {
    assert.deepEqual(session.inputNames, ["input", "state", "sr"]);
    assert.deepEqual(session.outputNames, ["output", "stateN"]);
    // One 32 ms frame at 16 kHz: a 440 Hz tone under a Hann window, and the recurrent state
    // [2, batch, 128] starting at zero.
    const frame = Float32Array.from(
      { length: 512 },
      (_, i) =>
        0.5 * Math.sin((2 * Math.PI * 440 * i) / 16000) * Math.sin((Math.PI * i) / 511) ** 2,
    );
    let state: Tensor = new Tensor("float32", new Float32Array(2 * 128), [2, 1, 128]);
    const sr = new Tensor("int64", BigInt64Array.of(16000n), []);
    for (const input of [frame, new Float32Array(512)]) {
      const out = await session.run({ input: new Tensor("float32", input, [1, 512]), state, sr });
      const probability = out.output;
      const next = out.stateN;
      assert.ok(probability !== undefined && next !== undefined);
      assert.equal(probability.type, "float32");
      assert.deepEqual(probability.dims, [1, 1]);
      const p = (probability.data as Float32Array)[0]!;
      assert.ok(p >= 0 && p <= 1, `speech probability ${p} is outside [0, 1]`);
      assert.deepEqual(next.dims, [2, 1, 128]);
      state = next;
    }
  } finally {
    await session.release();
  }
});

Deno.test("runBatched(), top1() and accuracy() reject sizes that do not fit", async () => {
  const session = await createSession(await Deno.readFile(new URL("lenet300_mnist.onnx", ZOO)));
  try {
    await assert.rejects(runBatched(session, "input", new Float32Array(785), [784]), RangeError);
    await assert.rejects(runBatched(session, "input", new Float32Array(0), [784]), RangeError);
    await assert.rejects(
      runBatched(session, "input", new Float32Array(784), [784], { batchSize: 0 }),
      RangeError,
    );
  } finally {
    await session.release();
  }
  assert.throws(() => top1(new Float32Array(7), 3), RangeError);
  assert.throws(() => top1(new Float32Array(6), 0), RangeError);
  assert.throws(() => accuracy(Int32Array.of(1), [1, 2]), RangeError);
  assert.throws(() => accuracy(new Int32Array(0), []), RangeError);
});

Deno.test("the native and the wasm runtime give the same outputs within float tolerance", async () => {
  assert.equal(await resolveBackend("auto"), "native", "onnxruntime-node loads here (npm ci)");
  const { x, y } = await mnistTest();
  for (const file of ["lenet300_mnist.onnx", "lenet5_mnist.onnx"]) {
    const model = await Deno.readFile(new URL(file, ZOO));
    const outputs = [];
    for (const backend of ["wasm", "native"] as const) {
      const session = await createSession(model, {}, backend);
      try {
        outputs.push(await runBatched(session, session.inputNames[0]!, x, [784]));
      } finally {
        await session.release();
      }
    }
    const [wasm, native] = outputs as [BatchedOutputs, BatchedOutputs];
    let worst = 0;
    for (let i = 0; i < wasm.outputs.length; i++) {
      worst = Math.max(worst, Math.abs(wasm.outputs[i]! - native.outputs[i]!));
    }
    assert.ok(worst < 1e-3, `${file}: largest logit difference ${worst}`);
    assert.equal(
      accuracy(top1(native.outputs, native.classes), y),
      accuracy(top1(wasm.outputs, wasm.classes), y),
      file,
    );
  }
  assert.equal(await resolveBackend("wasm"), "wasm");
});
