// Errors for operating conditions (bad input, corrupt data). Each has a stable `name` and a
// `code` that callers and tests match on; programmer errors stay plain assertions.

export class TapedeckError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TapedeckError';
    this.code = code;
  }
}

/** An event's bytes or JSON form cannot be decoded by the engine's codec. */
export class CodecError extends TapedeckError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_CODEC', message, options);
    this.name = 'CodecError';
  }
}

/** An engine module does not have the shape the engine contract asks for. */
export class EngineShapeError extends TapedeckError {
  constructor(message: string) {
    super('E_ENGINE_SHAPE', message);
    this.name = 'EngineShapeError';
  }
}
