/**
 * Command-line interface. The only module that touches `Deno.*`.
 *
 * ```sh
 * deno run -A cli.ts conformance <suite-dir> [--json]
 * deno run -A cli.ts demo [--json]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { runConformance } from "./conformance/run.ts";
import { runDemo } from "./demo.ts";

const USAGE = `Usage:
  deno run -A cli.ts conformance <suite-dir> [--json]   check a test-vector suite bit-exactly
  deno run -A cli.ts demo [--json]                       encode and decode a built-in tensor`;

async function conformance(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: "boolean", default: false } },
    allowPositionals: true,
  });
  const dir = positionals[0];
  if (dir === undefined) {
    console.error(`error: conformance needs a suite directory\n${USAGE}`);
    return 2;
  }
  try {
    await Deno.stat(join(dir, "manifest.json"));
  } catch {
    console.error(`error: no manifest.json in ${dir}: the external conformance suite is absent`);
    return 2;
  }
  const report = await runConformance(
    { read: (path) => Deno.readFile(join(dir, path)) },
    (r, i, total) => {
      if (r.status === "failed" && !values.json) console.log(`FAIL ${r.id}: ${r.detail}`);
      if (Deno.stderr.isTerminal()) {
        Deno.stderr.writeSync(new TextEncoder().encode(`\r${i}/${total} vectors`));
      }
    },
  );
  if (Deno.stderr.isTerminal()) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  const s = report.summary;
  if (values.json) {
    console.log(JSON.stringify(report));
  } else {
    const rd = report.rd;
    if (rd.vectors > 0) {
      console.log(
        `RD search over ${rd.vectors} vectors (URQ λ > 0 and DQ): ours ${rd.ourBytes} bytes, ` +
          `cost ${rd.ourCost.toFixed(1)}; reference ${rd.referenceBytes} bytes, cost ` +
          `${rd.referenceCost.toFixed(1)} (${
            rd.ourCost <= rd.referenceCost ? "no worse" : "worse"
          })`,
      );
    }
    console.log(
      `${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped (${s.total} vectors)`,
    );
  }
  return s.failed > 0 ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "conformance":
      return await conformance(rest);
    case "demo": {
      const json = rest.includes("--json");
      const result = runDemo();
      console.log(json ? JSON.stringify(result) : result.text);
      return result.ok ? 0 : 1;
    }
    case undefined:
    case "help":
    case "--help":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`error: unknown command ${JSON.stringify(command)}\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
