// The decoder must run on any web-platform runtime: its module graph holds only the project's own
// files, and it type-checks against the DOM library without the Deno namespace.
import assert from "node:assert/strict";
import { runDeno } from "./_run.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("the decoder's module graph contains only the project's own files", async () => {
  const info = await runDeno("info", "--json", "decoder/mod.ts");
  assert.equal(info.code, 0, info.stderr);
  const modules: { specifier: string }[] = JSON.parse(info.stdout).modules;
  assert.ok(modules.length > 10);
  for (const m of modules) {
    assert.ok(m.specifier.startsWith(ROOT.href), `${m.specifier} is not a project file`);
    assert.ok(!m.specifier.includes("/node_modules/"), m.specifier);
  }
});

Deno.test("the decoder type-checks against the DOM library without the Deno namespace", async () => {
  const check = await runDeno("check", "--config", ".ci/deno.dom.json", "decoder/mod.ts");
  assert.equal(check.code, 0, check.stderr);
});
