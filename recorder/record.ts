// The recorder: reads a source, applies every event to the engine to take digest checkpoints
// live, and writes blocks. Each commit holds one block plus the checkpoints, snapshots and
// rejects it completes and the source position after its last input, in one transaction: a
// crash at any moment leaves a tape that verifies and resumes without loss or duplicates.

import { performance } from 'node:perf_hooks';
import { RunContext, type UpdateSink } from '../engine/context.js';
import { eventDecoder } from '../engine/decode.js';
import { TapedeckError } from '../engine/errors.js';
import { builtInEngine, bytesFrom, digestString } from '../engine/registry.js';
import type { Engine } from '../engine/types.js';
import { worldCodec } from '../engine/world/codec.js';
import { worldEvent, WorldEventKind, type WorldEvent } from '../engine/world/events.js';
import { WORLD_EVENT_FIELDS, WorldEventRing } from './sources/world-traffic-packer.js';
import { BlockBuilder, BlockCursor, completeBlock, isEncoded, SourceSpans, type EncodedBlock, type PackedBlock } from '../tape/block.js';
import type { Checkpoint, RejectRecord, SnapshotRecord } from '../tape/schema.js';
import { TapeWriteError } from '../tape/errors.js';
import { sameFile } from '../tape/private.js';
import { tapedeckVersion } from '../tape/version.js';
import { TapeWriter, type Durability } from '../tape/writer.js';
import { MAX_IN_FLIGHT, type PackedEventsRef, rejectsFull, KafkaPipeline, kafkaConvertSetting, prestartKafkaWorker, type KafkaReaderReport, kafkaWorkerUrl, type RawRecordSource, SEGMENT_BYTES, SegmentPipeline, segmentWorkerUrl, SourcePipeline, sourceWorkerUrl, type SegmentChunk } from './pipeline.js';
import type { ResumePoint } from './resume.js';
import { isReject, REJECTED, type Source, type SourceItem, type SourceRecord, type SourceReject, type SourceSpec } from './source.js';

export const DEFAULT_CHECKPOINT_EVERY = 10_000;
export const DEFAULT_SNAPSHOT_EVERY = 100_000;
export const DEFAULT_BLOCK_EVENTS = 4096;
/**
 * Blocks per commit when the source can be read again (relaxed durability): each transaction
 * rewrites the 64 KiB pages of the small tables and indexes it touches (about seven), so a
 * commit of many blocks costs little more than one of a single block. With 32 (before, 8), a
 * recording writes 2.4 to 2.5 times the tape's size instead of 3.15, with about 4% less CPU. A
 * commit also comes once the blocks waiting hold RELAXED_COMMIT_BYTES, so large events do not
 * keep 32 blocks of up to 4 MiB in memory. A durable (live) source commits every block.
 */
export const RELAXED_COMMIT_BLOCKS = 32;
export const RELAXED_COMMIT_BYTES = 8 << 20;
/** A live source's input is committed at least this often while it trickles in, and this long after it stops coming. */
const LIVE_COMMIT_INTERVAL_MS = 100;
/** Longest stretch without letting the event loop run timers and signal handlers. */
const YIELD_INTERVAL_MS = 50;

export interface RecordOptions<S, E> {
  readonly path: string;
  readonly overwrite?: boolean;
  /**
   * Remove the tape this run made when the run fails: for a tape that is no recording to
   * resume (merge's output), which would otherwise be left holding part of what was asked.
   */
  readonly discardOnFailure?: boolean;
  /** Default: durable for live sources, relaxed otherwise. */
  readonly durability?: Durability;
  readonly engine: Engine<S, E>;
  readonly engineOptions?: unknown;
  /** Seed of the per-event randomness the engine draws from. */
  readonly runSeed: number;
  readonly checkpointEvery?: number;
  readonly snapshotEvery?: number;
  readonly blockEvents?: number;
  /** Keep malformed inputs in the tape's rejects table and go on; otherwise stop at the first. */
  readonly quarantine?: boolean;
  /** Continue a tape from where it ends (see resume.ts); the source must start at resume.position. */
  readonly resume?: ResumePoint<S>;
  /** Called after each commit. */
  readonly onProgress?: (progress: RecordProgress) => void;
  /**
   * Told what went wrong without failing the recording: a reader thread that did not stop
   * when asked and was ended (RecordResult.abandonedThread). A Kafka source has warnings of its
   * own (KafkaSourceOptions.onWarning).
   */
  readonly onWarning?: (message: string) => void;
  /** Aborting stops the source after its current batch; what was read is committed. */
  readonly signal?: AbortSignal;
  /** Receives the updates the engine emits (ctx.emit), with the event's seq (live ingest publishes them). */
  readonly updateSink?: UpdateSink<unknown>;
  /** Awaited after each batch from the source (live ingest waits here while its update publisher catches up). */
  readonly betweenBatches?: () => Promise<void>;
  /** Called after each event is applied (live ingest measures latency here). */
  readonly onApplied?: (item: SourceRecord<E>) => void;
  /**
   * Read and encode the source on a worker thread while this thread applies and writes
   * (pipeline.ts): "auto" (the default) when the source can be rebuilt there and its input is
   * large, "on" whenever it can be, "off" never. Live sources and runs with onApplied,
   * updateSink or betweenBatches always record on one thread.
   */
  readonly pipeline?: PipelineMode;
  /** How the worker loads the engine (--engine: a built-in name or a module path); without it only a built-in engine can be. */
  readonly engineSpec?: string;
  /** NDJSON files: bytes per segment given to the parse workers (default SEGMENT_BYTES, 2 MiB; for tests and tuning). */
  readonly segmentBytes?: number;
}

