// One worker of `replay --workers N` (see shards.ts): reads the whole tape, follows every
// event's timestamp on its virtual clock, applies the events of its partitions (partition mod
// shards = shard) to a state of its own, and reports the engine's digest words and invariant
// violations at every checkpoint.

import { parentPort, workerData } from 'node:worker_threads';
import { RunContext } from '../engine/context.js';
import { eventDecoder } from '../engine/decode.js';
import type { InvariantViolation, JsonEvent } from '../engine/types.js';
import { TapeReader } from '../tape/reader.js';
import { DeterminismGuard, DeterminismViolationError } from './guard.js';
import { loadEngine } from '../tape/load-engine.js';

export interface ShardTask {
  readonly tape: string;
  readonly engineSpec: string;
  readonly shard: number;
  readonly shards: number;
  readonly paranoid: boolean;
  /**
   * Events to replay: the tape's as the main thread read it. A tape being recorded may have
   * grown by the time a worker opens it; every worker stops where the main thread's view ends.
   */
  readonly events: number;
}

export type ShardMessage =
  | { readonly type: 'progress'; readonly seqDone: number }
  | { readonly type: 'done'; readonly result: ShardResult }
  | { readonly type: 'error'; readonly code: string | null; readonly name: string; readonly message: string };

export interface ShardResult {
  readonly shard: number;
  /** Events of this shard's partitions that were applied. */
  readonly events: number;
  /** Events read (all shards'): where the tape's blocks end. */
  readonly seen: number;
  /** Digest words at each checkpoint, in the order of the tape's checkpoints. */
  readonly checkpointWords: readonly (readonly number[])[];
  readonly finalWords: readonly number[];
  readonly violations: readonly { readonly nextSeq: number; readonly violations: readonly InvariantViolation[] }[];
  readonly violationCount: number;
  readonly updatesEmitted: number;
  readonly determinismViolation: { readonly api: string; readonly seq: number; readonly event: JsonEvent | null } | null;
}

const MAX_LISTED = 100;
/** Progress goes to the main thread every this many blocks (a message costs more than a block's bookkeeping). */
const PROGRESS_EVERY_BLOCKS = 32;

async function run(task: ShardTask): Promise<ShardResult> {
  const engine = await loadEngine(task.engineSpec);
  const sharding = engine.sharding;
  if (sharding === undefined) throw new Error(`engine ${engine.name} does not declare sharding`);
  const reader = TapeReader.open(task.tape);
  try {
    const meta = reader.meta;
    const checkpoints = reader.checkpoints().filter((c) => c.nextSeq <= task.events);
    const codec = engine.codec;
    const decode = eventDecoder(engine);
    const ctx = new RunContext(meta.runSeed);
    let state = engine.init(meta.engineOptions ?? undefined);
    const checkpointWords: (readonly number[])[] = [];
    const violations: { nextSeq: number; violations: readonly InvariantViolation[] }[] = [];
    let violationCount = 0;
    let checkpointIndex = 0;
    let nextCheckpointSeq = checkpoints.length > 0 ? checkpoints[0].nextSeq : Infinity;
    let events = 0;
    let seen = 0;
    let blocksRead = 0;
    const check = (nextSeq: number): void => {
      const found = engine.checkInvariants(state);
      if (found.length > 0) {
        violationCount += found.length;
        if (violations.length < MAX_LISTED) violations.push({ nextSeq, violations: found });
      }
    };
    const guard = new DeterminismGuard();
    let determinismViolation: ShardResult['determinismViolation'] = null;
    guard.install();
    try {
      blocks: for (const cursor of reader.blocks(0)) {
        const bytes = cursor.bytes;
        while (reader.advance(cursor)) {
          const seq = cursor.seq;
          if (seq >= task.events) break blocks;
          if (cursor.partition % task.shards === task.shard) {
            const event = decode(bytes, cursor.payloadOffset, cursor.payloadLength);
            ctx.prepare(seq, cursor.timestampUs, cursor.partition);
            try {
              state = engine.apply(state, event, ctx);
              if (task.paranoid) check(seq + 1);
            } catch (error) {
              if (!(error instanceof DeterminismViolationError)) throw error;
            }
            if (guard.violated) {
              guard.uninstall();
              determinismViolation = { api: guard.take()!, seq, event: codec.toJSON(event) };
              break blocks;
            }
            events++;
          } else {
            // Another shard's event: only the clock follows it, as in a single-threaded replay.
            ctx.clock.advanceTo(cursor.timestampUs);
          }
          seen = seq + 1;
          if (seen === nextCheckpointSeq) {
            checkpointWords.push(sharding.digestWords(state));
            if (!task.paranoid) check(seen);
            checkpointIndex++;
            nextCheckpointSeq = checkpointIndex < checkpoints.length ? checkpoints[checkpointIndex].nextSeq : Infinity;
          }
        }
        if (++blocksRead % PROGRESS_EVERY_BLOCKS === 0) {
          guard.uninstall();
          parentPort!.postMessage({ type: 'progress', seqDone: seen } satisfies ShardMessage);
          guard.install();
        }
      }
    } finally {
      guard.uninstall();
    }
    return {
      shard: task.shard,
      events,
      seen,
      checkpointWords,
      finalWords: sharding.digestWords(state),
      violations,
      violationCount,
      updatesEmitted: ctx.emitted,
      determinismViolation,
    };
  } finally {
    reader.close();
  }
}

run(workerData as ShardTask).then(
  (result) => parentPort!.postMessage({ type: 'done', result } satisfies ShardMessage),
  (error: unknown) => {
    const e = error as { code?: unknown; name?: string; message?: string };
    parentPort!.postMessage({
      type: 'error',
      code: typeof e.code === 'string' ? e.code : null,
      name: e.name ?? 'Error',
      message: e.message ?? String(error),
    } satisfies ShardMessage);
  },
);
