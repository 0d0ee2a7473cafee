// Recording on two threads. A source that can describe itself as plain data
// (Source.workerSpec) is read on a worker thread (source-worker.ts), which parses and encodes
// its events into blocks (PackedBlock: without the position index and checksum); the main
// thread decodes each block with the engine's codec, applies its events for the live
// checkpoints, completes the block (completeBlock) and commits it. Reading and parsing (JSON
// lines, the generator) then run beside the engine and SQLite instead of before them.
//
// The worker numbers blocks and rejects from where the tape ends, builds them with the same
// BlockBuilder, and sends with each block the source position after its last input, so a
// commit holds exactly what it would on one thread: the tape is byte for byte the same.
// Flow control: the worker stays at most MAX_IN_FLIGHT batches, and MAX_BYTES_IN_FLIGHT of
// them, ahead (a counter in shared memory that the main thread advances), so memory stays
// bounded whatever the speeds.

import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { type AbandonedWorker, compiledWorkerUrl, firstAbandoned, GAVE_UP, SMALL_HEAP_LIMITS, STOPPED_QUIET_MS, waitAsync, within, WorkerInbox, WorkerKeeper } from '../tape/threads.js';
import { TapedeckError } from '../engine/errors.js';
import { BLOCK_MAX_BYTES, type EventHeader, type PackedBlock, type PayloadWriter } from '../tape/block.js';
import type { EventCodec } from '../engine/types.js';
import type { RejectRecord } from '../tape/schema.js';
import type { REJECTED, SourceItem, SourceReject, SourceSpec } from './source.js';
import type { SourceJob } from './source-worker.js';
import type { KafkaJob, KafkaPreload } from './kafka-worker.js';
import { FINAL_COMMIT_WAIT_MS, LEAVE_WAIT_MS } from './kafka-options.js';
import type { RedactionParts } from './redact.js';

/**
 * Batches the worker may be ahead of the main thread, and the bytes they may hold (blocks and
 * the raw bytes of rejects): room for a busy stretch of either thread (a snapshot or a commit on
 * the main one) without the other waiting, and, at startup, for the generator to keep going
 * while the tape is made. A batch holds at most a block of 4 MiB and 4 MiB of rejects, so
 * memory ahead stays under 24 MiB; 32 blocks of world events are about 3 MiB. (Before, 8 batches
 * and no bound on bytes: up to 64 MiB. In runs alternating the two builds in one process, 40
 * each, 1M-event recordings took a median 330 and 353 ms with 32 batches, 355 and 355 with 8.)
 */
export const MAX_IN_FLIGHT = 32;
export const MAX_BYTES_IN_FLIGHT = 16 << 20;
/**
 * Rejects waiting for a commit (the main thread's recorder) or to be sent (a worker): past this
 * many, or this many bytes of raw input (rejected lines of up to --max-line-bytes each), they
 * go on without waiting for a block, so that memory stays bounded however bad the input.
 */
export const MAX_PENDING_REJECTS = 1024;
export const MAX_PENDING_REJECT_BYTES = 4 << 20;

/** Whether `count` rejects holding `bytes` of raw input are to go on now (see MAX_PENDING_REJECTS). */
export const rejectsFull = (count: number, bytes: number): boolean => count >= MAX_PENDING_REJECTS || bytes >= MAX_PENDING_REJECT_BYTES;
/**
 * Whether a reader thread's chunk (parse workers, the Kafka reader) is to be sent: `items` of
 * at most `maxItems` inputs, or its block's `blockBytes` at BLOCK_MAX_BYTES, or its rejects'
 * `rejectBytes` of raw input at MAX_PENDING_REJECT_BYTES (its count is bounded by `maxItems`).
 */
export const chunkFull = (items: number, maxItems: number, blockBytes: number, rejectBytes: number): boolean =>
  items >= maxItems || blockBytes >= BLOCK_MAX_BYTES || rejectBytes >= MAX_PENDING_REJECT_BYTES;
/** Control words in shared memory: batches the main thread has committed; and a stop request. */
export const CONTROL_CONSUMED = 0;
export const CONTROL_STOP = 1;

