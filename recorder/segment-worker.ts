// One of the workers that parse an NDJSON file in parallel (see pipeline.ts, SegmentPipeline).
// The file, from the recording's start offset, is cut into segments of S bytes (SEGMENT_BYTES):
// segment k holds the lines that start in [start + k * S, start + (k + 1) * S).
// Worker j of K parses segments j, j + K, j + 2K, ... and sends each as chunks of at most
// CHUNK_ITEMS inputs: the accepted events packed in the block format (relative sequence
// numbers, positions = line numbers within the segment), the rejects with their index among
// the chunk's inputs, and the byte offset after every input. The main thread puts the
// segments back in order, numbers lines and events, applies, and builds the tape's blocks.
//
// Text that can only be read in order (a gzip file) is fed instead (SegmentPipeline.feed): the
// main thread sends each segment's bytes to its worker as they come, and the worker parses them
// as they arrive; a segment ends after a newline, or where the text stopped short.

import { fstatSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BlockBuilder } from '../tape/block.js';
import { loadEngine } from '../tape/load-engine.js';
import { chunkFull, CONTROL_STOP_SEGMENTS, CONTROL_TEXT_TAKEN, SEGMENT_CHUNK_ITEMS, SEGMENT_IN_FLIGHT, SEGMENT_IN_FLIGHT_BYTES, type SegmentMessage, type SegmentReject, type SegmentTask, type SegmentText } from './pipeline.js';
import { SendWindow, workerFailure } from '../tape/threads.js';
import { Redactor } from './redact.js';
import { isReject, type SourceItem } from './source.js';
import { lineStartAtOrAfter, NdjsonSource, nextByteOffsetOf, type NdjsonSourceOptions } from './sources/ndjson.js';

/** A segment of fed text (SegmentPipeline.feed), as it arrives. */
class FedSegment {
  private readonly queue: Uint8Array[] = [];
  private ended = false;
  private wake: (() => void) | null = null;
  /** Where the text stopped short (a stop, a failure): no line starts there or after. */
  until: number | undefined = undefined;

  constructor(
    readonly start: number,
    private readonly taken: () => void,
  ) {}

  push(bytes: Uint8Array): void {
    this.queue.push(bytes);
    this.poke();
  }

  end(until: number | null): void {
    if (until !== null) this.until = until;
    this.ended = true;
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  async *chunks(): AsyncGenerator<Uint8Array> {
    for (;;) {
      while (this.queue.length === 0 && !this.ended) await new Promise<void>((resolve) => (this.wake = resolve));
      const bytes = this.queue.shift();
      if (bytes === undefined) return;
      this.taken();
      yield bytes;
    }
  }
}

/** The fed text's segments for this worker, by number, as their messages come. */
class FedText {
  /** Segments whose text is still coming (a segment's messages come in order, the next segment's after them). */
  private readonly open = new Map<number, FedSegment>();
  /** Segments that came before the parsing asked for them: null for none. */
  private readonly ready = new Map<number, FedSegment | null>();
  private readonly waiting = new Map<number, (segment: FedSegment | null) => void>();

  constructor(
    private readonly firstStart: number,
    private readonly taken: () => void,
  ) {
    parentPort!.on('message', (message: SegmentText) => this.take(message));
  }

  private take(message: SegmentText): void {
    const k = message.segment;
    let segment = this.open.get(k);
    if (segment === undefined) {
      // A segment's first message: a first segment with no text at all starts where the recording does.
      const first = message.type === 'none' ? null : new FedSegment(message.type === 'text' ? message.start : this.firstStart, this.taken);
      if (first !== null) this.open.set(k, first);
      const waiter = this.waiting.get(k);
      this.waiting.delete(k);
      if (waiter !== undefined) waiter(first);
      else this.ready.set(k, first);
      if (first === null) return;
      segment = first;
    }
    if (message.type === 'text') segment.push(message.bytes);
    else if (message.type === 'end') {
      segment.end(message.until);
      this.open.delete(k);
    }
  }

