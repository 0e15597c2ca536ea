// Worker side of EncodePool: codes one tensor per message and sends the unit back, transferring
// its buffer.
import { encodeTensor, type TensorJob } from "./encode_tensor.ts";

const scope = self as unknown as {
  onmessage: (event: MessageEvent<{ id: number; job: TensorJob }>) => void;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

scope.onmessage = ({ data: { id, job } }) => {
  try {
    const result = encodeTensor(job);
    scope.postMessage({ id, result }, [result.unit.buffer]);
  } catch (e) {
    scope.postMessage({ id, error: e instanceof Error ? e.message : String(e) });
  }
};
