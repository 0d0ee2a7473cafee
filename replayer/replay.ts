// The replayer: reads a tape's verified blocks, applies every event to the engine on the
// virtual clock at full speed (it never sleeps), and compares the engine's digest with every
// checkpoint recorded in the tape, checking invariants there too. Returns a result value;
// the CLI and assertion helpers decide what is a failure.

import { performance } from 'node:perf_hooks';
import { RunContext } from '../engine/context.js';
import { eventDecoder } from '../engine/decode.js';
import { TapedeckError } from '../engine/errors.js';
import { builtInEngine } from '../engine/registry.js';
import type { Engine, InvariantViolation, JsonEvent } from '../engine/types.js';
import { DeterminismGuard, DeterminismViolationError } from './guard.js';
import { checkedSpeed, planPacing, type PacedPlan } from './pacing.js';
import { TapeCorruptError } from '../tape/errors.js';
import { TapeReader } from '../tape/reader.js';
import { lockstep, type Divergence } from './bisect.js';
import { builtInEngineOf } from '../tape/load-engine.js';
import { latencyReport, latencySetup, startModel, type LatencyOptions, type LatencyReport, type ModelSink } from './latency/index.js';
import type { LatencyPercentilesMs } from './latency/model.js';
import type { EmpiricalServiceTimes } from './latency/service-time.js';

/** The real clock, bound before any guard replaces performance.now for engine code. */
const realNow = performance.now.bind(performance);
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Block the thread (the replay loop is synchronous): a wait that nothing will wake. */
function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Past this many, mismatches and violations are counted but not listed. */
const MAX_LISTED = 100;

export interface ReplayOptions {
  /** The engine to replay through; by default the built-in engine the tape names. */
  readonly engine?: Engine;
  /** Called after each block with the events applied so far and the total. */
  readonly onProgress?: (eventsDone: number, eventsTotal: number) => void;
  /**
   * The engine that recorded the checkpoints, run in lockstep to locate the first divergent
   * event after a mismatch; by default the built-in engine the tape names, if there is one.
   */
  readonly reference?: Engine;
  /** First event to replay (seq); the replay starts at the last snapshot before it and fast-forwards. */
  readonly fromSeq?: number;
  /** Last event to replay (seq, included). */
  readonly toSeq?: number;
  /** First event with a timestamp at or after this (µs since the epoch); instead of fromSeq. */
  readonly fromTimeUs?: number;
  /** Last event with a timestamp before or at this, in tape order; instead of toSeq. */
  readonly toTimeUs?: number;
  /** Check the engine's invariants after every event, not only at checkpoints. */
  readonly paranoid?: boolean;
  /**
   * 'max' (default): never sleep; virtual time follows the recorded timestamps. A number K:
   * paced, so that wall-clock time follows recorded time divided by K (K = 2: twice as fast).
   */
  readonly speed?: number | 'max';
  /**
   * With a speed K: told, before the replay starts, how long following the range's recorded
   * time takes (a speed that would take more than a year is refused, E_USAGE).
   */
  readonly onPaced?: (plan: PacedPlan) => void;
  /** Also return this replay's digest at every checkpoint (for comparing runs). */
  readonly collectDigests?: boolean;
  /**
   * Run the latency model beside the replay (docs/latency.md): arrivals at the recorded
   * timestamps divided by the speed (1 at --speed max), service times measured around the
   * engine call or drawn from a model.
   */
  readonly latency?: LatencyOptions & {
    /** With measured service times: also store each event's here (index = seq - fromSeq). */
    readonly serviceTimesOut?: Float32Array;
  };
}

export interface CheckpointMismatch {
  /** The checkpoint covers events with seq < nextSeq. */
  readonly nextSeq: number;
  readonly expected: string;
  readonly actual: string;
}

export interface CheckpointViolations {
  readonly nextSeq: number;
  readonly violations: readonly InvariantViolation[];
}

