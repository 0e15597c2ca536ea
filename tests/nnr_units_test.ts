// The NNR unit layer against the reference suite: every field the reference's own reader
// assigned, unit offsets and sizes, and where each payload sits.
import assert from "node:assert/strict";
import { join } from "node:path";
import { readNnrUnits } from "../decoder/nnr_units.ts";
import { DecodeError } from "../core/errors.ts";
import { writeNnrUnits } from "../encoder/nnr_writer.ts";

const dir = Deno.env.get("DEEPCABAC_CONFORMANCE_DIR");

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test({
  name: "readNnrUnits() parses every unit of every nnr vector and payload container",
  ignore: dir === undefined,
  async fn() {
    const m = JSON.parse(await Deno.readTextFile(join(dir!, "manifest.json")));
    let units = 0;
    let payloads = 0;
    for (const v of m.vectors) {
      const c = v.level === "nnr" ? { file: v.files.bitstream, units: v.units } : v.nnr_container;
      if (!c) continue;
      const got = readNnrUnits(await Deno.readFile(join(dir!, c.file.path)));
      assert.equal(got.length, c.units.length, v.id);
      c.units.forEach((want: Json, i: number) => {
        const u = got[i]!;
        assert.deepEqual([u.offset, u.size, u.type], [want.offset, want.size, want.type], v.id);
        if (want.size_field_bytes) assert.equal(u.sizeFieldBytes, want.size_field_bytes, v.id);
        if (want.fields) assert.deepEqual(u.fields, want.fields, `${v.id} unit ${i}`);
        if (want.header_bytes !== undefined) {
          assert.equal(u.headerBytes, want.header_bytes, `${v.id} unit ${i}`);
          assert.equal(u.payloadOffset, want.payload_offset, `${v.id} unit ${i}`);
          assert.equal(u.payloadLength, want.payload_length, `${v.id} unit ${i}`);
        }
        units++;
      });
      if (v.level === "payload") {
        const ndu = got.find((u) => u.type === 5)!;
        assert.equal(ndu.payloadOffset, c.payload_offset, v.id);
        assert.equal(ndu.payloadLength, c.payload_length, v.id);
        assert.equal(ndu.fields.topology_elem_id, c.tensor_name, v.id);
        assert.equal(ndu.fields.dq_flag, v.coding.dq_flag, v.id);
        const packed = v.payload.entry_points.map((e: Json) => e.packed);
        assert.deepEqual(ndu.fields.cabac_entry_point_list ?? [], packed, v.id);
        payloads++;
      }
    }
    assert.ok(units > 700 && payloads > 150, `${units} units, ${payloads} containers`);
  },
});

Deno.test({
  name: "writeNnrUnits() rewrites every nnr vector and payload container byte for byte",
  ignore: dir === undefined,
  async fn() {
    const m = JSON.parse(await Deno.readTextFile(join(dir!, "manifest.json")));
    let streams = 0;
    for (const v of m.vectors) {
      const file = v.level === "nnr" ? v.files.bitstream : v.nnr_container?.file;
      if (!file) continue;
      const bytes = await Deno.readFile(join(dir!, file.path));
      const units = readNnrUnits(bytes).map((u) => ({
        type: u.type,
        fields: u.fields,
        sizeFieldBytes: u.sizeFieldBytes as 2 | 4,
        ...(u.payloadOffset === undefined
          ? {}
          : { payload: bytes.subarray(u.payloadOffset, u.offset + u.size) }),
      }));
      assert.deepEqual(writeNnrUnits(units), bytes, v.id);
      streams++;
    }
    assert.ok(streams > 180, `${streams} streams`);
  },
});

Deno.test("readNnrUnits() rejects truncated and inconsistent units with DecodeError", () => {
  const start = [0x00, 0x04, 0x02, 0x00];
  assert.throws(() => readNnrUnits(new Uint8Array([0x00])), DecodeError);
  assert.throws(() => readNnrUnits(new Uint8Array([0x00, 0x09, 0x02, 0x00])), DecodeError);
  assert.throws(() => readNnrUnits(new Uint8Array([0x00, 0x01, 0x02])), DecodeError);
  // A start unit whose size leaves no room for general_profile_idc.
  assert.throws(() => readNnrUnits(new Uint8Array([0x00, 0x03, 0x02])), DecodeError);
  // A topology unit whose data has no NUL.
  assert.throws(
    () => readNnrUnits(new Uint8Array([...start, 0x00, 0x06, 0x0e, 0x00, 0x00, 0x41])),
    DecodeError,
  );
  // Unknown unit types are skipped by their size.
  const skipped = readNnrUnits(new Uint8Array([...start, 0x00, 0x05, 0x12, 0xff, 0xff]));
  assert.deepEqual(skipped.map((u) => [u.type, u.size]), [[0, 4], [4, 5]]);
});
