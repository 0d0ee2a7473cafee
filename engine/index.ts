// The pure engine core: the contract, time, randomness, hashing and the built-in engines.
// Nothing here does I/O or reads the wall clock; recorder/, replayer/ and cli/ build on it.

export type { ApplyContext, Engine, EventCodec, GeneratedEvent, InvariantViolation, JsonEvent } from './types.js';
export { VirtualClock } from './clock.js';
export { RunContext, type UpdateSink } from './context.js';
export { eventDecoder, type EventDecoder } from './decode.js';
export { SeededRandom, EventRandom, eventSeed, type Random } from './random.js';
export { hashWords, hashStart, hashStep, hashFinish, hex64 } from './hash.js';
export { TapedeckError, CodecError, EngineShapeError } from './errors.js';
export { jsonCodec } from './json-codec.js';
export { builtInEngine, builtInEngineNames, normalizeEngine } from './registry.js';
export { worldEngine } from './world/index.js';
