// The recorder's Kafka reader thread (see pipeline.ts, KafkaPipeline): runs the consumer and
// posts the records packed in the block format, at most KAFKA_IN_FLIGHT chunks ahead of the
// main thread, which applies and writes them. Each value must also be checked and converted
// into the engine codec's bytes (KafkaSource.convert, mostly JSON.parse), which costs about as
// much as everything else the two threads do; the two share it. With the engine loadable here
// (a built-in name or a module path), this thread converts the records of a chunk itself
// ('converted') when the main thread has CONVERT_BACKLOG chunks or more still to take, and
// else hands them over raw for the main thread to convert: whichever thread has time does
// it. The tape is the same either way (the same conversion, with the same codec and rules).
// TAPEDECK_KAFKA_CONVERT=reader or =main (KafkaTask.convert) fixes the thread, for tests and
// diagnosis.
// The thread is kept for the process's next recording (pipeline.ts, as the source worker is):
// each recording comes as a job with its own port; engines are loaded once.

import { type MessagePort, parentPort } from 'node:worker_threads';
import { jsonCodec } from '../engine/json-codec.js';
import type { EventCodec } from '../engine/types.js';
import { loadEngineOnce } from '../tape/load-engine.js';
import { type RedactionParts, Redactor } from './redact.js';
import { BlockBuilder } from '../tape/block.js';
import { chunkFull, CONTROL_CONSUMED, CONTROL_STOP, KAFKA_CHUNK_ITEMS, KAFKA_IN_FLIGHT, KAFKA_IN_FLIGHT_BYTES, type KafkaMessage, type KafkaTask } from './pipeline.js';
import { SendWindow, workerFailure } from '../tape/threads.js';
import { isReject, REJECTED, type SourceItem, type SourceReject } from './source.js';

import { isRawRun, KafkaSource, type KafkaSourceOptions, storableTimestamp } from './sources/kafka.js';
import { FastRecord, fastDecoderStats, installFastRecordDecoder } from './sources/kafka-decode.js';

/** A batch taken from the client and not yet packed: its records, and the bytes of their keys and values (what they hold of the fetch). */
interface PendingBatch {
  readonly batch: readonly (SourceItem | SourceReject)[];
  readonly records: number;
  readonly bytes: number;
}

function pendingBatch(batch: readonly (SourceItem | SourceReject)[]): PendingBatch {
  let records = 0;
  let bytes = 0;
  for (const run of batch) {
    if (!isRawRun(run)) {
      records++;
      continue;
    }
    records += run.messages.length;
    for (const message of run.messages) {
      if (message instanceof FastRecord) bytes += Math.max(message.keyLength, 0) + Math.max(message.valueLength, 0);
      else bytes += (message.key?.length ?? 0) + (message.value?.length ?? 0);
    }
  }
  return { batch, records, bytes };
}

/** Chunks waiting for the main thread from which on this thread converts the next chunk itself. */
// Measured (tmp A/B over 500,000 JSON records, 12 partitions, 2 cores): 2 and 4 chunks kept
// the reader converting too often, 8-16 balanced the threads best, 24 too seldom.
const CONVERT_BACKLOG = 16;

/**
 * Records taken from the client and not yet packed, and the bytes of their keys and values;
 * past either the reader waits (and the client stops fetching). The count bounds small
 * records, the bytes large ones: before the bound on bytes, a topic of 50 KB records recorded
 * with an engine slower than the broker reached 1.1 GB of RSS in 5 s (docs/recording.md).
 */
const MAX_PENDING_ITEMS = 65_536;
const MAX_PENDING_BYTES = 16 << 20;

// Before any consumer's first fetch, which loads kafkajs's fetch decoding.
const decoder = installFastRecordDecoder();

/** A recording for this thread: the task, and the port its messages go to. */
export interface KafkaJob {
  readonly task: KafkaTask;
  readonly port: MessagePort;
}

/** Load this engine now, for a job to come (pipeline.ts, prestartKafkaWorker). */
export interface KafkaPreload {
  readonly preload: string;
}

