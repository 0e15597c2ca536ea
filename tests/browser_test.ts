// The browser example (examples/browser/) in headless Chromium: the page downloads a model
// compressed by the CLI, decodes it in a Web Worker while the bytes arrive, runs it in
// onnxruntime-web and classifies MNIST digits. Checked against the CLI: the same predictions and
// logits as the model `cli.ts decompress` writes, and every tensor bit for bit equal to the
// tensors it decodes. Skipped only where /usr/bin/chromium is missing (CI installs it).
import assert from "node:assert/strict";
import { cliOk } from "./_run.ts";
import { sha256Hex as sha256 } from "../core/sha256.ts";
import { type Browser, chromium } from "playwright-core";
import { buildPage } from "../examples/browser/build_page.ts";
import { serveStatic } from "../examples/browser/static_server.ts";
import type { Digit, PageResult } from "../examples/browser/_messages.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { toFloat32 } from "../model/dtypes.ts";
import { createSession, Tensor } from "../runtime/onnx_runtime.ts";

const CHROMIUM = "/usr/bin/chromium";
const ZOO = new URL("../../shared/zoo/", import.meta.url);
const LENET300 = new URL("lenet300_mnist.onnx", ZOO).pathname;
const VIEWPORT = { width: 900, height: 1000 };
/** The page classifies one digit of each class. */
const CLASSES = 10;

const haveChromium = await Deno.stat(CHROMIUM).then((s) => s.isFile, () => false);
if (!haveChromium) {
  console.warn(
    `browser_test.ts: skipped: ${CHROMIUM} not found (install it with "apt-get install chromium")`,
  );
}

/**
 * For each class, the first test digit that the decompressed model classifies correctly, with
 * the model's logits for it. (The page must agree with the model, and the model with the label.)
 */
async function pickDigits(onnx: Uint8Array): Promise<{ digits: Digit[]; logits: Float32Array }> {
  const { tensors } = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", ZOO)));
  const x = toFloat32(tensors.find((t) => t.name === "x")!);
  const y = tensors.find((t) => t.name === "y")!.data;
  const session = await createSession(onnx);
  try {
    const input = new Tensor("float32", x, [y.length, 784]);
    const out = await session.run({ [session.inputNames[0]!]: input });
    const all = out[session.outputNames[0]!]!.data as Float32Array;
    const digits: Digit[] = [];
    const logits = new Float32Array(CLASSES * CLASSES);
    for (let c = 0; c < CLASSES; c++) {
      const i = y.findIndex((label, i) => {
        const row = all.subarray(i * CLASSES, (i + 1) * CLASSES);
        return label === c && row.indexOf(Math.max(...row)) === c;
      });
      assert.ok(i >= 0, `no digit ${c} is classified correctly`);
      digits.push({ label: c, pixels: Array.from(x.subarray(i * 784, (i + 1) * 784)) });
      logits.set(all.subarray(i * CLASSES, (i + 1) * CLASSES), c * CLASSES);
    }
    return { digits, logits };
  } finally {
    await session.release();
  }
}

