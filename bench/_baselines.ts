/**
 * The baselines of the DeepCABAC paper's comparison (§V, Tables I and IV): two quantisers without
 * retraining, the nearest-neighbour uniform quantiser and the weighted (entropy-constrained)
 * Lloyd algorithm, and the lossless coders applied to their integer levels: scalar Huffman,
 * CSR-Huffman (Deep Compression's sparse rows with every array Huffman-coded), bzip2 (libbzip2
 * compiled to WebAssembly), gzip, brotli and zstd (`node:zlib`), and the first-order entropy of
 * the levels as the bound of every memoryless code.
 *
 * Every coder here is a real one: it writes bytes that its decoder reads back (tests/
 * baselines_test.ts), and the sizes counted are those bytes, side information included.
 *
 * Huffman streams are self-describing bit strings, most significant bit first. The code table
 * comes first: the number of distinct symbols S (Elias γ), the symbols in ascending order (the
 * first zigzag-mapped plus one, then the gaps to the previous, each Elias γ), then, when S > 1,
 * each symbol's code length in 5 bits; then the canonical codes of the symbols. A single-symbol
 * alphabet has the code length 0 and no payload. The number of symbols coded is not in the
 * stream: the decoder knows it from the tensor's shape, as it knows the shape.
 *
 * @module
 */
import * as zlib from "node:zlib";
import createBzip2Module from "libbzip2-wasm";

export { quantizeUniform } from "../encoder/quantize.ts";

/** Longest Huffman code written (the table stores lengths in 5 bits). */
const MAX_CODE_LENGTH = 31;

/** A growable bit string, most significant bit first. */
export class BitWriter {
  #bytes = new Uint8Array(1024);
  #bits = 0;

  /** Bits written so far. */
  get length(): number {
    return this.#bits;
  }