  /** Segment `k` once its first message has come; null when there is no such segment (the text ended before it). */
  segment(k: number): Promise<FedSegment | null> {
    const ready = this.ready.get(k);
    if (ready !== undefined) {
      this.ready.delete(k);
      return Promise.resolve(ready);
    }
    return new Promise((resolve) => this.waiting.set(k, resolve));
  }
}

async function run(task: SegmentTask): Promise<void> {
  const port = parentPort!;
  const control = new Int32Array(task.control);
  const stopAt = CONTROL_STOP_SEGMENTS(task.workers);
  const engine = await loadEngine(task.engineSpec);
  const r = task.redaction;
  const redactor = r === null ? null : Redactor.fromParts(r);
  const base = task.from.byteOffset;
  const takenAt = CONTROL_TEXT_TAKEN(task.workers, task.worker);
  const fed =
    task.fd === null
      ? new FedText(base, () => {
          Atomics.add(control, takenAt, 1);
          Atomics.notify(control, takenAt);
        })
      : null;
  // Segments up to the size the file had when the recording opened it, or has now if larger:
  // one cut short since ends where its reads find the end too soon (E_INPUT_TRUNCATED).
  const size = task.fd === null ? 0 : Math.max(fstatSync(task.fd).size, task.sizeAtOpen);
  const window = new SendWindow(control, task.worker, stopAt, SEGMENT_IN_FLIGHT, SEGMENT_IN_FLIGHT_BYTES);
  const post = (message: SegmentMessage): void => port.postMessage(message);

  for (let segment = task.worker; ; segment += task.workers) {
    if (Atomics.load(control, stopAt) !== 0) break;
    let options: NdjsonSourceOptions<unknown>;
    const common = {
      input: task.input,
      codec: engine.codec,
      maxLineBytes: task.maxLineBytes,
      allowBom: segment === 0 && task.from.line === 0,
      keepRaw: task.keepRaw,
      redaction: redactor === null ? undefined : { transform: redactor, record: redactor.record },
    };
    if (fed !== null) {
      const text = await fed.segment(segment);
      if (text === null) {
        post({ type: 'end', worker: task.worker, segment });
        return;
      }
      options = { ...common, text: text.chunks(), from: { byteOffset: text.start, line: 0 } };
      // Learnt only when the text stops short; read by the source as it goes.
      Object.defineProperty(options, 'until', { get: () => text.until, enumerable: true });
    } else {
      const rawStart = base + segment * task.segmentBytes;
      const start = segment === 0 ? base : lineStartAtOrAfter(task.fd!, rawStart);
      if (start >= size && (segment > 0 || size === base)) {
        post({ type: 'end', worker: task.worker, segment });
        return;
      }
      options = { ...common, fd: task.fd!, sizeAtOpen: task.sizeAtOpen, from: { byteOffset: start, line: 0 }, until: base + (segment + 1) * task.segmentBytes, blockingReads: true };
    }
    const source = new NdjsonSource(options);
    const builder = new BlockBuilder({ packed: true });
    let items = 0;
    let nextOffsets = new Float64Array(SEGMENT_CHUNK_ITEMS);
    let rejects: SegmentReject[] = [];
    let rejectBytes = 0;
    const send = (last: boolean): void => {
      const block = builder.eventCount > 0 ? builder.finishPacked(0) : null;
      const offsets = nextOffsets.slice(0, items);
      const message: SegmentMessage = { type: 'chunk', worker: task.worker, segment, block, nextOffsets: offsets, rejects, items, last };
      const sentRejectBytes = rejectBytes;
      items = 0;
      nextOffsets = new Float64Array(SEGMENT_CHUNK_ITEMS);
      rejects = [];
      rejectBytes = 0;
      window.send(port, message, block === null ? [offsets.buffer] : [block.data.buffer as ArrayBuffer, offsets.buffer], sentRejectBytes);
    };
    const takeBatch = (batch: readonly SourceItem[]): void => {
      for (let i = 0; i < batch.length; i++) {
        const item = batch[i];
        nextOffsets[items] = nextByteOffsetOf(item);
        if (isReject(item)) {
          const position = item.position as { line: number; byteOffset: number };
          rejects.push({ index: items, line: position.line, byteOffset: position.byteOffset, reasonCode: item.reasonCode, reason: item.reason, raw: item.raw, rawLength: item.rawLength });
          rejectBytes += item.raw?.length ?? 0;
        } else {
          builder.add(builder.eventCount, item);
        }
        items++;
        if (chunkFull(items, SEGMENT_CHUNK_ITEMS, builder.byteLength, rejectBytes)) send(false);
      }
    };
    try {
      for await (const batch of source.batches()) {
        takeBatch(batch);
      }
    } catch (error) {
      // The lines parsed before a failure between lines (the file was cut short, a read failed)
      // go to the main thread first: it commits them, then the error stands.
      if (items > 0) send(false);
      throw error;
    }
    send(true);
  }
}

run(workerData as SegmentTask).catch((error: unknown) => parentPort!.postMessage(workerFailure(error)));
