// Worker side of EncodePool: codes one tensor per message and sends the unit back, transferring
// its buffer.
/// <reference lib="deno.worker" />
import { encodeTensor, type TensorJob } from "./encode_tensor.ts";

self.onmessage = (event: MessageEvent<{ id: number; job: TensorJob }>) => {
  const { id, job } = event.data;
  try {
    const result = encodeTensor(job);
    self.postMessage({ id, result }, [result.unit.buffer]);
  } catch (e) {
    self.postMessage({ id, error: e instanceof Error ? e.message : String(e) });
  }
};