/** Reads an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are). */
async function readPng(png: Uint8Array) {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  assert.deepEqual([...png.subarray(0, 8)], signature, "not a PNG");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array<ArrayBuffer>[] = [];
  for (let at = 8; at + 8 <= png.length;) {
    const length = view.getUint32(at);
    const type = new TextDecoder().decode(png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + length);
    if (type === "IHDR") {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      const [depth, colour, , , interlace] = data.subarray(8);
      assert.ok(depth === 8 && (colour === 2 || colour === 6) && interlace === 0, "PNG format");
      channels = colour === 6 ? 4 : 3;
    } else if (type === "IDAT") idat.push(data.slice());
    else if (type === "IEND") break;
    at += 12 + length;
  }
  const raw = new Uint8Array(
    await new Response(new Blob(idat).stream().pipeThrough(new DecompressionStream("deflate")))
      .arrayBuffer(),
  );
  const stride = width * channels;
  assert.equal(raw.length, height * (stride + 1), "PNG data size");
  // Undo the per-row filters (PNG spec, section 9).
  const pixels = new Uint8Array(height * stride);
  for (let r = 0; r < height; r++) {
    const filter = raw[r * (stride + 1)]!;
    const line = raw.subarray(r * (stride + 1) + 1, (r + 1) * (stride + 1));
    const out = r * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? pixels[out + i - channels]! : 0;
      const b = r > 0 ? pixels[out - stride + i]! : 0;
      const c = i >= channels && r > 0 ? pixels[out - stride + i - channels]! : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else assert.equal(filter, 0, `PNG filter ${filter}`);
      pixels[out + i] = (line[i]! + predictor) & 0xff;
    }
  }
  /** Grey level (mean of R, G, B) at (x, y). */
  const grey = (x: number, y: number) => {
    const p = (y * width + x) * channels;
    return (pixels[p]! + pixels[p + 1]! + pixels[p + 2]!) / 3;
  };
  return { width, height, channels, pixels, grey };
}

