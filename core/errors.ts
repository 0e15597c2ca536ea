/**
 * The error raised for corrupt, truncated or out-of-limit input.
 *
 * @module
 */

/** Stable machine-readable reasons for a {@linkcode DecodeError}. */
export type DecodeErrorCode =
  | "truncated"
  | "corrupt"
  | "limit"
  | "unsupported";

/**
 * Raised when a bitstream or model is truncated, corrupt, exceeds a limit or uses a feature that
 * is not supported. It carries a stable `code` and the byte offset where the problem was found.
 *
 * @example Catching a decode error
 * ```ts
 * import { DecodeError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new DecodeError("truncated", "Payload is truncated", 12);
 * assert.ok(error instanceof SyntaxError);
 * assert.equal(error.code, "truncated");
 * assert.equal(error.offset, 12);
 * assert.equal(error.message, "Payload is truncated: at byte 12");
 * assert.equal(error.reason, "Payload is truncated");
 * ```
 */
export class DecodeError extends SyntaxError {
  /** Why decoding failed. */
  readonly code: DecodeErrorCode;
  /** Byte offset in the input where the problem was detected. */
  readonly offset: number;
  /** The message without the offset, for wrapping the error with more context. */
  readonly reason: string;

  /**
   * Creates a decode error.
   *
   * @param code Stable reason code.
   * @param message Human-readable message, starting with a capital letter, no trailing period.
   * @param offset Byte offset of the problem in the input.
   */
  constructor(code: DecodeErrorCode, message: string, offset: number) {
    super(`${message}: at byte ${offset}`);
    this.name = "DecodeError";
    this.code = code;
    this.offset = offset;
    this.reason = message;
  }
}
