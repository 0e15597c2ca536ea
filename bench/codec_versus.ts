// Paired comparison with an earlier commit's codec, in one process on the same levels: this
// decoder, entropy encoder and DQ trellis against those of `REV`, alternating runs, medians. On a
// machine whose speed drifts, ratios from one pass are what compare (bench/README.md).
// Run: npx deno run -A bench/codec_versus.ts [REV] [--runs N]   (REV defaults to 56600eb)
import { parseArgs } from "node:util";
import { codecPoint, SIDE, weights } from "./_codec_fixture.ts";

const { values, positionals } = parseArgs({
  options: { runs: { type: "string", default: "9" } },
  allowPositionals: true,
});
const rev = positionals[0] ?? "56600eb";
const runs = Number(values.runs);
const root = new URL("..", import.meta.url).pathname;
const tree = await Deno.makeTempDir({ prefix: "codec_versus_" });

async function git(...args: string[]): Promise<void> {
  const { success } = await new Deno.Command("git", { args, cwd: root }).output();
  if (!success) throw new Error(`git ${args.join(" ")} failed`);
}

// deno-lint-ignore no-explicit-any
type Module = any;
interface Codec {
  readonly decode: Module;
  readonly encode: Module;
  readonly quantize: Module;
  readonly syntax: Module;
}
async function codecAt(dir: string): Promise<Codec> {
  return {
    decode: await import(`${dir}/decoder/decode_payload.ts`),
    encode: await import(`${dir}/encoder/encode_payload.ts`),
    quantize: await import(`${dir}/encoder/quantize.ts`),
    syntax: await import(`${dir}/core/syntax.ts`),
  };
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
}

/** Median ratio time(then) / time(now) over alternating runs. */
function speedup(count: number, then: () => void, now: () => void): number {
  const ratios: number[] = [];
  for (let r = 0; r < count; r++) {
    let t0 = performance.now();
    then();
    const a = performance.now() - t0;
    t0 = performance.now();
    now();
    ratios.push(a / (performance.now() - t0));
  }
  return median(ratios);
}

await git("worktree", "add", "--detach", tree, rev);
try {
  const [old, ours] = [await codecAt(tree), await codecAt(root.replace(/\/$/, ""))];
  console.log(`speed of this codec / ${rev}'s, same levels, medians of ${runs} paired runs`);
  console.log("| | qp | decode | entropy encode | trellis λ=0 | trellis λ=1 |");
  console.log("|---|---|---|---|---|---|");
  for (const dqFlag of [0, 1] as const) {
    for (const qp of [-40, -32, -24]) {
      const p = codecPoint(dqFlag, qp);
      const [a, b] = [old, ours].map((c) => {
        const params = c.syntax.payloadParams([SIDE, SIDE], { dqFlag });
        const bytes = c.encode.encodePayload(p.levels, { ...params, qp }).bytes;
        return {
          decode: () => c.decode.decodePayload(bytes, params, {}, { codedLevels: false }),
          encode: () => c.encode.encodePayload(p.levels, { ...params, qp }),
          trellis: (lambdaScale: number) => () =>
            c.quantize.quantizeDqTrellis(weights, p.step, params, { lambdaScale }),
        };
      });
      const cells = [
        speedup(runs, a!.decode, b!.decode),
        speedup(Math.ceil(runs / 3), a!.encode, b!.encode),
        ...(dqFlag
          ? [0, 1].map((l) => speedup(Math.ceil(runs / 3), a!.trellis(l), b!.trellis(l)))
          : []),
      ];
      console.log(
        `| ${dqFlag ? "DQ" : "URQ"} | ${qp} | ${cells.map((x) => x.toFixed(2)).join(" | ")}` +
          `${dqFlag ? "" : " | – | –"} |`,
      );
    }
  }
} finally {
  await git("worktree", "remove", "--force", tree);
}