export interface PipelineTask {
  readonly spec: SourceSpec;
  /** --engine: a built-in name or a module path; the worker loads it for its codec. */
  readonly engineSpec: string;
  readonly startSeq: number;
  readonly firstBlockNo: number;
  readonly blockEvents: number;
  readonly quarantine: boolean;
  /** The main thread applies the events a source gives as numbers (Source.packedEvents), so the worker is to hand them over. */
  readonly eventsAsNumbers: boolean;
  /** Inputs read and quarantined before this run (a resumed tape's). */
  readonly read: number;
  readonly quarantined: number;
  readonly control: SharedArrayBuffer;
}

export type PipelineMessage =
  | {
      readonly type: 'batch';
      readonly block: PackedBlock | null;
      readonly rejects: readonly RejectRecord[];
      /** Inputs read and quarantined in all, after this batch. */
      readonly read: number;
      readonly quarantined: number;
      /** Where the source resumes after this batch's last input (undefined: nothing read yet). */
      readonly position: unknown;
      /**
       * The block's events as numbers, when the source gives them (Source.packedEvents: the
       * world generator's): in slot `slot` of the ring, which the first such message carries.
       */
      readonly events?: PackedEventsRef | null;
    }
  | { readonly type: 'strict-reject'; readonly reject: SourceReject }
  | { readonly type: 'end'; readonly stopped: boolean };

/** Where a block's events are as numbers (see WorldEventRing). */
export interface PackedEventsRef {
  /** The ring's memory, in the first message that uses it. */
  readonly ring?: SharedArrayBuffer;
  readonly slotEvents: number;
  readonly slot: number;
  readonly count: number;
}

/** The largest block whose events the source worker hands over as numbers: its ring then holds MAX_IN_FLIGHT slots of 40 bytes an event (20 MiB at most). */
export const RING_MAX_SLOT_EVENTS = 16_384;

/** The compiled source worker (see compiledWorkerUrl). */
export const sourceWorkerUrl = (): URL | null => compiledWorkerUrl(import.meta.url, 'recorder/source-worker.js');

/**
 * The source worker between recordings: kept, so that a process's later recordings (a library
 * user's, the benchmark's) skip the thread's start (module loading, ~60-70 ms here) and find
 * its code already compiled. A worker that ended a job in any other way than by finishing it
 * is not kept.
 */
let sourceWorkers: WorkerKeeper | null = null;

/** The thread id of the source worker kept for the next recording, or null (for tests). */
export function keptSourceWorker(): number | null {
  return sourceWorkers?.keptThreadId ?? null;
}

/** The keeper of the source worker threads, made on first use. */
function sourceKeeper(url: URL): WorkerKeeper {
  return (sourceWorkers ??= new WorkerKeeper(() => new Worker(url, { resourceLimits: SMALL_HEAP_LIMITS })));
}

/**
 * Start a source worker now (unless one is kept), to be taken by the recording that follows:
 * the CLI calls it before it loads its commands, so that the thread's start (an isolate and its
 * modules, about 100 ms here) runs beside that loading instead of after it. Unused, it stays
 * idle and unreferenced like a kept one; false when the compiled worker is not there.
 */
export function prestartSourceWorker(): boolean {
  const url = sourceWorkerUrl();
  if (url === null) return false;
  const keeper = sourceKeeper(url);
  if (keeper.keptThreadId === null) {
    const worker = keeper.take();
    // A thread that fails while it waits (it could not load its modules) ends, and the keeper
    // lets it go: the recording then starts its own, whose failure it reports.
    worker.on('error', () => undefined);
    keeper.keep(worker);
  }
  return true;
}

/** End the kept source worker, if any: the next recording starts its own (for tests). */
export async function endKeptSourceWorker(): Promise<void> {
  await sourceWorkers?.end();
}

export class SourcePipeline {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly control: Int32Array;
  private readonly inbox: WorkerInbox<PipelineMessage>;
  /** The worker sent its last message for this job ('end' or 'strict-reject'). */
  private finished = false;

