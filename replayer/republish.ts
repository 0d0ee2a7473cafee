// `tapedeck replay FILE --to-kafka`: send a tape's events to a Kafka topic with their keys,
// headers and partitions, keeping their relative timing divided by the speed factor (or as
// fast as the broker takes them with --speed max), to load a real downstream.
//
// Partitions: an event goes to its recorded partition when the target topic has it; when the
// target has fewer partitions, to (recorded partition mod target partitions), which keeps
// each recorded partition's order (all of it lands in one target partition).
//
// Order: partitions are spread over LANES send lanes (partition mod LANES). Each lane queues
// its messages in tape order and sends one request at a time, waiting for its acknowledgement
// (retries included) before the next, so a partition's messages reach the broker in tape
// order; the lanes run side by side, so up to LANES requests are in flight. (Concurrent
// requests for one partition could be reordered by the client or by a retry.) The tape is read
// up to MAX_QUEUED messages ahead of the requests, so that while one lane waits for its
// acknowledgement the others fill: a tape captured from Kafka holds long runs of one partition.
//
// Threads: the tape is read, and each event's value rendered (its JSON, or the codec's bytes),
// on a reader thread (republish-worker.ts) that stays at most IN_FLIGHT chunks ahead, so this
// thread's time goes to the Kafka client; with an engine object that is not built in and no
// engineSpec to load it by, everything runs here.
//
// Delivery is at-least-once: messages are acknowledged by all in-sync replicas (acks=-1); the
// report's lastAckedSeq is the last event known delivered together with every event before
// it. After a crash, run again with --from lastAckedSeq+1: events after it that were in
// flight at the crash may then arrive twice.

import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Kafka, logLevel, type Message, type Producer, type KafkaConfig } from 'kafkajs';
import { TapedeckError } from '../engine/errors.js';
import { builtInEngine } from '../engine/registry.js';
import type { Engine } from '../engine/types.js';
import { TapeReader } from '../tape/reader.js';
import { compiledWorkerUrl, WorkerInbox } from '../tape/threads.js';

export const REPUBLISH_VALUE_FORMATS = ['json', 'codec'] as const;
export type RepublishValueFormat = (typeof REPUBLISH_VALUE_FORMATS)[number];

export interface RepublishOptions {
  readonly brokers: readonly string[];
  /** TLS and SASL settings for kafkajs (cli/kafka-security.ts builds them). */
  readonly security?: { readonly client?: Pick<KafkaConfig, 'ssl' | 'sasl'> };
  readonly topic: string;
  /** The engine whose codec turns stored payloads into JSON values (for --value-format json). */
  readonly engine: Engine;
  readonly speed?: number | 'max';
  readonly valueFormat?: RepublishValueFormat;
  readonly fromSeq?: number;
  readonly toSeq?: number;
  readonly onProgress?: (sent: number, total: number) => void;
  /** Messages per produce request. */
  readonly batchSize?: number;
  /**
   * How a reader thread loads the engine (--engine: a built-in name or a module path): the
   * tape is then read and its values rendered on that thread while this one sends. Without it
   * (and for an engine that is not built in) everything runs on this thread.
   */
  readonly engineSpec?: string;
}

export interface RepublishResult {
  readonly ok: boolean;
  readonly tape: string;
  readonly topic: string;
  readonly events: number;
  readonly fromSeq: number;
  /** Last event acknowledged by the broker (with every event before it), or null. */
  readonly lastAckedSeq: number | null;
  readonly targetPartitions: number;
  /** Recorded partitions that went to another partition (mod the target's count). */
  readonly remappedPartitions: readonly { readonly from: number; readonly to: number }[];
  readonly elapsedMs: number;
  readonly eventsPerSec: number;
  readonly speed: number | 'max';
  /** With --speed K: the tape's recorded rate times K; null at --speed max. */
  readonly requestedEventsPerSec: number | null;
  readonly recordedEventsPerSec: number | null;
  readonly valueFormat: RepublishValueFormat;
}

const DEFAULT_BATCH = 2000;
/**
 * A request also ends when one partition has this many messages in it: kafkajs groups a
 * request's messages by partition in time quadratic in that count (it copies the partition's
 * list for every message), and a tape recorded from Kafka holds long runs of one partition (a
 * consumer reads partition by partition). Smaller requests cost more per message in the
 * client. Measured 2026-11-28 with the tape read on the reader thread (ratios to a bare
 * kafkajs producer in the same run, three runs each): on a tape captured from Kafka, 0.65-0.68
 * at 256, 0.73-0.76 at 512, 0.68-0.72 at 1024; on a synthetic tape, 0.78-0.84 at 512 and
 * 0.81-0.85 at 1024.
 */
