/**
 * The messages between the page (`main.ts`) and its decoder worker (`worker.ts`), and the
 * result the page publishes on `window.result` for whoever drives it (tests/browser_test.ts).
 *
 * @module
 */

/** Page to worker: what to download and what to classify. */
export interface StartMessage {
  readonly type: "start";
  /** Absolute URL of the NNR file. */
  readonly modelUrl: string;
  /** Absolute URL of onnxruntime-web's `ort-wasm-simd-threaded.wasm`. */
  readonly wasmUrl: string;
  /** The digits, row-major `[count, 784]`, pixels in [0, 1]. */
  readonly pixels: Float32Array<ArrayBuffer>;
  /** Number of digits in `pixels`. */
  readonly count: number;
}

/** Worker to page: bytes of the NNR file received so far. */
export interface ProgressMessage {
  readonly type: "progress";
  /** Bytes received. */
  readonly received: number;
  /** The response's Content-Length, or null where the server sent none. */
  readonly total: number | null;
}

/** One decoded tensor, as the page reports it. */
export interface TensorReport {
  /** Its name in the model. */
  readonly name: string;
  /** Its dtype in the model. */
  readonly dtype: string;
  /** Its shape. */
  readonly shape: readonly number[];
  /**
   * SHA-256, lowercase hex, of the bytes the worker put into the model for it: its values in
   * the model's dtype, little-endian (float32 for an F32 tensor).
   */
  readonly sha256: string;
  /** Bytes of the file that had been received when the decoder delivered it. */
  readonly receivedAt: number;
}

/** Worker to page: a tensor has been decoded. */
export interface TensorMessage extends TensorReport {
  readonly type: "tensor";
}

/** Milliseconds spent in each phase, measured in the worker. */
export interface Timings {
  /** From the request to the last tensor decoded (download and decode overlap). */
  readonly downloadAndDecode: number;
  /** Rebuilding the ONNX model and creating the onnxruntime session. */
  readonly session: number;
  /** One `session.run()` over all digits. */
  readonly inference: number;
}

/** Worker to page: everything is done. */
export interface DoneMessage {
  readonly type: "done";
  /** Bytes of the NNR file received. */
  readonly bytes: number;
  /** Size of the rebuilt ONNX model. */
  readonly modelBytes: number;
  /** The model's output for each digit, row-major `[count, classes]`. */
  readonly logits: Float32Array<ArrayBuffer>;
  /** Outputs per digit. */
  readonly classes: number;
  /** Phase timings. */
  readonly timings: Timings;
}

/** Worker to page: something failed; the worker stops. */
export interface ErrorMessage {
  readonly type: "error";
  /** What went wrong. */
  readonly message: string;
}

/** Every message the worker sends. */
export type WorkerMessage = ProgressMessage | TensorMessage | DoneMessage | ErrorMessage;

/** What the page sets `window.result` to when it has finished. */
export type PageResult =
  | {
    readonly ok: true;
    /** Predicted class of each digit (argmax of its logits). */
    readonly predictions: readonly number[];
    /** The labels that came with the digits. */
    readonly labels: readonly number[];
    /** Logits of each digit. */
    readonly logits: readonly (readonly number[])[];
    /** The decoded tensors, in file order. */
    readonly tensors: readonly TensorReport[];
    /** Bytes of the NNR file received. */
    readonly bytes: number;
    /** The Content-Length the server sent, or null. */
    readonly contentLength: number | null;
    /** How many progress messages arrived (more than one: the bar moved). */
    readonly progressUpdates: number;
    /** Size of the rebuilt ONNX model. */
    readonly modelBytes: number;
    /** Phase timings, and the whole run as the page saw it. */
    readonly timings: Timings & { readonly total: number };
  }
  | { readonly ok: false; readonly error: string };

/** One digit of the digits file. */
export interface Digit {
  /** Its label, 0..9. */
  readonly label: number;
  /** 784 pixels, row-major 28 × 28, in [0, 1]. */
  readonly pixels: readonly number[];
}

/** The digits file the page fetches (`digits.json` by default). */
export interface DigitsFile {
  readonly digits: readonly Digit[];
}
