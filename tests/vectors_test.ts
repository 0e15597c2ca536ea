// The shared reference suite (FORMAT.md layout): every vector passes the conformance runner's
// checks (decode, random access, re-encode, full encode, containers, NNR files) and our RD
// search is no worse than the reference's.
import assert from "node:assert/strict";
import { join } from "node:path";
import { ADAPTATION_STEP, BIN_COST, ESTIMATOR_PARAMETER_SETS, LPS_RANGE } from "../core/_tables.ts";
import { DQ_NEXT_STATE } from "../core/dependent_quantization.ts";
import { runConformance } from "../conformance/run.ts";

const dir = Deno.env.get("DEEPCABAC_CONFORMANCE_DIR");
const absent = dir === undefined;
if (absent) {
  console.warn("DEEPCABAC_CONFORMANCE_DIR is not set: the external conformance suite is absent");
}

// deno-lint-ignore no-explicit-any
type Json = any;

async function manifest(): Promise<Json> {
  return JSON.parse(await Deno.readTextFile(join(dir!, "manifest.json")));
}

Deno.test({
  name: "the engine's tables are those of CODING.md's tables.json",
  ignore: absent,
  async fn() {
    const tables = JSON.parse(await Deno.readTextFile(join(dir!, "tables.json")));
    const lps: number[][] = tables.lps_range_table.values;
    for (let q = 0; q < 8; q++) {
      for (let i = 0; i < 32; i++) assert.equal(LPS_RANGE[8 * i + q], lps[q]![i], `LPS ${q} ${i}`);
    }
    assert.equal(LPS_RANGE.length, 256);
    assert.deepEqual([...ADAPTATION_STEP], tables.adaptation_step_table.values);
    assert.deepEqual(ESTIMATOR_PARAMETER_SETS, tables.estimator_parameter_sets.values);
    assert.deepEqual([...BIN_COST], tables.bin_cost_table.values.flat());
    assert.deepEqual([...DQ_NEXT_STATE], tables.dq_state_transition.values.flat());
  },
});

Deno.test({
  name: "runConformance() passes every vector of the suite, and our RD search is no worse",
  ignore: absent,
  async fn() {
    const m = await manifest();
    const report = await runConformance({ read: (p) => Deno.readFile(join(dir!, p)) });
    assert.deepEqual(report.vectors.map((r) => r.id), m.vectors.map((v: Json) => v.id));
    const failed = report.vectors.filter((r) => r.status !== "passed");
    assert.deepEqual(failed, [], "every vector passes");
    assert.deepEqual(report.summary, {
      passed: m.vectors.length,
      failed: 0,
      skipped: 0,
      total: m.vectors.length,
    });
    const byId = new Map(report.vectors.map((r) => [r.id, r.detail]));
    for (const v of m.vectors as Json[]) {
      const detail = byId.get(v.id)!;
      const want = v.level === "payload"
        ? ["decode", "re-encode"].concat(
          v.payload.entry_points.length > 0 ? ["random access"] : [],
          v.coding.payload_type === "NNR_PT_FLOAT" ? ["full encode"] : [],
          v.nnr_container ? ["container"] : [],
        )
        : v.level === "nnr"
        ? ["tensors decoded", "full encode"].concat(
          v.derived ? [] : ["file written again"],
          v.tensors.some((t: Json) => t.entry_points.length > 0) ? ["random access"] : [],
        )
        : ["decode", "re-encode"];
      for (const w of want) assert.ok(detail.includes(w), `${v.id} checks ${w}: ${detail}`);
    }
    // Every URQ λ > 0 and DQ vector is run through our own RD search; in total it is no worse.
    const searched = m.vectors.filter((v: Json) =>
      v.level === "payload" && v.coding.payload_type === "NNR_PT_FLOAT" &&
      (v.coding.dq_flag === 1 || v.coding.lambda_scale > 0)
    ).length;
    assert.equal(report.rd.vectors, searched);
    assert.equal(
      report.vectors.filter((r) =>
        r.rd !== undefined
      ).length,
      searched,
    );
    assert.ok(report.rd.noWorse, `our cost ${report.rd.ourCost} > ${report.rd.referenceCost}`);
    assert.ok(report.rd.ourCost <= report.rd.referenceCost);
  },
});