  constructor(url: URL, task: Omit<PipelineTask, 'control'>) {
    const control = new SharedArrayBuffer(8);
    this.control = new Int32Array(control);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = sourceKeeper(url).take();
    this.inbox = new WorkerInbox(this.worker, 'the source worker', undefined, port1);
    this.worker.postMessage({ task: { ...task, control } satisfies PipelineTask, port: port2 } satisfies SourceJob, [port2]);
  }

  /**
   * The worker's messages in order, up to and including 'end' or 'strict-reject' (failures are
   * thrown); after a stop, up to the last message before the worker went quiet (stuckThread()).
   */
  async *messages(): AsyncGenerator<PipelineMessage> {
    for (;;) {
      const message = await this.inbox.nextOrGaveUp();
      if (message === GAVE_UP) return;
      const last = message.type === 'end' || message.type === 'strict-reject';
      if (last) {
        this.finished = true;
        this.inbox.done();
      }
      yield message;
      if (last) return;
    }
  }

  /** The main thread committed a batch: the worker may send one more. */
  consumed(): void {
    Atomics.add(this.control, CONTROL_CONSUMED, 1);
    Atomics.notify(this.control, CONTROL_CONSUMED);
  }

  /** Asked to stop, the worker went quiet for STOPPED_QUIET_MS: messages() ended without its 'end'. The thread's name and that time; else null. */
  stuckThread(): AbandonedWorker | null {
    return this.inbox.abandoned;
  }

  /** Ask the source to end after its current batch; what it read still arrives (unless the worker is stuck: see messages()). */
  stop(): void {
    Atomics.store(this.control, CONTROL_STOP, 1);
    Atomics.notify(this.control, CONTROL_CONSUMED);
    this.inbox.giveUpAfterQuiet(STOPPED_QUIET_MS);
  }

  /** Keep the worker for the next recording if it finished this one; end it otherwise. */
  async close(): Promise<void> {
    this.inbox.done();
    this.port.close();
    if (this.finished) {
      sourceWorkers!.keep(this.worker);
      return;
    }
    // Unblock a worker waiting for room, so that it can be ended.
    this.stop();
    await this.worker.terminate();
  }
}

// ---------------------------------------------------------------------------------------------
// NDJSON files: parsing is most of the work (JSON.parse alone is most of a line's cost), so the
// file is cut into segments parsed by several workers side by side (segment-worker.ts); the
// main thread takes the segments in order, numbers lines and events, applies and builds the
// blocks. The tape is the same as one thread's.
//
// Text that can only be read in order (a gzip file, which zlib decompresses from its start) is
// read on the main thread instead and fed to the workers (feed): each segment's text goes to
// its worker as it comes, and a segment ends after the first newline past SEGMENT_BYTES. A
// worker takes at most TEXT_IN_FLIGHT messages ahead of what it has parsed.

/** Bytes of a segment; a worker may run SEGMENT_IN_FLIGHT chunks (a segment and more) ahead of the main thread. */
export const SEGMENT_BYTES = 2 << 20;
export const SEGMENT_CHUNK_ITEMS = 4096;
export const SEGMENT_IN_FLIGHT = 16;
/**
 * A parse worker also waits while its untaken chunks hold this many bytes (events, rejected
 * lines' raw bytes, offsets; SendWindow): a chunk of 4,096 short lines holds about half a MiB,
 * one of rejected lines of a MiB each up to 4 MiB, and 16 of those per worker held 128 MiB.
 */
export const SEGMENT_IN_FLIGHT_BYTES = 8 << 20;
/** Parse workers: on this project's two-core machines two, beside the main thread's lighter work. */
export const SEGMENT_WORKERS = 2;
/** Control words: one per worker (chunks the main thread consumed from it), then the stop request, then one per worker (text messages it took: fed text). */
export const CONTROL_STOP_SEGMENTS = (workers: number): number => workers;
export const CONTROL_TEXT_TAKEN = (workers: number, worker: number): number => workers + 1 + worker;
/** Text messages (of at most 64 KiB) a worker may have waiting. */
export const TEXT_IN_FLIGHT = 32;

