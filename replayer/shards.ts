// `replay --workers N`: a sharded replay on worker threads, for engines that declare their
// state sharded by partition (EngineSharding in engine/types.ts). Each worker applies the
// events of the partitions p with p mod N = its index; at every checkpoint the workers' digest
// words are added element-wise (mod 2^32) and turned into the digest of the whole state, which
// is compared with the recorded one. The result has the shape of a single-threaded replay's.
//
// When the combined digests disagree with the tape, the replay is run again on one thread to
// locate the first divergent event; if that single-threaded replay agrees with the tape, the
// tape does not respect the engine's sharding claim, and the report says so.

import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { TapedeckError } from '../engine/errors.js';
import type { InvariantViolation } from '../engine/types.js';
import { TapeCorruptError } from '../tape/errors.js';
import { TapeReader } from '../tape/reader.js';
import { loadEngine } from '../tape/load-engine.js';
import { ReplayError, replayTape, type CheckpointMismatch, type ReplayResult } from './replay.js';
import type { ShardMessage, ShardResult, ShardTask } from './shard-worker.js';

const MAX_LISTED = 100;

export interface ShardedReplayOptions {
  /** The engine as --engine takes it: a built-in name or a module path (workers load it themselves). Default: the tape's engine. */
  readonly engineSpec?: string;
  /** Number of worker threads (shards), at least 1. */
  readonly workers: number;
  readonly paranoid?: boolean;
  /** Called as workers progress, with the events read by the slowest worker and the total. */
  readonly onProgress?: (eventsDone: number, eventsTotal: number) => void;
}

export interface ShardedReplayResult extends ReplayResult {
  readonly workers: number;
  /** Events applied by each worker. */
  readonly eventsPerWorker: readonly number[];
}

function runShard(task: ShardTask, onProgress: (seqDone: number) => void): Promise<ShardResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./shard-worker.js', import.meta.url), { workerData: task });
    let settled = false;
    worker.on('message', (message: ShardMessage) => {
      if (message.type === 'progress') onProgress(message.seqDone);
      else if (message.type === 'done') {
        settled = true;
        resolve(message.result);
      } else {
        settled = true;
        const error = message.code !== null ? new TapedeckError(message.code, message.message) : new Error(message.message);
        error.name = message.name;
        reject(error);
      }
    });
    worker.on('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`replay worker ${task.shard} exited with code ${code} before reporting`));
    });
  });
}

function addWords(into: number[], words: readonly number[]): void {
  for (let i = 0; i < words.length; i++) into[i] = ((into[i] ?? 0) + words[i]) >>> 0;
}