const MAX_PER_PARTITION = 512;
const LANES = 4;
/** Messages read ahead of the requests, over all lanes. */
const MAX_QUEUED = 16_384;

/** Events per chunk from the reader thread, and chunks it may be ahead. */
export const CHUNK_EVENTS = 2048;
export const IN_FLIGHT = 8;

export interface ReaderTask {
  readonly path: string;
  readonly engineSpec: string;
  readonly valueFormat: RepublishValueFormat;
  readonly fromSeq: number;
  readonly toSeq: number;
  /** [0]: chunks the main thread took; [1]: stop. */
  readonly control: SharedArrayBuffer;
}

/** Messages' parts, packed: per event its seq, timestamp, partition, key and value lengths; keys and values in `bytes`, in order. */
export interface OutgoingChunk {
  readonly seqs: Float64Array;
  readonly timestamps: Float64Array;
  readonly partitions: Int32Array;
  /** -1: no key. */
  readonly keyLengths: Int32Array;
  readonly valueLengths: Int32Array;
  /** [index in the chunk, headers], for the events that have headers. */
  headers: [number, [string, Uint8Array][]][];
  readonly bytes: Uint8Array;
}

export type ReaderMessage = { readonly type: 'chunk'; readonly chunk: OutgoingChunk } | { readonly type: 'end' };

/** One message to send, with where it came from. */
interface Outgoing {
  readonly seq: number;
  readonly timestampUs: number;
  readonly partition: number;
  readonly key: Buffer | null;
  readonly value: Buffer;
  readonly headers: Record<string, Buffer> | null;
}

const readerWorkerUrl = (): URL | null => compiledWorkerUrl(import.meta.url, 'replayer/republish-worker.js');

/** The events to send in batches, read on a worker thread (see republish-worker.ts). */
async function* readOnWorker(url: URL, task: Omit<ReaderTask, 'control'>): AsyncGenerator<Outgoing[]> {
  const control = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(url, { workerData: { ...task, control: control.buffer } satisfies ReaderTask });
  const inbox = new WorkerInbox<ReaderMessage>(worker, 'the tape reader thread');
  try {
    for (;;) {
      const message = await inbox.next();
      if (message.type === 'end') {
        inbox.done();
        return;
      }
      const c = message.chunk;
      const buffer = Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength);
      let at = 0;
      let nextHeaders = 0;
      const batch: Outgoing[] = new Array(c.seqs.length);
      for (let i = 0; i < c.seqs.length; i++) {
        const keyLength = c.keyLengths[i];
        const key = keyLength < 0 ? null : buffer.subarray(at, at + keyLength);
        if (keyLength > 0) at += keyLength;
        const value = buffer.subarray(at, at + c.valueLengths[i]);
        at += c.valueLengths[i];
        let headers: Record<string, Buffer> | null = null;
        if (nextHeaders < c.headers.length && c.headers[nextHeaders][0] === i) {
          headers = {};
          for (const [name, v] of c.headers[nextHeaders++][1]) headers[name] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
        }
        batch[i] = { seq: c.seqs[i], timestampUs: c.timestamps[i], partition: c.partitions[i], key, value, headers };
      }
      yield batch;
      Atomics.add(control, 0, 1);
      Atomics.notify(control, 0);
    }
  } finally {
    inbox.done();
    Atomics.store(control, 1, 1);
    Atomics.notify(control, 0);
    await worker.terminate();
  }
}

/** The events to send in batches (a block's), read on this thread. */
function* readHere(reader: TapeReader, engine: Engine, valueFormat: RepublishValueFormat, fromSeq: number, toSeq: number): Generator<Outgoing[]> {
  const codec = engine.codec;
  for (const cursor of reader.blocks(fromSeq)) {
    const batch: Outgoing[] = [];
    while (reader.advance(cursor)) {
      if (cursor.seq < fromSeq) continue;
      if (cursor.seq > toSeq) break;
      const payload = cursor.payload();
      let value: Buffer;
      if (valueFormat === 'codec') value = Buffer.from(payload);
      else {
        let event: unknown;
        try {
          event = codec.decode(payload);
        } catch (cause) {
          throw new TapedeckError('E_REPLAY_DECODE', `${reader.path}: event ${cursor.seq} cannot be decoded by ${engine.name}'s codec: ${(cause as Error).message}`, { cause });
        }
        value = Buffer.from(JSON.stringify(codec.toJSON(event)));
      }
      const key = cursor.key();
      let headers: Record<string, Buffer> | null = null;
      for (const h of cursor.headers()) {
        headers ??= {};
        headers[Buffer.from(h.name).toString('utf8')] = Buffer.from(h.value);
      }
      batch.push({ seq: cursor.seq, timestampUs: cursor.timestampUs, partition: cursor.partition, key: key === null ? null : Buffer.from(key), value, headers });
    }
    if (batch.length > 0) yield batch;
    if (cursor.seq > toSeq) return;
  }
}

