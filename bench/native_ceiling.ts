// How fast can this engine decode on this machine in compiled code? The payload decoder's hot loop
// written in C (bench/native/payload_decoder.c: the same steps as decoder/decode_payload.ts for
// the benchmark's payloads) compiled with the system's C compiler at -O3 -march=native and, where
// clang and wasm-ld are installed (apt: clang lld), to WebAssembly; timed beside our TypeScript
// decoder on the seeded 2048 × 2048 Laplace tensor at the six points of the reference
// figures (decode plus float32 reconstruction, medians of several runs; TypeScript and WebAssembly
// alternate in this process, the native program runs its own runs in a child process). Every
// decoder's levels are checked against ours. A measuring tool: the library uses none of it.
//
// Run: npx deno run -A bench/native_ceiling.ts [--runs N]
import { parseArgs } from "node:util";
import { join } from "node:path";
import { decodePayload } from "../decoder/decode_payload.ts";
import { LPS_BY_STATE, NEXT_A, NEXT_B } from "../core/context_model.ts";
import { DQ_NEXT_STATE } from "../core/dependent_quantization.ts";
import { ESTIMATOR_PARAMETER_SETS } from "../core/_tables.ts";
import { type CodecPoint, codecPoint, SIDE } from "./_codec_fixture.ts";
import { median } from "./_common.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "7" } } });
const runs = Number(values.runs);
const N = SIDE * SIDE;
const source = new URL("./native/payload_decoder.c", import.meta.url).pathname;
/** The NNC reference decoder's M weights/s at each point (issue 10, this kind of machine). */
const REFERENCE = [6.0, 9.2, 18.3, 7.5, 13.1, 24.1];
const POINTS = [[0, -40], [0, -32], [0, -24], [1, -40], [1, -32], [1, -24]] as const;

const SETS = Int32Array.from(ESTIMATOR_PARAMETER_SETS.flat());
const tables = [LPS_BY_STATE, NEXT_A, NEXT_B, DQ_NEXT_STATE, SETS] as const;
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function run(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    if (!out.success) {
      console.error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
      return null;
    }
    return new TextDecoder().decode(out.stdout);
  } catch {
    return null; // not installed
  }
}

/** Our decoder's work at each point: levels and float32 values. */
function ours(p: CodecPoint): Int32Array {
  return decodePayload(p.bytes, p.params, {}, { codedLevels: false }).levels;
}

/** The C decoder as WebAssembly over one memory holding the tables, a payload and outputs. */
async function wasmDecoder(file: string) {
  // Tables, the payload and the outputs above the C stack (its first 64 KiB or so).
  const memory = new WebAssembly.Memory({ initial: (3 * 4 * N) / 65536 + 64 });
  const { instance } = await WebAssembly.instantiate(await Deno.readFile(file), {
    env: { memory },
  });
  const decode = instance.exports.decode_payload as (...args: number[]) => number;
  const heap = new Uint8Array(memory.buffer);
  let top = 2 ** 20;
  const place = (a: ArrayBufferView) => {
    const at = top;
    heap.set(bytesOf(a), at);
    top = (top + a.byteLength + 15) & ~15;
    return at;
  };
  const tableStruct = place(Int32Array.from(tables.map(place)));
  const qpAt = place(new Int32Array(1));
  const levelsAt = top;
  const reconAt = levelsAt + 4 * N;
  const payloadAt = reconAt + 4 * N;
  return (p: CodecPoint): Int32Array => {
    heap.set(p.bytes, payloadAt);
    const status = decode(
      tableStruct,
      payloadAt,
      p.bytes.length,
      N,
      p.params.numGtxFlags,
      p.params.dqFlag,
      p.params.qpDensity,
      qpAt,
      levelsAt,
      reconAt,
      p.step,
    );
    if (status !== 0) throw new Error("WebAssembly decoder failed");
    return new Int32Array(memory.buffer, levelsAt, N);
  };
}