export interface SegmentTask {
  readonly input: string;
  /** The main thread's open descriptor of `input` (NdjsonSource's): every worker reads the file through it; or null: the text is fed (SegmentText messages). */
  readonly fd: number | null;
  /** With `fd`: the file's size when the recording opened it (an end found before it is E_INPUT_TRUNCATED); else 0. */
  readonly sizeAtOpen: number;
  readonly engineSpec: string;
  /** Where the recording starts: the first segment starts here. */
  readonly from: { readonly byteOffset: number; readonly line: number };
  readonly maxLineBytes: number;
  readonly keepRaw: boolean;
  readonly redaction: RedactionParts | null;
  /** Bytes per segment (SEGMENT_BYTES; tests use small ones to cross many boundaries). */
  readonly segmentBytes: number;
  readonly worker: number;
  readonly workers: number;
  readonly control: SharedArrayBuffer;
}

export interface SegmentReject {
  /** Index among the chunk's inputs. */
  readonly index: number;
  /** Line number within the segment (1 for its first line). */
  readonly line: number;
  readonly byteOffset: number;
  readonly reasonCode: string;
  readonly reason: string;
  readonly raw: Uint8Array | null;
  readonly rawLength: number;
}

export interface SegmentChunk {
  readonly type: 'chunk';
  readonly worker: number;
  readonly segment: number;
  /** The accepted inputs, in order: sequence numbers from 0, positions = line numbers within the segment. */
  readonly block: PackedBlock | null;
  /** The byte offset after each input (accepted or rejected), in order. */
  readonly nextOffsets: Float64Array;
  readonly rejects: readonly SegmentReject[];
  /** Inputs (lines) in this chunk. */
  readonly items: number;
  /** The segment's last chunk. */
  readonly last: boolean;
}

export type SegmentMessage = SegmentChunk | { readonly type: 'end'; readonly worker: number; readonly segment: number };

/**
 * Fed text, to the worker of `segment`: its bytes in order ('text', the first saying where the
 * segment starts in the text); then 'end', with `until` when the text stopped short (a stop, an
 * error: the unfinished line from there is not a line); or 'none', when there is no such segment.
 */
export type SegmentText =
  | { readonly type: 'text'; readonly segment: number; readonly start: number; readonly bytes: Uint8Array }
  | { readonly type: 'end'; readonly segment: number; readonly until: number | null }
  | { readonly type: 'none'; readonly segment: number };

/** The compiled segment worker (see compiledWorkerUrl). */
export const segmentWorkerUrl = (): URL | null => compiledWorkerUrl(import.meta.url, 'recorder/segment-worker.js');

export class SegmentPipeline {
  private readonly workers: Worker[];
  private readonly control: Int32Array;
  private readonly inboxes: WorkerInbox<SegmentMessage>[];
  /** The file, as named in reject positions; and the line number before the first segment. */
  readonly input: string;
  readonly startLine: number;

  /** With fed text: the feeding (see feed), and its error (the text's reader failed: damaged gzip data). */
  private feeding: Promise<void> | null = null;
  feedError: unknown = null;

  constructor(url: URL, task: Omit<SegmentTask, 'control' | 'worker' | 'workers'>, count = SEGMENT_WORKERS) {
    this.input = task.input;
    this.startLine = task.from.line;
    const control = new SharedArrayBuffer(4 * (2 * count + 1));
    this.control = new Int32Array(control);
    this.workers = Array.from({ length: count }, (_, worker) => new Worker(url, { workerData: { ...task, worker, workers: count, control } satisfies SegmentTask }));
    this.inboxes = this.workers.map((w, i) => new WorkerInbox<SegmentMessage>(w, `NDJSON parse worker ${i}`));
  }

  /** The chunks of every segment, segment after segment, until the end of the file. */
  async *chunks(): AsyncGenerator<SegmentChunk> {
    const count = this.workers.length;
    for (let segment = 0; ; segment++) {
      const inbox = this.inboxes[segment % count];
      for (;;) {
        const message = await inbox.nextOrGaveUp();
        if (message === GAVE_UP) return;
        if (message.type === 'end') {
          inbox.done();
          return;
        }
        if (message.segment !== segment) throw new Error(`NDJSON parse workers out of step: segment ${message.segment} arrived for ${segment}`);
        yield message;
        if (message.last) break;
      }
    }
  }

