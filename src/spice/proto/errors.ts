// Typed errors of the SPICE core. Every malformed byte sequence ends in one of these, never in a
// RangeError from a typed array or an allocation sized by untrusted input.

/** The peer sent bytes that do not follow spice.proto (truncated, out of bounds, bad magic …). */
export class SpiceProtocolError extends Error {
  override readonly name = 'SpiceProtocolError';
}

/** A codec could not decode an image (corrupt stream, unsupported variant, size over the limit). */
export class SpiceDecodeError extends SpiceProtocolError {
  constructor(
    readonly codec: string,
    message: string,
  ) {
    super(`${codec}: ${message}`);
  }
}

/** Input the client cannot turn into key strokes (unknown KeyboardEvent.code, untypable character). */
export class SpiceInputError extends Error {
  override readonly name = 'SpiceInputError';
}