export async function republishTape(path: string, options: RepublishOptions): Promise<RepublishResult> {
  const speed = options.speed ?? 'max';
  if (speed !== 'max' && !(speed > 0 && Number.isFinite(speed))) throw new TapedeckError('E_USAGE', `--speed must be "max" or a positive number, got ${speed}`);
  const valueFormat = options.valueFormat ?? 'json';
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const reader = TapeReader.open(path);
  const kafka = new Kafka({
    clientId: 'tapedeck-republish',
    brokers: [...options.brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
    ...options.security?.client,
  });
  let producer: Producer | null = null;
  try {
    const summary = reader.summary();
    const total = summary.events;
    const fromSeq = options.fromSeq ?? 0;
    const toSeq = Math.min(options.toSeq ?? total - 1, total - 1);
    if (fromSeq > total) throw new TapedeckError('E_USAGE', `--from ${fromSeq} is past the end of the tape (${total} events)`);
    const rangeEvents = Math.max(0, toSeq - fromSeq + 1);

    const admin = kafka.admin();
    let targetPartitions: number;
    try {
      await admin.connect();
      const meta = await admin.fetchTopicMetadata({ topics: [options.topic] }).catch((error: unknown) => {
        throw new TapedeckError('E_KAFKA_TOPIC', `topic ${options.topic} does not exist on ${options.brokers.join(',')} (create it first): ${(error as Error).message}`);
      });
      targetPartitions = meta.topics[0].partitions.length;
    } catch (error) {
      if (error instanceof TapedeckError) throw error;
      throw new TapedeckError('E_KAFKA_CONNECT', `cannot reach Kafka at ${options.brokers.join(',')}: ${(error as Error).message}`, { cause: error });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }

    producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false, maxInFlightRequests: LANES });
    await producer.connect();
    const remapped = new Map<number, number>();
    interface Lane {
      /** Messages waiting for the lane's next requests, in tape order, and their seqs; [head, length) are not sent yet. */
      queue: Message[];
      seqs: number[];
      head: number;
      /** The lane's request in flight (resolved when acknowledged), or null. */
      sending: Promise<void> | null;
      sendingFirstSeq: number;
    }
    const lanes: Lane[] = Array.from({ length: LANES }, () => ({ queue: [], seqs: [], head: 0, sending: null, sendingFirstSeq: -1 }));
    let failure: unknown = null;
    let lastSentSeq = -1;
    let sent = 0;
    /** Messages read and not yet in a request, over all lanes. */
    let queued = 0;
    /** Send partial requests too (the input ended, or paced sending must not hold messages back). */
    let draining = false;
    const startedMs = performance.now();
    let originUs = -1;
    let firstTsUs = -1;
    let lastTsUs = -1;

    /** Every event before the earliest one not yet acknowledged is delivered. */
    const lastAcked = (): number | null => {
      let earliest = lastSentSeq + 1;
      for (const lane of lanes) {
        if (lane.sending !== null) earliest = Math.min(earliest, lane.sendingFirstSeq);
        if (lane.head < lane.queue.length) earliest = Math.min(earliest, lane.seqs[lane.head]);
      }
      return earliest - 1 >= fromSeq ? earliest - 1 : null;
    };
    /**
     * Start the lane's next request if it has none in flight and holds a full one (or drains):
     * up to batchSize messages, ending early at MAX_PER_PARTITION of one partition.
     */
    const pump = (lane: Lane): void => {
      if (lane.sending !== null || failure !== null) return;
      const waiting = lane.queue.length - lane.head;
      // At --speed max a lane waits for a full request; paced, whatever is due goes out.
      if (waiting === 0 || (waiting < batchSize && !draining && speed === 'max' && queued < MAX_QUEUED)) return;
      const perPartition = new Map<number, number>();
      let end = lane.head;
      while (end < lane.queue.length && end - lane.head < batchSize) {
        const partition = lane.queue[end].partition!;
        const n = (perPartition.get(partition) ?? 0) + 1;
        perPartition.set(partition, n);
        end++;
        if (n >= MAX_PER_PARTITION) break;
      }
      const messages = lane.queue.slice(lane.head, end);
      lane.sendingFirstSeq = lane.seqs[lane.head];
      queued -= end - lane.head;
      lane.head = end;
      if (lane.head > 8192) {
        lane.queue = lane.queue.slice(lane.head);
        lane.seqs = lane.seqs.slice(lane.head);
        lane.head = 0;
      }
      lane.sending = producer!.send({ topic: options.topic, messages, acks: -1 }).then(
        () => {
          lane.sending = null;
          pump(lane);
        },
        (error: unknown) => {
          lane.sending = null;
          failure ??= error;
        },
      );
      options.onProgress?.(sent, rangeEvents);
    };
    /** Wait for any request in flight to be acknowledged. */
    const anyAck = async (): Promise<void> => {
      const inFlight = lanes.flatMap((l) => (l.sending === null ? [] : [l.sending]));
      if (inFlight.length > 0) await Promise.race(inFlight);
      if (failure !== null) throw failure;
    };
    /** Send everything read so far, and wait until it is acknowledged. */
    const drain = async (): Promise<void> => {
      draining = true;
      for (;;) {
        for (const lane of lanes) pump(lane);
        if (failure !== null) throw failure;
        if (lanes.every((l) => l.sending === null && l.head === l.queue.length)) break;
        await anyAck();
      }
    };

    try {
    const engineSpec = options.engineSpec ?? ((builtInEngine(options.engine.name) as unknown) === options.engine ? options.engine.name : undefined);
    const url = engineSpec === undefined ? null : readerWorkerUrl();
    const batches: AsyncIterable<Outgoing[]> | Iterable<Outgoing[]> =
      url === null || engineSpec === undefined
        ? readHere(reader, options.engine, valueFormat, fromSeq, toSeq)
        : readOnWorker(url, { path, engineSpec, valueFormat, fromSeq, toSeq });
    for await (const batch of batches) {
      for (let b = 0; b < batch.length; b++) {
        const out = batch[b];
        const ts = out.timestampUs;
        if (firstTsUs < 0) firstTsUs = ts;
        lastTsUs = ts;
        if (speed !== 'max') {
          if (originUs < 0) originUs = ts;
          const dueMs = startedMs + (ts - originUs) / 1000 / speed;
          const waitMs = dueMs - performance.now();
          if (waitMs >= 1) {
            // Send what is due before waiting, so that nothing sits in a batch past its time.
            for (const lane of lanes) pump(lane);
            if (failure !== null) throw failure;
            const again = dueMs - performance.now();
            if (again >= 1) await new Promise((resolve) => setTimeout(resolve, again));
          }
        }
        let partition = out.partition;
        if (partition >= targetPartitions) {
          const to = partition % targetPartitions;
          remapped.set(partition, to);
          partition = to;
        }
        const lane = lanes[partition % LANES];
        const message: Message = { partition, key: out.key, value: out.value, timestamp: String(Math.floor(ts / 1000)) };
        if (out.headers !== null) message.headers = out.headers;
        lane.queue.push(message);
        lane.seqs.push(out.seq);
        queued++;
        lastSentSeq = out.seq;
        sent++;
        pump(lane);
        // Read ahead while requests are in flight, up to MAX_QUEUED messages: a tape captured
        // from Kafka holds long runs of one partition, and the other lanes fill meanwhile.
        while (queued >= MAX_QUEUED) {
          for (const l of lanes) pump(l);
          await anyAck();
        }
      }
    }
    await drain();
    } catch (error) {
      if (error instanceof TapedeckError) throw error;
      await Promise.all(lanes.map((l) => l.sending)).catch(() => undefined);
      const lastAckedSeq = lastAcked();
      const resumeAt = lastAckedSeq === null ? fromSeq : lastAckedSeq + 1;
      throw new TapedeckError(
        'E_KAFKA_PRODUCE',
        `sending to ${options.topic} failed: ${(error as Error).message}. Events up to ${lastAckedSeq ?? 'none'} were acknowledged; ` +
          `continue with --from ${resumeAt} (events after it that were in flight may arrive twice)`,
        { cause: error },
      );
    }
    const elapsedMs = performance.now() - startedMs;
    const recordedSpanS = (lastTsUs - firstTsUs) / 1e6;
    const recordedEventsPerSec = sent > 1 && recordedSpanS > 0 ? sent / recordedSpanS : null;
    return {
      ok: true,
      tape: path,
      topic: options.topic,
      events: sent,
      fromSeq,
      lastAckedSeq: lastAcked(),
      targetPartitions,
      remappedPartitions: [...remapped.entries()].sort((a, b) => a[0] - b[0]).map(([from, to]) => ({ from, to })),
      elapsedMs,
      eventsPerSec: elapsedMs > 0 ? (sent * 1000) / elapsedMs : 0,
      speed,
      requestedEventsPerSec: speed === 'max' || recordedEventsPerSec === null ? null : recordedEventsPerSec * speed,
      recordedEventsPerSec,
      valueFormat,
    };
  } finally {
    reader.close();
    await producer?.disconnect().catch(() => undefined);
  }
}