  /** Asked to stop, the worker whose chunk was due went quiet for STOPPED_QUIET_MS: chunks() ended there. That worker's name and the time; else null. */
  stuckThread(): AbandonedWorker | null {
    return firstAbandoned(this.inboxes);
  }

  /** The main thread is done with a chunk from `worker`: it may send one more. */
  consumed(worker: number): void {
    Atomics.add(this.control, worker, 1);
    Atomics.notify(this.control, worker);
  }

  /** Ask the workers to start no new segment (the main thread stops taking chunks), and the feeding to end. */
  stop(): void {
    const count = this.workers.length;
    Atomics.store(this.control, CONTROL_STOP_SEGMENTS(count), 1);
    for (let i = 0; i < count; i++) {
      Atomics.notify(this.control, i);
      Atomics.notify(this.control, CONTROL_TEXT_TAKEN(count, i));
    }
    for (const inbox of this.inboxes) inbox.giveUpAfterQuiet(STOPPED_QUIET_MS);
  }

  /**
   * Feed `text`, which starts at `start` in the input, to the workers: segment k to worker
   * k mod count, each ending after the first newline at or past `segmentBytes` of it. Runs
   * beside the main thread's taking of chunks (it waits on the workers, never on that). A
   * failure of the text (damaged gzip data) ends the segment at its last newline, as a stop
   * does, and is kept in feedError for the recorder to raise once it has taken every line
   * before it.
   */
  feed(text: AsyncIterable<Uint8Array>, start: number, segmentBytes: number): void {
    this.feeding = this.feedText(text, start, segmentBytes).catch((error: unknown) => {
      this.feedError = error;
    });
  }

  private async feedText(text: AsyncIterable<Uint8Array>, start: number, segmentBytes: number): Promise<void> {
    const count = this.workers.length;
    const control = this.control;
    const stopIndex = CONTROL_STOP_SEGMENTS(count);
    const sent = new Array<number>(count).fill(0);
    let segment = 0;
    let offset = start;
    let segmentStart = start;
    /** Bytes of the current segment sent, and the offset after its last newline (segmentStart when none yet). */
    let segmentSent = 0;
    let lineEnd = start;
    const post = (message: SegmentText, transfer: ArrayBuffer[] = []): void => this.workers[message.segment % count].postMessage(message, transfer);
    const send = async (bytes: Uint8Array): Promise<void> => {
      const worker = segment % count;
      const taken = CONTROL_TEXT_TAKEN(count, worker);
      for (;;) {
        const now = Atomics.load(control, taken);
        if (sent[worker] - now < TEXT_IN_FLIGHT || Atomics.load(control, stopIndex) !== 0) break;
        const wait = waitAsync(control, taken, now, 1000);
        if (wait.async) await wait.value;
      }
      // A copy: the text's chunks stay its reader's (it keeps them for the positions' checksums).
      const copy = new Uint8Array(bytes);
      post({ type: 'text', segment, start: segmentStart, bytes: copy }, [copy.buffer as ArrayBuffer]);
      sent[worker]++;
      offset += bytes.length;
      segmentSent += bytes.length;
      const newline = bytes.lastIndexOf(10);
      if (newline >= 0) lineEnd = offset - bytes.length + newline + 1;
    };
    const next = (): void => {
      segment++;
      segmentStart = offset;
      segmentSent = 0;
      lineEnd = offset;
    };
    /** The end of the text: the segment being fed ends (cut short at its last newline: `short`), and the next has nothing. */
    const finish = (short: boolean): void => {
      if (segmentSent > 0 || segment === 0) post({ type: 'end', segment, until: short ? lineEnd : null });
      else segment--;
      post({ type: 'none', segment: segment + 1 });
    };
    try {
      for await (const chunk of text) {
        if (Atomics.load(control, stopIndex) !== 0) {
          finish(true);
          return;
        }
        let piece = chunk;
        while (piece.length > 0) {
          const room = segmentBytes - segmentSent;
          const newline = room > piece.length ? -1 : piece.indexOf(10, Math.max(0, room - 1));
          if (newline < 0) {
            await send(piece);
            break;
          }
          await send(piece.subarray(0, newline + 1));
          post({ type: 'end', segment, until: null });
          next();
          piece = piece.subarray(newline + 1);
        }
      }
    } catch (error) {
      finish(true);
      throw error;
    }
    finish(false);
  }

