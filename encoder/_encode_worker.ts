// Worker side of EncodePool: codes one tensor per message and sends the unit back, transferring
// its buffer.
import { answerJobs } from "../core/worker_pool.ts";
import { encodeTensor, type TensorJob } from "./encode_tensor.ts";

answerJobs((job: TensorJob) => encodeTensor(job), (result) => [result.unit.buffer]);