export interface ReplayResult {
  readonly ok: boolean;
  readonly tape: string;
  readonly engine: { readonly name: string; readonly version: string };
  readonly recordedWith: { readonly name: string; readonly version: string };
  /** Events replayed in the range (not counting the fast-forward from the snapshot). */
  readonly events: number;
  readonly fromSeq: number;
  /** Last event replayed (included), or null when the range was empty. */
  readonly toSeq: number | null;
  /** Where the replay started: the snapshot it restored (its digest checked), or 0. */
  readonly startedAtSeq: number;
  readonly fastForwarded: number;
  readonly elapsedMs: number;
  readonly eventsPerSec: number;
  readonly speed: number | 'max';
  /** Time spent waiting to follow the recorded pace (0 at --speed max). */
  readonly sleptMs: number;
  readonly checkpointsTotal: number;
  readonly checkpointsVerified: number;
  /** Number of checkpoints whose digest differed; the first MAX_LISTED are in mismatchList. */
  readonly mismatches: number;
  readonly mismatchList: readonly CheckpointMismatch[];
  readonly invariantViolations: number;
  readonly invariantViolationList: readonly CheckpointViolations[];
  readonly finalDigest: string;
  /** Updates the engine emitted for the events of the range (not for the fast-forward to fromSeq). */
  readonly updatesEmitted: number;
  /** The first event after which the state differs from the reference engine's; null when none was found. */
  readonly firstDivergentSeq: number | null;
  /** That event and the state difference there; or why it could not be located. */
  readonly divergence: Divergence | null;
  readonly divergenceNote: string | null;
  /** With collectDigests: this replay's digest at each checkpoint it verified. */
  readonly checkpointDigests?: readonly { readonly nextSeq: number; readonly digest: string }[];
  /** Engine code read the wall clock, drew ambient randomness or set a timer: the replay stopped there. */
  readonly determinismViolation: DeterminismViolation | null;
  /** The redaction rules the tape was recorded with (fields removed or hashed before they reached it), or null. */
  readonly redaction: unknown;
  /** With the latency option: the model's figures and the budget checks (also ok = false when over budget). */
  readonly latency?: LatencyReport;
  /** The same as latency.latencyMs. */
  readonly latencyMs?: LatencyPercentilesMs;
  /** With latency.keepServiceTimes: the distribution of service times, as --save-service-times writes it. */
  readonly serviceTimes?: EmpiricalServiceTimes;
}

export interface DeterminismViolation {
  /** The API called, e.g. "Date.now()". */
  readonly api: string;
  /** The event being applied (or the checkpoint being verified after it). */
  readonly seq: number;
  readonly event: JsonEvent | null;
}

/** The tape cannot be replayed through this engine (unknown engine, undecodable event). */
export class ReplayError extends TapedeckError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ReplayError';
  }
}

export function replayTape(path: string, options: ReplayOptions = {}): ReplayResult {
  const reader = TapeReader.open(path);
  try {
    return replayOpen(reader, options);
  } finally {
    reader.close();
  }
}

function resolveEngine(reader: TapeReader, given: Engine | undefined): Engine {
  return given ?? builtInEngineOf(reader.path, reader.meta.engineName);
}

/** Turn the range options into sequence numbers (toSeq MAX_SAFE_INTEGER: to the end). */
function resolveRange(reader: TapeReader, options: ReplayOptions, total: number): { fromSeq: number; toSeq: number } {
  if (options.fromSeq !== undefined && options.fromTimeUs !== undefined) throw new ReplayError('E_USAGE', 'give --from or --from-time, not both');
  if (options.toSeq !== undefined && options.toTimeUs !== undefined) throw new ReplayError('E_USAGE', 'give --to or --to-time, not both');
  const fromSeq = options.fromTimeUs !== undefined ? reader.firstSeqAtOrAfter(options.fromTimeUs) ?? total : (options.fromSeq ?? 0);
  const toSeq = options.toTimeUs !== undefined ? (reader.lastSeqAtOrBefore(options.toTimeUs) ?? -1) : (options.toSeq ?? Number.MAX_SAFE_INTEGER);
  if (fromSeq > total) throw new ReplayError('E_USAGE', `--from ${fromSeq} is past the end of the tape (${total} events)`);
  if (toSeq < fromSeq - 1) throw new ReplayError('E_USAGE', `the range ends (${toSeq}) before it starts (${fromSeq})`);
  return { fromSeq, toSeq };
}

