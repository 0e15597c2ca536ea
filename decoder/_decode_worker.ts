// Worker side of decoding with workers: decodes block rows of a data unit per message into an array
// of their own, transferred back.
import { answerJobs } from "../core/worker_pool.ts";
import { decodeRows } from "./decode_stream.ts";

answerJobs(
  decodeRows,
  (result) => result.data && result.data.buffer instanceof ArrayBuffer ? [result.data.buffer] : [],
);