  async close(): Promise<void> {
    for (const inbox of this.inboxes) inbox.done();
    this.stop();
    await this.feeding;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** With fed text: wait until the feeding has ended (the text's reader is done with its file). */
  async fed(): Promise<void> {
    await this.feeding;
  }
}

// ---------------------------------------------------------------------------------------------
// Kafka: the consumer runs on a reader thread (kafka-worker.ts), which fetches and decodes the
// record batches (with the fast decoder of sources/kafka-decode.ts) and hands the records over
// packed in the block format, with the rejects, a chunk at a time. Each value must be checked
// and converted into the engine codec's bytes (KafkaSource.fastEvent, or convert): the reader
// does it for a chunk when the main thread is behind ('converted' chunks), else the main
// thread does. The main thread applies and writes the records and keeps the positions; after
// each commit it passes the position to the reader, which commits it to a shared group. An
// engine that cannot be loaded on another thread (an object given to recordTape without a
// spec) or redaction rules that cannot be copied leave every value to the main thread. The
// reader waits without blocking its event loop (the client must keep its heartbeats going).

/** What the recorder needs of a source whose records come raw from the reader thread (KafkaSource). */
export interface RawRecordSource<E> {
  convert(topic: string, partition: number, offset: number, timestampUs: number, key: Uint8Array | null, headers: readonly EventHeader[] | undefined, raw: Uint8Array): SourceItem<E>;
  /** The codec when values can take the fast path (KafkaSource.fastEvent), else null. */
  fastCodec(): (EventCodec<E> & PayloadWriter<E>) | null;
  fastEvent(topic: string, partition: number, offset: number, bytes: Buffer, start: number, end: number): E | typeof REJECTED;
  /** The reject of the last fastEvent() that returned REJECTED. */
  readonly lastReject: SourceReject | null;
  /** The recorder took the item: later positions include it. */
  taken(item: SourceItem<E>): void;
  /** The same for a record of a converted chunk, by where it was read. */
  takenRecord(stream: number, partition: number, offset: number): void;
  /** The position after every input taken. */
  startPositions(): unknown;
  topicOf(stream: number): string;
  warn(message: string): void;
}

export const KAFKA_CHUNK_ITEMS = 4096;
/** Chunks the Kafka reader may be ahead of the main thread: enough to keep the main thread busy while the reader decodes a fetch. */
export const KAFKA_IN_FLIGHT = 32;
/**
 * ... and the bytes those chunks may hold (SendWindow): 32 chunks of small records hold about
 * 16 MiB; of large records (a chunk ends at 4 MiB of block data) they held 128 MiB.
 */
export const KAFKA_IN_FLIGHT_BYTES = 32 << 20;

export interface KafkaTask {
  /** KafkaSource options as plain data (KafkaSource.workerSpec). */
  readonly options: Record<string, unknown>;
  /** --engine, a built-in name or a module path: the reader converts values with its codec; undefined: it hands them over raw. */
  readonly engineSpec: string | undefined;
  readonly convert: KafkaConvert;
  readonly control: SharedArrayBuffer;
}

export interface KafkaChunk {
  readonly type: 'chunk';
  /**
   * The records, in order: sequence numbers from 0, stream = topic index, position = offset,
   * payload = the engine codec's bytes (converted) or the raw value.
   */
  readonly block: PackedBlock | null;
  /** Records the reader turned into rejects (converted: every kind; raw: null values), with their index among the chunk's inputs. */
  readonly rejects: readonly { readonly index: number; readonly reject: SourceReject }[];
  readonly items: number;
  readonly converted: boolean;
}

/** What the Kafka reader thread did: which record-batch decoder ran (sources/kafka-decode.ts), and which thread converted values. */
export interface KafkaReaderReport {
  /** 'fast', or why kafkajs's own decoder was used. */
  readonly decoder: string;
  /** Record batches the fast decoder decoded, and those it handed to kafkajs's (compressed, control, ...). */
  readonly fastBatches: number;
  readonly otherBatches: number;
  /** Chunks handed to the main thread, and those whose values the reader converted (null: it could not, the main thread converted all). */
  readonly chunks: number;
  readonly convertedChunks: number | null;
  /**
   * The most bytes the reader held ahead of the main thread: record keys and values fetched
   * and not yet packed (at most MAX_PENDING_BYTES, kafka-worker.ts, and one fetch), and chunks
   * sent and not yet taken (at most KAFKA_IN_FLIGHT_BYTES and one chunk).
   */
  readonly peakBytesAhead: number;
}

/** Where the reader's values are converted: both threads as they have time (auto), or one (TAPEDECK_KAFKA_CONVERT, for tests and diagnosis). */
export type KafkaConvert = 'auto' | 'reader' | 'main';

/** TAPEDECK_KAFKA_CONVERT, checked. */
export function kafkaConvertSetting(env: NodeJS.ProcessEnv = process.env): KafkaConvert {
  const value = env.TAPEDECK_KAFKA_CONVERT;
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'reader' || value === 'main') return value;
  throw new TapedeckError('E_USAGE', `TAPEDECK_KAFKA_CONVERT must be auto, reader or main, not ${JSON.stringify(value)}`);
}

export type KafkaMessage =
  | KafkaChunk
  | { readonly type: 'warning'; readonly message: string }
  | { readonly type: 'end'; readonly stopped: boolean; readonly reader: KafkaReaderReport }
  /** After 'end' and the main thread's 'finish': the reader's consumer has given the group the last position and left. */
  | { readonly type: 'closed' };

/** The compiled Kafka reader (see compiledWorkerUrl). */
export const kafkaWorkerUrl = (): URL | null => compiledWorkerUrl(import.meta.url, 'recorder/kafka-worker.js');

/** The Kafka reader between recordings: kept, as the source worker is (module loading, its code compiled). */
let kafkaWorkers: WorkerKeeper | null = null;

/** The thread id of the Kafka reader kept for the next recording, or null (for tests). */
export function keptKafkaWorker(): number | null {
  return kafkaWorkers?.keptThreadId ?? null;
}

/**
 * Start a Kafka reader thread now (unless one is kept), to be taken by the KafkaPipeline that
 * follows: its start (an isolate, kafkajs and the rest of its modules, the engine) then runs
 * while the main thread's prepare() asks Kafka where to start. Unused, it stays idle and
 * unreferenced like a kept one.
 */
export function prestartKafkaWorker(url: URL, engineSpec: string | undefined): void {
  const keeper = kafkaKeeper(url);
  if (keeper.keptThreadId !== null) return;
  const worker = keeper.take();
  if (engineSpec !== undefined) worker.postMessage({ preload: engineSpec } satisfies KafkaPreload);
  keeper.keep(worker);
}

/** The keeper of the Kafka reader threads, made on first use. */
function kafkaKeeper(url: URL): WorkerKeeper {
  return (kafkaWorkers ??= new WorkerKeeper(() => new Worker(url)));
}

/** End the kept Kafka reader: the next recording starts its own, as a process's first does (the benchmark's cold case). */
export async function endKeptKafkaWorker(): Promise<void> {
  await kafkaWorkers?.end();
}

/**
 * How long KafkaPipeline.close waits for the reader to close: longer than the reader waits for
 * the group to take the last position and then to leave, so that the reader's own bounds (and
 * their warnings) come first; the rest is room for a slow machine's reader thread, whose timers
 * start only once it has the message to close.
 */
const CLOSE_WAIT_MS = FINAL_COMMIT_WAIT_MS + LEAVE_WAIT_MS + 5_000;
/**
 * After a stop, how long the recorder waits for a word from the Kafka reader before it takes
 * the thread as stuck (STOPPED_QUIET_MS for the others). A reader that stops sends its last
 * chunk and 'end' within a fetch's wait; with a private group it first leaves the group,
 * which may wait FINAL_COMMIT_WAIT_MS and LEAVE_WAIT_MS on a broker that does not answer.
 */
const KAFKA_STOPPED_QUIET_MS = CLOSE_WAIT_MS;

export class KafkaPipeline {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly control: Int32Array;
  private readonly inbox: WorkerInbox<KafkaMessage>;
  /** The reader sent 'end' for this job. */
  private finished = false;
  private readonly onWarning: (message: string) => void;