export type PipelineMode = 'auto' | 'on' | 'off';
export const PIPELINE_MODES: readonly PipelineMode[] = ['auto', 'on', 'off'];

export interface RecordProgress {
  readonly events: number;
  readonly read: number;
  readonly blocks: number;
  /** The source position the commit stored (e.g. an NDJSON file's byteOffset), when it stored one. */
  readonly position?: unknown;
}

export interface RecordResult {
  readonly path: string;
  /** Events in the tape now (including those recorded before a resume). */
  readonly events: number;
  /** Events accepted in this run. */
  readonly eventsThisRun: number;
  /** Inputs read from the source, in all runs: always accepted + quarantined. */
  readonly read: number;
  readonly accepted: number;
  readonly quarantined: number;
  readonly blocks: number;
  readonly checkpoints: number;
  readonly snapshots: number;
  readonly finalDigest: string;
  readonly updatesEmitted: number;
  readonly elapsedMs: number;
  readonly eventsPerSec: number;
  readonly resumed: boolean;
  /** True when the source was stopped (signal, stop condition) before its end. */
  readonly stopped: boolean;
  /** Whether the source was read on a worker thread (see RecordOptions.pipeline). */
  readonly pipelined: boolean;
  /**
   * True when another process had the tape open (a replay of it) for as long as the recorder
   * waited to finish it: the tape is complete and sound, but stays in WAL mode, its -wal file
   * beside it (see TapeWriter.close).
   */
  readonly inWalMode: boolean;
  /** A Kafka capture on the reader thread: its record-batch decoder and who converted the values (see recorder/pipeline.ts). */
  readonly kafkaReader?: KafkaReaderReport;
  /**
   * Set when the recording was stopped and a reader thread (named here) then sent nothing for
   * a while (10 s; 20 s for the Kafka reader): it was ended, and the tape holds, committed,
   * every event taken before it. The source can be read again from the tape's position
   * (--resume); a thread stuck this way is usually in the engine's code (a codec or generate()
   * hook that does not return).
   */
  readonly abandonedThread?: string;
}

