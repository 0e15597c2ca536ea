// Worker side of decoding with workers: decodes block rows of a data unit per message into an array
// of their own, transferred back.
import { answerJobs } from "../core/worker_pool.ts";
import type { DataUnitJob } from "./nnr_file.ts";
import { type SinkArray, type SinkKind, UnitDecoder } from "./unit_decoder.ts";

/** A job for a decode worker: block rows `[from, to)` of a data unit. */
export interface RowsJob {
  /** The data unit (its payload a copy of its own, transferred). */
  readonly job: DataUnitJob;
  /** What the elements are written as. */
  readonly kind: SinkKind;
  /** For `"levels"`: their width, from the file's metadata. */
  readonly levelBytes?: 1 | 2 | 4;
  /** First block row. */
  readonly from: number;
  /** One past the last block row. */
  readonly to: number;
}

/** What a decode worker sends back. */
export interface RowsResult {
  /** CRC-32 of the rows' levels. */
  readonly crc: number;
  /** The payload's qp. */
  readonly qp: number | null;
  /** The payload's step size. */
  readonly step: number | null;
  /** The rows' elements (transferred back). */
  readonly data: SinkArray;
}

/**
 * Decodes block rows `[from, to)` of a data unit (what a decode worker does).
 *
 * @param r The job.
 * @returns The result.
 */
function decodeRows(r: RowsJob): RowsResult {
  const d = new UnitDecoder(r.job, {
    kind: r.kind,
    from: r.from,
    to: r.to,
    ...(r.levelBytes ? { levelBytes: r.levelBytes } : {}),
  });
  const { data, crc } = d.finish();
  return { crc, qp: d.qp, step: d.step, data };
}

answerJobs(
  decodeRows,
  (result) => result.data.buffer instanceof ArrayBuffer ? [result.data.buffer] : [],
);