export async function replayTapeSharded(path: string, options: ShardedReplayOptions): Promise<ShardedReplayResult> {
  const workers = options.workers;
  if (!Number.isSafeInteger(workers) || workers < 1) throw new ReplayError('E_USAGE', `--workers must be a positive integer, got ${workers}`);
  const reader = TapeReader.open(path);
  let checkpoints;
  let meta;
  let total: number;
  try {
    meta = reader.meta;
    checkpoints = reader.checkpoints();
    total = reader.summary().events;
  } finally {
    reader.close();
  }
  const engineSpec = options.engineSpec ?? meta.engineName;
  const engine = await loadEngine(engineSpec);
  const sharding = engine.sharding;
  if (sharding === undefined) {
    throw new ReplayError(
      'E_ENGINE_NOT_SHARDED',
      `engine ${engine.name} does not declare that its state is sharded by partition (no \`sharding\` member), so --workers cannot split it; replay without --workers`,
    );
  }

  const startedMs = performance.now();
  const done = new Array<number>(workers).fill(0);
  const tasks = Array.from({ length: workers }, (_, shard) =>
    runShard({ tape: path, engineSpec, shard, shards: workers, paranoid: options.paranoid === true, events: total }, (seqDone) => {
      done[shard] = seqDone;
      options.onProgress?.(Math.min(...done), total);
    }),
  );
  const results = await Promise.all(tasks);
  const elapsedMs = performance.now() - startedMs;

  const seen = Math.min(...results.map((r) => r.seen));
  const stoppedBy = results.find((r) => r.determinismViolation !== null);
  if (stoppedBy === undefined && results.some((r) => r.checkpointWords.length < checkpoints.length)) {
    throw new TapeCorruptError(path, `events are missing: a checkpoint covers ${checkpoints[checkpoints.length - 1].nextSeq} events, but the tape's blocks end after ${seen}`);
  }

  const mismatchList: CheckpointMismatch[] = [];
  let mismatches = 0;
  const checkpointsCompared = Math.min(...results.map((r) => r.checkpointWords.length));
  for (let i = 0; i < checkpointsCompared; i++) {
    const sum: number[] = [];
    for (const r of results) addWords(sum, r.checkpointWords[i]);
    const actual = sharding.digestFromWords(sum, meta.engineOptions ?? undefined);
    if (actual !== checkpoints[i].digest) {
      mismatches++;
      if (mismatchList.length < MAX_LISTED) mismatchList.push({ nextSeq: checkpoints[i].nextSeq, expected: checkpoints[i].digest, actual });
    }
  }
  const finalSum: number[] = [];
  for (const r of results) addWords(finalSum, r.finalWords);
  const finalDigest = sharding.digestFromWords(finalSum, meta.engineOptions ?? undefined);

  // Violations from every shard, merged in checkpoint order.
  const byCheckpoint = new Map<number, InvariantViolation[]>();
  for (const r of results) {
    for (const v of r.violations) {
      const list = byCheckpoint.get(v.nextSeq);
      if (list === undefined) byCheckpoint.set(v.nextSeq, [...v.violations]);
      else list.push(...v.violations);
    }
  }
  const invariantViolationList = [...byCheckpoint.entries()]
    .sort((a, b) => a[0] - b[0])
    .slice(0, MAX_LISTED)
    .map(([nextSeq, violations]) => ({ nextSeq, violations }));
  const invariantViolations = results.reduce((n, r) => n + r.violationCount, 0);
  const events = results.reduce((n, r) => n + r.events, 0);

  let located: ReplayResult | null = null;
  let divergenceNote: string | null = null;
  if (mismatches > 0 && stoppedBy === undefined) {
    // Locate the divergence on one thread (lockstep against the reference engine).
    located = replayTape(path, { engine });
    if (located.mismatches === 0) {
      divergenceNote =
        `the sharded replay disagrees with the checkpoint after event ${mismatchList[0].nextSeq - 1}, but a single-threaded replay agrees with every checkpoint: ` +
        `this tape does not respect ${engine.name}'s sharding (some entity's events come on more than one partition, or an event on one partition changes another's state); replay it without --workers`;
    }
  }

  const v = stoppedBy?.determinismViolation ?? null;
  return {
    ok: mismatches === 0 && invariantViolations === 0 && v === null,
    tape: path,
    engine: { name: engine.name, version: engine.version },
    recordedWith: { name: meta.engineName, version: meta.engineVersion },
    events,
    fromSeq: 0,
    toSeq: events > 0 ? seen - 1 : null,
    startedAtSeq: 0,
    fastForwarded: 0,
    elapsedMs,
    eventsPerSec: elapsedMs > 0 ? (events * 1000) / elapsedMs : 0,
    speed: 'max',
    sleptMs: 0,
    checkpointsTotal: checkpoints.length,
    checkpointsVerified: checkpointsCompared,
    mismatches,
    mismatchList,
    invariantViolations,
    invariantViolationList,
    finalDigest,
    updatesEmitted: results.reduce((n, r) => n + r.updatesEmitted, 0),
    firstDivergentSeq: located?.firstDivergentSeq ?? null,
    divergence: located?.divergence ?? null,
    divergenceNote: divergenceNote ?? located?.divergenceNote ?? null,
    determinismViolation: v,
    redaction: (meta.source as { redaction?: unknown } | null)?.redaction ?? null,
    workers,
    eventsPerWorker: results.map((r) => r.events),
  };
}
