// examples/deno_deploy.ts as `deno serve` runs it: a subprocess serving a model compressed by the
// CLI classifies MNIST digits as the original model does, and its decoded tensors are the CLI's,
// bit for bit.
import assert from "node:assert/strict";
import { cliOk } from "./_run.ts";
import { sha256Hex as sha256 } from "../core/sha256.ts";
import { join } from "node:path";
import { createSession, runBatched, top1 } from "../runtime/onnx_runtime.ts";
import { readSafetensors } from "../model/safetensors.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const EXAMPLE = new URL("../examples/deno_deploy.ts", import.meta.url).pathname;
const LENET300 = new URL("../../shared/zoo/lenet300_mnist.onnx", import.meta.url).pathname;
const MNIST = new URL("../../shared/zoo/mnist_test.safetensors", import.meta.url).pathname;
/** Digits posted to the server: spread over the test set. */
const DIGITS = [0, 1, 2, 3, 250, 500, 750, 1000, 1250, 1500, 1750, 2003];

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Polls `url` until it answers 200, the server exits, or `ms` pass. */
async function waitUntilReady(url: string, server: Deno.ChildProcess, ms: number): Promise<void> {
  let exited = false;
  server.status.then(() => exited = true);
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !exited) {
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(exited ? "The server exited before answering" : `No answer from ${url}`);
}

Deno.test("deno serve examples/deno_deploy.ts classifies digits and serves the CLI's tensors", async () => {
  const dir = await Deno.makeTempDir();
  const nnr = join(dir, "lenet300.nnr");
  await cliOk("compress", LENET300, "-o", nnr, "--workers", "1");
  await cliOk("decompress", nnr, "-o", join(dir, "lenet300.safetensors"));

  // The original model's classes for the digits, computed here.
  const mnist = readSafetensors(await Deno.readFile(MNIST)).tensors;
  const xs = mnist.find((t) => t.name === "x")!;
  const all = new Float32Array(xs.data.slice().buffer);
  const x = new Float32Array(DIGITS.length * 784);
  DIGITS.forEach((d, i) => x.set(all.subarray(d * 784, (d + 1) * 784), i * 784));
  const session = await createSession(await Deno.readFile(LENET300));
  const { outputs } = await runBatched(session, session.inputNames[0]!, x, [784]);
  const expected = top1(outputs, 10);
  await session.release();

  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = new Deno.Command(Deno.execPath(), {
    args: ["serve", "--port", String(port), "--host", "127.0.0.1", "-A", EXAMPLE],
    cwd: ROOT,
    env: { MODEL_PATH: nnr, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log = Promise.all([server.stdout, server.stderr].map((s) => new Response(s).text()));
  let passed = false;
  try {
    await waitUntilReady(`${base}/`, server, 60_000);

    for (const [i, digit] of DIGITS.entries()) {
      const input = Array.from(x.subarray(i * 784, (i + 1) * 784));
      const response = await fetch(base, { method: "POST", body: JSON.stringify({ input }) });
      assert.equal(response.status, 200, `digit ${digit}`);
      const body = await response.json();
      assert.equal(body.logits.length, 10);
      assert.equal(body.class, expected[i], `digit ${digit}`);
    }

    const bad = await fetch(base, { method: "POST", body: JSON.stringify({ input: [1, 2] }) });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();

    const served = await (await fetch(`${base}/tensors`)).json() as {
      name: string;
      sha256: string;
    }[];
    const decoded = readSafetensors(await Deno.readFile(join(dir, "lenet300.safetensors")));
    const digests = await Promise.all(
      decoded.tensors.map(async (t) => ({ name: t.name, sha256: await sha256(t.data.slice()) })),
    );
    assert.deepEqual(served.map(({ name, sha256 }) => ({ name, sha256 })), digests);
    assert.ok(digests.some((d) => d.name === "fc1.weight"));
    passed = true;
  } finally {
    try {
      server.kill("SIGTERM");
    } catch {
      // It has exited already.
    }
    await server.status;
    const [stdout, stderr] = await log;
    if (!passed) console.error(`server output:\n${stdout}${stderr}`);
    await Deno.remove(dir, { recursive: true });
  }
});
