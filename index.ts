// The library API of tapedeck: record and replay from code, and the engine contract.
export * from './engine/index.js';
export { recordTape, type RecordOptions, type RecordResult } from './recorder/record.js';
export type { Source, SourceRecord } from './recorder/source.js';
export { WorldTrafficSource, EngineGeneratedSource } from './recorder/sources/synthetic.js';
export { replayTape, ReplayError, type ReplayOptions, type ReplayResult, type DeterminismViolation } from './replayer/replay.js';
export { assertReplay, ReplayAssertionError } from './replayer/assert.js';
export { lockstep, type Divergence, type LockstepResult } from './replayer/bisect.js';
export { DeterminismViolationError } from './replayer/guard.js';
export { verifyTape, type VerifyReport } from './tape/verify.js';
export { TapeReader } from './tape/reader.js';
export { TapeError, TapeCorruptError } from './tape/errors.js';
export { TAPE_FORMAT_VERSION, type TapeMeta, type Checkpoint } from './tape/schema.js';
