// Worker side of decode({ workers }): decodes one data unit per message and sends the tensor
// back, transferring its arrays.
import { DecodeError } from "../core/errors.ts";
import { type DataUnitJob, decodeDataUnit } from "./nnr_file.ts";

const scope = self as unknown as {
  onmessage: (event: MessageEvent<{ id: number; job: DataUnitJob }>) => void;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

scope.onmessage = ({ data: { id, job } }) => {
  try {
    const result = decodeDataUnit(job);
    const buffers = new Set<ArrayBuffer>([result.levels.buffer]);
    if (result.values) buffers.add(result.values.buffer);
    scope.postMessage({ id, result }, [...buffers]);
  } catch (e) {
    if (e instanceof DecodeError) {
      // Keep the project's error class across the thread boundary.
      const error = e.message.replace(/: at byte \d+$/, "");
      scope.postMessage({ id, error, code: e.code, offset: e.offset });
    } else scope.postMessage({ id, error: e instanceof Error ? e.message : String(e) });
  }
};
