/**
 * Builds the browser example into a temporary folder with LeNet-300 compressed by the CLI and
 * one test digit of each class, and serves it until Ctrl-C:
 *
 *     deno run -A examples/browser/serve.ts [--port 8000]
 *
 * The model is sent in 8 KiB chunks 20 ms apart, so that the progress bar has something to show
 * on a local connection.
 *
 * @module
 */
import { buildPage } from "./build_page.ts";
import { serveStatic } from "./static_server.ts";
import type { Digit } from "./_messages.ts";
import { readSafetensors, toFloat32 } from "../../model/mod.ts";

const ZOO = new URL("../../../shared/zoo/", import.meta.url);
const CLI = new URL("../../cli.ts", import.meta.url);

const at = Deno.args.indexOf("--port");
const port = at >= 0 ? Number(Deno.args[at + 1]) : 8000;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error("usage: deno run -A examples/browser/serve.ts [--port N]");
  Deno.exit(2);
}

const dir = await Deno.makeTempDir({ prefix: "deepcabac-browser-" });
const compress = await new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    CLI.pathname,
    "compress",
    new URL("lenet300_mnist.onnx", ZOO).pathname,
    "-o",
    `${dir}/model.nnr`,
  ],
}).output();
if (compress.code !== 0) Deno.exit(1);
await buildPage(dir);

const { tensors } = readSafetensors(await Deno.readFile(new URL("mnist_test.safetensors", ZOO)));
const x = toFloat32(tensors.find((t) => t.name === "x")!);
const y = tensors.find((t) => t.name === "y")!.data;
const digits: Digit[] = [];
for (let c = 0; c < 10; c++) {
  const i = y.indexOf(c);
  if (i >= 0) digits.push({ label: c, pixels: Array.from(x.subarray(i * 784, (i + 1) * 784)) });
}
await Deno.writeTextFile(`${dir}/digits.json`, JSON.stringify({ digits }));

const server = serveStatic(dir, {
  port,
  trickle: { suffix: ".nnr", chunkBytes: 8192, delayMs: 20 },
});
console.log(`Serving ${dir} at ${server.url} (Ctrl-C stops and removes it)`);
Deno.addSignalListener("SIGINT", async () => {
  await server.close();
  await Deno.remove(dir, { recursive: true });
  Deno.exit(0);
});
