// The Cloudflare Worker example (examples/cloudflare/worker.ts) in workerd, the open-source
// Workers runtime that `npm ci` installs with wrangler: bundled with esbuild for the web platform,
// served on 127.0.0.1 from a generated config, offline and without a Cloudflare account. The
// tensors it decodes must equal the CLI's decode bit for bit, and its logits must equal those of
// onnxruntime-web in Deno on the CLI's decompressed model.
import assert from "node:assert/strict";
import { sha256Hex as sha256 } from "../core/sha256.ts";
import { join } from "node:path";
import { createSession, Tensor } from "../runtime/onnx_runtime.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { toFloat32 } from "../model/dtypes.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLI = join(ROOT, "cli.ts");
const WORKER = join(ROOT, "examples/cloudflare/worker.ts");
const WRANGLER_TOML = join(ROOT, "examples/cloudflare/wrangler.toml");
const ESBUILD = join(ROOT, "node_modules/.bin/esbuild");
const LENET300 = join(ROOT, "../shared/zoo/lenet300_mnist.onnx");
const MNIST = join(ROOT, "../shared/zoo/mnist_test.safetensors");
/** How long workerd may take to start listening before the test gives up. */
const STARTUP_TIMEOUT_MS = 30_000;
/** How long any one request may take (the first one decodes the model and starts onnxruntime). */
const REQUEST_TIMEOUT_MS = 30_000;