  constructor(url: URL, options: Record<string, unknown>, engineSpec: string | undefined, onWarning: (message: string) => void) {
    this.onWarning = onWarning;
    const convert = kafkaConvertSetting();
    const control = new SharedArrayBuffer(8);
    this.control = new Int32Array(control);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = kafkaKeeper(url).take();
    // Warnings are passed on until the port closes, after 'end' too (a commit to the group that failed).
    port1.on('message', (message: KafkaMessage) => {
      if (message.type === 'warning') onWarning(message.message);
    });
    this.inbox = new WorkerInbox<KafkaMessage>(this.worker, 'the Kafka reader thread', (message) => message.type === 'warning', port1);
    this.worker.postMessage({ task: { options, engineSpec, convert, control } satisfies KafkaTask, port: port2 } satisfies KafkaJob, [port2]);
  }

  /** The reader's chunks, up to 'end' (failures are thrown); after a stop, up to the last before the reader went quiet (stuckThread()). */
  async *messages(): AsyncGenerator<Exclude<KafkaMessage, { type: 'warning' } | { type: 'closed' }>> {
    for (;;) {
      const message = await this.inbox.nextOrGaveUp();
      if (message === GAVE_UP) return;
      if (message.type === 'warning' || message.type === 'closed') continue;
      if (message.type === 'end') {
        this.finished = true;
        this.inbox.done();
      }
      yield message;
      if (message.type === 'end') return;
    }
  }