Deno.test({
  name: "browser example decodes a streamed model in a Worker and classifies digits as the CLI",
  ignore: !haveChromium,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "deepcabac-browser-" });
    const site = `${dir}/site`;
    const ref = `${dir}/ref`;
    const nnr = `${site}/model.nnr`;
    let launching: Promise<Browser> | undefined;
    let building: Promise<unknown> | undefined;
    let server: ReturnType<typeof serveStatic> | undefined;
    try {
      await Promise.all([Deno.mkdir(site), Deno.mkdir(ref)]);
      // Chromium starts and esbuild bundles while the CLI compresses and decompresses.
      launching = chromium.launch({ executablePath: CHROMIUM, headless: true });
      building = buildPage(site);
      await cliOk("compress", LENET300, "-o", nnr);
      await Promise.all([
        cliOk("decompress", nnr, "-o", `${ref}/model.onnx`),
        cliOk("decompress", nnr, "-o", `${ref}/tensors.safetensors`),
      ]);
      const { digits, logits: cliLogits } = await pickDigits(
        await Deno.readFile(`${ref}/model.onnx`),
      );
      await Deno.writeTextFile(`${site}/digits.json`, JSON.stringify({ digits }));
      await building;
      const nnrBytes = (await Deno.stat(nnr)).size;

      // The model in 16 KiB chunks, 20 ms apart: slow enough that the page's decoder delivers
      // the first tensors before the last bytes are in (fc1.weight, 86% of the file, ends in
      // the 12th chunk of 13).
      server = serveStatic(site, { trickle: { suffix: ".nnr", chunkBytes: 16384, delayMs: 20 } });
      const browser = await launching;
      const page = await browser.newPage({ viewport: VIEWPORT, deviceScaleFactor: 1 });
      const log: string[] = [];
      page.on("console", (m) => log.push(`console.${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => log.push(`page error: ${e.message}`));
      await page.goto(server.url);
      // (Not merely `"result" in window`: elements with an id show up there too.)
      await page.waitForFunction(
        () => typeof (globalThis as { result?: { ok?: unknown } }).result?.ok === "boolean",
        null,
        { timeout: 30_000 },
      ).catch(async (e: Error) => {
        const status = await page.locator("#status").innerText().catch(() => "?");
        throw new Error(`The page did not finish: ${e.message}\n${status}\n${log.join("\n")}`);
      });
      const result = await page.evaluate(() =>
        (globalThis as unknown as { result: PageResult }).result
      );
      assert.ok(result.ok, `the page failed: ${result.ok ? "" : result.error}\n${log.join("\n")}`);

      // Predictions: the labels, and what the CLI's decompressed model says, logits included.
      const labels = digits.map((d) => d.label);
      assert.deepEqual(result.labels, labels);
      assert.deepEqual(result.predictions, labels);
      result.logits.forEach((row, i) => {
        row.forEach((v, j) => {
          const expected = cliLogits[i * CLASSES + j]!;
          assert.ok(
            Math.abs(v - expected) <= 1e-5 * Math.max(1, Math.abs(expected)),
            `digit ${i}, class ${j}: logit ${v} in the browser, ${expected} from the CLI's model`,
          );
        });
      });

      // Tensors: bit for bit those that `cli.ts decompress` decodes, in file order.
      const { tensors } = readSafetensors(await Deno.readFile(`${ref}/tensors.safetensors`));
      const expected = await Promise.all(tensors.map(async (t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: [...t.shape],
        sha256: await sha256(t.data.slice()),
      })));
      assert.deepEqual(
        result.tensors.map(({ name, dtype, shape, sha256 }) => ({ name, dtype, shape, sha256 })),
        expected,
      );

      // Streaming: the whole file arrived with its Content-Length, the progress bar moved, and
      // a tensor was decoded before the download had finished.
      assert.equal(result.bytes, nnrBytes);
      assert.equal(result.contentLength, nnrBytes);
      assert.ok(result.progressUpdates > 1, `${result.progressUpdates} progress updates`);
      const first = Math.min(...result.tensors.map((t) => t.receivedAt));
      assert.ok(first < nnrBytes, `first tensor decoded at byte ${first} of ${nnrBytes}`);
      assert.deepEqual(
        server.requests.filter((r) => r.status !== 200),
        [],
        "requests that failed",
      );

      // What is on screen: the result, the predicted classes, the digits drawn.
      assert.ok(await page.locator("#report").isVisible(), "#report is not visible");
      const cards = await page.locator("#digits li").allInnerTexts();
      assert.deepEqual(
        cards.map((text) => text.match(/predicted (\d)/)?.[1]),
        labels.map(String),
      );
      assert.match(
        await page.locator("#summary").innerText(),
        new RegExp(`Predicted classes: ${labels.join(" ")}`),
      );
      assert.match(await page.locator("#status").innerText(), /^Done: /);
      const png = await page.screenshot({ path: `${dir}/page.png` });
      const image = await readPng(png);
      assert.equal(image.width, VIEWPORT.width);
      assert.equal(image.height, VIEWPORT.height);
      const colours = new Set<number>();
      for (let y = 0; y < image.height; y += 3) {
        for (let x = 0; x < image.width; x += 3) colours.add(image.grey(x, y));
      }
      assert.ok(colours.size > 20, `the screenshot has ${colours.size} grey levels`);
      // The first digit's canvas: black background and white strokes.
      const box = await page.locator("#digits canvas").first().boundingBox();
      assert.ok(box !== null, "the digit canvas is not laid out");
      let dark = 0;
      let light = 0;
      for (let y = Math.ceil(box.y); y < Math.floor(box.y + box.height); y++) {
        for (let x = Math.ceil(box.x); x < Math.floor(box.x + box.width); x++) {
          const g = image.grey(x, y);
          if (g < 32) dark++;
          else if (g > 224) light++;
        }
      }
      assert.ok(dark > 1000 && light > 200, `digit canvas: ${dark} dark, ${light} light pixels`);

      console.log(
        `browser: ${nnrBytes} bytes, ${result.tensors.length} tensors, first decoded at byte ` +
          `${first}; download+decode ${result.timings.downloadAndDecode.toFixed(0)} ms, ` +
          `session ${result.timings.session.toFixed(0)} ms, inference ` +
          `${result.timings.inference.toFixed(1)} ms, page total ${
            result.timings.total.toFixed(0)
          } ms`,
      );
    } finally {
      // Whatever was started is stopped, even where starting it failed half-way.
      await building?.catch(() => {});
      await (await launching?.catch(() => undefined))?.close();
      await server?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
