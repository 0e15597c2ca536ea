// The decoder must run on any web-platform runtime: its module graph holds only the project's own
// files, and it type-checks against the DOM library without the Deno namespace.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

async function deno(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
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

Deno.test("the decoder's module graph contains only the project's own files", async () => {
  const info = await deno("info", "--json", "decoder/mod.ts");
  assert.equal(info.code, 0, info.stderr);
  const modules: { specifier: string }[] = JSON.parse(info.stdout).modules;
  assert.ok(modules.length > 10);
  for (const m of modules) {
    assert.ok(m.specifier.startsWith(ROOT.href), `${m.specifier} is not a project file`);
    assert.ok(!m.specifier.includes("/node_modules/"), m.specifier);
  }
});

Deno.test("the decoder type-checks against the DOM library without the Deno namespace", async () => {
  const check = await deno("check", "--config", ".ci/deno.dom.json", "decoder/mod.ts");
  assert.equal(check.code, 0, check.stderr);
});