const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function run(command: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(command, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(out.code, 0, `${command} ${args.join(" ")} failed:\n${text(out.stderr)}`);
}

/** Like `Promise.all`, but waits for every promise, so no process outlives a failure. */
async function settled(promises: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** The workerd executable of the `@cloudflare/workerd-*` package npm installed for this host. */
function workerdBinary(): string {
  const packages: Record<string, string> = {
    "linux x86_64": "linux-64",
    "linux aarch64": "linux-arm64",
    "darwin x86_64": "darwin-64",
    "darwin aarch64": "darwin-arm64",
    "windows x86_64": "windows-64",
    "windows aarch64": "windows-64",
  };
  const key = `${Deno.build.os} ${Deno.build.arch}`;
  const pkg = packages[key];
  if (pkg === undefined) throw new Error(`workerd has no build for ${key}`);
  const exe = Deno.build.os === "windows" ? "workerd.exe" : "workerd";
  const path = join(ROOT, "node_modules/@cloudflare", `workerd-${pkg}`, "bin", exe);
  try {
    Deno.statSync(path);
  } catch {
    throw new Error(`workerd not found at ${path}: run npm ci (with optional dependencies)`);
  }
  return path;
}

/** The `compatibility_date` of the example's wrangler.toml, so that both run the same runtime. */
async function compatibilityDate(): Promise<string> {
  const toml = await Deno.readTextFile(WRANGLER_TOML);
  const date = toml.match(/^compatibility_date\s*=\s*"(\d{4}-\d{2}-\d{2})"/m)?.[1];
  assert.ok(date, "wrangler.toml has no compatibility_date");
  return date;
}

/** A workerd config: the bundle, onnxruntime's wasm as a compiled module, the model as data. */
function workerdConfig(date: string): string {
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);

const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "ort-wasm-simd-threaded.wasm", wasm = embed "ort-wasm-simd-threaded.wasm"),
    (name = "model.nnr", data = embed "model.nnr"),
  ],
  compatibilityDate = "${date}",
);
`;
}

interface Server {
  readonly url: string;
  readonly stop: () => Promise<void>;
}

/**
 * Starts workerd on a port the system picks, which workerd reports on its control descriptor
 * (here its stdout) as `{"event":"listen","socket":"http","port":N}`.
 */
async function serve(dir: string): Promise<Server> {
  const child = new Deno.Command(workerdBinary(), {
    args: ["serve", join(dir, "config.capnp"), "config", "--control-fd", "1"],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const stderrDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (s) => void (stderr += s) }),
  );
  let resolvePort!: (port: number) => void;
  const port = new Promise<number>((resolve) => resolvePort = resolve);
  const stdoutDone = (async () => {
    let pending = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          const message = JSON.parse(line);
          if (message?.event === "listen" && message.socket === "http") resolvePort(message.port);
        } catch {
          // Not a control message.
        }
      }
    }
  })();

  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const signal = (name: Deno.Signal) => {
    try {
      if (!exited) child.kill(name);
    } catch {
      // It has just exited.
    }
  };
  const stop = async () => {
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), 5_000);
    await status;
    clearTimeout(timer);
    await Promise.all([stdoutDone, stderrDone]);
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const p = await Promise.race([
      port,
      status.then((s) => {
        throw new Error(`workerd exited with code ${s.code} before listening`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`workerd did not listen within ${STARTUP_TIMEOUT_MS} ms`)),
          STARTUP_TIMEOUT_MS,
        );
      }),
    ]);
    return { url: `http://127.0.0.1:${p}`, stop };
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}; its stderr:\n${stderr}`);
  } finally {
    clearTimeout(timer);
  }
}

/** What the Worker answers: an error, a prediction, its description or the tensor list. */
interface Answer {
  readonly error?: string;
  readonly logits?: number[];
  readonly class?: number;
  readonly tensors?: number;
}

interface ServedTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly sha256: string;
}

async function request<T = Answer>(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: T }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const body = await response.text();
  try {
    return { status: response.status, body: JSON.parse(body) };
  } catch {
    throw new Error(
      `${init.method ?? "GET"} ${url} answered ${response.status}, not JSON: ${body}`,
    );
  }
}

function postDigit(url: string, pixels: Float32Array) {
  return request(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input: Array.from(pixels) }),
  });
}

Deno.test("examples/cloudflare/worker.ts in workerd decodes as the CLI does and classifies digits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "deepcabac-worker-" });
  let server: Server | null = null;
  try {
    const t0 = performance.now();
    const nnr = join(dir, "model.nnr");
    await settled([
      run(Deno.execPath(), ["run", "-A", CLI, "compress", LENET300, "-o", nnr, "--workers", "1"]),
      run(ESBUILD, [
        WORKER,
        "--bundle",
        "--format=esm",
        "--platform=browser",
        `--outdir=${dir}`,
        "--loader:.wasm=copy",
        "--asset-names=[name]",
        "--external:./model.nnr",
        "--log-level=error",
      ]),
      compatibilityDate().then((date) =>
        Deno.writeTextFile(join(dir, "config.capnp"), workerdConfig(date))
      ),
    ]);
    const bundle = await Deno.readTextFile(join(dir, "worker.js"));
    assert.doesNotMatch(bundle, /\bDeno\.|from\s*"node:/, "the bundle must be web-platform code");

    const safetensors = join(dir, "model.safetensors");
    const onnx = join(dir, "model.onnx");
    const t1 = performance.now();
    const started = serve(dir);
    const all = settled([
      run(Deno.execPath(), ["run", "-A", CLI, "decompress", nnr, "-o", safetensors]),
      run(Deno.execPath(), ["run", "-A", CLI, "decompress", nnr, "-o", onnx]),
      started,
    ]);
    server = await started.catch(() => null);
    await all;
    assert.ok(server);
    const base = server.url;
    const t2 = performance.now();

    const { tensors } = readSafetensors(await Deno.readFile(MNIST));
    const x = tensors.find((t) => t.name === "x");
    const y = tensors.find((t) => t.name === "y");
    assert.ok(x && y, "mnist_test.safetensors lacks x or y");
    const pixels = toFloat32(x);
    const digit = (i: number) => pixels.subarray(i * 784, (i + 1) * 784);

    // Cold: the first requests arrive together and share one load of the model.
    const [info, listed, first] = await Promise.all([
      request(`${base}/`),
      request<ServedTensor[]>(`${base}/tensors`),
      postDigit(`${base}/`, digit(0)),
    ]);
    const t3 = performance.now();
    assert.equal(info.status, 200, JSON.stringify(info.body));
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    assert.equal(first.status, 200, JSON.stringify(first.body));

    // The tensors decoded inside workerd equal the CLI's decode, bit for bit.
    const reference = readSafetensors(await Deno.readFile(safetensors)).tensors;
    const served = listed.body as {
      name: string;
      dtype: string;
      shape: number[];
      sha256: string;
    }[];
    assert.deepEqual(served.map((t) => t.name), [
      "fc1.weight",
      "fc1.bias",
      "fc2.weight",
      "fc2.bias",
      "fc3.weight",
    ]);
    assert.equal(info.body.tensors, served.length);
    for (const t of served) {
      const ref = reference.find((r) => r.name === t.name);
      assert.ok(ref, `the CLI's decode lacks ${t.name}`);
      assert.equal(ref.dtype, "F32");
      assert.equal(t.dtype, "F32");
      assert.deepEqual(t.shape, ref.shape);
      assert.equal(t.sha256, await sha256(new Uint8Array(ref.data)), `${t.name} differs`);
    }

    // Its logits equal onnxruntime-web's in Deno on the CLI's decompressed model.
    const session = await createSession(await Deno.readFile(onnx));
    const local = async (i: number) => {
      const out = await session.run({ input: new Tensor("float32", digit(i).slice(), [1, 784]) });
      return Array.from(out[session.outputNames[0]!]!.data as Float32Array);
    };
    try {
      const expected = await local(0);
      assert.deepEqual(first.body.logits, expected);
      assert.equal(first.body.class, expected.indexOf(Math.max(...expected)));
      assert.equal(first.body.class, y.data[0], "digit 0 is misclassified");

      // Warm: concurrent requests queue on the one session and each gets its own answer.
      const t4 = performance.now();
      const answers = await Promise.all(
        [1, 2, 3, 4, 5, 6, 7, 8].map((i) => postDigit(`${base}/`, digit(i))),
      );
      const t5 = performance.now();
      for (const [k, a] of answers.entries()) {
        assert.equal(a.status, 200, JSON.stringify(a.body));
        assert.deepEqual(a.body.logits, await local(k + 1), `digit ${k + 1}`);
      }
      console.log(
        `compress + bundle ${(t1 - t0).toFixed(0)} ms; workerd listening (with decompress) ` +
          `${(t2 - t1).toFixed(0)} ms; first requests (load) ${(t3 - t2).toFixed(0)} ms; ` +
          `8 concurrent predictions ${(t5 - t4).toFixed(0)} ms`,
      );
    } finally {
      await session.release();
    }

    // Bad requests are refused with a reason.
    const short = await request(`${base}/`, {
      method: "POST",
      body: JSON.stringify({ input: [1, 2] }),
    });
    assert.equal(short.status, 400);
    assert.match(short.body.error ?? "", /784/);
    assert.equal((await request(`${base}/`, { method: "POST", body: "{" })).status, 400);
    assert.equal((await request(`${base}/nope`)).status, 404);
    assert.equal((await request(`${base}/tensors`, { method: "POST" })).status, 405);
  } finally {
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