const points = POINTS.map(([dq, qp]) => codecPoint(dq, qp));
const dir = await Deno.makeTempDir({ prefix: "native_ceiling_" });
try {
  const names = ["lps.bin", "next_a.bin", "next_b.bin", "dq_next.bin", "sets.bin"];
  for (const [i, t] of tables.entries()) await Deno.writeFile(join(dir, names[i]!), bytesOf(t));
  for (const [k, p] of points.entries()) {
    await Deno.writeFile(join(dir, `point_${k}.bin`), p.bytes);
    const { numGtxFlags, dqFlag, qpDensity } = p.params;
    await Deno.writeTextFile(
      join(dir, `point_${k}.txt`),
      `${N} ${numGtxFlags} ${dqFlag} ${qpDensity} ${p.step}`,
    );
  }
  const expected = points.map(ours);
  const same = (a: Int32Array, b: Int32Array) =>
    a.length === b.length && a.every((x, i) => x === b[i]);

  // Native: the system's C compiler.
  const program = join(dir, "payload_decoder");
  let nativeMs: number[] | null = null;
  let compiler = "";
  for (const cc of ["cc", "gcc", "clang"]) {
    if (await run(cc, ["-O3", "-march=native", "-o", program, source]) !== null) {
      compiler = cc;
      break;
    }
  }
  if (compiler) {
    const out = await run(program, [dir, String(runs)]);
    if (out) {
      nativeMs = out.trim().split("\n").map((line) => Number(line.split(" ")[1]));
      for (const [k, want] of expected.entries()) {
        const got = new Int32Array((await Deno.readFile(join(dir, `point_${k}.levels`))).buffer);
        if (!same(got, want)) throw new Error(`Native levels differ at point ${k}`);
      }
    }
  } else console.error("No C compiler: native column left out");

  // WebAssembly: clang for wasm32 with wasm-ld.
  const wasmFile = join(dir, "payload_decoder.wasm");
  const wasmBuilt = await run("clang", [
    "--target=wasm32",
    "-O3",
    "-nostdlib",
    "-Wl,--no-entry",
    "-Wl,--export-dynamic",
    "-Wl,--import-memory",
    "-o",
    wasmFile,
    source,
  ]) !== null;
  if (!wasmBuilt) console.error("No clang/wasm-ld: WebAssembly column left out");
  const wasm = wasmBuilt ? await wasmDecoder(wasmFile) : null;

  const rows = [];
  for (const [k, p] of points.entries()) {
    if (wasm && !same(wasm(p), expected[k]!)) throw new Error(`WebAssembly levels differ at ${k}`);
    const ts: number[] = [];
    const wa: number[] = [];
    for (let r = 0; r < runs; r++) {
      let t0 = performance.now();
      ours(p);
      ts.push(performance.now() - t0);
      if (wasm) {
        t0 = performance.now();
        wasm(p);
        wa.push(performance.now() - t0);
      }
    }
    const speed = (ms: number) => N / ms / 1000;
    rows.push({
      point: `${p.params.dqFlag ? "DQ" : "URQ"} ${p.qp}`,
      typescript: speed(median(ts)),
      wasm: wasm ? speed(median(wa)) : null,
      native: nativeMs ? speed(nativeMs[k]!) : null,
      reference: REFERENCE[k]!,
    });
  }
  console.log(
    `M weights/s, medians of ${runs} runs (native: ${compiler || "none"} -O3 -march=native)\n` +
      "| point | TypeScript | WebAssembly (clang -O3) | native | reference (issue 10) | WebAssembly / TypeScript | native / TypeScript | native / reference |\n" +
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  const f = (x: number | null, d = 2) => x === null ? "–" : x.toFixed(d);
  for (const r of rows) {
    console.log(
      `| ${r.point} | ${f(r.typescript)} | ${f(r.wasm)} | ${f(r.native)} | ${r.reference} | ${
        f(r.wasm && r.wasm / r.typescript)
      } | ${f(r.native && r.native / r.typescript)} | ${f(r.native && r.native / r.reference)} |`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
