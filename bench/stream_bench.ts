// Whole-file decode of a real 44 M-parameter model (IS-Net, float16, 394 tensors of which 119
// coded: .cache/isnet.nnr from `npx deno run -A bench/fetch_isnet.ts`): one-shot `decode()`
// versus streaming through `DecoderStream`, float32 values versus int8 levels, 1 versus 2
// workers. Each iteration reads the file from disk (page cache), so every case includes I/O.
// Skipped when the file is missing. Peak memory is measured by bench/stream_rss.ts, not here.
//
// Run: npx deno bench -A bench/stream_bench.ts
// M weights/s = 44.0 / (seconds per iteration); file MB/s = 22.8 / (seconds per iteration).
import { decode, type DecodeOptions, DecoderStream } from "../decoder/mod.ts";
import { exists } from "./_common.ts";

const FILE = new URL("../.cache/isnet.nnr", import.meta.url);

type Output = NonNullable<DecodeOptions["output"]>;

async function oneShot(output: Output, workers: number): Promise<void> {
  const { tensors } = await decode(await Deno.readFile(FILE), { output, workers });
  if (tensors.length === 0) throw new Error("No tensors decoded");
}

async function streamed(output: Output): Promise<void> {
  const file = await Deno.open(FILE);
  let count = 0;
  for await (const _ of file.readable.pipeThrough(new DecoderStream({ output }))) count++;
  if (count === 0) throw new Error("No tensors decoded");
}

// Each iteration takes seconds: a few are enough, and the default would take minutes. The
// functions must be `async`: Deno.bench awaits only async functions, not ones returning promises.
const slow = { n: 3, warmup: 1 } as const;

if (!(await exists(FILE))) {
  console.error("IS-Net benches skipped: run `npx deno run -A bench/fetch_isnet.ts` first");
  Deno.bench({
    name: "IS-Net decode: skipped, .cache/isnet.nnr is missing (run bench/fetch_isnet.ts)",
    ignore: true,
    fn: () => {},
  });
} else {
  for (const output of ["float32", "levels"] as const) {
    const group = `IS-Net 44 M weights, ${output}`;
    Deno.bench({
      name: `decode() one-shot, ${output}`,
      group,
      baseline: true,
      ...slow,
      fn: async () => await oneShot(output, 1),
    });
    Deno.bench({
      name: `decode() one-shot, ${output}, 2 workers`,
      group,
      ...slow,
      fn: async () => await oneShot(output, 2),
    });
    Deno.bench({
      name: `DecoderStream, ${output}, tensors dropped`,
      group,
      ...slow,
      fn: async () => await streamed(output),
    });
  }
}
