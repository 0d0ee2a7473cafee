// The recorder: reads a source, applies every event to the engine to take digest checkpoints
// live, and writes blocks. Each commit holds one block plus the checkpoints and snapshots it
// completes and the source position after its last event, in one transaction.

import { performance } from 'node:perf_hooks';
import { RunContext } from '../engine/context.js';
import type { Engine } from '../engine/types.js';
import { BlockBuilder } from '../tape/block.js';
import type { Checkpoint, SnapshotRecord } from '../tape/schema.js';
import { tapedeckVersion } from '../tape/version.js';
import { TapeWriter, type Durability } from '../tape/writer.js';
import type { Source, SourceRecord } from './source.js';

export const DEFAULT_CHECKPOINT_EVERY = 10_000;
export const DEFAULT_SNAPSHOT_EVERY = 100_000;
export const DEFAULT_BLOCK_EVENTS = 4096;

export interface RecordOptions<S, E> {
  readonly path: string;
  readonly overwrite?: boolean;
  readonly durability?: Durability;
  readonly engine: Engine<S, E>;
  readonly engineOptions?: unknown;
  /** Seed of the per-event randomness the engine draws from. */
  readonly runSeed: number;
  readonly checkpointEvery?: number;
  readonly snapshotEvery?: number;
  readonly blockEvents?: number;
  /** Called after each commit. */
  readonly onProgress?: (progress: RecordProgress) => void;
}

export interface RecordProgress {
  readonly events: number;
  readonly blocks: number;
}

export interface RecordResult {
  readonly path: string;
  readonly events: number;
  readonly blocks: number;
  readonly checkpoints: number;
  readonly snapshots: number;
  readonly finalDigest: string;
  readonly updatesEmitted: number;
  readonly elapsedMs: number;
  readonly eventsPerSec: number;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

export async function recordTape<S, E>(source: Source<E>, options: RecordOptions<S, E>): Promise<RecordResult> {
  const engine = options.engine;
  const checkpointEvery = positiveInteger('checkpointEvery', options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY);
  const snapshotEvery = positiveInteger('snapshotEvery', options.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY);
  const blockEvents = positiveInteger('blockEvents', options.blockEvents ?? DEFAULT_BLOCK_EVENTS);
  const writer = TapeWriter.create(
    options.path,
    {
      formatVersion: 1,
      tapedeckVersion: tapedeckVersion(),
      engineName: engine.name,
      engineVersion: engine.version,
      engineOptions: options.engineOptions ?? null,
      codec: engine.codec.name,
      runSeed: options.runSeed,
      source: source.description,
      createdAt: new Date().toISOString(),
      checkpointEvery,
      snapshotEvery,
    },
    { overwrite: options.overwrite, durability: options.durability },
  );

  const startedMs = performance.now();
  const ctx = new RunContext(options.runSeed);
  let state = engine.init(options.engineOptions ?? undefined);
  const builder = new BlockBuilder();
  let seq = 0;
  let blocks = 0;
  let checkpointCount = 0;
  let snapshotCount = 0;
  let pendingCheckpoints: Checkpoint[] = [];
  let pendingSnapshots: SnapshotRecord[] = [];
  let lastRecord: SourceRecord<E> | null = null;

  const flush = (): void => {
    const hasBlock = builder.eventCount > 0;
    if (!hasBlock && pendingCheckpoints.length === 0) return;
    writer.commit({
      block: hasBlock ? builder.finish(blocks) : undefined,
      checkpoints: pendingCheckpoints,
      snapshots: pendingSnapshots,
      sourcePositions: lastRecord === null ? [] : [{ source: source.name, nextSeq: seq, position: source.resumeAfter(lastRecord) }],
    });
    if (hasBlock) blocks++;
    checkpointCount += pendingCheckpoints.length;
    snapshotCount += pendingSnapshots.length;
    pendingCheckpoints = [];
    pendingSnapshots = [];
    options.onProgress?.({ events: seq, blocks });
  };

  try {
    for await (const batch of source.batches()) {
      for (const record of batch) {
        ctx.prepare(seq, record.timestampUs, record.partition);
        state = engine.apply(state, record.event, ctx);
        builder.add(seq, record);
        lastRecord = record;
        seq++;
        if (seq % checkpointEvery === 0) {
          pendingCheckpoints.push({ nextSeq: seq, digest: engine.digest(state), nowUs: ctx.nowUs });
        }
        if (seq % snapshotEvery === 0) {
          pendingSnapshots.push({ nextSeq: seq, digest: engine.digest(state), nowUs: ctx.nowUs, state: engine.snapshot(state) });
        }
        if (builder.eventCount >= blockEvents) flush();
      }
    }
    // The final state is always checkpointed, so a replay verifies the end of the tape too.
    const finalDigest = engine.digest(state);
    if (seq > 0 && seq % checkpointEvery !== 0) pendingCheckpoints.push({ nextSeq: seq, digest: finalDigest, nowUs: ctx.nowUs });
    flush();
    const elapsedMs = performance.now() - startedMs;
    return {
      path: options.path,
      events: seq,
      blocks,
      checkpoints: checkpointCount,
      snapshots: snapshotCount,
      finalDigest,
      updatesEmitted: ctx.emitted,
      elapsedMs,
      eventsPerSec: elapsedMs > 0 ? (seq * 1000) / elapsedMs : 0,
    };
  } finally {
    writer.close();
  }
}