function replayOpen(reader: TapeReader, options: ReplayOptions): ReplayResult {
  const engine = resolveEngine(reader, options.engine);
  const meta = reader.meta;
  const total = reader.summary().events;
  const checkpoints = reader.checkpoints();
  const codec = engine.codec;
  const decode = eventDecoder(engine);

  const startedMs = performance.now();
  const { fromSeq, toSeq } = resolveRange(reader, options, total);
  // Seek: start from the last snapshot at or before fromSeq, and check that it restores to its digest.
  const snapshot = fromSeq > 0 ? reader.snapshotAtOrBefore(fromSeq) : null;
  const startSeq = snapshot?.nextSeq ?? 0;
  const ctx = new RunContext(meta.runSeed, { startUs: snapshot?.nowUs ?? 0 });
  let state = snapshot === null ? engine.init(meta.engineOptions ?? undefined) : engine.restore(snapshot.state);
  // Checkpoints within what this replay applies: after the start, up to the end of the range.
  let checkpointIndex = checkpoints.findIndex((c) => c.nextSeq > startSeq);
  if (checkpointIndex < 0) checkpointIndex = checkpoints.length;
  const endCheckpoints = checkpoints.findIndex((c) => c.nextSeq > toSeq + 1);
  const checkpointsInRange = (endCheckpoints < 0 ? checkpoints.length : endCheckpoints) - checkpointIndex;
  let nextCheckpointSeq = checkpointIndex < checkpoints.length ? checkpoints[checkpointIndex].nextSeq : Infinity;
  let verified = 0;
  let mismatchCount = 0;
  const mismatchList: CheckpointMismatch[] = [];
  let violationCount = 0;
  const violationList: CheckpointViolations[] = [];
  let events = 0;
  let lastSeq: number | null = null;
  let reachedSeq = startSeq;
  /** The last checkpoint that matched before the first mismatch: where the search starts. */
  let lastGoodSeq = startSeq;
  if (snapshot !== null) {
    const restored = engine.digest(state);
    verified++;
    if (restored !== snapshot.digest) {
      mismatchCount++;
      mismatchList.push({ nextSeq: snapshot.nextSeq, expected: snapshot.digest, actual: restored });
    }
  }

  const paranoid = options.paranoid === true;
  const digests: { nextSeq: number; digest: string }[] | null = options.collectDigests ? [] : null;
  const checkInvariantsAt = (nextSeq: number): void => {
    const violations = engine.checkInvariants(state);
    if (violations.length > 0) {
      violationCount += violations.length;
      if (violationList.length < MAX_LISTED) violationList.push({ nextSeq, violations });
    }
  };

  const verifyCheckpoint = (): void => {
    const checkpoint = checkpoints[checkpointIndex];
    const actual = engine.digest(state);
    verified++;
    digests?.push({ nextSeq: checkpoint.nextSeq, digest: actual });
    if (actual === checkpoint.digest) {
      if (mismatchCount === 0) lastGoodSeq = checkpoint.nextSeq;
    } else {
      mismatchCount++;
      if (mismatchList.length < MAX_LISTED) mismatchList.push({ nextSeq: checkpoint.nextSeq, expected: checkpoint.digest, actual });
    }
    if (!paranoid) checkInvariantsAt(checkpoint.nextSeq);
    checkpointIndex++;
    nextCheckpointSeq = checkpointIndex < checkpoints.length ? checkpoints[checkpointIndex].nextSeq : Infinity;
  };

  const rangeEvents = Math.max(0, Math.min(toSeq, total - 1) - fromSeq + 1);
  const speed = checkedSpeed(options.speed);
  planPacing(reader, fromSeq, Math.min(toSeq, total - 1), speed, options.onPaced);
  // Pacing: the first replayed event sets the origin; later ones wait until their recorded
  // offset, divided by the speed, has passed on the wall clock.
  let paceOriginUs = -1;
  let paceOriginMs = 0;
  let sleptMs = 0;
  // The latency model, fed in the loop: measured service times need the engine call timed here.
  const latencyOptions = options.latency;
  const setup = latencyOptions === undefined ? null : latencySetup(reader, fromSeq, latencyOptions);
  let model: ModelSink | null = null;
  if (setup !== null) {
    const summary = reader.summary();
    const spanUs = Math.max(0, (summary.maxTsUs ?? 0) - (summary.minTsUs ?? 0));
    const source = `${reader.path} through ${engine.name} ${engine.version}, ${setup.serviceTime}`;
    // Drawn service times, none to hand back: the model may read the timestamps from the tape.
    const tape = latencyOptions!.serviceTimesOut === undefined ? { path: reader.path, fromSeq } : null;
    model = startModel(setup, latencyOptions!, speed === 'max' ? 1 : speed, spanUs, source, tape);
  }
  const timing = setup !== null && setup.seed === null;
  const serviceOut = latencyOptions?.serviceTimesOut ?? null;
  /** The model needs every event pushed (else it reads them from the tape, told how far the replay is once a block). */
  const pushEach = model !== null && !model.readsTape;
  const guard = new DeterminismGuard();
  let violation: DeterminismViolation | null = null;
  // Updates the fast-forward from the snapshot emitted are not the range's.
  let emittedBeforeRange = fromSeq > startSeq ? -1 : 0;
  guard.install();
  try {
    blocks: for (const cursor of reader.blocks(startSeq)) {
      const bytes = cursor.bytes;
      while (reader.advance(cursor)) {
        if (cursor.seq < startSeq) continue;
        if (cursor.seq > toSeq) break blocks;
        let event: unknown;
        try {
          event = decode(bytes, cursor.payloadOffset, cursor.payloadLength);
        } catch (cause) {
          throw new ReplayError(
            'E_REPLAY_DECODE',
            `${reader.path}: event ${cursor.seq} (block ${cursor.header.blockNo}) cannot be decoded by engine ${engine.name}'s codec ` +
              `(${codec.name}; the tape was written with ${meta.codec}): ${(cause as Error).message}${codecHint(meta.codec, codec.name, meta.engineName)}`,
            { cause },
          );
        }
        if (speed !== 'max' && cursor.seq >= fromSeq) {
          if (paceOriginUs < 0) {
            paceOriginUs = cursor.timestampUs;
            paceOriginMs = realNow();
          } else {
            const waitMs = paceOriginMs + (cursor.timestampUs - paceOriginUs) / 1000 / speed - realNow();
            if (waitMs >= 1) {
              sleepMs(waitMs);
              sleptMs += waitMs;
            }
          }
        }
        ctx.prepare(cursor.seq, cursor.timestampUs, cursor.partition);
        if (cursor.seq === fromSeq) emittedBeforeRange = ctx.emitted;
        // Engine code under the guard: a forbidden API call ends the replay here, even if the
        // engine swallowed the error the trap threw.
        try {
          // One call site for the engine, with or without the model, so that it inlines alike.
          const t0 = timing ? realNow() : 0;
          state = engine.apply(state, event, ctx);
          if (pushEach && cursor.seq >= fromSeq) {
            const serviceUs = timing ? (realNow() - t0) * 1000 : 0;
            model!.push(cursor.timestampUs, serviceUs);
            if (serviceOut !== null) serviceOut[events] = serviceUs;
          }
          if (paranoid) checkInvariantsAt(cursor.seq + 1);
          if (cursor.seq + 1 === nextCheckpointSeq) verifyCheckpoint();
        } catch (error) {
          if (!(error instanceof DeterminismViolationError)) throw error;
        }
        if (guard.violated) {
          guard.uninstall();
          violation = { api: guard.take()!, seq: cursor.seq, event: codec.toJSON(event) };
          break blocks;
        }
        reachedSeq = cursor.seq + 1;
        if (cursor.seq >= fromSeq) {
          events++;
          lastSeq = cursor.seq;
        }
      }
      // Progress reporting is the runner's, not the engine's: it may read the clock.
      guard.uninstall();
      if (model !== null && !pushEach) model.reached(events);
      options.onProgress?.(events, rangeEvents);
      guard.install();
    }
  } catch (error) {
    model?.abandon();
    throw error;
  } finally {
    guard.uninstall();
  }
  // Checkpoints past the last event mean events are missing from the tape.
  if (violation === null && toSeq === Number.MAX_SAFE_INTEGER && checkpointIndex < checkpoints.length) {
    model?.abandon();
    throw new TapeCorruptError(
      reader.path,
      `events are missing: a checkpoint covers ${checkpoints[checkpointIndex].nextSeq} events, but the tape's blocks end after ${reachedSeq}`,
    );
  }

  // The model's figures (waiting for its thread, if it runs on one) are part of the replay's time.
  let latency: LatencyReport | undefined;
  let serviceTimes: EmpiricalServiceTimes | undefined;
  if (model !== null) {
    const figures = model.finish(events);
    latency = latencyReport(setup!, figures.stats, latencyOptions!.budget);
    serviceTimes = figures.serviceTimes;
  }
  const elapsedMs = performance.now() - startedMs;
  const finalDigest = engine.digest(state);

  // Locate the first divergent event: the reference engine and this one in lockstep from the
  // snapshot before the last good checkpoint up to the first bad one.
  let divergence: Divergence | null = null;
  let divergenceNote: string | null = null;
  if (mismatchCount > 0 && violation === null) {
    const reference = options.reference ?? builtInEngine(meta.engineName);
    if (reference === undefined) {
      divergenceNote = `the tape's engine "${meta.engineName}" is not built in; give it as the reference to locate the first divergent event`;
    } else {
      const firstBad = mismatchList[0].nextSeq;
      const found = lockstep(reader, reference, engine, lastGoodSeq, firstBad - 1);
      divergence = found.divergence;
      if (divergence === null) {
        divergenceNote =
          `${reference.name} ${reference.version} and ${engine.name} ${engine.version} agree on every event from ${found.fromSeq} to ${firstBad - 1}, ` +
          'yet the checkpoint differs: the engine is not deterministic, or the tape was recorded by another build';
      }
    }
  }
  return {
    ok: mismatchCount === 0 && violationCount === 0 && violation === null && (latency === undefined || latency.withinBudget),
    tape: reader.path,
    engine: { name: engine.name, version: engine.version },
    recordedWith: { name: meta.engineName, version: meta.engineVersion },
    events,
    fromSeq,
    toSeq: lastSeq,
    startedAtSeq: startSeq,
    fastForwarded: Math.max(0, fromSeq - startSeq),
    elapsedMs,
    speed,
    sleptMs,
    eventsPerSec: elapsedMs > 0 ? (events * 1000) / elapsedMs : 0,
    checkpointsTotal: checkpointsInRange + (snapshot === null ? 0 : 1),
    checkpointsVerified: verified,
    mismatches: mismatchCount,
    mismatchList,
    invariantViolations: violationCount,
    invariantViolationList: violationList,
    finalDigest,
    updatesEmitted: emittedBeforeRange < 0 ? 0 : ctx.emitted - emittedBeforeRange,
    firstDivergentSeq: divergence?.seq ?? null,
    divergence,
    divergenceNote,
    determinismViolation: violation,
    redaction: (meta.source as { redaction?: unknown } | null)?.redaction ?? null,
    ...(digests === null ? {} : { checkpointDigests: digests }),
    ...(latency === undefined ? {} : { latencyMs: latency.latencyMs, latency }),
    ...(serviceTimes === undefined ? {} : { serviceTimes }),
  };
}

/**
 * When the engine given reads another codec than the tape's: which engine the tape wants, and
 * how to give it (a decode error alone names only the codecs).
 */
function codecHint(tapeCodec: string, engineCodec: string, tapeEngine: string): string {
  if (tapeCodec === engineCodec) return '';
  const how = builtInEngine(tapeEngine) !== undefined ? 'leave out --engine (it is built in)' : 'pass --engine PATH to its module';
  return `. The tape was recorded with engine "${tapeEngine}": to replay it with that engine, ${how}`;
}