  /**
   * Appends the `count` low bits of `value`, most significant first.
   *
   * @param value A non-negative integer below 2^count (at most 2^53).
   * @param count Number of bits, 0..53.
   */
  write(value: number, count: number): void {
    const need = (this.#bits + count + 7) >> 3;
    if (need > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(need, this.#bytes.length * 2));
      grown.set(this.#bytes);
      this.#bytes = grown;
    }
    for (let i = count - 1; i >= 0; i--) {
      const bit = Math.floor(value / 2 ** i) & 1;
      if (bit) this.#bytes[this.#bits >> 3]! |= 0x80 >> (this.#bits & 7);
      this.#bits++;
    }
  }

  /**
   * Appends `v` ≥ 1 in Elias γ: ⌊log2 v⌋ zeros, then `v` in ⌊log2 v⌋ + 1 bits.
   *
   * @param v A positive integer.
   */
  writeGamma(v: number): void {
    if (!(Number.isSafeInteger(v) && v >= 1)) throw new RangeError(`Cannot γ-code ${v}`);
    const n = Math.floor(Math.log2(v));
    const top = 2 ** n > v ? n - 1 : 2 ** (n + 1) <= v ? n + 1 : n;
    this.write(0, top);
    this.write(v, top + 1);
  }

  /**
   * The bytes, the last one padded with zero bits.
   *
   * @returns A copy of the written bytes.
   */
  finish(): Uint8Array<ArrayBuffer> {
    return this.#bytes.slice(0, (this.#bits + 7) >> 3);
  }
}

/** Reads what {@linkcode BitWriter} wrote. */
export class BitReader {
  #bytes: Uint8Array;
  #pos = 0;

  /** @param bytes The bit string. */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** Bits read so far. */
  get position(): number {
    return this.#pos;
  }

  /**
   * Reads one bit.
   *
   * @returns 0 or 1.
   * @throws {RangeError} Past the end.
   */
  bit(): number {
    if (this.#pos >= this.#bytes.length * 8) throw new RangeError("Bit string is truncated");
    const b = (this.#bytes[this.#pos >> 3]! >> (7 - (this.#pos & 7))) & 1;
    this.#pos++;
    return b;
  }

  /**
   * Reads `count` bits as an unsigned integer.
   *
   * @param count 0..53.
   * @returns The value.
   */
  read(count: number): number {
    let v = 0;
    for (let i = 0; i < count; i++) v = v * 2 + this.bit();
    return v;
  }

  /**
   * Reads an Elias γ code.
   *
   * @returns The positive integer.
   */
  readGamma(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      if (++zeros > 53) throw new RangeError("Bad Elias γ code");
    }
    return 2 ** zeros + this.read(zeros);
  }
}

const zigzag = (v: number) => (v >= 0 ? 2 * v : -2 * v - 1);
const unzigzag = (u: number) => (u % 2 === 0 ? u / 2 : -(u + 1) / 2);

/**
 * Huffman code lengths for symbol counts (two-queue construction over the counts sorted
 * ascending, ties broken by position, so the result is deterministic).
 *
 * @param counts Occurrences of each symbol, all positive.
 * @returns The code length of each symbol; a single symbol gets length 0.
 * @throws {RangeError} If a count is not positive, or a code would exceed 31 bits (which needs
 * more than 3.5 million symbols coded).
 *
 * @example The code is complete: Σ 2^−ℓ = 1
 * ```ts
 * import { huffmanCodeLengths } from "./_baselines.ts";
 * import assert from "node:assert/strict";
 *
 * const lengths = huffmanCodeLengths([10, 1, 3, 3]);
 * assert.deepEqual([...lengths], [1, 3, 3, 2]);
 * assert.equal([...lengths].reduce((s, l) => s + 2 ** -l, 0), 1);
 * ```
 */
export function huffmanCodeLengths(counts: readonly number[]): Uint8Array<ArrayBuffer> {
  const s = counts.length;
  if (counts.some((c) => !(c > 0))) throw new RangeError("Huffman counts must be positive");
  if (s <= 1) return new Uint8Array(s);
  const order = Array.from(counts.keys()).sort((a, b) => counts[a]! - counts[b]! || a - b);
  const weight = new Float64Array(2 * s - 1);
  const parent = new Int32Array(2 * s - 1);
  for (let k = 0; k < s; k++) weight[k] = counts[order[k]!]!;
  let leaf = 0;
  let inner = s;
  let next = s;
  const take =
    () => (leaf < s && (inner >= next || weight[leaf]! <= weight[inner]!) ? leaf++ : inner++);
  for (; next < 2 * s - 1; next++) {
    const a = take();
    const b = take();
    weight[next] = weight[a]! + weight[b]!;
    parent[a] = next;
    parent[b] = next;
  }
  const depth = new Uint8Array(2 * s - 1);
  for (let k = 2 * s - 3; k >= 0; k--) depth[k] = depth[parent[k]!]! + 1;
  const lengths = new Uint8Array(s);
  for (let k = 0; k < s; k++) {
    if (depth[k]! > MAX_CODE_LENGTH) {
      throw new RangeError(`Huffman code of ${depth[k]} bits exceeds ${MAX_CODE_LENGTH}`);
    }
    lengths[order[k]!] = depth[k]!;
  }
  return lengths;
}

/** Distinct values of `symbols` ascending, with their counts. */
function histogram(symbols: Int32Array): { values: number[]; counts: number[] } {
  const map = new Map<number, number>();
  for (let i = 0; i < symbols.length; i++) {
    const v = symbols[i]!;
    map.set(v, (map.get(v) ?? 0) + 1);
  }
  const values = [...map.keys()].sort((a, b) => a - b);
  return { values, counts: values.map((v) => map.get(v)!) };
}

/** Canonical codes: symbols ordered by (length, value), consecutive codes within a length. */
function canonicalCodes(lengths: Uint8Array): Float64Array {
  const order = Array.from(lengths.keys()).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const codes = new Float64Array(lengths.length);
  let code = 0;
  let previous = 0;
  for (const k of order) {
    code *= 2 ** (lengths[k]! - previous);
    previous = lengths[k]!;
    codes[k] = code++;
  }
  return codes;
}

/** Sizes of one Huffman stream. */
export interface HuffmanBits {
  /** Bits of the code table. */
  readonly tableBits: number;
  /** Bits of the coded symbols. */
  readonly payloadBits: number;
}

/**
 * Writes a Huffman stream (table, then codes) of `symbols` to `w`.
 *
 * @param w The bit writer.
 * @param symbols The symbols, int32.
 * @returns Bits spent on the table and on the symbols.
 */
export function writeHuffman(w: BitWriter, symbols: Int32Array): HuffmanBits {
  if (symbols.length === 0) return { tableBits: 0, payloadBits: 0 };
  const start = w.length;
  const { values, counts } = histogram(symbols);
  const lengths = huffmanCodeLengths(counts);
  w.writeGamma(values.length);
  w.writeGamma(zigzag(values[0]!) + 1);
  for (let k = 1; k < values.length; k++) w.writeGamma(values[k]! - values[k - 1]!);
  if (values.length > 1) { for (const l of lengths) w.write(l, 5); }
  const tableBits = w.length - start;
  const codes = canonicalCodes(lengths);
  const index = new Map(values.map((v, k) => [v, k]));
  for (let i = 0; i < symbols.length; i++) {
    const k = index.get(symbols[i]!)!;
    w.write(codes[k]!, lengths[k]!);
  }
  return { tableBits, payloadBits: w.length - start - tableBits };
}

/**
 * Reads `count` symbols of a Huffman stream written by {@linkcode writeHuffman}.
 *
 * @param r The bit reader.
 * @param count Number of symbols.
 * @returns The symbols.
 * @throws {RangeError} If the stream is malformed or truncated.
 */
export function readHuffman(r: BitReader, count: number): Int32Array<ArrayBuffer> {
  const out = new Int32Array(count);
  if (count === 0) return out;
  const s = r.readGamma();
  if (s > count) throw new RangeError(`Huffman table has ${s} symbols for ${count} values`);
  const values = [unzigzag(r.readGamma() - 1)];
  for (let k = 1; k < s; k++) values.push(values[k - 1]! + r.readGamma());
  if (s === 1) return out.fill(values[0]!);
  const lengths = new Uint8Array(s);
  for (let k = 0; k < s; k++) lengths[k] = r.read(5);
  // Canonical decoding: per length, the first code and where its symbols start in length order.
  const order = Array.from(lengths.keys()).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const perLength = new Int32Array(MAX_CODE_LENGTH + 1);
  for (const l of lengths) perLength[l]!++;
  const firstCode = new Float64Array(MAX_CODE_LENGTH + 2);
  const firstIndex = new Int32Array(MAX_CODE_LENGTH + 2);
  let code = 0;
  let index = 0;
  for (let l = 1; l <= MAX_CODE_LENGTH; l++) {
    firstCode[l] = code;
    firstIndex[l] = index;
    code = (code + perLength[l]!) * 2;
    index += perLength[l]!;
  }
  for (let i = 0; i < count; i++) {
    let c = 0;
    for (let l = 1;; l++) {
      if (l > MAX_CODE_LENGTH) throw new RangeError("Bad Huffman code");
      c = c * 2 + r.bit();
      const offset = c - firstCode[l]!;
      if (offset < perLength[l]!) {
        out[i] = values[order[firstIndex[l]! + offset]!]!;
        break;
      }
    }
  }
  return out;
}

/** A coded stream and where its bits went. */
export interface HuffmanCode extends HuffmanBits {
  /** The stream, padded to whole bytes. */
  readonly bytes: Uint8Array<ArrayBuffer>;
}

/**
 * Scalar Huffman coding of integer symbols, the code table counted in the output.
 *
 * @param symbols The symbols.
 * @returns The bytes and the bits of table and payload.
 *
 * @example
 * ```ts
 * import { huffmanDecode, huffmanEncode } from "./_baselines.ts";
 * import assert from "node:assert/strict";
 *
 * const levels = Int32Array.of(0, 0, 1, -1, 0, 3, 0, 0);
 * const code = huffmanEncode(levels);
 * assert.deepEqual(huffmanDecode(code.bytes, levels.length), levels);
 * ```
 */
export function huffmanEncode(symbols: Int32Array): HuffmanCode {
  const w = new BitWriter();
  const bits = writeHuffman(w, symbols);
  return { ...bits, bytes: w.finish() };
}

/**
 * Decodes {@linkcode huffmanEncode}'s output.
 *
 * @param bytes The stream.
 * @param count Number of symbols.
 * @returns The symbols.
 */
export function huffmanDecode(bytes: Uint8Array, count: number): Int32Array<ArrayBuffer> {
  return readHuffman(new BitReader(bytes), count);
}

/** A CSR-Huffman stream and the bits of its three arrays. */
export interface CsrHuffmanCode {
  /** The stream, padded to whole bytes. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Non-zeros per row (the differences of CSR's row pointers). */
  readonly rowBits: number;
  /** Column gaps: zeros skipped before each non-zero in its row (Deep Compression's relative index). */
  readonly indexBits: number;
  /** The non-zero levels. */
  readonly valueBits: number;
}

/**
 * CSR-Huffman (Deep Compression, Han et al. 2015, as the DeepCABAC paper benchmarks it): the
 * levels as a `rows × cols` matrix in compressed sparse rows, each of its three arrays
 * Huffman-coded with its own table: non-zeros per row, the relative column index of each non-zero
 * (how many zeros precede it since the previous non-zero of its row, which keeps the alphabet
 * small where absolute columns would not), and the non-zero levels.
 *
 * @param levels The levels, row-major.
 * @param rows Number of rows (a tensor's first dimension).
 * @param cols Number of columns (the product of the other dimensions).
 * @returns The stream and the bits of each array (tables included).
 *
 * @example
 * ```ts
 * import { csrHuffmanDecode, csrHuffmanEncode } from "./_baselines.ts";
 * import assert from "node:assert/strict";
 *
 * const levels = Int32Array.of(0, 2, 0, 0, 0, 0, -1, 0, 1);
 * const code = csrHuffmanEncode(levels, 3, 3);
 * assert.deepEqual(csrHuffmanDecode(code.bytes, 3, 3), levels);
 * ```
 */
export function csrHuffmanEncode(levels: Int32Array, rows: number, cols: number): CsrHuffmanCode {
  if (levels.length !== rows * cols) {
    throw new RangeError(`Cannot code ${levels.length} levels as ${rows} × ${cols}`);
  }
  const perRow = new Int32Array(rows);
  let nnz = 0;
  for (let i = 0; i < levels.length; i++) if (levels[i] !== 0) nnz++;
  const gaps = new Int32Array(nnz);
  const values = new Int32Array(nnz);
  let k = 0;
  for (let r = 0; r < rows; r++) {
    let previous = -1;
    for (let c = 0; c < cols; c++) {
      const v = levels[r * cols + c]!;
      if (v === 0) continue;
      gaps[k] = c - previous - 1;
      values[k++] = v;
      previous = c;
      perRow[r]!++;
    }
  }
  const w = new BitWriter();
  const a = writeHuffman(w, perRow);
  const b = writeHuffman(w, gaps);
  const c = writeHuffman(w, values);
  return {
    bytes: w.finish(),
    rowBits: a.tableBits + a.payloadBits,
    indexBits: b.tableBits + b.payloadBits,
    valueBits: c.tableBits + c.payloadBits,
  };
}

/**
 * Decodes {@linkcode csrHuffmanEncode}'s output.
 *
 * @param bytes The stream.
 * @param rows Number of rows.
 * @param cols Number of columns.
 * @returns The levels, row-major.
 * @throws {RangeError} If the stream does not describe a `rows × cols` matrix.
 */
export function csrHuffmanDecode(
  bytes: Uint8Array,
  rows: number,
  cols: number,
): Int32Array<ArrayBuffer> {
  const r = new BitReader(bytes);
  const perRow = readHuffman(r, rows);
  let nnz = 0;
  for (const n of perRow) {
    if (n < 0 || n > cols) throw new RangeError(`Row with ${n} non-zeros of ${cols}`);
    nnz += n;
  }
  const gaps = readHuffman(r, nnz);
  const values = readHuffman(r, nnz);
  const out = new Int32Array(rows * cols);
  let k = 0;
  for (let row = 0; row < rows; row++) {
    let c = -1;
    for (let j = 0; j < perRow[row]!; j++, k++) {
      c += gaps[k]! + 1;
      if (c >= cols || values[k] === 0) throw new RangeError("Bad CSR stream");
      out[row * cols + c] = values[k]!;
    }
  }
  return out;
}

/**
 * First-order (empirical) entropy of a sequence, in bits for the whole sequence: n · H of the
 * empirical distribution of its values. No memoryless code of the sequence (scalar Huffman,
 * CSR-Huffman's value array alone, ideal arithmetic coding with fixed probabilities) is shorter,
 * table aside.
 *
 * @param symbols The symbols.
 * @returns −Σ_k n_k log2(n_k / n).
 *
 * @example
 * ```ts
 * import { entropyBits } from "./_baselines.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(entropyBits(Int32Array.of(0, 0, 1, 2)), 6); // H = 1.5 bits, 4 symbols
 * ```
 */
export function entropyBits(symbols: Int32Array): number {
  const n = symbols.length;
  let bits = 0;
  for (const c of histogram(symbols).counts) bits -= c * Math.log2(c / n);
  return bits;
}

/**
 * The levels as bytes for the general-purpose compressors: int8 when every level fits, else
 * int16, else int32, little-endian.
 *
 * @param levels The levels.
 * @returns The bytes.
 *
 * @example
 * ```ts
 * import { levelBytes } from "./_baselines.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...levelBytes(Int32Array.of(1, -1))], [1, 255]);
 * assert.equal(levelBytes(Int32Array.of(300, 0)).length, 4);
 * ```
 */
export function levelBytes(levels: Int32Array): Uint8Array<ArrayBuffer> {
  let min = 0;
  let max = 0;
  for (const v of levels) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const typed = min >= -128 && max <= 127
    ? Int8Array.from(levels)
    : min >= -32768 && max <= 32767
    ? Int16Array.from(levels)
    : Int32Array.from(levels);
  // Typed arrays are little-endian on every platform Deno runs on; checked here all the same.
  if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error("Big-endian host");
  return new Uint8Array(typed.buffer);
}

/**
 * gzip at level 9.
 *
 * @param bytes Input.
 * @returns The gzip member (18 bytes of header and trailer included).
 */
export function gzip(bytes: Uint8Array): Uint8Array {
  return zlib.gzipSync(bytes, { level: 9 });
}

/**
 * brotli at quality 11 with a 16 MiB window.
 *
 * @param bytes Input.
 * @returns The brotli stream.
 */
export function brotli(bytes: Uint8Array): Uint8Array {
  return zlib.brotliCompressSync(bytes, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
      [zlib.constants.BROTLI_PARAM_LGWIN]: 24,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });
}

/**
 * zstd at level 19 (the highest without `--ultra`).
 *
 * @param bytes Input.
 * @returns The zstd frame.
 */
export function zstd(bytes: Uint8Array): Uint8Array {
  return zlib.zstdCompressSync(bytes, {
    params: { [zlib.constants.ZSTD_c_compressionLevel]: 19 },
  });
}

/** libbzip2's compressor and decompressor. */
export interface Bzip2 {
  /** `bzip2 -9`: 900 k blocks, the default work factor (libbzip2 1.0.6). */
  compress(bytes: Uint8Array): Uint8Array<ArrayBuffer>;
  /** Decompresses a bzip2 stream. */
  decompress(bytes: Uint8Array): Uint8Array<ArrayBuffer>;
}

interface Bzip2Result {
  readonly output: Uint8Array;
  readonly error?: string;
  delete(): void;
}

interface Bzip2Module {
  compressBZ2(data: Uint8Array, blockSize: number, workFactor: number): Bzip2Result;
  decompressBZ2(data: Uint8Array, small: number): Bzip2Result;
  then?: unknown;
}

let bzip2Module: Promise<Bzip2Module> | null = null;

/**
 * Loads libbzip2 (the npm package `libbzip2-wasm`: the reference library compiled to
 * WebAssembly with Emscripten).
 *
 * @returns Its compressor and decompressor.
 *
 * @example
 * ```ts
 * import { loadBzip2 } from "./_baselines.ts";
 * import assert from "node:assert/strict";
 *
 * const bz = await loadBzip2();
 * const data = new Uint8Array(1000).map((_, i) => i % 7);
 * assert.deepEqual(bz.decompress(bz.compress(data)), data);
 * ```
 */
export async function loadBzip2(): Promise<Bzip2> {
  bzip2Module ??= new Promise<Bzip2Module>((resolve) => {
    // The Emscripten module is a thenable that resolves to itself: drop `then` so that
    // resolving with it does not recurse.
    (createBzip2Module() as { then(f: (m: Bzip2Module) => void): void }).then((m) => {
      delete m.then;
      resolve(m);
    });
  });
  const m = await bzip2Module;
  const take = (r: Bzip2Result, what: string) => {
    try {
      const out = Uint8Array.from(r.output);
      if (r.error) throw new Error(`bzip2 ${what} failed: ${r.error}`);
      return out;
    } finally {
      r.delete();
    }
  };
  return {
    compress: (bytes) => take(m.compressBZ2(bytes, 9, 0), "compression"),
    decompress: (bytes) => take(m.decompressBZ2(bytes, 0), "decompression"),
  };
}

/** Options of {@linkcode weightedLloyd}. */
export interface LloydOptions {
  /** Spacing of the initial codebook: the uniform quantiser's points k·Δ that are used. */
  readonly step: number;
  /** λ of the objective, in squared-weight units per bit (e.g. a fraction of Δ²). */
  readonly lambda: number;
  /** Per-weight importance F_i (1 everywhere if absent). */
  readonly importance?: Float32Array;
  /** Most iterations (default 30). */
  readonly maxIterations?: number;
  /** Stop when an iteration lowers the objective by less than this fraction (default 1e-6). */
  readonly tolerance?: number;
}

/** What {@linkcode weightedLloyd} found. */
export interface LloydResult {
  /** Cluster centres ascending, as float32; `codebook[zeroIndex]` is exactly 0. */
  readonly codebook: Float32Array<ArrayBuffer>;
  /** Index of the centre 0 in the codebook. */
  readonly zeroIndex: number;
  /** Per weight: its cluster's index minus `zeroIndex` (0 is the zero cluster). */
  readonly levels: Int32Array<ArrayBuffer>;
  /** The objective after the initial assignment and after each iteration. */
  readonly objective: readonly number[];
}

/**
 * The weighted Lloyd algorithm for entropy-constrained scalar quantisation (the paper's §II-C
 * and eq. 8): it minimises `Σ_i F_i (w_i − c_{k(i)})² + λ Σ_i −log2 p_{k(i)}`, with `p_k` the
 * fraction of weights in cluster k (the EPMD), by alternating the three steps that each lower it:
 * assign each weight to the cluster of least cost, move each centre to the F-weighted mean of its
 * weights, and set each `p_k` to its cluster's frequency. It starts from the nearest-neighbour
 * uniform quantiser with step Δ. One centre is pinned at exactly 0, so that small weights can
 * keep a zero level (which the CSR format and run-length coders rely on); like any cluster it
 * can empty out when the rate term outweighs it. Clusters that empty out are dropped (the zero
 * centre stays in the codebook).
 *
 * @param weights The weights.
 * @param options Δ, λ, importance, iteration limits.
 * @returns Codebook, levels and the objective's history.
 * @throws {RangeError} If Δ is not positive or λ is negative.
 *
 * @example λ = 0 is k-means: it never does worse than the uniform start
 * ```ts
 * import { lloydObjective, quantizeUniform, weightedLloyd } from "./_baselines.ts";
 * import assert from "node:assert/strict";
 *
 * const w = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) ** 3 / 10);
 * const r = weightedLloyd(w, { step: 0.02, lambda: 0 });
 * const uniform = quantizeUniform(w, 0.02);
 * const grid = Float32Array.from({ length: 11 }, (_, k) => (k - 5) * 0.02);
 * assert.ok(lloydObjective(w, r.levels, r.codebook, r.zeroIndex, 0) <=
 *   lloydObjective(w, uniform, grid, 5, 0));
 * ```
 */
export function weightedLloyd(weights: Float32Array, options: LloydOptions): LloydResult {
  const { step, lambda } = options;
  if (!(step > 0)) throw new RangeError(`Lloyd step ${step} is not positive`);
  if (!(lambda >= 0)) throw new RangeError(`Lloyd λ ${lambda} is negative`);
  const f = options.importance;
  if (f && f.length !== weights.length) {
    throw new RangeError(`${f.length} importances for ${weights.length} weights`);
  }
  const n = weights.length;
  let lo = 0;
  let hi = 0;
  for (const w of weights) {
    if (!Number.isFinite(w)) throw new RangeError("Cannot cluster non-finite weights");
    lo = Math.min(lo, Math.round(w / step));
    hi = Math.max(hi, Math.round(w / step));
  }
  const k = hi - lo + 1;
  let centre = Float64Array.from({ length: k }, (_, j) => (j + lo) * step);
  let zero = -lo;
  const assign = new Int32Array(n);
  for (let i = 0; i < n; i++) assign[i] = Math.round(weights[i]! / step) - lo;

  const count = new Float64Array(k);
  const s0 = new Float64Array(k);
  const s1 = new Float64Array(k);
  const s2 = new Float64Array(k);
  let penalty = new Float64Array(k);
  const gather = () => {
    count.fill(0);
    s0.fill(0);
    s1.fill(0);
    s2.fill(0);
    for (let i = 0; i < n; i++) {
      const j = assign[i]!;
      const fi = f ? f[i]! : 1;
      const w = weights[i]!;
      count[j]!++;
      s0[j]! += fi;
      s1[j]! += fi * w;
      s2[j]! += fi * w * w;
    }
  };
  /** The objective of the current assignment, centres and probabilities (from the sums). */
  const objective = () => {
    let j = 0;
    for (let c = 0; c < k; c++) {
      if (count[c] === 0) continue;
      const m = centre[c]!;
      j += Math.max(0, s2[c]! - 2 * m * s1[c]! + m * m * s0[c]!) +
        lambda * count[c]! * -Math.log2(count[c]! / n);
    }
    return j;
  };
  const refreshPenalty = () => {
    for (let c = 0; c < k; c++) {
      penalty[c] = count[c] === 0 ? Infinity : lambda * -Math.log2(count[c]! / n);
    }
  };
  gather();
  refreshPenalty();
  const history = [objective()];
  const maxIterations = options.maxIterations ?? 30;
  const tolerance = options.tolerance ?? 1e-6;
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    // Assignment: the cost F(w − c)² + λℓ is searched outwards from the nearest centre, and a
    // direction is left once F(w − c)² alone exceeds the best cost (λℓ ≥ 0).
    for (let i = 0; i < n; i++) {
      const w = weights[i]!;
      const fi = f ? f[i]! : 1;
      let a = 0;
      let b = k;
      while (a < b) {
        const m = (a + b) >> 1;
        if (centre[m]! < w) a = m + 1;
        else b = m;
      }
      let best = Infinity;
      let arg = assign[i]!;
      for (let j = a - 1; j >= 0; j--) {
        const d = w - centre[j]!;
        const dd = fi * d * d;
        if (dd >= best) break;
        if (dd + penalty[j]! < best) {
          best = dd + penalty[j]!;
          arg = j;
        }
      }
      for (let j = a; j < k; j++) {
        const d = w - centre[j]!;
        const dd = fi * d * d;
        if (dd >= best) break;
        if (dd + penalty[j]! < best) {
          best = dd + penalty[j]!;
          arg = j;
        }
      }
      assign[i] = arg;
    }
    gather();
    // Centroids (F-weighted means), the zero centre pinned; then the EPMD.
    for (let c = 0; c < k; c++) {
      if (c !== zero && s0[c]! > 0) centre[c] = s1[c]! / s0[c]!;
    }
    refreshPenalty();
    // With non-uniform F a centroid can pass a neighbour: keep the centres sorted.
    let sorted = true;
    for (let c = 1; c < k; c++) if (centre[c]! < centre[c - 1]!) sorted = false;
    if (!sorted) {
      const order = Array.from(centre.keys()).sort((x, y) => centre[x]! - centre[y]! || x - y);
      const rank = new Int32Array(k);
      order.forEach((old, r) => (rank[old] = r));
      centre = Float64Array.from(order, (old) => centre[old]!);
      penalty = Float64Array.from(order, (old) => penalty[old]!);
      zero = rank[zero]!;
      for (let i = 0; i < n; i++) assign[i] = rank[assign[i]!]!;
      gather();
    }
    const j = objective();
    const previous = history[history.length - 1]!;
    history.push(j);
    if (previous - j <= tolerance * previous) break;
  }
  // Drop empty clusters (the zero centre stays) and index the rest from the zero centre.
  const newIndex = new Int32Array(k).fill(-1);
  const kept: number[] = [];
  for (let c = 0; c < k; c++) {
    if (count[c]! > 0 || c === zero) {
      newIndex[c] = kept.length;
      kept.push(Math.fround(centre[c]!));
    }
  }
  const zeroIndex = newIndex[zero]!;
  const levels = new Int32Array(n);
  for (let i = 0; i < n; i++) levels[i] = newIndex[assign[i]!]! - zeroIndex;
  return {
    codebook: Float32Array.from(kept),
    zeroIndex,
    levels,
    objective: history,
  };
}

/**
 * The Lloyd objective of a quantisation given as levels into a codebook:
 * `Σ_i F_i (w_i − codebook[zeroIndex + level_i])² + λ · n · H(levels)`.
 *
 * @param weights The weights.
 * @param levels Levels relative to `zeroIndex`.
 * @param codebook Reconstruction values.
 * @param zeroIndex Index of level 0 in the codebook.
 * @param lambda λ.
 * @param importance F_i (1 if absent).
 * @returns The objective.
 */
export function lloydObjective(
  weights: Float32Array,
  levels: Int32Array,
  codebook: Float32Array,
  zeroIndex: number,
  lambda: number,
  importance?: Float32Array,
): number {
  let d = 0;
  for (let i = 0; i < weights.length; i++) {
    const q = codebook[zeroIndex + levels[i]!];
    if (q === undefined) throw new RangeError(`Level ${levels[i]} is outside the codebook`);
    d += (importance ? importance[i]! : 1) * (weights[i]! - q) ** 2;
  }
  return d + lambda * entropyBits(levels);
}
