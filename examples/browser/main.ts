/// <reference lib="dom" />
/**
 * The page: fetches the digits to classify and draws them, starts the decoder worker
 * (`worker.ts`) on the compressed model, shows the download on a progress bar and each tensor as
 * it is decoded, then the predicted classes, sizes and times. When it has finished it sets
 * `window.result` (a `PageResult` of `_messages.ts`) for whoever drives the page.
 *
 * Query parameters: `model` (default `model.nnr`) and `digits` (default `digits.json`), both
 * relative to the page.
 *
 * @module
 */
import type {
  Digit,
  DigitsFile,
  DoneMessage,
  PageResult,
  StartMessage,
  TensorReport,
  WorkerMessage,
} from "./_messages.ts";

const SIDE = 28;

function element<T extends HTMLElement>(id: string, type: { new (): T }): T {
  const e = document.getElementById(id);
  if (!(e instanceof type)) throw new Error(`The page lacks #${id}`);
  return e;
}

const progress = element("progress", HTMLProgressElement);
const status = element("status", HTMLParagraphElement);
const report = element("report", HTMLElement);
const summary = element("summary", HTMLParagraphElement);
const digitList = element("digits", HTMLUListElement);
const stats = element("stats", HTMLElement);
const tensorRows = element("tensors", HTMLTableElement).tBodies[0]!;

const number = new Intl.NumberFormat("en-US");
const ms = (t: number) => `${t.toFixed(1)} ms`;

function publish(r: PageResult): void {
  (globalThis as { result?: PageResult }).result = r;
}

async function fetchDigits(url: string): Promise<readonly Digit[]> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`Cannot download ${url}: HTTP ${response.status}`);
  const { digits } = await response.json() as DigitsFile;
  if (!Array.isArray(digits) || digits.length === 0) throw new Error(`${url} has no digits`);
  for (const d of digits) {
    if (d.pixels?.length !== SIDE * SIDE) throw new Error(`${url}: a digit is not 28 × 28`);
  }
  return digits;
}

/** Adds a card for a digit: the digit drawn white on black, and a caption to fill in later. */
function drawDigit(d: Digit): HTMLElement {
  const item = document.createElement("li");
  const canvas = document.createElement("canvas");
  canvas.width = SIDE;
  canvas.height = SIDE;
  const context = canvas.getContext("2d");
  if (context === null) throw new Error("No 2D canvas context");
  const image = context.createImageData(SIDE, SIDE);
  d.pixels.forEach((p, i) => {
    const v = Math.round(Math.min(1, Math.max(0, p)) * 255);
    image.data.set([v, v, v, 255], 4 * i);
  });
  context.putImageData(image, 0, 0);
  const caption = document.createElement("div");
  caption.textContent = `label ${d.label}`;
  item.append(canvas, caption);
  digitList.append(item);
  return caption;
}

function showProgress(received: number, total: number | null, tensors: number): void {
  if (total !== null && total > 0) {
    progress.max = total;
    progress.value = Math.min(received, total);
  } else {
    progress.removeAttribute("value");
  }
  const of = total === null ? "" : ` of ${number.format(total)}`;
  status.textContent = `Downloading and decoding: ${
    number.format(received)
  }${of} bytes, ${tensors} tensors decoded`;
}

function addTensorRow(t: TensorReport): void {
  const row = tensorRows.insertRow();
  for (const text of [t.name, t.dtype, t.shape.join("×"), number.format(t.receivedAt)]) {
    row.insertCell().textContent = text;
  }
  const hash = row.insertCell();
  hash.className = "hash";
  hash.title = t.sha256;
  hash.textContent = t.sha256.slice(0, 16);
}