/** Malformed input in strict mode: names where, and what was wrong. Exit 2. */
export class InputError extends TapedeckError {
  readonly position: unknown;
  readonly reasonCode: string;
  constructor(reject: SourceReject, committedEvents: number) {
    super(
      'E_INPUT',
      `${reject.where}: ${reject.reason} [${reject.reasonCode}]. ${committedEvents === 1 ? 'The 1 event before it is' : `The ${committedEvents.toLocaleString('en-US')} events before it are`} committed; ` +
        'fix the input and add --resume to continue, or record with --quarantine to keep bad lines aside and go on.',
    );
    this.name = 'InputError';
    this.position = reject.position;
    this.reasonCode = reject.reasonCode;
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Start the Kafka reader thread for a recording to come, and load `engineSpec` on it (a
 * built-in engine's name or a module path). recordTape does this itself; a caller that has
 * more to load first (the CLI loads kafkajs only for a Kafka recording) calls it earlier, so
 * that the thread starts meanwhile. A kept reader is not started again.
 */
export function prestartKafkaReader(engineSpec: string | undefined): void {
  kafkaConvertSetting();
  const url = kafkaWorkerUrl();
  if (url !== null) prestartKafkaWorker(url, engineSpec);
}

/**
 * Record `source` into the tape at options.path (a new tape, or options.resume's). The source
 * is used up: it is closed (Source.close, awaited) when the recording ends, however it ends.
 */
export async function recordTape<S, E>(source: Source<E>, options: RecordOptions<S, E>): Promise<RecordResult> {
  try {
    return await recordFrom(source, options);
  } finally {
    await source.close?.();
  }
}

async function recordFrom<S, E>(source: Source<E>, options: RecordOptions<S, E>): Promise<RecordResult> {
  const engine = options.engine;
  const resume = options.resume;
  const checkpointEvery = positiveInteger('checkpointEvery', resume?.meta.checkpointEvery ?? options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY);
  const snapshotEvery = positiveInteger('snapshotEvery', resume?.meta.snapshotEvery ?? options.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY);
  const blockEvents = positiveInteger('blockEvents', options.blockEvents ?? DEFAULT_BLOCK_EVENTS);
  const durability = options.durability ?? (source.live ? 'durable' : 'relaxed');
  if (source.inputFile !== undefined && sameFile(source.inputFile, options.path)) {
    // Replacing it (overwrite) would destroy the input; appending to it (resume) would damage it.
    throw new TapedeckError('E_OUTPUT_IS_INPUT', `${options.path} is the file the source reads (${source.inputFile}): the tape must be another file`);
  }
  if (source.name === 'kafka') {
    // A setting that is wrong fails before the tape exists.
    kafkaConvertSetting();
    // The reader thread starts while prepare() asks Kafka where to start (unless the caller
    // started it already).
    if (pipelineAllowed(options)) prestartKafkaReader(engineSpecOf(options));
  }
  // A source that cannot start (a broker refusing the connection) fails here, before the tape exists.
  await source.prepare?.();
  // So do engine options the engine refuses.
  const runSeed = resume?.meta.runSeed ?? options.runSeed;
  const ctx = new RunContext(runSeed, { startUs: resume?.nowUs ?? 0, sink: options.updateSink });
  let state = resume?.state ?? engine.init(options.engineOptions ?? undefined);
  const pipelineStart = {
    startSeq: resume?.nextSeq ?? 0,
    firstBlockNo: resume?.nextBlockNo ?? 0,
    blockEvents,
    read: resume?.read ?? 0,
    quarantined: resume?.rejected ?? 0,
  };
  // A generator's thread starts generating while the tape is made (10 to 20 ms: the file a
  // --force replaces is deleted, the new one built and synced); the other readers start just
  // before the loop, so that nothing is read from an input before the tape exists.
  const plan = pipelineAllowed(options) ? (source.workerSpec?.() ?? null) : null;
  const generated = plan?.spec.kind === 'world-traffic' || plan?.spec.kind === 'engine-generated';
  const early = generated ? startPipeline(source, options, plan, pipelineStart) : null;
  let writer: TapeWriter;
  try {
    writer =
      resume !== undefined
        ? TapeWriter.openForAppend(options.path, { durability })
        : TapeWriter.create(
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
            { overwrite: options.overwrite, durability },
          );
  } catch (error) {
    await early?.close();
    throw error;
  }

  /** The reader threads, when this run has them (started just before the loop, a generator's before the tape is made: see `early`). */
  let pipeline: SourcePipeline | SegmentPipeline | KafkaPipeline | null = null;
  const startedMs = performance.now();
  const builder = new BlockBuilder();
  const startSeq = resume?.nextSeq ?? 0;
  let seq = startSeq;
  let blockNo = resume?.nextBlockNo ?? 0;
  let read = resume?.read ?? 0;
  let quarantined = resume?.rejected ?? 0;
  let checkpointCount = 0;
  let snapshotCount = 0;
  let pendingCheckpoints: Checkpoint[] = [];
  let pendingSnapshots: SnapshotRecord[] = [];
  let pendingRejects: RejectRecord[] = [];
  /** Bytes of raw input the pending rejects taken on this thread hold (a worker bounds its own). */
  let pendingRejectBytes = 0;
  let lastItem: SourceItem<E> | null = null;
  let lastCommitMs = performance.now();
  /** A live source's input waits for a commit at most LIVE_COMMIT_INTERVAL_MS. */
  const liveCommitDue = (): boolean => performance.now() - lastCommitMs >= LIVE_COMMIT_INTERVAL_MS;
  let lastYieldMs = performance.now();

  /** The source position after the last input taken (undefined: none yet); each way of reading sets how. */
  let positionNow = (): unknown => (lastItem === null ? undefined : source.resumeAfter(lastItem));
  /** With a worker: the source position after the last batch it sent. */
  let pipelinePosition: unknown = undefined;
  /** With NDJSON parse workers: the position after the last input taken (line -1: none yet). */
  let segmentByteOffset = 0;
  let segmentLine = -1;
  // A block a commit: what stdin gave is on disk before more is read. A source that can be read
  // again (a file; Kafka, whose commits are still synced) commits several at once.
  const commitBlocks = durability === 'durable' && source.rereadable !== true ? 1 : RELAXED_COMMIT_BLOCKS;
  let pendingBlocks: EncodedBlock[] = [];
  let pendingBlockBytes = 0;
  /** Events in the tape, and inputs it accounts for, as of the last commit. */
  let committedEvents = startSeq;
  let committedRead = read;
  /**
   * A write that failed (the disk is full), with what the tape keeps and how to go on; and,
   * from a source that cannot be read again (stdin), the inputs read since that are lost.
   */
  const writeFailed = (error: unknown): unknown => {
    if (!(error instanceof TapeWriteError) || error.conflict) return error;
    const lost = source.live && source.rereadable !== true && read > committedRead ? `; the ${(read - committedRead).toLocaleString('en-US')} inputs read after that commit are not, and this source (stdin) cannot give them again` : '';
    return new TapeWriteError(error.path, `${error.reason}. The tape keeps the ${committedEvents.toLocaleString('en-US')} events committed before it, sound${lost}`, { cause: error, committedEvents });
  };
  /**
   * Finish the block (built here, or by the worker): everything read so far is then in
   * finished blocks and pending rejects. Commit them, with what they complete and the source
   * position after the last input, once commitBlocks blocks (or RELAXED_COMMIT_BYTES of them)
   * wait, or when `now`.
   */
  const flush = (prebuilt?: EncodedBlock, now = true): void => {
    const block = prebuilt ?? (builder.eventCount > 0 ? builder.finish(blockNo) : undefined);
    if (block !== undefined) {
      pendingBlocks.push(block);
      pendingBlockBytes += block.data.length;
      blockNo++;
    }
    if (!now && pendingBlocks.length < commitBlocks && pendingBlockBytes < RELAXED_COMMIT_BYTES) return;
    if (pendingBlocks.length === 0 && pendingCheckpoints.length === 0 && pendingRejects.length === 0) return;
    const next = positionNow();
    const position = next === undefined || source.sealPosition === undefined ? next : source.sealPosition(next);
    try {
      writer.commit({
        blocks: pendingBlocks,
        checkpoints: pendingCheckpoints,
        snapshots: pendingSnapshots,
        rejects: pendingRejects,
        sourcePositions: position === undefined ? [] : [{ source: source.name, nextSeq: seq, position, read, rejected: quarantined }],
      });
    } catch (error) {
      throw writeFailed(error);
    }
    committedEvents = seq;
    committedRead = read;
    if (position !== undefined) {
      source.committed?.(position);
      if (pipeline instanceof KafkaPipeline) pipeline.committed(position);
    }
    pendingBlocks = [];
    pendingBlockBytes = 0;
    checkpointCount += pendingCheckpoints.length;
    snapshotCount += pendingSnapshots.length;
    pendingCheckpoints = [];
    pendingSnapshots = [];
    pendingRejects = [];
    pendingRejectBytes = 0;
    lastCommitMs = performance.now();
    options.onProgress?.({ events: seq, read, blocks: blockNo, position });
  };

  /**
   * The next of `inputs`. When the source fails between inputs (a read error, damaged
   * compressed input, a file cut short), what was taken is whole and applied, so it is
   * committed, as a stop commits it (unless `commit` says no); then the source's error stands
   * (a failed commit does not hide it).
   */
  const nextOrCommit = async <T>(inputs: AsyncIterator<T>, commit: () => boolean = () => true): Promise<IteratorResult<T>> => {
    try {
      return await inputs.next();
    } catch (error) {
      if (commit()) {
        try {
          flush();
        } catch {
          // The source's error is the one to report.
        }
      }
      throw error;
    }
  };

  /**
   * After event seq - 1 was applied, once seq reaches nextMultiple (the next multiple of
   * checkpointEvery or of snapshotEvery; seq only grows, by one): the checkpoint and snapshot it
   * completes, if any. Every event's loop tests `seq >= nextMultiple` itself and calls this only
   * then: as a call per event that V8 did not inline, the test took 4.7% of the recording's main
   * thread (perf, 1M-event recordings), as much as the engine's busiest function.
   */
  let nextMultiple = 0;
  /** The state's digest, to store: a string (an engine object passed in by a program is not checked on loading; so its snapshots, below). */
  const digestNow = (): string => digestString(engine.digest(state), `engine "${engine.name}"`);
  const afterApplied = (): void => {
    if (seq % checkpointEvery === 0) pendingCheckpoints.push({ nextSeq: seq, digest: digestNow(), nowUs: ctx.nowUs });
    if (seq % snapshotEvery === 0) {
      pendingSnapshots.push({ nextSeq: seq, digest: digestNow(), nowUs: ctx.nowUs, state: bytesFrom(engine.snapshot(state), `engine "${engine.name}": snapshot()`) });
    }
    nextMultiple = Math.min(checkpointEvery * (Math.floor(seq / checkpointEvery) + 1), snapshotEvery * (Math.floor(seq / snapshotEvery) + 1));
  };

  /**
   * A block from the worker: decode and apply its events, and note each one's source position;
   * return it with its position index and checksum, to commit as it is (the worker leaves both
   * to this thread, which walks the events anyway: sent as objects, a block's 64 index rows
   * cost more to pass between threads than to make here). A block that comes complete (the
   * generator's, from world-traffic-packer.ts, whose thread has time to spare) is applied only.
   */
  const cursor = new BlockCursor();
  const decode = eventDecoder(engine);
  const blockSpans = new SourceSpans();
  /** Throws unless `block` is the next block, starting at the next event (and `inStep` holds). */
  const expectNextBlock = (block: PackedBlock, inStep = true): void => {
    if (!inStep || block.firstSeq !== seq || block.blockNo !== blockNo) {
      throw new Error(`recorder pipeline out of step: block ${block.blockNo} starts at event ${block.firstSeq}, expected block ${blockNo} at ${seq}`);
    }
  };
  const applyBlock = (block: PackedBlock): EncodedBlock => {
    expectNextBlock(block);
    const bytes = block.data;
    // A block may come complete (the generator's, packed by WebAssembly on the worker, which has the time).
    const complete = isEncoded(block);
    cursor.reset(block, bytes);
    while (cursor.next()) {
      const event = decode(bytes, cursor.payloadOffset, cursor.payloadLength);
      if (!complete) blockSpans.add(cursor.stream, cursor.partition, cursor.position);
      ctx.prepare(seq, cursor.timestampUs, cursor.partition);
      state = engine.apply(state, event, ctx);
      seq++;
      if (seq >= nextMultiple) afterApplied();
    }
    return complete ? block : completeBlock(block, blockSpans);
  };

  /**
   * A block of the world generator's whose events came as numbers too (Source.packedEvents):
   * applied from those, into one event object, without decoding the block, when the engine's
   * codec is the world codec and the engine keeps no event (what decoding into one object
   * would give). The block is committed as it came, complete.
   */
  const fromNumbers = appliesEventNumbers(engine);
  const numbersEvent: WorldEvent = worldEvent(WorldEventKind.join, 0);
  /** The source worker's ring of events as numbers, once its first message has brought it. */
  let eventRing: WorldEventRing | null = null;
  const applyNumbers = (block: EncodedBlock, events: PackedEventsRef): EncodedBlock => {
    if (events.ring !== undefined) eventRing = new WorldEventRing(events.ring, events.slotEvents, MAX_IN_FLIGHT);
    expectNextBlock(block, eventRing !== null && events.count === block.eventCount);
    const fields = eventRing!.fields;
    const timestamps = eventRing!.timestamps;
    const event = numbersEvent;
    const first = events.slot * events.slotEvents;
    const end = first + events.count;
    for (let i = first, at = first * WORLD_EVENT_FIELDS; i < end; i++, at += WORLD_EVENT_FIELDS) {
      event.kind = fields[at] as WorldEventKind;
      event.id = fields[at + 1];
      event.other = fields[at + 2];
      event.zone = fields[at + 3];
      event.x = fields[at + 4];
      event.y = fields[at + 5];
      event.amount = fields[at + 6];
      ctx.prepare(seq, timestamps[i], fields[at + 7]);
      state = engine.apply(state, event as E, ctx);
      seq++;
      if (seq >= nextMultiple) afterApplied();
    }
    return block;
  };

  let stopped = false;
  const onAbort = (): void => {
    stopped = true;
    source.stop();
    pipeline?.stop();
  };
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort);
  /** The worker's batches: blocks to apply and commit, rejects, positions. */
  const readPipeline = async (pipeline: SourcePipeline): Promise<void> => {
    positionNow = () => pipelinePosition;
    for await (const message of pipeline.messages()) {
      if (message.type === 'strict-reject') {
        flush();
        throw new InputError(message.reject, seq);
      }
      if (message.type === 'end') {
        if (message.stopped) stopped = true;
        break;
      }
      const block =
        message.block === null
          ? undefined
          : fromNumbers && message.events != null && isEncoded(message.block)
            ? applyNumbers(message.block, message.events)
            : applyBlock(message.block);
      read = message.read;
      quarantined = message.quarantined;
      if (message.rejects.length > 0) pendingRejects.push(...message.rejects);
      if (message.position !== undefined) pipelinePosition = message.position;
      // A block waits for its commit group; rejects sent on their own are committed now.
      flush(block, block === undefined);
      pipeline.consumed();
      if (performance.now() - lastYieldMs >= YIELD_INTERVAL_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYieldMs = performance.now();
      }
    }
  };

  /** NDJSON segments parsed by workers, in order: number lines and events, apply, build blocks. */
  const readSegments = async (segments: SegmentPipeline, input: string, startLine: number): Promise<void> => {
    positionNow = () => (segmentLine < 0 ? undefined : { byteOffset: segmentByteOffset, line: segmentLine });
    let segmentLineBase = startLine;
    let segmentItems = 0;
    const chunks = segments.chunks()[Symbol.asyncIterator]();
    for (;;) {
      // (A parse worker's failure between lines comes here: a file cut short, a read failed.)
      const next = await nextOrCommit(chunks);
      if (next.done === true) break;
      const chunk = next.value;
      takeChunk(chunk, input, segmentLineBase);
      segmentItems += chunk.items;
      if (chunk.last) {
        segmentLineBase += segmentItems;
        segmentItems = 0;
      }
      segments.consumed(chunk.worker);
      if (segmentLine >= 0) source.textTaken?.(segmentByteOffset);
      if (stopped) {
        // As a for await's return does (the generator holds nothing to let go of today).
        await chunks.return?.(undefined);
        return;
      }
      if (performance.now() - lastYieldMs >= YIELD_INTERVAL_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYieldMs = performance.now();
      }
    }
    // Fed text that failed (damaged gzip data) ended at its last whole line: those lines are
    // taken; they are committed, as a source's error commits what was taken, then it stands.
    await segments.fed();
    if (segments.feedError !== null) {
      flush();
      throw segments.feedError;
    }
  };
  const takeChunk = (chunk: SegmentChunk, input: string, lineBase: number): void => {
    const nextOffsets = chunk.nextOffsets;
    const rejects = chunk.rejects;
    let nextReject = 0;
    const block = chunk.block;
    const bytes = block === null ? null : block.data;
    if (block !== null) cursor.reset(block, block.data);
    for (let i = 0; i < chunk.items; i++) {
      if (nextReject < rejects.length && rejects[nextReject].index === i) {
        const r = rejects[nextReject++];
        const line = lineBase + r.line;
        const position = { input, line, byteOffset: r.byteOffset };
        if (!options.quarantine) {
          flush();
          throw new InputError({ reject: true, position, where: `${input} line ${line} (byte ${r.byteOffset})`, reasonCode: r.reasonCode, reason: r.reason, raw: r.raw, rawLength: r.rawLength }, seq);
        }
        read++;
        quarantined++;
        pendingRejects.push({ nextSeq: seq, position, reasonCode: r.reasonCode, reason: r.reason, rawLength: r.rawLength, raw: r.raw });
        pendingRejectBytes += r.raw?.length ?? 0;
        segmentByteOffset = nextOffsets[i];
        segmentLine = line;
        if (rejectsFull(pendingRejects.length, pendingRejectBytes)) flush();
        continue;
      }
      if (!cursor.next()) throw new Error(`recorder: a chunk of segment ${chunk.segment} holds fewer events than inputs`);
      const payloadOffset = cursor.payloadOffset;
      const payloadLength = cursor.payloadLength;
      const event = decode(bytes!, payloadOffset, payloadLength);
      const line = lineBase + cursor.position;
      ctx.prepare(seq, cursor.timestampUs, cursor.partition);
      state = engine.apply(state, event, ctx);
      builder.addFromCursor(seq, cursor, line);
      read++;
      seq++;
      if (seq >= nextMultiple) afterApplied();
      segmentByteOffset = nextOffsets[i];
      segmentLine = line;
      if (builder.full(blockEvents)) flush(undefined, false);
    }
  };

  /** One input: a reject (strict: stop here; quarantine: keep it) or an event to apply and store. */
  const takeItem = (item: SourceItem<E>): void => {
    if (isReject(item)) {
      if (!options.quarantine) {
        // Commit everything before the bad input, then stop: the tape resumes right here.
        flush();
        throw new InputError(item, seq);
      }
      read++;
      quarantined++;
      pendingRejects.push({ nextSeq: seq, position: item.position, reasonCode: item.reasonCode, reason: item.reason, rawLength: item.rawLength, raw: item.raw });
      pendingRejectBytes += item.raw?.length ?? 0;
      lastItem = item;
      if (rejectsFull(pendingRejects.length, pendingRejectBytes)) flush();
      return;
    }
    ctx.prepare(seq, item.timestampUs, item.partition);
    state = engine.apply(state, item.event, ctx);
    options.onApplied?.(item);
    builder.add(seq, item);
    lastItem = item;
    read++;
    seq++;
    if (seq >= nextMultiple) afterApplied();
    if (builder.full(blockEvents)) flush(undefined, false);
  };

  /**
   * A live source's input is committed within LIVE_COMMIT_INTERVAL_MS of being read even when
   * nothing follows it (a producer that goes quiet): what stdin gave is on disk before a crash
   * can take it, and a Kafka capture's tape and group show what was read. The timer runs only
   * while the reading loop waits (for input, or for a turn of the event loop), when everything
   * taken is consistent. A commit that fails there calls `stop`, and the loop, seeing
   * `failure()`, throws its error.
   */
  const idleCommits = (stop: () => void): { failure(): { error: unknown } | null; end(): void } => {
    let failure: { error: unknown } | null = null;
    const timer = setInterval(() => {
      if (failure !== null || !liveCommitDue()) return;
      try {
        flush();
      } catch (error) {
        failure = { error };
        stop();
      }
    }, LIVE_COMMIT_INTERVAL_MS);
    return { failure: () => failure, end: () => clearInterval(timer) };
  };

  /** The source's items, read on this thread. */
  const readItems = async (): Promise<void> => {
    const idle = source.live ? idleCommits(() => source.stop()) : null;
    const batches = source.batches()[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await nextOrCommit(batches, () => (idle?.failure() ?? null) === null);
        if (next.done === true) break;
        const batch = next.value;
        if ((idle?.failure() ?? null) !== null) break;
        for (let i = 0; i < batch.length; i++) takeItem(batch[i]);
        if (source.live && liveCommitDue()) flush();
        if (options.betweenBatches !== undefined) await options.betweenBatches();
        // A source that never waits on I/O (a generator, a cached file) would keep the event
        // loop from ever running signal handlers; give it a turn now and then.
        if (performance.now() - lastYieldMs >= YIELD_INTERVAL_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          lastYieldMs = performance.now();
        }
      }
    } finally {
      idle?.end();
      // As for await does on a break or a throw: the source lets go of what it reads (a
      // generator that has ended, or failed, has nothing to let go of). An error there is
      // dropped, so as not to hide the one that ended the loop.
      await batches.return?.().catch(() => undefined);
    }
    const failure = idle?.failure() ?? null;
    if (failure !== null) throw failure.error;
  };

  /**
   * Kafka records from the reader thread: converted (the engine codec's bytes: decode, apply and
   * copy each, as for NDJSON segments), or raw (convert each with the source, then as above).
   */
  const readKafka = async (kafka: KafkaPipeline): Promise<void> => {
    const raw = source as unknown as RawRecordSource<E>;
    const fastCodec = raw.fastCodec();
    let taken = false;
    positionNow = () => (taken ? raw.startPositions() : undefined);
    /**
     * takeItem for a record or reject read on the reader thread. The position moves past it
     * first, so that a commit inside takeItem (a full block, many rejects) stores the position
     * after it with it; except for a reject in strict mode, whose stop commits the positions
     * before it.
     */
    const takeKafkaItem = (item: SourceItem<E>): void => {
      if (!isReject(item) || options.quarantine) {
        raw.taken(item);
        taken = true;
      }
      takeItem(item);
    };
    // Records the reader sent before Kafka went quiet are committed within
    // LIVE_COMMIT_INTERVAL_MS, as on one thread: no chunk may follow them for a long while.
    const idle = idleCommits(() => kafka.stop());
    try {
      for await (const message of kafka.messages()) {
        if (message.type === 'end') {
          if (message.stopped) stopped = true;
          kafkaReader = message.reader;
          break;
        }
        if (idle.failure() !== null) break;
        const rejects = message.rejects;
        let nextReject = 0;
        const block = message.block;
        if (block !== null) cursor.reset(block, block.data);
        const chunkBytes = block === null ? null : Buffer.from(block.data.buffer, block.data.byteOffset, block.data.byteLength);
        for (let i = 0; i < message.items; i++) {
          if (nextReject < rejects.length && rejects[nextReject].index === i) {
            takeKafkaItem(rejects[nextReject++].reject);
            continue;
          }
          if (!cursor.next()) throw new Error('recorder: a Kafka chunk holds fewer records than inputs');
          let event: E;
          if (message.converted) {
            event = decode(block!.data, cursor.payloadOffset, cursor.payloadLength);
          } else if (fastCodec !== null && cursor.stream === 0 && cursor.headersOffset < 0) {
            // A JSON value converted and written into the block without a view or copy of it.
            const fast = raw.fastEvent(raw.topicOf(0), cursor.partition, cursor.position, chunkBytes!, cursor.payloadOffset, cursor.payloadOffset + cursor.payloadLength);
            if (fast === REJECTED) {
              takeKafkaItem(raw.lastReject!);
              continue;
            }
            event = fast;
          } else {
            takeKafkaItem(raw.convert(raw.topicOf(cursor.stream), cursor.partition, cursor.position, cursor.timestampUs, cursor.key(), cursor.headers(), cursor.payload()));
            continue;
          }
          // A converted chunk's bytes are copied as they are; a value converted here is written by the codec.
          ctx.prepare(seq, cursor.timestampUs, cursor.partition);
          state = engine.apply(state, event, ctx);
          if (message.converted) builder.addFromCursor(seq, cursor, cursor.position);
          else builder.addEncodedParts(seq, cursor.timestampUs, cursor.partition, cursor.position, cursor.keyOffset < 0 ? null : chunkBytes, cursor.keyOffset, cursor.keyLength, fastCodec!, event);
          raw.takenRecord(cursor.stream, cursor.partition, cursor.position);
          taken = true;
          read++;
          seq++;
          if (seq >= nextMultiple) afterApplied();
          if (builder.full(blockEvents)) flush(undefined, false);
        }
        if (liveCommitDue()) flush();
        kafka.consumed();
        if (performance.now() - lastYieldMs >= YIELD_INTERVAL_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          lastYieldMs = performance.now();
        }
      }
    } finally {
      idle.end();
    }
    const failure = idle.failure();
    if (failure !== null) throw failure.error;
  };

  let kafkaReader: KafkaReaderReport | undefined;
  let abandonedThread: string | undefined;
  let completed = false;
  let leftWal = true;
  let discardTape = false;
  /** When the tape was closed: the recording's time ends there (a reader thread's Kafka consumer leaves its group after it, as a one-thread source's does after recordTape). */
  let closedMs = 0;
  try {
    pipeline = generated ? early : startPipeline(source, options, plan, pipelineStart);
    // Stopped before the readers started (an abort signal already fired): they stop at once.
    if (stopped) pipeline?.stop();
    if (pipeline instanceof KafkaPipeline) await readKafka(pipeline);
    else if (pipeline instanceof SourcePipeline) await readPipeline(pipeline);
    else if (pipeline instanceof SegmentPipeline) await readSegments(pipeline, pipeline.input, pipeline.startLine);
    else await readItems();
    const stuck = pipeline?.stuckThread() ?? null;
    if (stuck !== null) {
      stopped = true;
      abandonedThread = stuck.what;
      options.onWarning?.(
        `${stuck.what} sent nothing for ${stuck.quietMs / 1000} s after the stop, so it was ended (is the engine's code stuck on a thread of its own: a codec or generate() hook that does not return?); ` +
          `the tape holds the ${seq.toLocaleString('en-US')} events taken before it`,
      );
    }
    // The final state is always checkpointed, so a replay verifies the end of the tape too.
    // (Only when this run added events: a resumed tape already has its end checkpointed.)
    if (seq > startSeq && seq % checkpointEvery !== 0) pendingCheckpoints.push({ nextSeq: seq, digest: digestNow(), nowUs: ctx.nowUs });
    flush();
    completed = true;
  } catch (error) {
    // Stdin or a pipe refused as compressed at its first bytes: the tape made for it holds
    // nothing and cannot be resumed from anything, so it goes, as no tape is made for a
    // compressed file.
    discardTape = resume === undefined && ((read === 0 && error instanceof TapedeckError && error.code === 'E_INPUT_COMPRESSED') || options.discardOnFailure === true);
    throw error;
  } finally {
    // Whatever happened, the tape is closed and the reader threads are ended (a thread left
    // waiting would keep the process alive). When the run failed, its error is the one that
    // stands: closing after a failed write (a full disk) fails too, and leaves the tape as
    // the last commit left it.
    try {
      leftWal = writer.close();
    } catch (error) {
      if (completed) throw writeFailed(error);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      closedMs = performance.now();
      await pipeline?.close();
      if (discardTape) TapeWriter.discard(options.path);
    }
  }
  const accepted = seq;
  if (accepted + quarantined !== read) {
    throw new Error(`recorder accounting broken: ${accepted} accepted + ${quarantined} quarantined != ${read} read`);
  }
  const elapsedMs = closedMs - startedMs;
  const eventsThisRun = seq - startSeq;
  return {
    path: options.path,
    events: seq,
    eventsThisRun,
    read,
    accepted,
    quarantined,
    blocks: blockNo,
    checkpoints: checkpointCount,
    snapshots: snapshotCount,
    finalDigest: engine.digest(state),
    updatesEmitted: ctx.emitted,
    elapsedMs,
    eventsPerSec: elapsedMs > 0 ? (eventsThisRun * 1000) / elapsedMs : 0,
    resumed: resume !== undefined,
    stopped,
    pipelined: pipeline !== null,
    inWalMode: !leftWal,
    ...(kafkaReader === undefined ? {} : { kafkaReader }),
    ...(abandonedThread === undefined ? {} : { abandonedThread }),
  };
}

/** Whether this run may read its source on other threads at all (see RecordOptions.pipeline). */
function pipelineAllowed<S, E>(options: RecordOptions<S, E>): boolean {
  return options.pipeline !== 'off' && options.updateSink === undefined && options.onApplied === undefined && options.betweenBatches === undefined;
}

/** The engine as another thread can load it: --engine's spec, or a built-in engine's name; undefined when neither. */
function engineSpecOf<S, E>(options: RecordOptions<S, E>): string | undefined {
  const engine = options.engine;
  return options.engineSpec ?? ((builtInEngine(engine.name) as unknown) === engine ? engine.name : undefined);
}

/** The source worker for `plan` (the source's workerSpec, null when it has none or the run may not have threads), when this run should and can have one (see RecordOptions.pipeline). */
function startPipeline<S, E>(
  source: Source<E>,
  options: RecordOptions<S, E>,
  plan: { readonly spec: SourceSpec; readonly large: boolean } | null,
  start: { startSeq: number; firstBlockNo: number; blockEvents: number; read: number; quarantined: number },
): SourcePipeline | SegmentPipeline | KafkaPipeline | null {
  const mode = options.pipeline ?? 'auto';
  if (plan === null || (mode === 'auto' && !plan.large)) return null;
  const spec = plan.spec;
  const engineSpec = engineSpecOf(options);
  if (spec.kind === 'kafka') {
    const url = kafkaWorkerUrl();
    if (url === null) return null;
    const raw = source as unknown as RawRecordSource<E>;
    return new KafkaPipeline(url, spec.options, engineSpec, (message) => raw.warn(message));
  }
  if (source.live) return null;
  if (engineSpec === undefined) return null;
  if (spec.kind === 'ndjson' || spec.kind === 'ndjson-text') {
    const url = segmentWorkerUrl();
    if (url === null) return null;
    const from = spec.from as { byteOffset: number; line: number };
    const segmentBytes = positiveInteger('segmentBytes', options.segmentBytes ?? SEGMENT_BYTES);
    const fd = spec.kind === 'ndjson' ? spec.fd : null;
    const sizeAtOpen = spec.kind === 'ndjson' ? spec.sizeAtOpen : 0;
    const segments = new SegmentPipeline(url, { input: spec.input, fd, sizeAtOpen, engineSpec, from, maxLineBytes: spec.maxLineBytes, keepRaw: spec.keepRaw, redaction: spec.redaction, segmentBytes });
    if (fd === null) segments.feed(source.text!(), from.byteOffset, segmentBytes);
    return segments;
  }
  const url = sourceWorkerUrl();
  if (url === null) return null;
  return new SourcePipeline(url, { spec: plan.spec, engineSpec, quarantine: options.quarantine === true, eventsAsNumbers: appliesEventNumbers(options.engine), ...start });
}

/**
 * Whether the main thread applies a world generator's events from the numbers the source
 * worker hands over (see WorldEventRing) instead of decoding its blocks: for an engine whose
 * codec is the world codec and that keeps no event (decoding would fill one object too).
 */
function appliesEventNumbers(engine: Engine<unknown, unknown>): boolean {
  return engine.codec === (worldCodec as unknown) && engine.transientEvents === true;
}