async function run(task: KafkaTask, port: MessagePort): Promise<void> {
  const post = (message: KafkaMessage): void => port.postMessage(message);
  const { redaction, ...options } = task.options as Record<string, unknown> & { redaction: RedactionParts | 'main' | null };
  const canConvert = task.engineSpec !== undefined && redaction !== 'main';
  let codec: EventCodec<unknown> = jsonCodec;
  let redactor: Redactor | null = null;
  if (canConvert) {
    codec = (await loadEngineOnce(task.engineSpec!)).codec;
    if (redaction !== null) redactor = Redactor.fromParts(redaction);
  }
  const source = new KafkaSource({
    ...(options as unknown as KafkaSourceOptions<unknown>),
    codec,
    rawValues: true,
    redaction: redactor === null ? undefined : { transform: redactor, record: redactor.record },
    onWarning: (message) => post({ type: 'warning', message }),
  });
  // 'finish' comes after the main thread's last commit (KafkaPipeline.close); a closed port
  // (the main thread gone) finishes too.
  let finishRequested!: () => void;
  const finish = new Promise<void>((resolve) => (finishRequested = resolve));
  port.on('message', (message: { type: string; position?: unknown }) => {
    if (message.type === 'committed') source.committed(message.position);
    else if (message.type === 'close') source.stop();
    else if (message.type === 'finish') finishRequested();
  });
  port.once('close', () => finishRequested());
  try {
    await read(task, source, canConvert, port, post);
    // The tape commits what this thread sent after this: the consumer stays in a shared group
    // until those positions have reached it (KafkaSource.close).
    await finish;
  } finally {
    await source.close();
  }
  post({ type: 'closed' });
  // The job is over: its port closes (the thread waits for the next job, or is ended).
  port.close();
}

