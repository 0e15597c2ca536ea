// The command-line interface as a user runs it: compress, inspect and decompress a zoo model,
// refusal to overwrite, and one-line errors with no output file for bad input.
import assert from "node:assert/strict";
import { cli } from "./_run.ts";
import { join } from "node:path";

const LENET300 = new URL("../../shared/zoo/lenet300_mnist.onnx", import.meta.url).pathname;

Deno.test("cli compress, inspect and decompress a model, with --json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const nnr = join(dir, "lenet300.nnr");
    const c = await cli("compress", LENET300, "-o", nnr, "--workers", "1", "--json");
    assert.equal(c.code, 0, c.stderr);
    const report = JSON.parse(c.stdout);
    assert.equal(report.outputBytes, (await Deno.stat(nnr)).size);
    assert.ok(report.ratio > 4, `ratio ${report.ratio}`);

    const i = await cli("inspect", nnr);
    assert.equal(i.code, 0, i.stderr);
    assert.match(
      i.stdout,
      /fc1\.weight\s+300x784\s+F32\s+dq scan0\s+-38\s+0\.001465\s+\d+\s+[\d.]+\s+[\d.]+x/,
    );
    assert.match(i.stdout, /ratio [\d.]+x/);
    const j = JSON.parse((await cli("inspect", nnr, "--json")).stdout);
    assert.ok(j.totals.ratio > 4);
    assert.equal(j.tensors.find((t: { name: string }) => t.name === "fc1.weight").qp, -38);

    const onnx = join(dir, "out.onnx");
    const d = await cli("decompress", nnr, "-o", onnx);
    assert.equal(d.code, 0, d.stderr);
    assert.equal((await Deno.stat(onnx)).size, (await Deno.stat(LENET300)).size);

    // No overwriting without --force; with it, fine.
    const again = await cli("decompress", nnr, "-o", onnx);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists: use --force/);
    assert.equal((await cli("decompress", nnr, "-o", onnx, "--force")).code, 0);
    // Only the outputs are left: no temporary files.
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), ["lenet300.nnr", "out.onnx"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli gives one-line errors and writes nothing for bad input", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = await Deno.readFile(LENET300);
    const nnr = join(dir, "good.nnr");
    assert.equal((await cli("compress", LENET300, "-o", nnr, "--workers", "1")).code, 0);
    const good = await Deno.readFile(nnr);
    const header = new Uint8Array(16);
    new DataView(header.buffer).setBigUint64(0, 2n ** 40n, true);
    header[8] = 0x7b;
    const cases: [string, Uint8Array, string[]][] = [
      ["truncated.onnx", model.subarray(0, 5000), ["compress"]],
      ["bad-header.safetensors", header, ["compress"]],
      ["wrong-magic.nnr", new TextEncoder().encode("GIF89a not an nnr file"), ["decompress"]],
      ["truncated.nnr", good.subarray(0, good.length - 7), ["decompress"]],
    ];
    for (const [name, bytes, [command]] of cases) {
      const input = join(dir, name);
      await Deno.writeFile(input, bytes);
      const output = join(dir, command === "compress" ? "out.nnr" : "out.onnx");
      const r = await cli(command!, input, "-o", output);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, /^error: .+\n$/, name);
      await assert.rejects(Deno.stat(output), Deno.errors.NotFound, name);
    }
    const files = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    assert.equal(files.filter((f) => f.endsWith(".tmp")).length, 0);
    // Usage errors exit with 2.
    assert.equal((await cli("compress", LENET300)).code, 2);
    assert.equal((await cli("compress", LENET300, "-o", "x.nnr", "--bogus")).code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli eval scores an ONNX model and an NNR file, with negative qps as plain values", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const MNIST = new URL("../../shared/zoo/mnist_test.safetensors", import.meta.url).pathname;
    const nnr = join(dir, "coarse.nnr");
    const c = await cli("compress", LENET300, "-o", nnr, "--qp", "-20", "--workers", "1");
    assert.equal(c.code, 0, c.stderr);
    const inspected = JSON.parse((await cli("inspect", nnr, "--json")).stdout);
    assert.equal(inspected.tensors.find((t: { name: string }) => t.name === "fc1.weight").qp, -20);

    const original = JSON.parse((await cli("eval", LENET300, "--data", MNIST, "--json")).stdout);
    assert.equal(original.samples, 2004);
    assert.ok(Math.abs(original.accuracy - 0.9456) < 0.0001, `${original.accuracy}`);
    assert.equal(original.agreement, null);

    const r = await cli("eval", nnr, "--data", MNIST, "--reference", LENET300, "--json");
    assert.equal(r.code, 0, r.stderr);
    const coarse = JSON.parse(r.stdout);
    assert.ok(Math.abs(coarse.accuracy - original.accuracy) < 0.005, `${coarse.accuracy}`);
    assert.ok(coarse.agreement > 0.98 && coarse.agreement < 1, `${coarse.agreement}`);
    assert.ok(coarse.snrDb > 15 && coarse.snrDb < 60, `${coarse.snrDb}`);
    assert.equal((await cli("eval", nnr)).code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli sweep: the planned search within a budget, confirmed on held-out samples", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = new URL("../../shared/zoo/mnist_test.safetensors", import.meta.url).pathname;
    const out = join(dir, "small.nnr");
    const r = await cli(
      "sweep",
      LENET300,
      "--data",
      data,
      "-o",
      out,
      "--budget-seconds",
      "30",
      "--json",
    );
    assert.equal(r.code, 0, r.stderr);
    const record = JSON.parse(r.stdout);
    assert.equal(record.method, "planned");
    assert.match(record.confirmation, /held out .* samples the search never saw/);
    assert.ok(record.best.holdout >= record.baseline.holdout - 0.005);
    assert.equal(record.best.bytes, (await Deno.stat(out)).size);
    assert.ok(record.checkOnAllData > 0.9);
    assert.match(r.stderr, /ETA/);
    const sidecar = JSON.parse(await Deno.readTextFile(join(dir, "small.sweep.json")));
    assert.equal(sidecar.best.bytes, record.best.bytes);
    // Bad values are usage errors, and nothing is written.
    const bad = await cli(
      "sweep",
      LENET300,
      "--data",
      data,
      "-o",
      join(dir, "x.nnr"),
      "--holdout",
      "1",
    );
    assert.equal(bad.code, 2);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "small.nnr",
      "small.sweep.json",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