/** Runs the worker to the end, showing its progress and tensors as they come. */
async function runWorker(
  start: StartMessage,
  tensors: TensorReport[],
): Promise<{ done: DoneMessage; updates: number; total: number | null }> {
  const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  let updates = 0;
  let received = 0;
  let total: number | null = null;
  const done = new Promise<DoneMessage>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<WorkerMessage>) => {
      const m = event.data;
      switch (m.type) {
        case "progress":
          updates++;
          received = m.received;
          total = m.total;
          showProgress(received, total, tensors.length);
          break;
        case "tensor": {
          const { type: _, ...report } = m;
          tensors.push(report);
          addTensorRow(report);
          showProgress(received, total, tensors.length);
          break;
        }
        case "done":
          resolve(m);
          break;
        case "error":
          reject(new Error(m.message));
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`The worker failed: ${event.message || "it could not be loaded"}`));
    };
    worker.postMessage(start, [start.pixels.buffer]);
  });
  try {
    return { done: await done, updates, total };
  } finally {
    worker.terminate();
  }
}

function argmax(values: Float32Array, start: number, length: number): number {
  let best = 0;
  for (let j = 1; j < length; j++) {
    if (values[start + j]! > values[start + best]!) best = j;
  }
  return best;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const params = new URL(location.href).searchParams;
  const modelUrl = new URL(params.get("model") ?? "model.nnr", location.href).href;
  const digitsUrl = new URL(params.get("digits") ?? "digits.json", location.href).href;

  const digits = await fetchDigits(digitsUrl);
  const captions = digits.map(drawDigit);
  const pixels = new Float32Array(digits.length * SIDE * SIDE);
  digits.forEach((d, i) => pixels.set(d.pixels, i * SIDE * SIDE));

  const tensors: TensorReport[] = [];
  const { done, updates, total } = await runWorker({
    type: "start",
    modelUrl,
    // onnxruntime-web's WebAssembly binary lies next to the page.
    wasmUrl: new URL("ort-wasm-simd-threaded.wasm", location.href).href,
    pixels,
    count: digits.length,
  }, tensors);
  const elapsed = performance.now() - t0;

  showProgress(done.bytes, total, tensors.length);
  status.textContent = `Done: ${number.format(done.bytes)} bytes, ${tensors.length} tensors ` +
    `decoded, ${digits.length} digits classified in ${ms(elapsed)}`;

  const predictions = digits.map((_, i) => argmax(done.logits, i * done.classes, done.classes));
  const labels = digits.map((d) => d.label);
  predictions.forEach((p, i) => {
    const caption = captions[i]!;
    const predicted = document.createElement("div");
    predicted.className = p === labels[i] ? "class" : "class wrong";
    predicted.textContent = `predicted ${p}`;
    caption.before(predicted);
  });
  const right = predictions.filter((p, i) => p === labels[i]).length;
  summary.textContent = digits.length === 1
    ? `Predicted class: ${predictions[0]}`
    : `Predicted classes: ${predictions.join(" ")} (${right} of ${digits.length} right)`;

  const rows: [string, string][] = [
    ["Compressed model", `${number.format(done.bytes)} bytes`],
    ["Content-Length", total === null ? "not sent" : `${number.format(total)} bytes`],
    ["Tensors decoded", String(tensors.length)],
    ["ONNX model rebuilt", `${number.format(done.modelBytes)} bytes`],
    ["Download and decode", ms(done.timings.downloadAndDecode)],
    ["Model into onnxruntime", ms(done.timings.session)],
    [`Inference (${digits.length} digits)`, ms(done.timings.inference)],
    ["Total", ms(elapsed)],
  ];
  for (const [term, description] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = description;
    stats.append(dt, dd);
  }
  report.hidden = false;

  const logits = digits.map((_, i) =>
    Array.from(done.logits.subarray(i * done.classes, (i + 1) * done.classes))
  );
  publish({
    ok: true,
    predictions,
    labels,
    logits,
    tensors,
    bytes: done.bytes,
    contentLength: total,
    progressUpdates: updates,
    modelBytes: done.modelBytes,
    timings: { ...done.timings, total: elapsed },
  });
}

main().catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  status.textContent = `Error: ${message}`;
  status.className = "error";
  publish({ ok: false, error: message });
});
