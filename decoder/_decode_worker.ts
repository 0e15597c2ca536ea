// Worker side of decode({ workers }): decodes one data unit per message and sends the tensor
// back, transferring its arrays.
import { answerJobs } from "../core/worker_pool.ts";
import { type DataUnitJob, decodeDataUnit } from "./nnr_file.ts";

answerJobs((job: DataUnitJob) => decodeDataUnit(job), (result) => {
  const buffers = new Set<ArrayBuffer>([result.levels.buffer]);
  if (result.values) buffers.add(result.values.buffer);
  return [...buffers];
});
