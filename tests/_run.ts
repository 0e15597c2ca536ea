// Helpers the tests share for running Deno and the CLI as a user does, and for digests.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const CLI = new URL("cli.ts", ROOT).pathname;

/** What a finished process printed. */
export interface Output {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `deno <args>` in the repository root. */
export async function runDeno(...args: string[]): Promise<Output> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Runs `deno run -A cli.ts <args>`. */
export function cli(...args: string[]): Promise<Output> {
  return runDeno("run", "-A", CLI, ...args);
}

/** Runs the CLI and asserts it succeeded. */
export async function cliOk(...args: string[]): Promise<Output> {
  const out = await cli(...args);
  assert.equal(out.code, 0, `cli.ts ${args.join(" ")}: ${out.stderr}`);
  return out;
}