/** Read the topics and send the records packed, up to 'end'. */
async function read(task: KafkaTask, source: KafkaSource<unknown>, canConvert: boolean, port: MessagePort, post: (message: KafkaMessage) => void): Promise<void> {
  const stats = { ...fastDecoderStats };
  const control = new Int32Array(task.control);
  const fastCodec = canConvert ? source.fastCodec() : null;
  const builder = new BlockBuilder({ packed: true });
  let items = 0;
  let rejects: { index: number; reject: SourceReject }[] = [];
  /** Bytes of raw input the chunk's rejects hold. */
  let rejectBytes = 0;
  let sent = 0;
  const window = new SendWindow(control, CONTROL_CONSUMED, CONTROL_STOP, KAFKA_IN_FLIGHT, KAFKA_IN_FLIGHT_BYTES);
  let convertedChunks = 0;
  const backlog = task.convert === 'reader' ? 0 : task.convert === 'main' ? Infinity : CONVERT_BACKLOG;
  let stopped = false;
  /** Whether this thread converts the chunk being built. */
  let converted = false;
  const send = async (): Promise<void> => {
    if (items === 0) return;
    const block = builder.eventCount > 0 ? builder.finishPacked(0) : null;
    const message: KafkaMessage = { type: 'chunk', block, rejects, items, converted };
    const sentRejectBytes = rejectBytes;
    sent++;
    if (converted) convertedChunks++;
    items = 0;
    rejects = [];
    rejectBytes = 0;
    // Wait for room without blocking this thread's event loop: the consumer's heartbeats run on it.
    const room = window.sendAsync(port, message, block === null ? [] : [block.data.buffer as ArrayBuffer], sentRejectBytes);
    notePeak();
    await room;
  };
  // The client fetches again only when the source has taken the last batch, so batches are
  // taken at once and packed by a second loop while the next fetch is on the wire.
  const pending: PendingBatch[] = [];
  let pendingItems = 0;
  let pendingBytes = 0;
  /** The most bytes this thread held ahead of the main thread: records fetched and not packed, chunks not taken (KafkaReaderReport.peakBytesAhead). */
  let peakBytesAhead = 0;
  const notePeak = (): void => {
    const ahead = pendingBytes + window.bytesAhead;
    if (ahead > peakBytesAhead) peakBytesAhead = ahead;
  };
  let readerDone = false;
  const waiting: { packer: (() => void) | null; reader: (() => void) | null } = { packer: null, reader: null };
  const wake = (who: 'packer' | 'reader'): void => {
    const w = waiting[who];
    waiting[who] = null;
    w?.();
  };
  const reader = (async () => {
    try {
      for await (const batch of source.batches()) {
        const taken = pendingBatch(batch);
        pending.push(taken);
        pendingItems += taken.records;
        pendingBytes += taken.bytes;
        notePeak();
        wake('packer');
        while (pendingItems > MAX_PENDING_ITEMS || pendingBytes > MAX_PENDING_BYTES) await new Promise<void>((resolve) => (waiting.reader = resolve));
        if (!stopped && Atomics.load(control, CONTROL_STOP) !== 0) {
          stopped = true;
          source.stop();
        }
      }
    } finally {
      readerDone = true;
      wake('packer');
    }
  })();
  for (;;) {
    const taken = pending.shift();
    if (taken === undefined) {
      if (readerDone) break;
      await new Promise<void>((resolve) => (waiting.packer = resolve));
      continue;
    }
    for (const run of taken.batch) {
      if (!isRawRun(run)) throw new Error('the Kafka reader expects raw runs from its source');
      for (const message of run.messages) {
        if (items === 0) converted = canConvert && sent - Atomics.load(control, CONTROL_CONSUMED) >= backlog;
        if (
          run.stream === 0 &&
          message instanceof FastRecord &&
          message.headerMap === null &&
          message.valueLength >= 0 &&
          storableTimestamp(message.timestampMs) &&
          (!converted || fastCodec !== null)
        ) {
          // The common case, packed straight from the fetch's bytes: the value as it is, or
          // converted into the codec's bytes.
          const buffer = message.buffer;
          const key = message.keyLength < 0 ? null : buffer;
          const keyLength = Math.max(message.keyLength, 0);
          const ts = message.timestampMs * 1000;
          if (!converted) {
            builder.addParts(builder.eventCount, ts, run.partition, message.offsetNumber, key, message.keyAt, keyLength, buffer, message.valueAt, message.valueLength);
          } else {
            const event = source.fastEvent(run.topic, run.partition, message.offsetNumber, buffer, message.valueAt, message.valueAt + message.valueLength);
            if (event === REJECTED) {
              rejects.push({ index: items, reject: source.lastReject! });
              rejectBytes += source.lastReject!.raw?.length ?? 0;
            }
            else builder.addEncodedParts(builder.eventCount, ts, run.partition, message.offsetNumber, key, message.keyAt, keyLength, fastCodec!, event);
          }
        } else {
          const item = source.rawRecord(run, message, converted);
          if (isReject(item)) {
            rejects.push({ index: items, reject: item });
            rejectBytes += item.raw?.length ?? 0;
          }
          else builder.add(builder.eventCount, item);
        }
        items++;
        if (chunkFull(items, KAFKA_CHUNK_ITEMS, builder.byteLength, rejectBytes)) await send();
      }
    }
    pendingItems -= taken.records;
    pendingBytes -= taken.bytes;
    wake('reader');
    // What was fetched goes over when nothing else waits (and the empty batch the source hands
    // out when Kafka is idle sends it too), so that a live capture commits as on one thread.
    if (pending.length === 0) await send();
  }
  await reader;
  await send();
  post({
    type: 'end',
    stopped,
    reader: {
      decoder,
      fastBatches: fastDecoderStats.fast - stats.fast,
      otherBatches: fastDecoderStats.fallback - stats.fallback,
      chunks: sent,
      convertedChunks: canConvert ? convertedChunks : null,
      peakBytesAhead,
    },
  });
}

parentPort!.on('message', (job: KafkaJob | KafkaPreload) => {
  if ('preload' in job) {
    // A failure is the job's to report.
    loadEngineOnce(job.preload).catch(() => undefined);
    return;
  }
  run(job.task, job.port).catch((error: unknown) => {
    job.port.postMessage(workerFailure(error));
    job.port.close();
  });
});
