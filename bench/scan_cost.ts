// What entry points cost: every weight tensor of the benchmark models coded with each scan order
// (0: no entry points; s = 1..4: blocks of 4 << s, an entry point per block row of that many
// matrix rows) at the reference's default settings; per tensor the size of its data unit, header
// with its entry points included. Prints, per model, the cost of each fixed scan order and of the
// encoder's default (`scanOrder: "auto"`, encoder/compress_model.ts) against scan 0, and the
// largest per-tensor costs of the default.
//
// Run: npx deno run -A bench/scan_cost.ts [--models lenet300,lenet5,silero,vit,isnet]
// (vit needs .cache/vit_fmnist.onnx from bench/train_vit.py; isnet .cache/isnet_fp16.onnx from
// bench/fetch_isnet.ts; missing ones are skipped.)
import { parseArgs } from "node:util";
import { compressModel } from "../encoder/compress_model.ts";
import { EncodePool } from "../encoder/encode_pool.ts";
import { SILERO_VAD_V5 } from "../examples/silero_vad_demo.ts";

const root = new URL("../", import.meta.url);
const MODELS: Record<string, URL | string> = {
  lenet300: new URL("../shared/zoo/lenet300_mnist.onnx", root),
  lenet5: new URL("../shared/zoo/lenet5_mnist.onnx", root),
  silero: SILERO_VAD_V5,
  vit: new URL(".cache/vit_fmnist.onnx", root),
  isnet: new URL(".cache/isnet_fp16.onnx", root),
};

async function main(): Promise<void> {
  const args = parseArgs({
    args: Deno.args,
    options: { models: { type: "string", default: "lenet300,lenet5,silero,vit,isnet" } },
  });
  const pool = new EncodePool(navigator.hardwareConcurrency);
  try {
    for (const name of args.values.models.split(",")) {
      const model = await Deno.readFile(MODELS[name]!).catch(() => null);
      if (!model) {
        console.error(`${name}: missing, skipped`);
        continue;
      }
      const sizes = async (scanOrder: number | "auto") => {
        const r = await compressModel(model, "onnx", { scanOrder, encode: pool.encode });
        return {
          file: r.bytes.length,
          tensors: new Map(
            r.tensors.filter((t) => t.codedBytes !== undefined && t.shape.length >= 2)
              .map((t) => [t.name, { bytes: t.codedBytes!, scan: t.scanOrder ?? 0 }]),
          ),
        };
      };
      const base = await sizes(0);
      const total = (s: Awaited<ReturnType<typeof sizes>>) =>
        [...s.tensors.values()].reduce((a, t) => a + t.bytes, 0);
      const baseTotal = total(base);
      const line = [`${name}: weight units ${baseTotal} B at scan 0 (file ${base.file} B)`];
      for (const scan of [1, 2, 3, 4, "auto"] as const) {
        const s = await sizes(scan);
        const cost = (100 * (total(s) - baseTotal)) / baseTotal;
        line.push(`scan ${scan}: ${cost >= 0 ? "+" : ""}${cost.toFixed(3)} %`);
        if (scan === "auto") {
          const scanned = [...s.tensors].filter(([, t]) => t.scan > 0);
          const worst = scanned
            .map(([n, t]) => ({ n, t, cost: t.bytes / base.tensors.get(n)!.bytes - 1 }))
            .sort((a, b) => b.cost - a.cost)
            .slice(0, 3)
            .map((w) => `${w.n} (scan ${w.t.scan}) ${(100 * w.cost).toFixed(3)} %`);
          line.push(
            `auto: ${scanned.length} of ${s.tensors.size} tensors block-scanned; file ${s.file} B; ` +
              `largest costs: ${worst.join(", ") || "none"}`,
          );
        }
      }
      console.log(line.join("\n  "));
    }
  } finally {
    pool.close();
  }
}

if (import.meta.main) await main();
