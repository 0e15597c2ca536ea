// Cuts a byte stream into whole NNR units, holding only the bytes of the unit being received.
import { DecodeError } from "../core/errors.ts";
import { nnrUnitSize } from "./nnr_units.ts";

const EMPTY = new Uint8Array(0);

/** What a {@linkcode UnitSplitter} hands its units to. */
export interface UnitHandler {
  /** A whole unit and its file offset. */
  unit(unit: Uint8Array, offset: number): void;
  /**
   * A unit that a chunk did not complete, while it arrives: its buffer, of the unit's full size,
   * filled up to `filled`; called after each chunk until the unit is whole, when `unit()` gets
   * the same buffer.
   */
  partial?(buffer: Uint8Array, filled: number, offset: number): void;
}

/** Buffers chunks until a whole unit is there; each unit's size is checked before buffering. */
export class UnitSplitter {
  /** The large unit being received, if handed out while it arrives. */
  #open: { buffer: Uint8Array; filled: number; offset: number } | null = null;
  // Received chunks not yet part of a unit: pending[head..] (an index, not shift(), so that a
  // stream of one-byte chunks stays linear).
  #pending: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;
  /** File offset of the first pending byte. */
  position = 0;

  /** A unit buffer to use again, when the handler is done with each unit once it has it. */
  #spare: Uint8Array | null = null;

  /**
   * @param maxUnitBytes Largest unit accepted.
   * @param reuse Whether a unit's bytes may be overwritten once `unit()` has returned (the
   * handler keeps no view of them): the buffers of units that span chunks are then used again,
   * and no view of a chunk outlives `push()` (the few bytes left over are copied), so that the
   * caller may fill the chunk's buffer again.
   */
  constructor(readonly maxUnitBytes: number, readonly reuse = false) {}

  /** A buffer for a unit of `size` bytes. */
  #buffer(size: number): Uint8Array {
    if (!this.reuse) return new Uint8Array(size);
    if (!this.#spare || this.#spare.length < size) this.#spare = new Uint8Array(size);
    return this.#spare.subarray(0, size);
  }

  /** Adds a chunk and hands each unit it completes (or, while it arrives, a large one) on. */
  push(chunk: Uint8Array, handler: UnitHandler): void {
    this.#push(chunk, handler);
    if (this.reuse) {
      // With a partial handler only a unit's first bytes, before its size is known, are left.
      for (let i = this.#head; i < this.#pending.length; i++) {
        this.#pending[i] = this.#pending[i]!.slice();
      }
    }
  }

  #push(chunk: Uint8Array, handler: UnitHandler): void {
    const open = this.#open;
    if (open) {
      const part = Math.min(chunk.length, open.buffer.length - open.filled);
      open.buffer.set(chunk.subarray(0, part), open.filled);
      open.filled += part;
      if (open.filled < open.buffer.length) {
        handler.partial!(open.buffer, open.filled, open.offset);
        return;
      }
      this.#open = null;
      this.position += open.buffer.length;
      handler.unit(open.buffer, open.offset);
      chunk = chunk.subarray(part);
    }
    if (chunk.length === 0) return;
    this.#pending.push(chunk);
    this.#bytes += chunk.length;
    while (this.#bytes >= 2) {
      const size = this.#peekSize();
      if (size === null) return;
      if (size > this.#bytes) {
        if (handler.partial) {
          // From here on chunks are copied straight into the unit's buffer.
          const buffer = this.#buffer(size);
          const filled = this.#bytes;
          this.#copy(buffer, filled, true);
          this.#open = { buffer, filled, offset: this.position };
          handler.partial(buffer, filled, this.position);
        }
        return;
      }
      const offset = this.position;
      const unit = this.#take(size);
      this.position += size;
      handler.unit(unit, offset);
    }
  }

  /** Ends the stream: throws if it stopped inside a unit. */
  end(): void {
    if (this.#bytes > 0 || this.#open) {
      throw new DecodeError("truncated", "NNR file ends inside a unit", this.position);
    }
  }

  /** Copies the first `n` pending bytes into `out`, consuming them if asked. */
  #copy(out: Uint8Array, n: number, consume: boolean): void {
    let at = 0;
    for (let i = this.#head; at < n;) {
      const chunk = this.#pending[i]!;
      const part = Math.min(chunk.length, n - at);
      out.set(chunk.subarray(0, part), at);
      at += part;
      if (!consume) i++;
      else if (part === chunk.length) {
        this.#drop();
        i = this.#head;
      } else this.#pending[i] = chunk.subarray(part);
    }
    if (consume) this.#bytes -= n;
  }

  /**
   * Drops the first pending chunk, letting go of it at once (a stream's chunks are garbage as soon
   * as they are consumed; a list still holding them would keep up to its length alive).
   */
  #drop(): void {
    this.#pending[this.#head++] = EMPTY;
    if (this.#head === this.#pending.length) {
      this.#pending = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Removes and returns the first `n` pending bytes (a view when one chunk holds them). */
  #take(n: number): Uint8Array {
    const first = this.#pending[this.#head]!;
    if (first.length >= n) {
      if (first.length === n) this.#drop();
      else this.#pending[this.#head] = first.subarray(n);
      this.#bytes -= n;
      return first.subarray(0, n);
    }
    const unit = this.#buffer(n);
    this.#copy(unit, n, true);
    return unit;
  }

  #peekSize(): number | null {
    let start = this.#pending[this.#head]!;
    if (start.length < 4) {
      start = new Uint8Array(Math.min(4, this.#bytes));
      this.#copy(start, start.length, false);
    }
    const size = nnrUnitSize(start, 0);
    if (size !== null && size > this.maxUnitBytes) {
      throw new DecodeError(
        "limit",
        `NNR unit of ${size} bytes exceeds ${this.maxUnitBytes}`,
        this.position,
      );
    }
    return size;
  }
}