  consumed(): void {
    Atomics.add(this.control, CONTROL_CONSUMED, 1);
    Atomics.notify(this.control, CONTROL_CONSUMED);
  }

  /** The tape committed `position`: the reader commits it to a shared group. */
  committed(position: unknown): void {
    this.port.postMessage({ type: 'committed', position });
  }

  /** Asked to stop, the reader went quiet for KAFKA_STOPPED_QUIET_MS: messages() ended without its 'end'. Its name and that time; else null. */
  stuckThread(): AbandonedWorker | null {
    return this.inbox.abandoned;
  }

  stop(): void {
    Atomics.store(this.control, CONTROL_STOP, 1);
    Atomics.notify(this.control, CONTROL_CONSUMED);
    this.inbox.giveUpAfterQuiet(KAFKA_STOPPED_QUIET_MS);
  }

  /**
   * The recording is over, its last commit made: the reader gives a shared group the last
   * position it was told (committed()) and its consumer leaves the group. The reader is kept
   * for the next recording if it finished this one and closed in time; else it is ended.
   */
  async close(): Promise<void> {
    this.inbox.done();
    if (this.inbox.abandoned !== null) {
      // It did not answer a stop: it will not answer a close either.
      this.port.close();
      await this.worker.terminate();
      return;
    }
    if (!this.finished) this.stop();
    // The reader's job ends with 'closed' (or a failure), or its port closes.
    const closed = new Promise<boolean>((resolve) => {
      this.port.on('message', (message: KafkaMessage | { type: 'error' }) => {
        if (message.type === 'closed') resolve(true);
        else if (message.type === 'error') resolve(false);
      });
      this.port.once('close', () => resolve(false));
      this.worker.once('exit', () => resolve(false));
    });
    if (!this.finished) this.port.postMessage({ type: 'close' });
    this.port.postMessage({ type: 'finish' });
    const clean = await within<boolean | 'late'>(closed, CLOSE_WAIT_MS, 'late');
    if (clean === 'late') {
      this.onWarning(`the Kafka reader thread did not close within ${CLOSE_WAIT_MS / 1000} s; ended it (the tape holds every event it reports)`);
    }
    this.port.close();
    if (clean === true && this.finished) kafkaWorkers!.keep(this.worker);
    else await this.worker.terminate();
  }
}
